package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/provider"
)

// Incremental runs. A source that can read its changes (provider.DeltaSource:
// Entra ID, Okta) is read in full only when it must be, and as the changes since
// the last successful run otherwise:
//
//   - full when the directory has no sync state yet, when the state is
//     older than FullSyncInterval, when the profile's scope, mapping or
//     filters changed since (the state's fingerprint differs), and when the
//     provider refuses the saved state (expired token): the run falls back
//     by itself and starts over in full;
//   - delta otherwise.
//
// Either way the group graph is read too (every group's direct members),
// so that a later delta can tell who a change to a group moves.

// FullSyncInterval is how long a sync state serves delta runs: Graph keeps
// delta tokens for seven days, and a full run now and then also restores
// what was changed by hand in the directory beyond a user's own record.
const FullSyncInterval = 7 * 24 * time.Hour

// Keys of the provider state a run saves.
const (
	stateUsers  = "users"
	stateGroups = "groups"
)

// Fetch stages of a delta source, after stageUsers, stageGroups and
// stageMembers of fetch.go.
const (
	stageState    = "state"    // full: the users' state of now, before reading them
	stageGraph    = "graph"    // the group graph: all of it, or its changes
	stageAncestry = "ancestry" // the graph's closure
	stageChanges  = "changes"  // delta: the users changed since the saved state
	stageResolve  = "resolve"  // delta: who the graph's changes move
	stagePending  = "pending"  // delta: users moved into the scope, read by id
	stageDerive   = "derive"   // kept groups and memberships from the graph
)

// pendingPage is how many users a pending page reads by id: five $batch
// requests.
const pendingPage = 100

// fingerprinted is a provider block with settings a sync state depends on
// (where the provider is, who usersync signs in as, how users are named):
// Fingerprint returns them as entries of the fingerprint, each under a key
// of its own.
type fingerprinted interface {
	Fingerprint() map[string]any
}

