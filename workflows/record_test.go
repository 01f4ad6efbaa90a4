package workflows

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
)

// fakeActivities stands in for the real activities under the same names,
// so a real server records a real history without a database or provider.
// The run id picks the behaviour: "…-failed" fails the fetch for good,
// "…-cancel" fetches until cancelled, "…-guard" trips the guard.
type fakeActivities struct {
	// store, when set, gets the status changes the real activities record.
	store directory.Store
	// blockFetch and guard apply the "-cancel" and "-guard" behaviours to
	// every run.
	blockFetch, guard bool

	mu      sync.Mutex
	fetches map[string]int
	applies map[string]int
	status  map[string]string
}

func newFakeActivities() *fakeActivities {
	return &fakeActivities{fetches: map[string]int{}, applies: map[string]int{}, status: map[string]string{}}
}

func (f *fakeActivities) statusOf(runID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status[runID]
}

func (f *fakeActivities) setStatus(runID, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[runID] = status
}

func (f *fakeActivities) StartRun(_ context.Context, in activities.StartRunInput) (activities.StartRunResult, error) {
	f.setStatus(in.RunID, directory.RunRunning)
	return activities.StartRunResult{ProfileName: "Contoso Entra", Provider: "azure"}, nil
}

func (f *fakeActivities) Fetch(ctx context.Context, in activities.FetchInput) (activities.FetchResult, error) {
	switch {
	case strings.HasSuffix(in.RunID, "-failed"):
		return activities.FetchResult{}, temporal.NewNonRetryableApplicationError(
			"Microsoft Entra rejected the client secret of Contoso Entra: paste a valid secret on the profile",
			"Auth", fmt.Errorf("AADSTS7000215: invalid client secret provided"))
	case f.blockFetch || strings.HasSuffix(in.RunID, "-cancel"):
		f.setStatus(in.RunID, "fetching")
		for {
			activity.RecordHeartbeat(ctx, "cursor")
			select {
			case <-ctx.Done():
				return activities.FetchResult{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches[in.RunID]++
	n := f.fetches[in.RunID]
	activity.RecordHeartbeat(ctx, n)
	return activities.FetchResult{Fetched: 100 * n, Done: n == 3}, nil
}

func (f *fakeActivities) Plan(_ context.Context, in activities.PlanInput) (activities.PlanResult, error) {
	res := activities.PlanResult{Counts: directory.RunCounts{Created: 250, Updated: 30, Unchanged: 10, Disabled: 10}}
	if f.guard || strings.HasSuffix(in.RunID, "-guard") {
		res.Guard = "would disable 600 of 1000 active users (limit 500)"
	}
	return res, nil
}

func (f *fakeActivities) SetStatus(ctx context.Context, in activities.SetStatusInput) error {
	f.setStatus(in.RunID, in.Status)
	if f.store != nil {
		return f.store.SetRunStatus(ctx, in.RunID, in.Status, in.Phase, in.Message, time.Time{})
	}
	return nil
}

func (f *fakeActivities) Apply(ctx context.Context, in activities.ApplyInput) (activities.ApplyResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies[in.RunID]++
	n := f.applies[in.RunID]
	activity.RecordHeartbeat(ctx, n)
	return activities.ApplyResult{
		Done:   n == 2,
		Counts: directory.RunCounts{Created: 125 * n, Updated: 15 * n, Unchanged: 10, Disabled: 5 * n},
	}, nil
}

func (f *fakeActivities) FinishRun(ctx context.Context, in activities.FinishInput) error {
	f.setStatus(in.RunID, in.Status)
	if f.store != nil {
		return f.store.SetRunStatus(ctx, in.RunID, in.Status, directory.PhaseDone, in.Error, time.Time{})
	}
	return nil
}

// TestRecordHistory runs SyncProfile on a real dev server and writes the
// histories TestReplay replays. Run it after a deliberate change of the
// workflow's command sequence (and say so in the commit):
//
//	USERSYNC_RECORD_HISTORY=1 go test ./workflows -run TestRecordHistory
//
// An unintended change then shows up as a TestReplay failure instead of as
// stuck runs in production.
func TestRecordHistory(t *testing.T) {
	if os.Getenv("USERSYNC_RECORD_HISTORY") != "1" {
		t.Skip("set USERSYNC_RECORD_HISTORY=1 to record testdata histories")
	}
	c := startDevServer(t)
	const queue = "usersync-record"
	fake := newFakeActivities()
	w := worker.New(c, queue, worker.Options{MaxHeartbeatThrottleInterval: time.Second}) // as package worker does
	w.RegisterWorkflowWithOptions(SyncProfile, workflow.RegisterOptions{Name: WorkflowName})
	w.RegisterActivity(fake)
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, EnsureSearchAttributes(ctx, c, "default"))
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
		require.Eventually(t, func() bool { return fake.statusOf(runID) == status }, time.Minute, 50*time.Millisecond,
			"run %s never reached %s", runID, status)
	}

	// A full run through the guard: fetch ×3, plan, approval, apply ×2.
	guarded := start("rec-guard", SyncInput{Options: Options{HeartbeatTimeout: 10 * time.Second}})
	waitStatus("rec-guard", directory.RunAwaitingApproval)
	require.NoError(t, c.SignalWorkflow(ctx, guarded.GetID(), "", SignalApprove, nil))
	require.NoError(t, guarded.Get(ctx, nil))
	record(t, ctx, c, guarded.GetID(), guarded.GetRunID(), "sync_history.json")

	// Continue-as-new in the fetch: the first execution, and the resumed one.
	chain := start("rec-can", SyncInput{Options: Options{ContinueAsNewAfter: 3}})
	require.NoError(t, c.GetWorkflow(ctx, chain.GetID(), "").Get(ctx, nil))
	// The UI lists runs by ProfileName: the continued execution keeps it.
	desc, err := c.DescribeWorkflowExecution(ctx, chain.GetID(), "")
	require.NoError(t, err)
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
	require.Equal(t, directory.RunCancelled, fake.statusOf("rec-cancel"))
	record(t, ctx, c, cancelled.GetID(), cancelled.GetRunID(), "cancelled_history.json")
}

// record writes the full history of one execution to testdata.
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
	require.NoError(t, os.WriteFile(filepath.Join("testdata", name), append(b, '\n'), 0o644))
	t.Logf("recorded %s: %d events", name, len(hist.Events))
}
