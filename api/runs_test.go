package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
)

// startRun starts a run of a new profile through the API and returns the
// profile and run ids.
func (e *env) startRun(name string) (profileID, runID string) {
	e.t.Helper()
	profileID = e.createProfile(`{"name":"` + name + `","provider":"csv","csv":{"url":"https://x.example.com/a.csv"}}`)
	run := e.do(http.MethodPost, "/api/v1/profiles/"+profileID+"/sync", nil).status(http.StatusAccepted)
	return profileID, run["id"].(string)
}

func (e *env) setRunStatus(runID, status string) {
	e.t.Helper()
	require.NoError(e.t, e.store.SetRunStatus(context.Background(), runID, status, "", "", time.Time{}))
}

func TestListAndGetRuns(t *testing.T) {
	e := newEnv(t)
	p1, r1 := e.startRun("one")
	_, r2 := e.startRun("two")
	e.setRunStatus(r2, directory.RunFailed)

	all := e.do(http.MethodGet, "/api/v1/runs", nil).status(http.StatusOK)
	require.Len(t, all["items"], 2)
	byProfile := e.do(http.MethodGet, "/api/v1/runs?profileId="+p1, nil).status(http.StatusOK)
	require.Len(t, byProfile["items"], 1)
	assert.Equal(t, r1, byProfile["items"].([]any)[0].(map[string]any)["id"])
	failed := e.do(http.MethodGet, "/api/v1/runs?status=failed", nil).status(http.StatusOK)
	require.Len(t, failed["items"], 1)
	run := failed["items"].([]any)[0].(map[string]any)
	assert.Equal(t, r2, run["id"])
	assert.NotNil(t, run["finishedAt"])
	assert.Contains(t, run["temporalUiUrl"], "/workflows/")
	page := e.do(http.MethodGet, "/api/v1/runs?limit=1", nil).status(http.StatusOK)
	require.Len(t, page["items"], 1)
	assert.NotEmpty(t, page["nextCursor"])

	e.do(http.MethodGet, "/api/v1/runs?status=done", nil).apiErr(http.StatusBadRequest, "bad_request")
	got := e.do(http.MethodGet, "/api/v1/runs/"+r1, nil).status(http.StatusOK)
	assert.Equal(t, "fetch", got["phase"])
	e.do(http.MethodGet, "/api/v1/runs/nope", nil).apiErr(http.StatusNotFound, "not_found")
}

func TestApproveRun(t *testing.T) {
	e := newEnv(t)
	_, runID := e.startRun("one")
	er := e.do(http.MethodPost, "/api/v1/runs/"+runID+"/approve", nil).apiErr(http.StatusConflict, "conflict")
	assert.Contains(t, er["message"], "running")
	assert.Empty(t, e.runner.approved)

	e.setRunStatus(runID, directory.RunAwaitingApproval)
	run := e.do(http.MethodPost, "/api/v1/runs/"+runID+"/approve", nil).status(http.StatusAccepted)
	assert.Equal(t, runID, run["id"])
	assert.Equal(t, []string{runID}, e.runner.approved)
	e.do(http.MethodPost, "/api/v1/runs/nope/approve", nil).apiErr(http.StatusNotFound, "not_found")
}

func TestCancelRun(t *testing.T) {
	e := newEnv(t)
	_, runID := e.startRun("one")
	e.do(http.MethodPost, "/api/v1/runs/"+runID+"/cancel", nil).status(http.StatusAccepted)
	assert.Equal(t, []string{runID}, e.runner.cancelled)

	e.setRunStatus(runID, directory.RunCancelled)
	e.do(http.MethodPost, "/api/v1/runs/"+runID+"/cancel", nil).apiErr(http.StatusConflict, "conflict")
	assert.Len(t, e.runner.cancelled, 1)
	e.do(http.MethodPost, "/api/v1/runs/nope/cancel", nil).apiErr(http.StatusNotFound, "not_found")
}

func TestRetryRun(t *testing.T) {
	e := newEnv(t)
	profileID, runID := e.startRun("one")
	// Still running: the runner refuses, so the API answers 409.
	e.do(http.MethodPost, "/api/v1/runs/"+runID+"/retry", nil).apiErr(http.StatusConflict, "run_in_progress")

	e.setRunStatus(runID, directory.RunFailed)
	e.runner.finish(profileID)
	run := e.do(http.MethodPost, "/api/v1/runs/"+runID+"/retry", nil).status(http.StatusAccepted)
	assert.NotEqual(t, runID, run["id"])
	assert.Equal(t, "retry", run["trigger"])
	assert.Equal(t, profileID, run["profileId"])
	e.do(http.MethodPost, "/api/v1/runs/nope/retry", nil).apiErr(http.StatusNotFound, "not_found")
}

func TestListChanges(t *testing.T) {
	e := newEnv(t)
	_, runID := e.startRun("one")
	for i, a := range []string{"created", "updated", "created"} {
		_, err := e.db.Exec(e.db.Rebind(`INSERT INTO change_ledger (run_id, subject_type, subject_id, username, action, reason, changes, at)
			VALUES (?, 'user', ?, ?, ?, '', ?, ?)`), runID, "u"+string(rune('0'+i)), "user"+string(rune('0'+i)), a,
			`{"email":{"from":"a@x.com","to":"b@x.com"}}`, time.Now().UTC())
		require.NoError(t, err)
	}
	first := e.do(http.MethodGet, "/api/v1/runs/"+runID+"/changes?limit=2", nil).status(http.StatusOK)
	require.Len(t, first["items"], 2)
	ch := first["items"].([]any)[0].(map[string]any)
	assert.Equal(t, "user0", ch["username"])
	assert.Equal(t, "created", ch["action"])
	assert.Equal(t, map[string]any{"email": map[string]any{"from": "a@x.com", "to": "b@x.com"}}, ch["changes"])
	second := e.do(http.MethodGet, "/api/v1/runs/"+runID+"/changes?limit=2&cursor="+first["nextCursor"].(string), nil).
		status(http.StatusOK)
	require.Len(t, second["items"], 1)
	assert.NotContains(t, second, "nextCursor")

	created := e.do(http.MethodGet, "/api/v1/runs/"+runID+"/changes?action=created", nil).status(http.StatusOK)
	assert.Len(t, created["items"], 2)
	e.do(http.MethodGet, "/api/v1/runs/"+runID+"/changes?action=exploded", nil).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodGet, "/api/v1/runs/nope/changes", nil).apiErr(http.StatusNotFound, "not_found")
}
