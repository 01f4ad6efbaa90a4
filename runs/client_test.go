package runs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/internal/fakesteps"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/workflows"
)

func TestRunningError(t *testing.T) {
	err := error(&RunningError{RunID: "r1"})
	assert.ErrorIs(t, err, ErrRunning)
	assert.Contains(t, err.Error(), "r1")
	var inProgress interface{ RunningRunID() string }
	require.ErrorAs(t, err, &inProgress)
	assert.Equal(t, "r1", inProgress.RunningRunID())
	assert.ErrorIs(t, errors.Join(errors.New("x"), err), ErrRunning)
}

func TestUIURL(t *testing.T) {
	c := &Client{UIBaseURL: "http://localhost:8233/", Namespace: "prod"}
	run := &directory.Run{ProfileID: "p1", WorkflowID: "usersync-profile-p1", TemporalRunID: "abc"}
	assert.Equal(t, "http://localhost:8233/namespaces/prod/workflows/usersync-profile-p1/abc/history", c.UIURL(run))
	c.Namespace = ""
	run.WorkflowID = ""
	assert.Equal(t, "http://localhost:8233/namespaces/default/workflows/usersync-profile-p1/abc/history", c.UIURL(run))
	assert.Empty(t, (&Client{}).UIURL(run))
}

// TestClient drives the API side against a real Temporal dev server and
// a real (SQLite) store, with stand-in activities on the worker.
func TestClient(t *testing.T) {
	tc := testenv.StartBareDevServer(t).Client
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The dev server starts without our search attributes, like a cluster
	// nobody configured for usersync; twice proves it idempotent.
	st, err := EnsureSearchAttributes(ctx, tc, "default")
	require.NoError(t, err)
	assert.Equal(t, []string{"ProfileName", "Provider"}, st.Added)
	st, err = EnsureSearchAttributes(ctx, tc, "default")
	require.NoError(t, err)
	assert.True(t, st.Ready)
	assert.Empty(t, st.Added)

	store := directory.NewSQLStore(dbtest.Open(t, schema.SQLite))
	newProfile := func(name string) *directory.Profile {
		p := &directory.Profile{Name: name, Provider: "azure", Enabled: true, DirectoryKey: "dir-" + name}
		require.NoError(t, store.CreateProfile(ctx, p))
		return p
	}
	startWorker := func(queue string, fake *fakesteps.Activities) *Client {
		fake.Store = store
		w := worker.New(tc, queue, worker.Options{MaxHeartbeatThrottleInterval: time.Second}) // as package worker does
		w.RegisterWorkflowWithOptions(workflows.SyncProfile, workflow.RegisterOptions{Name: workflows.WorkflowName})
		w.RegisterActivity(fake)
		require.NoError(t, w.Start())
		t.Cleanup(w.Stop)
		return &Client{Temporal: tc, TaskQueue: queue, Namespace: "default", UIBaseURL: "http://localhost:8233", Store: store}
	}
	waitRun := func(id, status string) {
		t.Helper()
		require.Eventually(t, func() bool {
			r, err := store.GetRun(ctx, id)
			return err == nil && r.Status == status
		}, time.Minute, 50*time.Millisecond, "run %s never reached %s", id, status)
	}

	t.Run("start refuse progress cancel", func(t *testing.T) {
		c := startWorker("usersync-client-cancel", &fakesteps.Activities{BlockFetch: true})
		p := newProfile("Contoso Entra")

		run, err := c.Start(ctx, p, "manual", false)
		require.NoError(t, err)
		assert.Equal(t, workflows.WorkflowID(p.ID), run.WorkflowID)
		assert.NotEmpty(t, run.TemporalRunID)
		stored, err := store.GetRun(ctx, run.ID)
		require.NoError(t, err)
		assert.Equal(t, directory.RunRunning, stored.Status)
		assert.Equal(t, directory.PhaseFetch, stored.Phase)
		assert.Equal(t, run.TemporalRunID, stored.TemporalRunID)
		assert.Equal(t, "manual", stored.Trigger)
		assert.False(t, stored.StartedAt.IsZero())

		// What the Temporal UI shows.
		d, err := tc.DescribeWorkflow(ctx, run.WorkflowID, "")
		require.NoError(t, err)
		desc := d.RawResponse
		var name, provider, summary string
		dc := converter.GetDefaultDataConverter()
		fields := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
		require.NoError(t, dc.FromPayload(fields["ProfileName"], &name))
		require.NoError(t, dc.FromPayload(fields["Provider"], &provider))
		require.NoError(t, dc.FromPayload(desc.GetExecutionConfig().GetUserMetadata().GetSummary(), &summary))
		assert.Equal(t, "Contoso Entra", name)
		assert.Equal(t, "azure", provider)
		assert.Equal(t, "Sync Contoso Entra (azure) — manual", summary)

		_, err = c.Start(ctx, p, "api", true)
		require.ErrorIs(t, err, ErrRunning)
		var running *RunningError
		require.ErrorAs(t, err, &running)
		assert.Equal(t, run.ID, running.RunID)

		require.Eventually(t, func() bool {
			pr, err := c.Progress(ctx, run)
			return err == nil && pr.Phase == directory.PhaseFetch && pr.Status == directory.RunRunning && pr.RunID == run.ID
		}, time.Minute, 50*time.Millisecond)
		require.ErrorIs(t, c.Approve(ctx, stored), ErrNotAwaitingApproval)

		require.NoError(t, c.Cancel(ctx, stored))
		err = c.Temporal.GetWorkflow(ctx, run.WorkflowID, "").Get(ctx, nil)
		assert.True(t, temporal.IsCanceledError(err), "want cancelled, got %v", err)
		waitRun(run.ID, directory.RunCancelled)
		stored, err = store.GetRun(ctx, run.ID)
		require.NoError(t, err)
		require.ErrorIs(t, c.Cancel(ctx, stored), ErrNotRunning)

		// The profile is free again; the old run's buttons must not
		// reach the new one.
		again, err := c.Start(ctx, p, "retry", false)
		require.NoError(t, err)
		assert.NotEqual(t, run.ID, again.ID)
		stale := *stored
		stale.Status = directory.RunRunning
		require.ErrorIs(t, c.Cancel(ctx, &stale), ErrNotRunning)
		require.Eventually(t, func() bool {
			_, err := c.Progress(ctx, again)
			return err == nil
		}, time.Minute, 50*time.Millisecond)
		_, err = c.Progress(ctx, &stale)
		require.ErrorIs(t, err, ErrNotRunning)
		require.NoError(t, c.Cancel(ctx, again))
		waitRun(again.ID, directory.RunCancelled)
	})

	t.Run("approve", func(t *testing.T) {
		c := startWorker("usersync-client-approve", &fakesteps.Activities{Guard: true})
		p := newProfile("Okta Prod")

		run, err := c.Start(ctx, p, "manual", false)
		require.NoError(t, err)
		waitRun(run.ID, directory.RunAwaitingApproval)
		pr, err := c.Progress(ctx, run)
		require.NoError(t, err)
		assert.Equal(t, directory.RunAwaitingApproval, pr.Status)
		assert.Contains(t, pr.Guard, "would disable 600")

		stored, err := store.GetRun(ctx, run.ID)
		require.NoError(t, err)
		assert.Contains(t, stored.Error, "would disable 600", "the run row says why it waits")
		require.NoError(t, c.Approve(ctx, stored))

		var counts directory.RunCounts
		require.NoError(t, c.Temporal.GetWorkflow(ctx, run.WorkflowID, "").Get(ctx, &counts))
		assert.Equal(t, 300, counts.Fetched)
		assert.Equal(t, 250, counts.Created)
		waitRun(run.ID, directory.RunSucceeded)
		pr, err = c.Progress(ctx, run)
		require.NoError(t, err, "a finished run still answers the query")
		assert.Equal(t, directory.PhaseDone, pr.Phase)
	})
}
