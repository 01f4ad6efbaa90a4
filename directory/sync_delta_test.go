package directory_test

import (
	"sort"
	"testing"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
)

// Delta runs: one test per rule of the delta plan and of the graph (see
// directory/sync_plan.go and sync_graph.go). Each builds a full run on a
// small graph, commits it as the snapshot, and then checks what a delta
// run on top of it plans and leaves.

// graphRun is one run's staging of a source with a group graph.
type graphRun struct {
	users  []directory.StagedUser
	groups []directory.GraphGroup
	edges  []directory.GraphEdge
	gone   []directory.Removal
}

func (e *engine) runMode(mode string) {
	e.t.Helper()
	m := directory.RunMode{Mode: mode}
	if mode == directory.ModeDelta {
		st, err := e.s.SyncState(e.ctx, e.dir)
		if err != nil {
			e.t.Fatal(err)
		}
		m.BaseRunID = st.SnapshotRunID
	}
	if _, err := e.s.SetRunMode(e.ctx, e.runID, m); err != nil {
		e.t.Fatal(err)
	}
}

// syncGraph runs a full or delta run of r with selected groups, group
// sync on and the org chart on, commits it, and returns its counts.
func (e *engine) syncGraph(mode string, r graphRun, selected ...string) directory.RunCounts {
	e.t.Helper()
	e.newRun()
	e.runMode(mode)
	page := &directory.FetchedPage{GraphGroups: r.groups, GraphEdges: r.edges, Removals: r.gone,
		SourceState: map[string]string{"users": "token-" + e.runID}}
	if _, err := e.s.SaveFetchedPage(e.ctx, e.runID, page, "graph", false); err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.BuildAncestry(e.ctx, e.runID); err != nil {
		e.t.Fatal(err)
	}
	var users []directory.StagedUser
	if mode == directory.ModeDelta {
		ids := make([]string, 0, len(r.users))
		for _, u := range r.users {
			ids = append(ids, u.ExternalID)
		}
		in, err := e.s.InScope(e.ctx, e.runID, selected, ids)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, u := range r.users {
			if in[u.ExternalID] {
				users = append(users, u)
			}
		}
	} else {
		users = r.users
	}
	e.stage(false, users...)
	if mode == directory.ModeDelta {
		if err := e.s.ResolveDelta(e.ctx, e.runID, directory.ResolveInput{Selected: selected, GroupSync: true}); err != nil {
			e.t.Fatal(err)
		}
		pending, err := e.s.NextPending(e.ctx, e.runID, "", 100)
		if err != nil {
			e.t.Fatal(err)
		}
		var more []directory.StagedUser
		for _, id := range pending {
			for _, u := range e.source {
				if u.ExternalID == id {
					more = append(more, u)
				}
			}
		}
		e.stage(false, more...)
	}
	if err := e.s.DeriveGroups(e.ctx, e.runID); err != nil {
		e.t.Fatal(err)
	}
	e.stage(true)
	if _, err := e.s.Plan(e.ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir}); err != nil {
		e.t.Fatal(err)
	}
	var c directory.RunCounts
	for done := false; !done; {
		var err error
		if done, c, err = e.s.ApplyBatch(e.ctx, e.runID, directory.ApplyInput{DirectoryKey: e.dir, GroupSync: true, OrgChart: true, BatchSize: 2}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.s.CommitRun(e.ctx, e.runID); err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.DropRunData(e.ctx, e.runID); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// view is the directory as the tests compare it: per external id, the
// status, username, manager's external id and sorted group names.
type view map[string]string

func (e *engine) view() view {
	e.t.Helper()
	users := e.usersByExternalID()
	byID := map[string]string{}
	for ext, u := range users {
		byID[u.ID] = ext
	}
	out := view{}
	for ext, u := range users {
		mgr := ""
		if u.ManagerID != nil {
			mgr = byID[*u.ManagerID]
		}
		groups := append([]string(nil), u.Groups...)
		sort.Strings(groups)
		out[ext] = u.Status + " " + u.Username + " mgr=" + mgr + " groups=" + join(groups)
	}
	return out
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// graphFixture: root R holds team A (users a1, a2) and team B (b1);
// C is outside the scope (c1). Group sync keeps every group.
func graphFixture() graphRun {
	return graphRun{
		users: []directory.StagedUser{staged("a1", "ann", "A"), staged("a2", "abe", "A"), staged("b1", "bob", "B"), staged("c1", "cat", "C")},
		groups: []directory.GraphGroup{{ExternalID: "R", Name: "Root", Kept: true}, {ExternalID: "A", Name: "Team A", Kept: true},
			{ExternalID: "B", Name: "Team B", Kept: true}, {ExternalID: "C", Name: "Outside", Kept: true}},
		edges: []directory.GraphEdge{{GroupExternalID: "R", MemberExternalID: "A", MemberIsGroup: true},
			{GroupExternalID: "R", MemberExternalID: "B", MemberIsGroup: true},
			{GroupExternalID: "A", MemberExternalID: "a1"}, {GroupExternalID: "A", MemberExternalID: "a2"},
			{GroupExternalID: "B", MemberExternalID: "b1"}, {GroupExternalID: "C", MemberExternalID: "c1"}},
	}
}

// inScope is the full source's users for a fixture: what a full run
// stages (the provider lists the members of the selected group).
func inScope(r graphRun, ids ...string) graphRun {
	keep := map[string]bool{}
	for _, id := range ids {
		keep[id] = true
	}
	out := r
	out.users = nil
	for _, u := range r.users {
		if keep[u.ExternalID] {
			out.users = append(out.users, u)
		}
	}
	return out
}

func TestDeltaGraphFullRunDerivesScopeAndMemberships(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		f := graphFixture()
		c := e.syncGraph(directory.ModeFull, inScope(f, "a1", "a2", "b1"), "R")
		v := e.view()
		if c.Created != 3 || v["a1"] != "active ann mgr= groups=Root,Team A" || v["b1"] != "active bob mgr= groups=Root,Team B" {
			t.Fatalf("counts %+v view %v", c, v)
		}
		st, err := e.s.SyncState(e.ctx, e.dir)
		if err != nil || st.SnapshotRunID != e.runID || st.SourceState["users"] != "token-"+e.runID {
			t.Fatalf("sync state %+v %v", st, err)
		}
	})
}

// A delta with nothing in it changes nothing and disables nobody, though
// nobody is staged.
func TestDeltaNotStagedIsNotDeparted(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		f := graphFixture()
		e.syncGraph(directory.ModeFull, inScope(f, "a1", "a2", "b1"), "R")
		before := e.view()
		c := e.syncGraph(directory.ModeDelta, graphRun{}, "R")
		if c.Disabled+c.Created+c.Updated+c.MembershipsAdded+c.MembershipsRemoved != 0 {
			t.Fatalf("empty delta counts %+v", c)
		}
		if after := e.view(); !equalViews(before, after) {
			t.Fatalf("before %v after %v", before, after)
		}
	})
}

