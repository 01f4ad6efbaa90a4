package directory

import (
	"context"
	"fmt"
	"time"
)

// TriggerSchedule is the trigger of the runs a profile's schedule starts.
const TriggerSchedule = "schedule"

// AuditLastRunReset is the audit action of "reset last run time": the
// daily skip rule ignores manual runs that finished before the newest one.
const AuditLastRunReset = "last_run_reset"

// LastManualSuccess is the newest run of the profile that a person (or a
// script) started, not the schedule, and that succeeded for real (not a
// dry run; a partial run, which applied all but what the licence refused,
// counts), among those finished at or before notAfter; ErrNotFound when
// there is none. The daily schedule skips its run when such a run finished
// within the 24 hours before the slot: the directory is already fresh. A
// revert is not a sync: it leaves the directory unlike the source.
func (s *SQLStore) LastManualSuccess(ctx context.Context, profileID string, notAfter time.Time) (*Run, error) {
	var r Run
	if err := s.get(ctx, s.db, &r, `SELECT `+runCols+` FROM sync_runs
		WHERE profile_id = ? AND status IN (?, ?) AND dry_run = ? AND trigger NOT IN (?, ?)
		  AND finished_at IS NOT NULL AND finished_at <= ?
		ORDER BY finished_at DESC, id DESC LIMIT 1`,
		profileID, RunSucceeded, RunPartial, false, TriggerSchedule, TriggerRevert, utc(notAfter)); err != nil {
		return nil, dbErr(fmt.Sprintf("last manual success of profile %s", profileID), err)
	}
	if err := fixRun(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// OpenRun is the newest run of the profile that has not ended (running or
// awaiting approval), or ErrNotFound. It is not LastRun: a scheduled tick
// skipped because a run was going is newer than that run, and final.
func (s *SQLStore) OpenRun(ctx context.Context, profileID string) (*Run, error) {
	var r Run
	if err := s.get(ctx, s.db, &r, `SELECT `+runCols+` FROM sync_runs
		WHERE profile_id = ? AND status NOT IN (`+finalStatusList()+`)
		ORDER BY started_at DESC, id DESC LIMIT 1`, profileID); err != nil {
		return nil, dbErr(fmt.Sprintf("open run of profile %s", profileID), err)
	}
	if err := fixRun(&r); err != nil {
		return nil, err
	}
	return &r, nil
}
