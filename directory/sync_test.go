package directory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/rules"
)

// Engine tests: the set-based plan and apply with staged rows written
// directly, for the rules a CSV cannot express (a stable id apart from the
// username) and for the replay guarantees.

type engine struct {
	t     *testing.T
	ctx   context.Context
	s     *directory.SQLStore
	dir   string
	runID string
	// source is every user of the provider, for reads by id (delta).
	source []directory.StagedUser
}

func newEngine(t *testing.T, db *directory.DB) *engine {
	s := directory.NewSQLStore(db)
	e := &engine{t: t, ctx: context.Background(), s: s, dir: "p-" + uuid.NewString()[:8]}
	p := &directory.Profile{ID: uuid.NewString(), Name: "Engine " + e.dir, Provider: "azure", Enabled: true,
		DirectoryKey: e.dir, Config: []byte(`{}`)}
	if err := s.CreateProfile(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *engine) newRun() {
	e.runID = uuid.NewString()
	if err := e.s.CreateRun(e.ctx, &directory.Run{ID: e.runID, ProfileID: "x", ProfileName: "x", Provider: "azure",
		DirectoryKey: e.dir, Trigger: "manual", Status: directory.RunRunning, Phase: directory.PhaseFetch,
		StartedAt: e.s.Now()}); err != nil {
		e.t.Fatal(err)
	}
}

func staged(id, username, last string) directory.StagedUser {
	r := rules.Record{Username: username, FirstName: "F", LastName: last, Email: username + "@example.com"}
	return directory.StagedUser{ExternalID: id, Username: username, FirstName: "F", LastName: last,
		Email: r.Email, Active: true, ContentHash: rules.ContentHash(r, false)}
}

func (e *engine) stage(done bool, users ...directory.StagedUser) int {
	n, err := e.s.SaveFetchedPage(e.ctx, e.runID, &directory.FetchedPage{Users: users}, "next", done)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *engine) planApply() (*directory.PlanOutcome, directory.RunCounts) {
	out, err := e.s.Plan(e.ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir})
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		done, c, err := e.s.ApplyBatch(e.ctx, e.runID, directory.ApplyInput{DirectoryKey: e.dir, BatchSize: 1})
		if err != nil {
			e.t.Fatal(err)
		}
		if done {
			return out, c
		}
	}
	e.t.Fatal("apply does not end")
	return nil, directory.RunCounts{}
}

func (e *engine) usersByExternalID() map[string]directory.User {
	p, err := e.s.ListUsers(e.ctx, directory.UserFilter{Directory: e.dir}, directory.ListOptions{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]directory.User{}
	for _, u := range p.Items {
		if u.ExternalID != nil {
			out[*u.ExternalID] = u
		}
	}
	return out
}

func TestEngineRenameKeepsTheAccount(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		e.newRun()
		e.stage(true, staged("obj-1", "jdoe", "Doe"))
		e.planApply()
		id := e.usersByExternalID()["obj-1"].ID
		e.newRun()
		e.stage(true, staged("obj-1", "JSmith", "Smith"))
		_, c := e.planApply()
		u := e.usersByExternalID()
		if len(u) != 1 || u["obj-1"].ID != id || u["obj-1"].Username != "JSmith" || c.Updated != 1 {
			t.Fatalf("users %+v counts %+v", u, c)
		}
	})
}

func TestEngineReplayedPagesAndBatchesChangeNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		e.newRun()
		page := []directory.StagedUser{staged("a", "ann", "A"), staged("b", "ben", "B")}
		if n := e.stage(false, page...); n != 2 {
			t.Fatalf("fetched %d", n)
		}
		// The same page again, as after a crash before the heartbeat.
		if n := e.stage(false, page...); n != 2 {
			t.Fatalf("a replayed page counted again: %d", n)
		}
		e.stage(true, staged("c", "cat", "C"))
		_, c := e.planApply()
		if c.Created != 3 || c.Fetched != 3 {
			t.Fatalf("counts %+v", c)
		}
		// Apply called again after it finished does nothing.
		done, c2, err := e.s.ApplyBatch(e.ctx, e.runID, directory.ApplyInput{DirectoryKey: e.dir})
		if err != nil || !done || c2 != c {
			t.Fatalf("apply after done: %v %v %+v", done, err, c2)
		}
		// Plan called again once apply has begun keeps the plan.
		out, err := e.s.Plan(e.ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir})
		if err != nil || out.Counts.Created != 3 {
			t.Fatalf("re-plan %+v %v", out, err)
		}
		if len(e.usersByExternalID()) != 3 {
			t.Fatal("duplicate users")
		}
	})
}

