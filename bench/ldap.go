package bench

// The LDAP sizes: an OpenLDAP directory (Debian's slapd, started by
// provider/ldap/ldaptest on loopback, StartTLS with its own CA) synced by
// the same worker, Temporal and database as the Entra ID tenants, timed the
// same way. The directory is written as LDIF and bulk-loaded with slapadd
// before slapd starts, which is not timed: adding a hundred thousand
// entries over LDAP would take longer than syncing them.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"gonum.org/v1/plot/plotter"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/ldap"
	"github.com/usersync/usersync/provider/ldap/ldaptest"
)

// LDAPRun is what only an LDAP size has.
type LDAPRun struct {
	Entries int           // users, groups and the base entries loaded
	Groups  int           // team groups, under the one selected root group
	Load    time.Duration // writing the LDIF and slapadd, not counted
	Want    ldapCounts    // the counts the layout makes exact
	Version string        // slapd's
}

// ldapPageLimit is the page slapd allows the service account: Active
// Directory's MaxPageSize default, above the provider's page of 500. The
// test harness's own limit (50) would measure round trips, not a directory.
const ldapPageLimit = 1000

// ldapLayout is the directory of a size. User i is uid=u<i>; its manager
// is user (i-1)/10 (a tree with ten reports each); it is in team i mod
// groups, every team a member of "all-staff", the group the profile
// selects; 1% are in no team (out of scope) and 2% are locked
// (nsAccountLock, disabled).
type ldapLayout struct{ n, groups int }

func newLDAPLayout(n int) ldapLayout {
	return ldapLayout{n: n, groups: min(max(12, n/2000), 600)}
}

func (l ldapLayout) outOfScope(i int) bool { return i%100 == 99 }
func (l ldapLayout) locked(i int) bool     { return i%50 == 7 }
func (l ldapLayout) created(i int) bool    { return i >= 0 && i < l.n && !l.outOfScope(i) && !l.locked(i) }

// managerOf is user i's manager, -1 for user 0, who heads the tree.
func (l ldapLayout) managerOf(i int) int {
	if i == 0 {
		return -1
	}
	return (i - 1) / 10
}

func uidOf(i int) string { return fmt.Sprintf("u%07d", i) }

func teamName(g int) string { return fmt.Sprintf("team-%03d", g) }

const ldapRoot = "all-staff"

// ldapCounts are the counts of each run that the layout decides.
type ldapCounts struct {
	Fetched, Created, Inactive, ManagersLinked, ManagersUnresolved, Groups, Memberships int
	// The incremental run's changes, by kind.
	Attrs, Moves, Leavers int
}

// want works out the counts of a first sync from the layout.
func (l ldapLayout) want() ldapCounts {
	var c ldapCounts
	for i := range l.n {
		if !l.outOfScope(i) {
			c.Fetched++
		}
		switch {
		case l.outOfScope(i):
		case l.locked(i):
			c.Inactive++
		default:
			c.Created++
			// Its team's, and all-staff's through the team.
			c.Memberships += 2
			if m := l.managerOf(i); m >= 0 {
				if l.created(m) {
					c.ManagersLinked++
				} else {
					c.ManagersUnresolved++
				}
			}
		}
	}
	c.Groups = l.groups + 1
	return c
}

// writeLDIF writes the layout's entries, dated a day back: an OpenLDAP
// change state starts five minutes before its run (the skew it allows the
// clocks), and entries loaded within that window would make the re-sync
// read them all again, which no directory does in production.
func (l ldapLayout) writeLDIF(w io.Writer, when time.Time) (int, error) {
	stamp := when.UTC().Format("20060102150405Z")
	n := 0
	add := func(e ldaptest.Entry) error {
		e.Attrs["createTimestamp"] = []string{stamp}
		e.Attrs["modifyTimestamp"] = []string{stamp}
		n++
		return ldaptest.WriteLDIF(w, e)
	}
	teams := make([][]string, l.groups)
	for i := range l.n {
		p := ldaptest.Person{Name: uidOf(i), Given: "Person", Sn: fmt.Sprintf("Number %d", i),
			Mail: uidOf(i) + "@example.org", Disabled: l.locked(i)}
		if m := l.managerOf(i); m >= 0 {
			p.Manager = ldaptest.UserDN("uid", uidOf(m))
		}
		e := ldaptest.OpenLDAPUser(p)
		e.Attrs["title"] = []string{fmt.Sprintf("Title %d", i%37)}
		e.Attrs["departmentNumber"] = []string{fmt.Sprintf("D%02d", i%l.groups)}
		if err := add(e); err != nil {
			return n, err
		}
		if !l.outOfScope(i) {
			teams[i%l.groups] = append(teams[i%l.groups], e.DN)
		}
	}
	root := make([]string, 0, l.groups)
	for g, members := range teams {
		if err := add(ldaptest.OpenLDAPGroup(teamName(g), members...)); err != nil {
			return n, err
		}
		root = append(root, ldaptest.GroupDN(teamName(g)))
	}
	return n, add(ldaptest.OpenLDAPGroup(ldapRoot, root...))
}

