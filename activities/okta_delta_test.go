package activities_test

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	oktasim "github.com/usersync/usersync/idpsim/okta"
	"github.com/usersync/usersync/internal/reqtable"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/okta"
)

// oktaSide is one of the two Okta syncs the delta test compares: its own
// simulated org (the same seed, the same org and the same new ids), its
// own database and profile.
type oktaSide struct {
	h   *harness
	sim *oktasim.Server
}

// oktaScope is the profile's selection: two departments and the
// contractors.
var oktaScope = []string{"Engineering", "Sales", oktasim.GroupContractors}

func newOktaSide(t *testing.T, dialect string) *oktaSide {
	sim := oktasim.New(oktasim.Config{Seed: 77, Users: 300})
	srv := httptest.NewServer(reqtable.Check(t, "okta", sim))
	t.Cleanup(srv.Close)
	var groups []string
	for _, name := range oktaScope {
		g, ok := sim.GroupByName(name)
		if !ok {
			t.Fatalf("no group %q", name)
		}
		groups = append(groups, g.ID)
	}
	h := newHarness(t, dbtest.Open(t, dialect), func(cfg *profile.Config) {
		cfg.Name, cfg.Provider, cfg.Block = "Okta", okta.Name, nil
		cfg.Block = &okta.Profile{OrgURL: srv.URL, APIToken: oktasim.DefaultAPIToken, AppID: sim.AppID()}
		cfg.Groups = groups
		// VPN Users is not assigned to the app: the filter matches it,
		// yet group sync must not keep it.
		cfg.GroupSync = profile.GroupSync{Mode: profile.GroupSyncRegex, Pattern: "^(Engineering|Sales|Intranet|VPN)"}
		cfg.AttributeMap = map[string]string{"department": "department", "title": "title"}
		cfg.Safety = profile.Safety{MaxDisables: 10000, MaxDisablePercent: 100}
	})
	h.profile.Provider = okta.Name
	h.acts = activities.New(activities.Deps{Store: h.store, Box: h.box, AllowHTTPLoopback: true, PageSize: 23, BatchSize: 11,
		BcryptCost: bcrypt.MinCost})
	return &oktaSide{h: h, sim: sim}
}

