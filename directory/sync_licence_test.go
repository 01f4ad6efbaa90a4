package directory_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
)

// planApplyLicence plans the run under a licence limit and applies it.
func (e *engine) planApplyLicence(limit int) directory.RunCounts {
	e.t.Helper()
	if _, err := e.s.Plan(e.ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir, LicenceLimit: limit}); err != nil {
		e.t.Fatal(err)
	}
	for range 1000 {
		done, c, err := e.s.ApplyBatch(e.ctx, e.runID, directory.ApplyInput{DirectoryKey: e.dir, BatchSize: 2})
		if err != nil {
			e.t.Fatal(err)
		}
		if done {
			return c
		}
	}
	e.t.Fatal("apply does not end")
	return directory.RunCounts{}
}

// TestEngineLicenceNeverHoldsOffboarding: with the directory already over
// the licence, a run still disables its leavers and updates its users;
// what the licence refuses is creating and re-enabling people, re-enables
// first allowed, each refused user in the ledger with the reason.
func TestEngineLicenceNeverHoldsOffboarding(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		e.newRun()
		e.stage(true, staged("u1", "ann", "A"), staged("u2", "bob", "B"), staged("u3", "cat", "C"), staged("u4", "dan", "D"))
		if c := e.planApplyLicence(0); c.Created != 4 {
			t.Fatalf("first run %+v", c)
		}
		// u4 leaves.
		e.newRun()
		e.stage(true, staged("u1", "ann", "A"), staged("u2", "bob", "B"), staged("u3", "cat", "C"))
		if c := e.planApplyLicence(0); c.Disabled != 1 {
			t.Fatalf("leaver run %+v", c)
		}

		// Limit 2 with 3 active: u3 leaves, u1 is renamed, u4 comes back and
		// two joiners arrive. After the disable 2 are active: nobody may be
		// added, yet the leaver goes and the rename applies.
		e.newRun()
		renamed := staged("u1", "ann", "Renamed")
		e.stage(true, renamed, staged("u2", "bob", "B"), staged("u4", "dan", "D"), staged("u5", "eve", "E"), staged("u6", "fay", "F"))
		c := e.planApplyLicence(2)
		if c.Disabled != 1 || c.Updated != 1 || c.Created != 0 || c.Reenabled != 0 || c.LicenceRefused != 3 {
			t.Fatalf("over the licence: %+v", c)
		}
		u := e.usersByExternalID()
		if u["u3"].Status != directory.StatusDisabled || u["u1"].LastName != "Renamed" || u["u4"].Status != directory.StatusDisabled {
			t.Fatalf("directory %+v", u)
		}
		if _, ok := u["u5"]; ok {
			t.Fatal("a refused joiner was created")
		}
		refused, err := e.s.ListChanges(e.ctx, e.runID, directory.LedgerLicenceRefused, directory.ListOptions{Limit: 10})
		if err != nil || len(refused.Items) != 3 || !strings.Contains(refused.Items[0].Reason, "licence limit 2") {
			t.Fatalf("ledger %+v %v", refused.Items, err)
		}

		// Limit 4 with 2 active: room for two; the returning u4 first,
		// then joiners in username order (eve before fay).
		e.newRun()
		e.stage(true, renamed, staged("u2", "bob", "B"), staged("u4", "dan", "D"), staged("u5", "eve", "E"), staged("u6", "fay", "F"))
		c = e.planApplyLicence(4)
		if c.Reenabled != 1 || c.Created != 1 || c.LicenceRefused != 1 {
			t.Fatalf("room for two: %+v", c)
		}
		u = e.usersByExternalID()
		if u["u4"].Status != directory.StatusActive || u["u5"].Status != directory.StatusActive {
			t.Fatalf("directory %+v", u)
		}
		if _, ok := u["u6"]; ok {
			t.Fatal("fay was created past the licence")
		}
	})
}

