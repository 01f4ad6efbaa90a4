package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
)

// Reverter starts the revert of a run; runs.Client implements it. It is
// an optional capability of the Runner, like Scheduler.
type Reverter interface {
	StartRevert(ctx context.Context, p *directory.Profile, target *directory.Run, dryRun bool) (*directory.Run, error)
}

// RevertRequest is the body of POST /runs/{id}/revert.
type RevertRequest struct {
	// DryRun plans the revert and lists, in the revert run's ledger,
	// what it would change; nothing is changed.
	DryRun bool `json:"dryRun"`
	// PauseSchedule disables the profile (which pauses its schedule), so
	// that the next scheduled sync does not re-apply the provider's
	// state; enabling the profile resumes it. Ignored with dryRun.
	PauseSchedule bool `json:"pauseSchedule"`
}

// RevertRun starts the revert of run id as POST /runs/{id}/revert: the
// admin page's preview and its Revert button.
func (v *Service) RevertRun(ctx context.Context, id string, req RevertRequest) (*directory.Run, error) {
	return v.s.revert(ctx, id, req)
}

func (s *server) revertRun(c *gin.Context) error {
	var req RevertRequest
	if err := readOptionalJSON(c, &req); err != nil {
		return err
	}
	run, err := s.revert(c.Request.Context(), c.Param("id"), req)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, s.runJSON(run))
	return nil
}

func (s *server) revert(ctx context.Context, id string, req RevertRequest) (*directory.Run, error) {
	target, err := s.store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := s.store.GetProfile(ctx, target.ProfileID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, &apiError{Status: http.StatusConflict, Code: "profile_deleted", Message: fmt.Sprintf(
			"run %s cannot be reverted: its profile %q was deleted (its users stay as the run left them)", target.ID, target.ProfileName)}
	}
	if err != nil {
		return nil, err
	}
	if why := directory.RevertRefusal(target); why != "" {
		return nil, &apiError{Status: http.StatusConflict, Code: "not_revertable", Message: why}
	}
	rv, _ := s.runner.(Reverter)
	if rv == nil {
		return nil, errors.New("revert run: no runner configured")
	}
	run, err := rv.StartRevert(ctx, p, target, req.DryRun)
	var busy RunInProgress
	if errors.As(err, &busy) {
		e := &apiError{Status: http.StatusConflict, Code: "run_in_progress", RunID: busy.RunningRunID(),
			Message: "a run of this profile is in progress; revert when it has ended"}
		if r, gerr := s.store.GetRun(ctx, busy.RunningRunID()); gerr == nil {
			j := s.runJSON(r)
			e.run = &j
		}
		return nil, e
	}
	if err != nil {
		return nil, fmt.Errorf("revert run %s: %w", target.ID, err)
	}
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySync, Action: "run_revert_requested", Connection: p.Name,
		RunID: run.ID, Subject: target.ID, Details: fmt.Sprintf("reverts run %s dryRun=%t pauseSchedule=%t", target.ID, req.DryRun,
			req.PauseSchedule && !req.DryRun)})
	if req.PauseSchedule && !req.DryRun && p.Enabled {
		if err := s.pauseProfile(ctx, p, run.ID); err != nil {
			return nil, fmt.Errorf("the revert %s started, but the profile was not paused: %w", run.ID, err)
		}
	}
	if stored, err := s.store.GetRun(ctx, run.ID); err == nil {
		run = stored
	}
	return run, nil
}

// pauseProfile disables the profile, which pauses its schedule: the next
// sync would otherwise put the provider's state back over the revert.
func (s *server) pauseProfile(ctx context.Context, p *directory.Profile, revertID string) error {
	prev := *p
	cfg := map[string]json.RawMessage{}
	if len(p.Config) > 0 {
		if err := json.Unmarshal(p.Config, &cfg); err != nil {
			return fmt.Errorf("profile %s: config: %w", p.ID, err)
		}
	}
	cfg["enabled"] = json.RawMessage("false")
	raw, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("profile %s: config: %w", p.ID, err)
	}
	p.Config, p.Enabled = raw, false
	if err := s.store.UpdateProfile(ctx, p); err != nil {
		return err
	}
	if err := s.scheduleSaved(ctx, p, &prev); err != nil {
		return err
	}
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: actionProfileUpdated, Connection: p.Name,
		Subject: p.ID, Details: "changed: enabled (paused by the revert run " + revertID + "; enable the profile to resume its schedule)"})
	return nil
}
