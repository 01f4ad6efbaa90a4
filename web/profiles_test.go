package web

import (
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/storetest"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/provider/azure"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/provider/okta"
	"github.com/usersync/usersync/schema"
)

const (
	csvPassword     = "csv-PASSWORD-s3cr3t"
	defaultPassword = "default-PASSWORD-w3lc0me"
	azureSecret     = "azure-CLIENT-SECRET-x9"
)

// csvForm is the editor's form of a CSV profile read from a document.
func csvForm(name, docID string) url.Values {
	return url.Values{
		"action": {"save"}, "name": {name}, "enabled": {"on"}, "provider": {"csv"},
		"csv.source": {"document"}, "csv.documentId": {docID}, "csv.url": {""}, "csv.username": {""},
		"csv.password": {""}, "csv.userMatchField": {"username"}, "csv.managerField": {"manager"},
		"csv.groupsField": {"groups"}, "csv.delimiter": {","}, "csv.defaultPassword": {defaultPassword},
		"attributeMap.from": {"department", ""}, "attributeMap.to": {"department", ""},
		"csv.columnMap.from": {""}, "csv.columnMap.to": {""},
		"groupSync.mode": {"all"}, "groupSync.pattern": {""}, "populateOrgChart": {"on"},
		"schedule.frequency": {"off"}, "schedule.everyMinutes": {"60"}, "schedule.time": {""},
		"schedule.timezone": {"UTC"}, "safety.maxDisables": {"500"}, "safety.maxDisablePercent": {"20"},
	}
}

var profileURL = regexp.MustCompile(`^/profiles/([^/?#]+)`)

// createCSVProfile uploads a document and creates a profile that reads it
// with a password and a default password; it returns the profile's id.
func (b *browser) createCSVProfile(name string) (profileID, docID string) {
	t := b.e.t
	t.Helper()
	b.get("/documents")
	p := b.upload("people.csv", "username,firstName,lastName,email,manager,groups\nann,Ann,Archer,ann@example.com,,Staff\n", b.csrf, true)
	require.Equal(t, http.StatusSeeOther, p.status, p.body)
	docs, err := b.e.store.ListDocuments(context.Background(), directory.ListOptions{})
	require.NoError(t, err)
	docID = docs.Items[0].ID
	b.get("/profiles/new?provider=csv")
	form := csvForm(name, docID)
	// A remote password as well, kept though the source is a document.
	form.Set("csv.password", csvPassword)
	p = b.post("/profiles/new", form)
	require.Equal(t, http.StatusSeeOther, p.status, p.body)
	m := profileURL.FindStringSubmatch(p.location)
	require.NotNil(t, m, p.location)
	assert.Contains(t, p.location, "notice=created")
	return m[1], docID
}

