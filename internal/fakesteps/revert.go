package fakesteps

import (
	"context"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/usersync/usersync/syncrun"
)

// The steps of a revert (RevertRun). "…-guard" trips the guard, as for a
// sync.

func (f *Activities) StartRevert(_ context.Context, in syncrun.StartRevertInput) (syncrun.StartRunResult, error) {
	f.setStatus(in.RunID, syncrun.RunRunning)
	return syncrun.StartRunResult{ProfileName: "Contoso Entra", Provider: "azure"}, nil
}

func (f *Activities) PlanRevert(_ context.Context, in syncrun.PlanRevertInput) (syncrun.PlanResult, error) {
	res := syncrun.PlanResult{Counts: syncrun.RunCounts{Reenabled: 300, Updated: 50, Conflicts: 2, Disabled: 600}}
	if f.Guard || strings.HasSuffix(in.RunID, "-guard") {
		res.Guard = Guard
	}
	return res, nil
}

func (f *Activities) ApplyRevert(ctx context.Context, in syncrun.ApplyInput) (syncrun.ApplyResult, error) {
	n := f.count(&f.applies, in.RunID)
	activity.RecordHeartbeat(ctx, n)
	return syncrun.ApplyResult{
		Done:   n == 2,
		Counts: syncrun.RunCounts{Reenabled: 150 * n, Updated: 25 * n, Conflicts: 2},
	}, nil
}
