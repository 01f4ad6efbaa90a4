package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/rules"
)

// source is a provider.Source plus what a run needs to know of it.
type source struct {
	provider.Source
	// duplicates holds, per CSV line, why that row's username is not usable.
	duplicates map[int]string
	// defaultPassword is the CSV profile's default password.
	defaultPassword string
	// passwords tells whether the source carries passwords (CSV).
	passwords bool
	// foldIDs lowercases external ids and manager references (CSV, whose
	// identity is the username, unique case-insensitively).
	foldIDs bool
}

// openSource opens the run's provider and, for a CSV, validates the whole
// file first: a broken file fails the run before anything is staged.
func (a *Activities) openSource(ctx context.Context, rc *runContext) (*source, error) {
	switch rc.profile.Provider {
	case profile.ProviderCSV:
		c := rc.cfg.CSV
		if c == nil {
			return nil, configError("profile %q has no csv block", rc.profile.Name)
		}
		src, err := csvConfig(rc.cfg, rc.run.SourceDocumentID, a.PageSize).Open(a.Store)
		if err != nil {
			return nil, configError("profile %q: %v", rc.profile.Name, err)
		}
		rep, err := src.Validate(ctx)
		if err != nil {
			return nil, classify(err)
		}
		return &source{Source: src, duplicates: rep.DuplicateLines(), defaultPassword: src.DefaultPassword(),
			passwords: true, foldIDs: true}, nil
	}
	return nil, configError("provider %q is not supported yet", rc.profile.Provider)
}

// csvConfig is the CSV source's configuration for a profile. A CSV's
// provider attributes are its columns, so the profile's attributeMap adds to
// the columnMap (which wins where both name a column).
func csvConfig(cfg *profile.Config, documentID string, pageSize int) csv.Config {
	c := cfg.CSV
	cols := make(map[string]string, len(c.ColumnMap)+len(cfg.AttributeMap))
	for k, v := range cfg.AttributeMap {
		cols[k] = v
	}
	for k, v := range c.ColumnMap {
		cols[k] = v
	}
	return csv.Config{DocumentID: documentID, UserMatchField: c.UserMatchField, ManagerField: c.ManagerField,
		DefaultPassword: c.DefaultPassword, ColumnMap: cols, Delimiter: c.Delimiter, GroupsField: c.GroupsField,
		PageSize: pageSize}
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
	src, err := a.openSource(ctx, rc)
	if err != nil {
		return FetchResult{}, err
	}
	groups, err := rules.NewGroupFilter(rc.cfg.GroupSync.Mode, rc.cfg.GroupSync.Pattern)
	if err != nil {
		return FetchResult{}, configError("profile %q: %v", rc.profile.Name, err)
	}
	st := &stager{a: a, rc: rc, src: src, groups: groups}
	scope := provider.Scope{GroupIDs: rc.cfg.Groups}
	cursor := rc.run.FetchCursor
	fetched := rc.run.Counts.Fetched
	deadline := timeNow().Add(a.Budget)
	restarted := false
	for {
		page, err := src.Users(ctx, scope, cursor)
		if errors.Is(err, provider.ErrCursorExpired) && !restarted {
			// The provider forgot our place: start over on a clean slate.
			a.Logger.Warn("provider cursor expired, restarting fetch", "run", rc.run.ID)
			if err := a.Store.ResetFetch(ctx, rc.run.ID); err != nil {
				return FetchResult{}, err
			}
			cursor, fetched, restarted = "", 0, true
			continue
		}
		if err != nil {
			return FetchResult{Fetched: fetched}, classify(fmt.Errorf("fetch users: %w", err))
		}
		staged, err := st.stage(ctx, page.Items)
		if err != nil {
			return FetchResult{Fetched: fetched}, err
		}
		done := page.Next == ""
		fetched, err = a.Store.SaveFetchedPage(ctx, rc.run.ID, staged, page.Next, done)
		if err != nil {
			return FetchResult{Fetched: fetched}, err
		}
		heartbeat(ctx, page.Next, fetched)
		if done {
			return FetchResult{Done: true, Fetched: fetched}, nil
		}
		cursor = page.Next
		if err := sleep(ctx, a.PageDelay); err != nil {
			return FetchResult{Fetched: fetched}, err
		}
		if timeNow().After(deadline) {
			return FetchResult{Fetched: fetched}, nil
		}
	}
}

// stager turns provider users into staged rows: the rules on required
// fields, duplicates and passwords, group sync's filter, the content hash.
type stager struct {
	a       *Activities
	rc      *runContext
	src     *source
	groups  *rules.GroupFilter
	defHash string // bcrypt of the default password, made once per call
}

func (s *stager) stage(ctx context.Context, users []provider.User) (*directory.FetchedPage, error) {
	page := &directory.FetchedPage{Users: make([]directory.StagedUser, 0, len(users))}
	ids := make([]string, 0, len(users))
	for i := range users {
		u := &users[i]
		if s.src.foldIDs {
			u.ExternalID = strings.ToLower(u.ExternalID)
			u.ManagerRef = strings.ToLower(strings.TrimSpace(u.ManagerRef))
		}
		ids = append(ids, u.ExternalID)
	}
	// Passwords are hashed only for users about to be created: sync never
	// overwrites a password, and bcrypt is slow by design.
	var existing map[string]bool
	if s.src.passwords {
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
		if d, ok := s.src.duplicates[u.Line]; ok && u.Line > 0 {
			invalid = d
		}
		var hash string
		if s.src.passwords && invalid == "" {
			pw := u.Password
			if pw == "" {
				pw = s.src.defaultPassword
			}
			switch {
			case pw == "":
				invalid = "no password and no default password"
			case !existing[u.ExternalID]:
				h, err := s.hash(pw, pw == s.src.defaultPassword && u.Password == "")
				if err != nil {
					return nil, err
				}
				hash = h
			}
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
			if s.src.foldIDs {
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