func TestCSVProfileCreateEditSyncWithoutSecretsInHTML(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	id, docID := b.createCSVProfile("People file")
	ctx := context.Background()

	// Stored as the API stores it: sealed secrets, audited, its directory.
	p, err := e.store.GetProfile(ctx, id)
	require.NoError(t, err)
	cfg, err := profile.Open(e.box, p.Config, p.Secrets)
	require.NoError(t, err)
	assert.Equal(t, defaultPassword, cfg.Block.(*csv.Profile).DefaultPassword)
	assert.Equal(t, csvPassword, cfg.Block.(*csv.Profile).Password)
	assert.Equal(t, docID, cfg.Block.(*csv.Profile).DocumentID)
	assert.Equal(t, map[string]string{"department": "department"}, cfg.AttributeMap)
	assert.Equal(t, profile.GroupSyncAll, cfg.GroupSync.Mode)
	assert.True(t, cfg.PopulateOrgChart)
	assert.Regexp(t, `^p-[a-z0-9]{10}$`, p.DirectoryKey)
	audit, err := e.store.ListAudit(ctx, directory.AuditFilter{Action: "profile_created", Subject: id}, directory.ListOptions{})
	require.NoError(t, err)
	require.Len(t, audit.Items, 1)

	// The editor shows both secrets as set, and never their values.
	page := b.get("/profiles/" + id + "?notice=created")
	require.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.body, "Profile created.")
	assert.Contains(t, page.body, `id="f-csv-defaultPassword-state"><span class="badge ok">set</span>`)
	assert.Contains(t, page.body, `id="f-csv-password-state"><span class="badge ok">set</span>`)
	assert.Contains(t, page.body, `value="department"`)

	// Save again with the secret inputs blank: both are kept.
	form := csvForm("People file", docID)
	form.Set("csv.defaultPassword", "")
	form.Set("safety.maxDisables", "42")
	page = b.post("/profiles/"+id, form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	assert.Contains(t, page.location, "notice=saved")
	p, _ = e.store.GetProfile(ctx, id)
	cfg, _ = profile.Open(e.box, p.Config, p.Secrets)
	assert.Equal(t, defaultPassword, cfg.Block.(*csv.Profile).DefaultPassword)
	assert.Equal(t, csvPassword, cfg.Block.(*csv.Profile).Password, "the password stays though the form shows no remote fields' value")
	assert.Equal(t, 42, cfg.Safety.MaxDisables)

	// Test connection: the light turns green with the message, and the
	// list shows it too.
	page = b.post("/profiles/"+id, func() url.Values { f := csvForm("People file", docID); f.Set("action", "test"); return f }())
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	assert.Contains(t, page.location, "#connection")
	page = b.get(page.location)
	assert.Contains(t, page.body, `<span class="light ok"`)
	assert.Contains(t, page.body, "connection works")
	e.testErr = errors.New("csv: the header has no column username")
	page = b.follow(b.post("/profiles/"+id, func() url.Values { f := csvForm("People file", docID); f.Set("action", "test"); return f }()))
	assert.Contains(t, page.body, `<span class="light fail"`)
	assert.Contains(t, page.body, "the header has no column username")
	e.testErr = nil

	// Save and sync: a notice with a link to the run that started.
	page = b.post("/profiles/"+id, func() url.Values { f := csvForm("People file", docID); f.Set("action", "sync"); return f }())
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	run, err := e.store.LastRun(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, directory.RunRunning, run.Status)
	assert.Equal(t, "manual", run.Trigger)
	page = b.get(page.location)
	assert.Contains(t, page.body, "Profile saved and a sync started.")
	assert.Contains(t, page.body, `<a href="/runs/`+run.ID+`">View the run</a>`)
	// A second one while it runs: saved, and the running run is named.
	page = b.follow(b.post("/profiles/"+id, func() url.Values { f := csvForm("People file", docID); f.Set("action", "sync"); return f }()))
	assert.Contains(t, page.body, "already going")
	assert.Contains(t, page.body, `<a href="/runs/`+run.ID+`">View the run</a>`)

	// Every page the admin can reach: no secret anywhere in the HTML.
	seedDirectory(t, e, p.DirectoryKey, run.ID)
	pages := []string{"/profiles", "/profiles/" + id, "/profiles/" + id + "/delete", "/profiles/new",
		"/profiles/new?provider=csv", "/profiles/new?provider=azure", "/profiles/new?provider=okta",
		"/runs", "/runs?profile=" + id, "/runs/" + run.ID, "/runs/" + run.ID + "?action=created",
		"/users", "/users?status=active&directory=" + p.DirectoryKey + "&q=ann", "/groups", "/audit",
		"/audit?category=UserSyncConfig", "/licence", "/documents", "/documents/" + docID + "/delete",
		"/runs/" + run.ID + "/status.json", "/profiles/" + id + "/pattern.json?pattern=.",
		"/profiles/" + id + "/groups.json", "/signin", "/nowhere"}
	users, _ := e.store.ListUsers(ctx, directory.UserFilter{}, directory.ListOptions{})
	for _, u := range users.Items {
		pages = append(pages, "/users/"+u.ID)
	}
	groups, _ := e.store.ListGroups(ctx, "", directory.ListOptions{})
	for _, g := range groups.Items {
		pages = append(pages, "/groups/"+g.ID)
	}
	for _, path := range pages {
		page := b.get(path)
		assert.Less(t, page.status, 500, path)
		assertLabelled(t, path, page.body)
		for _, s := range []string{csvPassword, defaultPassword, testToken} {
			assert.NotContains(t, page.body, s, "%s shows a secret", path)
		}
	}
	// Nor the pages a failed save shows again.
	bad := csvForm("", docID)
	bad.Set("csv.defaultPassword", "typed-"+defaultPassword)
	page = b.post("/profiles/"+id, bad)
	assert.Equal(t, http.StatusUnprocessableEntity, page.status)
	assert.NotContains(t, page.body, defaultPassword)
	assert.Contains(t, page.body, "type them again")
}

