package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
)

// Phases is where a run's wall time went: the time its activities of each
// type took, from scheduling to close (so every attempt and the backoff
// between them count), read from the Temporal history of the run and of
// the executions it continued as. What the activities do not cover is the
// workflow's own time: its tasks and timers.
type Phases map[string]time.Duration

// phaseOrder is the order a run's activities come in.
var phaseOrder = []string{"StartRun", "Fetch", "Plan", "Apply", "FinishRun"}

// String lists the phases in run order, then any other activity type.
func (p Phases) String() string {
	var parts []string
	for _, k := range p.keys() {
		parts = append(parts, fmt.Sprintf("%s %s", k, p[k].Round(10*time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

func (p Phases) keys() []string {
	var out []string
	for _, k := range phaseOrder {
		if _, ok := p[k]; ok {
			out = append(out, k)
		}
	}
	var rest []string
	for k := range p {
		if !slices.Contains(phaseOrder, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// readPhases sums the activity times of a workflow execution and of the
// chain of executions it continued as.
func readPhases(ctx context.Context, tc client.Client, workflowID, runID string) (Phases, error) {
	p := Phases{}
	for runID != "" {
		next := ""
		types := map[int64]string{}        // scheduled event id → activity type
		scheduled := map[int64]time.Time{} // scheduled event id → when
		it := tc.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return p, fmt.Errorf("history of %s: %w", workflowID, err)
			}
			at := ev.GetEventTime().AsTime()
			var sched int64
			switch a := ev.GetAttributes().(type) {
			case *historypb.HistoryEvent_ActivityTaskScheduledEventAttributes:
				types[ev.GetEventId()] = a.ActivityTaskScheduledEventAttributes.GetActivityType().GetName()
				scheduled[ev.GetEventId()] = at
				continue
			case *historypb.HistoryEvent_ActivityTaskCompletedEventAttributes:
				sched = a.ActivityTaskCompletedEventAttributes.GetScheduledEventId()
			case *historypb.HistoryEvent_ActivityTaskFailedEventAttributes:
				sched = a.ActivityTaskFailedEventAttributes.GetScheduledEventId()
			case *historypb.HistoryEvent_ActivityTaskTimedOutEventAttributes:
				sched = a.ActivityTaskTimedOutEventAttributes.GetScheduledEventId()
			case *historypb.HistoryEvent_ActivityTaskCanceledEventAttributes:
				sched = a.ActivityTaskCanceledEventAttributes.GetScheduledEventId()
			case *historypb.HistoryEvent_WorkflowExecutionContinuedAsNewEventAttributes:
				next = a.WorkflowExecutionContinuedAsNewEventAttributes.GetNewExecutionRunId()
				continue
			default:
				continue
			}
			if s, ok := scheduled[sched]; ok {
				p[types[sched]] += at.Sub(s)
			}
		}
		runID = next
	}
	return p, nil
}