// startLDAP starts slapd with the layout's directory loaded.
func (e *env) startLDAP(l ldapLayout) (*ldaptest.Server, LDAPRun, error) {
	info := LDAPRun{Groups: l.groups, Want: l.want(), Version: slapdVersion()}
	dir := filepath.Join(e.dir, fmt.Sprintf("ldap-%d", l.n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, info, err
	}
	s, err := ldaptest.StartInWith(dir, ldaptest.Options{SizeLimit: ldapPageLimit})
	if err != nil {
		return nil, info, err
	}
	t0 := time.Now()
	path := filepath.Join(dir, "directory.ldif")
	f, err := os.Create(path)
	if err != nil {
		s.Stop()
		return nil, info, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	n, err := l.writeLDIF(bw, time.Now().Add(-24*time.Hour))
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.Load(path)
	}
	if err != nil {
		s.Stop()
		return nil, info, fmt.Errorf("load the directory: %w", err)
	}
	info.Load = time.Since(t0)
	// ou=people, ou=groups, the base and the reader were added at the start.
	info.Entries = n + 4
	e.log.Info("ldap directory loaded", "entries", info.Entries, "took", info.Load.Round(time.Millisecond), "url", s.URL)
	return s, info, nil
}

// ldapSize runs the scenarios of one LDAP directory size.
func (e *env) ldapSize(ctx context.Context, n int) (Result, error) {
	r := Result{Size: n}
	l := newLDAPLayout(n)
	s, info, err := e.startLDAP(l)
	if err != nil {
		return r, err
	}
	defer s.Stop()
	r.LDAP = &info
	p, err := e.createLDAPProfile(ctx, s, n)
	if err != nil {
		return r, err
	}
	if err := e.runs(ctx, &r, p, "ldap: ", func() (int, error) { return l.change(s, e.o.ChangeShare, &info.Want) }); err != nil {
		return r, err
	}
	r.LDAP = &info
	return r, checkLDAP(r)
}

// createLDAPProfile stores the profile of the directory: the members of
// all-staff at any depth, every group synced, managers, two mapped
// attributes; bound as the harness's service account over StartTLS.
func (e *env) createLDAPProfile(ctx context.Context, s *ldaptest.Server, n int) (*directory.Profile, error) {
	root, err := entryUUID(s, ldaptest.GroupDN(ldapRoot))
	if err != nil {
		return nil, err
	}
	cfg := &profile.Config{Name: fmt.Sprintf("Bench LDAP %d", n), Provider: ldap.Name,
		Block: &ldap.Profile{URL: s.URL, StartTLS: true, CABundle: s.CAPEM, BindDN: ldaptest.ReaderDN,
			BindPassword: s.ReaderPassword, BaseDN: ldaptest.BaseDN, Flavour: ldap.FlavourOpenLDAP},
		Groups: []string{root}, GroupSync: profile.GroupSync{Mode: profile.GroupSyncAll}, PopulateOrgChart: true,
		AttributeMap: map[string]string{"departmentNumber": "department", "title": "title"},
		Safety:       profile.Safety{MaxDisables: n, MaxDisablePercent: 100}}
	return e.storeProfile(ctx, cfg, fmt.Sprintf("bench-ldap-%d", n))
}

// entryUUID reads the entryUUID of dn as the admin.
func entryUUID(s *ldaptest.Server, dn string) (string, error) {
	c, err := s.Admin()
	if err != nil {
		return "", err
	}
	defer c.Close()
	res, err := c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"entryUUID"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return "", fmt.Errorf("entryUUID of %s: %w", dn, err)
	}
	return res.Entries[0].GetAttributeValue("entryUUID"), nil
}