func TestProfileValidationErrorsBesideFields(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	id, docID := b.createCSVProfile("People file")

	form := csvForm("", "")
	form.Set("csv.source", "remote")
	form.Set("csv.url", "http://files.example.com/people.csv")
	form.Set("groupSync.mode", "regex")
	form.Set("groupSync.pattern", "^(Intranet")
	form.Set("schedule.frequency", "daily")
	form.Set("schedule.time", "25:00")
	form.Set("schedule.timezone", "Mars/Olympus")
	form.Set("safety.maxDisablePercent", "250")
	page := b.post("/profiles/"+id, form)
	require.Equal(t, http.StatusUnprocessableEntity, page.status)
	assert.Contains(t, page.body, "The profile was not saved")
	assert.Equal(t, "required", fieldError(page.body, "name"))
	assert.Contains(t, fieldError(page.body, "csv.url"), "http is allowed only to a loopback host")
	assert.Contains(t, fieldError(page.body, "groupSync.pattern"), "missing closing )")
	assert.Contains(t, fieldError(page.body, "schedule.time"), "HH:MM")
	assert.Contains(t, fieldError(page.body, "schedule.timezone"), "unknown time zone")
	assert.Contains(t, fieldError(page.body, "safety.maxDisablePercent"), "between 0 and 100")
	assert.Contains(t, page.body, `id="f-name" name="name" value="" maxlength="100" autocomplete="off" aria-invalid="true" aria-describedby="f-name-error"`)
	assert.Contains(t, page.body, `<a href="#f-csv-url">`, "the summary links to the field")
	// What was typed is shown again, not the stored profile.
	assert.Contains(t, page.body, `value="^(Intranet"`)
	assert.Contains(t, page.body, `value="http://files.example.com/people.csv"`)

	// Nothing was saved.
	p, err := e.store.GetProfile(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, "People file", p.Name)

	// Type errors of the form itself, a duplicate name (from the store),
	// a duplicate map row and a missing document.
	form = csvForm("People file", docID)
	form.Set("safety.maxDisables", "lots")
	page = b.post("/profiles/"+id, form)
	assert.Equal(t, http.StatusUnprocessableEntity, page.status)
	assert.Equal(t, "must be a whole number", fieldError(page.body, "safety.maxDisables"))
	b.get("/profiles/new?provider=csv")
	page = b.post("/profiles/new", csvForm("PEOPLE FILE", docID))
	assert.Equal(t, http.StatusConflict, page.status, "as the API answers a name taken")
	assert.Equal(t, "a profile with this name exists", fieldError(page.body, "name"))
	form = csvForm("Other", "no-such-doc")
	form["attributeMap.from"] = []string{"dept", "dept"}
	form["attributeMap.to"] = []string{"department", "division"}
	page = b.post("/profiles/new", form)
	assert.Equal(t, http.StatusUnprocessableEntity, page.status)
	assert.Contains(t, fieldError(page.body, "attributeMap"), "dept: mapped twice")
	form["attributeMap.from"] = []string{"dept"}
	form["attributeMap.to"] = []string{"department"}
	page = b.post("/profiles/new", form)
	assert.Equal(t, "no such document", fieldError(page.body, "csv.documentId"))
	// An Entra attribute that does not exist, beside the mapping rows.
	b.get("/profiles/new?provider=azure")
	page = b.post("/profiles/new", url.Values{"action": {"save"}, "name": {"Contoso"}, "enabled": {"on"},
		"provider": {"azure"}, "azure.tenantId": {"contoso.onmicrosoft.com"}, "azure.clientId": {"app"},
		"azure.clientSecret": {azureSecret}, "azure.cloud": {"global"}, "azure.usernameAttribute": {"userPrincipalName"},
		"attributeMap.from": {"shoeSize"}, "attributeMap.to": {"shoes"}, "groupSync.mode": {"off"},
		"schedule.frequency": {"interval"}, "schedule.everyMinutes": {"2"}})
	assert.Equal(t, http.StatusUnprocessableEntity, page.status)
	assert.Contains(t, fieldError(page.body, "attributeMap"), "shoeSize: unknown Azure attribute")
	assert.Equal(t, "must be at least 5", fieldError(page.body, "schedule.everyMinutes"))
	assert.NotContains(t, page.body, azureSecret)
}

