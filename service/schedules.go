package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
)

// Schedules and the run rows' link to Temporal. Both are optional
// capabilities of the Runner, found by type assertion as http.Flusher is,
// so that a Runner that only starts runs (the handler tests' fake) still
// serves everything else. runs.Client implements both.

// Scheduler keeps each profile's Temporal schedule in step with the
// profile as stored.
type Scheduler interface {
	// SyncSchedule creates, updates, pauses (profile disabled) or removes
	// (frequency off) the profile's schedule.
	SyncSchedule(ctx context.Context, p *directory.Profile) error
	DeleteSchedule(ctx context.Context, profileID string) error
	// NextRunAt is the schedule's next action; nil when none or paused.
	NextRunAt(ctx context.Context, profileID string) (*time.Time, error)
	// TriggerSchedule makes the schedule act now, as a tick.
	TriggerSchedule(ctx context.Context, p *directory.Profile) error
}

// Reconciler brings a run row whose workflow ended without recording it
// (terminated or timed out in the Temporal UI) to its final status.
type Reconciler interface {
	ReconcileRun(ctx context.Context, run *directory.Run) (*directory.Run, error)
}

// temporalTimeout bounds a read's call to Temporal: a profile or run read
// must answer even when Temporal is slow.
const temporalTimeout = 5 * time.Second

func (s *Service) scheduler() Scheduler {
	sch, _ := s.runner.(Scheduler)
	return sch
}

// errTemporal is the Upstream error of a change Temporal did not accept:
// nothing was changed, so the caller may simply try again.
func errTemporal(format string, args ...any) *Error {
	return &Error{Kind: Upstream, Code: "temporal_unavailable", Message: fmt.Sprintf(format, args...)}
}

// A save and its schedule must not drift apart silently: when Temporal
// refuses the schedule, the store change is undone and the request fails
// with an Upstream error, so the admin sees it and saves again. (At start, the API also
// brings every schedule in line with the store: see SyncAllSchedules.)

// scheduleCreated gives a profile just created its schedule, or deletes
// the profile again.
func (s *Service) scheduleCreated(ctx context.Context, p *directory.Profile) error {
	sch := s.scheduler()
	if sch == nil {
		return nil
	}
	err := sch.SyncSchedule(ctx, p)
	if err == nil {
		return nil
	}
	if derr := s.store.DeleteProfile(ctx, p.ID); derr != nil {
		return fmt.Errorf("undo the creation of profile %s after its schedule failed (%v): %w", p.ID, err, derr)
	}
	return errTemporal("the profile was not created: Temporal did not take its schedule: %v", err)
}

// scheduleSaved brings the schedule of a profile just updated in line, or
// puts the profile back as it was (prev).
func (s *Service) scheduleSaved(ctx context.Context, p, prev *directory.Profile) error {
	sch := s.scheduler()
	if sch == nil {
		return nil
	}
	err := sch.SyncSchedule(ctx, p)
	if err == nil {
		return nil
	}
	if uerr := s.store.UpdateProfile(ctx, prev); uerr != nil {
		return fmt.Errorf("undo the update of profile %s after its schedule failed (%v): %w", p.ID, err, uerr)
	}
	return errTemporal("the profile was not saved: Temporal did not take its schedule: %v", err)
}

// unschedule removes the schedule of a profile about to be deleted; the
// profile stays when it cannot.
func (s *Service) unschedule(ctx context.Context, p *directory.Profile) error {
	sch := s.scheduler()
	if sch == nil {
		return nil
	}
	if err := sch.DeleteSchedule(ctx, p.ID); err != nil {
		return errTemporal("the profile was not deleted: Temporal did not delete its schedule: %v", err)
	}
	return nil
}

// reschedule puts back the schedule of a profile whose deletion failed
// after its schedule was removed. The deletion's error is what the caller
// answers; this one can only be logged.
func (s *Service) reschedule(ctx context.Context, p *directory.Profile) {
	if sch := s.scheduler(); sch != nil {
		if err := sch.SyncSchedule(ctx, p); err != nil {
			s.log.ErrorContext(ctx, "restore the schedule of a profile that was not deleted; it is restored at the next start",
				"profileId", p.ID, "error", err)
		}
	}
}

