package web

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/profile"
)

// webFake is a provider only this test registers: the admin page offers
// it, draws its inputs from its fields and saves what they hold, sealing
// its secret, with nothing in web naming it.
type webFake struct {
	Host  string `json:"host"`
	Token string `json:"token,omitempty" secret:"true"`
	Mode  string `json:"mode"`
	Deep  bool   `json:"deep"`
}

func (b *webFake) Normalize(*profile.Config) {
	if b.Mode == "" {
		b.Mode = "fast"
	}
}

func (b *webFake) Validate(*profile.Config) profile.FieldErrors {
	var errs profile.FieldErrors
	if b.Host == "" {
		errs.Add("webfake.host", "required")
	}
	return errs
}

func TestAdminPageDrawsARegisteredProvider(t *testing.T) {
	profile.Register(profile.Provider{Name: "webfake", DisplayName: "Web Fake", Description: "a test's provider",
		New: func() profile.Block { return &webFake{} },
		Fields: []profile.Field{
			{Name: "host", Label: "Host name", Kind: profile.KindText, Placeholder: "ldap.example.com"},
			{Name: "token", Label: "Access token", Kind: profile.KindPassword},
			{Name: "mode", Label: "Mode", Kind: profile.KindSelect, Options: []profile.Option{
				{Value: "fast", Label: "Fast"}, {Value: "slow", Label: "Slow"}}},
			{Name: "deep", Label: "Read nested groups", Kind: profile.KindCheckbox, Section: profile.SectionDirectory},
		}})
	t.Cleanup(func() { profile.Unregister("webfake") })

	e := newEnv(t)
	b := e.browser()
	b.signIn()
	page := b.get("/profiles/new")
	assert.Contains(t, page.body, `<a href="/profiles/new?provider=webfake"><strong>Web Fake</strong> (a test&#39;s provider)</a>`)

	page = b.get("/profiles/new?provider=webfake")
	require.Equal(t, http.StatusOK, page.status, page.body)
	assert.Contains(t, page.body, "New Web Fake profile")
	assert.Contains(t, page.body, `<input id="f-webfake-host" name="webfake.host" value="" placeholder="ldap.example.com"`)
	assert.Contains(t, page.body, `<input type="password" id="f-webfake-token" name="webfake.token" value=""`)
	assert.Contains(t, page.body, `<option value="fast" selected>Fast</option>`)
	assert.Contains(t, page.body, `<input type="checkbox" id="f-webfake-deep" name="webfake.deep">`)
	assertLabelled(t, "webfake.host", page.body)

	form := url.Values{"action": {"save"}, "name": {"Fake one"}, "enabled": {"on"}, "provider": {"webfake"},
		"webfake.host": {""}, "webfake.token": {"TOKEN-web-1"}, "webfake.mode": {"slow"}, "webfake.deep": {"on"},
		"groups": {"g1"}, "groupSync.mode": {"off"}, "schedule.frequency": {"off"},
		"safety.maxDisables": {"500"}, "safety.maxDisablePercent": {"20"}}
	page = b.post("/profiles/new", form)
	require.Equal(t, http.StatusUnprocessableEntity, page.status, page.body)
	assert.Contains(t, fieldError(page.body, "webfake.host"), "required", "the block's error lands beside its input")
	assert.NotContains(t, page.body, "TOKEN-web-1")

	form.Set("webfake.host", "ldap.example.com")
	page = b.post("/profiles/new", form)
	require.Equal(t, http.StatusSeeOther, page.status, page.body)
	m := profileURL.FindStringSubmatch(page.location)
	require.NotNil(t, m, page.location)
	p, err := e.store.GetProfile(context.Background(), m[1])
	require.NoError(t, err)
	assert.NotContains(t, string(p.Config), "TOKEN-web-1", "the secret is sealed")
	cfg, err := profile.Open(e.box, p.Config, p.Secrets)
	require.NoError(t, err)
	assert.Equal(t, &webFake{Host: "ldap.example.com", Token: "TOKEN-web-1", Mode: "slow", Deep: true}, cfg.Block)

	page = b.get("/profiles/" + m[1])
	require.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.body, `id="f-webfake-token-state"><span class="badge ok">set</span>`)
	assert.Contains(t, page.body, `<option value="slow" selected>Slow</option>`)
	assert.Contains(t, page.body, `name="webfake.deep" checked`)
	assert.NotContains(t, page.body, "TOKEN-web-1")
}
