package api

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/service"
)

var secretValues = []string{"pw-SECRET-1", "dpw-SECRET-2", "azure-SECRET-3", "okta-SECRET-4"}

func assertNoSecrets(t *testing.T, body string) {
	t.Helper()
	for _, s := range secretValues {
		assert.NotContains(t, body, s)
	}
	for _, k := range []string{`"password"`, `"defaultPassword"`, `"clientSecret"`, `"apiToken"`, `"privateKey"`} {
		assert.NotContains(t, body, k)
	}
}

func TestCreateAndReadProfile(t *testing.T) {
	e := newEnv(t)
	r := e.do(http.MethodPost, "/api/v1/profiles", csvProfile)
	m := r.status(http.StatusCreated)
	assertNoSecrets(t, r.Body.String())
	id := m["id"].(string)
	assert.Regexp(t, regexp.MustCompile(`^p-[a-z0-9]{10}$`), m["directoryKey"])
	assert.Equal(t, "People file", m["name"])
	assert.Equal(t, true, m["enabled"])
	assert.Nil(t, m["lastRun"])
	assert.Contains(t, m, "nextRunAt")
	assert.NotEmpty(t, m["createdAt"])
	block := m["csv"].(map[string]any)
	assert.Equal(t, true, block["passwordSet"])
	assert.Equal(t, true, block["defaultPasswordSet"])
	assert.Equal(t, "remote", block["source"], "defaults are filled")

	r = e.do(http.MethodGet, "/api/v1/profiles/"+id, nil)
	got := r.status(http.StatusOK)
	assertNoSecrets(t, r.Body.String())
	assert.Equal(t, m, got)

	r = e.do(http.MethodGet, "/api/v1/profiles", nil)
	list := r.status(http.StatusOK)
	assertNoSecrets(t, r.Body.String())
	require.Len(t, list["items"], 1)
	assert.Equal(t, id, list["items"].([]any)[0].(map[string]any)["id"])
	assert.NotContains(t, list, "nextCursor")

	// Stored sealed: not in clear in the database either.
	p, err := e.store.GetProfile(context.Background(), id)
	require.NoError(t, err)
	assertNoSecrets(t, string(p.Config))
	assert.NotContains(t, p.Secrets, "SECRET")
	assert.Equal(t, "pw-SECRET-1", e.storedConfig(id).Block.(*csv.Profile).Password)

	audit := e.audit(service.ActionProfileCreated)
	require.Len(t, audit, 1)
	assert.Equal(t, directory.CategorySyncConfig, audit[0].Category)
	assert.Equal(t, "People file", audit[0].Connection)
	assert.Equal(t, id, audit[0].Subject)
	assertNoSecrets(t, audit[0].Details)

	e.do(http.MethodGet, "/api/v1/profiles/nope", nil).apiErr(http.StatusNotFound, "not_found")
}

func TestProfilePaging(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"a", "b", "c"} {
		e.createProfile(`{"name":"` + n + `","provider":"csv","csv":{"url":"https://x.example.com/a.csv"}}`)
	}
	first := e.do(http.MethodGet, "/api/v1/profiles?limit=2", nil).status(http.StatusOK)
	require.Len(t, first["items"], 2)
	second := e.do(http.MethodGet, "/api/v1/profiles?limit=2&cursor="+first["nextCursor"].(string), nil).status(http.StatusOK)
	require.Len(t, second["items"], 1)
	assert.Equal(t, "c", second["items"].([]any)[0].(map[string]any)["name"])
}

func TestCreateProfileErrors(t *testing.T) {
	e := newEnv(t)
	er := e.do(http.MethodPost, "/api/v1/profiles", `{"name":"x","provider":"csv","csv":{"url":"https://a.example.com","passwrd":"x"}}`).
		apiErr(http.StatusBadRequest, "bad_request")
	assert.Equal(t, `unknown field "csv.passwrd"`, er["message"])

	er = e.do(http.MethodPost, "/api/v1/profiles", `{"name":"x","provider":"csv","csv":{"url":"https://a.example.com"},
		"groupSync":{"mode":"regex","pattern":"(Intranet"}}`).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Equal(t, "groupSync.pattern: missing closing )", er["message"])
	assert.Equal(t, []any{map[string]any{"field": "groupSync.pattern", "message": "missing closing )"}}, er["details"])

	er = e.do(http.MethodPost, "/api/v1/profiles", `{"name":"","provider":"azure","csv":{}}`).
		apiErr(http.StatusUnprocessableEntity, "validation_failed")
	fields := map[string]bool{}
	for _, d := range er["details"].([]any) {
		fields[d.(map[string]any)["field"].(string)] = true
	}
	assert.Equal(t, map[string]bool{"name": true, "azure": true, "csv": true}, fields)

	er = e.do(http.MethodPost, "/api/v1/profiles", `{"name":"x","provider":"azure","azure":{"tenantId":"t","clientId":"c","clientSecret":"azure-SECRET-3"},
		"attributeMap":{"shoeSize":"x"}}`).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Contains(t, er["message"], "attributeMap.shoeSize: unknown Azure attribute; allowed: aboutMe")

	er = e.do(http.MethodPost, "/api/v1/profiles", `{"name":"x","provider":"csv","csv":{"documentId":"missing"}}`).
		apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Equal(t, "csv.documentId: no such document", er["message"])

	e.createProfile(csvProfile)
	er = e.do(http.MethodPost, "/api/v1/profiles", strings.Replace(csvProfile, "People file", "PEOPLE FILE", 1)).
		apiErr(http.StatusConflict, "conflict")
	assert.Equal(t, "name: a profile with this name exists", er["message"])
	assert.Equal(t, "name", er["details"].([]any)[0].(map[string]any)["field"])
}

