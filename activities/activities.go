// Package activities implements the steps of a sync run as Temporal
// activities: methods on one struct that holds the dependencies. Each is
// idempotent: the work of a step and the progress it records commit in one
// transaction, so a retry after a crash resumes and replays nothing twice.
package activities

import (
	"context"
	"errors"
)

// Activities holds what the steps need. (Fields filled in by the sync work.)
type Activities struct{}

var errTODO = errors.New("not implemented yet")

func (a *Activities) StartRun(ctx context.Context, in StartRunInput) (StartRunResult, error) {
	return StartRunResult{}, errTODO
}
func (a *Activities) Fetch(ctx context.Context, in FetchInput) (FetchResult, error) {
	return FetchResult{}, errTODO
}
func (a *Activities) Plan(ctx context.Context, in PlanInput) (PlanResult, error) {
	return PlanResult{}, errTODO
}
func (a *Activities) SetStatus(ctx context.Context, in SetStatusInput) error { return errTODO }
func (a *Activities) Apply(ctx context.Context, in ApplyInput) (ApplyResult, error) {
	return ApplyResult{}, errTODO
}
func (a *Activities) FinishRun(ctx context.Context, in FinishInput) error { return errTODO }
