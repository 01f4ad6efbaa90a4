package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/service"
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
	page, err := s.svc.Runs(c.Request.Context(), directory.RunFilter{ProfileID: c.Query("profileId"), Status: status}, opt)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, mapPage(page, s.runJSON))
	return nil
}

func (s *server) getRun(c *gin.Context) error {
	run, err := s.svc.Run(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
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

func (s *server) approveRun(c *gin.Context) error { return s.steerRun(c, s.svc.ApproveRun) }
func (s *server) cancelRun(c *gin.Context) error  { return s.steerRun(c, s.svc.CancelRun) }
func (s *server) retryRun(c *gin.Context) error   { return s.steerRun(c, s.svc.RetryRun) }

func (s *server) revertRun(c *gin.Context) error {
	var req service.RevertInput
	if err := readOptionalJSON(c, &req); err != nil {
		return err
	}
	return s.steerRun(c, func(ctx context.Context, id string) (*directory.Run, error) {
		return s.svc.RevertRun(ctx, id, req)
	})
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

func (s *server) getHealth(c *gin.Context) error {
	n := service.DefaultHealthRuns
	if v := c.Query("runs"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > service.MaxHealthRuns {
			return errBadRequest("runs must be a whole number from 1 to %d", service.MaxHealthRuns)
		}
	}
	h, err := s.svc.Health(c.Request.Context(), c.Param("id"), n)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, h)
	return nil
}
