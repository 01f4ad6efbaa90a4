package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/syncrun"
)

// London noon on a March day, as a daily 12:00 Europe/London slot.
var slot = time.Date(2030, 3, 12, 12, 0, 0, 0, time.UTC)

func TestDailySkip(t *testing.T) {
	daily := func(lastAgo time.Duration) syncrun.ScheduledCheck {
		return syncrun.ScheduledCheck{Found: true, Frequency: syncrun.FrequencyDaily,
			LastManualRunID: "m1", LastManualAt: slot.Add(-lastAgo)}
	}
	for _, tc := range []struct {
		name  string
		check syncrun.ScheduledCheck
		skip  bool
	}{
		{"manual success an hour before", daily(time.Hour), true},
		{"manual success 23h59m before", daily(23*time.Hour + 59*time.Minute), true},
		{"manual success at the slot itself", daily(0), true},
		{"manual success exactly 24h before", daily(24 * time.Hour), false},
		{"manual success 25h before", daily(25 * time.Hour), false},
		{"manual success after the slot", daily(-time.Minute), false},
		{"no manual success", syncrun.ScheduledCheck{Found: true, Frequency: syncrun.FrequencyDaily}, false},
		{"interval schedule", syncrun.ScheduledCheck{Found: true, Frequency: "interval",
			LastManualRunID: "m1", LastManualAt: slot.Add(-time.Hour)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason := DailySkip(slot, tc.check)
			if !tc.skip {
				assert.Empty(t, reason)
				return
			}
			assert.Contains(t, reason, "run m1")
			assert.Contains(t, reason, "within the 24 hours before this scheduled run at 2030-03-12T12:00:00Z")
		})
	}
}

// tick is what a ScheduledSync test saw.
type tick struct {
	mu       sync.Mutex
	checks   []syncrun.ScheduledCheckInput
	skipped  []syncrun.SkippedRunInput
	children []*workflow.Info
	inputs   []SyncInput
}

// newTickEnv runs ScheduledSync with the clock at start and the check
// answering check; SyncProfile is mocked, so the child only proves it was
// started and with what.
func newTickEnv(t *testing.T, start time.Time, check syncrun.ScheduledCheck) (*testsuite.TestWorkflowEnvironment, *tick) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger())
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	registerSteps(env)
	env.RegisterWorkflowWithOptions(SyncProfile, workflow.RegisterOptions{Name: WorkflowName})
	tk := &tick{}
	env.OnActivity(syncrun.StepCheckScheduledRun, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in syncrun.ScheduledCheckInput) (syncrun.ScheduledCheck, error) {
			tk.mu.Lock()
			defer tk.mu.Unlock()
			tk.checks = append(tk.checks, in)
			return check, nil
		})
	env.OnActivity(syncrun.StepRecordSkippedRun, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in syncrun.SkippedRunInput) error {
			tk.mu.Lock()
			defer tk.mu.Unlock()
			tk.skipped = append(tk.skipped, in)
			return nil
		})
	env.OnWorkflow(WorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in SyncInput) (syncrun.RunCounts, error) {
			tk.mu.Lock()
			defer tk.mu.Unlock()
			tk.inputs = append(tk.inputs, in)
			return syncrun.RunCounts{}, nil
		})
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		tk.mu.Lock()
		defer tk.mu.Unlock()
		tk.children = append(tk.children, info)
	})
	return env, tk
}