// TestEngineWarnsOfSharedEmailAddresses: an active user whose e-mail
// address another active user has too (in any directory, in any case) is
// named in the run's ledger as a warning, and nothing is refused.
func TestEngineWarnsOfSharedEmailAddresses(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		local := &directory.User{Username: "shared.mailbox", FirstName: "S", LastName: "M", Email: "ANN@example.com", Status: directory.StatusActive}
		if err := e.s.CreateUser(e.ctx, local); err != nil {
			t.Fatal(err)
		}
		e.newRun()
		bob2 := staged("u3", "bob2", "B")
		bob2.Email = "bob@example.com"
		e.stage(true, staged("u1", "ann", "A"), staged("u2", "bob", "B"), bob2)
		c := e.planApplyLicence(0)
		if c.Created != 3 || c.DuplicateEmails != 3 {
			t.Fatalf("counts %+v", c)
		}
		warned, err := e.s.ListChanges(e.ctx, e.runID, directory.LedgerDuplicateEmail, directory.ListOptions{Limit: 10})
		if err != nil || len(warned.Items) != 3 || warned.Items[0].Username != "ann" ||
			!strings.Contains(warned.Items[0].Reason, "shared by 2 active users") {
			t.Fatalf("ledger %+v %v", warned.Items, err)
		}
	})
}

// TestEngineLatestPagesReplaceEarlierRecords: a change round may list a
// user twice (changed again while the round was read); the later record
// wins, within a page and across pages, and the user is counted once.
// Other listings keep a user's first record.
func TestEngineLatestPagesReplaceEarlierRecords(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		e.newRun()
		first, second, third := staged("u1", "ann", "First"), staged("u1", "ann", "Second"), staged("u1", "ann", "Third")
		if n, err := e.s.SaveFetchedPage(e.ctx, e.runID, &directory.FetchedPage{Users: []directory.StagedUser{first}}, "a", false); err != nil || n != 1 {
			t.Fatalf("first page: %d %v", n, err)
		}
		if n, err := e.s.SaveFetchedPage(e.ctx, e.runID, &directory.FetchedPage{Users: []directory.StagedUser{staged("u2", "bob", "B"), second}}, "b", false); err != nil || n != 2 {
			t.Fatalf("a listing page: %d %v", n, err)
		}
		if n, err := e.s.SaveFetchedPage(e.ctx, e.runID, &directory.FetchedPage{Latest: true,
			Users: []directory.StagedUser{second, third}}, "", true); err != nil || n != 2 {
			t.Fatalf("a change page: %d %v", n, err)
		}
		_, c := e.planApply()
		if u := e.usersByExternalID()["u1"]; u.LastName != "Third" || c.Created != 2 {
			t.Fatalf("u1 %+v, counts %+v", u, c)
		}
	})
}

// TestEngineLatestPagesReplaceInBulk: change pages as large as Graph's,
// which PostgreSQL stages through COPY, replace the records they list
// again and count only the users new to the run.
func TestEngineLatestPagesReplaceInBulk(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		e := newEngine(t, db)
		e.newRun()
		page := func(from, to int, last string) []directory.StagedUser {
			var users []directory.StagedUser
			for i := from; i < to; i++ {
				users = append(users, staged(fmt.Sprintf("u%03d", i), fmt.Sprintf("user%03d", i), last))
			}
			return users
		}
		if n, err := e.s.SaveFetchedPage(e.ctx, e.runID, &directory.FetchedPage{Latest: true, Users: page(0, 200, "Old")}, "a", false); err != nil || n != 200 {
			t.Fatalf("first page: %d %v", n, err)
		}
		// The second page lists 150 of them again and 50 new ones.
		if n, err := e.s.SaveFetchedPage(e.ctx, e.runID, &directory.FetchedPage{Latest: true, Users: page(50, 250, "New")}, "", true); err != nil || n != 250 {
			t.Fatalf("second page: %d %v", n, err)
		}
		_, c := e.planApply()
		users := e.usersByExternalID()
		if c.Created != 250 || len(users) != 250 {
			t.Fatalf("created %d, %d users", c.Created, len(users))
		}
		for id, u := range users {
			want := "New"
			if id < "u050" {
				want = "Old"
			}
			if u.LastName != want {
				t.Fatalf("%s: last name %q, want %q", id, u.LastName, want)
			}
		}
	})
}
