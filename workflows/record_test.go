package workflows

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/usersync/usersync/internal/fakesteps"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/syncrun"
)

// currentShape is the folder of testdata (and of testdata/ticks) holding
// the histories of the workflows as the code now runs them: the id of the
// newest change guarded by workflow.GetVersion. The histories of every
// earlier shape stay where they are and keep replaying (the first shape's
// are at the top of testdata). Changing a workflow means a new change id,
// currentShape set to it, and a recording (CONTRIBUTING.md).
const currentShape = changeStepHeartbeats

// TestRecordHistory runs SyncProfile on a real dev server and writes the
// histories TestReplay replays into testdata/<currentShape>. Run it after
// a deliberate change of the workflow's commands or step options, guarded
// by workflow.GetVersion, with currentShape set to the change's id:
//
//	USERSYNC_RECORD_HISTORY=1 go test ./workflows -run 'TestRecord'
//
// It never overwrites a history: a shape is recorded once, and kept.
func TestRecordHistory(t *testing.T) {
	if os.Getenv("USERSYNC_RECORD_HISTORY") != "1" {
		t.Skip("set USERSYNC_RECORD_HISTORY=1 to record testdata histories")
	}
	c := testenv.StartDevServer(t).Client
	const queue = "usersync-record"
	fake := &fakesteps.Activities{}
	w := worker.New(c, queue, worker.Options{MaxHeartbeatThrottleInterval: time.Second}) // as package worker does
	w.RegisterWorkflowWithOptions(SyncProfile, workflow.RegisterOptions{Name: WorkflowName})
	w.RegisterActivity(fake)
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := func(runID string, in SyncInput) client.WorkflowRun {
		t.Helper()
		in.RunID, in.ProfileID, in.Trigger = runID, "p-"+runID, "manual"
		we, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:            WorkflowID(in.ProfileID),
			TaskQueue:     queue,
			StaticSummary: "Sync Contoso Entra (azure) — manual",
			TypedSearchAttributes: temporal.NewSearchAttributes(
				ProfileNameKey.ValueSet("Contoso Entra"), ProviderKey.ValueSet("azure")),
		}, WorkflowName, in)
		require.NoError(t, err)
		return we
	}
	waitStatus := func(runID, status string) {
		t.Helper()
		require.Eventually(t, func() bool { return fakesteps.StatusOf(fake, runID) == status }, time.Minute, 50*time.Millisecond,
			"run %s never reached %s", runID, status)
	}

	// A full run through the guard: fetch ×3, plan, approval, apply ×2.
	guarded := start("rec-guard", SyncInput{Options: Options{HeartbeatTimeout: 10 * time.Second}})
	waitStatus("rec-guard", syncrun.RunAwaitingApproval)
	require.NoError(t, c.SignalWorkflow(ctx, guarded.GetID(), "", SignalApprove, nil))
	require.NoError(t, guarded.Get(ctx, nil))
	record(t, ctx, c, guarded.GetID(), guarded.GetRunID(), "sync_history.json")

	// Continue-as-new in the fetch: the first execution, and the resumed one.
	chain := start("rec-can", SyncInput{Options: Options{ContinueAsNewAfter: 3}})
	require.NoError(t, c.GetWorkflow(ctx, chain.GetID(), "").Get(ctx, nil))
	// The UI lists runs by ProfileName: the continued execution keeps it.
	d, err := c.DescribeWorkflow(ctx, chain.GetID(), "")
	require.NoError(t, err)
	desc := d.RawResponse
	require.NotEqual(t, chain.GetRunID(), desc.GetWorkflowExecutionInfo().GetExecution().GetRunId())
	require.Contains(t, desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields(), "ProfileName")
	record(t, ctx, c, chain.GetID(), chain.GetRunID(), "continue_as_new_history.json")
	record(t, ctx, c, chain.GetID(), "", "resumed_history.json")

	// A final failure.
	failed := start("rec-failed", SyncInput{})
	require.Error(t, failed.Get(ctx, nil))
	record(t, ctx, c, failed.GetID(), failed.GetRunID(), "failed_history.json")

	// A cancel during the fetch.
	cancelled := start("rec-cancel", SyncInput{Options: Options{HeartbeatTimeout: 2 * time.Second}})
	waitStatus("rec-cancel", "fetching")
	require.NoError(t, c.CancelWorkflow(ctx, cancelled.GetID(), ""))
	err = cancelled.Get(ctx, nil)
	require.True(t, temporal.IsCanceledError(err), "want cancelled, got %v", err)
	require.Equal(t, syncrun.RunCancelled, fakesteps.StatusOf(fake, "rec-cancel"))
	record(t, ctx, c, cancelled.GetID(), cancelled.GetRunID(), "cancelled_history.json")
}

// record writes the full history of one execution to testdata/<currentShape>
// (name may start with a subfolder, such as ticks/), and refuses to
// replace a file: a released shape's history is evidence, not output.
func record(t *testing.T, ctx context.Context, c client.Client, workflowID, runID, name string) {
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
	sub, base := filepath.Split(name)
	path := filepath.Join("testdata", sub, currentShape, base)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		t.Fatalf("%s is recorded already and is never overwritten: record a changed workflow under a new change id (currentShape)", path)
	}
	require.NoError(t, err)
	_, err = f.Write(append(b, '\n'))
	require.NoError(t, errors.Join(err, f.Close()))
	t.Logf("recorded %s: %d events", path, len(hist.Events))
}
