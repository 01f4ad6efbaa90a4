// Package worker builds the Temporal worker of usersync: the task queue it
// listens on and the registration of the workflows (SyncProfile, and the
// ScheduledSync tick a profile's schedule starts) and their steps, the
// activities, by name. The worker and the API must agree on these names,
// so they live in one place.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/syncrun"
	"github.com/usersync/usersync/workflows"
)

// DefaultTaskQueue is the task queue when TEMPORAL_TASK_QUEUE is unset.
const DefaultTaskQueue = "usersync"

// Defaults of Options.
const (
	// DefaultMaxConcurrentActivities bounds how many steps (one per running
	// sync) a worker runs at once. Fetch and apply are set-based SQL, so
	// the database is the limit: 8 matches the SQLite connection pool and
	// leaves Postgres room for the API. More throughput is more workers.
	DefaultMaxConcurrentActivities = 8
	// DefaultMaxConcurrentWorkflowTasks bounds the workflow tasks: each
	// only orders steps, so few are ever busy at once.
	DefaultMaxConcurrentWorkflowTasks = 100
	// DefaultStopTimeout lets an activity in flight commit its current
	// stretch and heartbeat on a deploy instead of being cut off and replayed.
	DefaultStopTimeout = 20 * time.Second
	// heartbeatThrottle caps how long the SDK holds back heartbeats (by
	// default 80% of the heartbeat timeout: 24s). A cancel reaches an
	// activity only in the answer to a heartbeat, so this is how long a
	// cancel from the API or the Temporal UI takes to stop a fetch or apply.
	heartbeatThrottle = 2 * time.Second
)

// Options tune the worker; a zero field means its default.
type Options struct {
	MaxConcurrentActivities    int
	MaxConcurrentWorkflowTasks int
	StopTimeout                time.Duration
	// ProviderLimits caps, per provider (azure, okta, csv), the fetches
	// the worker runs at once, so that several profiles of one tenant do
	// not share out its rate limit among themselves; a provider without
	// an entry may use every activity slot.
	ProviderLimits map[string]int
	// ProviderOf names the provider of a run, for ProviderLimits.
	ProviderOf func(ctx context.Context, runID string) (string, error)
}

// withDefaults fills the zero fields.
func (o Options) withDefaults() Options {
	if o.MaxConcurrentActivities <= 0 {
		o.MaxConcurrentActivities = DefaultMaxConcurrentActivities
	}
	if o.MaxConcurrentWorkflowTasks <= 0 {
		o.MaxConcurrentWorkflowTasks = DefaultMaxConcurrentWorkflowTasks
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	return o
}

// LogValue is the tuning as the worker runs with it, defaults filled: an
// operator reads it in the start log.
func (o Options) LogValue() slog.Value {
	o = o.withDefaults()
	limits := "none"
	if len(o.ProviderLimits) > 0 {
		var parts []string
		for _, p := range slices.Sorted(maps.Keys(o.ProviderLimits)) {
			parts = append(parts, fmt.Sprintf("%s=%d", p, o.ProviderLimits[p]))
		}
		limits = strings.Join(parts, ",")
	}
	return slog.GroupValue(
		slog.Int("activitySlots", o.MaxConcurrentActivities),
		slog.Int("workflowSlots", o.MaxConcurrentWorkflowTasks),
		slog.String("providerConcurrency", limits),
		slog.Duration("stopTimeout", o.StopTimeout),
	)
}

// New returns a worker (not started) for the task queue ("" means
// DefaultTaskQueue) running SyncProfile and the activities of acts.
func New(c client.Client, taskQueue string, acts *activities.Activities, opts Options) sdkworker.Worker {
	if taskQueue == "" {
		taskQueue = DefaultTaskQueue
	}
	opts = opts.withDefaults()
	wo := sdkworker.Options{
		MaxConcurrentActivityExecutionSize:     opts.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskExecutionSize: opts.MaxConcurrentWorkflowTasks,
		WorkerStopTimeout:                      opts.StopTimeout,
		MaxHeartbeatThrottleInterval:           heartbeatThrottle,
	}
	if len(opts.ProviderLimits) > 0 && opts.ProviderOf != nil {
		wo.Interceptors = append(wo.Interceptors, newProviderLimiter(opts.ProviderLimits, opts.ProviderOf))
	}
	w := sdkworker.New(c, taskQueue, wo)
	w.RegisterWorkflowWithOptions(workflows.SyncProfile, workflow.RegisterOptions{Name: workflows.WorkflowName})
	// The tick a profile's schedule starts; it starts SyncProfile as a child.
	w.RegisterWorkflowWithOptions(workflows.ScheduledSync, workflow.RegisterOptions{Name: workflows.ScheduledWorkflowName})
	// A revert of a run, under the profile's workflow id like a sync.
	w.RegisterWorkflowWithOptions(workflows.RevertRun, workflow.RegisterOptions{Name: workflows.RevertWorkflowName})
	for name, fn := range Steps(acts) {
		w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	return w
}

// Steps are the activities on the task queue, by the names the workflows
// call them by. Only the steps: RegisterActivity(acts) would also put
// every other exported method on the queue, such as TestConnection and
// ProviderGroups, whose arguments carry a profile's decrypted secrets and
// would travel through Temporal's history; the API calls those directly.
func Steps(acts *activities.Activities) map[string]any {
	return map[string]any{
		syncrun.StepStartRun:          acts.StartRun,
		syncrun.StepFetch:             acts.Fetch,
		syncrun.StepPlan:              acts.Plan,
		syncrun.StepSetStatus:         acts.SetStatus,
		syncrun.StepApply:             acts.Apply,
		syncrun.StepFinishRun:         acts.FinishRun,
		syncrun.StepCheckScheduledRun: acts.CheckScheduledRun,
		syncrun.StepRecordSkippedRun:  acts.RecordSkippedRun,
		syncrun.StepStartRevert:       acts.StartRevert,
		syncrun.StepPlanRevert:        acts.PlanRevert,
		syncrun.StepApplyRevert:       acts.ApplyRevert,
	}
}
