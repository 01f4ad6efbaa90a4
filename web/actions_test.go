package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/provider"
)

// Issue 14, item 4: the admin page disables, enables and deletes a user,
// each after a confirmation, through the API's code (the licence, the
// audit); the licence refusing an enable says so on the user's page.
func TestUserActions(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.browser()
		b.signIn()
		ann := &directory.User{Username: "ann", FirstName: "Ann", LastName: "Archer", Email: "ann@example.com"}
		require.NoError(t, e.store.CreateUser(ctx, ann))
		bob := &directory.User{Username: "bob", FirstName: "Bob", LastName: "Baker", Email: "bob@example.com"}
		require.NoError(t, e.store.CreateUser(ctx, bob))

		page := b.get("/users/" + ann.ID)
		assert.Contains(t, page.body, `href="/users/`+ann.ID+`/disable"`)
		assert.NotContains(t, page.body, `/enable"`)
		page = b.get("/users/" + ann.ID + "/disable")
		require.Equal(t, http.StatusOK, page.status)
		assert.Contains(t, page.body, "Disable ann?")
		assert.Contains(t, page.body, "listed in no group")
		u, _ := e.store.GetUser(ctx, ann.ID)
		assert.Equal(t, directory.StatusActive, u.Status, "the confirmation changes nothing")

		page = b.follow(b.post("/users/"+ann.ID+"/disable", nil))
		assert.Contains(t, page.body, "User disabled")
		assert.Contains(t, page.body, `href="/users/`+ann.ID+`/enable"`)
		u, _ = e.store.GetUser(ctx, ann.ID)
		assert.Equal(t, directory.StatusDisabled, u.Status)

		// The licence is full: enabling is refused on the user's page.
		b.follow(b.post("/licence", url.Values{"limit": {"1"}}))
		page = b.get("/users/" + ann.ID + "/enable")
		assert.Contains(t, page.body, "Enable ann?")
		assert.Contains(t, page.body, "one seat of the licence")
		page = b.post("/users/"+ann.ID+"/enable", nil)
		assert.Equal(t, http.StatusConflict, page.status)
		assert.Contains(t, page.body, "Not enabled: cannot enable ann: the licence allows 1 active users and 1 are active")
		assert.Contains(t, page.body, `<a href="/licence">Licence page</a>`)
		u, _ = e.store.GetUser(ctx, ann.ID)
		assert.Equal(t, directory.StatusDisabled, u.Status)

		b.follow(b.post("/licence", url.Values{"limit": {"0"}}))
		page = b.follow(b.post("/users/"+ann.ID+"/enable", nil))
		assert.Contains(t, page.body, "User enabled.")
		u, _ = e.store.GetUser(ctx, ann.ID)
		assert.Equal(t, directory.StatusActive, u.Status)

		page = b.get("/users/" + bob.ID + "/delete")
		assert.Contains(t, page.body, "Delete bob?")
		assert.Contains(t, page.body, "cannot be undone")
		page = b.follow(b.post("/users/"+bob.ID+"/delete", nil))
		assert.Contains(t, page.body, "User deleted.")
		_, err := e.store.GetUser(ctx, bob.ID)
		assert.ErrorIs(t, err, directory.ErrNotFound)

		for action, n := range map[string]int{"user_disabled": 1, "user_enabled": 1, "user_deleted": 1} {
			a, _ := e.store.ListAudit(ctx, directory.AuditFilter{Action: action}, directory.ListOptions{})
			assert.Len(t, a.Items, n, action)
		}
		assert.Equal(t, http.StatusUnprocessableEntity, b.get("/users/"+ann.ID+"/explode").status)
		assert.Equal(t, http.StatusNotFound, b.post("/users/nope/disable", nil).status)
	})
}

// Reset last run: with a schedule it triggers it; without one, or on a
// disabled profile, a notice says why nothing was reset.
func TestResetLastRun(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	id, docID := b.createCSVProfile("People file")
	page := b.get("/profiles/" + id)
	assert.Contains(t, page.body, `<form id="reset-form" method="post" action="/profiles/`+id+`/reset-last-run">`)
	assert.Contains(t, page.body, "This profile has no schedule, so there is no last run time to reset")

	page = b.post("/profiles/"+id+"/reset-last-run", nil)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	page = b.follow(page)
	assert.Contains(t, page.body, "Nothing was reset: this profile has no schedule (Schedule: off)")

	form := csvForm("People file", docID)
	form.Set("schedule.frequency", "interval")
	form.Set("csv.defaultPassword", "")
	b.follow(b.post("/profiles/"+id, form))
	page = b.get("/profiles/" + id)
	assert.Contains(t, page.body, "Makes the schedule run now")
	page = b.follow(b.post("/profiles/"+id+"/reset-last-run", nil))
	assert.Contains(t, page.body, "Last run time reset: the schedule runs now")
	a, _ := e.store.ListAudit(context.Background(), directory.AuditFilter{Action: directory.AuditLastRunReset}, directory.ListOptions{})
	assert.Len(t, a.Items, 1)

	b.follow(b.post("/profiles/"+id+"/enabled", url.Values{"enabled": {"false"}, "back": {"/profiles/" + id}}))
	page = b.follow(b.post("/profiles/"+id+"/reset-last-run", nil))
	assert.Contains(t, page.body, "Nothing was reset: the profile is disabled")
}

