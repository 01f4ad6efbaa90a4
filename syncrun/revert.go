package syncrun

// Reverting a run: the RevertRun workflow's steps, by the names the worker
// registers them under. They are in every recorded history of the
// workflow: never rename one. A revert also calls SetStatus and FinishRun,
// as a sync does.
const (
	StepStartRevert = "StartRevert"
	StepPlanRevert  = "PlanRevert"
	StepApplyRevert = "ApplyRevert"
)

// TriggerRevert is the trigger of a run that reverts another
// (directory.TriggerRevert).
const TriggerRevert = "revert"

// StartRevertInput records a revert run and checks the run it reverts.
type StartRevertInput struct {
	RunID         string
	ProfileID     string
	TargetRunID   string
	DryRun        bool
	WorkflowID    string
	TemporalRunID string
}

// PlanRevertInput plans a revert: the inverse of the target run's ledger,
// less what changed again since. Its result is a PlanResult, whose Guard
// is the accidental-delete guard's verdict on the users it would disable.
type PlanRevertInput struct {
	RunID string
}
