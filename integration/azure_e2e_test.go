package integration

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/idpsim/graph"
	"github.com/usersync/usersync/internal/reqtable"
	"github.com/usersync/usersync/provider"
)

// azureStack is the API, an in-process worker on a real Temporal dev
// server, Postgres, and a Graph simulator that serves every tenant.
type azureStack struct {
	t   *testing.T
	c   *apiClient
	sim *graph.Server
	gr  *httptest.Server
}

func newAzureStack(t *testing.T) *azureStack {
	t.Helper()
	st := newStack(t, stackOptions{Quiet: true})
	sim := graph.New(graph.Options{Seed: 6})
	gr := httptest.NewServer(reqtable.Check(t, "graph", sim))
	t.Cleanup(gr.Close)
	return &azureStack{t: t, c: st.api, sim: sim, gr: gr}
}

// azureE2E is one profile on one simulated tenant.
type azureE2E struct {
	*azureStack
	ten     *graph.Tenant
	name    string
	profile string
	dirKey  string
	scope   []string
	regex   *regexp.Regexp
	created map[string]string // external id -> directory id of every user a run created
}

// azureAttrs is the profile's attributeMap: a list property, a multi-valued
// one and a per-user one ($batch).
var azureAttrs = map[string]string{"department": "department", "businessPhones": "phones", "skills": "skills"}

func (s *azureStack) profile(name string, ten *graph.Tenant, scope []string, pattern string) *azureE2E {
	s.t.Helper()
	e := &azureE2E{azureStack: s, ten: ten, name: name, scope: scope, regex: regexp.MustCompile(pattern), created: map[string]string{}}
	c := ten.Client()
	body := map[string]any{
		"name": name, "provider": "azure",
		"azure": map[string]any{"tenantId": ten.ID, "clientId": c.ID, "clientSecret": c.Secret,
			"authorityUrl": s.gr.URL, "graphBaseUrl": s.gr.URL + "/v1.0"},
		"groups": scope, "groupSync": map[string]any{"mode": "regex", "pattern": pattern},
		"populateOrgChart": true, "attributeMap": azureAttrs,
	}
	var prof struct {
		ID           string `json:"id"`
		DirectoryKey string `json:"directoryKey"`
	}
	if st := s.c.do("POST", "/profiles", body, &prof); st != 201 {
		s.t.Fatalf("create profile %s: %d", name, st)
	}
	e.profile, e.dirKey = prof.ID, prof.DirectoryKey
	return e
}

