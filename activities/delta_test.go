package activities_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/idpsim/graph"
	"github.com/usersync/usersync/internal/reqtable"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/azure"
)

// entraSide is one of the two syncs the delta test compares: its own
// simulated tenant (the same seed gives the same tenant, ids included), its
// own database and profile.
type entraSide struct {
	h   *harness
	sim *graph.Server
	ten *graph.Tenant
}

func newEntraSide(t *testing.T, dialect string) *entraSide {
	return newEntraSideWith(t, dialect, graph.Options{Seed: 5}, func(*activities.Deps) {})
}

// newEntraSideWith is newEntraSide on a server of opts, with the
// activities' dependencies as deps leaves them.
func newEntraSideWith(t *testing.T, dialect string, opts graph.Options, deps func(*activities.Deps)) *entraSide {
	sim := graph.New(opts)
	srv := httptest.NewServer(reqtable.Check(t, "graph", sim))
	t.Cleanup(srv.Close)
	ten := sim.AddTenant(graph.TenantOptions{Seed: 2027, Users: 400, Groups: 14, Depth: 3, OutOfScopeShare: 0.08, DisabledShare: 0.03})
	root, _ := ten.GroupByName("All Staff")
	c := ten.Client()
	h := newHarness(t, dbtest.Open(t, dialect), func(cfg *profile.Config) {
		cfg.Name, cfg.Provider, cfg.Block = "Entra", azure.Name, nil
		cfg.Block = &azure.Profile{TenantID: ten.ID, ClientID: c.ID, ClientSecret: c.Secret, AuthorityURL: srv.URL, GraphBaseURL: srv.URL + "/v1.0"}
		cfg.Groups = []string{root.ID}
		cfg.GroupSync = profile.GroupSync{Mode: profile.GroupSyncRegex, Pattern: "^(All Staff|Engineering|Sales|Marketing)"}
		cfg.AttributeMap = map[string]string{"department": "department", "skills": "skills"}
		cfg.Safety = profile.Safety{MaxDisables: 10000, MaxDisablePercent: 100}
	})
	h.profile.Provider = azure.Name
	d := activities.Deps{Store: h.store, Box: h.box, AllowHTTPLoopback: true, PageSize: 37, BatchSize: 11,
		BcryptCost: bcrypt.MinCost}
	deps(&d)
	h.acts = activities.New(d)
	return &entraSide{h: h, sim: sim, ten: ten}
}

