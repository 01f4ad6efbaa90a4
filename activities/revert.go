package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/rules"
	"github.com/usersync/usersync/syncrun"
)

// StartRevert records a revert run (the API may have recorded it already)
// and checks, again, that the run it reverts can be: a finished run of
// the same profile, not a dry run, whose profile still exists.
func (a *Activities) StartRevert(ctx context.Context, in syncrun.StartRevertInput) (StartRunResult, error) {
	p, err := a.Store.GetProfile(ctx, in.ProfileID)
	if errors.Is(err, directory.ErrNotFound) {
		return StartRunResult{}, configError("profile %s was deleted: its runs cannot be reverted", in.ProfileID)
	}
	if err != nil {
		return StartRunResult{}, fmt.Errorf("load profile: %w", err)
	}
	target, err := a.Store.GetRun(ctx, in.TargetRunID)
	if errors.Is(err, directory.ErrNotFound) {
		return StartRunResult{}, configError("run %s does not exist", in.TargetRunID)
	}
	if err != nil {
		return StartRunResult{}, fmt.Errorf("load run %s: %w", in.TargetRunID, err)
	}
	if target.ProfileID != p.ID {
		return StartRunResult{}, configError("run %s is not a run of profile %q", target.ID, p.Name)
	}
	if why := directory.RevertRefusal(target); why != "" {
		return StartRunResult{}, configError("%s", why)
	}
	run := &directory.Run{ID: in.RunID, ProfileID: p.ID, ProfileName: p.Name, Provider: p.Provider,
		DirectoryKey: p.DirectoryKey, Trigger: directory.TriggerRevert, DryRun: in.DryRun, Status: directory.RunRunning,
		Phase: directory.PhasePlan, WorkflowID: in.WorkflowID, TemporalRunID: in.TemporalRunID, StartedAt: time.Now()}
	if err := a.Store.CreateRun(ctx, run); err != nil {
		return StartRunResult{}, fmt.Errorf("record run: %w", err)
	}
	if err := a.Store.SetRevertTarget(ctx, in.RunID, target.ID); err != nil {
		return StartRunResult{}, err
	}
	rc, err := a.load(ctx, in.RunID)
	if err != nil {
		return StartRunResult{}, err
	}
	details := fmt.Sprintf("trigger=%s dryRun=%t revertOf=%s", directory.TriggerRevert, in.DryRun, target.ID)
	if err := a.auditOnce(ctx, rc, "run_started", details); err != nil {
		return StartRunResult{}, err
	}
	return StartRunResult{ProfileName: p.Name, Provider: p.Provider}, nil
}

// PlanRevert works out the revert in one transaction (conflicts, the
// licence's refusals and, for a dry run, the preview in its ledger), then
// asks the accidental-delete guard about the users it would disable.
func (a *Activities) PlanRevert(ctx context.Context, in syncrun.PlanRevertInput) (PlanResult, error) {
	rc, err := a.load(ctx, in.RunID)
	if err != nil {
		return PlanResult{}, err
	}
	limit, err := a.Store.GetLicenceLimit(ctx)
	if err != nil {
		return PlanResult{}, fmt.Errorf("read licence: %w", err)
	}
	var out *directory.RevertOutcome
	err = keepAlive(ctx, func() (err error) {
		out, err = a.Store.PlanRevert(ctx, in.RunID, directory.RevertPlanInput{Target: rc.run.RevertOf, DryRun: rc.run.DryRun,
			Connection: rc.profile.Name, LicenceLimit: limit})
		return err
	}, "planning the revert")
	if errors.Is(err, directory.ErrConflict) {
		return PlanResult{}, configError("%v", err)
	}
	if err != nil {
		return PlanResult{}, classify(err)
	}
	// A revert reads no source, so the guard's "the source returned
	// nobody" has nothing to weigh: only the disables count.
	guard := rules.Guard(out.Counts.Disabled, out.ActiveInDirectory, 1, rules.Limits{
		MaxDisables: rc.cfg.Safety.MaxDisables, MaxDisablePercent: rc.cfg.Safety.MaxDisablePercent})
	return PlanResult{Counts: out.Counts, Guard: guard}, nil
}

// ApplyRevert applies batches of a planned revert until it is complete or
// the call's budget is spent.
func (a *Activities) ApplyRevert(ctx context.Context, in ApplyInput) (ApplyResult, error) {
	rc, err := a.load(ctx, in.RunID)
	if err != nil {
		return ApplyResult{}, err
	}
	deadline := a.now().Add(a.Budget)
	last := rc.run.Counts
	for {
		var (
			done   bool
			counts directory.RunCounts
		)
		err := keepAlive(ctx, func() (err error) {
			done, counts, err = a.Store.ApplyRevertBatch(ctx, in.RunID, directory.RevertApplyInput{Connection: rc.profile.Name,
				BatchSize: a.BatchSize})
			return err
		}, last)
		if err != nil {
			return ApplyResult{}, classify(err)
		}
		heartbeat(ctx, counts)
		last = counts
		if done {
			return ApplyResult{Done: true, Counts: counts}, nil
		}
		if err := sleep(ctx, a.PageDelay); err != nil {
			return ApplyResult{Counts: counts}, err
		}
		if a.now().After(deadline) || workerStopping(ctx) {
			return ApplyResult{Counts: counts}, nil
		}
	}
}
