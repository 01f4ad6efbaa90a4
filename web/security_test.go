package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/provider/azure"
	"github.com/usersync/usersync/provider/csv"
)

// Regression tests of issue 13 (security) through the admin page.

func (e *env) storedConfig(id string) *profile.Config {
	e.t.Helper()
	p, err := e.store.GetProfile(context.Background(), id)
	require.NoError(e.t, err)
	cfg, err := profile.Open(e.box, p.Config, p.Secrets)
	require.NoError(e.t, err)
	return cfg
}

// TestAdminAsksForSecretWhenEndpointMoves is item 1 on the admin page: a
// save that changes the authority URL with the secret input left blank
// kept the stored secret for the new host. Now the form comes back with
// the secret asked for beside its input, and nothing is saved.
func TestAdminAsksForSecretWhenEndpointMoves(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	const secret = "azure-CLIENT-SECRET-1"
	b.get("/profiles/new?provider=azure")
	form := url.Values{"action": {"save"}, "name": {"Entra"}, "enabled": {"on"}, "provider": {"azure"},
		"azure.tenantId": {"contoso.example"}, "azure.clientId": {"app"}, "azure.clientSecret": {secret},
		"azure.cloud": {"global"}, "azure.usernameAttribute": {"userPrincipalName"}, "groups": {"g1"},
		"groupSync.mode": {"off"}, "schedule.frequency": {"off"}}
	page := b.post("/profiles/new", form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	id := profileURL.FindStringSubmatch(page.location)[1]
	before := e.storedConfig(id)

	b.get("/profiles/" + id)
	form.Del("azure.clientSecret")
	form.Set("azure.authorityUrl", "https://login.evil.example")
	page = b.post("/profiles/"+id, form)
	assert.Equal(t, http.StatusUnprocessableEntity, page.status)
	assert.Contains(t, fieldError(page.body, "azure.clientSecret"), "required again: azure.authorityUrl changed")
	assert.NotContains(t, page.body, secret)
	assert.Equal(t, before, e.storedConfig(id))

	// Typed again, it saves, and the move is in the audit log.
	form.Set("azure.clientSecret", secret)
	page = b.post("/profiles/"+id, form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	assert.Equal(t, "https://login.evil.example", e.storedConfig(id).Block.(*azure.Profile).AuthorityURL)
	audit, err := e.store.ListAudit(context.Background(), directory.AuditFilter{Action: "profile_endpoint_changed", Subject: id}, directory.ListOptions{})
	require.NoError(t, err)
	require.Len(t, audit.Items, 1)
	assert.Equal(t, `azure.authorityUrl: "" -> https://login.evil.example`, audit.Items[0].Details)
}

// TestAdminHidesSignedURLQuery is item 7 on the admin page: the editor
// showed a signed URL's ?sig=… in clear. It shows the URL without it, and
// a save of the form as shown keeps the stored signature.
func TestAdminHidesSignedURLQuery(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn()
	const signed = "https://files.example.com/people.csv?sig=SIGNED-URL-SECRET"
	b.get("/profiles/new?provider=csv")
	form := url.Values{"action": {"save"}, "name": {"Signed"}, "enabled": {"on"}, "provider": {"csv"},
		"csv.source": {"remote"}, "csv.url": {signed}, "csv.userMatchField": {"username"},
		"csv.delimiter": {","}, "csv.defaultPassword": {"Welcome-2-usersync!"},
		"groupSync.mode": {"off"}, "schedule.frequency": {"off"}}
	page := b.post("/profiles/new", form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	id := profileURL.FindStringSubmatch(page.location)[1]

	page = b.get("/profiles/" + id)
	assert.NotContains(t, page.body, "SIGNED-URL-SECRET")
	assert.Contains(t, page.body, `value="https://files.example.com/people.csv"`)
	assert.Contains(t, page.body, "query set")

	form.Set("csv.url", "https://files.example.com/people.csv")
	form.Set("csv.defaultPassword", "")
	page = b.post("/profiles/"+id, form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	assert.Equal(t, signed, e.storedConfig(id).Block.(*csv.Profile).URL)
	for _, p := range []string{"/audit", "/profiles"} {
		assert.False(t, strings.Contains(b.get(p).body, "SIGNED-URL-SECRET"), p)
	}
}

// TestSignInRedirectStaysOnSite is item 5: /signin?next=/%09/evil.example
// sent the browser to "/\t/evil.example" after sign-in, which browsers
// read as //evil.example.
func TestSignInRedirectStaysOnSite(t *testing.T) {
	e := newEnv(t)
	for _, next := range []string{"/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/\\/evil.example",
		"/ /evil.example", "/\x00/evil.example", "//evil.example", "https://evil.example/", "/\u2028/evil.example"} {
		b := e.browser()
		p := b.get("/signin?next=" + url.QueryEscape(next))
		require.Equal(t, http.StatusOK, p.status)
		assert.Contains(t, p.body, `name="next" value="/"`, "%q", next)
		p = b.post("/signin", url.Values{"token": {testToken}, "next": {next}})
		require.Equal(t, http.StatusSeeOther, p.status, p.body)
		assert.Equal(t, "/", p.location, "%q", next)
	}
	// A real path, query and all, is kept.
	b := e.browser()
	b.get("/signin")
	p := b.post("/signin", url.Values{"token": {testToken}, "next": {"/users?q=ann%20lee&status=active"}})
	assert.Equal(t, "/users?q=ann%20lee&status=active", p.location)
}

// TestSignOutRevokesTheSession is item 9: sign-out only cleared the
// browser's cookie (a copy kept working until it expired) and, with the
// session due for renewal, set a renewed cookie beside the cleared one.
// On both databases, since the revocation is shared through the store.
func TestSignOutRevokesTheSession(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		b := e.browser()
		b.signIn()
		p := b.get("/profiles")
		require.Equal(t, http.StatusOK, p.status)
		u, _ := url.Parse(e.srv.URL)
		var copied *http.Cookie
		for _, c := range b.c.Jar.Cookies(u) {
			if c.Name == sessionCookie {
				copied = c
			}
		}
		require.NotNil(t, copied)

		e.clock.advance(2 * touchEvery) // the session is due for renewal
		p = b.post("/signout", nil)
		require.Equal(t, http.StatusSeeOther, p.status, p.body)
		var set []*http.Cookie
		for _, c := range (&http.Response{Header: p.header}).Cookies() {
			if c.Name == sessionCookie {
				set = append(set, c)
			}
		}
		require.Len(t, set, 1, "one Set-Cookie for the session: the clearing one")
		assert.Equal(t, -1, set[0].MaxAge)

		// The copied cookie no longer works, for pages, forms and JSON.
		thief := e.browser()
		thief.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: copied.Value, Path: "/"}})
		p = thief.get("/profiles")
		assert.Equal(t, http.StatusSeeOther, p.status)
		assert.True(t, strings.HasPrefix(p.location, "/signin"), p.location)
		assert.Equal(t, http.StatusUnauthorized, thief.get("/runs/x/status.json").status)
		p = thief.postRaw("/licence", url.Values{"limit": {"5"}}, nil)
		assert.Equal(t, http.StatusUnauthorized, p.status)

		// Signing in again gives a new session that works.
		b.signIn()
		assert.Equal(t, http.StatusOK, b.get("/profiles").status)
	})
}

