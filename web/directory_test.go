package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
)

// seedDirectory puts users, a manager, groups, ledger entries and audit
// entries in place, as a run of the profile with this directory would.
func seedDirectory(t *testing.T, e *env, dirKey, runID string) {
	t.Helper()
	ctx := context.Background()
	ext := func(s string) *string { return &s }
	ann := &directory.User{Username: "ann", FirstName: "Ann", LastName: "Archer", Email: "ann@example.com",
		DirectoryKey: dirKey, ExternalID: ext("ann"), Attributes: map[string]string{"department": "Sales"}}
	require.NoError(t, e.store.CreateUser(ctx, ann))
	ben := &directory.User{Username: "ben", FirstName: "Ben", LastName: "Baker", Email: "ben@example.com",
		DirectoryKey: dirKey, ExternalID: ext("ben"), ManagerID: &ann.ID}
	require.NoError(t, e.store.CreateUser(ctx, ben))
	require.NoError(t, e.store.CreateUser(ctx, &directory.User{Username: "zoe", FirstName: "Zoe", LastName: "Local",
		Email: "zoe@example.com", Status: directory.StatusDisabled}))
	g := &directory.Group{Name: "Staff"}
	require.NoError(t, e.store.CreateGroup(ctx, g))
	require.NoError(t, e.store.AddGroupMember(ctx, g.ID, ann.ID))
	require.NoError(t, e.store.AddGroupMember(ctx, g.ID, ben.ID))
	for _, c := range []struct{ user, action, reason, changes string }{
		{"ann", "created", "", `{}`},
		{"ben", "updated", "", `{"lastName":{"from":"Bakker","to":"Baker"}}`},
		{"cat", "skipped", "email missing", `{}`},
		{"dan", "conflict", "username owned by directory local", `{}`},
		{"eve", "disabled", "departed", `{}`},
	} {
		_, err := e.db.ExecContext(ctx, e.db.Rebind(`INSERT INTO change_ledger (run_id, subject_type, subject_id, username, action, reason, changes, at)
			VALUES (?, 'user', ?, ?, ?, ?, ?, ?)`), runID, c.user, c.user, c.action, c.reason, c.changes, time.Now().UTC())
		require.NoError(t, err)
	}
}