func equalViews(a, b view) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A changed user is updated; a removal (deleted in the provider) disables.
func TestDeltaChangeAndRemoval(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		f := graphFixture()
		e.syncGraph(directory.ModeFull, inScope(f, "a1", "a2", "b1"), "R")
		ann := staged("a1", "ann", "Renamed")
		c := e.syncGraph(directory.ModeDelta, graphRun{users: []directory.StagedUser{ann},
			gone:  []directory.Removal{{ExternalID: "a2", Reason: "deleted"}},
			edges: []directory.GraphEdge{{GroupExternalID: "A", MemberExternalID: "a2", Removed: true}}}, "R")
		u := e.usersByExternalID()
		if c.Updated != 1 || c.Disabled != 1 || u["a1"].LastName != "Renamed" || u["a2"].Status != directory.StatusDisabled ||
			u["b1"].Status != directory.StatusActive {
			t.Fatalf("counts %+v users %+v", c, u)
		}
	})
}

// A user moved out of every selected group leaves the scope: disabled.
// One moved in, unchanged otherwise, is read by id and created.
func TestDeltaScopeExitAndEntry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		f := graphFixture()
		e.source = f.users
		e.syncGraph(directory.ModeFull, inScope(f, "a1", "a2", "b1"), "R")
		c := e.syncGraph(directory.ModeDelta, graphRun{edges: []directory.GraphEdge{
			{GroupExternalID: "B", MemberExternalID: "b1", Removed: true}, {GroupExternalID: "C", MemberExternalID: "b1"},
			{GroupExternalID: "C", MemberExternalID: "c1", Removed: true}, {GroupExternalID: "A", MemberExternalID: "c1"},
		}}, "R")
		v := e.view()
		if c.Disabled != 1 || c.Created != 1 || v["b1"] != "disabled bob mgr= groups=Root,Team B" ||
			v["c1"] != "active cat mgr= groups=Root,Team A" {
			t.Fatalf("counts %+v view %v", c, v)
		}
	})
}

