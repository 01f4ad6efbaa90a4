package directory_test

import (
	"context"
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