// change makes share of the users change as a directory's working week
// does, without touching a group (a changed group makes an OpenLDAP run
// read in full, see provider/ldap's delta.go): 60% a new title, 20% a new
// manager, 20% leavers locked. The changed users are in scope and active;
// the leavers manage no one, so that no one else's outcome moves.
func (l ldapLayout) change(s *ldaptest.Server, share float64, want *ldapCounts) (int, error) {
	total := max(int(float64(l.n)*share), 5)
	step := max(l.n/total, 1)
	want.Attrs, want.Moves = total*3/5, total/5
	want.Leavers = total - want.Attrs - want.Moves
	c, err := s.Admin()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	made := 0
	for k := range total {
		// i mod 100 is 3 (while step is 100): neither out of scope nor
		// locked; the leavers, last, are high numbers, who manage no one.
		i := (k*step + 3) % l.n
		if !l.created(i) || (k >= want.Attrs+want.Moves && 10*i+1 < l.n) {
			return made, fmt.Errorf("change %d picked user %d, which the layout does not allow", k, i)
		}
		req := goldap.NewModifyRequest(ldaptest.UserDN("uid", uidOf(i)), nil)
		switch {
		case k < want.Attrs:
			req.Replace("title", []string{fmt.Sprintf("Reorganised %d", k)})
		case k < want.Attrs+want.Moves:
			// Whoever reported elsewhere now reports to the head of the
			// tree (or, reporting to it already, to user 1).
			boss := 0
			if l.managerOf(i) == 0 {
				boss = 1
			}
			req.Replace("manager", []string{ldaptest.UserDN("uid", uidOf(boss))})
		default:
			req.Replace("nsAccountLock", []string{"TRUE"})
		}
		if err := c.Modify(req); err != nil {
			return made, fmt.Errorf("change %s: %w", uidOf(i), err)
		}
		made++
	}
	return made, nil
}

