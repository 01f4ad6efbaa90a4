package directory_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
)

// TestLastManualSuccess checks the query behind the daily schedule's skip
// rule: only a real (not dry), succeeded run that a person or a script
// started counts, the newest by finish time, and never one that finished
// after the slot being decided.
func TestLastManualSuccess(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		s := directory.NewSQLStore(db)
		p := &directory.Profile{Name: "People", Provider: "csv", Enabled: true, DirectoryKey: "p-people"}
		require.NoError(t, s.CreateProfile(ctx, p))
		other := &directory.Profile{Name: "Other", Provider: "csv", Enabled: true, DirectoryKey: "p-other"}
		require.NoError(t, s.CreateProfile(ctx, other))

		slot := time.Date(2030, 3, 10, 12, 0, 0, 0, time.UTC)
		run := func(id, profileID, trigger, status string, dry bool, finished time.Time) {
			t.Helper()
			require.NoError(t, s.CreateRun(ctx, &directory.Run{ID: id, ProfileID: profileID, ProfileName: "x",
				Provider: "csv", DirectoryKey: "k", Trigger: trigger, DryRun: dry, Status: directory.RunRunning,
				StartedAt: finished.Add(-time.Minute)}))
			require.NoError(t, s.SetRunStatus(ctx, id, status, "", "", finished))
		}

		_, err := s.LastManualSuccess(ctx, p.ID, slot)
		assert.ErrorIs(t, err, directory.ErrNotFound, "no run at all")

		run("old-manual", p.ID, "manual", directory.RunSucceeded, false, slot.Add(-30*time.Hour))
		run("retry", p.ID, "retry", directory.RunSucceeded, false, slot.Add(-20*time.Hour))
		// None of these counts: scheduled, dry, failed, another profile.
		run("scheduled", p.ID, directory.TriggerSchedule, directory.RunSucceeded, false, slot.Add(-2*time.Hour))
		run("dry", p.ID, "manual", directory.RunSucceeded, true, slot.Add(-3*time.Hour))
		run("failed", p.ID, "manual", directory.RunFailed, false, slot.Add(-4*time.Hour))
		run("others", other.ID, "manual", directory.RunSucceeded, false, slot.Add(-time.Hour))
		// Finished after the slot: it cannot have made that slot's run redundant.
		run("later", p.ID, "api", directory.RunSucceeded, false, slot.Add(time.Minute))

		got, err := s.LastManualSuccess(ctx, p.ID, slot)
		require.NoError(t, err)
		assert.Equal(t, "retry", got.ID)
		require.NotNil(t, got.FinishedAt)
		assert.True(t, got.FinishedAt.Equal(slot.Add(-20*time.Hour)), "finished at %v", got.FinishedAt)

		got, err = s.LastManualSuccess(ctx, p.ID, slot.Add(time.Hour))
		require.NoError(t, err)
		assert.Equal(t, "later", got.ID)

		got, err = s.LastManualSuccess(ctx, p.ID, slot.Add(-25*time.Hour))
		require.NoError(t, err)
		assert.Equal(t, "old-manual", got.ID)

		// A run still going has no finish time and never counts.
		require.NoError(t, s.CreateRun(ctx, &directory.Run{ID: "going", ProfileID: other.ID, ProfileName: "x",
			Provider: "csv", DirectoryKey: "k", Trigger: "manual", Status: directory.RunRunning}))
		got, err = s.LastManualSuccess(ctx, other.ID, slot)
		require.NoError(t, err)
		assert.Equal(t, "others", got.ID)
	})
}

// TestOpenRun: the run still going is found behind newer final rows (the
// ticks its schedule skipped meanwhile), and no open run is ErrNotFound.
func TestOpenRun(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		s := directory.NewSQLStore(db)
		p := &directory.Profile{Name: "People", Provider: "csv", Enabled: true, DirectoryKey: "p-people"}
		require.NoError(t, s.CreateProfile(ctx, p))
		base := time.Date(2030, 3, 10, 12, 0, 0, 0, time.UTC)
		add := func(id, status string, at time.Time) {
			t.Helper()
			require.NoError(t, s.CreateRun(ctx, &directory.Run{ID: id, ProfileID: p.ID, ProfileName: "People",
				Provider: "csv", DirectoryKey: "k", Trigger: "manual", Status: status, StartedAt: at}))
		}
		_, err := s.OpenRun(ctx, p.ID)
		assert.ErrorIs(t, err, directory.ErrNotFound)

		add("done", directory.RunSucceeded, base)
		add("held", directory.RunAwaitingApproval, base.Add(time.Minute))
		add("tick-1", directory.RunSkipped, base.Add(2*time.Minute))
		add("tick-2", directory.RunSkipped, base.Add(3*time.Minute))
		got, err := s.OpenRun(ctx, p.ID)
		require.NoError(t, err)
		assert.Equal(t, "held", got.ID)
		last, err := s.LastRun(ctx, p.ID)
		require.NoError(t, err)
		assert.Equal(t, "tick-2", last.ID, "LastRun is the newest, final or not")

		require.NoError(t, s.SetRunStatus(ctx, "held", directory.RunSucceeded, "", "", base.Add(4*time.Minute)))
		_, err = s.OpenRun(ctx, p.ID)
		assert.ErrorIs(t, err, directory.ErrNotFound)
	})
}