// fingerprint identifies the profile settings a sync state is valid for:
// the source, the scope, the mapping and the filters. Anything else
// (schedule, safety limits, the name) may change without a full run.
func fingerprint(rc *runContext) string {
	cfg := rc.cfg
	groups := slices.Clone(cfg.Groups)
	slices.Sort(groups)
	v := map[string]any{
		"provider": cfg.Provider, "groups": groups, "groupSync": cfg.GroupSync,
		"attributeMap": cfg.AttributeMap, "orgChart": cfg.PopulateOrgChart,
	}
	if fp, ok := cfg.Block.(fingerprinted); ok {
		maps.Copy(v, fp.Fingerprint())
	}
	b, _ := json.Marshal(v) //nolint:errchkjson // maps and slices of plain values
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// runMode fixes, on the first fetch of a run, whether it reads the source
// in full or its changes; a resumed run keeps what its first fetch fixed.
func (a *Activities) runMode(ctx context.Context, rc *runContext) (directory.RunMode, error) {
	m, err := a.Store.RunMode(ctx, rc.run.ID)
	if err != nil || m.Mode != "" {
		return m, err
	}
	want := directory.RunMode{Mode: directory.ModeFull, Fingerprint: fingerprint(rc)}
	st, err := a.Store.SyncState(ctx, rc.run.DirectoryKey)
	switch {
	case errors.Is(err, directory.ErrNotFound):
	case err != nil:
		return m, err
	case st.Fingerprint != want.Fingerprint:
		a.Logger.Info("full sync: the profile's scope, mapping or filters changed since the last run", "run", rc.run.ID)
	case a.now().Sub(st.FullAt) >= FullSyncInterval:
		a.Logger.Info("full sync: the last full sync is older than the interval", "run", rc.run.ID, "lastFull", st.FullAt)
	case st.SourceState[stateUsers] == "" || st.SourceState[stateGroups] == "":
	default:
		want.Mode, want.BaseRunID = directory.ModeDelta, st.SnapshotRunID
	}
	return a.Store.SetRunMode(ctx, rc.run.ID, want)
}

// firstStage is where the fetch of a run starts; src is the source's
// change reading, nil when it has none.
func firstStage(src provider.DeltaSource, m directory.RunMode) fetchCursor {
	switch {
	case src == nil:
		return fetchCursor{Stage: stageUsers}
	case m.Mode == directory.ModeDelta, readsFullByChanges(src):
		return fetchCursor{Stage: stageGraph}
	}
	return fetchCursor{Stage: stageState}
}

// readsFullByChanges tells whether a full read of src is its initial
// change round (provider.FullByChanges): the graph first, then every user,
// keeping those in scope.
func readsFullByChanges(src provider.DeltaSource) bool {
	f, ok := src.(provider.FullByChanges)
	return ok && f.ReadsFullByChanges()
}

// missingSelectedGroups fails a run whose selected groups are not in the
// provider's group graph: deleted, or hidden from the credentials. Reading
// the scope without them would take all their members out of it and
// disable them in one run; the run stops before anything is planned.
func (s *stager) missingSelectedGroups(ctx context.Context, scope provider.Scope) error {
	missing, err := s.a.Store.MissingGroups(ctx, s.rc.run.ID, scope.GroupIDs)
	if err != nil || len(missing) == 0 {
		return err
	}
	return fmt.Errorf("the profile's selected group(s) %s are not among the provider's groups (deleted, or not visible to "+
		"these credentials): %w; the run stopped before changing anything, so nobody was disabled: remove them from "+
		"the profile's groups, or restore them or the app's access, and sync again", strings.Join(missing, ", "), provider.ErrNotFound)
}

// knownManagers settles the users of a change page whose manager the
// page did not tell (ManagerUnchanged): each keeps the manager the
// snapshot has for it, and one the snapshot does not have (it entered the
// scope with this change) is read again by id, which tells it. A user
// that is gone by then is left out: the next run reads its deletion.
func (s *stager) knownManagers(ctx context.Context, users []provider.User) ([]provider.User, error) {
	var unknown []string
	for _, u := range users {
		if u.ManagerUnchanged {
			unknown = append(unknown, u.ExternalID)
		}
	}
	if len(unknown) == 0 {
		return users, nil
	}
	known := map[string]string{}
	if s.mode.Mode == directory.ModeDelta {
		var err error
		if known, err = s.a.Store.StagedManagers(ctx, s.mode.BaseRunID, unknown); err != nil {
			return nil, err
		}
	}
	var reread []string
	for i := range users {
		if !users[i].ManagerUnchanged {
			continue
		}
		if ref, ok := known[users[i].ExternalID]; ok {
			users[i].ManagerRef, users[i].ManagerUnchanged = ref, false
			continue
		}
		reread = append(reread, users[i].ExternalID)
	}
	if len(reread) == 0 {
		return users, nil
	}
	var fresh []provider.User
	err := s.ahead.call(func() (err error) {
		fresh, err = s.delta.UsersByID(ctx, reread)
		return err
	})
	if err != nil {
		return nil, providerError{err}
	}
	byID := make(map[string]provider.User, len(fresh))
	for _, u := range fresh {
		if !u.ManagerUnchanged {
			byID[u.ExternalID] = u
		}
	}
	out := users[:0]
	for _, u := range users {
		if u.ManagerUnchanged {
			f, ok := byID[u.ExternalID]
			if !ok {
				continue
			}
			u = f
		}
		out = append(out, u)
	}
	return out, nil
}

// fetchDeltaPage reads one page of a delta source's own stages.
func (s *stager) fetchDeltaPage(ctx context.Context, cur fetchCursor, scope provider.Scope) (*directory.FetchedPage, *fetchCursor, error) {
	src := s.delta
	delta := s.mode.Mode == directory.ModeDelta
	page := &directory.FetchedPage{}
	switch cur.Stage {
	case stageState:
		var st string
		err := s.ahead.call(func() (err error) {
			st, err = src.LatestUserState(ctx)
			return err
		})
		if err != nil {
			return nil, nil, providerError{err}
		}
		page.SourceState = map[string]string{stateUsers: st}
		return page, &fetchCursor{Stage: stageUsers}, nil
	case stageGraph:
		from := ""
		if delta {
			from = s.mode.From[stateGroups]
		}
		graph := func(cursor string) func(context.Context) (provider.ChangePage[provider.GroupChange], error) {
			return func(ctx context.Context) (provider.ChangePage[provider.GroupChange], error) {
				return src.GroupChanges(ctx, from, cursor)
			}
		}
		p, err := readChanges(ctx, s, "graph\x00"+from+"\x00", cur.Cursor, graph, func(g provider.GroupChange) int { return 1 + len(g.Members) })
		if err != nil {
			return nil, nil, providerError{err}
		}
		for _, g := range p.Items {
			if g.Removed {
				page.GraphGroups = append(page.GraphGroups, directory.GraphGroup{ExternalID: g.Group.ID, Removed: true})
				continue
			}
			if g.HasProperties {
				page.GraphGroups = append(page.GraphGroups, directory.GraphGroup{ExternalID: g.Group.ID, Name: g.Group.Name,
					Kept: g.Eligible && s.groups.Match(g.Group.Name)})
			}
			for _, m := range g.Members {
				page.GraphEdges = append(page.GraphEdges, directory.GraphEdge{GroupExternalID: g.Group.ID, MemberExternalID: m.ID,
					MemberIsGroup: m.IsGroup, Removed: m.Removed})
			}
		}
		if p.Next != "" {
			return page, &fetchCursor{Stage: stageGraph, Cursor: p.Next}, nil
		}
		page.SourceState = map[string]string{stateGroups: p.State}
		return page, &fetchCursor{Stage: stageAncestry}, nil
	case stageAncestry:
		if err := s.a.Store.BuildAncestry(ctx, s.rc.run.ID); err != nil {
			return nil, nil, err
		}
		if err := s.missingSelectedGroups(ctx, scope); err != nil {
			return nil, nil, err
		}
		switch {
		case delta, readsFullByChanges(src):
			return page, &fetchCursor{Stage: stageChanges}, nil
		case s.groups.On():
			return page, &fetchCursor{Stage: stageDerive}, nil
		}
		return page, nil, nil
	case stageChanges:
		// A full run reads the initial round (from ""): every user.
		from := ""
		if delta {
			from = s.mode.From[stateUsers]
		}
		changes := func(cursor string) func(context.Context) (provider.ChangePage[provider.UserChange], error) {
			return func(ctx context.Context) (provider.ChangePage[provider.UserChange], error) {
				return src.UserChanges(ctx, from, cursor)
			}
		}
		p, err := readChanges(ctx, s, "changes\x00"+from+"\x00", cur.Cursor, changes, func(provider.UserChange) int { return 1 })
		if err != nil {
			return nil, nil, providerError{err}
		}
		var changed []provider.User
		for _, c := range p.Items {
			if c.Removed {
				// In a full run a user that is not staged has left anyway.
				if delta {
					page.Removals = append(page.Removals, directory.Removal{ExternalID: c.User.ExternalID, Reason: "deleted in the provider"})
				}
				continue
			}
			changed = append(changed, c.User)
		}
		// A change to a user outside the scope is none of this profile's.
		ids := make([]string, 0, len(changed))
		for _, u := range changed {
			ids = append(ids, u.ExternalID)
		}
		in, err := s.a.Store.InScope(ctx, s.rc.run.ID, scope.GroupIDs, ids)
		if err != nil {
			return nil, nil, err
		}
		changed = slices.DeleteFunc(changed, func(u provider.User) bool { return !in[u.ExternalID] })
		if changed, err = s.knownManagers(ctx, changed); err != nil {
			return nil, nil, err
		}
		staged, err := s.stage(ctx, changed)
		if err != nil {
			return nil, nil, err
		}
		// A round may list a user again after a later change: the later
		// record is the user now.
		staged.Latest = true
		staged.Removals = page.Removals
		if p.Next != "" {
			return staged, &fetchCursor{Stage: stageChanges, Cursor: p.Next}, nil
		}
		staged.SourceState = map[string]string{stateUsers: p.State}
		switch {
		case delta:
			return staged, &fetchCursor{Stage: stageResolve}, nil
		case s.groups.On():
			return staged, &fetchCursor{Stage: stageDerive}, nil
		}
		return staged, nil, nil
	case stageResolve:
		if err := s.a.Store.ResolveDelta(ctx, s.rc.run.ID, directory.ResolveInput{Selected: scope.GroupIDs, GroupSync: s.groups.On()}); err != nil {
			return nil, nil, err
		}
		return page, &fetchCursor{Stage: stagePending}, nil
	case stagePending:
		ids, err := s.a.Store.NextPending(ctx, s.rc.run.ID, cur.Cursor, pendingPage)
		if err != nil {
			return nil, nil, err
		}
		if len(ids) > 0 {
			var users []provider.User
			err := s.ahead.call(func() (err error) {
				users, err = src.UsersByID(ctx, ids)
				return err
			})
			if err != nil {
				return nil, nil, providerError{err}
			}
			if users, err = s.knownManagers(ctx, users); err != nil {
				return nil, nil, err
			}
			if page, err = s.stage(ctx, users); err != nil {
				return nil, nil, err
			}
		}
		if len(ids) == pendingPage {
			return page, &fetchCursor{Stage: stagePending, Cursor: ids[len(ids)-1]}, nil
		}
		if s.groups.On() {
			return page, &fetchCursor{Stage: stageDerive}, nil
		}
		return page, nil, nil
	case stageDerive:
		if err := s.a.Store.DeriveGroups(ctx, s.rc.run.ID); err != nil {
			return nil, nil, err
		}
		return page, nil, nil
	}
	return nil, nil, fmt.Errorf("bad fetch stage %q", cur.Stage)
}

// StageEntries is how many entries of a change listing (a user, a group, a
// membership each) one staging transaction takes when the Deps do not say.
// Graph sizes its delta pages itself, about 200 entries, so a page per
// transaction cost a 1M tenant's fetch about 5,000 commits, each with its
// in-scope query and cursor write.
const StageEntries = 1000

// stageWindow bounds how long a staging transaction's pages are read, so
// that a slow provider still shows progress (the fetched count, the
// cursor) every few seconds.
const stageWindow = 2 * time.Second

// readChanges reads pages of one change listing from cursor on, each next
// page read ahead while the last is taken, until they hold the stager's
// entries (weight counts them), the listing ends, or stageWindow has
// passed. It returns their items as one page: Next is where the listing
// goes on, State its state when it ended.
//
// What is staged is the same as page by page: a batch ends on a page
// boundary, its cursor is the last page's next link, and a crash before
// its commit reads those pages again from the cursor committed before, as
// it would read one. A page that fails after others were read ends the
// batch without its error: those are staged, and the next call reads the
// failed page again and meets its error there, as a lone page would (an
// expired state, a throttled request and a reset then take their usual
// paths).
func readChanges[T any](ctx context.Context, s *stager, key string, cursor provider.Cursor,
	read func(provider.Cursor) func(context.Context) (provider.ChangePage[T], error), weight func(T) int) (provider.ChangePage[T], error) {
	limit := s.a.StageEntries
	if limit <= 0 {
		limit = StageEntries
	}
	var batch provider.ChangePage[T]
	entries, pages, until := 0, 0, s.a.now().Add(stageWindow)
	for {
		p, err := readPage(ctx, s.ahead, key+cursor, read(cursor))
		if err != nil {
			if pages == 0 || ctx.Err() != nil {
				return batch, err
			}
			return batch, nil
		}
		pages++
		if p.Next != "" {
			readAheadPage(s.ahead, key+p.Next, read(p.Next))
		}
		batch.Items = append(batch.Items, p.Items...)
		for _, it := range p.Items {
			entries += weight(it)
		}
		batch.Next, batch.State = p.Next, p.State
		if p.Next == "" || entries >= limit || !s.a.now().Before(until) {
			return batch, nil
		}
		cursor = p.Next
	}
}

// commit makes a succeeded run of a delta source the base of the next
// delta run.
func (a *Activities) commit(ctx context.Context, runID string) error {
	m, err := a.Store.RunMode(ctx, runID)
	if err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	if m.Mode == "" {
		return nil
	}
	if err := a.Store.CommitRun(ctx, runID); err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	return nil
}
