package activities_test

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
)

// One test per sync rule of DESIGN.md that applies to CSV, each against
// Postgres and SQLite.

var (
	alice = "alice,Alice,Archer,alice@example.com,,Sales,Sales;Intranet Editors,"
	bob   = "bob,Bob,Baker,bob@example.com,alice,Sales,Sales,"
	carol = "carol,Carol,Cooper,carol@example.com,alice,Ops,Intranet Readers,"
)

func TestRuleCreate(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, bob, carol))
		run := h.mustSync()
		if run.Counts.Created != 3 || run.Counts.Fetched != 3 {
			t.Fatalf("counts %+v", run.Counts)
		}
		u := h.user("bob")
		if u.Status != directory.StatusActive || u.DirectoryKey != h.profile.DirectoryKey || u.Email != "bob@example.com" ||
			u.FirstName != "Bob" || u.LastName != "Baker" || u.ExternalID == nil || *u.ExternalID != "bob" {
			t.Fatalf("bob = %+v", u)
		}
		if u.Attributes["department"] != "Sales" {
			t.Errorf("attributes = %v", u.Attributes)
		}
		if got := h.changes(run.ID, "created"); len(got) != 3 || got[0].Changes["email"].To == "" {
			t.Errorf("ledger created = %+v", got)
		}
		if a := h.audit(run.ID, "user_created"); len(a) != 3 || a[0].Category != directory.CategorySync || a[0].Connection != "People CSV" {
			t.Errorf("audit = %+v", a)
		}
		if len(h.audit(run.ID, "run_started")) != 1 || len(h.audit(run.ID, "run_finished")) != 1 {
			t.Error("run start and end are not audited")
		}
	})
}

func TestRuleUpdate(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, bob, carol))
		h.mustSync()
		h.setCSV(csvOf(alice, strings.Replace(bob, "Baker", "Brown", 1), strings.Replace(carol, "Ops", "Finance", 1)))
		run := h.mustSync()
		if run.Counts.Updated != 2 || run.Counts.Unchanged != 1 || run.Counts.Created != 0 {
			t.Fatalf("counts %+v", run.Counts)
		}
		if h.user("bob").LastName != "Brown" || h.user("carol").Attributes["department"] != "Finance" {
			t.Fatal("update not applied")
		}
		for _, c := range h.changes(run.ID, "updated") {
			switch c.Username {
			case "bob":
				if c.Changes["lastName"] != (directory.FieldChange{From: "Baker", To: "Brown"}) || len(c.Changes) != 1 {
					t.Errorf("bob's changes %v", c.Changes)
				}
			case "carol":
				if c.Changes["attributes.department"].To != "Finance" {
					t.Errorf("carol's changes %v", c.Changes)
				}
			default:
				t.Errorf("unexpected update of %s", c.Username)
			}
		}
	})
}

func TestRuleUnchangedNotWrittenNorAudited(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, bob, carol))
		h.mustSync()
		before := h.users()
		run := h.mustSync()
		if run.Counts.Unchanged != 3 || run.Counts.Updated+run.Counts.Created+run.Counts.ManagersLinked+run.Counts.MembershipsAdded != 0 {
			t.Fatalf("counts %+v", run.Counts)
		}
		for name, u := range h.users() {
			if !u.UpdatedAt.Equal(before[name].UpdatedAt) {
				t.Errorf("%s written although unchanged", name)
			}
		}
		if c := h.changes(run.ID, ""); len(c) != 0 {
			t.Errorf("ledger of an idle run: %+v", c)
		}
		p, _ := h.store.ListAudit(h.ctx, directory.AuditFilter{RunID: run.ID}, directory.ListOptions{Limit: 100})
		for _, e := range p.Items {
			if e.Action != "run_started" && e.Action != "run_finished" {
				t.Errorf("idle run audited %s %s", e.Action, e.Subject)
			}
		}
	})
}