// A nested group moved out of the root takes its users out of the scope;
// a group renamed out of the filter loses every member, though none of
// them changed.
func TestDeltaGroupLevelChanges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		f := graphFixture()
		e.syncGraph(directory.ModeFull, inScope(f, "a1", "a2", "b1"), "R")
		c := e.syncGraph(directory.ModeDelta, graphRun{
			groups: []directory.GraphGroup{{ExternalID: "A", Name: "Archive A", Kept: false}},
			edges:  []directory.GraphEdge{{GroupExternalID: "R", MemberExternalID: "B", MemberIsGroup: true, Removed: true}},
		}, "R")
		v := e.view()
		if c.Disabled != 1 || v["a1"] != "active ann mgr= groups=Root" || v["a2"] != "active abe mgr= groups=Root" ||
			v["b1"] != "disabled bob mgr= groups=Root,Team B" {
			t.Fatalf("counts %+v view %v", c, v)
		}
	})
}

// Two users of the source share a username: both conflict. When one of
// them is renamed, the other, unchanged, is created, as a full run would.
func TestDeltaUsernameNeighbours(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		f := graphFixture()
		f.users[1] = staged("a2", "ann", "Twin")
		c := e.syncGraph(directory.ModeFull, inScope(f, "a1", "a2", "b1"), "R")
		if c.Conflicts != 2 || c.Created != 1 {
			t.Fatalf("full counts %+v", c)
		}
		c = e.syncGraph(directory.ModeDelta, graphRun{users: []directory.StagedUser{staged("a2", "abe", "Twin")}}, "R")
		v := e.view()
		if c.Created != 2 || c.Conflicts != 0 || v["a1"] != "active ann mgr= groups=Root,Team A" {
			t.Fatalf("delta counts %+v view %v", c, v)
		}
	})
}

// A user whose manager is not in the directory gets it once the manager
// joins, though the user did not change.
func TestDeltaManagerReference(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		f := graphFixture()
		f.users[0].ManagerRef = "c1"
		e.source = f.users
		c := e.syncGraph(directory.ModeFull, inScope(f, "a1", "a2", "b1"), "R")
		if c.ManagersUnresolved != 1 {
			t.Fatalf("full counts %+v", c)
		}
		c = e.syncGraph(directory.ModeDelta, graphRun{edges: []directory.GraphEdge{{GroupExternalID: "B", MemberExternalID: "c1"}}}, "R")
		if v := e.view(); c.Created != 1 || c.ManagersLinked != 1 || v["a1"] != "active ann mgr=c1 groups=Root,Team A" {
			t.Fatalf("counts %+v view %v", c, v)
		}
	})
}