// TestAzureEndToEnd syncs a simulated Entra ID tenant of 20,000 users in
// nested groups through the API, Temporal and Postgres, with group sync by
// regex; then changes the tenant (leavers, joiners, a user without mail,
// users moved out of scope, disabled accounts, manager changes, UPN
// renames, a group renamed out of the regex) and syncs again. After each
// run the directory must be exactly what DESIGN.md's rules make of the
// tenant.
func TestAzureEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("long integration test")
	}
	s := newAzureStack(t)
	ten := s.sim.AddTenant(graph.TenantOptions{Seed: 2026, Users: 20000, Groups: 60, Depth: 3,
		OutOfScopeShare: 0.03, DisabledShare: 0.02, MailEnabledSecurityGroups: 2, Microsoft365Groups: 2, DistributionGroups: 2})
	root, _ := ten.GroupByName("All Staff")
	e := s.profile("Contoso Entra", ten, []string{root.ID}, `^(Engineering|Sales)`)

	// Test connection, and the picker through the API: security groups
	// only, searched by word.
	var light struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	if st := s.c.do("POST", "/profiles/"+e.profile+"/test", nil, &light); st != 200 || !light.OK {
		t.Fatalf("test connection: %d %+v", st, light)
	}
	var picked struct {
		Items      []provider.Group `json:"items"`
		NextCursor string           `json:"nextCursor"`
	}
	if st := s.c.do("GET", "/profiles/"+e.profile+"/provider-groups?search=sales&limit=2", nil, &picked); st != 200 ||
		len(picked.Items) != 2 || picked.NextCursor == "" {
		t.Fatalf("picker: %d %+v", st, picked)
	}
	all := e.picker("")
	security := 0
	for _, g := range ten.Groups() {
		if g.Kind == graph.Security {
			security++
		}
	}
	if len(all) != security {
		t.Fatalf("picker shows %d groups, the tenant has %d security groups", len(all), security)
	}

	// Run 1: the tenant as generated.
	run := e.sync()
	want := e.check("first run")
	if run.Counts.Created != want.active || run.Counts.Disabled != 0 || run.Counts.ManagersLinked == 0 ||
		run.Counts.GroupsCreated != want.groups || want.active < 18000 {
		t.Fatalf("first run counts %+v, want %d created, %d groups", run.Counts, want.active, want.groups)
	}

	// The changes. One group of users that group sync reads leaves the
	// regex by a rename; the users changed otherwise are not in it, so that
	// what the rename does is seen apart from the rest. Joiners go to
	// another such group.
	var left, leaf graph.Group
	isGroup := map[string]bool{}
	for _, g := range ten.Groups() {
		isGroup[g.ID] = true
	}
	leafWithUsers := func(g graph.Group) bool {
		return g.Kind == graph.Security && e.regex.MatchString(g.DisplayName) && len(g.Members) > 50 &&
			!slices.ContainsFunc(g.Members, func(m string) bool { return isGroup[m] })
	}
	for _, g := range ten.Groups() {
		switch {
		case !leafWithUsers(g):
		case left.ID == "":
			left = g
		case leaf.ID == "":
			leaf = g
		}
	}
	if left.ID == "" || leaf.ID == "" {
		t.Fatal("fixture lacks two groups of users that group sync reads")
	}
	pick := e.picker2(ten.TransitiveUsers(left.ID))
	leavers := pick(40)
	for _, id := range leavers {
		must(t, ten.DeleteUser(id))
	}
	disabled := pick(25)
	for _, id := range disabled {
		must(t, ten.SetEnabled(id, false))
	}
	movedOut := pick(10)
	for _, id := range movedOut {
		for _, g := range ten.Groups() {
			if slices.Contains(g.Members, id) {
				must(t, ten.RemoveMember(g.ID, id))
			}
		}
	}
	renamed := pick(3)
	for i, id := range renamed {
		must(t, ten.RenameUPN(id, fmt.Sprintf("renamed.%d@%s", i, ten.Domain)))
	}
	bosses := pick(2)
	managed := pick(12)
	for i, id := range managed {
		must(t, ten.SetManager(id, bosses[i%2]))
	}
	var joiners []string
	for i := range 30 {
		id, err := ten.NewUser(graph.User{UserPrincipalName: fmt.Sprintf("joiner.%d@%s", i, ten.Domain), GivenName: "Joiner",
			Surname: fmt.Sprint(i), Mail: fmt.Sprintf("joiner.%d@%s", i, ten.Domain), AccountEnabled: true, ManagerID: bosses[0],
			Props: map[string]any{"department": "Sales", "skills": []string{"go"}}}, leaf.ID)
		must(t, err)
		joiners = append(joiners, id)
	}
	incomplete, err := ten.NewUser(graph.User{UserPrincipalName: "nomail@" + ten.Domain, GivenName: "No", Surname: "Mail",
		AccountEnabled: true}, leaf.ID)
	must(t, err)
	must(t, ten.RenameGroup(left.ID, "Archive "+left.DisplayName))
	before := e.directory()

	inLeft := 0
	for _, id := range left.Members {
		if before[id].Status == directory.StatusActive {
			inLeft++
		}
	}

	// Run 2.
	run = e.sync()
	e.check("second run")
	wantDisabled := len(leavers) + len(disabled) + len(movedOut)
	if run.Counts.Disabled != wantDisabled || run.Counts.Created != len(joiners) || run.Counts.Skipped != 1 ||
		run.Counts.Reenabled != 0 || run.Counts.MembershipsRemoved < inLeft || inLeft < 50 {
		t.Fatalf("second run counts %+v: want %d disabled, %d created, 1 skipped", run.Counts, wantDisabled, len(joiners))
	}
	after := e.directory()
	for i, id := range renamed {
		if after[id].ID != before[id].ID || after[id].Username != fmt.Sprintf("renamed.%d@%s", i, ten.Domain) {
			t.Errorf("renamed user %s: before %+v after %+v", id, before[id], after[id])
		}
	}
	if _, there := after[incomplete]; there {
		t.Error("the user without mail was created")
	}
	var skipped struct {
		Items []struct {
			Reason string `json:"reason"`
		} `json:"items"`
	}
	s.c.do("GET", "/runs/"+run.ID+"/changes?action=skipped", nil, &skipped)
	if len(skipped.Items) != 1 || !strings.Contains(skipped.Items[0].Reason, "email") {
		t.Errorf("ledger of skips %+v", skipped)
	}
	// The group that left the regex is kept, with no members.
	var groups struct {
		Items []directory.Group `json:"items"`
	}
	s.c.do("GET", "/groups?limit=1000", nil, &groups)
	kept := false
	for _, g := range groups.Items {
		if g.ExternalID != nil && *g.ExternalID == left.ID {
			kept = true
			if g.MemberCount != 0 || g.Name != left.DisplayName {
				t.Errorf("group that left the regex: %+v", g)
			}
		}
	}
	if !kept {
		t.Errorf("group %s was deleted", left.DisplayName)
	}

	// Run 3: nothing changed, nothing written.
	run = e.sync()
	e.check("third run")
	if run.Counts.Created+run.Counts.Updated+run.Counts.Disabled+run.Counts.MembershipsAdded+run.Counts.MembershipsRemoved != 0 {
		t.Fatalf("an unchanged tenant changed the directory: %+v", run.Counts)
	}
}

