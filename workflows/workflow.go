// Package workflows holds the deterministic side of a sync run: the
// SyncProfile workflow that drives fetch → plan → apply through activities,
// and the ScheduledSync tick a profile's schedule starts. Nothing else
// belongs here: the client that starts and watches runs is package runs,
// the steps' names and types are package syncrun, and `make lint` runs
// workflowcheck over this package. The steps are called by name
// (syncrun.Step…): the worker registers the activities under the same
// constants (worker.Steps, whose tests check every one is there).
//
// The workflow only orders steps and keeps ids and counts: every read and
// write of the directory happens in an activity, and the activities keep
// their cursors in the database. That is what lets a run survive a crash,
// and lets continue-as-new carry nothing but the phase and the counts.
package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/syncrun"
)

// Search attributes every run carries, so the Temporal UI can list the runs
// of one profile or provider.
var (
	ProfileNameKey = temporal.NewSearchAttributeKeyKeyword("ProfileName")
	ProviderKey    = temporal.NewSearchAttributeKeyKeyword("Provider")
)

// Names other processes rely on: the API queries, signals and starts the
// workflow by them, so they are part of the wire contract.
const (
	WorkflowName  = "SyncProfile"
	QueryProgress = "progress"
	SignalApprove = "approve"
)

// Changes of the workflow's commands or of its steps' options, each
// guarded by workflow.GetVersion under its change id, so that a run a
// previous release recorded replays as it ran (see "Changing a workflow"
// in CONTRIBUTING.md). Never reuse or renumber one.
const (
	// changeStepHeartbeats: StartRun, Plan and FinishRun, which grow with
	// the tenant, heartbeat under the run's heartbeat timeout with a
	// ceiling of growingStepTimeout (version 1), instead of a bare
	// 5-minute StartToClose that a large tenant outgrows and then retries
	// for ever (DefaultVersion).
	changeStepHeartbeats = "step-heartbeats"
)

// growingStepTimeout is the StartToClose of one attempt of a step that is
// a single transaction over the whole run (Plan, FinishRun): 35 s at a
// million users on 2 cores, so this is room for a far larger tenant on a
// far slower database. The heartbeat, not this, is what notices a worker
// that died.
const growingStepTimeout = 4 * time.Hour

// Defaults of Options.
const (
	DefaultHeartbeatTimeout   = 30 * time.Second
	DefaultApprovalTimeout    = 24 * time.Hour
	DefaultContinueAsNewAfter = 500
)

// Error types of the failures a run ends with. They are non-retryable: the
// activities already retried what could be retried.
const (
	ErrTypeBlocked = "Blocked"
)

// NonRetryableErrorTypes are the ApplicationError types an activity returns
// for a failure no retry can fix (bad data, credentials, consent, licence,
// configuration); anything else is retried with backoff forever, since a
// provider outage must not fail a long run.
var NonRetryableErrorTypes = []string{"InvalidData", "Auth", "Permission", "Licence", "Config"}

// WorkflowID is the workflow id of a profile's runs. Deriving it from the
// profile makes Temporal refuse a second concurrent run of the same profile.
func WorkflowID(profileID string) string { return "usersync-profile-" + profileID }

// SyncInput is the single input of SyncProfile.
type SyncInput struct {
	// RunID is the id of the run row; the starter (the API) sets it to the
	// id it recorded. When "" (a start from the Temporal UI or CLI, or a
	// schedule) the first execution's Temporal run id is used and passed on.
	RunID     string
	ProfileID string
	Trigger   string // manual | schedule | api | retry
	DryRun    bool
	Options   Options
	// Resume is set only by continue-as-new.
	Resume *ResumeState
}

// Options tune a run; the zero value means the defaults. Tests shorten them.
type Options struct {
	HeartbeatTimeout time.Duration // default 30s; every step but SetStatus
	ApprovalTimeout  time.Duration // default 24h: unapproved → blocked
	// ContinueAsNewAfter is the number of activity calls per execution
	// after which the run continues as new (default 500). The server's
	// suggestion to continue as new is honoured too.
	ContinueAsNewAfter int
	// ProviderRetryBudget is how long a step retries a provider that keeps
	// failing before the run fails with the provider's error (default
	// syncrun.DefaultProviderRetryBudget, an hour). Database and worker
	// failures are retried without a bound, as before.
	ProviderRetryBudget time.Duration
}

