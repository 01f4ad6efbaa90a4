package api

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/service"
)

// schedRunner is the fake Runner with schedules and reconciliation, as
// runs.Client has them.
type schedRunner struct {
	*fakeRunner
	mu         sync.Mutex
	synced     []string // "<profile id> enabled=<bool>"
	deleted    []string
	triggered  []string
	reconciled []string
	syncErr    error
	deleteErr  error
	triggerErr error
	next       *time.Time
	nextErr    error
	// reconcile, when set, is what ReconcileRun makes of a run.
	reconcile func(*directory.Run) (*directory.Run, error)
}

func (f *schedRunner) SyncSchedule(_ context.Context, p *directory.Profile) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncErr != nil {
		return f.syncErr
	}
	f.synced = append(f.synced, p.ID+" enabled="+map[bool]string{true: "true", false: "false"}[p.Enabled])
	return nil
}

func (f *schedRunner) DeleteSchedule(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleteErr != nil {
		return f.deleteErr
	}
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *schedRunner) NextRunAt(context.Context, string) (*time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next, f.nextErr
}

func (f *schedRunner) TriggerSchedule(_ context.Context, p *directory.Profile) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.triggerErr != nil {
		return f.triggerErr
	}
	f.triggered = append(f.triggered, p.ID)
	return nil
}

func (f *schedRunner) ReconcileRun(_ context.Context, r *directory.Run) (*directory.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reconciled = append(f.reconciled, r.ID)
	if f.reconcile == nil {
		return r, nil
	}
	return f.reconcile(r)
}

func newSchedEnv(t *testing.T) (*env, *schedRunner) {
	sr := &schedRunner{}
	e := newEnv(t, func(o *Options) {
		sr.fakeRunner = o.Runner.(*fakeRunner)
		o.Runner = sr
	})
	return e, sr
}

const dailyProfile = `{"name":"Nightly","provider":"csv",
	"csv":{"url":"https://files.example.com/people.csv","defaultPassword":"x"},
	"schedule":{"frequency":"daily","time":"02:00","timezone":"Europe/London"}}`

func TestScheduleFollowsProfileSaves(t *testing.T) {
	e, sr := newSchedEnv(t)
	next := time.Date(2030, 1, 2, 2, 0, 0, 0, time.UTC)
	sr.next = &next

	m := e.do(http.MethodPost, "/api/v1/profiles", dailyProfile).status(http.StatusCreated)
	id := m["id"].(string)
	assert.Equal(t, "2030-01-02T02:00:00Z", m["nextRunAt"])
	assert.Equal(t, []string{id + " enabled=true"}, sr.synced)

	m = e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"Nightly","provider":"csv","enabled":false,
		"csv":{"url":"https://files.example.com/people.csv"},
		"schedule":{"frequency":"daily","time":"03:00","timezone":"Europe/London"}}`).status(http.StatusOK)
	assert.Nil(t, m["nextRunAt"], "a disabled profile's schedule is paused: no next run")
	assert.Equal(t, []string{id + " enabled=true", id + " enabled=false"}, sr.synced)

	// Frequency off: no schedule to ask about.
	csvID := e.createProfile(csvProfile)
	m = e.do(http.MethodGet, "/api/v1/profiles/"+csvID, nil).status(http.StatusOK)
	assert.Nil(t, m["nextRunAt"])

	// Temporal unreachable on a read: the read still answers.
	e.do(http.MethodPut, "/api/v1/profiles/"+id, dailyProfile).status(http.StatusOK)
	sr.nextErr = errors.New("connection refused")
	m = e.do(http.MethodGet, "/api/v1/profiles/"+id, nil).status(http.StatusOK)
	assert.Nil(t, m["nextRunAt"])
	assert.Contains(t, e.logs.String(), "connection refused")

	e.do(http.MethodDelete, "/api/v1/profiles/"+id, nil).status(http.StatusNoContent)
	assert.Equal(t, []string{id}, sr.deleted)
}

// A save whose schedule Temporal refuses is undone and answered 502, so
// the profile and its schedule never drift apart unseen.
func TestScheduleFailureUndoesTheSave(t *testing.T) {
	e, sr := newSchedEnv(t)
	ctx := context.Background()
	id := e.createProfile(dailyProfile)

	sr.syncErr = errors.New("temporal: connection refused")
	e.do(http.MethodPost, "/api/v1/profiles", `{"name":"Other","provider":"csv",
		"csv":{"url":"https://files.example.com/o.csv"}}`).apiErr(http.StatusBadGateway, "temporal_unavailable")
	page, err := e.store.ListProfiles(ctx, directory.ListOptions{})
	require.NoError(t, err)
	require.Len(t, page.Items, 1, "the refused profile is not kept")

	before, err := e.store.GetProfile(ctx, id)
	require.NoError(t, err)
	er := e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"Renamed","provider":"csv",
		"csv":{"url":"https://files.example.com/people.csv"},
		"schedule":{"frequency":"interval","everyMinutes":30}}`).apiErr(http.StatusBadGateway, "temporal_unavailable")
	assert.Contains(t, er["message"], "connection refused")
	after, err := e.store.GetProfile(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, before.Name, after.Name)
	assert.JSONEq(t, string(before.Config), string(after.Config))
	assert.Empty(t, e.audit(service.ActionProfileUpdated), "nothing was updated")

	sr.syncErr = nil
	sr.deleteErr = errors.New("temporal: deadline exceeded")
	e.do(http.MethodDelete, "/api/v1/profiles/"+id, nil).apiErr(http.StatusBadGateway, "temporal_unavailable")
	_, err = e.store.GetProfile(ctx, id)
	assert.NoError(t, err, "the profile stays while its schedule does")
}

