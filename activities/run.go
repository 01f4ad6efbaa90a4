package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/sources"
)

// StartRun records the run (the API may have recorded it already), decides
// whether it must be skipped, and fixes the source it reads: a remote CSV is
// copied into the document store so that a resumed run reads the same bytes.
func (a *Activities) StartRun(ctx context.Context, in StartRunInput) (StartRunResult, error) {
	p, err := a.Store.GetProfile(ctx, in.ProfileID)
	if errors.Is(err, directory.ErrNotFound) {
		return StartRunResult{}, configError("profile %s does not exist", in.ProfileID)
	}
	if err != nil {
		return StartRunResult{}, fmt.Errorf("load profile: %w", err)
	}
	run := &directory.Run{ID: in.RunID, ProfileID: p.ID, ProfileName: p.Name, Provider: p.Provider,
		DirectoryKey: p.DirectoryKey, Trigger: in.Trigger, DryRun: in.DryRun, Status: directory.RunRunning,
		Phase: directory.PhaseFetch, WorkflowID: in.WorkflowID, TemporalRunID: in.TemporalRunID, StartedAt: time.Now()}
	if err := a.Store.CreateRun(ctx, run); err != nil {
		return StartRunResult{}, fmt.Errorf("record run: %w", err)
	}
	rc, err := a.load(ctx, in.RunID)
	if err != nil {
		return StartRunResult{}, err
	}
	res := StartRunResult{ProfileName: p.Name, Provider: p.Provider}
	switch {
	case !rc.cfg.IsEnabled():
		res.Skip = "the profile is disabled"
	case !readsWholeSource(p.Provider) && len(rc.cfg.Groups) == 0:
		res.Skip = "no group is selected on the profile: nothing was synced and nobody was disabled"
	}
	if res.Skip != "" {
		return res, nil
	}
	if snap := sources.SnapshotterOf(p.Provider); snap != nil && rc.run.SourceDocumentID == "" {
		var doc string
		// A remote file of up to csv.DefaultMaxSize may download for
		// longer than a heartbeat timeout.
		err := keepAlive(ctx, func() (err error) {
			doc, err = snap(ctx, a.sourceEnv(), sources.Target{Profile: rc.profile, Config: rc.cfg}, rc.run.ID)
			var pe *sources.ProviderError
			if errors.As(err, &pe) {
				err = providerError{err}
			}
			return err
		}, "copying the source")
		if err != nil {
			return res, giveUp(ctx, a.now(), in.ProviderRetryBudget, classify(err))
		}
		if err := a.Store.SetRunSource(ctx, rc.run.ID, doc); err != nil {
			return res, err
		}
	}
	if err := a.auditOnce(ctx, rc, "run_started", fmt.Sprintf("trigger=%s dryRun=%t", in.Trigger, in.DryRun)); err != nil {
		return res, err
	}
	return res, nil
}

// readsWholeSource says a provider's profiles read everything its source
// has rather than the members of the groups they select (a CSV file).
func readsWholeSource(name string) bool {
	p, ok := profile.Lookup(name)
	return ok && p.WholeSource
}

// auditOnce writes an audit entry unless the run already has one with
// that action: StartRun may run again after a crash.
func (a *Activities) auditOnce(ctx context.Context, rc *runContext, action, details string) error {
	page, err := a.Store.ListAudit(ctx, directory.AuditFilter{RunID: rc.run.ID, Action: action}, directory.ListOptions{Limit: 1})
	if err != nil {
		return fmt.Errorf("read audit: %w", err)
	}
	if len(page.Items) > 0 {
		return nil
	}
	return a.audit(ctx, rc, action, details)
}

// FinishRun records the final status, removes what the run staged (and
// its copy of a remote CSV) and writes the closing audit entry.
func (a *Activities) FinishRun(ctx context.Context, in FinishInput) error {
	rc, err := a.load(ctx, in.RunID)
	if err != nil {
		// A run whose profile was deleted must still end; a run that was
		// never recorded (StartRun failed before it could) has no row to end.
		serr := a.Store.SetRunStatus(ctx, in.RunID, in.Status, "", in.Error, time.Now())
		if serr != nil && !errors.Is(serr, directory.ErrNotFound) {
			return fmt.Errorf("finish run: %w", serr)
		}
		return nil
	}
	status := in.Status
	if status == directory.RunSucceeded && !rc.run.DryRun && rc.run.Counts.LicenceRefused > 0 {
		// Applied, but not everyone: a state of its own, so that nobody
		// takes the licence's refusals for a clean run.
		status = directory.RunPartial
	}
	phase := ""
	if status == directory.RunSucceeded || status == directory.RunPartial {
		phase = directory.PhaseDone
	}
	// Only a succeeded run that applied what it read is a base for the
	// next delta run; any other leaves the state as it was. Both steps
	// come before the final status, so that a run shows as ended only
	// once its work is put away (a retry repeats them harmlessly).
	// Both grow with the tenant (the staging of a full run becomes the
	// snapshot; a million staged rows are deleted), hence the heartbeats.
	err = keepAlive(ctx, func() error {
		if (status == directory.RunSucceeded || status == directory.RunPartial) && !rc.run.DryRun {
			if err := a.commit(ctx, in.RunID); err != nil {
				return err
			}
		}
		if err := a.Store.DropRunData(ctx, in.RunID); err != nil {
			return fmt.Errorf("finish run: %w", err)
		}
		return nil
	}, "putting the run away")
	if err != nil {
		return err
	}
	if err := a.Store.SetRunStatus(ctx, in.RunID, status, phase, in.Error, time.Now()); err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	if rc.cfg.RunsReadACopy() && rc.run.SourceDocumentID != "" {
		if err := a.Store.DeleteDocument(ctx, rc.run.SourceDocumentID); err != nil && !errors.Is(err, directory.ErrNotFound) {
			return fmt.Errorf("remove the run's copy of the source: %w", err)
		}
	}
	run, err := a.Store.GetRun(ctx, in.RunID)
	if err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	c := run.Counts
	details := fmt.Sprintf("status=%s fetched=%d created=%d updated=%d unchanged=%d disabled=%d reenabled=%d skipped=%d conflicts=%d licenceRefused=%d",
		run.Status, c.Fetched, c.Created, c.Updated, c.Unchanged, c.Disabled, c.Reenabled, c.Skipped, c.Conflicts, c.LicenceRefused)
	if in.Error != "" {
		details += " error=" + in.Error
	}
	return a.auditOnce(ctx, rc, "run_finished", details)
}