func (o Options) withDefaults() Options {
	if o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if o.ApprovalTimeout <= 0 {
		o.ApprovalTimeout = DefaultApprovalTimeout
	}
	if o.ContinueAsNewAfter <= 0 {
		o.ContinueAsNewAfter = DefaultContinueAsNewAfter
	}
	if o.ProviderRetryBudget <= 0 {
		o.ProviderRetryBudget = syncrun.DefaultProviderRetryBudget
	}
	return o
}

// ResumeState is what a run carries over continue-as-new. The cursors are
// in the database, so the phase is enough to know which loop to continue.
type ResumeState struct {
	Phase       string
	Counts      syncrun.RunCounts
	Approved    bool
	ProfileName string
	Provider    string
}

// Progress answers the progress query: the live state of a run.
type Progress struct {
	RunID  string
	Status string
	Phase  string
	Counts syncrun.RunCounts
	// Guard is the accidental-delete guard's verdict when it tripped.
	Guard string
}

// run is the state of one execution of SyncProfile.
type run struct {
	in       SyncInput
	opts     Options
	progress Progress
	approved bool
	profile  string // profile name, for current details
	provider string
	calls    int // activity calls in this execution, for continue-as-new
}

// SyncProfile is one sync run of a profile: fetch → plan → (approval) →
// apply. It returns the run's counts; the run row in the database follows
// the workflow whatever ends it.
func SyncProfile(ctx workflow.Context, in SyncInput) (syncrun.RunCounts, error) {
	return runWorkflow(ctx, in, syncrun.PhaseFetch, (*run).execute)
}

// runWorkflow is what a sync and a revert share around their steps: the
// run id, the progress query, and the end (continue-as-new passes
// through; any other error is recorded by FinishRun).
func runWorkflow(ctx workflow.Context, in SyncInput, phase string, steps func(*run, workflow.Context) (syncrun.RunCounts, error)) (syncrun.RunCounts, error) {
	r := &run{in: in, opts: in.Options.withDefaults()}
	if r.in.RunID == "" {
		r.in.RunID = workflow.GetInfo(ctx).WorkflowExecution.RunID
	}
	r.progress = Progress{RunID: r.in.RunID, Status: syncrun.RunRunning, Phase: phase}
	// The query handler goes first so the API can read progress from the
	// first workflow task on, even while StartRun is still retrying.
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) {
		return r.progress, nil
	}); err != nil {
		return syncrun.RunCounts{}, fmt.Errorf("register progress query: %w", err)
	}
	counts, err := steps(r, ctx)
	if err == nil {
		return counts, nil
	}
	var can *workflow.ContinueAsNewError
	if errors.As(err, &can) {
		return counts, err
	}
	return counts, r.fail(ctx, err)
}