// directoryView is the directory of a profile by external id: everything
// sync writes of a user, its manager by external id and its groups.
// sameDirectory fails the test when the delta side's directory (dv) is not
// the full side's (fv), user by user, or when their runs disabled different
// numbers of users (after round 0, where both start from nothing).
func sameDirectory(t *testing.T, round int, fv, dv map[string]string, full, delta directory.RunCounts) {
	t.Helper()
	diffs := 0
	for ext, want := range fv {
		if dv[ext] != want {
			if diffs++; diffs <= 10 {
				t.Errorf("round %d, %s:\n full  %s\n delta %s", round, ext, want, dv[ext])
			}
		}
	}
	for ext, got := range dv {
		if _, ok := fv[ext]; !ok {
			t.Errorf("round %d, %s only in the delta side: %s", round, ext, got)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if round > 0 && delta.Disabled != full.Disabled {
		t.Fatalf("round %d: delta disabled %d, full %d", round, delta.Disabled, full.Disabled)
	}
}

func (s *entraSide) directoryView(t *testing.T) map[string]string {
	t.Helper()
	users := s.h.users()
	byID := map[string]string{}
	for _, u := range users {
		if u.ExternalID != nil {
			byID[u.ID] = *u.ExternalID
		}
	}
	out := map[string]string{}
	for _, u := range users {
		if u.ExternalID == nil || u.DirectoryKey != s.h.profile.DirectoryKey {
			continue
		}
		full, err := s.h.store.GetUser(s.h.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		mgr := ""
		if full.ManagerID != nil {
			mgr = byID[*full.ManagerID]
		}
		groups := slices.Clone(full.Groups)
		sort.Strings(groups)
		attrs, _ := json.Marshal(full.Attributes)
		out[*u.ExternalID] = fmt.Sprintf("%s|%s|%s|%s|%s|%s|mgr=%s|%v", full.Status, full.Username, full.FirstName, full.LastName,
			full.Email, attrs, mgr, groups)
	}
	return out
}

// mutate changes a tenant the same way on both sides: attributes, leavers,
// joiners, disabled accounts, renames, manager changes, moves between
// groups, users out of and into the scope, a group renamed out of the
// filter and a group moved to another parent.
func mutate(t *testing.T, ten *graph.Tenant, round int) {
	t.Helper()
	users := ten.Users()
	groups := ten.Groups()
	isGroup := map[string]bool{}
	for _, g := range groups {
		isGroup[g.ID] = true
	}
	var leaves []graph.Group
	for _, g := range groups {
		if g.Kind == graph.Security && len(g.Members) > 0 && !slices.ContainsFunc(g.Members, func(m string) bool { return isGroup[m] }) {
			leaves = append(leaves, g)
		}
	}
	pick := func(i int) graph.User { return users[(i*37+round*11)%len(users)] }
	for i := range 4 {
		u := pick(i)
		must(t, ten.UpdateUser(u.ID, func(x *graph.User) { x.Props["department"] = fmt.Sprintf("Dept %d-%d", round, i) }))
	}
	must(t, ten.DeleteUser(pick(10).ID))
	must(t, ten.DeleteUser(pick(11).ID))
	must(t, ten.SetEnabled(pick(12).ID, false))
	must(t, ten.SetEnabled(pick(13).ID, true))
	must(t, ten.RenameUPN(pick(14).ID, fmt.Sprintf("renamed.%d@%s", round, ten.Domain)))
	must(t, ten.SetManager(pick(15).ID, pick(16).ID))
	// A manager removed, and a department changed alone: Graph's delta
	// lists that user without manager@delta, and the manager must stay.
	must(t, ten.SetManager(pick(19).ID, ""))
	must(t, ten.UpdateUser(pick(20).ID, func(x *graph.User) { x.Props["department"] = fmt.Sprintf("Alone %d", round) }))
	for i := range 3 {
		_, err := ten.NewUser(graph.User{UserPrincipalName: fmt.Sprintf("joiner.%d.%d@%s", round, i, ten.Domain), GivenName: "Joiner",
			Surname: fmt.Sprint(i), Mail: fmt.Sprintf("joiner.%d.%d@%s", round, i, ten.Domain), AccountEnabled: true,
			ManagerID: pick(17).ID, Props: map[string]any{"department": "New", "skills": []string{"go"}}}, leaves[(round+i)%len(leaves)].ID)
		must(t, err)
	}
	// A move between two leaves, a user out of every group, and one
	// outside the scope into a leaf.
	from, to := leaves[round%len(leaves)], leaves[(round+1)%len(leaves)]
	must(t, ten.MoveUser(from.Members[0], from.ID, to.ID))
	out := pick(18).ID
	for _, g := range groups {
		if slices.Contains(g.Members, out) {
			must(t, ten.RemoveMember(g.ID, out))
		}
	}
	root, _ := ten.GroupByName("All Staff")
	inScope := map[string]bool{}
	for _, id := range ten.TransitiveUsers(root.ID) {
		inScope[id] = true
	}
	for _, u := range users {
		if _, live := ten.User(u.ID); live && !inScope[u.ID] && u.ID != out {
			must(t, ten.AddMember(to.ID, u.ID))
			break
		}
	}
	switch round {
	case 1:
		// A group leaves the filter by a rename.
		for _, g := range groups {
			if g.DisplayName != "All Staff" && (len(g.DisplayName) > 5 && g.DisplayName[:5] == "Sales") {
				must(t, ten.RenameGroup(g.ID, "Archive "+g.DisplayName))
				break
			}
		}
	case 2:
		// A leaf moves to another parent (and out of its old subtree).
		leaf := leaves[len(leaves)-1]
		for _, g := range groups {
			if slices.Contains(g.Members, leaf.ID) {
				must(t, ten.RemoveMember(g.ID, leaf.ID))
			}
		}
		must(t, ten.AddMember(leaves[0].ID, leaf.ID))
	}
}

// TestDeltaMatchesFullOnEntra applies the same mutation scripts to two
// identical tenants: one profile syncs as it normally would (a full run,
// then deltas), the other is made to sync in full every time. After each
// round both directories must be the same; one round's delta token has
// expired, and that run falls back to a full one by itself.
func TestDeltaMatchesFullOnEntra(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			delta, full := newEntraSide(t, dialect), newEntraSide(t, dialect)
			for round := range 4 {
				if round > 0 {
					mutate(t, delta.ten, round)
					mutate(t, full.ten, round)
				}
				if err := full.h.store.ForgetSyncState(full.h.ctx, full.h.profile.DirectoryKey); err != nil {
					t.Fatal(err)
				}
				if round == 3 {
					delta.sim.ExpireDeltaTokens()
				}
				dr := delta.h.mustSync()
				fr := full.h.mustSync()
				dm, err := delta.h.store.RunMode(delta.h.ctx, dr.ID)
				if err != nil {
					t.Fatal(err)
				}
				fm, err := full.h.store.RunMode(full.h.ctx, fr.ID)
				if err != nil {
					t.Fatal(err)
				}
				wantDelta := directory.ModeDelta
				if round == 0 || round == 3 {
					wantDelta = directory.ModeFull
				}
				if dm.Mode != wantDelta || fm.Mode != directory.ModeFull {
					t.Fatalf("round %d: modes %q and %q", round, dm.Mode, fm.Mode)
				}
				dv, fv := delta.directoryView(t), full.directoryView(t)
				sameDirectory(t, round, fv, dv, fr.Counts, dr.Counts)
				delta.managersAsInTenant(t, round)
				t.Logf("round %d: delta %+v, full %+v", round, dr.Counts, fr.Counts)
			}
		})
	}
}

// managersAsInTenant fails the test when an active synced user's manager
// is not the one the tenant has (when that manager is synced too): both
// sides of the delta test run the same code, so they are also held to
// the source itself.
func (s *entraSide) managersAsInTenant(t *testing.T, round int) {
	t.Helper()
	users := s.h.users()
	byID, byExt := map[string]string{}, map[string]bool{}
	for _, u := range users {
		if u.ExternalID != nil && u.DirectoryKey == s.h.profile.DirectoryKey {
			byID[u.ID], byExt[*u.ExternalID] = *u.ExternalID, true
		}
	}
	checked := 0
	for _, u := range users {
		if u.ExternalID == nil || u.DirectoryKey != s.h.profile.DirectoryKey || u.Status != directory.StatusActive {
			continue
		}
		tu, ok := s.ten.User(*u.ExternalID)
		if !ok {
			continue
		}
		full, err := s.h.store.GetUser(s.h.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if full.ManagerID != nil {
			got = byID[*full.ManagerID]
		}
		want := tu.ManagerID
		if !byExt[want] {
			want = "" // a manager outside the scope is not linked
		}
		if got != want {
			t.Fatalf("round %d: user %s has manager %q in the directory, %q in the tenant", round, tu.UserPrincipalName, got, want)
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("round %d: no manager checked", round)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