// TestAzureTwoTenantsSideBySide syncs two profiles on two tenants of one
// simulator at the same time; then changes and syncs one of them: neither
// touches the other's users.
func TestAzureTwoTenantsSideBySide(t *testing.T) {
	s := newAzureStack(t)
	ta := s.sim.AddTenant(graph.TenantOptions{Seed: 31, Users: 1500, Groups: 12, Depth: 2, OutOfScopeShare: 0.05})
	tb := s.sim.AddTenant(graph.TenantOptions{Seed: 32, Users: 1200, Groups: 9, Depth: 2, OutOfScopeShare: 0.05})
	ra, _ := ta.GroupByName("All Staff")
	rb, _ := tb.GroupByName("All Staff")
	a := s.profile("Tenant A", ta, []string{ra.ID}, `.`)
	b := s.profile("Tenant B", tb, []string{rb.ID}, `^(All Staff|Engineering)`)

	var wg sync.WaitGroup
	for _, e := range []*azureE2E{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.sync()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	a.check("tenant A")
	b.check("tenant B")
	bBefore := b.directory()

	// A profile with a wrong secret gets a red light that says why, and
	// never shows the secret.
	const wrong = "Wr0ng~secret-for-the-light"
	bad := s.profile("Wrong secret", ta, []string{ra.ID}, `.`)
	body := map[string]any{"name": "Wrong secret", "provider": "azure", "groups": []string{ra.ID},
		"azure": map[string]any{"tenantId": ta.ID, "clientId": ta.Client().ID, "clientSecret": wrong,
			"authorityUrl": s.gr.URL, "graphBaseUrl": s.gr.URL + "/v1.0"}}
	if st := s.c.do("PUT", "/profiles/"+bad.profile, body, nil); st != 200 {
		t.Fatalf("put profile: %d", st)
	}
	var light struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	if st := s.c.do("POST", "/profiles/"+bad.profile+"/test", nil, &light); st != 200 || light.OK ||
		!strings.Contains(light.Message, "AADSTS7000215") || !strings.Contains(light.Message, "azure.clientSecret") ||
		strings.Contains(light.Message, wrong) {
		t.Fatalf("test connection with a wrong secret: %d %+v", st, light)
	}

	for _, id := range a.picker2(nil)(100) {
		must(t, ta.DeleteUser(id))
	}
	if run := a.sync(); run.Counts.Disabled != 100 {
		t.Fatalf("tenant A second run %+v", run.Counts)
	}
	a.check("tenant A again")
	b.check("tenant B after A's run")
	for ext, u := range b.directory() {
		if old := bBefore[ext]; old.ID != u.ID || old.Status != u.Status || old.Username != u.Username {
			t.Fatalf("tenant B user changed by tenant A's run: %+v -> %+v", old, u)
		}
	}
}

func (e *azureE2E) picker(search string) []provider.Group {
	e.t.Helper()
	var out []provider.Group
	cursor := ""
	for {
		var page struct {
			Items      []provider.Group `json:"items"`
			NextCursor string           `json:"nextCursor"`
		}
		path := "/profiles/" + e.profile + "/provider-groups?limit=25&search=" + url.QueryEscape(search) + "&cursor=" + url.QueryEscape(cursor)
		if st := e.c.do("GET", path, nil, &page); st != 200 {
			e.t.Fatalf("picker: %d", st)
		}
		out = append(out, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			return out
		}
	}
}

// picker2 returns a function that picks n users the last run created and
// left active, never the same one twice, and none of except.
func (e *azureE2E) picker2(except []string) func(n int) []string {
	used := map[string]bool{}
	for _, id := range except {
		used[id] = true
	}
	dir := e.directory()
	return func(n int) []string {
		var out []string
		for _, u := range e.ten.Users() {
			if len(out) == n {
				break
			}
			if d, ok := dir[u.ID]; ok && d.Status == directory.StatusActive && !used[u.ID] {
				used[u.ID] = true
				out = append(out, u.ID)
			}
		}
		if len(out) < n {
			e.t.Fatalf("only %d active users to pick", len(out))
		}
		return out
	}
}

func (e *azureE2E) sync() runView {
	e.t.Helper()
	var run runView
	if st := e.c.do("POST", "/profiles/"+e.profile+"/sync", map[string]any{"dryRun": false}, &run); st != 202 {
		e.t.Errorf("sync %s: %d", e.name, st)
		return run
	}
	start := time.Now()
	deadline := start.Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if e.c.do("GET", "/runs/"+run.ID, nil, &run) != 200 {
			e.t.Errorf("GET run %s", run.ID)
			return run
		}
		if run.Status != directory.RunRunning {
			e.t.Logf("%s: run %s in %s: %+v", e.name, run.Status, time.Since(start).Round(time.Millisecond), run.Counts)
			if run.Status != directory.RunSucceeded {
				e.t.Errorf("%s: run %+v", e.name, run)
			}
			return run
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Errorf("%s: run %s still running", e.name, run.ID)
	return run
}

// directory reads the profile's directory through the API, by external id.
func (e *azureE2E) directory() map[string]directoryUser {
	e.t.Helper()
	return e.c.directory(e.dirKey)
}

type azureExpectation struct{ active, groups int }

// check compares the directory with what the rules make of the tenant now:
// every transitive member of the selected groups that is enabled and has
// a username, names and a valid mail is active with Graph's values, its
// manager when the manager is in the directory, and exactly its
// memberships of the security groups the regex matches; a user once
// synced that is disabled, out of scope or deleted is disabled (never
// deleted, never a second account); disabled users never synced and users
// without mail are not there.
func (e *azureE2E) check(label string) azureExpectation {
	t := e.t
	t.Helper()
	dir := e.directory()
	scope := map[string]bool{}
	for _, g := range e.scope {
		for _, id := range e.ten.TransitiveUsers(g) {
			scope[id] = true
		}
	}
	var want azureExpectation
	groupsOf := map[string][]string{}
	for _, g := range e.ten.Groups() {
		if g.Kind != graph.Security || !e.regex.MatchString(g.DisplayName) {
			continue
		}
		want.groups++
		for _, id := range e.ten.TransitiveUsers(g.ID) {
			groupsOf[id] = append(groupsOf[id], g.DisplayName)
		}
	}
	errs := 0
	fail := func(format string, args ...any) {
		if errs++; errs <= 20 {
			t.Errorf(e.name+", "+label+": "+format, args...)
		}
	}
	live := map[string]bool{}
	for _, u := range e.ten.Users() {
		live[u.ID] = true
		d, there := dir[u.ID]
		_, once := e.created[u.ID]
		switch {
		case !scope[u.ID]:
			if there != once || (there && d.Status != directory.StatusDisabled) {
				fail("%s is out of scope: there=%t synced before=%t status %q", u.UserPrincipalName, there, once, d.Status)
			}
		case u.Mail == "" || u.Surname == "" || u.GivenName == "":
			if there {
				fail("%s lacks a required field but was created", u.UserPrincipalName)
			}
		case !u.AccountEnabled:
			if there != once || (there && d.Status != directory.StatusDisabled) {
				fail("disabled %s: there=%t synced before=%t status %q", u.UserPrincipalName, there, once, d.Status)
			}
		default:
			want.active++
			if !there {
				fail("%s missing", u.UserPrincipalName)
				continue
			}
			if once && e.created[u.ID] != d.ID {
				fail("%s has a new account", u.UserPrincipalName)
			}
			if d.Status != directory.StatusActive || d.Username != u.UserPrincipalName || d.FirstName != u.GivenName ||
				d.LastName != u.Surname || d.Email != u.Mail {
				fail("%s: %+v", u.UserPrincipalName, d)
			}
			wantAttrs := map[string]string{}
			if v, ok := u.Props["department"].(string); ok {
				wantAttrs["department"] = v
			}
			for prop, field := range map[string]string{"businessPhones": "phones", "skills": "skills"} {
				if v, ok := u.Props[prop].([]string); ok && len(v) > 0 {
					wantAttrs[field] = strings.Join(v, ";")
				}
			}
			for k, v := range wantAttrs {
				if d.Attributes[k] != v {
					fail("%s: %s = %q, want %q", u.UserPrincipalName, k, d.Attributes[k], v)
				}
			}
			var wantMgr *string
			if m, ok := dir[u.ManagerID]; ok {
				wantMgr = &m.ID
			}
			if (wantMgr == nil) != (d.ManagerID == nil) || (wantMgr != nil && *wantMgr != *d.ManagerID) {
				fail("%s: manager %v, want %v", u.UserPrincipalName, d.ManagerID, wantMgr)
			}
			got, exp := slices.Clone(d.Groups), slices.Clone(groupsOf[u.ID])
			sort.Strings(got)
			sort.Strings(exp)
			if !slices.Equal(got, exp) {
				fail("%s: groups %v, want %v", u.UserPrincipalName, got, exp)
			}
		}
	}
	active := 0
	for ext, d := range dir {
		if !live[ext] && d.Status != directory.StatusDisabled {
			fail("%s was deleted in Entra ID but is %s", d.Username, d.Status)
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
		t.Errorf("%s, %s: %d differences in all", e.name, label, errs)
	}
	if errs > 0 {
		t.FailNow()
	}
	return want
}