// checkLDAP fails a size whose counts are not the layout's: every user
// the first run, nothing the re-syncs, exactly the changes the last.
func checkLDAP(r Result) error {
	w := r.LDAP.Want
	full := directory.RunCounts{Fetched: w.Fetched, Created: w.Created, Inactive: w.Inactive,
		GroupsCreated: w.Groups, MembershipsAdded: w.Memberships, ManagersLinked: w.ManagersLinked,
		ManagersUnresolved: w.ManagersUnresolved}
	var errs []string
	check := func(what string, ok bool, got any) {
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: got %+v", what, got))
		}
	}
	check(fmt.Sprintf("full sync: want mode full and %+v", full), r.Full.Mode == directory.ModeFull && r.Full.Counts == full &&
		r.Full.UserRows == int64(w.Created), r.Full)
	check("re-sync, nothing changed: want a delta run that fetches and writes nothing", r.NoChange.Mode == directory.ModeDelta &&
		r.NoChange.Counts.Fetched == 0 && r.NoChange.UserRows == 0 && r.NoChange.Counts.Created+r.NoChange.Counts.Updated+r.NoChange.Counts.Disabled == 0, r.NoChange)
	check("forced full re-sync, nothing changed: want a full run that writes nothing", r.FullNoChange.Mode == directory.ModeFull &&
		r.FullNoChange.UserRows == 0 && r.FullNoChange.Counts.Unchanged == w.Created && r.FullNoChange.Counts.Fetched == w.Fetched &&
		r.FullNoChange.Counts.Created+r.FullNoChange.Counts.Updated+r.FullNoChange.Counts.Disabled == 0, r.FullNoChange)
	inc := r.Incremental.Counts
	check(fmt.Sprintf("incremental sync: want a delta run of the %d changes (%d titles, %d managers, %d leavers)", r.Changes, w.Attrs, w.Moves, w.Leavers),
		r.Incremental.Mode == directory.ModeDelta && inc.Fetched == r.Changes && inc.Updated == w.Attrs+w.Moves &&
			inc.Disabled == w.Leavers && inc.ManagersLinked == w.Moves && inc.Created == 0 && r.Incremental.UserRows == int64(r.Changes), r.Incremental)
	if len(errs) > 0 {
		return fmt.Errorf("ldap: the counts are not exact:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// slapdVersion is slapd's version line ("slapd 2.5.13+dfsg-5"), or "".
func slapdVersion() string {
	out, _ := exec.Command(ldaptest.Path(), "-VV").CombinedOutput() //nolint:errcheck // slapd -VV exits non-zero
	line, _, _ := strings.Cut(string(out), "\n")
	if _, v, ok := strings.Cut(line, "$OpenLDAP: "); ok {
		return strings.TrimSpace(strings.SplitN(v, " (", 2)[0])
	}
	return ""
}

// splitLDAP separates the Entra ID sizes from the LDAP ones.
func splitLDAP(rs []Result) (entra, ldapRs []Result) {
	for _, r := range rs {
		if r.LDAP != nil {
			ldapRs = append(ldapRs, r)
		} else {
			entra = append(entra, r)
		}
	}
	return entra, ldapRs
}

// writeLDAP writes the LDAP sizes' section of the report.
func writeLDAP(w io.Writer, rs []Result) {
	if len(rs) == 0 {
		return
	}
	version := rs[0].LDAP.Version
	if version == "" {
		version = "slapd"
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## LDAP directory (OpenLDAP)")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Debian's %s on loopback (provider/ldap/ldaptest), StartTLS with its own CA, an mdb database, pages of up to %s entries "+
		"(Active Directory's MaxPageSize; the provider asks for 500); the same worker, Temporal dev server and database as above. "+
		"The users are inetOrgPerson entries in team groups (groupOfNames, one per 2,000 users, at least 12) nested under one group, "+
		"which the profile selects: 1%% are in no team (out of scope), 2%% are locked (nsAccountLock, so not created); "+
		"everyone has a manager (ten reports each); every group is synced; two mapped attributes. "+
		"The directory is written as LDIF and loaded with slapadd before slapd starts: that load is not timed. "+
		"The 1%% changed are 60%% new titles, 20%% new managers and 20%% leavers locked, and no group: "+
		"a changed group makes an OpenLDAP run read in full, since LDAP does not say which members left. "+
		"Every run's counts were checked against the layout (created, inactive, managers, groups, memberships; then nothing; "+
		"then exactly the changes), or the bench fails.\n\n", version, thousands(ldapPageLimit))
	fmt.Fprintln(w, "| users | entries | load, not timed (s) | full sync: wall (s) | users/s | worker peak RSS (MB) | rows written | created | inactive | managers linked | groups | memberships |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		c := r.Full.Counts
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n", thousands(r.Size), thousands(r.LDAP.Entries),
			secs(r.LDAP.Load), secs(r.Full.Wall), thousands(int(r.Full.UsersPerSecond())), mb(r.Full.PeakRSS), thousands(int(r.Full.Rows)),
			thousands(c.Created), thousands(c.Inactive), thousands(c.ManagersLinked), c.GroupsCreated, thousands(c.MembershipsAdded))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| users | nothing changed: wall (s) | fetched | user rows written | forced full, nothing changed: wall (s) | user rows written | 1% changed: changes | wall (s) | fetched | updated | disabled | user rows written | peak RSS (MB) |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		inc := r.Incremental.Counts
		fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", thousands(r.Size),
			secs(r.NoChange.Wall), r.NoChange.Counts.Fetched, r.NoChange.UserRows, secs(r.FullNoChange.Wall), r.FullNoChange.UserRows,
			thousands(r.Changes), secs(r.Incremental.Wall), thousands(inc.Fetched), thousands(inc.Updated), thousands(inc.Disabled),
			thousands(int(r.Incremental.UserRows)), mb(max(r.NoChange.PeakRSS, r.FullNoChange.PeakRSS, r.Incremental.PeakRSS)))
	}
	fmt.Fprintln(w)
	writePhases(w, "###", rs)
}

// ldapSeries are the LDAP sizes' lines of the plot.
func ldapSeries(rs []Result) []any {
	if len(rs) == 0 {
		return nil
	}
	var args []any
	for _, s := range []struct {
		name string
		get  func(Result) time.Duration
	}{
		{"LDAP: full sync", func(r Result) time.Duration { return r.Full.Wall }},
		{"LDAP: incremental, 1% changed", func(r Result) time.Duration { return r.Incremental.Wall }},
		{"LDAP: re-sync, no change", func(r Result) time.Duration { return r.NoChange.Wall }},
	} {
		pts := make(plotter.XYs, 0, len(rs))
		for _, r := range rs {
			pts = append(pts, plotter.XY{X: float64(r.Size), Y: max(s.get(r).Seconds(), 0.01)})
		}
		args = append(args, s.name, pts)
	}
	return args
}
