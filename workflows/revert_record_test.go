package workflows

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/usersync/usersync/internal/fakesteps"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/syncrun"
)

// revertShape is the folder, under testdata, of RevertRun's histories as
// the code now runs them (named *.json, not *history.json, which
// TestReplay replays as SyncProfile's). RevertRun is a workflow type of its own, so its
// shapes are recorded apart from SyncProfile's; a change of its commands
// is guarded by workflow.GetVersion and recorded under a new folder, as
// for SyncProfile (CONTRIBUTING.md).
const revertShape = "revert"

// TestRecordRevertHistory runs RevertRun on a real dev server and writes
// the histories TestReplayRevert replays:
//
//	USERSYNC_RECORD_HISTORY=1 go test ./workflows -run 'TestRecord'
func TestRecordRevertHistory(t *testing.T) {
	if os.Getenv("USERSYNC_RECORD_HISTORY") != "1" {
		t.Skip("set USERSYNC_RECORD_HISTORY=1 to record testdata histories")
	}
	c := testenv.StartDevServer(t).Client
	const queue = "usersync-record-revert"
	fake := &fakesteps.Activities{}
	w := worker.New(c, queue, worker.Options{MaxHeartbeatThrottleInterval: time.Second})
	w.RegisterWorkflowWithOptions(RevertRun, workflow.RegisterOptions{Name: RevertWorkflowName})
	w.RegisterActivity(fake)
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := func(runID string, in RevertInput) client.WorkflowRun {
		t.Helper()
		in.RunID, in.ProfileID, in.TargetRunID = runID, "p-"+runID, "target-"+runID
		we, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: WorkflowID(in.ProfileID), TaskQueue: queue,
			StaticSummary: RevertSummary("Contoso Entra", "azure", in.TargetRunID, in.DryRun)}, RevertWorkflowName, in)
		require.NoError(t, err)
		return we
	}
	// Held by the guard, approved, applied in two batches.
	guarded := start("rev-guard", RevertInput{Options: Options{HeartbeatTimeout: 10 * time.Second}})
	require.Eventually(t, func() bool { return fakesteps.StatusOf(fake, "rev-guard") == syncrun.RunAwaitingApproval },
		time.Minute, 50*time.Millisecond)
	require.NoError(t, c.SignalWorkflow(ctx, guarded.GetID(), "", SignalApprove, nil))
	require.NoError(t, guarded.Get(ctx, nil))
	recordRevert(t, ctx, c, guarded.GetID(), guarded.GetRunID(), "guarded_revert.json")

	// The preview: a dry run ends after the plan.
	dry := start("rev-dry", RevertInput{DryRun: true})
	require.NoError(t, dry.Get(ctx, nil))
	recordRevert(t, ctx, c, dry.GetID(), dry.GetRunID(), "dry_revert.json")
}

func recordRevert(t *testing.T, ctx context.Context, c client.Client, workflowID, runID, name string) {
	t.Helper()
	hist := &historypb.History{}
	iter := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	path := filepath.Join("testdata", revertShape, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	// O_EXCL: a recorded shape is evidence, never overwritten.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	require.NoError(t, err, "%s is recorded already: record a changed workflow under a new folder", path)
	_, err = f.Write(append(b, '\n'))
	require.NoError(t, errors.Join(err, f.Close()))
	t.Logf("recorded %s: %d events", path, len(hist.Events))
}

// TestReplayRevert replays every recorded history of RevertRun.
func TestReplayRevert(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", revertShape, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories of RevertRun: record them (TestRecordRevertHistory)")
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(RevertRun, workflow.RegisterOptions{Name: RevertWorkflowName})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), f))
		})
	}
}