// The run page lists the users the run skipped, with the reason, above
// the ledger.
func TestRunPageListsSkippedUsers(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	id, _ := b.createCSVProfile("People file")
	ctx := context.Background()
	p, _ := e.store.GetProfile(ctx, id)
	run, err := e.runner.Start(ctx, p, "manual", false)
	require.NoError(t, err)
	seedDirectory(t, e, p.DirectoryKey, run.ID)
	page := b.get("/runs/" + run.ID)
	assert.Contains(t, page.body, `<h2 id="skipped-h">Skipped users</h2>`)
	assert.Contains(t, page.body, `<tr><th scope="row">cat</th><td>email missing</td></tr>`)
	page = b.get("/runs/" + run.ID + "?action=created")
	assert.NotContains(t, page.body, "skipped-h")
}

// Issue 14, item 3 on the admin page: a CSV profile with a manager column
// shows its org chart on, and why, though the box was left unticked.
func TestCSVManagerColumnShowsTheOrgChartOn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	b.get("/documents")
	b.upload("people.csv", "username\nann\n", b.csrf, true)
	docs, _ := e.store.ListDocuments(context.Background(), directory.ListOptions{})
	form := csvForm("People file", docs.Items[0].ID)
	form.Del("populateOrgChart")
	page := b.post("/profiles/new", form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	page = b.get(page.location)
	assert.Contains(t, page.body, `<input type="checkbox" id="f-populateOrgChart" name="populateOrgChart" checked`)
	assert.Contains(t, page.body, "On, because the manager column <code>manager</code> is set")

	form.Set("csv.managerField", "")
	form.Set("csv.defaultPassword", "")
	id := regexpFind(t, page.body, `action="/profiles/([^"/]+)/reset-last-run"`)
	page = b.follow(b.post("/profiles/"+id, form))
	assert.Contains(t, page.body, "Profile saved.")
	assert.NotContains(t, page.body, `name="populateOrgChart" checked`)
	assert.Contains(t, page.body, "A CSV profile needs a manager column (Connection) for this")
}

// Issue 14, item 6 on the admin page: the warnings of Test connection are
// shown under the light, which is amber.
func TestTestConnectionWarningsShown(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	id, docID := b.createCSVProfile("People file")
	e.testWarnings = []string{"okta: the API token may not read the System Log: grant it"}
	form := csvForm("People file", docID)
	form.Set("action", "test")
	form.Set("csv.defaultPassword", "")
	page := b.follow(b.post("/profiles/"+id, form))
	assert.Contains(t, page.body, `<span class="light warn"`)
	assert.Contains(t, page.body, "passed, with warnings")
	assert.Contains(t, page.body, "connection works, with a warning")
	assert.Contains(t, page.body, `<li>okta: the API token may not read the System Log: grant it</li>`)
	page = b.get("/profiles")
	assert.Contains(t, page.body, "passed, with warnings")
}

// Issue 14, item 5 on the admin page: the profile's health page lists the
// users the last run skipped, its conflicts, and the credentials' state.
func TestHealthPage(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		b := e.browser()
		b.signIn()
		id, _ := b.createCSVProfile("People file")
		ctx := context.Background()
		p, _ := e.store.GetProfile(ctx, id)
		page := b.get("/profiles/" + id + "/health")
		require.Equal(t, http.StatusOK, page.status)
		assert.Contains(t, page.body, "No applied run yet")
		assert.Contains(t, page.body, `<span class="badge muted">not used yet</span>`)

		run, err := e.runner.Start(ctx, p, "manual", false)
		require.NoError(t, err)
		seedDirectory(t, e, p.DirectoryKey, run.ID)
		require.NoError(t, e.store.SetRunStatus(ctx, run.ID, directory.RunSucceeded, directory.PhaseDone, "", e.clock.now()))
		page = b.get("/profiles/" + id + "/health")
		assert.Contains(t, page.body, `<h2 id="stale-h">Skipped users`)
		assert.Contains(t, page.body, "<td>email missing</td>")
		assert.Contains(t, page.body, "<strong>1 of 1</strong>")
		assert.Contains(t, page.body, "username owned by directory local")
		assert.Contains(t, page.body, `<span class="badge ok">working</span>`)
		assert.Equal(t, http.StatusUnprocessableEntity, b.get("/profiles/"+id+"/health?runs=99").status)
		assert.Contains(t, b.get("/profiles/"+id).body, `href="/profiles/`+id+`/health">Health</a>`)
	})
}

