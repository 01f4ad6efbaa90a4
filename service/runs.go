package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/usersync/usersync/directory"
)

// steer loads the run, lets check refuse it, applies act through the
// Runner and returns the run as it now stands.
func (s *Service) steer(ctx context.Context, id, what string, check func(*directory.Run) error,
	act func(Runner, *directory.Run) error) (*directory.Run, error) {
	run, err := s.store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := check(run); err != nil {
		return nil, err
	}
	if s.runner == nil {
		return nil, errors.New(what + " run: no runner configured")
	}
	if err := act(s.runner, run); err != nil {
		// The run changed state between the check above and the call.
		var state interface{ Conflict() bool }
		if errors.As(err, &state) && state.Conflict() {
			return nil, errConflict("cannot %s run %s: %v", what, run.ID, err)
		}
		return nil, fmt.Errorf("%s run %s: %w", what, run.ID, err)
	}
	if fresh, err := s.store.GetRun(ctx, run.ID); err == nil {
		run = fresh
	}
	return run, nil
}

// ApproveRun lets a run held by the accidental-delete guard apply.
func (s *Service) ApproveRun(ctx context.Context, id string) (*directory.Run, error) {
	return s.steer(ctx, id, "approve", func(r *directory.Run) error {
		if r.Status != directory.RunAwaitingApproval {
			return errConflict("run is %s; only a run awaiting approval can be approved", r.Status)
		}
		return nil
	}, func(rn Runner, r *directory.Run) error { return rn.Approve(ctx, r) })
}

// CancelRun stops a run that has not ended.
func (s *Service) CancelRun(ctx context.Context, id string) (*directory.Run, error) {
	return s.steer(ctx, id, "cancel", func(r *directory.Run) error {
		if directory.IsFinalRunStatus(r.Status) {
			return errConflict("run has already ended (%s)", r.Status)
		}
		return nil
	}, func(rn Runner, r *directory.Run) error { return rn.Cancel(ctx, r) })
}

// RetryRun starts a new run of the run's profile, dry or not as the run
// was; a revert's retry reverts the same run again.
func (s *Service) RetryRun(ctx context.Context, id string) (*directory.Run, error) {
	run, err := s.store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if run.Trigger == directory.TriggerRevert {
		// A revert's retry reverts the same run again; a sync would put
		// back what the revert is meant to undo.
		return s.RevertRun(ctx, run.RevertOf, RevertInput{DryRun: run.DryRun})
	}
	p, err := s.store.GetProfile(ctx, run.ProfileID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, errNotFound("the profile of run %s no longer exists", run.ID)
	} else if err != nil {
		return nil, err
	}
	if !p.Enabled {
		return nil, errInvalidField("enabled", "the profile is disabled; enable it to sync")
	}
	return s.startRun(ctx, p, TriggerRetry, run.DryRun)
}

// Run is the run as reads show it: brought in line with its workflow
// when that ended outside usersync (in the Temporal UI), with live counts
// while it runs.
func (s *Service) Run(ctx context.Context, id string) (*directory.Run, error) {
	run, err := s.store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	run = s.reconciled(ctx, run)
	s.withProgress(ctx, run)
	return run, nil
}

// Runs is a page of runs as Run shows each.
func (s *Service) Runs(ctx context.Context, f directory.RunFilter, opt directory.ListOptions) (directory.Page[directory.Run], error) {
	page, err := s.store.ListRuns(ctx, f, opt)
	if err != nil {
		return page, err
	}
	for i := range page.Items {
		page.Items[i] = *s.reconciled(ctx, &page.Items[i])
	}
	s.withProgressPage(ctx, page.Items)
	return page, nil
}
