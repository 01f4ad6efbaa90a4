package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/syncrun"
)

// RevertWorkflowName is the workflow type of a revert: a run of its own
// that puts back what another run of the profile changed, from its
// ledger. It runs under the profile's workflow id (WorkflowID), so a
// revert and a sync of one profile never run at once, and it answers the
// progress query and the approve signal as SyncProfile does.
const RevertWorkflowName = "RevertRun"

// RevertInput is the single input of RevertRun.
type RevertInput struct {
	RunID       string // the revert's run row, recorded by the starter
	ProfileID   string
	TargetRunID string // the run to revert
	DryRun      bool
	Options     Options
	// Resume is set only by continue-as-new.
	Resume *ResumeState
}

// RevertRun plans the revert (conflicts are decided there, and a dry run
// ends there with its preview in the ledger), holds for approval when the
// accidental-delete guard trips, applies it in batches and records the
// end through FinishRun, like a sync.
func RevertRun(ctx workflow.Context, in RevertInput) (syncrun.RunCounts, error) {
	as := SyncInput{RunID: in.RunID, ProfileID: in.ProfileID, Trigger: syncrun.TriggerRevert, DryRun: in.DryRun, Options: in.Options}
	return runWorkflow(ctx, as, syncrun.PhasePlan, func(r *run, ctx workflow.Context) (syncrun.RunCounts, error) {
		return r.revert(ctx, in)
	})
}

func (r *run) revert(ctx workflow.Context, in RevertInput) (syncrun.RunCounts, error) {
	if res := in.Resume; res != nil {
		if res.Phase != syncrun.PhaseApply {
			return r.progress.Counts, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("cannot resume a revert in phase %q", res.Phase), "Config", nil)
		}
		r.progress.Phase, r.progress.Counts, r.approved = res.Phase, res.Counts, res.Approved
		r.profile, r.provider = res.ProfileName, res.Provider
	} else {
		info := workflow.GetInfo(ctx)
		var started syncrun.StartRunResult
		err := workflow.ExecuteActivity(r.short(ctx, "start revert of run "+in.TargetRunID), syncrun.StepStartRevert,
			syncrun.StartRevertInput{RunID: r.in.RunID, ProfileID: in.ProfileID, TargetRunID: in.TargetRunID, DryRun: in.DryRun,
				WorkflowID: info.WorkflowExecution.ID, TemporalRunID: info.WorkflowExecution.RunID}).Get(ctx, &started)
		r.calls++
		if err != nil {
			return r.progress.Counts, err
		}
		r.profile, r.provider = started.ProfileName, started.Provider
		r.details(ctx)

		var plan syncrun.PlanResult
		err = workflow.ExecuteActivity(r.growing(ctx, "plan the revert"), syncrun.StepPlanRevert,
			syncrun.PlanRevertInput{RunID: r.in.RunID}).Get(ctx, &plan)
		r.calls++
		if err != nil {
			return r.progress.Counts, err
		}
		r.progress.Counts = plan.Counts
		r.progress.Guard = plan.Guard
		r.details(ctx)
		if r.in.DryRun {
			return r.progress.Counts, r.finish(ctx, syncrun.RunSucceeded, "")
		}
		if plan.Guard != "" {
			if err := r.awaitApproval(ctx, plan.Guard); err != nil {
				return r.progress.Counts, err
			}
		}
		r.progress.Phase = syncrun.PhaseApply
	}
	for {
		var res syncrun.ApplyResult
		err := workflow.ExecuteActivity(r.long(ctx, "revert batch"), syncrun.StepApplyRevert,
			syncrun.ApplyInput{RunID: r.in.RunID}).Get(ctx, &res)
		r.calls++
		if err != nil {
			return r.progress.Counts, err
		}
		r.progress.Counts = res.Counts
		r.details(ctx)
		if res.Done {
			break
		}
		if ctx.Err() != nil {
			return r.progress.Counts, ctx.Err()
		}
		if r.calls >= r.opts.ContinueAsNewAfter || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			next := in
			next.RunID = r.in.RunID
			next.Resume = &ResumeState{Phase: syncrun.PhaseApply, Counts: r.progress.Counts, Approved: r.approved,
				ProfileName: r.profile, Provider: r.provider}
			return r.progress.Counts, workflow.NewContinueAsNewError(ctx, RevertWorkflowName, next)
		}
	}
	return r.progress.Counts, r.finish(ctx, syncrun.RunSucceeded, "")
}

// RevertSummary and RevertDetails are the static summary and details a
// revert shows in the Temporal UI.
func RevertSummary(profileName, provider, targetRunID string, dryRun bool) string {
	s := fmt.Sprintf("Revert run `%s` of %s (%s)", codeSpan(targetRunID), md(profileName), md(provider))
	if dryRun {
		s += " (dry run)"
	}
	return s
}

func RevertDetails(profileName, profileID, targetRunID, runID string, dryRun bool) string {
	d := fmt.Sprintf("**Profile** %s (`%s`)\n\n**Reverts run** `%s` · **Run** `%s`\n\n"+
		"Puts back what the run changed, from its ledger; what changed again since is a conflict, not reverted.",
		md(profileName), codeSpan(profileID), codeSpan(targetRunID), codeSpan(runID))
	if dryRun {
		d += "\n\nDry run: lists in its ledger what the revert would change, and writes nothing else."
	}
	return d
}