func (r *run) execute(ctx workflow.Context) (syncrun.RunCounts, error) {
	if res := r.in.Resume; res != nil {
		switch res.Phase {
		case syncrun.PhaseFetch, syncrun.PhasePlan, syncrun.PhaseApply:
		default:
			// Otherwise the run would "succeed" without doing anything.
			return r.progress.Counts, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("cannot resume a run in phase %q", res.Phase), "Config", nil)
		}
		r.progress.Phase = res.Phase
		r.progress.Counts = res.Counts
		r.approved = res.Approved
		r.profile, r.provider = res.ProfileName, res.Provider
	} else {
		info := workflow.GetInfo(ctx)
		var started syncrun.StartRunResult
		err := workflow.ExecuteActivity(r.growing(ctx, "start run"), syncrun.StepStartRun, syncrun.StartRunInput{
			RunID:               r.in.RunID,
			ProfileID:           r.in.ProfileID,
			Trigger:             r.in.Trigger,
			DryRun:              r.in.DryRun,
			WorkflowID:          info.WorkflowExecution.ID,
			TemporalRunID:       info.WorkflowExecution.RunID,
			ProviderRetryBudget: r.opts.ProviderRetryBudget,
		}).Get(ctx, &started)
		r.calls++
		if err != nil {
			return r.progress.Counts, err
		}
		r.profile, r.provider = started.ProfileName, started.Provider
		if started.Skip != "" {
			return r.progress.Counts, r.finish(ctx, syncrun.RunSkipped, started.Skip)
		}
		r.details(ctx)
	}

	if r.progress.Phase == syncrun.PhaseFetch {
		for {
			var res syncrun.FetchResult
			err := workflow.ExecuteActivity(r.long(ctx, "fetch pages"), syncrun.StepFetch,
				syncrun.FetchInput{RunID: r.in.RunID, ProviderRetryBudget: r.opts.ProviderRetryBudget}).Get(ctx, &res)
			r.calls++
			if err != nil {
				return r.progress.Counts, err
			}
			r.progress.Counts.Fetched = res.Fetched
			r.details(ctx)
			if res.Done {
				break
			}
			if err := r.maybeContinueAsNew(ctx); err != nil {
				return r.progress.Counts, err
			}
		}
		r.progress.Phase = syncrun.PhasePlan
	}

	if r.progress.Phase == syncrun.PhasePlan {
		var plan syncrun.PlanResult
		err := workflow.ExecuteActivity(r.growing(ctx, "plan changes"), syncrun.StepPlan,
			syncrun.PlanInput{RunID: r.in.RunID}).Get(ctx, &plan)
		r.calls++
		if err != nil {
			return r.progress.Counts, err
		}
		r.setCounts(plan.Counts)
		r.progress.Guard = plan.Guard
		r.details(ctx)
		if r.in.DryRun {
			return r.progress.Counts, r.finish(ctx, syncrun.RunSucceeded, "")
		}
		if plan.Guard != "" && !r.approved {
			if err := r.awaitApproval(ctx, plan.Guard); err != nil {
				return r.progress.Counts, err
			}
		}
		r.progress.Phase = syncrun.PhaseApply
	}

	if r.progress.Phase == syncrun.PhaseApply {
		for {
			var res syncrun.ApplyResult
			err := workflow.ExecuteActivity(r.long(ctx, "apply batch"), syncrun.StepApply,
				syncrun.ApplyInput{RunID: r.in.RunID}).Get(ctx, &res)
			r.calls++
			if err != nil {
				return r.progress.Counts, err
			}
			r.setCounts(res.Counts)
			r.details(ctx)
			if res.Done {
				break
			}
			if err := r.maybeContinueAsNew(ctx); err != nil {
				return r.progress.Counts, err
			}
		}
	}
	return r.progress.Counts, r.finish(ctx, syncrun.RunSucceeded, "")
}

// setCounts takes counts from the database (plan or apply) but keeps
// Fetched, which only the fetch knows.
func (r *run) setCounts(c syncrun.RunCounts) {
	c.Fetched = r.progress.Counts.Fetched
	r.progress.Counts = c
}

// awaitApproval holds the run until an operator approves it, it is
// cancelled, or the approval timeout passes (then it ends blocked).
func (r *run) awaitApproval(ctx workflow.Context, guard string) error {
	approve := workflow.GetSignalChannel(ctx, SignalApprove)
	// An approval sent before the guard tripped did not see this guard:
	// drop it. This happens before the status is recorded, so an operator
	// who saw awaiting_approval cannot lose a click to it.
	for approve.ReceiveAsync(nil) {
	}
	r.progress.Status = syncrun.RunAwaitingApproval
	r.details(ctx)
	if err := r.setStatus(ctx, syncrun.RunAwaitingApproval, syncrun.PhasePlan, guard); err != nil {
		return err
	}

	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimerWithOptions(timerCtx, r.opts.ApprovalTimeout,
		workflow.TimerOptions{Summary: "approval timeout"})
	var timedOut bool
	var timerErr error
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(approve, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		r.approved = true
	})
	sel.AddFuture(timer, func(f workflow.Future) {
		timerErr = f.Get(ctx, nil)
		timedOut = timerErr == nil
	})
	sel.Select(ctx)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case timerErr != nil:
		return timerErr
	case timedOut:
		msg := "not approved within " + shortDuration(r.opts.ApprovalTimeout) + ": " + guard
		if err := r.finish(ctx, syncrun.RunBlocked, msg); err != nil {
			return err
		}
		// Failing the execution puts the guard and its numbers in the
		// Temporal UI's failure message, where an operator looks first.
		return &finished{temporal.NewNonRetryableApplicationError(msg, ErrTypeBlocked, nil)}
	}
	r.progress.Status = syncrun.RunRunning
	r.progress.Phase = syncrun.PhaseApply
	r.details(ctx)
	return r.setStatus(ctx, syncrun.RunRunning, syncrun.PhaseApply, "")
}

