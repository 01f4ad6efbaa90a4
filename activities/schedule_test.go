package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
)

// TestCheckScheduledRun: the check hands the workflow the profile's
// frequency and its newest manual success before the slot, unless a
// "reset last run time" came after that success.
func TestCheckScheduledRun(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		ctx := context.Background()
		h := newHarness(t, db, func(c *profile.Config) {
			c.Schedule = profile.Schedule{Frequency: profile.ScheduleDaily, Time: "12:00", Timezone: "Europe/London"}
		})
		slot := time.Now().UTC().Truncate(time.Second)

		got, err := h.acts.CheckScheduledRun(ctx, activities.ScheduledCheckInput{ProfileID: h.profile.ID, ScheduledAt: slot})
		require.NoError(t, err)
		assert.Equal(t, activities.ScheduledCheck{Found: true, ProfileName: "People CSV", Provider: "csv",
			Frequency: profile.ScheduleDaily}, got)

		finished := slot.Add(-3 * time.Hour)
		require.NoError(t, h.store.CreateRun(ctx, &directory.Run{ID: "manual-1", ProfileID: h.profile.ID,
			ProfileName: "People CSV", Provider: "csv", DirectoryKey: h.profile.DirectoryKey, Trigger: "manual",
			Status: directory.RunRunning, StartedAt: finished.Add(-time.Minute)}))
		require.NoError(t, h.store.SetRunStatus(ctx, "manual-1", directory.RunSucceeded, directory.PhaseDone, "", finished))

		got, err = h.acts.CheckScheduledRun(ctx, activities.ScheduledCheckInput{ProfileID: h.profile.ID, ScheduledAt: slot})
		require.NoError(t, err)
		assert.Equal(t, "manual-1", got.LastManualRunID)
		assert.True(t, got.LastManualAt.Equal(finished), "last manual at %v", got.LastManualAt)

		// Reset last run time: that success no longer counts.
		require.NoError(t, h.store.AddAudit(ctx, &directory.AuditEntry{Category: directory.CategorySyncConfig,
			Action: directory.AuditLastRunReset, Connection: "People CSV", Subject: h.profile.ID, At: finished.Add(time.Minute)}))
		got, err = h.acts.CheckScheduledRun(ctx, activities.ScheduledCheckInput{ProfileID: h.profile.ID, ScheduledAt: slot})
		require.NoError(t, err)
		assert.Empty(t, got.LastManualRunID)
		assert.True(t, got.Found)

		// A profile deleted meanwhile: nothing to do, no error.
		require.NoError(t, h.store.DeleteProfile(ctx, h.profile.ID))
		got, err = h.acts.CheckScheduledRun(ctx, activities.ScheduledCheckInput{ProfileID: h.profile.ID, ScheduledAt: slot})
		require.NoError(t, err)
		assert.False(t, got.Found)
	})
}

// TestRecordSkippedRun: a skipped tick is a final run row with the reason,
// naming the run that was going, and one audit entry, however often the
// step is retried.
func TestRecordSkippedRun(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		ctx := context.Background()
		h := newHarness(t, db, nil)
		require.NoError(t, h.store.CreateRun(ctx, &directory.Run{ID: "going", ProfileID: h.profile.ID,
			ProfileName: "People CSV", Provider: "csv", DirectoryKey: h.profile.DirectoryKey, Trigger: "manual"}))
		in := activities.SkippedRunInput{RunID: "tick-1", ProfileID: h.profile.ID,
			Reason: "a run of this profile was already running", Busy: true,
			WorkflowID: "usersync-scheduled-x-2030", TemporalRunID: "tick-1"}
		for range 2 {
			require.NoError(t, h.acts.RecordSkippedRun(ctx, in))
		}
		run, err := h.store.GetRun(ctx, "tick-1")
		require.NoError(t, err)
		assert.Equal(t, directory.RunSkipped, run.Status)
		assert.Equal(t, directory.TriggerSchedule, run.Trigger)
		assert.Equal(t, "a run of this profile was already running (run going)", run.Error)
		assert.NotNil(t, run.FinishedAt)
		assert.Equal(t, "usersync-scheduled-x-2030", run.WorkflowID)
		audit, err := h.store.ListAudit(ctx, directory.AuditFilter{RunID: "tick-1"}, directory.ListOptions{})
		require.NoError(t, err)
		require.Len(t, audit.Items, 1)
		assert.Equal(t, "run_finished", audit.Items[0].Action)
		assert.Contains(t, audit.Items[0].Details, "status=skipped")

		// The profile is gone: nothing to record it under, and no error.
		require.NoError(t, h.acts.RecordSkippedRun(ctx, activities.SkippedRunInput{RunID: "tick-2", ProfileID: "gone", Reason: "x"}))
		_, err = h.store.GetRun(ctx, "tick-2")
		assert.ErrorIs(t, err, directory.ErrNotFound)
	})
}
