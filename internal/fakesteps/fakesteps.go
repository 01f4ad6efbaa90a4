// Package fakesteps stands in for the real activities under the same step
// names, so that tests run the workflows on a real Temporal server without
// a database or a provider: the workflows' recorded histories, and the
// client's tests.
package fakesteps

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/syncrun"
)

// Guard is what the fake Plan says when the guard trips.
const Guard = "would disable 600 of 1000 active users (limit 500)"

// Activities are the fake steps. The run id picks the behaviour: "…-failed"
// fails the fetch for good, "…-cancel" fetches until cancelled, "…-guard"
// trips the guard. Register them with worker.RegisterActivity: every
// exported method is a step.
type Activities struct {
	// Store, when set, gets the status changes the real activities record.
	Store directory.Store
	// BlockFetch and Guard apply the "-cancel" and "-guard" behaviours to
	// every run.
	BlockFetch, Guard bool

	mu      sync.Mutex
	fetches map[string]int
	applies map[string]int
	status  map[string]string
}

// StatusOf is the last status a run recorded through the fakes ("fetching"
// while a blocked fetch runs). A function, not a method: every method is
// registered as a step.
func StatusOf(f *Activities, runID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status[runID]
}

func (f *Activities) setStatus(runID, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status == nil {
		f.status = map[string]string{}
	}
	f.status[runID] = status
}

// count advances and returns a run's calls of one step.
func (f *Activities) count(m *map[string]int, runID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[runID]++
	return (*m)[runID]
}

func (f *Activities) StartRun(_ context.Context, in syncrun.StartRunInput) (syncrun.StartRunResult, error) {
	f.setStatus(in.RunID, syncrun.RunRunning)
	return syncrun.StartRunResult{ProfileName: "Contoso Entra", Provider: "azure"}, nil
}

func (f *Activities) Fetch(ctx context.Context, in syncrun.FetchInput) (syncrun.FetchResult, error) {
	switch {
	case strings.HasSuffix(in.RunID, "-failed"):
		return syncrun.FetchResult{}, temporal.NewNonRetryableApplicationError(
			"Microsoft Entra rejected the client secret of Contoso Entra: paste a valid secret on the profile",
			"Auth", fmt.Errorf("AADSTS7000215: invalid client secret provided"))
	case f.BlockFetch || strings.HasSuffix(in.RunID, "-cancel"):
		f.setStatus(in.RunID, "fetching")
		for {
			activity.RecordHeartbeat(ctx, "cursor")
			select {
			case <-ctx.Done():
				return syncrun.FetchResult{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	n := f.count(&f.fetches, in.RunID)
	activity.RecordHeartbeat(ctx, n)
	return syncrun.FetchResult{Fetched: 100 * n, Done: n == 3}, nil
}

func (f *Activities) Plan(_ context.Context, in syncrun.PlanInput) (syncrun.PlanResult, error) {
	res := syncrun.PlanResult{Counts: syncrun.RunCounts{Created: 250, Updated: 30, Unchanged: 10, Disabled: 10}}
	if f.Guard || strings.HasSuffix(in.RunID, "-guard") {
		res.Guard = Guard
	}
	return res, nil
}

func (f *Activities) SetStatus(ctx context.Context, in syncrun.SetStatusInput) error {
	f.setStatus(in.RunID, in.Status)
	if f.Store != nil {
		return f.Store.SetRunStatus(ctx, in.RunID, in.Status, in.Phase, in.Message, time.Time{})
	}
	return nil
}

func (f *Activities) Apply(ctx context.Context, in syncrun.ApplyInput) (syncrun.ApplyResult, error) {
	n := f.count(&f.applies, in.RunID)
	activity.RecordHeartbeat(ctx, n)
	return syncrun.ApplyResult{
		Done:   n == 2,
		Counts: syncrun.RunCounts{Created: 125 * n, Updated: 15 * n, Unchanged: 10, Disabled: 5 * n},
	}, nil
}

func (f *Activities) FinishRun(ctx context.Context, in syncrun.FinishInput) error {
	f.setStatus(in.RunID, in.Status)
	if f.Store != nil {
		return f.Store.SetRunStatus(ctx, in.RunID, in.Status, syncrun.PhaseDone, in.Error, time.Time{})
	}
	return nil
}
