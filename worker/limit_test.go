package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/syncrun"
)

// fetchMeter is a Fetch that records how many run at once, per provider.
type fetchMeter struct {
	mu      sync.Mutex
	now     map[string]int
	max     map[string]int
	calls   atomic.Int64
	provOf  func(string) string
	holdFor time.Duration
}

func (m *fetchMeter) Fetch(ctx context.Context, in activities.FetchInput) (string, error) {
	p := m.provOf(in.RunID)
	m.mu.Lock()
	m.now[p]++
	m.max[p] = max(m.max[p], m.now[p])
	m.mu.Unlock()
	m.calls.Add(1)
	time.Sleep(m.holdFor)
	m.mu.Lock()
	m.now[p]--
	m.mu.Unlock()
	return in.RunID, nil
}

// fanOut fetches every run at once.
func fanOut(ctx workflow.Context, runIDs []string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: 10 * time.Second})
	var fs []workflow.Future
	for _, id := range runIDs {
		fs = append(fs, workflow.ExecuteActivity(ctx, syncrun.StepFetch, activities.FetchInput{RunID: id}))
	}
	for _, f := range fs {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// USERSYNC_PROVIDER_CONCURRENCY holds a provider's fetches to its limit
// while another provider's run beside them, and leaves a provider without
// a limit alone.
func TestProviderLimitHoldsFetches(t *testing.T) {
	providers := map[string]string{"a1": "azure", "a2": "azure", "a3": "azure", "a4": "azure", "o1": "okta", "o2": "okta", "c1": "csv", "c2": "csv", "c3": "csv"}
	m := &fetchMeter{now: map[string]int{}, max: map[string]int{}, holdFor: 300 * time.Millisecond,
		provOf: func(id string) string { return providers[id] }}
	var lookups atomic.Int64
	limiter := newProviderLimiter(map[string]int{"azure": 1, "okta": 2}, func(_ context.Context, runID string) (string, error) {
		lookups.Add(1)
		return providers[runID], nil
	})

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	// The test environment counts the activities' time against the workflow task.
	env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{limiter}, DeadlockDetectionTimeout: time.Minute})
	env.RegisterWorkflow(fanOut)
	env.RegisterActivityWithOptions(m.Fetch, activity.RegisterOptions{Name: syncrun.StepFetch})
	env.ExecuteWorkflow(fanOut, []string{"a1", "a2", "a3", "a4", "o1", "o2", "c1", "c2", "c3"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())

	require.EqualValues(t, 9, m.calls.Load())
	require.Equal(t, 1, m.max["azure"], "azure=1 lets one fetch run at a time")
	require.LessOrEqual(t, m.max["okta"], 2)
	require.Equal(t, 3, m.max["csv"], "a provider without a limit is not held")
	require.EqualValues(t, 9, lookups.Load(), "each run's provider is looked up once")
}
