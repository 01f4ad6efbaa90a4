package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/syncrun"
)

const guard = "would disable 600 of 1000 active users (limit 500)"

// recorder keeps what the mocked activities saw; activities run on their
// own goroutines in the test environment, hence the lock.
type recorder struct {
	mu      sync.Mutex
	calls   []string
	start   []syncrun.StartRunInput
	status  []syncrun.SetStatusInput
	finish  []syncrun.FinishInput
	options map[string]activity.Info
}

func (r *recorder) add(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, name)
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recorder) Finish(t *testing.T) syncrun.FinishInput {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Len(t, r.finish, 1, "FinishRun must be called exactly once")
	return r.finish[0]
}

// newEnv registers the real activities struct (so that an unmocked call
// fails loudly with "not implemented") and mocks the bookkeeping steps.
func newEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *recorder) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	registerSteps(env)
	rec := &recorder{options: map[string]activity.Info{}}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.options[info.ActivityType.Name] = *info
	})
	env.OnActivity(syncrun.StepSetStatus, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in syncrun.SetStatusInput) error {
			rec.add("SetStatus:" + in.Status)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.status = append(rec.status, in)
			return nil
		})
	env.OnActivity(syncrun.StepFinishRun, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in syncrun.FinishInput) error {
			rec.add("FinishRun:" + in.Status)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.finish = append(rec.finish, in)
			return nil
		})
	return env, rec
}

func mockStart(env *testsuite.TestWorkflowEnvironment, rec *recorder, skip string) {
	env.OnActivity(syncrun.StepStartRun, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in syncrun.StartRunInput) (syncrun.StartRunResult, error) {
			rec.add("StartRun")
			rec.mu.Lock()
			defer rec.mu.Unlock()
			rec.start = append(rec.start, in)
			return syncrun.StartRunResult{ProfileName: "Contoso Entra", Provider: "azure", Skip: skip}, nil
		})
}

// mockFetch makes Fetch return the given totals, one per call, the last done.
func mockFetch(env *testsuite.TestWorkflowEnvironment, rec *recorder, totals ...int) {
	for i, n := range totals {
		res := syncrun.FetchResult{Fetched: n, Done: i == len(totals)-1}
		env.OnActivity(syncrun.StepFetch, mock.Anything, mock.Anything).Return(
			func(context.Context, syncrun.FetchInput) (syncrun.FetchResult, error) {
				rec.add("Fetch")
				return res, nil
			}).Once()
	}
}

func mockPlan(env *testsuite.TestWorkflowEnvironment, rec *recorder, c syncrun.RunCounts, guard string) {
	env.OnActivity(syncrun.StepPlan, mock.Anything, mock.Anything).Return(
		func(context.Context, syncrun.PlanInput) (syncrun.PlanResult, error) {
			rec.add("Plan")
			return syncrun.PlanResult{Counts: c, Guard: guard}, nil
		}).Once()
}

func mockApply(env *testsuite.TestWorkflowEnvironment, rec *recorder, steps ...syncrun.RunCounts) {
	for i, c := range steps {
		res := syncrun.ApplyResult{Counts: c, Done: i == len(steps)-1}
		env.OnActivity(syncrun.StepApply, mock.Anything, mock.Anything).Return(
			func(context.Context, syncrun.ApplyInput) (syncrun.ApplyResult, error) {
				rec.add("Apply")
				return res, nil
			}).Once()
	}
}

var (
	planned = syncrun.RunCounts{Fetched: 999, Created: 200, Updated: 40, Unchanged: 10, Disabled: 3}
	halfway = syncrun.RunCounts{Created: 120, Updated: 40}
	applied = syncrun.RunCounts{Created: 200, Updated: 40, Unchanged: 10, Disabled: 3, GroupsCreated: 4, MembershipsAdded: 600}
)

func withFetched(c syncrun.RunCounts, n int) syncrun.RunCounts {
	c.Fetched = n
	return c
}

func query(t *testing.T, env *testsuite.TestWorkflowEnvironment) Progress {
	t.Helper()
	v, err := env.QueryWorkflow(QueryProgress)
	require.NoError(t, err)
	var p Progress
	require.NoError(t, v.Get(&p))
	return p
}