// nextRunAt is the nextRunAt of a profile read, from its schedule. A read
// must not fail because Temporal is unreachable: then it is null, and the
// cause is logged.
// nextRunTimes is nextRunAt for several profiles, at most
// nextRunLookups at a time, all within one temporalTimeout.
func (s *Service) nextRunTimes(ctx context.Context, ps []directory.Profile, cfgs []*profile.Config) []*time.Time {
	out := make([]*time.Time, len(ps))
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	var wg sync.WaitGroup
	slots := make(chan struct{}, nextRunLookups)
	for i := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			out[i] = s.nextRunAt(ctx, &ps[i], cfgs[i])
		}()
	}
	wg.Wait()
	return out
}

// nextRunLookups bounds the schedule reads a page of profiles sends to
// Temporal at once.
const nextRunLookups = 8

func (s *Service) nextRunAt(ctx context.Context, p *directory.Profile, cfg *profile.Config) *time.Time {
	sch := s.scheduler()
	if sch == nil || !p.Enabled || cfg.Schedule.Frequency == profile.ScheduleOff || cfg.Schedule.Frequency == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	next, err := sch.NextRunAt(ctx, p.ID)
	if err != nil {
		s.log.WarnContext(ctx, "read the next run time of a profile", "profileId", p.ID, "error", err)
		return nil
	}
	return next
}

// ResetLastRun records the reset and triggers the schedule: the daily
// rule then ignores every manual run so far, and the schedule acts at once
// (the same tick a slot starts, so a run already going still means a
// skipped run). A profile without a schedule is a Conflict whose Code is
// CodeNoSchedule; a disabled one is Invalid, as its sync would be.
func (s *Service) ResetLastRun(ctx context.Context, id string) (*directory.Profile, error) {
	p, err := s.store.GetProfile(ctx, id)
	if err != nil {
		return nil, err
	}
	cfg, err := s.openProfile(p)
	if err != nil {
		return nil, err
	}
	if cfg.Schedule.Frequency == profile.ScheduleOff || cfg.Schedule.Frequency == "" {
		return nil, &Error{Kind: Conflict, Code: CodeNoSchedule,
			Message: "the profile has no schedule (schedule.frequency is off), so there is no last run time to reset; " +
				"POST /profiles/{id}/sync starts a run now"}
	}
	if !p.Enabled {
		return nil, errInvalidField("enabled", "the profile is disabled and its schedule paused; enable it first")
	}
	sch := s.scheduler()
	if sch == nil {
		return nil, errors.New("reset last run: no scheduler configured")
	}
	// Recorded before the trigger: the tick reads it to ignore the manual
	// runs before it, and it must not race the tick.
	if err := s.store.AddAudit(ctx, &directory.AuditEntry{Category: directory.CategorySyncConfig,
		Action: directory.AuditLastRunReset, Connection: p.Name, Subject: p.ID,
		Details: "last run time reset: the schedule runs now, and the daily rule ignores manual runs before this"}); err != nil {
		return nil, err
	}
	if err := sch.TriggerSchedule(ctx, p); err != nil {
		return nil, errTemporal("the last run time was reset, but Temporal did not start the schedule now (it runs at its next slot): %v", err)
	}
	return p, nil
}

// reconciled is the run as it stands once a workflow that ended outside
// usersync's hands (terminated, timed out) is accounted for. Only a run
// not yet final costs a call to Temporal; when Temporal cannot be asked,
// the stored row is shown and the cause logged.
func (s *Service) reconciled(ctx context.Context, run *directory.Run) *directory.Run {
	rec, ok := s.runner.(Reconciler)
	if !ok || directory.IsFinalRunStatus(run.Status) {
		return run
	}
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	fresh, err := rec.ReconcileRun(ctx, run)
	if err != nil {
		s.log.WarnContext(ctx, "reconcile a run with its workflow", "runId", run.ID, "error", err)
		return run
	}
	return fresh
}
