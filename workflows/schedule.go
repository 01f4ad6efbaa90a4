package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/syncrun"
)

// ScheduledWorkflowName is the workflow a profile's Temporal schedule
// starts on each tick. The schedule cannot start SyncProfile itself: it
// appends a timestamp to the workflow ids it starts, which would defeat the
// one-run-per-profile workflow id. ScheduledSync starts SyncProfile as a
// child under that id instead, and records a skipped run when it may not.
const ScheduledWorkflowName = "ScheduledSync"

// DailySkipWindow is how recent a manual success must be for a daily
// scheduled run to be skipped: the directory is already that fresh.
const DailySkipWindow = 24 * time.Hour

// scheduledStartTimeKey is set by the Temporal server on every workflow a
// schedule starts: the slot the tick belongs to, not when it happened to
// start, and part of the start event, hence the same on every replay.
var scheduledStartTimeKey = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// ScheduledInput is the input of ScheduledSync, fixed in the schedule's
// action (and rewritten whenever the profile is saved).
type ScheduledInput struct {
	ProfileID string
}

// ScheduledResult says what a tick did.
type ScheduledResult struct {
	// RunID is the run the tick started or recorded as skipped; "" when
	// the profile no longer exists.
	RunID string
	// Skipped says why the tick did not sync; "" when it started the run.
	Skipped string
	// SyncRunID is the Temporal run id of the SyncProfile it started.
	SyncRunID string
}

// ScheduledSync is one tick of a profile's schedule: it checks the daily
// rule, then starts the profile's SyncProfile run as an abandoned child
// under the profile's workflow id and ends once that run has started. A
// run already going, or a daily slot made redundant by a recent manual
// sync, ends the tick with a skipped run row that says why.
func ScheduledSync(ctx workflow.Context, in ScheduledInput) (ScheduledResult, error) {
	info := workflow.GetInfo(ctx)
	// The tick's own run id is the run's id: unique, and known before
	// anything is recorded, so a retried step records the same row.
	res := ScheduledResult{RunID: info.WorkflowExecution.RunID}
	at, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStartTimeKey)
	if !ok {
		// Started by hand (the Temporal UI or CLI): now is the slot.
		at = workflow.Now(ctx)
	}

	var check syncrun.ScheduledCheck
	err := workflow.ExecuteActivity(tickOptions(ctx, "check profile"), syncrun.StepCheckScheduledRun,
		syncrun.ScheduledCheckInput{ProfileID: in.ProfileID, ScheduledAt: at}).Get(ctx, &check)
	if err != nil {
		return res, err
	}
	if !check.Found {
		workflow.SetCurrentDetails(ctx, "**nothing to do** · the profile no longer exists")
		return ScheduledResult{}, nil
	}
	if reason := DailySkip(at, check); reason != "" {
		res.Skipped = reason
		return res, skip(ctx, in, res, false)
	}

	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: WorkflowID(in.ProfileID),
		// The tick ends as soon as the run has started; the run must go on.
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: runAttributes(ctx, check),
		StaticSummary:         RunSummary(check.ProfileName, check.Provider, syncrun.TriggerSchedule, false),
		StaticDetails:         RunDetails(check.ProfileName, in.ProfileID, check.Provider, syncrun.TriggerSchedule, res.RunID, false),
	})
	child := workflow.ExecuteChildWorkflow(cctx, WorkflowName, SyncInput{
		RunID:     res.RunID,
		ProfileID: in.ProfileID,
		Trigger:   syncrun.TriggerSchedule,
	})
	var started workflow.Execution
	if err := child.GetChildWorkflowExecution().Get(ctx, &started); err != nil {
		if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			res.Skipped = "a run of this profile was already running"
			return res, skip(ctx, in, res, true)
		}
		return res, fmt.Errorf("start the scheduled run: %w", err)
	}
	res.SyncRunID = started.RunID
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**started** run `%s` (workflow `%s`)", res.RunID, started.ID))
	return res, nil
}