func TestPhasesInOrder(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	mockFetch(env, rec, 100, 200, 250)
	mockPlan(env, rec, planned, "")
	mockApply(env, rec, halfway, applied)

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "manual"})

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var counts syncrun.RunCounts
	require.NoError(t, env.GetWorkflowResult(&counts))
	assert.Equal(t, withFetched(applied, 250), counts, "apply totals, with the fetch's own count")
	assert.Equal(t, []string{"StartRun", "Fetch", "Fetch", "Fetch", "Plan", "Apply", "Apply", "FinishRun:succeeded"}, rec.Calls())
	assert.Equal(t, syncrun.FinishInput{RunID: "run-1", Status: syncrun.RunSucceeded}, rec.Finish(t))
	assert.Equal(t, "run-1", rec.start[0].RunID)
	assert.Equal(t, "p1", rec.start[0].ProfileID)
	assert.Equal(t, "manual", rec.start[0].Trigger)
	assert.NotEmpty(t, rec.start[0].WorkflowID)
	assert.NotEmpty(t, rec.start[0].TemporalRunID)

	p := query(t, env)
	assert.Equal(t, Progress{RunID: "run-1", Status: syncrun.RunSucceeded, Phase: syncrun.PhaseDone, Counts: counts}, p)

	// The Temporal UI shows the current details: the final line of the run.
	v, err := env.QueryWorkflow("__temporal_workflow_metadata")
	require.NoError(t, err)
	var meta sdkpb.WorkflowMetadata
	require.NoError(t, v.Get(&meta))
	assert.Equal(t, "**succeeded** · 250 fetched · 200 created · 40 updated · 10 unchanged · 3 disabled", meta.GetCurrentDetails())

	// Activity options the run relies on.
	fetch := rec.options["Fetch"]
	assert.Equal(t, DefaultHeartbeatTimeout, fetch.HeartbeatTimeout)
	assert.Equal(t, time.Hour, fetch.StartToCloseTimeout)
	// The steps that grow with the tenant heartbeat (changeStepHeartbeats).
	for _, step := range []string{"StartRun", "Plan", "FinishRun"} {
		assert.Equal(t, DefaultHeartbeatTimeout, rec.options[step].HeartbeatTimeout, step)
		assert.Equal(t, growingStepTimeout, rec.options[step].StartToCloseTimeout, step)
	}
	assert.Equal(t, 24*time.Hour, rec.options["FinishRun"].ScheduleToCloseTimeout)
}

// A run the licence cut short ends partial in the Temporal UI and the
// progress query, as FinishRun records it, with the refusals counted.
func TestLicenceRefusalsShowPartial(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	mockFetch(env, rec, 250)
	refused := syncrun.RunCounts{Created: 200, Updated: 40, LicenceRefused: 7, Departed: 2, Disabled: 3}
	mockPlan(env, rec, refused, "")
	mockApply(env, rec, refused)

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "manual"})

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	// The command sequence is a succeeded run's: FinishRun decides partial
	// from the run's counts itself.
	assert.Equal(t, []string{"StartRun", "Fetch", "Plan", "Apply", "FinishRun:succeeded"}, rec.Calls())
	assert.Equal(t, syncrun.RunPartial, query(t, env).Status)
	v, err := env.QueryWorkflow("__temporal_workflow_metadata")
	require.NoError(t, err)
	var meta sdkpb.WorkflowMetadata
	require.NoError(t, v.Get(&meta))
	assert.Equal(t, "**partial** · 250 fetched · 200 created · 40 updated · 3 disabled · 7 refused by the licence · 2 departed", meta.GetCurrentDetails())
}

// A dry run applies nothing, so the licence refused nobody yet.
func TestDryRunWithLicenceRefusalsIsNotPartial(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	mockFetch(env, rec, 10)
	mockPlan(env, rec, syncrun.RunCounts{Created: 10, LicenceRefused: 4}, "")

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "manual", DryRun: true})

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, syncrun.RunSucceeded, query(t, env).Status)
}

func TestRunIDDefaultsToFirstTemporalRunID(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	mockFetch(env, rec, 1)
	mockPlan(env, rec, syncrun.RunCounts{}, "")
	mockApply(env, rec, syncrun.RunCounts{})

	env.ExecuteWorkflow(SyncProfile, SyncInput{ProfileID: "p1", Trigger: "schedule"})

	require.NoError(t, env.GetWorkflowError())
	require.Len(t, rec.start, 1)
	assert.NotEmpty(t, rec.start[0].RunID)
	assert.Equal(t, rec.start[0].TemporalRunID, rec.start[0].RunID)
	assert.Equal(t, rec.start[0].RunID, rec.Finish(t).RunID)
}