// The directory drifted (a user disabled by hand): the delta re-enables
// it as a full run would; a local account moved into the directory that
// the source lacks is disabled.
func TestDeltaDirectoryDrift(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		f := graphFixture()
		e.syncGraph(directory.ModeFull, inScope(f, "a1", "a2", "b1"), "R")
		u := e.usersByExternalID()
		if err := e.s.SetUserStatus(e.ctx, u["b1"].ID, directory.StatusDisabled, e.s.Now()); err != nil {
			t.Fatal(err)
		}
		stray := &directory.User{Username: "stray", FirstName: "S", LastName: "T", Email: "stray@example.com", DirectoryKey: e.dir}
		if err := e.s.CreateUser(e.ctx, stray); err != nil {
			t.Fatal(err)
		}
		c := e.syncGraph(directory.ModeDelta, graphRun{}, "R")
		got, err := e.s.GetUser(e.ctx, stray.ID)
		if err != nil || c.Reenabled != 1 || c.Disabled != 1 || got.Status != directory.StatusDisabled ||
			e.usersByExternalID()["b1"].Status != directory.StatusActive {
			t.Fatalf("counts %+v stray %+v %v", c, got, err)
		}
	})
}

// After a delta run the snapshot is the source as a full run would stage
// it: the next delta builds on the folded changes.
func TestDeltaCommitFoldsIntoTheSnapshot(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		f := graphFixture()
		e.source = f.users
		e.syncGraph(directory.ModeFull, inScope(f, "a1", "a2", "b1"), "R")
		snap := e.runID
		e.syncGraph(directory.ModeDelta, graphRun{edges: []directory.GraphEdge{{GroupExternalID: "B", MemberExternalID: "c1"}},
			gone: []directory.Removal{{ExternalID: "a2"}}}, "R")
		st, err := e.s.SyncState(e.ctx, e.dir)
		if err != nil || st.SnapshotRunID != snap || st.LastRunID != e.runID {
			t.Fatalf("state %+v %v", st, err)
		}
		// c1 is in the snapshot now: moving it out again is a scope exit.
		c := e.syncGraph(directory.ModeDelta, graphRun{edges: []directory.GraphEdge{{GroupExternalID: "B", MemberExternalID: "c1", Removed: true}}}, "R")
		v := e.view()
		if c.Disabled != 1 || v["c1"] != "disabled cat mgr= groups=Outside,Root,Team B" || v["a2"] != "disabled abe mgr= groups=Root,Team A" {
			t.Fatalf("counts %+v view %v", c, v)
		}
		if err := e.s.ForgetSyncState(e.ctx, e.dir); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.SyncState(e.ctx, e.dir); err == nil {
			t.Fatal("state survived ForgetSyncState")
		}
	})
}

// A selected group that the run's graph no longer has is missing, in a
// full run (never listed) and in a delta run (removed since the
// snapshot); a snapshot's staged managers are what a change that does not
// tell a manager keeps.
func TestDeltaMissingGroupsAndStagedManagers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		f := graphFixture()
		f.users[1].ManagerRef = "a1"
		e.syncGraph(directory.ModeFull, inScope(f, "a1", "a2", "b1"), "R")
		full := e.runID
		missing, err := e.s.MissingGroups(e.ctx, full, []string{"R", "nope", "B", "nope"})
		if err != nil || len(missing) != 1 || missing[0] != "nope" {
			t.Fatalf("full run: missing %v, %v", missing, err)
		}
		refs, err := e.s.StagedManagers(e.ctx, full, []string{"a1", "a2", "zz"})
		if err != nil || len(refs) != 2 || refs["a1"] != "" || refs["a2"] != "a1" {
			t.Fatalf("staged managers %v, %v", refs, err)
		}

		// A delta run that removes team B: B is missing, A still there
		// (from the snapshot), and a group the run adds is there.
		e.newRun()
		e.runMode(directory.ModeDelta)
		page := &directory.FetchedPage{GraphGroups: []directory.GraphGroup{{ExternalID: "B", Removed: true},
			{ExternalID: "D", Name: "New", Kept: true}}}
		if _, err := e.s.SaveFetchedPage(e.ctx, e.runID, page, "graph", false); err != nil {
			t.Fatal(err)
		}
		missing, err = e.s.MissingGroups(e.ctx, e.runID, []string{"A", "B", "D"})
		if err != nil || len(missing) != 1 || missing[0] != "B" {
			t.Fatalf("delta run: missing %v, %v", missing, err)
		}
	})
}