// Issue 14, item 7: the run page shows every count the API has, with the
// API's number: a count added to the run cannot be left off the page.
func TestRunPageShowsEveryCount(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	id, _ := b.createCSVProfile("People file")
	ctx := context.Background()
	p, _ := e.store.GetProfile(ctx, id)
	// Every count a different number, from the JSON the API answers.
	var fields map[string]int
	raw, _ := json.Marshal(directory.RunCounts{})
	require.NoError(t, json.Unmarshal(raw, &fields))
	n := 0
	for k := range fields {
		n++
		fields[k] = 100 + n
	}
	raw, _ = json.Marshal(fields)
	var c directory.RunCounts
	require.NoError(t, json.Unmarshal(raw, &c))
	run := &directory.Run{ID: "run-counts", ProfileID: p.ID, ProfileName: p.Name, Provider: p.Provider, DirectoryKey: p.DirectoryKey,
		Trigger: "manual", Status: directory.RunSucceeded, Phase: directory.PhaseDone, Counts: c}
	require.NoError(t, e.store.CreateRun(ctx, run))
	page := b.get("/runs/" + run.ID)
	for k, v := range fields {
		assert.Contains(t, page.body, fmt.Sprintf(`<dd data-count="%s">%d</dd>`, k, v), "count %s", k)
	}
}

// Issue 14: the audit page's action filter takes the names it shows.
func TestAuditFilterTakesShownNames(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	b.createCSVProfile("People file")
	for _, q := range []string{"profile created", "Profile Created", "created", "profile_created"} {
		page := b.get("/audit?action=" + url.QueryEscape(q))
		assert.Contains(t, page.body, "<td>profile created</td>", q)
		assert.NotContains(t, page.body, "<td>document uploaded</td>", q)
	}
	assert.Contains(t, b.get("/audit?action=uploaded").body, "<td>document uploaded</td>")
}

// Issue 14: the group picker names each group's kind once ("security
// group"), not "security · security", with and without script.
func TestGroupPickerNamesTheKindOnce(t *testing.T) {
	e := newEnv(t)
	e.groups = []provider.Group{
		{ID: "g1", Name: "Intranet Editors", Type: "security", SecurityEnabled: true},
		{ID: "g2", Name: "Intranet Mail", Type: "mailEnabledSecurity", MailEnabled: true, SecurityEnabled: true},
		{ID: "g3", Name: "Okta Staff", Type: "OKTA_GROUP"},
	}
	b := e.browser()
	b.signIn()
	b.get("/profiles/new?provider=azure")
	form := url.Values{"action": {"save"}, "name": {"Contoso"}, "enabled": {"on"}, "provider": {"azure"},
		"azure.tenantId": {"contoso.onmicrosoft.com"}, "azure.clientId": {"app-id"}, "azure.clientSecret": {"s3cret-value"},
		"azure.cloud": {"global"}, "azure.usernameAttribute": {"userPrincipalName"},
		"groupSync.mode": {"off"}, "schedule.frequency": {"off"}}
	page := b.post("/profiles/new", form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	id := profileURL.FindStringSubmatch(page.location)[1]
	page = b.get("/profiles/" + id)
	assert.Contains(t, page.body, `Intranet Editors <span class="muted">security group</span>`)
	assert.Contains(t, page.body, `Intranet Mail <span class="muted">mail-enabled security group</span>`)
	assert.NotContains(t, page.body, "security · security")
	page = b.get("/profiles/" + id + "/groups.json?search=okta")
	assert.Contains(t, page.body, `"label":"Okta group"`)
}

// Issue 14: the users page shows a user's groups as names that wrap, the
// first six and how many more, so the column is not cut off.
func TestUsersPageGroupsColumn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	ctx := context.Background()
	u := &directory.User{Username: "ann", FirstName: "Ann", LastName: "A", Email: "ann@example.com"}
	require.NoError(t, e.store.CreateUser(ctx, u))
	for i := range 8 {
		g := &directory.Group{Name: fmt.Sprintf("Team %d", i)}
		require.NoError(t, e.store.CreateGroup(ctx, g))
		require.NoError(t, e.store.AddGroupMember(ctx, g.ID, u.ID))
	}
	page := b.get("/users")
	assert.Contains(t, page.body, `<td class="groups"><ul class="tags"><li>Team 0</li>`)
	assert.Contains(t, page.body, `<li>Team 5</li><li class="more"><a href="/users/`+u.ID+`">and 2 more</a></li>`)
	assert.NotContains(t, page.body, "<li>Team 6</li>")
}
