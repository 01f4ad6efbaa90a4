package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/ldap"
	"github.com/usersync/usersync/provider/ldap/ldaptest"
	"github.com/usersync/usersync/workflows"
)

// TestLDAPWorkerKilledMidFetchAnotherFinishes is the crash test of the
// LDAP source: a `usersync worker` process reading a real slapd (whose
// size limit of 50 makes the read ~50 paged searches' pages) is killed
// with SIGKILL in the middle of the fetch; a second worker takes the run
// over on a connection of its own (the paged search's cookie died with
// the first), and the directory ends exactly as one clean run leaves it:
// everyone once, managers and memberships complete, no ledger entry twice.
func TestLDAPWorkerKilledMidFetchAnotherFinishes(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level fault test")
	}
	s := ldaptest.Start(t)
	const n = 1500
	boss := ldaptest.UserDN("uid", "u0000")
	entries := make([]ldaptest.Entry, 0, n+1)
	members := make([]string, 0, n)
	for i := range n {
		name := fmt.Sprintf("u%04d", i)
		p := ldaptest.Person{Name: name, Given: "Person", Sn: name, Mail: name + "@example.org"}
		if i > 0 {
			p.Manager = boss
		}
		entries = append(entries, ldaptest.OpenLDAPUser(p))
		members = append(members, ldaptest.UserDN("uid", name))
	}
	entries = append(entries, ldaptest.OpenLDAPGroup("staff", members...))
	must(t, s.Apply(entries...))
	ids := entryUUIDs(t, s)

	tmp := testenv.StartDevServer(t)
	e := newFaultEnv(t, tmp.Client, tmp.Address)
	// StartTLS with the server's CA: outside usersync dev, plain ldap://
	// reaches no one, loopback included.
	cfg := &profile.Config{Name: "LDAP crash", Provider: ldap.Name,
		Block: &ldap.Profile{URL: s.URL, StartTLS: true, CABundle: s.CAPEM, BindDN: ldaptest.ReaderDN,
			BindPassword: s.ReaderPassword, BaseDN: ldaptest.BaseDN, Flavour: ldap.FlavourOpenLDAP},
		Groups: []string{ids["cn=staff"]}, GroupSync: profile.GroupSync{Mode: profile.GroupSyncAll}, PopulateOrgChart: true}
	cfg.Normalize()
	e.createProfile(cfg)

	victim := e.startWorker("worker-a", 300*time.Millisecond)
	runID, we := e.start(workflows.Options{HeartbeatTimeout: 3 * time.Second})
	r := e.waitRun(runID, "fetch under way", 2*time.Minute, func(r *directory.Run) bool {
		return r.Counts.Fetched >= 300 && !r.FetchDone
	})
	killProc(t, victim)
	t.Logf("killed the worker at %d fetched", r.Counts.Fetched)
	e.startWorker("worker-b", 0)
	counts, err := getResult(t, we, 3*time.Minute)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if counts.Created != n || counts.Fetched != n || counts.ManagersLinked != n-1 || counts.MembershipsAdded != n {
		t.Fatalf("counts %+v", counts)
	}
	var got struct{ Users, Distinct, Active, Managed, Members, Ledger int }
	q := func(dst *int, query string) {
		t.Helper()
		if err := e.db.GetContext(e.ctx, dst, query); err != nil {
			t.Fatal(err)
		}
	}
	q(&got.Users, `SELECT COUNT(*) FROM users`)
	q(&got.Distinct, `SELECT COUNT(DISTINCT external_id) FROM users`)
	q(&got.Active, `SELECT COUNT(*) FROM users WHERE status = 'active'`)
	q(&got.Managed, `SELECT COUNT(*) FROM users WHERE manager_id IS NOT NULL`)
	q(&got.Members, `SELECT COUNT(*) FROM group_members`)
	q(&got.Ledger, `SELECT COUNT(*) FROM change_ledger WHERE run_id = '`+runID+`' AND action = 'created'`)
	want := struct{ Users, Distinct, Active, Managed, Members, Ledger int }{n, n, n, n - 1, n, n}
	if got != want {
		t.Fatalf("directory\n got %+v\nwant %+v", got, want)
	}
}