func TestDirectoryPages(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	id, _ := b.createCSVProfile("People file")
	ctx := context.Background()
	p, _ := e.store.GetProfile(ctx, id)
	run, err := e.runner.Start(ctx, p, "manual", false)
	require.NoError(t, err)
	seedDirectory(t, e, p.DirectoryKey, run.ID)

	// Users: search, status, directory.
	page := b.get("/users")
	require.Equal(t, http.StatusOK, page.status)
	for _, u := range []string{"ann", "ben", "zoe"} {
		assert.Contains(t, page.body, ">"+u+"</a>")
	}
	assert.Contains(t, page.body, "<td>People file</td>", "directory named after its profile")
	assert.Contains(t, page.body, "<td>Local accounts</td>")
	page = b.get("/users?q=ARCH")
	assert.Contains(t, page.body, ">ann</a>")
	assert.NotContains(t, page.body, ">ben</a>")
	page = b.get("/users?status=disabled")
	assert.Contains(t, page.body, ">zoe</a>")
	assert.NotContains(t, page.body, ">ann</a>")
	page = b.get("/users?directory=" + p.DirectoryKey)
	assert.NotContains(t, page.body, ">zoe</a>")
	assert.Contains(t, page.body, `<option value="`+p.DirectoryKey+`" selected>People file</option>`)
	assert.Equal(t, http.StatusUnprocessableEntity, b.get("/users?status=gone").status)

	// Paging: 50 a page.
	for i := range 55 {
		name := "user" + strings.Repeat("x", 1) + string(rune('a'+i/26)) + string(rune('a'+i%26))
		require.NoError(t, e.store.CreateUser(ctx, &directory.User{Username: name, FirstName: "U", LastName: "Ser", Email: name + "@example.com"}))
	}
	page = b.get("/users")
	assert.Contains(t, page.body, "Next page")
	assert.NotContains(t, page.body, "First page")
	next := regexpFind(t, page.body, `href="(/users\?cursor=[^"]+)"`)
	page = b.get(htmlUnescape(next))
	assert.Contains(t, page.body, "First page")
	assert.Contains(t, page.body, ">zoe</a>")

	// A user: fields, attributes, manager, groups, directory.
	users, _ := e.store.ListUsers(ctx, directory.UserFilter{Query: "ben"}, directory.ListOptions{})
	page = b.get("/users/" + users.Items[0].ID)
	require.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.body, "Ben Baker")
	assert.Contains(t, page.body, "ben@example.com")
	assert.Contains(t, page.body, ">ann</a> (Ann Archer)")
	assert.Contains(t, page.body, `<a href="/groups?q=Staff">Staff</a>`)
	assert.Contains(t, page.body, "People file <code>"+p.DirectoryKey+"</code>")
	users, _ = e.store.ListUsers(ctx, directory.UserFilter{Query: "ann"}, directory.ListOptions{})
	page = b.get("/users/" + users.Items[0].ID)
	assert.Contains(t, page.body, `<th scope="row">department</th><td>Sales</td>`)
	assert.Equal(t, http.StatusNotFound, b.get("/users/nope").status)
	assert.NotContains(t, page.body, "Move to a profile", "a synced user cannot be moved")

	// A local user can be moved to a profile's directory (switch-directory).
	users, _ = e.store.ListUsers(ctx, directory.UserFilter{Query: "zoe"}, directory.ListOptions{})
	zoe := users.Items[0]
	page = b.get("/users/" + zoe.ID)
	assert.Contains(t, page.body, `<option value="`+p.DirectoryKey+`">People file</option>`)
	page = b.follow(b.post("/users/"+zoe.ID+"/switch-directory", url.Values{"directoryKey": {p.DirectoryKey}}))
	assert.Contains(t, page.body, "User moved")
	assert.Contains(t, page.body, "People file <code>"+p.DirectoryKey+"</code>")
	moved, err := e.store.GetUser(ctx, zoe.ID)
	require.NoError(t, err)
	assert.Equal(t, p.DirectoryKey, moved.DirectoryKey)
	audit, _ := e.store.ListAudit(ctx, directory.AuditFilter{Action: "user_directory_switched", Subject: "zoe"}, directory.ListOptions{})
	assert.Len(t, audit.Items, 1, "audited as through the API")
	page = b.follow(b.post("/users/"+zoe.ID+"/switch-directory", url.Values{"directoryKey": {p.DirectoryKey}}))
	assert.Contains(t, page.body, "The user was not moved")
	page = b.post("/users/"+zoe.ID+"/switch-directory", url.Values{"directoryKey": {"p-nosuchdir0"}})
	assert.Equal(t, http.StatusUnprocessableEntity, page.status)
	assert.Contains(t, page.body, "no profile has this directory key")

	// Groups with members.
	page = b.get("/groups?q=sta")
	assert.Contains(t, page.body, ">Staff</a>")
	groups, _ := e.store.ListGroups(ctx, "Staff", directory.ListOptions{})
	page = b.get("/groups/" + groups.Items[0].ID)
	assert.Contains(t, page.body, ">ann</a>")
	assert.Contains(t, page.body, ">ben</a>")
	assert.NotContains(t, page.body, ">zoe</a>")

	// The run page: counts, the ledger with its filter, the buttons.
	page = b.get("/runs/" + run.ID)
	require.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.body, `data-run-status-url="/runs/`+run.ID+`/status.json"`)
	assert.Contains(t, page.body, `<noscript><meta http-equiv="refresh" content="3"></noscript>`)
	assert.Contains(t, page.body, "Cancel the run")
	assert.NotContains(t, page.body, "Approve")
	assert.NotContains(t, page.body, "Retry")
	assert.Contains(t, page.body, `href="http://localhost:8233/namespaces/default/workflows/usersync-`+id)
	assert.Contains(t, page.body, "email missing")
	assert.Contains(t, page.body, "<del>Bakker</del> → Baker")
	page = b.get("/runs/" + run.ID + "?action=skipped")
	assert.Contains(t, page.body, "email missing")
	assert.NotContains(t, page.body, "Bakker")
	page = b.get("/runs/" + run.ID + "?action=conflict")
	assert.Contains(t, page.body, "username owned by directory local")
	assert.NotContains(t, page.body, "email missing")
	page = b.get("/runs/" + run.ID + "/status.json")
	assert.Contains(t, page.body, `"status":"running"`)
	assert.Contains(t, page.body, `"final":false`)
	page = b.follow(b.post("/runs/"+run.ID+"/cancel", nil))
	assert.Contains(t, page.body, "Cancel requested")
	assert.Equal(t, []string{run.ID}, e.runner.cancelled)
	require.NoError(t, e.store.SetRunStatus(ctx, run.ID, directory.RunAwaitingApproval, directory.PhasePlan, "", time.Now()))
	page = b.get("/runs/" + run.ID)
	assert.Contains(t, page.body, "Approve: apply the changes")
	b.follow(b.post("/runs/"+run.ID+"/approve", nil))
	assert.Equal(t, []string{run.ID}, e.runner.approved)
	require.NoError(t, e.store.SetRunStatus(ctx, run.ID, directory.RunFailed, directory.PhaseDone, "licence exceeded: 12 active users, limit 10", time.Now()))
	page = b.get("/runs/" + run.ID)
	assert.NotContains(t, page.body, "http-equiv=\"refresh\"")
	assert.Contains(t, page.body, "licence exceeded: 12 active users, limit 10")
	assert.Contains(t, page.body, "Retry: start a new run")
	assert.NotContains(t, page.body, "Cancel the run")
	page = b.post("/runs/"+run.ID+"/retry", nil)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	assert.NotContains(t, page.location, run.ID, "the retry is a new run")
	assert.Contains(t, b.get(page.location).body, "A new run started.")
	assert.Equal(t, http.StatusNotFound, b.post("/runs/nope/cancel", nil).status)
	assert.Equal(t, http.StatusUnprocessableEntity, b.post("/runs/"+run.ID+"/explode", nil).status)

	// Runs list with filters.
	page = b.get("/runs?profile=" + id)
	assert.Contains(t, page.body, "Runs of People file")
	assert.Contains(t, page.body, `<span class="badge fail">failed</span>`)
	page = b.get("/runs?status=succeeded")
	assert.Contains(t, page.body, "No run matches these filters")

	// The audit log, filtered.
	page = b.get("/audit?category=UserSyncConfig&action=profile_created")
	assert.Contains(t, page.body, "profile created")
	assert.NotContains(t, page.body, "document uploaded")
	page = b.get("/audit?profile=" + url.QueryEscape("People file"))
	assert.Contains(t, page.body, "profile created")
	page = b.get("/audit?since=2999-01-01T00:00")
	assert.Contains(t, page.body, "No entry matches.")
	assert.Equal(t, http.StatusUnprocessableEntity, b.get("/audit?since=yesterday").status)

	// The licence.
	page = b.get("/licence")
	assert.Contains(t, page.body, "There is no limit.")
	page = b.post("/licence", url.Values{"limit": {"-3"}})
	assert.Equal(t, http.StatusUnprocessableEntity, page.status)
	assert.Contains(t, page.body, `id="f-limit-error">must be 0 (unlimited) or more</p>`)
	page = b.post("/licence", url.Values{"limit": {"ten"}})
	assert.Equal(t, http.StatusUnprocessableEntity, page.status)
	page = b.follow(b.post("/licence", url.Values{"limit": {"5000"}}))
	assert.Contains(t, page.body, "Licence limit saved.")
	assert.Contains(t, page.body, "The limit is 5000.")
	limit, _ := e.store.GetLicenceLimit(ctx)
	assert.Equal(t, 5000, limit)
}