func TestUpdateProfileKeepsSecrets(t *testing.T) {
	e := newEnv(t)
	id := e.createProfile(csvProfile)

	// A PUT without the secrets keeps both.
	r := e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"People file v2","provider":"csv",
		"csv":{"url":"https://files.example.com/people.csv","username":"svc"},"schedule":{"frequency":"interval","everyMinutes":30}}`)
	m := r.status(http.StatusOK)
	assertNoSecrets(t, r.Body.String())
	assert.Equal(t, "People file v2", m["name"])
	assert.Equal(t, true, m["csv"].(map[string]any)["passwordSet"])
	c := e.storedConfig(id)
	assert.Equal(t, "pw-SECRET-1", c.Block.(*csv.Profile).Password)
	assert.Equal(t, "dpw-SECRET-2", c.Block.(*csv.Profile).DefaultPassword)
	assert.Equal(t, "https://files.example.com/people.csv", c.Block.(*csv.Profile).URL)
	assert.Equal(t, 30, c.Schedule.EveryMinutes)

	// A secret sent replaces the stored one; one sent empty clears it.
	e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"People file v2","provider":"csv",
		"csv":{"url":"https://files.example.com/v2.csv","password":"new-pw","defaultPassword":""}}`).status(http.StatusOK)
	c = e.storedConfig(id)
	assert.Equal(t, "new-pw", c.Block.(*csv.Profile).Password)
	assert.Empty(t, c.Block.(*csv.Profile).DefaultPassword)
	m = e.do(http.MethodGet, "/api/v1/profiles/"+id, nil).status(http.StatusOK)
	assert.Equal(t, false, m["csv"].(map[string]any)["defaultPasswordSet"])

	audit := e.audit(service.ActionProfileUpdated)
	require.Len(t, audit, 2)
	assert.Equal(t, "changed: csv.defaultPassword, csv.password, csv.url, csv.username, schedule.everyMinutes, schedule.frequency", audit[0].Details)
	assert.Contains(t, audit[1].Details, "name")
	assert.Equal(t, "People file v2", audit[1].Connection)
	for _, a := range audit {
		assertNoSecrets(t, a.Details)
		assert.NotContains(t, a.Details, "new-pw")
	}
}

