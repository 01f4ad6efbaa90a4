package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/workflows"
)

// TestRunControlThroughTheAPI steers runs as an operator does, through the
// API and through Temporal (as the Temporal UI would), and reads every
// outcome back through the API: a cancelled sync disables nobody and its
// retry succeeds; a run held by the accidental-delete guard applies once
// approved; runs cancelled or terminated in Temporal show cancelled and
// failed in GET /runs/{id} and GET /runs.
func TestRunControlThroughTheAPI(t *testing.T) {
	// Slow pages (two users each) keep a run in flight long enough to
	// steer it.
	s := newStack(t, stackOptions{PageDelay: 150 * time.Millisecond, PageSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := s.api

	body := csvProfile("Staff", s.upload(people(12)), map[string]any{"frequency": "off"})
	var p profileView
	require.Equal(t, 201, c.do("POST", "/profiles", body, &p))
	var run runRow
	require.Equal(t, 202, c.do("POST", "/profiles/"+p.ID+"/sync", map[string]any{}, &run))
	run = s.waitRun(run.ID)
	require.Equal(t, directory.RunSucceeded, run.Status, "first sync %+v", run)
	require.Equal(t, 12, run.Counts.Created)
	activeUsers := func() int {
		n := 0
		for _, u := range c.users() {
			if u.Status == directory.StatusActive {
				n++
			}
		}
		return n
	}

	// Three people leave; the sync that would disable them is cancelled
	// while it fetches.
	body["csv"].(map[string]any)["documentId"] = s.upload(people(9))
	require.Equal(t, 200, c.do("PUT", "/profiles/"+p.ID, body, nil))
	require.Equal(t, 202, c.do("POST", "/profiles/"+p.ID+"/sync", map[string]any{}, &run))
	require.Equal(t, 202, c.do("POST", "/runs/"+run.ID+"/cancel", nil, nil))
	cancelled := s.waitRun(run.ID)
	require.Equal(t, directory.RunCancelled, cancelled.Status, "cancelled run %+v", cancelled)
	assert.Zero(t, cancelled.Counts.Disabled)
	assert.Equal(t, 12, activeUsers(), "a cancelled run disables nobody")
	require.Equal(t, 409, c.do("POST", "/runs/"+run.ID+"/cancel", nil, nil), "cancel of an ended run")

	// Retried: a new run of the profile, which completes.
	var retry runRow
	require.Equal(t, 202, c.do("POST", "/runs/"+cancelled.ID+"/retry", nil, &retry))
	assert.NotEqual(t, cancelled.ID, retry.ID)
	assert.Equal(t, "retry", retry.Trigger)
	retry = s.waitRun(retry.ID)
	require.Equal(t, directory.RunSucceeded, retry.Status, "retry %+v", retry)
	assert.Equal(t, 3, retry.Counts.Disabled)
	assert.Equal(t, 9, activeUsers())

	// Two more leave, with at most one disable allowed: the guard holds
	// the run until it is approved, and nothing is applied meanwhile.
	body["csv"].(map[string]any)["documentId"] = s.upload(people(7))
	body["safety"] = map[string]any{"maxDisables": 1, "maxDisablePercent": 100}
	require.Equal(t, 200, c.do("PUT", "/profiles/"+p.ID, body, nil))
	require.Equal(t, 202, c.do("POST", "/profiles/"+p.ID+"/sync", map[string]any{}, &run))
	held := s.waitRun(run.ID)
	require.Equal(t, directory.RunAwaitingApproval, held.Status, "held run %+v", held)
	assert.Contains(t, held.Error, "2")
	assert.Equal(t, 9, activeUsers(), "nothing applied before the approval")
	require.Equal(t, 202, c.do("POST", "/runs/"+held.ID+"/approve", nil, nil))
	var approved runRow
	waitFor(t, "the approved run to end", func() bool {
		approved = s.run(held.ID)
		return directory.IsFinalRunStatus(approved.Status)
	})
	require.Equal(t, directory.RunSucceeded, approved.Status, "approved run %+v", approved)
	assert.Equal(t, 2, approved.Counts.Disabled)
	assert.Equal(t, 7, activeUsers())
	require.Equal(t, 409, c.do("POST", "/runs/"+held.ID+"/approve", nil, nil), "approve of an ended run")

	// Cancelled in the Temporal UI: the workflow records it.
	body["csv"].(map[string]any)["documentId"] = s.upload(people(12))
	require.Equal(t, 200, c.do("PUT", "/profiles/"+p.ID, body, nil))
	require.Equal(t, 202, c.do("POST", "/profiles/"+p.ID+"/sync", map[string]any{}, &run))
	require.NoError(t, s.tmp.Client.CancelWorkflow(ctx, workflows.WorkflowID(p.ID), ""))
	run = s.waitRun(run.ID)
	assert.Equal(t, directory.RunCancelled, run.Status, "run cancelled in Temporal %+v", run)

	// Terminated in the Temporal UI: no workflow code runs, yet the API
	// shows the run failed, with the operator's reason.
	require.Equal(t, 202, c.do("POST", "/profiles/"+p.ID+"/sync", map[string]any{}, &run))
	// Halfway through the fetch, so that the run has staged rows to drop.
	waitFor(t, "the run to fetch", func() bool {
		got := s.run(run.ID)
		return got.Counts.Fetched > 0 && got.Counts.Fetched < 12
	})
	require.NoError(t, s.tmp.Client.TerminateWorkflow(ctx, workflows.WorkflowID(p.ID), "", "operator stopped it"))
	got := s.run(run.ID)
	assert.Equal(t, directory.RunFailed, got.Status, "terminated run %+v", got)
	assert.Equal(t, "terminated in Temporal: operator stopped it", got.Error)
	assert.NotNil(t, got.FinishedAt)
	for _, r := range s.runsOf(p.ID) {
		if r.ID == run.ID {
			assert.Equal(t, directory.RunFailed, r.Status, "GET /runs shows it too")
		}
	}
	stored, err := s.store.GetRun(ctx, run.ID)
	require.NoError(t, err)
	assert.Equal(t, directory.RunFailed, stored.Status, "the row itself is final now")
	var audit struct {
		Items []struct {
			Details string `json:"details"`
		} `json:"items"`
	}
	c.do("GET", "/audit?action=run_finished&runId="+run.ID, nil, &audit)
	require.Len(t, audit.Items, 1)
	assert.True(t, strings.Contains(audit.Items[0].Details, "terminated in Temporal"), "audit %+v", audit)
	assert.Contains(t, got.TemporalUIURL, "/workflows/"+workflows.WorkflowID(p.ID)+"/"+got.TemporalRunID+"/history")

	// The profile's workflow id is free again: the next sync runs.
	require.Equal(t, 202, c.do("POST", "/profiles/"+p.ID+"/sync", map[string]any{}, &run))
	run = s.waitRun(run.ID)
	assert.Equal(t, directory.RunSucceeded, run.Status, "sync after the termination %+v", run)
	assert.Equal(t, 5, run.Counts.Reenabled)
	assert.Equal(t, 12, activeUsers())
}
