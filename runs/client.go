// Package runs is the Temporal side of the API and the service: it starts,
// cancels, approves and watches sync runs, keeps each profile's Temporal
// schedule in line with the store, and reconciles a run row with a
// workflow that ended without recording its end. It talks to the Temporal
// server and the store, so it lives apart from the deterministic workflow
// code in package workflows.
package runs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/workflows"
)

var (
	// ErrRunning is a start refused because the profile has a run going;
	// the error is a *RunningError that names it.
	ErrRunning = errors.New("a run of this profile is already running")
	// ErrNotRunning is a cancel, approval or progress query of a run that
	// has ended (another run of the profile may be the current one).
	ErrNotRunning error = &stateError{"the run is not running"}
	// ErrNotAwaitingApproval is an approval of a run that is not holding
	// for one.
	ErrNotAwaitingApproval error = &stateError{"the run is not awaiting approval"}
)

// stateError is a request that the run's state refuses: the API answers
// it with 409 (it looks for the Conflict method, not for this package).
type stateError struct{ msg string }

func (e *stateError) Error() string { return e.msg }

// Conflict marks the error as a conflict with the run's current state.
func (e *stateError) Conflict() bool { return true }

// RunningError is ErrRunning with the id of the run that is running, so
// the API can answer 409 with it.
type RunningError struct{ RunID string }

func (e *RunningError) Error() string {
	if e.RunID == "" {
		return ErrRunning.Error()
	}
	return ErrRunning.Error() + ": run " + e.RunID
}

// RunningRunID is the running run's id (the api's RunInProgress).
func (e *RunningError) RunningRunID() string { return e.RunID }

// Is makes errors.Is(err, ErrRunning) true.
func (e *RunningError) Is(target error) bool { return target == ErrRunning }

// Client is the Temporal side of the API: it starts, cancels, approves and
// queries runs, and records the run row a start creates.
type Client struct {
	Temporal  client.Client
	TaskQueue string
	Namespace string // for UI links; the Temporal client is bound to it already
	UIBaseURL string // e.g. http://localhost:8233; "" = no links
	Store     directory.Store
	// Attrs says whether runs may carry the search attributes ProfileName
	// and Provider; nil means they are registered (a test's dev server).
	// Without them a start carrying them would be refused.
	Attrs *SearchAttributes
}

// startOptions are the options of every workflow that runs under the
// profile's workflow id (a sync, a revert): at most one at a time.
func (c *Client) startOptions(ctx context.Context, p *directory.Profile) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        workflows.WorkflowID(p.ID),
		TaskQueue: c.TaskQueue,
		// FAIL (not USE_EXISTING) so a second start is told, with the
		// running run, instead of silently joining it.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// Without it the SDK hands back the running execution as if it
		// had just started, and we would record a run that never runs.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    c.Attrs.For(ctx, p),
	}
}

// execute starts workflow under the profile's workflow id. A run of the
// profile still going is a *RunningError. A run records its end just
// before its workflow closes: a start in between (a retry clicked as soon
// as the run shows failed) would be refused with a run that has ended, so
// execute waits out that moment.
func (c *Client) execute(ctx context.Context, p *directory.Profile, opts client.StartWorkflowOptions, workflow string, in any) (client.WorkflowRun, error) {
	we, err := c.Temporal.ExecuteWorkflow(ctx, opts, workflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	for wait := closingWait; errors.As(err, &started) && wait > 0 && c.lastRunEnded(ctx, p.ID); wait -= closingPoll {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(closingPoll):
		}
		we, err = c.Temporal.ExecuteWorkflow(ctx, opts, workflow, in)
	}
	if errors.As(err, &started) {
		return nil, &RunningError{RunID: c.runningRunID(ctx, p.ID, started.RunId)}
	}
	return we, err
}

// Start starts a run of the profile and records it. A profile whose run is
// still going gets a *RunningError (errors.Is ErrRunning).
func (c *Client) Start(ctx context.Context, p *directory.Profile, trigger string, dryRun bool) (*directory.Run, error) {
	// The run id is ours, not Temporal's, so the row exists under one id
	// across continue-as-new and whoever (API or StartRun) records it first.
	runID := uuid.NewString()
	opts := c.startOptions(ctx, p)
	opts.StaticSummary = workflows.RunSummary(p.Name, p.Provider, trigger, dryRun)
	opts.StaticDetails = workflows.RunDetails(p.Name, p.ID, p.Provider, trigger, runID, dryRun)
	in := workflows.SyncInput{RunID: runID, ProfileID: p.ID, Trigger: trigger, DryRun: dryRun}
	we, err := c.execute(ctx, p, opts, workflows.WorkflowName, in)
	if err != nil {
		var running *RunningError
		if errors.As(err, &running) {
			return nil, err
		}
		return nil, fmt.Errorf("start sync of profile %q: %w", p.Name, err)
	}
	run := &directory.Run{
		ID:            runID,
		ProfileID:     p.ID,
		ProfileName:   p.Name,
		Provider:      p.Provider,
		DirectoryKey:  p.DirectoryKey,
		Trigger:       trigger,
		DryRun:        dryRun,
		Status:        directory.RunRunning,
		Phase:         directory.PhaseFetch,
		WorkflowID:    we.GetID(),
		TemporalRunID: we.GetRunID(),
		// StartedAt zero: the store's clock sets it.
	}
	if err := c.Store.CreateRun(ctx, run); err != nil {
		// The run is going: failing the request would invite a retry that
		// the workflow id refuses. StartRun records the same row (same id)
		// as its first step, so the row still appears.
		slog.WarnContext(ctx, "record started run; the workflow records it too", "runId", runID, "profileId", p.ID, "error", err)
	}
	return run, nil
}

