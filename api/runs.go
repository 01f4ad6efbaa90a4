package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
)

var (
	runStatuses = []string{directory.RunRunning, directory.RunAwaitingApproval, directory.RunSucceeded,
		directory.RunFailed, directory.RunCancelled, directory.RunBlocked, directory.RunSkipped}
	changeActions = []string{"created", "updated", "disabled", "reenabled", "skipped", "conflict",
		"group_created", "member_added", "member_removed", "manager_linked", "manager_unresolved"}
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
	c.JSON(http.StatusOK, mapPage(page, s.runJSON))
	return nil
}

func (s *server) getRun(c *gin.Context) error {
	run, err := s.store.GetRun(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, s.runJSON(run))
	return nil
}

// steerRun loads the run, lets check refuse it, applies act through the
// Runner and answers 202 with the run as it now stands.
func (s *server) steerRun(c *gin.Context, what string, check func(*directory.Run) error,
	act func(Runner, *directory.Run) error) error {
	ctx := c.Request.Context()
	run, err := s.store.GetRun(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	if err := check(run); err != nil {
		return err
	}
	if s.runner == nil {
		return errors.New(what + " run: no runner configured")
	}
	if err := act(s.runner, run); err != nil {
		// The run changed state between the check above and the call.
		var state interface{ Conflict() bool }
		if errors.As(err, &state) && state.Conflict() {
			return errConflict("cannot %s run %s: %v", what, run.ID, err)
		}
		return fmt.Errorf("%s run %s: %w", what, run.ID, err)
	}
	if fresh, err := s.store.GetRun(ctx, run.ID); err == nil {
		run = fresh
	}
	c.JSON(http.StatusAccepted, s.runJSON(run))
	return nil
}

func (s *server) approveRun(c *gin.Context) error {
	return s.steerRun(c, "approve", func(r *directory.Run) error {
		if r.Status != directory.RunAwaitingApproval {
			return errConflict("run is %s; only a run awaiting approval can be approved", r.Status)
		}
		return nil
	}, func(rn Runner, r *directory.Run) error { return rn.Approve(c.Request.Context(), r) })
}

func (s *server) cancelRun(c *gin.Context) error {
	return s.steerRun(c, "cancel", func(r *directory.Run) error {
		if directory.IsFinalRunStatus(r.Status) {
			return errConflict("run has already ended (%s)", r.Status)
		}
		return nil
	}, func(rn Runner, r *directory.Run) error { return rn.Cancel(c.Request.Context(), r) })
}

// retryRun starts a new run of the run's profile, dry or not as the run was.
func (s *server) retryRun(c *gin.Context) error {
	ctx := c.Request.Context()
	run, err := s.store.GetRun(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	p, err := s.store.GetProfile(ctx, run.ProfileID)
	if errors.Is(err, directory.ErrNotFound) {
		return errNotFound("the profile of run %s no longer exists", run.ID)
	} else if err != nil {
		return err
	}
	if !p.Enabled {
		return errInvalidField("enabled", "the profile is disabled; enable it to sync")
	}
	return s.startRun(c, p, TriggerRetry, run.DryRun)
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
