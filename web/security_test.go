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
	assert.Equal(t, "https://login.evil.example", e.storedConfig(id).Azure.AuthorityURL)
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
	assert.Equal(t, signed, e.storedConfig(id).CSV.URL)
	for _, p := range []string{"/audit", "/profiles"} {
		assert.False(t, strings.Contains(b.get(p).body, "SIGNED-URL-SECRET"), p)
	}
}