func TestEngineEmptySourceTripsTheGuard(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		e.newRun()
		e.stage(true, staged("a", "ann", "A"), staged("b", "ben", "B"))
		e.planApply()
		e.newRun()
		e.stage(true)
		out, err := e.s.Plan(e.ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir})
		if err != nil {
			t.Fatal(err)
		}
		if out.Counts.Fetched != 0 || out.Counts.Disabled != 2 || out.ActiveInDirectory != 2 {
			t.Fatalf("plan %+v", out)
		}
		g := rules.Guard(out.Counts.Disabled, out.ActiveInDirectory, out.Counts.Fetched, rules.Limits{MaxDisables: 500, MaxDisablePercent: 20})
		if g == "" {
			t.Fatal("an empty source did not trip the guard")
		}
	})
}

func TestEngineResetFetchClearsStaging(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		e.newRun()
		e.stage(false, staged("a", "ann", "A"))
		if err := e.s.ResetFetch(e.ctx, e.runID); err != nil {
			t.Fatal(err)
		}
		run, err := e.s.GetRun(e.ctx, e.runID)
		if err != nil || run.FetchCursor != "" || run.FetchDone || run.Counts.Fetched != 0 {
			t.Fatalf("run after reset %+v %v", run, err)
		}
		if n := e.stage(true, staged("b", "ben", "B")); n != 1 {
			t.Fatalf("fetched %d after reset", n)
		}
	})
}

func TestEngineAdoptsASwitchedLocalAccount(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		// A local account moved into the profile's directory keeps its id
		// and gains its identity on the next sync.
		u := &directory.User{Username: "Ann", FirstName: "Ann", LastName: "Old", Email: "ann@example.com", DirectoryKey: e.dir}
		if err := e.s.CreateUser(e.ctx, u); err != nil {
			t.Fatal(err)
		}
		e.newRun()
		e.stage(true, staged("obj-a", "ann", "New"))
		_, c := e.planApply()
		got := e.usersByExternalID()["obj-a"]
		if got.ID != u.ID || got.LastName != "New" || c.Updated != 1 || c.Created != 0 {
			t.Fatalf("user %+v counts %+v", got, c)
		}
	})
}

func TestEngineManagerByIDOrUsername(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		e.newRun()
		boss, byID, byLogin, nobody := staged("00b", "Boss.Login", "B"), staged("01", "ann", "A"), staged("02", "ben", "B"), staged("03", "cat", "C")
		byID.ManagerRef = "00b"           // an id
		byLogin.ManagerRef = "boss.LOGIN" // a login, in another case
		nobody.ManagerRef = "ghost"
		e.stage(true, boss, byID, byLogin, nobody)
		out, err := e.s.Plan(e.ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir})
		if err != nil || out.Counts.Created != 4 {
			t.Fatalf("plan %+v %v", out, err)
		}
		var c directory.RunCounts
		for done := false; !done; {
			if done, c, err = e.s.ApplyBatch(e.ctx, e.runID, directory.ApplyInput{DirectoryKey: e.dir, OrgChart: true, BatchSize: 2}); err != nil {
				t.Fatal(err)
			}
		}
		u := e.usersByExternalID()
		if c.ManagersLinked != 2 || c.ManagersUnresolved != 1 ||
			u["01"].ManagerID == nil || *u["01"].ManagerID != u["00b"].ID ||
			u["02"].ManagerID == nil || *u["02"].ManagerID != u["00b"].ID || u["03"].ManagerID != nil {
			t.Fatalf("counts %+v users %+v", c, u)
		}
	})
}

