package activities

import "github.com/usersync/usersync/syncrun"

// The steps' inputs and results live in syncrun, where the workflow code
// reads them without linking this package; these names keep the callers
// of the activities (tests, the bench, metrics) as they were.
type (
	StartRunInput       = syncrun.StartRunInput
	StartRunResult      = syncrun.StartRunResult
	FetchInput          = syncrun.FetchInput
	FetchResult         = syncrun.FetchResult
	PlanInput           = syncrun.PlanInput
	PlanResult          = syncrun.PlanResult
	SetStatusInput      = syncrun.SetStatusInput
	ApplyInput          = syncrun.ApplyInput
	ApplyResult         = syncrun.ApplyResult
	FinishInput         = syncrun.FinishInput
	ScheduledCheckInput = syncrun.ScheduledCheckInput
	ScheduledCheck      = syncrun.ScheduledCheck
	SkippedRunInput     = syncrun.SkippedRunInput
)

// DefaultProviderRetryBudget is syncrun's: how long a step retries a
// provider that keeps failing before the run fails.
const DefaultProviderRetryBudget = syncrun.DefaultProviderRetryBudget
