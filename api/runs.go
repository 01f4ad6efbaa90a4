package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
)

var (
	runStatuses = []string{directory.RunRunning, directory.RunAwaitingApproval, directory.RunSucceeded,
		directory.RunFailed, directory.RunCancelled, directory.RunBlocked, directory.RunSkipped, directory.RunPartial}
	changeActions = []string{"created", "updated", "disabled", "reenabled", "skipped", "conflict",
		"group_created", "member_added", "member_removed", "manager_linked", "manager_unresolved",
		directory.LedgerLicenceRefused, directory.LedgerDuplicateEmail}
)

func (s *server) listRuns(c *gin.Context) error {
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	status, err := oneOf(c, "status", runStatuses...)
	if err != nil {
		return err
	}
	page, err := s.store.ListRuns(c.Request.Context(), directory.RunFilter{ProfileID: c.Query("profileId"), Status: status}, opt)
	if err != nil {
		return err
	}
	for i := range page.Items {
		page.Items[i] = *s.reconciled(c.Request.Context(), &page.Items[i])
	}
	s.withProgressPage(c.Request.Context(), page.Items)
	c.JSON(http.StatusOK, mapPage(page, s.runJSON))
	return nil
}

func (s *server) getRun(c *gin.Context) error {
	run, err := s.store.GetRun(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	run = s.reconciled(c.Request.Context(), run)
	s.withProgress(c.Request.Context(), run)
	c.JSON(http.StatusOK, s.runJSON(run))
	return nil
}

// steerRun answers 202 with the run a steering call returns.
func (s *server) steerRun(c *gin.Context, steer func(ctx context.Context, id string) (*directory.Run, error)) error {
	run, err := steer(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, s.runJSON(run))
	return nil
}

// steer loads the run, lets check refuse it, applies act through the
// Runner and returns the run as it now stands.
func (s *server) steer(ctx context.Context, id, what string, check func(*directory.Run) error,
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

func (s *server) approveRun(c *gin.Context) error { return s.steerRun(c, s.approve) }

func (s *server) approve(ctx context.Context, id string) (*directory.Run, error) {
	return s.steer(ctx, id, "approve", func(r *directory.Run) error {
		if r.Status != directory.RunAwaitingApproval {
			return errConflict("run is %s; only a run awaiting approval can be approved", r.Status)
		}
		return nil
	}, func(rn Runner, r *directory.Run) error { return rn.Approve(ctx, r) })
}

func (s *server) cancelRun(c *gin.Context) error { return s.steerRun(c, s.cancel) }

func (s *server) cancel(ctx context.Context, id string) (*directory.Run, error) {
	return s.steer(ctx, id, "cancel", func(r *directory.Run) error {
		if directory.IsFinalRunStatus(r.Status) {
			return errConflict("run has already ended (%s)", r.Status)
		}
		return nil
	}, func(rn Runner, r *directory.Run) error { return rn.Cancel(ctx, r) })
}

func (s *server) retryRun(c *gin.Context) error { return s.steerRun(c, s.retry) }

// retry starts a new run of the run's profile, dry or not as the run was.
func (s *server) retry(ctx context.Context, id string) (*directory.Run, error) {
	run, err := s.store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if run.Trigger == directory.TriggerRevert {
		// A revert's retry reverts the same run again; a sync would put
		// back what the revert is meant to undo.
		return s.revert(ctx, run.RevertOf, RevertRequest{DryRun: run.DryRun})
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

func (s *server) listChanges(c *gin.Context) error {
	ctx := c.Request.Context()
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	action, err := oneOf(c, "action", changeActions...)
	if err != nil {
		return err
	}
	if _, err := s.store.GetRun(ctx, c.Param("id")); err != nil {
		return err
	}
	page, err := s.store.ListChanges(ctx, c.Param("id"), action, opt)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}
