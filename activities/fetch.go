package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/rules"
	"github.com/usersync/usersync/sources"
)

// openSource opens the run's provider on the run's own copy of the source
// and, where the source can, validates the whole of it first: a broken CSV
// fails the run before anything is staged.
func (a *Activities) openSource(ctx context.Context, rc *runContext) (*sources.Opened, map[int]string, error) {
	src, err := sources.Open(ctx, a.sourceEnv(), sources.Target{Profile: rc.profile, Config: rc.cfg, DocumentID: rc.run.SourceDocumentID})
	if err != nil {
		return nil, nil, classifyOpen(rc, err)
	}
	var invalid map[int]string
	if src.Validate != nil {
		if invalid, err = src.Validate(ctx); err != nil {
			return nil, nil, classify(err)
		}
	}
	return src, invalid, nil
}

func (a *Activities) sourceEnv() sources.Env {
	return sources.Env{Store: a.Store, HTTPClient: a.HTTPClient, Dial: a.Dial, AllowHTTPLoopback: a.AllowHTTPLoopback,
		PageSize: a.PageSize, Logger: a.Logger}
}

// classifyOpen makes a source that cannot be opened a final configuration
// error, unless the provider said why in a typed error.
func classifyOpen(rc *runContext, err error) error {
	var thr *provider.ThrottledError
	for _, typed := range []error{provider.ErrAuth, provider.ErrPermission, provider.ErrInvalidData,
		provider.ErrNotFound, provider.ErrUnreachable, provider.ErrCursorExpired} {
		if errors.Is(err, typed) {
			// Typed: classify knows what is final; an unreachable
			// provider stays retryable.
			return classify(err)
		}
	}
	if errors.As(err, &thr) {
		return classify(err)
	}
	return configError("profile %q: %v", rc.profile.Name, err)
}

// fetchCursor is where a fetch stands: the users, then (for group sync on
// a source whose users do not carry their groups) the groups, then the
// members of each staged group in turn.
type fetchCursor struct {
	Stage  string `json:"s"`           // users | groups | members
	Group  string `json:"g,omitempty"` // members: the group being read
	Cursor string `json:"c,omitempty"` // the provider's cursor in that listing
}

const (
	stageUsers   = "users"
	stageGroups  = "groups"
	stageMembers = "members"
)

func parseFetchCursor(s string) (fetchCursor, error) {
	if s == "" {
		return fetchCursor{Stage: stageUsers}, nil
	}
	var c fetchCursor
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("bad fetch cursor: %w", err)
	}
	return c, nil
}

func (c fetchCursor) String() string {
	b, _ := json.Marshal(c) //nolint:errchkjson // plain struct
	return string(b)
}

