package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/service"
)

// The admin handler gets every path outside /api/v1 and the probes, with
// status 200 when it writes without WriteHeader (Gin presets 404 on an
// unmatched route).
func TestAdminHandlerMountedAtRoot(t *testing.T) {
	admin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("admin " + r.Method + " " + r.URL.Path))
	})
	e := newEnv(t, func(o *Options) { o.Admin = admin })

	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/"}, {http.MethodGet, "/profiles/x"}, {http.MethodPost, "/signin"}, {http.MethodGet, "/api"},
	} {
		r := e.doWith(c.method, c.path, nil, nil)
		assert.Equal(t, http.StatusOK, r.Code, c.path)
		assert.Equal(t, "admin "+c.method+" "+c.path, r.Body.String())
		assert.NotEmpty(t, r.Header().Get(requestIDHeader), "admin requests pass the API middleware")
	}
	e.doWith(http.MethodGet, "/api/v1/nope", nil, map[string]string{"Authorization": "Bearer " + testToken}).
		apiErr(http.StatusNotFound, "not_found")
	e.doWith(http.MethodGet, "/api/v1", nil, nil).apiErr(http.StatusNotFound, "not_found")
	e.doWith(http.MethodGet, "/healthz", nil, nil).status(http.StatusOK)
	e.doWith(http.MethodGet, "/api/v1/profiles", nil, nil).apiErr(http.StatusUnauthorized, "unauthorized")

	// Without an admin handler the root stays a JSON 404.
	plain := newEnv(t)
	plain.doWith(http.MethodGet, "/", nil, nil).apiErr(http.StatusNotFound, "not_found")
}