func TestDocumentsUploadListDelete(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	b.get("/documents")
	page := b.upload("staff.csv", "username\nann\n", b.csrf, true)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	page = b.get(page.location)
	assert.Contains(t, page.body, "Document uploaded.")
	assert.Contains(t, page.body, `<th scope="row">staff.csv</th>`)
	docs, _ := e.store.ListDocuments(context.Background(), directory.ListOptions{})
	require.Len(t, docs.Items, 1)
	d := docs.Items[0]
	assert.Contains(t, page.body, d.SHA256)
	audit, _ := e.store.ListAudit(context.Background(), directory.AuditFilter{Action: "document_uploaded"}, directory.ListOptions{})
	assert.Len(t, audit.Items, 1, "audited as through the API")

	// No file chosen.
	page = b.upload("", "", b.csrf, true)
	assert.Equal(t, http.StatusBadRequest, page.status)
	assert.Contains(t, page.body, "Choose a file to upload.")

	page = b.get("/documents/" + d.ID + "/delete")
	assert.Contains(t, page.body, "Delete the document “staff.csv”?")
	page = b.follow(b.post("/documents/"+d.ID+"/delete", nil))
	assert.Contains(t, page.body, "Document deleted.")
	assert.Contains(t, page.body, "No document yet.")
	assert.Equal(t, http.StatusNotFound, b.post("/documents/"+d.ID+"/delete", nil).status)
}