func TestCSRFRefusedOnEveryForm(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	id, docID := b.createCSVProfile("People file")
	run, err := e.runner.Start(context.Background(), &directory.Profile{ID: id, Name: "People file"}, "manual", false)
	require.NoError(t, err)
	good := b.csrf
	forms := map[string]url.Values{
		"/profiles/new":                   csvForm("Another", docID),
		"/profiles/" + id:                 csvForm("Renamed", docID),
		"/profiles/" + id + "/enabled":    {"enabled": {"false"}},
		"/profiles/" + id + "/delete":     {},
		"/runs/" + run.ID + "/cancel":     {},
		"/runs/" + run.ID + "/approve":    {},
		"/runs/" + run.ID + "/retry":      {},
		"/licence":                        {"limit": {"7"}},
		"/users/nope/switch-directory":    {"directoryKey": {"x"}},
		"/documents/" + docID + "/delete": {},
		"/signout":                        {},
	}
	for path, form := range forms {
		for _, tok := range []string{"", "wrong-token"} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("csrf", tok)
			p := b.postRaw(path, f, nil)
			assert.Equal(t, http.StatusForbidden, p.status, "%s with csrf %q", path, tok)
		}
		// The right token from another site: refused too.
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("csrf", good)
		p := b.postRaw(path, f, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
		assert.Equal(t, http.StatusForbidden, p.status, "%s cross-site", path)
	}
	// A multipart post anywhere but the upload is refused, token or not:
	// the form parser would not see its token.
	for _, path := range []string{"/profiles/" + id + "/delete", "/licence", "/runs/" + run.ID + "/cancel"} {
		var buf strings.Builder
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("csrf", good)
		_ = mw.WriteField("limit", "9")
		_ = mw.Close()
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(buf.String()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		assert.Equal(t, http.StatusForbidden, b.do(req).status, path)
	}
	// An upload with the token after the file, or without it.
	p := b.upload("x.csv", "username\nx\n", good, false)
	assert.Equal(t, http.StatusForbidden, p.status)
	p = b.upload("x.csv", "username\nx\n", "nope", true)
	assert.Equal(t, http.StatusForbidden, p.status)

	// Nothing changed.
	ctx := context.Background()
	prof, err := e.store.GetProfile(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "People file", prof.Name)
	assert.True(t, prof.Enabled)
	limit, _ := e.store.GetLicenceLimit(ctx)
	assert.Zero(t, limit)
	docs, _ := e.store.ListDocuments(ctx, directory.ListOptions{})
	assert.Len(t, docs.Items, 1)
	assert.Empty(t, e.runner.cancelled)
	profiles, _ := e.store.ListProfiles(ctx, directory.ListOptions{})
	assert.Len(t, profiles.Items, 1)
	// And the session still works with the right token.
	b.csrf = good
	assert.Equal(t, http.StatusSeeOther, b.post("/licence", url.Values{"limit": {"7"}}).status)
}

// The profiles page costs the same store calls whether it lists two
// profiles or six: their last runs and last Test connections come in one
// query each, and nothing is read per profile. Each row still shows its
// own run and light.
func TestProfilesPageReadsTheSameForAnyPageSize(t *testing.T) {
	calls := map[int]map[string]int{}
	for _, n := range []int{2, 6} {
		var counted *storetest.Counting
		e := newEnvWrapped(t, schema.SQLite, func(s directory.Store) directory.Store {
			counted = storetest.NewCounting(s)
			return counted
		})
		b := e.browser()
		b.signIn()
		ctx := context.Background()
		for i := range n {
			id, doc := b.createCSVProfile(fmt.Sprintf("People %d", i))
			if i%2 == 0 {
				require.NoError(t, e.store.CreateRun(ctx, &directory.Run{ID: "run-" + id, ProfileID: id,
					ProfileName: "P", Provider: "csv", Trigger: "manual", Status: directory.RunSucceeded}))
				e.testErr = errors.New("csv: the header has no column username " + id)
				b.post("/profiles/"+id, func() url.Values {
					f := csvForm(fmt.Sprintf("People %d", i), doc)
					f.Set("action", "test")
					return f
				}())
			}
		}
		page := b.get("/profiles")
		require.Equal(t, http.StatusOK, page.status, page.body)
		counted.Reset()
		page = b.get("/profiles")
		require.Equal(t, http.StatusOK, page.status, page.body)
		all, err := e.store.ListProfiles(ctx, directory.ListOptions{})
		require.NoError(t, err)
		require.Len(t, all.Items, n)
		for i, p := range all.Items {
			if strings.Contains(page.body, `href="/runs/run-`+p.ID+`"`) != strings.Contains(page.body, "no column username "+p.ID) {
				t.Errorf("profile %d: its run and its failed test are not shown together", i)
			}
		}
		assert.Equal(t, n/2+n%2, strings.Count(page.body, "no column username"), "each tested profile shows its own test")
		calls[n] = counted.Calls()
	}
	assert.Equal(t, calls[2], calls[6], "the store calls of the page grow with its profiles")
	assert.Equal(t, 1, calls[6]["LastAudit"])
	assert.Zero(t, calls[6]["ListAudit"]+calls[6]["LastRun"], "no query per profile")
}

func TestProfilesListEnableDisableDelete(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	id, _ := b.createCSVProfile("People file")
	ctx := context.Background()

	page := b.get("/profiles")
	require.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.body, `<a href="/profiles/`+id+`">People file</a>`)
	assert.Contains(t, page.body, "CSV")
	assert.Contains(t, page.body, `<span class="badge ok">enabled</span>`)
	assert.Contains(t, page.body, `<span class="light none">`, "never tested")
	assert.Contains(t, page.body, "never", "no run yet")
	assert.NotContains(t, page.body, "2030-01-02 10:00:00 UTC", "no schedule, no next run")

	// A schedule: the next run shows in the list and the editor.
	p, _ := e.store.GetProfile(ctx, id)
	cfg, _ := profile.Open(e.box, p.Config, p.Secrets)
	form := csvForm("People file", cfg.Block.(*csv.Profile).DocumentID)
	form.Set("schedule.frequency", "interval")
	form.Set("schedule.everyMinutes", "30")
	require.Equal(t, http.StatusSeeOther, b.post("/profiles/"+id, form).status)
	page = b.get("/profiles")
	assert.Contains(t, page.body, "<td>2030-01-02 10:00:00 UTC</td>")
	page = b.get("/profiles/" + id)
	assert.Contains(t, page.body, "next scheduled run 2030-01-02 10:00:00 UTC")
	assert.Contains(t, page.body, `id="sch-interval" name="schedule.frequency" value="interval" checked`)
	assert.Contains(t, page.body, `name="schedule.everyMinutes" value="30"`)

	page = b.follow(b.post("/profiles/"+id+"/enabled", url.Values{"enabled": {"false"}, "back": {"/profiles"}}))
	assert.Contains(t, page.body, "Profile disabled.")
	assert.Contains(t, page.body, `<span class="badge muted">disabled</span>`)
	assert.NotContains(t, page.body, "2030-01-02 10:00:00 UTC", "a disabled profile's schedule is paused")
	p, _ = e.store.GetProfile(ctx, id)
	assert.False(t, p.Enabled)
	cfg, _ = profile.Open(e.box, p.Config, p.Secrets)
	assert.Equal(t, 30, cfg.Schedule.EveryMinutes, "a toggle keeps the rest of the profile")
	assert.Equal(t, defaultPassword, cfg.Block.(*csv.Profile).DefaultPassword, "a toggle keeps the secrets")
	// A disabled profile does not sync: the error is shown.
	page = b.post("/profiles/"+id, func() url.Values {
		f := csvForm("People file", cfg.Block.(*csv.Profile).DocumentID)
		f.Del("enabled")
		f.Set("action", "sync")
		return f
	}())
	assert.Equal(t, http.StatusUnprocessableEntity, page.status)
	assert.Contains(t, page.body, "the profile is disabled")
	b.post("/profiles/"+id+"/enabled", url.Values{"enabled": {"true"}, "back": {"/profiles"}})
	p, _ = e.store.GetProfile(ctx, id)
	assert.True(t, p.Enabled)

	// A run, then the list shows it with its counts.
	run, err := e.runner.Start(ctx, p, "manual", false)
	require.NoError(t, err)
	page = b.get("/profiles")
	assert.Contains(t, page.body, `<a href="/runs/`+run.ID+`"><span class="badge run">running</span></a>`)
	// Delete needs a confirmation, and is refused while the run goes.
	page = b.get("/profiles/" + id + "/delete")
	assert.Contains(t, page.body, "Delete the profile “People file”?")
	assert.Contains(t, page.body, `action="/profiles/`+id+`/delete"`)
	page = b.post("/profiles/"+id+"/delete", nil)
	assert.Equal(t, http.StatusConflict, page.status)
	assert.Contains(t, page.body, "cancel it first")
	require.NoError(t, e.store.SetRunStatus(ctx, run.ID, directory.RunSucceeded, directory.PhaseDone, "", run.StartedAt))
	page = b.follow(b.post("/profiles/"+id+"/delete", nil))
	assert.Contains(t, page.body, "Profile deleted.")
	_, err = e.store.GetProfile(ctx, id)
	assert.ErrorIs(t, err, directory.ErrNotFound)
	assert.Equal(t, http.StatusNotFound, b.get("/profiles/"+id).status)
}

