package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/syncrun"
)

// providerLimiter holds a Fetch until its provider has a free slot. Only
// Fetch talks to the provider for long; the other steps are the database's.
// A waiting Fetch heartbeats, so Temporal neither declares it dead nor
// keeps a cancel from it, and it holds an activity slot while it waits:
// the limit shares the slots out, it adds none.
type providerLimiter struct {
	interceptor.WorkerInterceptorBase
	limits     map[string]int
	providerOf func(ctx context.Context, runID string) (string, error)

	mu    sync.Mutex
	slots map[string]chan struct{}
	runs  map[string]string // run id → provider, looked up once per run
}

func newProviderLimiter(limits map[string]int, providerOf func(context.Context, string) (string, error)) *providerLimiter {
	l := &providerLimiter{limits: limits, providerOf: providerOf, slots: map[string]chan struct{}{}, runs: map[string]string{}}
	for p, n := range limits {
		l.slots[p] = make(chan struct{}, n)
	}
	return l
}

// waitBeat is how often a waiting Fetch heartbeats: well inside any
// heartbeat timeout a workflow gives it (30 s by default).
const waitBeat = time.Second

// InterceptActivity implements interceptor.WorkerInterceptor.
func (l *providerLimiter) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &limitedActivity{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, l: l}
}

type limitedActivity struct {
	interceptor.ActivityInboundInterceptorBase
	l *providerLimiter
}

func (a *limitedActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if activity.GetInfo(ctx).ActivityType.Name != syncrun.StepFetch {
		return a.Next.ExecuteActivity(ctx, in)
	}
	slot := a.l.slotOf(ctx, in.Args)
	if slot == nil {
		return a.Next.ExecuteActivity(ctx, in)
	}
	t := time.NewTicker(waitBeat)
	defer t.Stop()
	for {
		select {
		case slot <- struct{}{}:
			defer func() { <-slot }()
			return a.Next.ExecuteActivity(ctx, in)
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a free provider slot: %w", ctx.Err())
		case <-t.C:
			activity.RecordHeartbeat(ctx, "waiting for a free provider slot")
		}
	}
}

// slotOf is the semaphore of the provider of a Fetch, nil when the
// provider has no limit (or cannot be told: the limit is a courtesy to the
// provider, not a reason to fail a run).
func (l *providerLimiter) slotOf(ctx context.Context, args []any) chan struct{} {
	var runID string
	for _, a := range args {
		if in, ok := a.(activities.FetchInput); ok {
			runID = in.RunID
		}
	}
	if runID == "" {
		return nil
	}
	l.mu.Lock()
	p, ok := l.runs[runID]
	l.mu.Unlock()
	if !ok {
		var err error
		if p, err = l.providerOf(ctx, runID); err != nil {
			activity.GetLogger(ctx).Warn("provider of the run unknown: its fetch is not limited", "runId", runID, "error", err)
			return nil
		}
		l.mu.Lock()
		if len(l.runs) >= 10000 {
			clear(l.runs) // finished runs' entries; a live run is looked up again
		}
		l.runs[runID] = p
		l.mu.Unlock()
	}
	return l.slots[p]
}