// How long Start waits for the workflow of a run that has recorded its end
// to close, and how often it tries again meanwhile.
const (
	closingWait = 3 * time.Second
	closingPoll = 100 * time.Millisecond
)

// lastRunEnded reports whether every run row of the profile is final.
func (c *Client) lastRunEnded(ctx context.Context, profileID string) bool {
	_, err := c.Store.OpenRun(ctx, profileID)
	return errors.Is(err, directory.ErrNotFound)
}

// runningRunID finds our id of the run a refused start collided with: the
// profile's open run row, else (a run started by a schedule
// whose StartRun has not recorded it yet) the workflow's own answer, else
// Temporal's run id, which is our id for runs started without one.
func (c *Client) runningRunID(ctx context.Context, profileID, temporalRunID string) string {
	if open, err := c.Store.OpenRun(ctx, profileID); err == nil {
		return open.ID
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if p, err := c.query(qctx, workflows.WorkflowID(profileID)); err == nil && p.RunID != "" {
		return p.RunID
	}
	return temporalRunID
}

// Cancel asks the run to stop. The workflow cancels the step in flight,
// waits for it to stop, and records the run as cancelled.
func (c *Client) Cancel(ctx context.Context, run *directory.Run) error {
	wid, err := c.current(ctx, run)
	if err != nil {
		return err
	}
	// "" targets the current execution: continue-as-new changes run ids.
	if err := c.Temporal.CancelWorkflow(ctx, wid, ""); err != nil {
		return fmt.Errorf("cancel run %s: %w", run.ID, err)
	}
	return nil
}

// Approve lets a run held by the accidental-delete guard apply.
func (c *Client) Approve(ctx context.Context, run *directory.Run) error {
	if run.Status != directory.RunAwaitingApproval {
		return fmt.Errorf("approve run %s (status %s): %w", run.ID, run.Status, ErrNotAwaitingApproval)
	}
	wid, err := c.current(ctx, run)
	if err != nil {
		return err
	}
	if err := c.Temporal.SignalWorkflow(ctx, wid, "", workflows.SignalApprove, nil); err != nil {
		return fmt.Errorf("approve run %s: %w", run.ID, err)
	}
	return nil
}

// Progress is the live state of a running run, from the workflow itself.
func (c *Client) Progress(ctx context.Context, run *directory.Run) (*workflows.Progress, error) {
	p, err := c.query(ctx, workflowIDOf(run))
	if err != nil {
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return nil, fmt.Errorf("progress of run %s: %w", run.ID, ErrNotRunning)
		}
		return nil, fmt.Errorf("progress of run %s: %w", run.ID, err)
	}
	if p.RunID != run.ID {
		// The profile's current workflow is another, later run.
		return nil, fmt.Errorf("progress of run %s: %w", run.ID, ErrNotRunning)
	}
	return p, nil
}

func (c *Client) query(ctx context.Context, workflowID string) (*workflows.Progress, error) {
	v, err := c.Temporal.QueryWorkflow(ctx, workflowID, "", workflows.QueryProgress)
	if err != nil {
		return nil, err
	}
	var p workflows.Progress
	if err := v.Get(&p); err != nil {
		return nil, fmt.Errorf("decode progress: %w", err)
	}
	return &p, nil
}

// current returns the workflow id of a run after checking that the run is
// the profile's current, open execution chain. Cancel and approve address
// the current execution (run id ""), so without this check an old run's
// cancel button would stop a newer run of the same profile.
func (c *Client) current(ctx context.Context, run *directory.Run) (string, error) {
	if directory.IsFinalRunStatus(run.Status) {
		return "", fmt.Errorf("run %s (status %s): %w", run.ID, run.Status, ErrNotRunning)
	}
	wid := workflowIDOf(run)
	desc, err := describe(ctx, c.Temporal, wid)
	if err != nil {
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return "", fmt.Errorf("run %s: %w", run.ID, ErrNotRunning)
		}
		return "", fmt.Errorf("describe run %s: %w", run.ID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return "", fmt.Errorf("run %s: %w", run.ID, ErrNotRunning)
	}
	// The chain's first run id is the Temporal run id recorded with the
	// run (by Start, or by StartRun, which runs in the first execution).
	first := info.GetFirstRunId()
	if first == "" {
		first = info.GetExecution().GetRunId()
	}
	if run.TemporalRunID != "" && first != run.TemporalRunID {
		return "", fmt.Errorf("run %s: another run of the profile is the current one: %w", run.ID, ErrNotRunning)
	}
	return wid, nil
}

// describe is the server's description of the workflow's current
// execution (DescribeWorkflowExecution, which the SDK deprecates for this).
func describe(ctx context.Context, c client.Client, workflowID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	d, err := c.DescribeWorkflow(ctx, workflowID, "")
	if err != nil {
		return nil, err
	}
	return d.RawResponse, nil
}

func workflowIDOf(run *directory.Run) string {
	if run.WorkflowID != "" {
		return run.WorkflowID
	}
	return workflows.WorkflowID(run.ProfileID)
}

// UIURL links the run's history in the Temporal Web UI ("" without a UI).
func (c *Client) UIURL(run *directory.Run) string {
	if c.UIBaseURL == "" {
		return ""
	}
	ns := c.Namespace
	if ns == "" {
		ns = "default"
	}
	u := strings.TrimRight(c.UIBaseURL, "/") + "/namespaces/" + url.PathEscape(ns) +
		"/workflows/" + url.PathEscape(workflowIDOf(run))
	if run.TemporalRunID != "" {
		u += "/" + url.PathEscape(run.TemporalRunID) + "/history"
	}
	return u
}
