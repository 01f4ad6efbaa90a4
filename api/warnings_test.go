package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	oktasim "github.com/usersync/usersync/idpsim/okta"
	"github.com/usersync/usersync/internal/reqtable"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/service"
)

// Issue 14, item 6: Test connection's warnings (what works but not fully)
// reach the API, green light and all, and are kept with the result.
func TestTestConnectionWarnings(t *testing.T) {
	var warnings []string
	var fail error
	e := newEnv(t, func(o *Options) {
		o.Tester = func(context.Context, *directory.Profile, *profile.Config) ([]string, error) { return warnings, fail }
	})
	id := e.createProfile(csvProfile)
	m := e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
	assert.Equal(t, true, m["ok"])
	assert.Equal(t, "connection works", m["message"])
	assert.Equal(t, []any{}, m["warnings"])

	warnings = []string{"okta: okta.logs.read is not granted to the service app: grant okta.logs.read"}
	m = e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
	assert.Equal(t, true, m["ok"])
	assert.Equal(t, "connection works, with a warning", m["message"])
	assert.Equal(t, []any{warnings[0]}, m["warnings"])
	last, err := e.srv.svc.LastTest(context.Background(), id)
	require.NoError(t, err)
	require.NotNil(t, last)
	assert.Equal(t, warnings, last.Warnings)

	warnings = append(warnings, "a second one")
	m = e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
	assert.Equal(t, "connection works, with 2 warnings", m["message"])

	fail = errors.New("authentication failed: the API token was refused")
	m = e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
	assert.Equal(t, false, m["ok"])
	assert.Equal(t, []any{}, m["warnings"], "a failed test has no warnings to add")
}

// The same through the real path: the activities' Test connection against
// a simulated Okta org whose API token may not read the System Log. The
// light is green and the warning names what to grant.
func TestTestConnectionWarnsWithoutTheSystemLog(t *testing.T) {
	sim := oktasim.New(oktasim.Config{Seed: 14, Users: 20})
	sim.AddAPIToken("no-logs-token-0123456789", oktasim.ScopeUsersRead, oktasim.ScopeGroupsRead, oktasim.ScopeAppsRead)
	org := httptest.NewServer(reqtable.Check(t, "okta", sim))
	t.Cleanup(org.Close)
	eachDialect(t, func(t *testing.T, e *env) {
		acts := activities.New(activities.Deps{Store: e.store, Box: e.box, AllowHTTPLoopback: true})
		e.srv = newServer(Options{Service: service.New(service.Options{Store: e.store, Runner: e.runner, Box: e.box,
			Tester: acts.TestConnection}), Token: testToken})
		e.h = e.srv.routes()
		id := e.createProfile(`{"name":"Okta","provider":"okta","okta":{"orgUrl":"` + org.URL + `","apiToken":"no-logs-token-0123456789"}}`)
		m := e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
		assert.Equal(t, true, m["ok"], m["message"])
		assert.Equal(t, "connection works, with a warning", m["message"])
		require.Len(t, m["warnings"], 1)
		w := m["warnings"].([]any)[0].(string)
		assert.Contains(t, w, "may not read the System Log")
		assert.Contains(t, w, "every run reads the whole org")
	})
}