// Fetch stages pages from the provider, from the cursor the last committed
// page left, until the source is exhausted or the call's budget is spent.
func (a *Activities) Fetch(ctx context.Context, in FetchInput) (FetchResult, error) {
	rc, err := a.load(ctx, in.RunID)
	if err != nil {
		return FetchResult{}, err
	}
	if rc.run.FetchDone {
		return FetchResult{Done: true, Fetched: rc.run.Counts.Fetched}, nil
	}
	src, invalid, err := a.openSource(ctx, rc)
	if err != nil {
		return FetchResult{}, err
	}
	groups, err := rules.NewGroupFilter(rc.cfg.GroupSync.Mode, rc.cfg.GroupSync.Pattern)
	if err != nil {
		return FetchResult{}, configError("profile %q: %v", rc.profile.Name, err)
	}
	st := &stager{a: a, rc: rc, src: src, invalid: invalid, groups: groups, ahead: newReadAhead(ctx)}
	defer st.ahead.stop()
	if ds, ok := src.Source.(provider.DeltaSource); ok {
		st.delta = ds
		if st.mode, err = a.runMode(ctx, rc); err != nil {
			return FetchResult{}, err
		}
	}
	scope := provider.Scope{GroupIDs: rc.cfg.Groups}
	cur := firstStage(st.delta, st.mode)
	if rc.run.FetchCursor != "" {
		if cur, err = parseFetchCursor(rc.run.FetchCursor); err != nil {
			return FetchResult{}, err
		}
	}
	fetched := rc.run.Counts.Fetched
	deadline := a.now().Add(a.Budget)
	restarted, fellBack := false, false
	for {
		var (
			page *directory.FetchedPage
			next *fetchCursor
		)
		err := keepAlive(ctx, func() (err error) {
			page, next, err = st.fetchPage(ctx, cur, scope)
			return err
		}, cur.String(), fetched)
		if errors.Is(err, provider.ErrStateExpired) && st.mode.Mode == directory.ModeDelta && !fellBack {
			// The provider no longer has the state the changes were to be
			// read from: read the whole source instead.
			a.Logger.Warn("provider refused the saved delta state, falling back to a full sync", "run", rc.run.ID, "error", err)
			if err := a.Store.FallBackToFull(ctx, rc.run.ID); err != nil {
				return FetchResult{}, err
			}
			if st.mode, err = a.Store.RunMode(ctx, rc.run.ID); err != nil {
				return FetchResult{}, err
			}
			cur, fetched, fellBack = firstStage(st.delta, st.mode), 0, true
			continue
		}
		if errors.Is(err, provider.ErrCursorExpired) && !restarted {
			// The provider forgot our place: start over on a clean slate.
			a.Logger.Warn("provider cursor expired, restarting fetch", "run", rc.run.ID)
			if err := a.Store.ResetFetch(ctx, rc.run.ID); err != nil {
				return FetchResult{}, err
			}
			cur, fetched, restarted = firstStage(st.delta, st.mode), 0, true
			continue
		}
		if err != nil {
			return FetchResult{Fetched: fetched}, giveUp(ctx, a.now(), in.ProviderRetryBudget, classify(fmt.Errorf("fetch %s: %w", cur.Stage, err)))
		}
		nextStr := ""
		if next != nil {
			nextStr = next.String()
		}
		fetched, err = a.Store.SaveFetchedPage(ctx, rc.run.ID, page, nextStr, next == nil)
		if err != nil {
			// A value the database refuses fails the same way on every
			// retry: classify makes it final rather than a run that never ends.
			return FetchResult{Fetched: fetched}, classify(err)
		}
		heartbeat(ctx, nextStr, fetched)
		if next == nil {
			return FetchResult{Done: true, Fetched: fetched}, nil
		}
		cur = *next
		if err := sleep(ctx, a.PageDelay); err != nil {
			return FetchResult{Fetched: fetched}, err
		}
		if a.now().After(deadline) || workerStopping(ctx) {
			return FetchResult{Fetched: fetched}, nil
		}
	}
}