func TestDryRunStopsAfterPlan(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	mockFetch(env, rec, 10, 20)
	mockPlan(env, rec, planned, guard)

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "api", DryRun: true})

	require.NoError(t, env.GetWorkflowError())
	var counts syncrun.RunCounts
	require.NoError(t, env.GetWorkflowResult(&counts))
	assert.Equal(t, withFetched(planned, 20), counts, "the plan's counts, with what was fetched")
	assert.Equal(t, []string{"StartRun", "Fetch", "Fetch", "Plan", "FinishRun:succeeded"}, rec.Calls(),
		"a dry run neither applies nor waits for approval")
	env.AssertActivityNotCalled(t, "Apply", mock.Anything, mock.Anything)
	p := query(t, env)
	assert.Equal(t, syncrun.RunSucceeded, p.Status)
	assert.Equal(t, guard, p.Guard, "a dry run still reports the guard verdict")
}

func TestSkip(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "no group selected: nothing to sync")

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "schedule"})

	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, []string{"StartRun", "FinishRun:skipped"}, rec.Calls())
	assert.Equal(t, syncrun.FinishInput{RunID: "run-1", Status: syncrun.RunSkipped, Error: "no group selected: nothing to sync"}, rec.Finish(t))
	assert.Equal(t, syncrun.RunSkipped, query(t, env).Status)
}

func TestGuardApproved(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	mockFetch(env, rec, 1000)
	mockPlan(env, rec, planned, guard)
	mockApply(env, rec, applied)

	var waiting Progress
	env.RegisterDelayedCallback(func() { waiting = query(t, env) }, 30*time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalApprove, nil) }, time.Hour)

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "manual"})

	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, Progress{RunID: "run-1", Status: syncrun.RunAwaitingApproval, Phase: syncrun.PhasePlan,
		Counts: withFetched(planned, 1000), Guard: guard}, waiting)
	assert.Equal(t, []string{"StartRun", "Fetch", "Plan", "SetStatus:awaiting_approval", "SetStatus:running", "Apply", "FinishRun:succeeded"}, rec.Calls())
	assert.Equal(t, []syncrun.SetStatusInput{
		{RunID: "run-1", Status: syncrun.RunAwaitingApproval, Phase: syncrun.PhasePlan, Message: guard},
		{RunID: "run-1", Status: syncrun.RunRunning, Phase: syncrun.PhaseApply},
	}, rec.status)
	assert.Equal(t, syncrun.RunSucceeded, rec.Finish(t).Status)
}

func TestEarlyApprovalIsIgnored(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	env.OnActivity(syncrun.StepFetch, mock.Anything, mock.Anything).After(time.Minute).Return(syncrun.FetchResult{Fetched: 5, Done: true}, nil)
	mockPlan(env, rec, planned, guard)

	// Sent while fetching, before anyone saw the guard: it must not count.
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalApprove, nil) }, 10*time.Second)
	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Options: Options{ApprovalTimeout: time.Hour}})

	assert.Equal(t, syncrun.RunBlocked, rec.Finish(t).Status)
	env.AssertActivityNotCalled(t, "Apply", mock.Anything, mock.Anything)
}

func TestGuardTimesOutBlocked(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	mockFetch(env, rec, 1000)
	mockPlan(env, rec, planned, guard)

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "schedule",
		Options: Options{ApprovalTimeout: 2 * time.Hour}})

	require.True(t, env.IsWorkflowCompleted())
	assert.Equal(t, []string{"StartRun", "Fetch", "Plan", "SetStatus:awaiting_approval", "FinishRun:blocked"}, rec.Calls())
	env.AssertActivityNotCalled(t, "Apply", mock.Anything, mock.Anything)
	want := "not approved within 2h: " + guard
	assert.Equal(t, syncrun.FinishInput{RunID: "run-1", Status: syncrun.RunBlocked, Error: want}, rec.Finish(t))

	var appErr *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &appErr)
	assert.Equal(t, want, appErr.Message(), "the Temporal UI shows the guard with its numbers")
	assert.Equal(t, ErrTypeBlocked, appErr.Type())
	assert.Equal(t, syncrun.RunBlocked, query(t, env).Status)
}

