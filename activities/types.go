package activities

import (
	"time"

	"github.com/usersync/usersync/directory"
)

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
	Counts directory.RunCounts
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
	Counts directory.RunCounts
}

// FinishInput ends a run with a final status.
type FinishInput struct {
	RunID  string
	Status string // succeeded | failed | cancelled | blocked | skipped
	Error  string
}