func runTick(t *testing.T, env *testsuite.TestWorkflowEnvironment) ScheduledResult {
	t.Helper()
	env.ExecuteWorkflow(ScheduledSync, ScheduledInput{ProfileID: "p1"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res ScheduledResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return res
}

// TestScheduledSyncDailyRule is the daily rule as the workflow applies it,
// on the schedule's time with the clock under the test's control: a
// manual success 23h before the slot skips the tick, 25h before does not.
func TestScheduledSyncDailyRule(t *testing.T) {
	manual := func(ago time.Duration) syncrun.ScheduledCheck {
		return syncrun.ScheduledCheck{Found: true, ProfileName: "People", Provider: "csv",
			Frequency: syncrun.FrequencyDaily, LastManualRunID: "manual-1", LastManualAt: slot.Add(-ago)}
	}

	t.Run("recent manual success skips", func(t *testing.T) {
		env, tk := newTickEnv(t, slot, manual(23*time.Hour))
		res := runTick(t, env)
		require.Len(t, tk.checks, 1)
		assert.True(t, tk.checks[0].ScheduledAt.Equal(slot), "the check asks about the slot, got %v", tk.checks[0].ScheduledAt)
		require.Len(t, tk.skipped, 1, "the tick records a skipped run")
		sk := tk.skipped[0]
		assert.Equal(t, "p1", sk.ProfileID)
		assert.Equal(t, res.RunID, sk.RunID)
		assert.NotEmpty(t, sk.RunID)
		assert.False(t, sk.Busy)
		assert.Contains(t, sk.Reason, "a manual sync succeeded at 2030-03-11T13:00:00Z (run manual-1)")
		assert.Equal(t, sk.Reason, res.Skipped)
		assert.NotEmpty(t, sk.WorkflowID, "the skipped row links the tick in the UI")
		assert.Equal(t, sk.RunID, sk.TemporalRunID)
		assert.Empty(t, tk.children, "no run starts")
	})

	t.Run("older manual success runs", func(t *testing.T) {
		env, tk := newTickEnv(t, slot, manual(25*time.Hour))
		res := runTick(t, env)
		assert.Empty(t, tk.skipped)
		assert.Empty(t, res.Skipped)
		require.Len(t, tk.children, 1)
		assert.Equal(t, WorkflowID("p1"), tk.children[0].WorkflowExecution.ID,
			"the run keeps the profile's workflow id: one run per profile")
		assert.Equal(t, WorkflowName, tk.children[0].WorkflowType.Name)
		require.Len(t, tk.inputs, 1)
		assert.Equal(t, SyncInput{RunID: res.RunID, ProfileID: "p1", Trigger: syncrun.TriggerSchedule}, tk.inputs[0])
		assert.NotEmpty(t, res.SyncRunID)
	})

	// The tick starts a few seconds after its slot; the slot, which the
	// server puts in TemporalScheduledStartTime, is what the rule measures
	// from, not the start: 24h05m before the start is 23h59m before the slot.
	t.Run("measured from the scheduled time", func(t *testing.T) {
		late := slot.Add(6 * time.Minute)
		env, tk := newTickEnv(t, late, manual(23*time.Hour+59*time.Minute))
		require.NoError(t, env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
			scheduledStartTimeKey.ValueSet(slot))))
		res := runTick(t, env)
		require.Len(t, tk.checks, 1)
		assert.True(t, tk.checks[0].ScheduledAt.Equal(slot), "got %v", tk.checks[0].ScheduledAt)
		assert.NotEmpty(t, res.Skipped)
		assert.Len(t, tk.skipped, 1)
		assert.Empty(t, tk.children)
	})

	t.Run("interval schedules ignore manual runs", func(t *testing.T) {
		check := manual(time.Hour)
		check.Frequency = "interval"
		env, tk := newTickEnv(t, slot, check)
		res := runTick(t, env)
		assert.Empty(t, res.Skipped)
		assert.Empty(t, tk.skipped)
		assert.Len(t, tk.children, 1)
	})
}

// A tick of a profile deleted meanwhile does nothing and records nothing.
func TestScheduledSyncProfileGone(t *testing.T) {
	env, tk := newTickEnv(t, slot, syncrun.ScheduledCheck{Found: false})
	res := runTick(t, env)
	assert.Equal(t, ScheduledResult{}, res)
	assert.Empty(t, tk.skipped)
	assert.Empty(t, tk.children)
}