// runAttributes are the search attributes of the run a tick starts: the
// profile's, when the tick itself carries usersync's. A schedule written
// for a namespace without them (Temporal Cloud before tcld added them)
// starts ticks without, and a child carrying them would be refused. The
// start event is part of the history, so replay decides the same.
func runAttributes(ctx workflow.Context, check syncrun.ScheduledCheck) temporal.SearchAttributes {
	if _, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(ProfileNameKey); !ok {
		return temporal.SearchAttributes{}
	}
	return temporal.NewSearchAttributes(
		ProfileNameKey.ValueSet(check.ProfileName),
		ProviderKey.ValueSet(check.Provider),
	)
}

// DailySkip is the daily rule: the reason a daily tick at slot must not
// sync, or "" when it must. A manual sync that succeeded within the
// DailySkipWindow before the slot (and after the newest "reset last run
// time", which the check already applied) makes it redundant.
func DailySkip(slot time.Time, c syncrun.ScheduledCheck) string {
	if c.Frequency != syncrun.FrequencyDaily || c.LastManualRunID == "" {
		return ""
	}
	if c.LastManualAt.After(slot) || slot.Sub(c.LastManualAt) >= DailySkipWindow {
		return ""
	}
	return fmt.Sprintf("a manual sync succeeded at %s (run %s), within the 24 hours before this scheduled run at %s",
		c.LastManualAt.UTC().Format(time.RFC3339), c.LastManualRunID, slot.UTC().Format(time.RFC3339))
}

// skip records the tick as a skipped run, for the reason in res.Skipped,
// and shows that reason in the Temporal UI.
func skip(ctx workflow.Context, in ScheduledInput, res ScheduledResult, busy bool) error {
	info := workflow.GetInfo(ctx)
	err := workflow.ExecuteActivity(tickOptions(ctx, "record skipped run"), syncrun.StepRecordSkippedRun,
		syncrun.SkippedRunInput{
			RunID:         res.RunID,
			ProfileID:     in.ProfileID,
			Reason:        res.Skipped,
			Busy:          busy,
			WorkflowID:    info.WorkflowExecution.ID,
			TemporalRunID: info.WorkflowExecution.RunID,
		}).Get(ctx, nil)
	if err != nil {
		return err
	}
	workflow.SetCurrentDetails(ctx, "**skipped** · "+md(res.Skipped))
	return nil
}

// tickOptions bound the tick's steps, unlike a run's: a tick stuck on an
// unreachable database holds the schedule (overlap SKIP), so after an hour
// it fails, visibly in the Temporal UI, and the next tick tries afresh.
func tickOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy:            retryPolicy(),
		Summary:                summary,
	})
}

// RunSummary and RunDetails are the static summary and details a run
// shows in the Temporal UI, whoever starts it (the API's client, or a
// tick). Names are escaped: whoever may edit a profile names it.
func RunSummary(profileName, provider, trigger string, dryRun bool) string {
	s := fmt.Sprintf("Sync %s (%s) — %s", md(profileName), md(provider), md(trigger))
	if dryRun {
		s += " (dry run)"
	}
	return s
}

func RunDetails(profileName, profileID, provider, trigger, runID string, dryRun bool) string {
	d := fmt.Sprintf("**Profile** %s (`%s`), provider %s\n\n**Trigger** %s · **Run** `%s`",
		md(profileName), codeSpan(profileID), md(provider), md(trigger), codeSpan(runID))
	if dryRun {
		d += "\n\nDry run: plans the changes and writes nothing."
	}
	return d
}

// TickSummary and TickDetails are the static summary and details of a
// profile's scheduled ticks (the schedule's action).
func TickSummary(profileName, provider string) string {
	return fmt.Sprintf("Scheduled tick of %s (%s)", md(profileName), md(provider))
}

func TickDetails(profileName, profileID string) string {
	return fmt.Sprintf("**Profile** %s (`%s`)\n\nStarts the profile's sync run as a child, "+
		"or records a skipped run when one is going or the daily rule applies.", md(profileName), codeSpan(profileID))
}