func TestServiceProfilesRunsAndProblems(t *testing.T) {
	var tested int
	e := newEnv(t, func(o *Options) {
		o.Tester = func(_ context.Context, _ *directory.Profile, c *profile.Config) ([]string, error) {
			tested++
			if !c.IsEnabled() {
				return nil, errors.New("csv: header row missing")
			}
			return nil, nil
		}
	})
	svc := e.srv.svc
	ctx := context.Background()

	// Validation errors come back by field, as the API's 422 details.
	_, err := svc.CreateProfile(ctx, decoded(t, `{"name":"","provider":"csv","csv":{"source":"remote","url":"ftp://x"}}`))
	pr := svc.Explain(ctx, err)
	assert.Equal(t, http.StatusUnprocessableEntity, pr.Kind.HTTPStatus())
	fields := map[string]string{}
	for _, f := range pr.Fields {
		fields[f.Field] = f.Message
	}
	assert.Contains(t, fields, "name")
	assert.Contains(t, fields, "csv.url")
	pr = svc.Explain(ctx, func() error { _, err := profile.Decode([]byte(`{"nme":"x"}`)); return err }())
	assert.Equal(t, http.StatusBadRequest, pr.Kind.HTTPStatus())

	p, err := svc.CreateProfile(ctx, decoded(t, csvProfile))
	require.NoError(t, err)
	require.Len(t, e.audit(service.ActionProfileCreated), 1, "audited like a POST")
	_, err = svc.CreateProfile(ctx, decoded(t, csvProfile))
	pr = svc.Explain(ctx, err)
	require.Len(t, pr.Fields, 1)
	assert.Equal(t, "name", pr.Fields[0].Field, "a taken name is a field error")

	// An update without secrets keeps them.
	_, err = svc.UpdateProfile(ctx, p.ID, decoded(t, `{"name":"People file","provider":"csv","enabled":false,
		"csv":{"url":"https://files.example.com/people.csv"}}`))
	require.NoError(t, err)
	assert.Equal(t, "pw-SECRET-1", e.storedConfig(p.ID).Block.(*csv.Profile).Password)

	// Test connection is audited and read back as the last test.
	last, err := svc.LastTest(ctx, p.ID)
	require.NoError(t, err)
	assert.Nil(t, last)
	res, err := svc.TestConnection(ctx, p.ID)
	require.NoError(t, err)
	assert.False(t, res.OK)
	assert.Equal(t, "csv: header row missing", res.Message)
	last, err = svc.LastTest(ctx, p.ID)
	require.NoError(t, err)
	require.NotNil(t, last)
	assert.False(t, last.OK)
	assert.Equal(t, res.Message, last.Message)
	assert.False(t, last.At.IsZero())
	// The JSON endpoint records too and answers the same shape.
	m := e.do(http.MethodPost, "/api/v1/profiles/"+p.ID+"/test", nil).status(http.StatusOK)
	assert.Equal(t, false, m["ok"])
	assert.Equal(t, 2, tested)
	assert.Len(t, e.audit(service.ActionConnectionTested), 2)

	// A disabled profile does not sync; enabled, a second start is a 409
	// that names the running run.
	_, err = svc.Sync(ctx, p.ID, false)
	pr = svc.Explain(ctx, err)
	assert.Equal(t, http.StatusUnprocessableEntity, pr.Kind.HTTPStatus())
	assert.Equal(t, "enabled", pr.Fields[0].Field)
	_, err = svc.UpdateProfile(ctx, p.ID, decoded(t, `{"name":"People file","provider":"csv","enabled":true,
		"csv":{"url":"https://files.example.com/people.csv"}}`))
	require.NoError(t, err)
	run, err := svc.Sync(ctx, p.ID, false)
	require.NoError(t, err)
	assert.Equal(t, directory.RunRunning, run.Status)
	_, err = svc.Sync(ctx, p.ID, false)
	pr = svc.Explain(ctx, err)
	assert.Equal(t, http.StatusConflict, pr.Kind.HTTPStatus())
	assert.Equal(t, run.ID, pr.RunID)
	assert.Contains(t, svc.UIURL(run), run.WorkflowID)

	_, err = svc.ApproveRun(ctx, run.ID)
	assert.Equal(t, http.StatusConflict, svc.Explain(ctx, err).Kind.HTTPStatus(), "not awaiting approval")
	_, err = svc.CancelRun(ctx, run.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{run.ID}, e.runner.cancelled)
	assert.Equal(t, http.StatusConflict, svc.Explain(ctx, svc.DeleteProfile(ctx, p.ID)).Kind.HTTPStatus(), "a run is going")
	require.NoError(t, e.store.SetRunStatus(ctx, run.ID, directory.RunCancelled, directory.PhaseDone, "", run.StartedAt))
	e.runner.finish(p.ID)
	retried, err := svc.RetryRun(ctx, run.ID)
	require.NoError(t, err)
	assert.NotEqual(t, run.ID, retried.ID)

	// Documents and the licence, audited.
	d, err := svc.UploadDocument(ctx, "people.csv", "", strings.NewReader("username\nann\n"))
	require.NoError(t, err)
	assert.Equal(t, "text/csv", d.ContentType)
	require.NoError(t, svc.DeleteDocument(ctx, d.ID))
	assert.True(t, service.IsNotFound(svc.DeleteDocument(ctx, d.ID)))
	assert.Len(t, e.audit("document_deleted"), 1)
	require.NoError(t, svc.SetLicenceLimit(ctx, 10))
	assert.Equal(t, http.StatusUnprocessableEntity, svc.Explain(ctx, svc.SetLicenceLimit(ctx, -1)).Kind.HTTPStatus())
	assert.Len(t, e.audit("licence_updated"), 1)

	// An unknown error is logged, not shown.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	pr = svc.Explain(req.Context(), errors.New("pq: relation users does not exist"))
	assert.Equal(t, http.StatusInternalServerError, pr.Kind.HTTPStatus())
	assert.NotContains(t, pr.Message, "relation")
	assert.Contains(t, e.logs.String(), "relation users does not exist")
}

// decoded is a profile body decoded as the API decodes it.
func decoded(t *testing.T, body string) *profile.Config {
	t.Helper()
	cfg, err := profile.Decode([]byte(body))
	require.NoError(t, err)
	return cfg
}