func TestUpdateProfileErrors(t *testing.T) {
	e := newEnv(t)
	id := e.createProfile(csvProfile)
	e.createProfile(`{"name":"Other","provider":"csv","csv":{"url":"https://x.example.com/a.csv"}}`)

	e.do(http.MethodPut, "/api/v1/profiles/nope", csvProfile).apiErr(http.StatusNotFound, "not_found")
	er := e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"x","provider":"okta","okta":{"orgUrl":"a.okta.com","apiToken":"okta-SECRET-4"}}`).
		apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Contains(t, er["message"], "provider: cannot change the provider")
	er = e.do(http.MethodPut, "/api/v1/profiles/"+id, strings.Replace(csvProfile, "People file", "other", 1)).
		apiErr(http.StatusConflict, "conflict")
	assert.Equal(t, "name: a profile with this name exists", er["message"])
	er = e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"x","provider":"csv","csv":{"url":"http://files.example.com/a.csv"}}`).
		apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Equal(t, "csv.url", er["details"].([]any)[0].(map[string]any)["field"])
	e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"nam":"x"}`).apiErr(http.StatusBadRequest, "bad_request")
	assert.Equal(t, "pw-SECRET-1", e.storedConfig(id).Block.(*csv.Profile).Password, "a refused PUT changes nothing")
}

func TestDeleteProfile(t *testing.T) {
	e := newEnv(t)
	id := e.createProfile(csvProfile)
	e.do(http.MethodPost, "/api/v1/profiles/"+id+"/sync", nil).status(http.StatusAccepted)
	er := e.do(http.MethodDelete, "/api/v1/profiles/"+id, nil).apiErr(http.StatusConflict, "run_in_progress")
	assert.NotEmpty(t, er["runId"])

	run, err := e.store.LastRun(context.Background(), id)
	require.NoError(t, err)
	require.NoError(t, e.store.SetRunStatus(context.Background(), run.ID, directory.RunSucceeded, directory.PhaseDone, "", run.StartedAt))
	e.do(http.MethodDelete, "/api/v1/profiles/"+id, nil).status(http.StatusNoContent)
	e.do(http.MethodGet, "/api/v1/profiles/"+id, nil).apiErr(http.StatusNotFound, "not_found")
	e.do(http.MethodDelete, "/api/v1/profiles/"+id, nil).apiErr(http.StatusNotFound, "not_found")
	audit := e.audit(service.ActionProfileDeleted)
	require.Len(t, audit, 1)
	assert.Equal(t, "People file", audit[0].Connection)
	assertNoSecrets(t, audit[0].Details)
}

func TestSyncProfile(t *testing.T) {
	e := newEnv(t)
	id := e.createProfile(csvProfile)

	r := e.do(http.MethodPost, "/api/v1/profiles/"+id+"/sync", `{"dryRun":true}`)
	run := r.status(http.StatusAccepted)
	for _, k := range []string{"id", "profileId", "profileName", "trigger", "dryRun", "status", "phase", "counts",
		"error", "startedAt", "finishedAt", "workflowId", "temporalRunId", "temporalUiUrl"} {
		assert.Contains(t, run, k)
	}
	assert.Len(t, run, 14)
	assert.Len(t, run["counts"], 18)
	assert.Equal(t, id, run["profileId"])
	assert.Equal(t, "People file", run["profileName"])
	assert.Equal(t, "manual", run["trigger"])
	assert.Equal(t, true, run["dryRun"])
	assert.Equal(t, "running", run["status"])
	assert.Nil(t, run["finishedAt"])
	assert.Equal(t, "http://localhost:8233/namespaces/default/workflows/usersync-"+id+"/trun-1", run["temporalUiUrl"])
	assert.Equal(t, []string{"manual/" + id + "/true"}, e.runner.started)

	// Recorded: readable at once, and the profile shows it as its last run.
	e.do(http.MethodGet, "/api/v1/runs/"+run["id"].(string), nil).status(http.StatusOK)
	last := e.do(http.MethodGet, "/api/v1/profiles/"+id, nil).status(http.StatusOK)["lastRun"].(map[string]any)
	assert.Equal(t, run["id"], last["id"])
	assert.Equal(t, "running", last["status"])
	assert.Nil(t, last["finishedAt"])

	// A second start while it runs: 409 with the running run.
	r = e.do(http.MethodPost, "/api/v1/profiles/"+id+"/sync", "")
	er := r.apiErr(http.StatusConflict, "run_in_progress")
	assert.Equal(t, run["id"], er["runId"])
	assert.Equal(t, run["id"], r.json()["run"].(map[string]any)["id"])

	e.do(http.MethodPost, "/api/v1/profiles/"+id+"/sync", `{"dryRun":false,"force":true}`).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodPost, "/api/v1/profiles/nope/sync", nil).apiErr(http.StatusNotFound, "not_found")

	// A disabled profile does not sync.
	e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"People file","provider":"csv","enabled":false,
		"csv":{"url":"https://files.example.com/people.csv"}}`).status(http.StatusOK)
	e.runner.finish(id)
	er = e.do(http.MethodPost, "/api/v1/profiles/"+id+"/sync", nil).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Equal(t, "enabled", er["details"].([]any)[0].(map[string]any)["field"])
}

func TestSyncStartFailureIsInternal(t *testing.T) {
	e := newEnv(t)
	id := e.createProfile(csvProfile)
	e.runner.startErr = assert.AnError
	r := e.do(http.MethodPost, "/api/v1/profiles/"+id+"/sync", nil)
	r.apiErr(http.StatusInternalServerError, "internal")
	assert.NotContains(t, r.Body.String(), assert.AnError.Error())
}

func TestTestConnection(t *testing.T) {
	var got *profile.Config
	e := newEnv(t, func(o *Options) {
		o.Tester = func(_ context.Context, _ *directory.Profile, c *profile.Config) ([]string, error) {
			got = c
			if c.Block.(*csv.Profile).URL == "https://bad.example.com/a.csv" {
				return nil, assert.AnError
			}
			return nil, nil
		}
	})
	id := e.createProfile(csvProfile)
	m := e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
	assert.Equal(t, true, m["ok"])
	assert.Contains(t, m, "latencyMs")
	assert.Equal(t, "pw-SECRET-1", got.Block.(*csv.Profile).Password, "the tester gets the secrets")

	e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"People file","provider":"csv","csv":{"url":"https://bad.example.com/a.csv","password":"pw-SECRET-1"}}`).
		status(http.StatusOK)
	m = e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
	assert.Equal(t, false, m["ok"])
	assert.Equal(t, assert.AnError.Error(), m["message"])
	e.do(http.MethodPost, "/api/v1/profiles/nope/test", nil).apiErr(http.StatusNotFound, "not_found")
}
