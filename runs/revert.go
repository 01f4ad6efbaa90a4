package runs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/workflows"
)

// StartRevert starts a revert of run target (a run of p) and records it.
// The revert runs under the profile's workflow id, so it is refused, with
// a *RunningError, while a run of the profile is going, and a sync is
// refused while the revert is.
func (c *Client) StartRevert(ctx context.Context, p *directory.Profile, target *directory.Run, dryRun bool) (*directory.Run, error) {
	runID := uuid.NewString()
	// Like a sync's options, so the revert also carries the search
	// attributes only when the namespace has them (Temporal Cloud).
	opts := c.startOptions(ctx, p)
	opts.StaticSummary = workflows.RevertSummary(p.Name, p.Provider, target.ID, dryRun)
	opts.StaticDetails = workflows.RevertDetails(p.Name, p.ID, target.ID, runID, dryRun)
	in := workflows.RevertInput{RunID: runID, ProfileID: p.ID, TargetRunID: target.ID, DryRun: dryRun}
	we, err := c.execute(ctx, p, opts, workflows.RevertWorkflowName, in)
	if err != nil {
		var running *RunningError
		if errors.As(err, &running) {
			return nil, err
		}
		return nil, fmt.Errorf("start revert of run %s: %w", target.ID, err)
	}
	run := &directory.Run{ID: runID, ProfileID: p.ID, ProfileName: p.Name, Provider: p.Provider, DirectoryKey: p.DirectoryKey,
		Trigger: directory.TriggerRevert, DryRun: dryRun, Status: directory.RunRunning, Phase: directory.PhasePlan,
		WorkflowID: we.GetID(), TemporalRunID: we.GetRunID(), RevertOf: target.ID}
	err = c.Store.CreateRun(ctx, run)
	if err == nil {
		err = c.Store.SetRevertTarget(ctx, runID, target.ID)
	}
	if err != nil {
		// The revert is going, and StartRevert records the same row.
		slog.WarnContext(ctx, "record started revert; the workflow records it too", "runId", runID, "revertOf", target.ID, "error", err)
	}
	return run, nil
}