func TestRuleRequiredFields(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, "dave,Dave,,dave@example.com,,,,", "erin,Erin,Ellis,not-an-email,,,,"))
		run := h.mustSync()
		if run.Counts.Created != 1 || run.Counts.Skipped != 2 {
			t.Fatalf("counts %+v", run.Counts)
		}
		if _, ok := h.users()["dave"]; ok {
			t.Fatal("dave created without a last name")
		}
		reasons := map[string]string{}
		for _, c := range h.changes(run.ID, "skipped") {
			reasons[c.Username] = c.Reason
		}
		if !strings.Contains(reasons["dave"], "lastName") || !strings.Contains(reasons["dave"], "line 3") {
			t.Errorf("dave's reason %q does not name the field and line", reasons["dave"])
		}
		if !strings.Contains(reasons["erin"], "email") {
			t.Errorf("erin's reason %q", reasons["erin"])
		}
		if a := h.audit(run.ID, "user_skipped"); len(a) != 2 || !strings.Contains(a[0].Details+a[1].Details, "lastName") {
			t.Errorf("audit %+v", a)
		}
	})
}

func TestRuleConflictWithLocalAccount(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		local := &directory.User{Username: "Bob", FirstName: "Local", LastName: "Bob", Email: "local@example.com"}
		if err := h.store.CreateUser(h.ctx, local); err != nil {
			t.Fatal(err)
		}
		h.setCSV(csvOf(alice, bob))
		run := h.mustSync()
		if run.Counts.Conflicts != 1 || run.Counts.Created != 1 {
			t.Fatalf("counts %+v", run.Counts)
		}
		got := h.user("Bob")
		if got.DirectoryKey != directory.LocalDirectory || got.FirstName != "Local" || got.ExternalID != nil {
			t.Fatalf("local account touched: %+v", got)
		}
		c := h.changes(run.ID, "conflict")
		if len(c) != 1 || !strings.Contains(c[0].Reason, "local account") {
			t.Fatalf("conflict ledger %+v", c)
		}
		if len(h.audit(run.ID, "user_conflict")) != 1 {
			t.Error("conflict not audited")
		}
	})
}

func TestRuleDepartedDisabledAndReturningReenabled(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, bob, carol))
		h.mustSync()
		h.setCSV(csvOf(alice, bob))
		run := h.mustSync()
		if run.Counts.Disabled != 1 {
			t.Fatalf("counts %+v", run.Counts)
		}
		c := h.user("carol")
		if c.Status != directory.StatusDisabled || c.DisabledAt == nil {
			t.Fatalf("carol = %+v", c)
		}
		if l := h.changes(run.ID, "disabled"); len(l) != 1 || l[0].Username != "carol" {
			t.Fatalf("ledger %+v", l)
		}
		// Carol returns; Alice was disabled by hand meanwhile.
		if err := h.store.SetUserStatus(h.ctx, h.user("alice").ID, directory.StatusDisabled, time.Now()); err != nil {
			t.Fatal(err)
		}
		h.setCSV(csvOf(alice, bob, carol))
		run = h.mustSync()
		if run.Counts.Reenabled != 2 || run.Counts.Disabled != 0 {
			t.Fatalf("counts %+v", run.Counts)
		}
		for _, n := range []string{"alice", "carol"} {
			if u := h.user(n); u.Status != directory.StatusActive || u.DisabledAt != nil {
				t.Errorf("%s = %+v", n, u)
			}
		}
	})
}

func TestRuleDeletedUserCreatedAgain(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, bob))
		h.mustSync()
		old := h.user("bob")
		if err := h.store.DeleteUser(h.ctx, old.ID); err != nil {
			t.Fatal(err)
		}
		run := h.mustSync()
		if run.Counts.Created != 1 || h.user("bob").ID == old.ID {
			t.Fatalf("bob not created again: %+v", run.Counts)
		}
	})
}