// TestSignInIsThrottled is item 4 on the admin page: 30 wrong sign-ins in
// a second were all answered. After the client's allowance, attempts are
// refused unchecked (even with the right token) until time passes.
func TestSignInIsThrottled(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/signin")
	refused := 0
	for range 30 {
		p := b.post("/signin", url.Values{"token": {"guess"}, "next": {"/"}})
		if p.status == http.StatusTooManyRequests {
			refused++
			assert.NotEmpty(t, p.header.Get("Retry-After"))
			assert.Contains(t, p.body, "Too many wrong tokens")
		} else {
			assert.Equal(t, http.StatusUnauthorized, p.status)
		}
	}
	assert.GreaterOrEqual(t, refused, 19, "only the allowance is checked")
	p := b.post("/signin", url.Values{"token": {testToken}, "next": {"/"}})
	assert.Equal(t, http.StatusTooManyRequests, p.status, "refused unchecked while throttled")
	assert.Nil(t, sessionCookieOf(p))
}

// TestAdminPickerCursorIsOpaque is item 2 on the admin page: the picker's
// groups.json and the editor's groupCursor passed a client's cursor to
// the provider as it came.
func TestAdminPickerCursorIsOpaque(t *testing.T) {
	e := newEnv(t)
	e.groups = []provider.Group{{ID: "g1", Name: "A"}, {ID: "g2", Name: "B"}, {ID: "g3", Name: "C"}}
	b := e.browser()
	b.signIn()
	b.get("/profiles/new?provider=azure")
	page := b.post("/profiles/new", url.Values{"action": {"save"}, "name": {"Entra"}, "enabled": {"on"}, "provider": {"azure"},
		"azure.tenantId": {"contoso.example"}, "azure.clientId": {"app"}, "azure.clientSecret": {"s3cret-value"},
		"azure.cloud": {"global"}, "azure.usernameAttribute": {"userPrincipalName"}, "groupSync.mode": {"off"},
		"schedule.frequency": {"off"}})
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	id := profileURL.FindStringSubmatch(page.location)[1]

	p := b.get("/profiles/" + id + "/groups.json?cursor=" + url.QueryEscape("https://evil.example/groups"))
	assert.Equal(t, http.StatusBadRequest, p.status, p.body)
	assert.Contains(t, p.body, "invalid cursor")
	p = b.get("/profiles/" + id + "?groupCursor=2")
	assert.Contains(t, p.body, "invalid cursor", "the editor says so in the picker")
	assert.NotContains(t, p.body, `value="g3"`)

	// The cursor the page hands out works.
	p = b.get("/profiles/" + id + "/groups.json")
	require.Equal(t, http.StatusOK, p.status)
	next := regexpFind(t, p.body, `"next":"([^"]+)"`)
	p = b.get("/profiles/" + id + "/groups.json?cursor=" + url.QueryEscape(next))
	require.Equal(t, http.StatusOK, p.status, p.body)
	assert.Contains(t, p.body, `"g3"`)
}

// TestAdminPagesRefuseNULs is item 8 on the admin page, on both
// databases: a NUL in a query value or id answered 500 on PostgreSQL.
func TestAdminPagesRefuseNULs(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		b := e.browser()
		b.signIn()
		for _, path := range []string{"/users?q=a%00b", "/users?cursor=%00", "/users/a%00", "/groups?q=%00", "/groups/%00",
			"/runs?profile=%00", "/runs/%00", "/audit?subject=%00", "/profiles/%00", "/profiles?cursor=%FF",
			"/documents?cursor=%00"} {
			p := b.get(path)
			assert.Equal(t, http.StatusBadRequest, p.status, path)
		}
		p := b.get("/runs/%00/status.json")
		assert.Equal(t, http.StatusBadRequest, p.status)
		assert.Equal(t, http.StatusOK, b.get("/users?q=zo%C3%AB").status)
	})
}