func TestGroupPickerAndPatternCheck(t *testing.T) {
	e := newEnv(t)
	e.groups = []provider.Group{
		{ID: "g1", Name: "Intranet Editors", Type: "security", SecurityEnabled: true},
		{ID: "g2", Name: "Intranet Readers", Type: "security", SecurityEnabled: true},
		{ID: "g3", Name: "Sales", Type: "microsoft365", MailEnabled: true},
	}
	b := e.browser()
	b.signIn()
	b.get("/profiles/new?provider=azure")
	form := url.Values{"action": {"save"}, "name": {"Contoso"}, "enabled": {"on"}, "provider": {"azure"},
		"azure.tenantId": {"contoso.onmicrosoft.com"}, "azure.clientId": {"app-id"}, "azure.clientSecret": {azureSecret},
		"azure.cloud": {"global"}, "azure.usernameAttribute": {"userPrincipalName"},
		"azure.includeMailEnabledSecurityGroups": {"on"}, "groupSync.mode": {"off"}, "schedule.frequency": {"off"}}
	page := b.post("/profiles/new", form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	id := profileURL.FindStringSubmatch(page.location)[1]

	// The editor lists the first page of groups as checkboxes, and an
	// attribute catalogue for the mapping.
	page = b.get("/profiles/" + id)
	require.Equal(t, http.StatusOK, page.status)
	assertLabelled(t, "azure editor", page.body)
	assert.Contains(t, page.body, `name="groups" value="g1">`)
	assert.Contains(t, page.body, "Intranet Editors")
	assert.NotContains(t, page.body, "Sales", "second page")
	assert.Contains(t, page.body, "groupCursor=", "a next page")
	assert.NotContains(t, page.body, "groupCursor=2", "the provider's cursor is sealed")
	assert.Contains(t, page.body, `<option value="department">`)
	assert.Contains(t, page.body, `id="f-azure-includeMailEnabledSecurityGroups" name="azure.includeMailEnabledSecurityGroups" checked`)
	assert.NotContains(t, page.body, azureSecret)

	// Pick two groups (one from the next page) and save; they stay checked.
	form.Set("action", "save")
	form["groups"] = []string{"g1", "g3"}
	form.Del("azure.clientSecret")
	page = b.post("/profiles/"+id, form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	p, _ := e.store.GetProfile(context.Background(), id)
	cfg, _ := profile.Open(e.box, p.Config, p.Secrets)
	assert.Equal(t, []string{"g1", "g3"}, cfg.Groups)
	assert.Equal(t, azureSecret, cfg.Block.(*azure.Profile).ClientSecret)
	page = b.get("/profiles/" + id)
	assert.Contains(t, page.body, `name="groups" value="g1" checked>`)
	assert.Contains(t, page.body, `name="groups" value="g2">`)
	assert.Contains(t, page.body, `id="gx-g3" name="groups" value="g3" checked>`, "selected, on another page")
	page = b.get("/profiles/" + id + "?groupSearch=sales")
	assert.Contains(t, page.body, `name="groups" value="g3" checked>`)
	assert.Contains(t, page.body, `id="gx-g1" name="groups" value="g1" checked>`)

	// The JSON the script reads.
	page = b.get("/profiles/" + id + "/groups.json?search=intranet")
	assert.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.body, `"name":"Intranet Readers"`)
	page = b.get("/profiles/" + id + "/pattern.json?pattern=" + url.QueryEscape("^Intranet"))
	assert.JSONEq(t, `{"pattern":"^Intranet","matches":["Intranet Editors","Intranet Readers"],"matched":2,"total":3,"truncated":false}`, page.body)
	page = b.get("/profiles/" + id + "/pattern.json?pattern=" + url.QueryEscape("(x"))
	assert.Contains(t, page.body, "does not compile")
	// Without JavaScript: the check button shows the same, saving nothing.
	form.Set("action", "preview")
	form.Set("groupSync.mode", "regex")
	form.Set("groupSync.pattern", "Readers$")
	page = b.post("/profiles/"+id, form)
	assert.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.body, "1 of 3 groups match")
	assert.Contains(t, page.body, "<li>Intranet Readers</li>")
	p, _ = e.store.GetProfile(context.Background(), id)
	cfg, _ = profile.Open(e.box, p.Config, p.Secrets)
	assert.Equal(t, profile.GroupSyncOff, cfg.GroupSync.Mode)

	// A provider that fails: the picker says why, the selection stays.
	e.groupsErr = fmt.Errorf("%w: AADSTS7000215 invalid client secret "+azureSecret, provider.ErrAuth)
	page = b.get("/profiles/" + id)
	assert.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.body, "Could not list the provider's groups: authentication failed: the provider refused the profile&#39;s credentials")
	assert.Contains(t, page.body, "AADSTS7000215")
	assert.NotContains(t, page.body, azureSecret, "the API's picker takes secrets out of provider messages")
	assert.Contains(t, page.body, `id="gx-g1" name="groups" value="g1" checked>`)
	page = b.get("/profiles/" + id + "/groups.json")
	assert.Equal(t, http.StatusBadGateway, page.status)
	assert.True(t, strings.Contains(page.body, "AADSTS7000215"))
	assert.NotContains(t, page.body, azureSecret)
}