func TestRulePasswords(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, "frank,Frank,Fox,frank@example.com,,,,Own-Secret-9"))
		h.mustSync()
		check := func(user, pw string) {
			hash := h.user(user).PasswordHash
			if !strings.HasPrefix(hash, "$2") || bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) != nil {
				t.Errorf("%s: hash %q does not match %q", user, hash, pw)
			}
		}
		check("alice", "Welcome-1")
		check("frank", "Own-Secret-9")

		// Without a default password a row without one is skipped.
		h2 := newHarness(t, db, func(c *profile.Config) { c.Name = "No default"; c.Block.(*csv.Profile).DefaultPassword = "" })
		h2.setCSV(csvOf("gina,Gina,Gray,gina@example.com,,,,", "hank,Hank,Hill,hank@example.com,,,,Pw-123456"))
		run := h2.mustSync()
		if run.Counts.Created != 1 || run.Counts.Skipped != 1 {
			t.Fatalf("counts %+v", run.Counts)
		}
		if c := h2.changes(run.ID, "skipped"); len(c) != 1 || !strings.Contains(c[0].Reason, "password") {
			t.Fatalf("ledger %+v", c)
		}
	})
}

func TestRuleManagersResolvedInTheSameRun(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		// Reports come before their manager in the file and across pages.
		h.setCSV(csvOf(bob, carol, "ivan,Ivan,Ives,ivan@example.com,nobody,,,", alice))
		run := h.mustSync()
		if run.Counts.ManagersLinked != 2 || run.Counts.ManagersUnresolved != 1 {
			t.Fatalf("counts %+v", run.Counts)
		}
		a := h.user("alice")
		for _, n := range []string{"bob", "carol"} {
			if m := h.user(n).ManagerID; m == nil || *m != a.ID {
				t.Errorf("%s's manager = %v, want alice", n, m)
			}
		}
		if h.user("ivan").ManagerID != nil {
			t.Error("an unresolved manager was guessed")
		}
		if c := h.changes(run.ID, "manager_unresolved"); len(c) != 1 || !strings.Contains(c[0].Reason, "nobody") {
			t.Errorf("ledger %+v", c)
		}
		// A new manager is followed; an unchanged one is not rewritten.
		h.setCSV(csvOf(alice, strings.Replace(bob, ",alice,", ",carol,", 1), carol))
		run = h.mustSync()
		if run.Counts.ManagersLinked != 1 || *h.user("bob").ManagerID != h.user("carol").ID {
			t.Fatalf("counts %+v", run.Counts)
		}
	})
}

// The org chart off (a CSV profile without a manager column, since a
// manager column turns it on) leaves managers alone.
func TestRuleOrgChartOffLeavesManagers(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, func(c *profile.Config) { c.PopulateOrgChart, c.Block.(*csv.Profile).ManagerField = false, "" })
		h.setCSV(csvOf(alice, bob))
		run := h.mustSync()
		if h.user("bob").ManagerID != nil || run.Counts.ManagersLinked != 0 {
			t.Fatal("manager set with the org chart off")
		}
	})
}

// Issue 14, item 3: a CSV profile with a manager column links managers
// even when it was stored with the org chart off.
func TestRuleCSVManagerColumnLinksManagers(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, func(c *profile.Config) { c.PopulateOrgChart = false })
		h.setCSV(csvOf(alice, bob))
		run := h.mustSync()
		if m := h.user("bob").ManagerID; m == nil || *m != h.user("alice").ID || run.Counts.ManagersLinked != 1 {
			t.Fatalf("manager column ignored: counts %+v", run.Counts)
		}
	})
}

