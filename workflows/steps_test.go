package workflows

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"

	"github.com/usersync/usersync/syncrun"
)

var errNotMocked = errors.New("step not mocked by this test")

// registerSteps registers every step under its name with a body that
// fails, so that a step a test does not mock fails the test loudly, and
// the mocks (OnActivity by name) have a signature to match.
func registerSteps(env *testsuite.TestWorkflowEnvironment) {
	for name, fn := range map[string]any{
		syncrun.StepStartRun: func(context.Context, syncrun.StartRunInput) (syncrun.StartRunResult, error) {
			return syncrun.StartRunResult{}, errNotMocked
		},
		syncrun.StepFetch: func(context.Context, syncrun.FetchInput) (syncrun.FetchResult, error) {
			return syncrun.FetchResult{}, errNotMocked
		},
		syncrun.StepPlan: func(context.Context, syncrun.PlanInput) (syncrun.PlanResult, error) {
			return syncrun.PlanResult{}, errNotMocked
		},
		syncrun.StepSetStatus: func(context.Context, syncrun.SetStatusInput) error { return errNotMocked },
		syncrun.StepApply: func(context.Context, syncrun.ApplyInput) (syncrun.ApplyResult, error) {
			return syncrun.ApplyResult{}, errNotMocked
		},
		syncrun.StepFinishRun: func(context.Context, syncrun.FinishInput) error { return errNotMocked },
		syncrun.StepCheckScheduledRun: func(context.Context, syncrun.ScheduledCheckInput) (syncrun.ScheduledCheck, error) {
			return syncrun.ScheduledCheck{}, errNotMocked
		},
		syncrun.StepRecordSkippedRun: func(context.Context, syncrun.SkippedRunInput) error { return errNotMocked },
	} {
		env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