// A first sync writes each new user once: a manager named by id, whether
// already in the directory or created by the same run in a later batch,
// is set by the insert itself, and the ledger still says who was linked
// to whom. A manager whose username was taken between plan and apply is
// not created, and the link to it is undone and reported.
func TestEngineFirstSyncSetsManagersOnCreate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		e.newRun()
		old := staged("00-old", "old.boss", "O")
		e.stage(true, old)
		e.planApply()

		e.newRun()
		// Batches of one, in external id order: the subordinates come
		// before their managers.
		a1, a2, a3 := staged("a1", "ann", "A"), staged("a2", "ben", "B"), staged("a3", "cat", "C")
		boss, taken := staged("zz-boss", "boss", "Z"), staged("zz-taken", "taken", "T")
		a1.ManagerRef, a2.ManagerRef, a3.ManagerRef, boss.ManagerRef = "zz-boss", "00-old", "zz-taken", "00-old"
		e.stage(true, old, a1, a2, a3, boss, taken)
		if _, err := e.s.Plan(e.ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir}); err != nil {
			t.Fatal(err)
		}
		// Meanwhile a local account takes the username of one manager.
		if err := e.s.CreateUser(e.ctx, &directory.User{ID: uuid.NewString(), Username: "TAKEN", FirstName: "L", LastName: "L",
			Email: "l@example.com", Status: directory.StatusActive, DirectoryKey: directory.LocalDirectory,
			CreatedAt: e.s.Now(), UpdatedAt: e.s.Now()}); err != nil {
			t.Fatal(err)
		}
		var c directory.RunCounts
		var err error
		for done := false; !done; {
			if done, c, err = e.s.ApplyBatch(e.ctx, e.runID, directory.ApplyInput{DirectoryKey: e.dir, OrgChart: true, BatchSize: 1}); err != nil {
				t.Fatal(err)
			}
		}
		u := e.usersByExternalID()
		mgr := func(id string) string {
			if u[id].ManagerID == nil {
				return ""
			}
			return *u[id].ManagerID
		}
		if mgr("a1") != u["zz-boss"].ID || mgr("a2") != u["00-old"].ID || mgr("zz-boss") != u["00-old"].ID || mgr("a3") != "" {
			t.Fatalf("managers: %+v", u)
		}
		if _, ok := u["zz-taken"]; ok || c.Created != 4 || c.Conflicts != 1 || c.ManagersUnresolved != 1 {
			t.Fatalf("counts %+v users %+v", c, u)
		}
		for _, id := range []string{"a1", "a2", "zz-boss"} {
			if !u[id].UpdatedAt.Equal(u[id].CreatedAt) {
				t.Fatalf("%s was written again after its creation: %+v", id, u[id])
			}
		}
		p, err := e.s.ListChanges(e.ctx, e.runID, "manager_linked", directory.ListOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		linked := map[string]string{}
		for _, ch := range p.Items {
			linked[ch.Username] = ch.Changes["manager"].To
		}
		if linked["ann"] != "boss" || linked["ben"] != "old.boss" || linked["boss"] != "old.boss" {
			t.Fatalf("ledger of manager links: %+v", p.Items)
		}
	})
}

// Membership changes are recorded set-based; the reason names the group
// as Go's %q would, quotes and backslashes included.
func TestEngineMembershipLedgerQuotesGroupNames(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		e.newRun()
		name := `R&D "Core" \ Team — Zürich`
		page := &directory.FetchedPage{Users: []directory.StagedUser{staged("a1", "ann", "A")},
			Groups:  []directory.StagedGroup{{ExternalID: "g1", Name: name}},
			Members: []directory.StagedMember{{GroupExternalID: "g1", UserExternalID: "a1"}}}
		if _, err := e.s.SaveFetchedPage(e.ctx, e.runID, page, "", true); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.Plan(e.ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir}); err != nil {
			t.Fatal(err)
		}
		var c directory.RunCounts
		var err error
		for done := false; !done; {
			if done, c, err = e.s.ApplyBatch(e.ctx, e.runID, directory.ApplyInput{DirectoryKey: e.dir, GroupSync: true,
				Connection: "Engine", BatchSize: 10}); err != nil {
				t.Fatal(err)
			}
		}
		p, err := e.s.ListChanges(e.ctx, e.runID, "member_added", directory.ListOptions{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("group %q", name)
		if c.MembershipsAdded != 1 || len(p.Items) != 1 || p.Items[0].Reason != want || p.Items[0].Username != "ann" {
			t.Fatalf("counts %+v ledger %+v, want reason %s", c, p.Items, want)
		}
		audit, err := e.s.ListAudit(e.ctx, directory.AuditFilter{RunID: e.runID}, directory.ListOptions{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, a := range audit.Items {
			found = found || (a.Action == "member_added" && a.Details == want && a.Subject == "ann" && a.Connection == "Engine")
		}
		if !found {
			t.Fatalf("audit %+v", audit.Items)
		}
	})
}