func groupNames(t *testing.T, h *harness) map[string]int {
	p, err := h.store.ListGroups(h.ctx, "", directory.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, g := range p.Items {
		out[g.Name] = g.MemberCount
	}
	return out
}

func TestRuleGroupSyncOff(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		{
			h := newHarness(t, db, func(c *profile.Config) { c.Name = "off"; c.GroupSync.Mode = profile.GroupSyncOff })
			h.setCSV(csvOf(alice, bob))
			h.mustSync()
			local := &directory.Group{Name: "Local club"}
			if err := h.store.CreateGroup(h.ctx, local); err != nil {
				t.Fatal(err)
			}
			if err := h.store.AddGroupMember(h.ctx, local.ID, h.user("bob").ID); err != nil {
				t.Fatal(err)
			}
			run := h.mustSync()
			if g := groupNames(t, h); len(g) != 1 || g["Local club"] != 1 || run.Counts.MembershipsRemoved != 0 {
				t.Fatalf("groups %v counts %+v", g, run.Counts)
			}
		}
	})
}

func TestRuleGroupSyncAll(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		{
			h := newHarness(t, db, func(c *profile.Config) { c.Name = "all" })
			h.setCSV(csvOf(alice, bob, carol))
			run := h.mustSync()
			g := groupNames(t, h)
			if g["Sales"] != 2 || g["Intranet Editors"] != 1 || g["Intranet Readers"] != 1 || run.Counts.GroupsCreated != 3 || run.Counts.MembershipsAdded != 4 {
				t.Fatalf("groups %v counts %+v", g, run.Counts)
			}
			if gs := h.user("alice").Groups; len(gs) != 2 {
				t.Errorf("alice's groups %v", gs)
			}
		}
	})
}

func TestRuleGroupSyncRegex(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		{
			h := newHarness(t, db, func(c *profile.Config) {
				c.Name = "regex"
				c.GroupSync = profile.GroupSync{Mode: profile.GroupSyncRegex, Pattern: "^Intranet"}
			})
			h.setCSV(csvOf(alice, bob, carol))
			h.mustSync()
			g := groupNames(t, h)
			if _, ok := g["Sales"]; ok || g["Intranet Editors"] != 1 || g["Intranet Readers"] != 1 {
				t.Fatalf("groups %v", g)
			}
		}
	})
}

func TestRuleGroupsNeverDeletedAndMembershipsReplaced(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, bob, carol))
		h.mustSync()
		local := &directory.Group{Name: "Local club"}
		if err := h.store.CreateGroup(h.ctx, local); err != nil {
			t.Fatal(err)
		}
		if err := h.store.AddGroupMember(h.ctx, local.ID, h.user("alice").ID); err != nil {
			t.Fatal(err)
		}
		// Intranet Readers leaves the file; Alice leaves Sales.
		h.setCSV(csvOf(strings.Replace(alice, "Sales;Intranet Editors", "Intranet Editors", 1), bob,
			strings.Replace(carol, "Intranet Readers", "", 1)))
		run := h.mustSync()
		g := groupNames(t, h)
		if _, ok := g["Intranet Readers"]; !ok {
			t.Fatal("a group created by sync was deleted")
		}
		if g["Intranet Readers"] != 0 || g["Sales"] != 1 || g["Local club"] != 0 {
			t.Fatalf("memberships %v", g)
		}
		if run.Counts.MembershipsRemoved != 3 {
			t.Fatalf("counts %+v", run.Counts)
		}
		removed := map[string]bool{}
		for _, c := range h.changes(run.ID, "member_removed") {
			removed[c.Username+" "+c.Reason] = true
		}
		if !removed[`alice group "Local club"`] || !removed[`alice group "Sales"`] || !removed[`carol group "Intranet Readers"`] {
			t.Errorf("ledger %v", removed)
		}
	})
}

func TestRuleRolesUntouched(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, bob))
		h.mustSync()
		role := &directory.Role{Name: "Admins"}
		if err := h.store.CreateRole(h.ctx, role); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"alice", "bob"} {
			if err := h.store.AddRoleMember(h.ctx, role.ID, h.user(n).ID); err != nil {
				t.Fatal(err)
			}
		}
		h.setCSV(csvOf(alice)) // bob departs
		h.mustSync()
		m, err := h.store.ListRoleMembers(h.ctx, role.ID)
		if err != nil || len(m) != 2 {
			t.Fatalf("role members %v, %v", m, err)
		}
	})
}

