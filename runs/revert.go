package runs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/workflows"
)

// StartRevert starts a revert of run target (a run of p) and records it.
// The revert runs under the profile's workflow id, so it is refused, with
// a *RunningError, while a run of the profile is going, and a sync is
// refused while the revert is.
func (c *Client) StartRevert(ctx context.Context, p *directory.Profile, target *directory.Run, dryRun bool) (*directory.Run, error) {
	runID := uuid.NewString()
	opts := client.StartWorkflowOptions{
		ID:                                       workflows.WorkflowID(p.ID),
		TaskQueue:                                c.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.ProfileNameKey.ValueSet(p.Name),
			workflows.ProviderKey.ValueSet(p.Provider),
		),
		StaticSummary: workflows.RevertSummary(p.Name, p.Provider, target.ID, dryRun),
		StaticDetails: workflows.RevertDetails(p.Name, p.ID, target.ID, runID, dryRun),
	}
	in := workflows.RevertInput{RunID: runID, ProfileID: p.ID, TargetRunID: target.ID, DryRun: dryRun}
	we, err := c.Temporal.ExecuteWorkflow(ctx, opts, workflows.RevertWorkflowName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	// As Start: a run that has recorded its end may not have closed yet.
	for wait := closingWait; errors.As(err, &started) && wait > 0 && c.lastRunEnded(ctx, p.ID); wait -= closingPoll {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("start revert of run %s: %w", target.ID, ctx.Err())
		case <-time.After(closingPoll):
		}
		we, err = c.Temporal.ExecuteWorkflow(ctx, opts, workflows.RevertWorkflowName, in)
	}
	if err != nil {
		if errors.As(err, &started) {
			return nil, &RunningError{RunID: c.runningRunID(ctx, p.ID, started.RunId)}
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
