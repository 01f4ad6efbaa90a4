package runs

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
)

// maxChainLength bounds the walk along a continue-as-new chain: a run
// continues as new every few hundred steps, so a real chain is far shorter.
const maxChainLength = 10000

// ReconcileRun brings a run row up to date with its workflow when the
// workflow ended without recording its end: terminated or timed out in
// the Temporal UI or CLI (no workflow code runs then), or its FinishRun
// gave up. A row still running or awaiting approval whose execution chain
// has closed gets the final status the close implies:
//
//	terminated → failed, "terminated in Temporal: <reason>"
//	timed out  → failed
//	failed     → failed, with the failure's message
//	cancelled  → cancelled
//	completed  → whatever FinishRun wrote (the row is read again)
//
// Any other row is returned as it is. The returned run is the row as it
// now stands.
func (c *Client) ReconcileRun(ctx context.Context, run *directory.Run) (*directory.Run, error) {
	if directory.IsFinalRunStatus(run.Status) || run.TemporalRunID == "" {
		// Without the chain's first run id the row cannot be tied to one
		// execution chain of the profile's workflow id.
		return run, nil
	}
	wid := workflowIDOf(run)
	desc, err := describe(ctx, c.Temporal, wid)
	switch {
	case err == nil:
		info := desc.GetWorkflowExecutionInfo()
		first := info.GetFirstRunId()
		if first == "" {
			first = info.GetExecution().GetRunId()
		}
		if first == run.TemporalRunID && info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return run, nil // the common case: still going
		}
	case !isNotFound(err):
		return run, fmt.Errorf("describe run %s: %w", run.ID, err)
	}

	status, msg, at, err := c.chainEnd(ctx, wid, run.TemporalRunID)
	if err != nil {
		return run, err
	}
	if status == "" {
		return run, nil // still open after all (a continue-as-new in between)
	}
	// FinishRun may have written since the row was read.
	fresh, err := c.Store.GetRun(ctx, run.ID)
	if err != nil {
		return run, fmt.Errorf("reconcile run %s: %w", run.ID, err)
	}
	if directory.IsFinalRunStatus(fresh.Status) || status == directory.RunSucceeded {
		return fresh, nil
	}
	if err := c.Store.SetRunStatus(ctx, run.ID, status, "", msg, at); err != nil {
		return fresh, fmt.Errorf("reconcile run %s: %w", run.ID, err)
	}
	if err := c.cleanUp(ctx, fresh, status, msg); err != nil {
		return fresh, fmt.Errorf("reconcile run %s: %w", run.ID, err)
	}
	return c.Store.GetRun(ctx, run.ID)
}

// chainEnd follows the execution chain that starts at firstRunID to its
// last execution and says how that closed: the run status it implies
// (succeeded for a completed chain), the message and the close time. An
// open chain gives status "". A chain Temporal no longer knows (closed
// past the namespace's retention, or a reset dev server) counts as failed.
func (c *Client) chainEnd(ctx context.Context, wid, firstRunID string) (status, msg string, at time.Time, err error) {
	runID := firstRunID
	for range maxChainLength {
		iter := c.Temporal.GetWorkflowHistory(ctx, wid, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
		if !iter.HasNext() {
			return "", "", time.Time{}, nil
		}
		ev, err := iter.Next()
		if isNotFound(err) {
			return directory.RunFailed, "its workflow no longer exists in Temporal (past retention, or the Temporal data was reset)",
				time.Now(), nil
		}
		if err != nil {
			return "", "", time.Time{}, fmt.Errorf("read the end of workflow %s run %s: %w", wid, runID, err)
		}
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			runID = ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
			continue
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			return directory.RunSucceeded, "", at, nil
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
			return directory.RunCancelled, "cancelled in Temporal", at, nil
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
			return directory.RunFailed, terminatedMessage(ev), at, nil
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
			return directory.RunFailed, "timed out in Temporal (the workflow's execution or run timeout passed)", at, nil
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
			m := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetMessage()
			if m == "" {
				m = "failed in Temporal"
			}
			return directory.RunFailed, m, at, nil
		default:
			return "", "", time.Time{}, fmt.Errorf("workflow %s run %s: unexpected close event %s", wid, runID, ev.GetEventType())
		}
	}
	return "", "", time.Time{}, fmt.Errorf("workflow %s: execution chain longer than %d", wid, maxChainLength)
}

func terminatedMessage(ev *historypb.HistoryEvent) string {
	if r := ev.GetWorkflowExecutionTerminatedEventAttributes().GetReason(); r != "" {
		return "terminated in Temporal: " + r
	}
	return "terminated in Temporal"
}

// cleanUp does what FinishRun would have: drop the run's staging, remove
// its copy of the source (a remote file), and write the closing audit entry.
func (c *Client) cleanUp(ctx context.Context, run *directory.Run, status, msg string) error {
	if err := c.Store.DropRunData(ctx, run.ID); err != nil {
		return err
	}
	if run.SourceDocumentID != "" {
		copied, err := c.readsACopy(ctx, run.ProfileID)
		if err != nil {
			return err
		}
		if copied {
			if err := c.Store.DeleteDocument(ctx, run.SourceDocumentID); err != nil && !errors.Is(err, directory.ErrNotFound) {
				return fmt.Errorf("remove the run's copy of the source: %w", err)
			}
		}
	}
	return c.Store.AddAudit(ctx, &directory.AuditEntry{Category: directory.CategorySync, Action: "run_finished",
		Connection: run.ProfileName, RunID: run.ID, Subject: run.ProfileName,
		Details: fmt.Sprintf("status=%s error=%s (recorded from the workflow's end in Temporal)", status, msg)})
}

// readsACopy reports whether the run's profile reads a copy of its source
// of its own for each run (a remote CSV); a deleted profile leaves the
// copy be. Only the clear part is read: the secrets are not needed.
func (c *Client) readsACopy(ctx context.Context, profileID string) (bool, error) {
	p, err := c.Store.GetProfile(ctx, profileID)
	if errors.Is(err, directory.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cfg, err := profile.Open(nil, p.Config, "")
	if err != nil {
		return false, fmt.Errorf("profile %s: %w", profileID, err)
	}
	return cfg.RunsReadACopy(), nil
}
