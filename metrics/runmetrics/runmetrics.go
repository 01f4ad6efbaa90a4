// Package runmetrics counts sync runs where they end: in the worker, as an
// interceptor around the activities. The API process cannot count them
// (with separate api and worker processes it never sees a run end, and a
// run may be ended from the Temporal UI), while the FinishRun activity runs
// exactly once per run end that the store records, wherever the worker is.
//
// The interceptor is installed through client.Options.Interceptors, which
// the SDK also applies to every worker built on that client, so neither the
// worker package nor the activities carry metrics code.
//
// Counting follows the run row, not the activity call: a run is counted
// when FinishRun moves it from a non-final to a final status, so a retried
// FinishRun does not count twice. Phase durations are read from the run's
// Temporal history (every execution of its continue-as-new chain) when it
// ends, because a run's phases are spread over many activity calls, maybe
// on several workers, and the history is the one place that has them all.
package runmetrics

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/metrics"
)

// Names of the activities the interceptor looks at (methods of
// activities.Activities, registered under their method names).
const (
	actStartRun  = "StartRun"
	actFetch     = "Fetch"
	actPlan      = "Plan"
	actApply     = "Apply"
	actFinishRun = "FinishRun"
)

// HistoryReader reads a workflow's history; client.Client is one.
type HistoryReader interface {
	GetWorkflowHistory(ctx context.Context, workflowID, runID string, isLongPoll bool,
		filterType enumspb.HistoryEventFilterType) client.HistoryEventIterator
}

// Interceptor records run, user and phase metrics; pass it in
// client.Options.Interceptors of the worker's client.
type Interceptor struct {
	interceptor.InterceptorBase

	store directory.Store
	log   *slog.Logger
	// history returns the reader of the run's history; by default the
	// client the activity runs on.
	history func(ctx context.Context) HistoryReader

	runs     *prometheus.CounterVec
	users    *prometheus.CounterVec
	fetched  *prometheus.HistogramVec
	duration *prometheus.HistogramVec
	phases   *prometheus.HistogramVec

	mu        sync.Mutex
	providers map[string]string // run or profile id -> provider, for the provider label
}

// New returns the interceptor with its metrics registered on reg.
func New(reg prometheus.Registerer, store directory.Store, log *slog.Logger) *Interceptor {
	if log == nil {
		log = slog.Default()
	}
	ns := metrics.Namespace
	return &Interceptor{
		store:   store,
		log:     log,
		history: func(ctx context.Context) HistoryReader { return activity.GetClient(ctx) },
		runs: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "runs_finished_total",
			Help: "Sync runs that ended, by profile, provider, final status and dry run.",
		}, []string{"profile", "provider", "status", "dry_run"})),
		users: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "run_users_total",
			Help: "Users changed by ended runs that were not dry runs, by profile, provider and action (created, updated, disabled, reenabled, skipped, conflict).",
		}, []string{"profile", "provider", "action"})),
		fetched: metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "run_fetched_users",
			Help:    "Users fetched from the provider by each succeeded run.",
			Buckets: prometheus.ExponentialBuckets(10, 10, 6), // 10 … 1,000,000
		}, []string{"provider"})),
		duration: metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "run_duration_seconds",
			Help:    "Time from the start of a run to its end, by provider and final status.",
			Buckets: durationBuckets,
		}, []string{"provider", "status"})),
		phases: metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "run_phase_duration_seconds",
			Help:    "Duration of each completed phase of a run (fetch, plan, apply; an approval wait is not part of any), by provider.",
			Buckets: durationBuckets,
		}, []string{"provider", "phase"})),
		providers: map[string]string{},
	}
}

// durationBuckets span a small CSV (a second) to a million-user tenant
// (tens of minutes).
var durationBuckets = []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}

// InterceptActivity implements interceptor.WorkerInterceptor.
func (i *Interceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, m: i}
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	m *Interceptor
}

// ExecuteActivity names the provider in the context of the activities that
// call it, and counts the run when FinishRun ends it.
func (a *activityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	switch activity.GetInfo(ctx).ActivityType.Name {
	case actStartRun, actFetch:
		if p := a.m.providerOf(ctx, in.Args); p != "" {
			ctx = metrics.WithProvider(ctx, p)
		}
	case actFinishRun:
		return a.m.finishRun(ctx, in, a.Next)
	}
	return a.Next.ExecuteActivity(ctx, in)
}

// providerOf finds the provider of a StartRun or Fetch call from its input.
// A failed lookup only costs the label.
func (m *Interceptor) providerOf(ctx context.Context, args []any) string {
	var key string
	var lookup func() (string, error)
	for _, a := range args {
		switch in := a.(type) {
		case activities.StartRunInput:
			key = in.ProfileID
			lookup = func() (string, error) {
				p, err := m.store.GetProfile(ctx, in.ProfileID)
				if err != nil {
					return "", err
				}
				return p.Provider, nil
			}
		case activities.FetchInput:
			key = in.RunID
			lookup = func() (string, error) {
				r, err := m.store.GetRun(ctx, in.RunID)
				if err != nil {
					return "", err
				}
				return r.Provider, nil
			}
		}
	}
	if lookup == nil {
		return ""
	}
	m.mu.Lock()
	p, ok := m.providers[key]
	m.mu.Unlock()
	if ok {
		return p
	}
	p, err := lookup()
	if err != nil {
		return ""
	}
	m.mu.Lock()
	if len(m.providers) >= 4096 { // a bound, not an LRU: ids are cheap to look up again
		clear(m.providers)
	}
	m.providers[key] = p
	m.mu.Unlock()
	return p
}