func (r *run) setStatus(ctx workflow.Context, status, phase, msg string) error {
	err := workflow.ExecuteActivity(r.short(ctx, "record status "+status), syncrun.StepSetStatus,
		syncrun.SetStatusInput{RunID: r.in.RunID, Status: status, Phase: phase, Message: msg}).Get(ctx, nil)
	r.calls++
	return err
}

// maybeContinueAsNew keeps the history bounded on a large tenant. It is
// called between two calls of a paging activity, where the database holds
// the cursor and the phase is all the next execution needs.
func (r *run) maybeContinueAsNew(ctx workflow.Context) error {
	if ctx.Err() != nil {
		// The last call finished after a cancel: end here, not in a new
		// execution that would not know about the cancel.
		return ctx.Err()
	}
	if r.calls < r.opts.ContinueAsNewAfter && !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		return nil
	}
	next := r.in
	next.Resume = &ResumeState{
		Phase:       r.progress.Phase,
		Counts:      r.progress.Counts,
		Approved:    r.approved,
		ProfileName: r.profile,
		Provider:    r.provider,
	}
	workflow.GetLogger(ctx).Info("continuing as new", "runId", r.in.RunID, "phase", r.progress.Phase, "activityCalls", r.calls)
	return workflow.NewContinueAsNewError(ctx, WorkflowName, next)
}

// finish records the final status. It runs on a disconnected context: it
// records what already happened, so a cancel arriving now must not stop it
// (nor turn a finished apply into a "cancelled" run). Its error is the
// run's error: if even FinishRun fails, the execution must say so.
func (r *run) finish(ctx workflow.Context, status, msg string) error {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		// Bounded, unlike the other steps: a FinishRun that can never
		// succeed would otherwise hold the profile's workflow id, and with
		// it every later run of the profile, for ever.
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy:            retryPolicy(),
		Summary:                "finish run: " + status,
	}
	if r.heartbeats(dctx) {
		opts.StartToCloseTimeout, opts.HeartbeatTimeout = growingStepTimeout, r.opts.HeartbeatTimeout
	}
	dctx = workflow.WithActivityOptions(dctx, opts)
	err := workflow.ExecuteActivity(dctx, syncrun.StepFinishRun,
		syncrun.FinishInput{RunID: r.in.RunID, Status: status, Error: msg}).Get(dctx, nil)
	r.calls++
	if err != nil {
		return err
	}
	r.progress.Status = r.finalStatus(status)
	r.progress.Phase = syncrun.PhaseDone
	r.details(ctx)
	return nil
}

// finalStatus is the status FinishRun records for the one the workflow
// asked for: a run that applied but had the licence refuse someone ends
// partial (activities' FinishRun decides the same from the same counts),
// so the Temporal UI, the progress query and the API agree. Only what the
// workflow shows changes, not the commands it issues.
func (r *run) finalStatus(status string) string {
	if status == syncrun.RunSucceeded && !r.in.DryRun && r.progress.Counts.LicenceRefused > 0 {
		return syncrun.RunPartial
	}
	return status
}

// finished marks an error whose run row already has its final status.
type finished struct{ err error }

func (f *finished) Error() string { return f.err.Error() }
func (f *finished) Unwrap() error { return f.err }

// fail records a failed or cancelled run and returns what the execution
// ends with.
func (r *run) fail(ctx workflow.Context, err error) error {
	var done *finished
	if errors.As(err, &done) {
		return done.err
	}
	cancelled := ctx.Err() != nil
	status, msg := syncrun.RunFailed, FailureMessage(err)
	if cancelled {
		status, msg = syncrun.RunCancelled, "cancelled"
	}
	if ferr := r.finish(ctx, status, msg); ferr != nil {
		workflow.GetLogger(ctx).Error("record the end of the run", "runId", r.in.RunID, "status", status, "error", ferr)
		r.progress.Status, r.progress.Phase = status, syncrun.PhaseDone
	}
	if cancelled {
		// ctx.Err() is a CanceledError: the execution then shows Cancelled.
		return ctx.Err()
	}
	// A fresh error with the clean message on top, and the activity
	// failure as its cause: the Temporal UI shows the message first.
	errType := "SyncFailed"
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() != "" {
		errType = appErr.Type()
	}
	return temporal.NewNonRetryableApplicationError(msg, errType, err)
}

