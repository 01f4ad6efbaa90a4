package syncrun

import "time"

// Step names: the activity names the worker registers the steps under and
// the workflows call them by. They are in every recorded history: never
// rename one.
const (
	StepStartRun  = "StartRun"
	StepFetch     = "Fetch"
	StepPlan      = "Plan"
	StepSetStatus = "SetStatus"
	StepApply     = "Apply"
	StepFinishRun = "FinishRun"
	// The steps of a scheduled tick.
	StepCheckScheduledRun = "CheckScheduledRun"
	StepRecordSkippedRun  = "RecordSkippedRun"
)

// DefaultProviderRetryBudget is how long a step retries a provider that
// keeps failing (5xx, unreachable, throttled) before the run fails: long
// enough to ride out an outage or a deploy of the provider, short enough
// that a provider gone for good ends the run, with the provider's error,
// rather than holding the profile's runs for ever.
const DefaultProviderRetryBudget = time.Hour

// Activity inputs and results. They carry ids, cursors and counts only:
// user data never travels through Temporal history.

// StartRunInput records the run and fixes what it reads.
type StartRunInput struct {
	RunID         string
	ProfileID     string
	Trigger       string // manual | schedule | api | retry
	DryRun        bool
	WorkflowID    string
	TemporalRunID string
	// ProviderRetryBudget bounds the retries of a provider that keeps
	// failing (the download of a remote CSV); 0 = DefaultProviderRetryBudget.
	ProviderRetryBudget time.Duration
}

// StartRunResult describes the run for the workflow's summary.
type StartRunResult struct {
	ProfileName string
	Provider    string
	// Skip is non-empty when the run must end at once as `skipped`
	// (profile disabled, no group selected, …); it says why.
	Skip string
}

// FetchInput fetches the next stretch of pages of a run.
type FetchInput struct {
	RunID string
	// ProviderRetryBudget is StartRunInput's, for the provider's pages.
	ProviderRetryBudget time.Duration
}

// FetchResult says how far the fetch got; Fetched is the total staged so far.
type FetchResult struct {
	Done    bool
	Fetched int
}

// PlanInput plans a fully fetched run.
type PlanInput struct {
	RunID string
}

// PlanResult is the plan's counts and the accidental-delete guard verdict.
type PlanResult struct {
	Counts RunCounts
	// Guard is non-empty when the guard tripped: it says which limit, with
	// the numbers. The run then waits for approval.
	Guard string
}

// SetStatusInput records a status change of a run (awaiting_approval, running).
type SetStatusInput struct {
	RunID   string
	Status  string
	Phase   string
	Message string
}

// ApplyInput applies the next stretch of batches of a planned run.
type ApplyInput struct {
	RunID string
}

// ApplyResult says how far apply got; Counts are the run's totals so far.
type ApplyResult struct {
	Done   bool
	Counts RunCounts
}

// FinishInput ends a run with a final status.
type FinishInput struct {
	RunID  string
	Status string // succeeded | failed | cancelled | blocked | skipped
	Error  string
}

// ScheduledCheckInput asks about the profile of a scheduled tick.
type ScheduledCheckInput struct {
	ProfileID string
	// ScheduledAt is the tick's slot; manual runs finished after it do
	// not count against it.
	ScheduledAt time.Time
}

// ScheduledCheck is what a scheduled tick decides on. The workflow applies
// the daily rule itself, on the schedule's time, so the rule is replayed
// exactly and tested with a controlled clock.
type ScheduledCheck struct {
	// Found is false when the profile no longer exists: its schedule is
	// being deleted with it, and the tick does nothing.
	Found       bool
	ProfileName string
	Provider    string
	// Frequency is the profile's schedule frequency as saved now.
	Frequency string
	// LastManualRunID and LastManualAt are the newest successful run a
	// person or a script started (see directory.Store.LastManualSuccess)
	// that finished by ScheduledAt and after the newest "reset last run
	// time"; LastManualRunID is "" when there is none.
	LastManualRunID string
	LastManualAt    time.Time
}

// SkippedRunInput records a scheduled tick that did not run.
type SkippedRunInput struct {
	RunID     string
	ProfileID string
	Reason    string
	// Busy says the tick found a run of the profile going; the record
	// then names that run.
	Busy bool
	// WorkflowID and TemporalRunID are the tick's own execution, where
	// the Temporal UI shows why it did not run.
	WorkflowID    string
	TemporalRunID string
}