// fetchPage reads one page at cur and returns what to stage and where the
// next page is (nil when the fetch is complete).
func (s *stager) fetchPage(ctx context.Context, cur fetchCursor, scope provider.Scope) (*directory.FetchedPage, *fetchCursor, error) {
	switch cur.Stage {
	case stageUsers:
		users := func(cursor string) func(context.Context) (provider.Page[provider.User], error) {
			return func(ctx context.Context) (provider.Page[provider.User], error) {
				return s.src.Users(ctx, scope, cursor)
			}
		}
		p, err := readPage(ctx, s.ahead, "users\x00"+cur.Cursor, users(cur.Cursor))
		if err != nil {
			return nil, nil, providerError{err}
		}
		if p.Next != "" {
			readAheadPage(s.ahead, "users\x00"+p.Next, users(p.Next))
		}
		page, err := s.stage(ctx, p.Items)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case p.Next != "":
			return page, &fetchCursor{Stage: stageUsers, Cursor: p.Next}, nil
		case s.delta != nil:
			// Groups and memberships come from the group graph.
			return page, &fetchCursor{Stage: stageGraph}, nil
		case s.groups.On() && !s.src.UserGroups:
			return page, &fetchCursor{Stage: stageGroups}, nil
		}
		return page, nil, nil
	case stageGroups:
		var p provider.Page[provider.Group]
		err := s.ahead.call(func() (err error) {
			p, err = s.src.Groups(ctx, provider.GroupQuery{ForSync: true, Scope: scope}, cur.Cursor)
			return err
		})
		if err != nil {
			return nil, nil, providerError{err}
		}
		page := &directory.FetchedPage{}
		for _, g := range p.Items {
			if s.groups.Match(g.Name) {
				page.Groups = append(page.Groups, directory.StagedGroup{ExternalID: g.ID, Name: g.Name})
			}
		}
		if p.Next != "" {
			return page, &fetchCursor{Stage: stageGroups, Cursor: p.Next}, nil
		}
		// This page's groups are not staged yet: the first group to read is
		// the smallest of what is staged and what this page adds.
		next, err := s.nextGroup(ctx, "", page.Groups)
		return page, next, err
	case stageMembers:
		members := func(cursor string) func(context.Context) (provider.Page[provider.Member], error) {
			return func(ctx context.Context) (provider.Page[provider.Member], error) {
				return s.src.Members(ctx, cur.Group, cursor)
			}
		}
		key := "members\x00" + cur.Group + "\x00"
		p, err := readPage(ctx, s.ahead, key+cur.Cursor, members(cur.Cursor))
		if err == nil && p.Next != "" {
			readAheadPage(s.ahead, key+p.Next, members(p.Next))
		}
		if errors.Is(err, provider.ErrNotFound) {
			// The group went away since it was listed: its members are
			// unknown, which must not fail the other groups.
			s.a.Logger.Warn("group vanished during the fetch", "run", s.rc.run.ID, "group", cur.Group)
			next, err := s.nextGroup(ctx, cur.Group, nil)
			return &directory.FetchedPage{}, next, err
		}
		if err != nil {
			return nil, nil, providerError{err}
		}
		page := &directory.FetchedPage{}
		for _, m := range p.Items {
			page.Members = append(page.Members, directory.StagedMember{GroupExternalID: cur.Group, UserExternalID: m.UserID})
		}
		if p.Next != "" {
			return page, &fetchCursor{Stage: stageMembers, Group: cur.Group, Cursor: p.Next}, nil
		}
		next, err := s.nextGroup(ctx, cur.Group, nil)
		return page, next, err
	}
	if s.delta != nil {
		return s.fetchDeltaPage(ctx, cur, scope)
	}
	return nil, nil, fmt.Errorf("bad fetch stage %q", cur.Stage)
}

// nextGroup is the members cursor of the first staged group after "after",
// or nil when none is left.
func (s *stager) nextGroup(ctx context.Context, after string, pending []directory.StagedGroup) (*fetchCursor, error) {
	id, ok, err := s.a.Store.NextStagedGroup(ctx, s.rc.run.ID, after)
	if err != nil {
		return nil, err
	}
	for _, g := range pending {
		if g.ExternalID > after && (!ok || g.ExternalID < id) {
			id, ok = g.ExternalID, true
		}
	}
	if !ok {
		return nil, nil
	}
	return &fetchCursor{Stage: stageMembers, Group: id}, nil
}

// stager turns provider users into staged rows: the rules on required
// fields, duplicates and passwords, group sync's filter, the content hash.
type stager struct {
	a       *Activities
	rc      *runContext
	src     *sources.Opened
	invalid map[int]string // per CSV line, why the row is unusable (duplicates)
	groups  *rules.GroupFilter
	defHash string // bcrypt of the default password, made once per call
	// delta is the source's change reading, when it has one, and mode how
	// this run reads it.
	delta provider.DeltaSource
	mode  directory.RunMode
	// ahead carries every provider call of the fetch, and reads a
	// listing's next page while this one is staged.
	ahead *readAhead
}

