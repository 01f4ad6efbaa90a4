package workflows

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/fakesteps"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/syncrun"
)

// Recorded ticks live apart from the SyncProfile histories (TestReplay
// registers SyncProfile alone).
const tickHistories = "testdata/ticks"

// tickFakes answer the tick's steps without a database: profile "p-skip"
// has a manual success an hour ago on a daily schedule, any other a day
// and a half ago.
type tickFakes struct{}

func (tickFakes) CheckScheduledRun(_ context.Context, in syncrun.ScheduledCheckInput) (syncrun.ScheduledCheck, error) {
	ago := 36 * time.Hour
	if in.ProfileID == "p-skip" {
		ago = time.Hour
	}
	return syncrun.ScheduledCheck{Found: true, ProfileName: "Contoso Entra", Provider: "azure",
		Frequency: syncrun.FrequencyDaily, LastManualRunID: "manual-1", LastManualAt: in.ScheduledAt.Add(-ago)}, nil
}

func (tickFakes) RecordSkippedRun(context.Context, syncrun.SkippedRunInput) error { return nil }

// TestRecordTickHistories records ScheduledSync ticks started by a real
// schedule (so with TemporalScheduledStartTime) for TestReplayTicks, into
// testdata/ticks/<currentShape>, never over a recorded one:
//
//	USERSYNC_RECORD_HISTORY=1 go test ./workflows -run TestRecordTickHistories
func TestRecordTickHistories(t *testing.T) {
	if os.Getenv("USERSYNC_RECORD_HISTORY") != "1" {
		t.Skip("set USERSYNC_RECORD_HISTORY=1 to record testdata tick histories")
	}
	c := testenv.StartDevServer(t).Client
	const queue = "usersync-record-ticks"
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(SyncProfile, workflow.RegisterOptions{Name: WorkflowName})
	w.RegisterWorkflowWithOptions(ScheduledSync, workflow.RegisterOptions{Name: ScheduledWorkflowName})
	w.RegisterActivity(&fakesteps.Activities{})
	w.RegisterActivity(&tickFakes{})
	require.NoError(t, w.Start())
	defer w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	tick := func(profileID, name string) {
		t.Helper()
		h, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID:   "usersync-schedule-" + profileID,
			Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 24 * time.Hour}}},
			Action: &client.ScheduleWorkflowAction{ID: "usersync-scheduled-" + profileID, Workflow: ScheduledWorkflowName,
				Args: []any{ScheduledInput{ProfileID: profileID}}, TaskQueue: queue},
			TriggerImmediately: true,
		})
		require.NoError(t, err)
		var wid string
		require.Eventually(t, func() bool {
			d, err := h.Describe(ctx)
			if err != nil || len(d.Info.RecentActions) == 0 {
				return false
			}
			wid = d.Info.RecentActions[0].StartWorkflowResult.WorkflowID
			return true
		}, time.Minute, 100*time.Millisecond)
		var res ScheduledResult
		require.NoError(t, c.GetWorkflow(ctx, wid, "").Get(ctx, &res))
		require.Equal(t, profileID == "p-skip", res.Skipped != "", "tick result %+v", res)
		record(t, ctx, c, wid, "", filepath.Join("ticks", name))
		require.NoError(t, h.Delete(ctx))
	}
	tick("p-run", "started.json")
	tick("p-skip", "skipped.json")
}

// TestReplayTicks replays the recorded ticks against the current code: a
// change to ScheduledSync that would break ticks in flight fails here.
func TestReplayTicks(t *testing.T) {
	for _, f := range historyFiles(t, tickHistories, "*.json") {
		t.Run(f, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(ScheduledSync, workflow.RegisterOptions{Name: ScheduledWorkflowName})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), f))
		})
	}
}