func TestCancelDuringFetch(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	env.OnActivity(syncrun.StepFetch, mock.Anything, mock.Anything).Return(syncrun.FetchResult{Fetched: 100}, nil).Once()
	env.OnActivity(syncrun.StepFetch, mock.Anything, mock.Anything).After(time.Minute).Return(
		func(context.Context, syncrun.FetchInput) (syncrun.FetchResult, error) {
			rec.add("Fetch")
			return syncrun.FetchResult{Fetched: 200}, nil
		})
	var cancelled []string
	env.SetOnActivityCanceledListener(func(info *activity.Info) {
		cancelled = append(cancelled, info.ActivityType.Name)
	})
	env.RegisterDelayedCallback(env.CancelWorkflow, 30*time.Second)

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "manual"})

	require.True(t, env.IsWorkflowCompleted())
	err := env.GetWorkflowError()
	require.Error(t, err)
	assert.True(t, temporal.IsCanceledError(err), "the execution must end Cancelled, got %v", err)
	assert.Equal(t, []string{"Fetch"}, cancelled, "the fetch in flight is cancelled")
	assert.Equal(t, syncrun.FinishInput{RunID: "run-1", Status: syncrun.RunCancelled, Error: "cancelled"}, rec.Finish(t))
	env.AssertActivityNotCalled(t, "Plan", mock.Anything, mock.Anything)
	env.AssertActivityNotCalled(t, "Apply", mock.Anything, mock.Anything)
	assert.Equal(t, syncrun.RunCancelled, query(t, env).Status)
}

func TestCancelWhileAwaitingApproval(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	mockFetch(env, rec, 1000)
	mockPlan(env, rec, planned, guard)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1"})

	assert.True(t, temporal.IsCanceledError(env.GetWorkflowError()))
	assert.Equal(t, syncrun.RunCancelled, rec.Finish(t).Status)
	env.AssertActivityNotCalled(t, "Apply", mock.Anything, mock.Anything)
}

func TestNonRetryableFailure(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	msg := "Microsoft Entra rejected the client secret of Contoso Entra: paste a valid secret on the profile"
	env.OnActivity(syncrun.StepFetch, mock.Anything, mock.Anything).Return(syncrun.FetchResult{},
		temporal.NewNonRetryableApplicationError(msg, "Auth", errors.New("AADSTS7000215: Invalid client secret provided")))

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "manual"})

	require.True(t, env.IsWorkflowCompleted())
	env.AssertActivityNumberOfCalls(t, "Fetch", 1)
	assert.Equal(t, syncrun.FinishInput{RunID: "run-1", Status: syncrun.RunFailed, Error: msg}, rec.Finish(t),
		"the run's error is the activity's message, not Temporal's wrapper chain")
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &appErr)
	assert.Equal(t, msg, appErr.Message())
	assert.Equal(t, "Auth", appErr.Type())
	p := query(t, env)
	assert.Equal(t, syncrun.RunFailed, p.Status)
	assert.Equal(t, syncrun.PhaseDone, p.Phase)
}

func TestConfigErrorTypesAreNotRetried(t *testing.T) {
	for _, typ := range NonRetryableErrorTypes {
		t.Run(typ, func(t *testing.T) {
			env, rec := newEnv(t)
			mockStart(env, rec, "")
			mockFetch(env, rec, 1)
			// A retryable-looking error of a final type: the retry policy stops it.
			env.OnActivity(syncrun.StepPlan, mock.Anything, mock.Anything).Return(syncrun.PlanResult{},
				temporal.NewApplicationError("licence exceeded: 120 active users, limit 100", typ))
			env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1"})
			env.AssertActivityNumberOfCalls(t, "Plan", 1)
			assert.Equal(t, "licence exceeded: 120 active users, limit 100", rec.Finish(t).Error)
		})
	}
}

func TestRetryableFailureIsRetried(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	env.OnActivity(syncrun.StepFetch, mock.Anything, mock.Anything).Return(syncrun.FetchResult{},
		temporal.NewApplicationError("graph throttled", "Throttled")).Twice()
	mockFetch(env, rec, 7)
	mockPlan(env, rec, syncrun.RunCounts{}, "")
	mockApply(env, rec, syncrun.RunCounts{})

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1"})

	require.NoError(t, env.GetWorkflowError())
	env.AssertActivityNumberOfCalls(t, "Fetch", 3)
	assert.Equal(t, syncrun.RunSucceeded, rec.Finish(t).Status)
}