// TestRuleLicenceLimit: the licence refuses creating (and re-enabling)
// users beyond it, each named in the ledger, and the run ends partial;
// it never holds back a disable or an update, even with the directory
// already over the limit; disabled users do not count.
func TestRuleLicenceLimit(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		if err := h.store.SetLicenceLimit(h.ctx, 2); err != nil {
			t.Fatal(err)
		}
		h.setCSV(csvOf(alice, bob, carol))
		r := h.sync(false, false)
		if r.err != nil || r.run.Status != directory.RunPartial || r.run.Counts.Created != 2 || r.run.Counts.LicenceRefused != 1 {
			t.Fatalf("err %v, status %s, counts %+v", r.err, r.run.Status, r.run.Counts)
		}
		refused := h.changes(r.run.ID, directory.LedgerLicenceRefused)
		if len(refused) != 1 || refused[0].Username != "carol" || !strings.Contains(refused[0].Reason, "licence limit 2") {
			t.Fatalf("ledger %+v", refused)
		}
		if _, ok := h.users()["carol"]; ok {
			t.Fatal("carol was created past the licence")
		}

		// The licence lowered below what is active: the leaver is still
		// disabled and the change still applied.
		if err := h.store.SetLicenceLimit(h.ctx, 1); err != nil {
			t.Fatal(err)
		}
		h.setCSV(csvOf(strings.Replace(alice, "Alice", "Alicia", 1)))
		r = h.sync(false, false)
		if r.err != nil || r.run.Counts.Disabled != 1 || r.run.Counts.Updated != 1 || h.user("bob").Status != directory.StatusDisabled ||
			h.user("alice").FirstName != "Alicia" {
			t.Fatalf("offboarding over the licence: err %v, status %s, counts %+v", r.err, r.run.Status, r.run.Counts)
		}

		// Disabled users do not count: bob's place is free for carol.
		if err := h.store.SetLicenceLimit(h.ctx, 2); err != nil {
			t.Fatal(err)
		}
		h.setCSV(csvOf(alice, carol))
		if r := h.mustSync(); r.Counts.Created != 1 || r.Counts.LicenceRefused != 0 {
			t.Fatalf("disabled bob counted against the licence: %+v", r.Counts)
		}
	})
}

func TestRuleGuardTooManyDisables(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, func(c *profile.Config) { c.Safety.MaxDisables = 1 })
		h.setCSV(csvOf(alice, bob, carol))
		h.mustSync()
		h.setCSV(csvOf(alice))
		r := h.sync(false, false)
		if r.guard == "" || !strings.Contains(r.guard, "disable 2") || r.run.Status != directory.RunBlocked {
			t.Fatalf("guard %q status %s", r.guard, r.run.Status)
		}
		if h.user("bob").Status != directory.StatusActive {
			t.Fatal("a held run disabled somebody")
		}
		r = h.sync(false, true) // approved
		if r.run.Counts.Disabled != 2 || h.user("bob").Status != directory.StatusDisabled {
			t.Fatalf("approved run: %+v", r.run.Counts)
		}
	})
}

func TestRuleDryRunChangesNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, bob))
		h.mustSync()
		h.setCSV(csvOf(alice, carol))
		r := h.sync(true, false)
		if r.run.Status != directory.RunSucceeded || r.run.Counts.Created != 1 || r.run.Counts.Disabled != 1 || !r.run.DryRun {
			t.Fatalf("dry run %+v %+v", r.run.Status, r.run.Counts)
		}
		if _, ok := h.users()["carol"]; ok || h.user("bob").Status != directory.StatusActive {
			t.Fatal("dry run wrote")
		}
	})
}
