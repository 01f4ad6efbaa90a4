package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/usersync/usersync/directory"
)

// Reverter starts the revert of a run; runs.Client implements it. It is
// an optional capability of the Runner, like Scheduler.
type Reverter interface {
	StartRevert(ctx context.Context, p *directory.Profile, target *directory.Run, dryRun bool) (*directory.Run, error)
}

// RevertInput is how to revert a run (the body of POST /runs/{id}/revert).
type RevertInput struct {
	// DryRun plans the revert and lists, in the revert run's ledger,
	// what it would change; nothing is changed.
	DryRun bool `json:"dryRun"`
	// PauseSchedule disables the profile (which pauses its schedule), so
	// that the next scheduled sync does not re-apply the provider's
	// state; enabling the profile resumes it. Ignored with dryRun.
	PauseSchedule bool `json:"pauseSchedule"`
}

// RevertRun starts the revert of run id: a run of its own, under the
// profile's workflow id, that puts back what the run changed.
func (s *Service) RevertRun(ctx context.Context, id string, req RevertInput) (*directory.Run, error) {
	target, err := s.store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := s.store.GetProfile(ctx, target.ProfileID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, &Error{Kind: Conflict, Code: "profile_deleted", Message: fmt.Sprintf(
			"run %s cannot be reverted: its profile %q was deleted (its users stay as the run left them)", target.ID, target.ProfileName)}
	}
	if err != nil {
		return nil, err
	}
	if why := directory.RevertRefusal(target); why != "" {
		return nil, &Error{Kind: Conflict, Code: "not_revertable", Message: why}
	}
	rv, _ := s.runner.(Reverter)
	if rv == nil {
		return nil, errors.New("revert run: no runner configured")
	}
	run, err := rv.StartRevert(ctx, p, target, req.DryRun)
	var busy RunInProgress
	if errors.As(err, &busy) {
		return nil, s.runInProgress(ctx, busy.RunningRunID(), "a run of this profile is in progress; revert when it has ended")
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
func (s *Service) pauseProfile(ctx context.Context, p *directory.Profile, revertID string) error {
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
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: ActionProfileUpdated, Connection: p.Name,
		Subject: p.ID, Details: "changed: enabled (paused by the revert run " + revertID + "; enable the profile to resume its schedule)"})
	return nil
}