func (s *stager) stage(ctx context.Context, users []provider.User) (*directory.FetchedPage, error) {
	page := &directory.FetchedPage{Users: make([]directory.StagedUser, 0, len(users))}
	ids := make([]string, 0, len(users))
	for i := range users {
		u := &users[i]
		if s.src.FoldIDs {
			u.ExternalID = strings.ToLower(u.ExternalID)
			u.ManagerRef = strings.ToLower(strings.TrimSpace(u.ManagerRef))
		}
		ids = append(ids, u.ExternalID)
	}
	// Passwords are hashed only for users about to be created: sync never
	// overwrites a password, and bcrypt is slow by design.
	var existing map[string]bool
	if s.src.Passwords {
		var err error
		if existing, err = s.a.Store.ExistingExternalIDs(ctx, s.rc.run.DirectoryKey, ids); err != nil {
			return nil, err
		}
	}
	seenGroups := map[string]bool{}
	for _, u := range users {
		rec := rules.Record{Username: u.Username, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email,
			ManagerRef: u.ManagerRef, Attributes: u.Attributes}
		invalid := u.Invalid
		if invalid == "" {
			invalid = rules.Invalid(rec)
		}
		if d, ok := s.invalid[u.Line]; ok && u.Line > 0 {
			invalid = d
		}
		var hash string
		if s.src.Passwords && invalid == "" {
			pw := u.Password
			if pw == "" {
				pw = s.src.DefaultPassword
			}
			switch {
			case pw == "":
				invalid = "no password and no default password"
			case !existing[u.ExternalID]:
				h, err := s.hash(pw, pw == s.src.DefaultPassword && u.Password == "")
				if err != nil {
					return nil, err
				}
				hash = h
			}
		}
		if invalid != "" {
			// The record is only kept to be reported as skipped: what made
			// it unusable (a NUL, bytes that are not UTF-8) must not also
			// make the database refuse the page, every retry alike.
			u = storable(u)
		}
		page.Users = append(page.Users, directory.StagedUser{ExternalID: u.ExternalID, Line: u.Line,
			Username: u.Username, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email, Active: u.Active,
			ManagerRef: u.ManagerRef, Attributes: u.Attributes, PasswordHash: hash,
			ContentHash: rules.ContentHash(rec, s.rc.cfg.PopulateOrgChart), Invalid: invalid})
		for _, name := range u.Groups {
			if !s.groups.Match(name) {
				continue
			}
			gid := name
			if s.src.FoldIDs {
				gid = strings.ToLower(name)
			}
			if !seenGroups[gid] {
				seenGroups[gid] = true
				page.Groups = append(page.Groups, directory.StagedGroup{ExternalID: gid, Name: name})
			}
			page.Members = append(page.Members, directory.StagedMember{GroupExternalID: gid, UserExternalID: u.ExternalID})
		}
	}
	return page, nil
}

// storable replaces, in an unusable record, what no text column can hold.
func storable(u provider.User) provider.User {
	u.ExternalID = rules.ReplaceControl(u.ExternalID, false)
	u.Username = rules.ReplaceControl(u.Username, false)
	u.FirstName = rules.ReplaceControl(u.FirstName, true)
	u.LastName = rules.ReplaceControl(u.LastName, true)
	u.Email = rules.ReplaceControl(u.Email, false)
	u.ManagerRef = rules.ReplaceControl(u.ManagerRef, false)
	if len(u.Attributes) > 0 {
		attrs := make(map[string]string, len(u.Attributes))
		for k, v := range u.Attributes {
			attrs[rules.ReplaceControl(k, false)] = rules.ReplaceControl(v, true)
		}
		u.Attributes = attrs
	}
	return u
}

// hash bcrypts a password; the default password is hashed once per call.
func (s *stager) hash(pw string, isDefault bool) (string, error) {
	if isDefault && s.defHash != "" {
		return s.defHash, nil
	}
	cost := s.a.BcryptCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	if isDefault {
		s.defHash = string(h)
	}
	return string(h), nil
}