func TestResetLastRun(t *testing.T) {
	e, sr := newSchedEnv(t)
	off := e.createProfile(csvProfile)
	er := e.do(http.MethodPost, "/api/v1/profiles/"+off+"/reset-last-run", nil).apiErr(http.StatusConflict, "no_schedule")
	assert.Contains(t, er["message"], "frequency is off")

	id := e.createProfile(dailyProfile)
	e.do(http.MethodPost, "/api/v1/profiles/"+id+"/reset-last-run", nil).status(http.StatusAccepted)
	assert.Equal(t, []string{id}, sr.triggered)
	resets := e.audit("last_run_reset")
	require.Len(t, resets, 1)
	assert.Equal(t, id, resets[0].Subject)
	assert.Equal(t, directory.CategorySyncConfig, resets[0].Category)

	sr.triggerErr = errors.New("temporal: unavailable")
	e.do(http.MethodPost, "/api/v1/profiles/"+id+"/reset-last-run", nil).apiErr(http.StatusBadGateway, "temporal_unavailable")

	e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"Nightly","provider":"csv","enabled":false,
		"csv":{"url":"https://files.example.com/people.csv"},
		"schedule":{"frequency":"daily","time":"02:00","timezone":"Europe/London"}}`).status(http.StatusOK)
	e.do(http.MethodPost, "/api/v1/profiles/"+id+"/reset-last-run", nil).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	e.do(http.MethodPost, "/api/v1/profiles/nope/reset-last-run", nil).apiErr(http.StatusNotFound, "not_found")
}

// Run reads show what Temporal knows of a run that ended outside
// usersync's hands; final rows are not looked up.
func TestRunReadsReconcile(t *testing.T) {
	e, sr := newSchedEnv(t)
	ctx := context.Background()
	id := e.createProfile(csvProfile)
	e.do(http.MethodPost, "/api/v1/profiles/"+id+"/sync", nil).status(http.StatusAccepted)
	page, err := e.store.ListRuns(ctx, directory.RunFilter{ProfileID: id}, directory.ListOptions{})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	runID := page.Items[0].ID

	sr.reconcile = func(r *directory.Run) (*directory.Run, error) {
		return nil, errors.New("temporal: unavailable")
	}
	m := e.do(http.MethodGet, "/api/v1/runs/"+runID, nil).status(http.StatusOK)
	assert.Equal(t, directory.RunRunning, m["status"], "Temporal unreachable: the row as stored")

	sr.reconcile = func(r *directory.Run) (*directory.Run, error) {
		require.NoError(t, e.store.SetRunStatus(ctx, r.ID, directory.RunFailed, "", "terminated in Temporal: stop", time.Time{}))
		return e.store.GetRun(ctx, r.ID)
	}
	m = e.do(http.MethodGet, "/api/v1/runs/"+runID, nil).status(http.StatusOK)
	assert.Equal(t, directory.RunFailed, m["status"])
	assert.Equal(t, "terminated in Temporal: stop", m["error"])
	m = e.do(http.MethodGet, "/api/v1/runs?profileId="+id, nil).status(http.StatusOK)
	assert.Equal(t, directory.RunFailed, m["items"].([]any)[0].(map[string]any)["status"])
	assert.Equal(t, []string{runID, runID}, sr.reconciled, "a final row is not looked up again")
}
