package integration

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/usersync/usersync/directory"
	oktasim "github.com/usersync/usersync/idpsim/okta"
	"github.com/usersync/usersync/internal/reqtable"
)

// oktaE2E is a simulated org synced through the API, Temporal and Postgres.
type oktaE2E struct {
	t       *testing.T
	c       *apiClient
	sim     *oktasim.Server
	profile string
	dirKey  string
	scope   []string          // the profile's groups
	synced  []string          // ids of the groups group sync reads (the app's groups)
	created map[string]string // external id -> directory id of every user a run created
}

var oktaActive = map[string]bool{oktasim.StatusActive: true, oktasim.StatusProvisioned: true, oktasim.StatusRecovery: true,
	oktasim.StatusLockedOut: true, oktasim.StatusPasswordExpired: true}

// oktaAttrs is the profile's attributeMap: built-in and custom attributes.
var oktaAttrs = map[string]string{"title": "title", "department": "department", "costCenter": "costCenter", "badgeId": "badge"}

// TestOktaEndToEnd syncs a simulated org of 10,000 users through the API,
// Temporal and Postgres three times: as generated; after deactivations,
// suspensions, group moves, manager changes, login renames, new, deleted
// and activated users; and after reactivations. After each run the
// directory must be exactly what DESIGN.md's rules make of the org.
func TestOktaEndToEnd(t *testing.T) {
	st := newStack(t, stackOptions{PageSize: 1000, Quiet: true})

	sim := oktasim.New(oktasim.Config{Seed: 2024, Users: 10000})
	org := httptest.NewServer(reqtable.Check(t, "okta", sim))
	defer org.Close()
	e := &oktaE2E{t: t, c: st.api, sim: sim,
		created: map[string]string{}, synced: sim.AppGroups()}
	for _, name := range []string{"Engineering", "Sales", "Marketing", "Finance", "Support"} {
		e.scope = append(e.scope, e.group(name))
	}

	body := map[string]any{
		"name": "Okta", "provider": "okta",
		"okta":      map[string]any{"orgUrl": org.URL, "apiToken": oktasim.DefaultAPIToken, "appId": sim.AppID()},
		"groups":    e.scope,
		"groupSync": map[string]any{"mode": "all"}, "populateOrgChart": true, "attributeMap": oktaAttrs,
	}
	var prof struct {
		ID           string `json:"id"`
		DirectoryKey string `json:"directoryKey"`
	}
	if st := e.c.do("POST", "/profiles", body, &prof); st != 201 {
		t.Fatalf("create profile: %d", st)
	}
	e.profile, e.dirKey = prof.ID, prof.DirectoryKey
	var light struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	if st := e.c.do("POST", "/profiles/"+prof.ID+"/test", nil, &light); st != 200 || !light.OK {
		t.Fatalf("test connection: %d %+v", st, light)
	}
	// The picker: the app's groups, searched by prefix.
	var picked struct {
		Items []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"items"`
	}
	if st := e.c.do("GET", "/profiles/"+prof.ID+"/provider-groups?search=Intranet", nil, &picked); st != 200 ||
		len(picked.Items) != 2 || picked.Items[0].Type != "OKTA_GROUP" {
		t.Fatalf("picker: %d %+v", st, picked)
	}

	// Run 1: the org as generated.
	run := e.sync()
	want := e.check("first run")
	if run.Counts.Created != want.active || run.Counts.Disabled != 0 || run.Counts.ManagersLinked == 0 ||
		run.Counts.Skipped == 0 || run.Counts.GroupsCreated != len(e.synced) {
		t.Fatalf("first run counts %+v, want %d created", run.Counts, want.active)
	}

	// Mutations, from the users the first run created.
	pick := e.pickers()
	deactivated, suspended := pick(25, "Engineering"), pick(25, "Sales")
	for _, id := range deactivated {
		must(t, sim.Deactivate(id))
	}
	for _, id := range suspended {
		must(t, sim.Suspend(id))
	}
	movedOut := pick(15, "Marketing")
	for _, id := range movedOut {
		must(t, sim.MoveUser(id, e.group("Marketing"), e.group("Legal")))
	}
	across := pick(15, "Engineering")
	for _, id := range across {
		must(t, sim.MoveUser(id, e.group("Engineering"), e.group("Finance")))
	}
	var movedIn []string
	for _, u := range sim.Users() {
		if len(movedIn) < 15 && u.Status == oktasim.StatusActive && u.Profile["email"] != nil && u.Profile["department"] == "Operations" {
			must(t, sim.MoveUser(u.ID, e.group("Operations"), e.group("Sales")))
			movedIn = append(movedIn, u.ID)
		}
	}
	managers := pick(30, "Support")
	bosses := pick(3, "Finance")
	for i, id := range managers {
		must(t, sim.SetManager(id, bosses[i%3], []string{"id", "login", "manager"}[i%3]))
	}
	renamed := pick(3, "Sales")
	for i, id := range renamed {
		must(t, sim.RenameLogin(id, fmt.Sprintf("renamed.%d@example.com", i)))
	}
	retitled := pick(10, "Finance")
	for _, id := range retitled {
		must(t, sim.SetProfile(id, "title", "Chief Tester"))
	}
	readers, editors := e.group(oktasim.GroupIntranetReaders), e.group(oktasim.GroupIntranetEditors)
	for _, id := range pick(10, "Support") {
		_ = sim.RemoveFromGroup(readers, id)
		must(t, sim.AddToGroup(editors, id))
	}
	deleted := pick(2, "Marketing")
	for _, id := range deleted {
		must(t, sim.DeleteUser(id))
	}
	var activated []string
	for _, u := range sim.Users() {
		if len(activated) < 2 && u.Status == oktasim.StatusStaged && u.Profile["email"] != nil && e.inScope(u.ID) {
			must(t, sim.Activate(u.ID))
			activated = append(activated, u.ID)
		}
	}
	newID, err := sim.AddUser(map[string]any{"login": "new.hire@example.com", "firstName": "New", "lastName": "Hire",
		"email": "new.hire@example.com", "title": "Engineer", "managerId": bosses[0]}, oktasim.StatusActive, e.group("Engineering"))
	must(t, err)
	before := e.directory()

	// Run 2.
	run = e.sync()
	e.check("second run")
	disabled := len(deactivated) + len(suspended) + len(movedOut) + len(deleted)
	if run.Counts.Disabled != disabled || run.Counts.Created != len(movedIn)+len(activated)+1 || run.Counts.Reenabled != 0 {
		t.Fatalf("second run counts %+v: want %d disabled, %d created", run.Counts, disabled, len(movedIn)+len(activated)+1)
	}
	after := e.directory()
	for i, id := range renamed {
		if after[id].ID != before[id].ID || after[id].Username != fmt.Sprintf("renamed.%d@example.com", i) {
			t.Errorf("renamed user %s: before %+v after %+v", id, before[id], after[id])
		}
	}
	for _, id := range across {
		if !slices.Contains(after[id].Groups, "Finance") || slices.Contains(after[id].Groups, "Engineering") {
			t.Errorf("moved user %s has groups %v", id, after[id].Groups)
		}
	}
	for _, id := range retitled {
		if after[id].Attributes["title"] != "Chief Tester" {
			t.Errorf("user %s title %q", id, after[id].Attributes["title"])
		}
	}
	for i, id := range managers {
		if m := after[id].ManagerID; m == nil || *m != after[bosses[i%3]].ID {
			t.Errorf("user %s manager %v, want %s", id, m, after[bosses[i%3]].ID)
		}
	}
	if after[newID].Status != directory.StatusActive || after[newID].ManagerID == nil {
		t.Errorf("new hire %+v", after[newID])
	}

	// Run 3: some come back.
	for _, id := range suspended[:10] {
		must(t, sim.Unsuspend(id))
	}
	for _, id := range deactivated[:10] {
		must(t, sim.Reactivate(id))
	}
	for _, id := range movedOut[:5] {
		must(t, sim.MoveUser(id, e.group("Legal"), e.group("Marketing")))
	}
	run = e.sync()
	e.check("third run")
	if run.Counts.Reenabled != 25 || run.Counts.Disabled != 0 || run.Counts.Created != 0 {
		t.Fatalf("third run counts %+v: want 25 re-enabled", run.Counts)
	}
	final := e.directory()
	for _, id := range append(append(slices.Clone(suspended[:10]), deactivated[:10]...), movedOut[:5]...) {
		if final[id].ID != before[id].ID || final[id].Status != directory.StatusActive {
			t.Errorf("re-enabled user %s: %+v", id, final[id])
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *oktaE2E) group(name string) string {
	e.t.Helper()
	g, ok := e.sim.GroupByName(name)
	if !ok {
		e.t.Fatalf("no group %q", name)
	}
	return g.ID
}

func (e *oktaE2E) inScope(id string) bool {
	for _, g := range e.scope {
		if _, found := slices.BinarySearch(e.sim.Members(g), id); found {
			return true
		}
	}
	return false
}

// pickers returns a function that picks n users of a department that the
// last run created active, never the same user twice.
func (e *oktaE2E) pickers() func(n int, dept string) []string {
	used := map[string]bool{}
	dir := e.directory()
	return func(n int, dept string) []string {
		var out []string
		for _, u := range e.sim.Users() {
			d, ok := dir[u.ID]
			if len(out) == n {
				break
			}
			if ok && d.Status == directory.StatusActive && !used[u.ID] && u.Profile["department"] == dept &&
				slices.Contains(d.Groups, dept) {
				used[u.ID] = true
				out = append(out, u.ID)
			}
		}
		if len(out) < n {
			e.t.Fatalf("only %d active users in %s", len(out), dept)
		}
		return out
	}
}

func (e *oktaE2E) sync() runView {
	e.t.Helper()
	var run runView
	if st := e.c.do("POST", "/profiles/"+e.profile+"/sync", map[string]any{"dryRun": false}, &run); st != 202 {
		e.t.Fatalf("sync: %d", st)
	}
	run = e.c.waitRun(run.ID)
	if run.Status != directory.RunSucceeded {
		e.t.Fatalf("run %+v", run)
	}
	return run
}

// directory reads the profile's directory through the API, by external id.
func (e *oktaE2E) directory() map[string]directoryUser {
	e.t.Helper()
	return e.c.directory(e.dirKey)
}

type expectation struct{ active int }

// check compares the directory with what the rules make of the org now:
// every user of the selected groups that Okta has active (and that has
// what a user needs) is active with Okta's login, names, email, mapped
// attributes, manager and memberships of the app's groups; a user once
// synced that is inactive in Okta, out of scope or deleted is disabled;
// STAGED users, inactive users never synced and users without an email
// are not there.
func (e *oktaE2E) check(label string) expectation {
	t := e.t
	t.Helper()
	dir := e.directory()
	byName := map[string]directoryUser{}
	for _, d := range dir {
		byName[strings.ToLower(d.Username)] = d
	}
	scope := map[string]bool{}
	for _, g := range e.scope {
		for _, id := range e.sim.Members(g) {
			scope[id] = true
		}
	}
	groupsOf := map[string][]string{}
	for _, gid := range e.synced {
		g, ok := e.groupByID(gid)
		if !ok {
			continue
		}
		for _, id := range e.sim.Members(gid) {
			groupsOf[id] = append(groupsOf[id], g.Name)
		}
	}
	var want expectation
	errs := 0
	fail := func(format string, args ...any) {
		if errs++; errs <= 20 {
			t.Errorf(label+": "+format, args...)
		}
	}
	live := map[string]bool{}
	for _, u := range e.sim.Users() {
		live[u.ID] = true
		d, there := dir[u.ID]
		_, once := e.created[u.ID]
		email, _ := u.Profile["email"].(string)
		switch {
		case !scope[u.ID]:
			if there && d.Status != directory.StatusDisabled {
				fail("%s is out of scope but %s", u.Login(), d.Status)
			}
		case u.Status == oktasim.StatusStaged:
			if there {
				fail("STAGED %s was created", u.Login())
			}
		case email == "":
			if there {
				fail("%s has no email but was created", u.Login())
			}
		case !oktaActive[u.Status]:
			if there != once || (there && d.Status != directory.StatusDisabled) {
				fail("%s %s: there=%v synced before=%v status %q", u.Status, u.Login(), there, once, d.Status)
			}
		default:
			want.active++
			if !there {
				fail("%s %s missing", u.Status, u.Login())
				continue
			}
			if once && e.created[u.ID] != d.ID {
				fail("%s has a new account", u.Login())
			}
			if d.Status != directory.StatusActive || d.Username != u.Login() || d.FirstName != u.Profile["firstName"] ||
				d.LastName != u.Profile["lastName"] || d.Email != email {
				fail("%s: %+v", u.Login(), d)
			}
			for attr, field := range oktaAttrs {
				if v := fmt.Sprint(u.Profile[attr]); u.Profile[attr] != nil && d.Attributes[field] != v {
					fail("%s: %s = %q, want %q", u.Login(), field, d.Attributes[field], v)
				}
			}
			ref, _ := u.Profile["managerId"].(string)
			if ref == "" {
				ref, _ = u.Profile["manager"].(string)
			}
			var wantMgr *string
			if m, ok := dir[ref]; ok {
				wantMgr = &m.ID
			} else if m, ok := byName[strings.ToLower(ref)]; ok && ref != "" {
				wantMgr = &m.ID
			}
			if (wantMgr == nil) != (d.ManagerID == nil) || (wantMgr != nil && *wantMgr != *d.ManagerID) {
				fail("%s: manager %v, want %v (ref %q)", u.Login(), d.ManagerID, wantMgr, ref)
			}
			got, exp := slices.Clone(d.Groups), slices.Clone(groupsOf[u.ID])
			sort.Strings(got)
			sort.Strings(exp)
			if !slices.Equal(got, exp) {
				fail("%s: groups %v, want %v", u.Login(), got, exp)
			}
		}
	}
	active := 0
	for ext, d := range dir {
		if !live[ext] && d.Status != directory.StatusDisabled {
			fail("%s was deleted in Okta but is %s", d.Username, d.Status)
		}
		if d.Status == directory.StatusActive {
			active++
		}
		e.created[ext] = d.ID
	}
	if active != want.active {
		fail("%d active users, want %d", active, want.active)
	}
	if errs > 20 {
		t.Errorf("%s: %d differences in all", label, errs)
	}
	if errs > 0 {
		t.FailNow()
	}
	return want
}

func (e *oktaE2E) groupByID(id string) (oktasim.Group, bool) {
	for _, g := range e.sim.Groups() {
		if g.ID == id {
			return g, true
		}
	}
	return oktasim.Group{}, false
}