func TestOktaProfileSecretsWriteOnly(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	const apiToken = "okta-API-TOKEN-00abc"
	const key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
	b.get("/profiles/new?provider=okta")
	form := url.Values{"action": {"save"}, "name": {"Okta"}, "enabled": {"on"}, "provider": {"okta"},
		"okta.orgUrl": {"example.okta.com"}, "okta.apiToken": {apiToken}, "okta.clientId": {"svc-app"},
		"okta.privateKey": {key}, "okta.keyId": {"kid-1"}, "okta.usernameAttribute": {"login"},
		"attributeMap.from": {"costCenter", "customAttr_1"}, "attributeMap.to": {"costCenter", "custom"},
		"groupSync.mode": {"off"}, "schedule.frequency": {"daily"}, "schedule.time": {"06:30"},
		"schedule.timezone": {"Europe/London"}}
	page := b.post("/profiles/new", form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	id := profileURL.FindStringSubmatch(page.location)[1]
	p, _ := e.store.GetProfile(context.Background(), id)
	cfg, _ := profile.Open(e.box, p.Config, p.Secrets)
	assert.Equal(t, key, cfg.Block.(*okta.Profile).PrivateKey, "the key keeps its lines")
	assert.Equal(t, apiToken, cfg.Block.(*okta.Profile).APIToken)
	assert.Equal(t, "https://example.okta.com", cfg.Block.(*okta.Profile).OrgURL)
	assert.Equal(t, profile.Schedule{Frequency: "daily", Time: "06:30", Timezone: "Europe/London"}, cfg.Schedule)

	page = b.get("/profiles/" + id)
	assert.Contains(t, page.body, `<textarea id="f-okta-privateKey" name="okta.privateKey" rows="4" autocomplete="off" spellcheck="false" aria-describedby="f-okta-privateKey-state"></textarea>`)
	assert.Contains(t, page.body, `<option value="costCenter">`, "Okta's catalogue offered")
	assert.Contains(t, page.body, `value="customAttr_1"`)
	for _, s := range []string{apiToken, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"} {
		assert.NotContains(t, page.body, s)
	}

	// Clearing the API token leaves the service-app pair, which is valid.
	form.Del("okta.apiToken")
	form.Del("okta.privateKey")
	form.Set("okta.apiToken.clear", "on")
	page = b.post("/profiles/"+id, form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	p, _ = e.store.GetProfile(context.Background(), id)
	cfg, _ = profile.Open(e.box, p.Config, p.Secrets)
	assert.Empty(t, cfg.Block.(*okta.Profile).APIToken)
	assert.Equal(t, key, cfg.Block.(*okta.Profile).PrivateKey)
	page = b.get("/profiles/" + id)
	assert.Contains(t, page.body, `id="f-okta-apiToken-state"><span class="badge muted">not set</span>`)
	// Clearing the key as well is refused beside the field.
	form.Set("okta.privateKey.clear", "on")
	page = b.post("/profiles/"+id, form)
	assert.Equal(t, http.StatusUnprocessableEntity, page.status)
	assert.Equal(t, "required with clientId", fieldError(page.body, "okta.privateKey"))
}