// mutateOkta changes an org the same way on both sides: attributes,
// deactivations, suspensions, reactivations, a STAGED joiner activated a
// round later, moves between selected groups, manager changes in each of
// Okta's forms, a login rename, joiners, a deleted leaver, a user out of
// every selected group, one from outside into the scope, and group sync
// memberships; groups unassigned from the app, assigned to it, deleted.
func mutateOkta(t *testing.T, sim *oktasim.Server, round int) {
	t.Helper()
	group := func(name string) string {
		g, ok := sim.GroupByName(name)
		if !ok {
			t.Fatalf("no group %q", name)
		}
		return g.ID
	}
	eng, sales, contractors := group("Engineering"), group("Sales"), group(oktasim.GroupContractors)
	selected := []string{eng, sales, contractors}
	var pool []string
	for _, g := range selected {
		pool = append(pool, sim.Members(g)...)
	}
	slices.Sort(pool)
	pool = slices.Compact(pool)
	pick := func(i int) string { return pool[(i*37+round*11)%len(pool)] }
	for i := range 3 {
		must(t, sim.SetProfile(pick(i), "department", fmt.Sprintf("Dept %d-%d", round, i)))
	}
	must(t, sim.Deactivate(pick(3)))
	must(t, sim.Suspend(pick(4)))
	for _, u := range sim.Users() {
		if (u.Status == oktasim.StatusSuspended || u.Status == oktasim.StatusDeprovisioned) && slices.Contains(pool, u.ID) && u.ID != pick(3) && u.ID != pick(4) {
			must(t, sim.Reactivate(u.ID))
			break
		}
	}
	must(t, sim.SetManager(pick(5), pick(6), []string{"id", "login", "manager"}[round%3]))
	must(t, sim.SetManager(pick(7), "", ""))
	domain := "example.com"
	must(t, sim.RenameLogin(pick(8), fmt.Sprintf("renamed.%d@%s", round, domain)))
	for i := range 2 {
		login := fmt.Sprintf("joiner.%d.%d@%s", round, i, domain)
		_, err := sim.AddUser(map[string]any{"login": login, "email": login, "firstName": "Joiner", "lastName": fmt.Sprint(i),
			"department": "New", "title": "Engineer", "managerId": pick(9)}, oktasim.StatusActive, []string{eng, sales}[i])
		must(t, err)
	}
	// A STAGED joiner is not created; the next round activates it.
	if staged, ok := sim.User(fmt.Sprintf("staged.%d@%s", round-1, domain)); ok {
		must(t, sim.Activate(staged.ID))
	}
	login := fmt.Sprintf("staged.%d@%s", round, domain)
	_, err := sim.AddUser(map[string]any{"login": login, "email": login, "firstName": "Staged", "lastName": "Joiner"},
		oktasim.StatusStaged, contractors)
	must(t, err)
	// A leaver deactivated then deleted, and one out of every selected group.
	must(t, sim.Deactivate(pick(10)))
	must(t, sim.DeleteUser(pick(10)))
	out := pick(11)
	for _, g := range selected {
		must(t, sim.RemoveFromGroup(g, out))
	}
	// A move between selected groups, and back in a later round.
	for _, id := range sim.Members(eng) {
		if !slices.Contains(sim.Members(sales), id) && id != out {
			must(t, sim.MoveUser(id, eng, sales))
			break
		}
	}
	// One from outside the scope into it.
	for _, u := range sim.Users() {
		if !slices.Contains(pool, u.ID) && u.Status == oktasim.StatusActive {
			must(t, sim.AddToGroup(contractors, u.ID))
			break
		}
	}
	// Group sync: a membership starts, one ends, and one ends and starts
	// again within the round.
	editors, readers := group(oktasim.GroupIntranetEditors), group(oktasim.GroupIntranetReaders)
	must(t, sim.AddToGroup(editors, pick(12)))
	if m := sim.Members(readers); len(m) > 0 {
		must(t, sim.RemoveFromGroup(readers, m[round%len(m)]))
	}
	must(t, sim.RemoveFromGroup(eng, pick(13)))
	must(t, sim.AddToGroup(eng, pick(13)))
	switch round {
	case 1:
		// Out of the app: group sync no longer keeps it.
		sim.UnassignGroup(editors)
	case 2:
		// Into the app: group sync keeps it from now on.
		must(t, sim.AssignGroup(group(oktasim.GroupVPN)))
	case 3:
		must(t, sim.DeleteGroup(readers))
	}
}

// TestDeltaMatchesFullOnOkta applies the same mutation scripts to two
// identical orgs: one profile syncs as it normally would (a full run, then
// deltas), the other is made to sync in full every time. After each round
// both directories must be the same.
func TestDeltaMatchesFullOnOkta(t *testing.T) {
	// The SDK reads ~/.okta/okta.yaml.
	t.Setenv("HOME", t.TempDir())
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			delta, full := newOktaSide(t, dialect), newOktaSide(t, dialect)
			for round := range 4 {
				if round > 0 {
					mutateOkta(t, delta.sim, round)
					mutateOkta(t, full.sim, round)
				}
				if err := full.h.store.ForgetSyncState(full.h.ctx, full.h.profile.DirectoryKey); err != nil {
					t.Fatal(err)
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
				if round == 0 {
					wantDelta = directory.ModeFull
				}
				if dm.Mode != wantDelta || fm.Mode != directory.ModeFull {
					t.Fatalf("round %d: modes %q and %q", round, dm.Mode, fm.Mode)
				}
				dv, fv := (&entraSide{h: delta.h}).directoryView(t), (&entraSide{h: full.h}).directoryView(t)
				if len(fv) == 0 {
					t.Fatal("the full side synced nobody")
				}
				sameDirectory(t, round, fv, dv, fr.Counts, dr.Counts)
				t.Logf("round %d: delta %+v, full %+v", round, dr.Counts, fr.Counts)
			}
		})
	}
}