func TestProgressQueryDuringFetch(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	env.OnActivity(syncrun.StepFetch, mock.Anything, mock.Anything).Return(syncrun.FetchResult{Fetched: 100}, nil).Once()
	env.OnActivity(syncrun.StepFetch, mock.Anything, mock.Anything).After(time.Minute).Return(syncrun.FetchResult{Fetched: 200, Done: true}, nil).Once()
	mockPlan(env, rec, planned, "")
	mockApply(env, rec, applied)

	var during Progress
	env.RegisterDelayedCallback(func() { during = query(t, env) }, 30*time.Second)
	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1"})

	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, Progress{RunID: "run-1", Status: syncrun.RunRunning, Phase: syncrun.PhaseFetch,
		Counts: syncrun.RunCounts{Fetched: 100}}, during)
}

func TestContinueAsNewDuringFetch(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	mockFetch(env, rec, 100, 200, 300, 400, 500)

	in := SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "manual", Options: Options{ContinueAsNewAfter: 3}}
	env.ExecuteWorkflow(SyncProfile, in)

	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	assert.Equal(t, WorkflowName, can.WorkflowType.Name)
	// StartRun and two fetches make three activity calls.
	assert.Equal(t, []string{"StartRun", "Fetch", "Fetch"}, rec.Calls())
	assert.Empty(t, rec.finish, "a run that continues as new is not finished")

	var next SyncInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	want := in
	want.Resume = &ResumeState{Phase: syncrun.PhaseFetch, Counts: syncrun.RunCounts{Fetched: 200},
		ProfileName: "Contoso Entra", Provider: "azure"}
	assert.Equal(t, want, next)
}

func TestContinueAsNewDuringApplyKeepsApproval(t *testing.T) {
	env, rec := newEnv(t)
	mockStart(env, rec, "")
	mockFetch(env, rec, 1000)
	mockPlan(env, rec, planned, guard)
	mockApply(env, rec, halfway, halfway, applied)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalApprove, nil) }, time.Minute)

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Options: Options{ContinueAsNewAfter: 6}})

	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	var next SyncInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.Resume)
	assert.Equal(t, ResumeState{Phase: syncrun.PhaseApply, Counts: withFetched(halfway, 1000), Approved: true,
		ProfileName: "Contoso Entra", Provider: "azure"}, *next.Resume)
}

func TestResumeInFetch(t *testing.T) {
	env, rec := newEnv(t)
	mockFetch(env, rec, 300, 450)
	mockPlan(env, rec, planned, "")
	mockApply(env, rec, applied)

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Trigger: "manual",
		Resume: &ResumeState{Phase: syncrun.PhaseFetch, Counts: syncrun.RunCounts{Fetched: 200}, ProfileName: "Contoso Entra", Provider: "azure"}})

	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, []string{"Fetch", "Fetch", "Plan", "Apply", "FinishRun:succeeded"}, rec.Calls(), "no second StartRun")
	env.AssertActivityNotCalled(t, "StartRun", mock.Anything, mock.Anything)
	var counts syncrun.RunCounts
	require.NoError(t, env.GetWorkflowResult(&counts))
	assert.Equal(t, withFetched(applied, 450), counts)
	assert.Equal(t, "run-1", rec.Finish(t).RunID)
}

func TestResumeInApplyNeedsNoApproval(t *testing.T) {
	env, rec := newEnv(t)
	mockApply(env, rec, applied)

	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1",
		Resume: &ResumeState{Phase: syncrun.PhaseApply, Counts: withFetched(halfway, 1000), Approved: true}})

	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, []string{"Apply", "FinishRun:succeeded"}, rec.Calls())
	var counts syncrun.RunCounts
	require.NoError(t, env.GetWorkflowResult(&counts))
	assert.Equal(t, withFetched(applied, 1000), counts)
}

func TestFailureMessage(t *testing.T) {
	assert.Equal(t, "bad row 7: email", FailureMessage(temporal.NewNonRetryableApplicationError("bad row 7: email", "InvalidData", errors.New("x"))))
	assert.Equal(t, "plain", FailureMessage(errors.New("plain")))
	assert.Equal(t, "24h", shortDuration(24*time.Hour))
	assert.Equal(t, "1h30m", shortDuration(90*time.Minute))
	assert.Equal(t, "30s", shortDuration(30*time.Second))
	assert.Equal(t, "usersync-profile-p1", WorkflowID("p1"))
}

func TestResumeInUnknownPhaseFails(t *testing.T) {
	env, rec := newEnv(t)
	env.ExecuteWorkflow(SyncProfile, SyncInput{RunID: "run-1", ProfileID: "p1", Resume: &ResumeState{Phase: "done"}})
	require.Error(t, env.GetWorkflowError())
	assert.Equal(t, syncrun.RunFailed, rec.Finish(t).Status)
}
