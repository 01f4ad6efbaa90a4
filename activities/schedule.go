package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
)

// The steps of a scheduled tick (workflows.ScheduledSync) before it starts
// the run itself: what the tick must know to decide, and the record of a
// tick that decided not to run. Their inputs and results are in syncrun.

// CheckScheduledRun implements the activity of that name. It only reads.
func (a *Activities) CheckScheduledRun(ctx context.Context, in ScheduledCheckInput) (ScheduledCheck, error) {
	p, err := a.Store.GetProfile(ctx, in.ProfileID)
	if errors.Is(err, directory.ErrNotFound) {
		return ScheduledCheck{}, nil
	}
	if err != nil {
		return ScheduledCheck{}, fmt.Errorf("load profile: %w", err)
	}
	// The schedule is not a secret: the clear part of the profile has it,
	// so the check needs no key.
	var clear struct {
		Schedule profile.Schedule `json:"schedule"`
	}
	if err := json.Unmarshal(p.Config, &clear); err != nil {
		return ScheduledCheck{}, configError("profile %q: stored configuration: %v", p.Name, err)
	}
	res := ScheduledCheck{Found: true, ProfileName: p.Name, Provider: p.Provider, Frequency: clear.Schedule.Frequency}
	last, err := a.Store.LastManualSuccess(ctx, p.ID, in.ScheduledAt)
	if errors.Is(err, directory.ErrNotFound) {
		return res, nil
	}
	if err != nil {
		return ScheduledCheck{}, err
	}
	resets, err := a.Store.ListAudit(ctx, directory.AuditFilter{Category: directory.CategorySyncConfig,
		Action: directory.AuditLastRunReset, Subject: p.ID}, directory.ListOptions{Limit: 1})
	if err != nil {
		return ScheduledCheck{}, fmt.Errorf("read last run resets: %w", err)
	}
	if len(resets.Items) > 0 && !last.FinishedAt.After(resets.Items[0].At) {
		return res, nil
	}
	res.LastManualRunID, res.LastManualAt = last.ID, *last.FinishedAt
	return res, nil
}

// RecordSkippedRun implements the activity of that name: a run row born
// skipped, with the reason as its error, and the closing audit entry a
// skipped run gets. A retry finds both and adds nothing.
func (a *Activities) RecordSkippedRun(ctx context.Context, in SkippedRunInput) error {
	p, err := a.Store.GetProfile(ctx, in.ProfileID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil // deleted meanwhile: no profile to show the run under
	}
	if err != nil {
		return fmt.Errorf("load profile: %w", err)
	}
	reason := in.Reason
	if in.Busy {
		if open, err := a.Store.OpenRun(ctx, p.ID); err == nil {
			reason += " (run " + open.ID + ")"
		} else if !errors.Is(err, directory.ErrNotFound) {
			return fmt.Errorf("find the running run: %w", err)
		}
	}
	now := time.Now()
	run := &directory.Run{ID: in.RunID, ProfileID: p.ID, ProfileName: p.Name, Provider: p.Provider,
		DirectoryKey: p.DirectoryKey, Trigger: directory.TriggerSchedule, Status: directory.RunSkipped,
		Phase: directory.PhaseDone, Error: reason, WorkflowID: in.WorkflowID, TemporalRunID: in.TemporalRunID,
		StartedAt: now, FinishedAt: &now}
	if err := a.Store.CreateRun(ctx, run); err != nil {
		return fmt.Errorf("record skipped run: %w", err)
	}
	stored, err := a.Store.GetRun(ctx, in.RunID)
	if err != nil {
		return fmt.Errorf("record skipped run: %w", err)
	}
	rc := &runContext{run: stored, profile: p}
	return a.auditOnce(ctx, rc, "run_finished", "status=skipped trigger=schedule error="+stored.Error)
}