// FailureMessage is what a run's error says: the activity's own message
// (which says what to fix), not the chain of wrappers Temporal adds.
func FailureMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Message() != "" {
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		step := "a step"
		var actErr *temporal.ActivityError
		if errors.As(err, &actErr) && actErr.ActivityType() != nil {
			step = actErr.ActivityType().GetName()
		}
		return fmt.Sprintf("%s timed out (%s); is a worker running?", step, strings.ToLower(
			strings.TrimPrefix(timeoutErr.TimeoutType().String(), "TIMEOUT_TYPE_")))
	}
	return err.Error()
}

// details sets the one markdown line the Temporal UI shows for the run
// right now: phase (or final status) and the counts that matter.
func (r *run) details(ctx workflow.Context) {
	c := r.progress.Counts
	head := r.progress.Phase
	switch {
	case r.progress.Status == syncrun.RunAwaitingApproval:
		workflow.SetCurrentDetails(ctx, "**awaiting approval** · "+md(r.progress.Guard))
		return
	case r.progress.Status != syncrun.RunRunning:
		head = r.progress.Status
	}
	parts := []string{"**" + head + "**", fmt.Sprintf("%d fetched", c.Fetched)}
	for _, n := range []struct {
		label string
		v     int
	}{
		{"created", c.Created}, {"updated", c.Updated}, {"unchanged", c.Unchanged},
		{"disabled", c.Disabled}, {"re-enabled", c.Reenabled},
		{"skipped", c.Skipped}, {"conflicts", c.Conflicts},
		{"refused by the licence", c.LicenceRefused}, {"inactive", c.Inactive},
		{"departed", c.Departed}, {"restated", c.Restated},
	} {
		if n.v != 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n.v, n.label))
		}
	}
	workflow.SetCurrentDetails(ctx, strings.Join(parts, " · "))
}

// heartbeats tells whether this run gives its growing steps heartbeats
// (changeStepHeartbeats): false only for a run recorded before that.
func (r *run) heartbeats(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, changeStepHeartbeats, workflow.DefaultVersion, 1) >= 1
}

// growing is the options of the steps that do not page but grow with the
// tenant: StartRun (a remote CSV's copy) and Plan (one transaction over
// the run). They heartbeat (the activities keep a long statement alive),
// so a dead worker is noticed within the heartbeat timeout, however long
// the step may legitimately take. They wait for cancellation, like short.
func (r *run) growing(ctx workflow.Context, summary string) workflow.Context {
	if !r.heartbeats(ctx) {
		return r.short(ctx, summary)
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: growingStepTimeout,
		HeartbeatTimeout:    r.opts.HeartbeatTimeout,
		WaitForCancellation: true,
		RetryPolicy:         retryPolicy(),
		Summary:             summary,
	})
}

// short is the options of SetStatus, one row and one audit entry (and of
// StartRun and Plan in runs recorded before changeStepHeartbeats). It
// waits for cancellation too, so that no step still writes (a plan into
// the staging FinishRun clears) once the run is cancelled.
func (r *run) short(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		WaitForCancellation: true,
		RetryPolicy:         retryPolicy(),
		Summary:             summary,
	})
}

// long is the options of Fetch and Apply: each call works a bounded
// stretch and heartbeats, so a dead worker is noticed within the heartbeat
// timeout; WaitForCancellation lets a cancel wait until the activity has
// stopped writing before the run is marked cancelled.
func (r *run) long(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    r.opts.HeartbeatTimeout,
		WaitForCancellation: true,
		RetryPolicy:         retryPolicy(),
		Summary:             summary,
	})
}

func retryPolicy() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		MaximumAttempts:        0, // unlimited: an outage must not fail a long run
		NonRetryableErrorTypes: NonRetryableErrorTypes,
	}
}

// shortDuration prints 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