func (m *Interceptor) finishRun(ctx context.Context, in *interceptor.ExecuteActivityInput, next interceptor.ActivityInboundInterceptor) (any, error) {
	var runID string
	for _, a := range in.Args {
		if fi, ok := a.(activities.FinishInput); ok {
			runID = fi.RunID
		}
	}
	before, berr := m.store.GetRun(ctx, runID)
	res, err := next.ExecuteActivity(ctx, in)
	// The run is counted by the call that ends it, even when that call
	// then fails on its clean-up and is retried: the retry sees it final.
	if runID == "" || berr != nil || directory.IsFinalRunStatus(before.Status) {
		return res, err
	}
	after, aerr := m.store.GetRun(ctx, runID)
	if aerr != nil || !directory.IsFinalRunStatus(after.Status) {
		return res, err
	}
	m.mu.Lock()
	delete(m.providers, runID)
	m.mu.Unlock()
	m.observe(ctx, after)
	return res, err
}

// observe records an ended run.
func (m *Interceptor) observe(ctx context.Context, r *directory.Run) {
	m.runs.WithLabelValues(r.ProfileName, r.Provider, r.Status, strconv.FormatBool(r.DryRun)).Inc()
	c := r.Counts
	if !r.DryRun {
		for action, n := range map[string]int{"created": c.Created, "updated": c.Updated, "disabled": c.Disabled,
			"reenabled": c.Reenabled, "skipped": c.Skipped, "conflict": c.Conflicts} {
			if n > 0 {
				m.users.WithLabelValues(r.ProfileName, r.Provider, action).Add(float64(n))
			}
		}
	}
	if r.Status == directory.RunSucceeded || r.Status == directory.RunPartial {
		m.fetched.WithLabelValues(r.Provider).Observe(float64(c.Fetched))
	}
	if r.FinishedAt != nil && !r.StartedAt.IsZero() {
		m.duration.WithLabelValues(r.Provider, r.Status).Observe(r.FinishedAt.Sub(r.StartedAt).Seconds())
	}
	if r.WorkflowID == "" || r.TemporalRunID == "" {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, err := readPhases(hctx, m.history(ctx), r.WorkflowID, r.TemporalRunID,
		r.Status == directory.RunSucceeded || r.Status == directory.RunPartial)
	if err != nil {
		// Metrics are best effort: the run has ended whatever they say.
		m.log.Warn("phase durations: read run history", "runId", r.ID, "error", err)
		return
	}
	for phase, dur := range d {
		m.phases.WithLabelValues(r.Provider, phase).Observe(dur.Seconds())
	}
}

// maxExecutions bounds the walk of a continue-as-new chain.
const maxExecutions = 1000

// readPhases walks the history of every execution of a run, from its first
// (runID) on, and returns the duration of each completed phase.
func readPhases(ctx context.Context, h HistoryReader, workflowID, runID string, succeeded bool) (map[string]time.Duration, error) {
	var pc phaseClock
	for n := 0; runID != "" && n < maxExecutions; n++ {
		it := h.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		pc.newExecution()
		runID = ""
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return nil, err
			}
			if next := pc.add(e); next != "" {
				runID = next
			}
		}
	}
	return pc.durations(succeeded), nil
}

// phaseClock finds phase boundaries in history events: a phase runs from
// the scheduling of its first activity to the completion of its last.
type phaseClock struct {
	types     map[int64]string // scheduled event id -> activity type, in the current execution
	firstSch  map[string]time.Time
	lastDone  map[string]time.Time
	scheduled map[string]bool
}

func (p *phaseClock) newExecution() {
	p.types = map[int64]string{} // event ids start again in each execution
	if p.firstSch == nil {
		p.firstSch, p.lastDone, p.scheduled = map[string]time.Time{}, map[string]time.Time{}, map[string]bool{}
	}
}

// add takes one event and returns the run id of the next execution when
// the event continues the run as new.
func (p *phaseClock) add(e *historypb.HistoryEvent) string {
	at := e.GetEventTime().AsTime()
	switch e.GetEventType() {
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
		name := e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		p.types[e.GetEventId()] = name
		if !p.scheduled[name] {
			p.scheduled[name] = true
			p.firstSch[name] = at
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
		if name, ok := p.types[e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]; ok {
			p.lastDone[name] = at
		}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		return e.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	}
	return ""
}

// durations: fetch is complete once the plan was scheduled, plan once it
// completed, apply when the run succeeded.
func (p *phaseClock) durations(succeeded bool) map[string]time.Duration {
	out := map[string]time.Duration{}
	span := func(phase, act string, complete bool) {
		end, done := p.lastDone[act]
		if complete && p.scheduled[act] && done && !end.Before(p.firstSch[act]) {
			out[phase] = end.Sub(p.firstSch[act])
		}
	}
	span(directory.PhaseFetch, actFetch, p.scheduled[actPlan])
	span(directory.PhasePlan, actPlan, true)
	span(directory.PhaseApply, actApply, succeeded)
	return out
}
