package runmetrics

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/metrics"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
)

// The activity names the interceptor matches must be methods of the
// activities, or a rename would silently stop the counting.
func TestActivityNamesExist(t *testing.T) {
	typ := reflect.TypeOf(&activities.Activities{})
	for _, name := range []string{actStartRun, actFetch, actPlan, actApply, actFinishRun} {
		_, ok := typ.MethodByName(name)
		assert.True(t, ok, "activities.Activities has no method %s", name)
	}
}

// fakeHistory serves histories by run id.
type fakeHistory struct {
	mu    sync.Mutex
	runs  map[string][]*historypb.HistoryEvent
	asked []string
	err   error
}

// buildEvents builds a history: each entry is "Schedule:Type@sec",
// "Complete:Type@sec" (completes the latest scheduled of that type) or
// "ContinueAsNew:runID@sec".
func buildEvents(t0 time.Time, spec ...string) []*historypb.HistoryEvent {
	var out []*historypb.HistoryEvent
	last := map[string]int64{}
	for i, s := range spec {
		kind, rest, _ := strings.Cut(s, ":")
		arg, secStr, _ := strings.Cut(rest, "@")
		d, _ := time.ParseDuration(secStr + "s")
		e := &historypb.HistoryEvent{EventId: int64(i + 1), EventTime: timestamppb.New(t0.Add(d))}
		switch kind {
		case "Schedule":
			e.EventType = enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
			e.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{
				ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
					ActivityType: &commonpb.ActivityType{Name: arg}}}
			last[arg] = e.EventId
		case "Complete":
			e.EventType = enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
			e.Attributes = &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{
				ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{ScheduledEventId: last[arg]}}
		case "ContinueAsNew":
			e.EventType = enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
			e.Attributes = &historypb.HistoryEvent_WorkflowExecutionContinuedAsNewEventAttributes{
				WorkflowExecutionContinuedAsNewEventAttributes: &historypb.WorkflowExecutionContinuedAsNewEventAttributes{NewExecutionRunId: arg}}
		}
		out = append(out, e)
	}
	return out
}

func (f *fakeHistory) GetWorkflowHistory(_ context.Context, _, runID string, _ bool, _ enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, runID)
	return &fakeIter{events: f.runs[runID], err: f.err}
}

type fakeIter struct {
	events []*historypb.HistoryEvent
	err    error
}

func (it *fakeIter) HasNext() bool { return it.err != nil || len(it.events) > 0 }
func (it *fakeIter) Next() (*historypb.HistoryEvent, error) {
	if it.err != nil {
		return nil, it.err
	}
	e := it.events[0]
	it.events = it.events[1:]
	return e, nil
}

func TestReadPhasesAcrossContinueAsNew(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &fakeHistory{runs: map[string][]*historypb.HistoryEvent{
		// Event ids restart in the second execution: scheduled id 2 there
		// is an Apply, not the first execution's Fetch.
		"r1": buildEvents(t0, "Schedule:StartRun@0", "Schedule:Fetch@1", "Complete:StartRun@1", "Complete:Fetch@5",
			"Schedule:Fetch@5", "Complete:Fetch@9", "ContinueAsNew:r2@9"),
		"r2": buildEvents(t0, "Schedule:Fetch@10", "Complete:Fetch@21", "Schedule:Plan@22", "Complete:Plan@25",
			"Schedule:SetStatus@25", "Complete:SetStatus@25", // awaiting approval: not a phase
			"Schedule:Apply@100", "Complete:Apply@130", "Schedule:Apply@130", "Complete:Apply@160",
			"Schedule:FinishRun@160"),
	}}
	got, err := readPhases(context.Background(), h, "wf", "r1", true)
	require.NoError(t, err)
	assert.Equal(t, map[string]time.Duration{"fetch": 20 * time.Second, "plan": 3 * time.Second, "apply": 60 * time.Second}, got)
	assert.Equal(t, []string{"r1", "r2"}, h.asked)

	// A run that failed in apply: fetch and plan completed, apply did not.
	got, err = readPhases(context.Background(), h, "wf", "r1", false)
	require.NoError(t, err)
	assert.NotContains(t, got, "apply")
	assert.Len(t, got, 2)

	// A fetch that never reached the plan is not a completed phase.
	h.runs["r3"] = buildEvents(t0, "Schedule:Fetch@1", "Complete:Fetch@4", "Schedule:Fetch@4")
	got, err = readPhases(context.Background(), h, "wf", "r3", false)
	require.NoError(t, err)
	assert.Empty(t, got)

	h.err = errors.New("unavailable")
	_, err = readPhases(context.Background(), h, "wf", "r1", true)
	require.Error(t, err)
}

// harness runs a real CSV sync through the activities, each call going
// through the interceptor as a worker would make it.
type harness struct {
	t     *testing.T
	store *directory.SQLStore
	env   *testsuite.TestActivityEnvironment
	acts  *activities.Activities
	reg   *prometheus.Registry
	ic    *Interceptor
	hist  *fakeHistory
	prof  *directory.Profile
	seen  []string // providers the fetch saw in its context
}

func newHarness(t *testing.T) *harness {
	db := dbtest.Open(t, schema.SQLite)
	store := directory.NewSQLStore(db)
	box, err := secret.NewBox(secret.GenerateKey())
	require.NoError(t, err)
	ctx := context.Background()
	doc, err := store.CreateDocument(ctx, "people.csv", "text/csv", strings.NewReader(
		"username,firstName,lastName,email\nann,Ann,A,ann@example.com\nbob,Bob,B,bob@example.com\ncy,Cy,C,cy@example.com\n"), 1<<20)
	require.NoError(t, err)
	cfg := &profile.Config{Name: "People CSV", Provider: csv.Name,
		Block: &csv.Profile{Source: "document", DocumentID: doc.ID, UserMatchField: "username", DefaultPassword: "Welcome-1"}}
	cfg.Normalize()
	clear, sealed, err := profile.Seal(box, cfg)
	require.NoError(t, err)
	p := &directory.Profile{ID: uuid.NewString(), Name: cfg.Name, Provider: cfg.Provider, Enabled: true,
		DirectoryKey: "p-" + uuid.NewString()[:8], Config: clear, Secrets: sealed}
	require.NoError(t, store.CreateProfile(ctx, p))

	h := &harness{t: t, store: store, reg: prometheus.NewRegistry(), hist: &fakeHistory{runs: map[string][]*historypb.HistoryEvent{}}, prof: p}
	h.acts = activities.New(activities.Deps{Store: store, Box: box, BcryptCost: bcrypt.MinCost})
	h.ic = New(h.reg, store, nil)
	h.ic.history = func(context.Context) HistoryReader { return h.hist }
	h.env = (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	h.env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{h.ic, &spy{h: h}}})
	h.env.RegisterActivity(h.acts)
	return h
}

// spy runs inside the interceptor under test and records the provider the
// Fetch activity's context names.
type spy struct {
	interceptor.WorkerInterceptorBase
	h *harness
}

func (s *spy) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &spyInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, s: s}
}

type spyInbound struct {
	interceptor.ActivityInboundInterceptorBase
	s *spy
}

func (s *spyInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	for _, a := range in.Args {
		if _, ok := a.(activities.FetchInput); ok {
			s.s.h.seen = append(s.s.h.seen, metrics.ProviderOf(ctx))
		}
	}
	return s.Next.ExecuteActivity(ctx, in)
}

func (h *harness) exec(fn any, in any, out any) {
	h.t.Helper()
	v, err := h.env.ExecuteActivity(fn, in)
	require.NoError(h.t, err)
	if out != nil {
		require.NoError(h.t, v.Get(out))
	}
}

// sync runs a whole run and returns its id.
func (h *harness) sync(dryRun bool) string {
	h.t.Helper()
	runID := uuid.NewString()
	ctx := context.Background()
	// As runs.Client records it: with the first execution's run id.
	require.NoError(h.t, h.store.CreateRun(ctx, &directory.Run{ID: runID, ProfileID: h.prof.ID, ProfileName: h.prof.Name,
		Provider: h.prof.Provider, DirectoryKey: h.prof.DirectoryKey, Trigger: "manual", DryRun: dryRun,
		Status: directory.RunRunning, Phase: directory.PhaseFetch, WorkflowID: "usersync-" + h.prof.ID, TemporalRunID: "t-" + runID}))
	h.exec(h.acts.StartRun, activities.StartRunInput{RunID: runID, ProfileID: h.prof.ID, Trigger: "manual", DryRun: dryRun}, nil)
	for {
		var r activities.FetchResult
		h.exec(h.acts.Fetch, activities.FetchInput{RunID: runID}, &r)
		if r.Done {
			break
		}
	}
	h.exec(h.acts.Plan, activities.PlanInput{RunID: runID}, nil)
	if !dryRun {
		for {
			var r activities.ApplyResult
			h.exec(h.acts.Apply, activities.ApplyInput{RunID: runID}, &r)
			if r.Done {
				break
			}
		}
	}
	h.hist.mu.Lock()
	h.hist.runs["t-"+runID] = buildEvents(time.Now(), "Schedule:Fetch@0", "Complete:Fetch@2", "Schedule:Plan@2",
		"Complete:Plan@3", "Schedule:Apply@3", "Complete:Apply@7")
	h.hist.mu.Unlock()
	h.exec(h.acts.FinishRun, activities.FinishInput{RunID: runID, Status: directory.RunSucceeded}, nil)
	return runID
}

func find(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	fams, err := g.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func TestRunEndIsCountedOnce(t *testing.T) {
	h := newHarness(t)
	runID := h.sync(false)
	runs := map[string]string{"profile": "People CSV", "provider": "csv", "status": "succeeded", "dry_run": "false"}
	require.NotNil(t, find(t, h.reg, "usersync_runs_finished_total", runs))
	assert.Equal(t, 1.0, find(t, h.reg, "usersync_runs_finished_total", runs).GetCounter().GetValue())
	created := find(t, h.reg, "usersync_run_users_total", map[string]string{"profile": "People CSV", "provider": "csv", "action": "created"})
	require.NotNil(t, created)
	assert.Equal(t, 3.0, created.GetCounter().GetValue())
	assert.Nil(t, find(t, h.reg, "usersync_run_users_total", map[string]string{"action": "disabled"}), "nothing was disabled")
	assert.Equal(t, uint64(1), find(t, h.reg, "usersync_run_fetched_users", map[string]string{"provider": "csv"}).GetHistogram().GetSampleCount())
	assert.InDelta(t, 3, find(t, h.reg, "usersync_run_fetched_users", nil).GetHistogram().GetSampleSum(), 0)
	assert.Equal(t, uint64(1), find(t, h.reg, "usersync_run_duration_seconds", map[string]string{"provider": "csv", "status": "succeeded"}).GetHistogram().GetSampleCount())
	for phase, sec := range map[string]float64{"fetch": 2, "plan": 1, "apply": 4} {
		m := find(t, h.reg, "usersync_run_phase_duration_seconds", map[string]string{"provider": "csv", "phase": phase})
		require.NotNil(t, m, phase)
		assert.Equal(t, sec, m.GetHistogram().GetSampleSum(), phase)
	}
	assert.NotEmpty(t, h.seen)
	for _, p := range h.seen {
		assert.Equal(t, "csv", p, "the fetch's requests are labelled with the run's provider")
	}

	// FinishRun again (a retry): the run was already final, nothing more is counted.
	h.exec(h.acts.FinishRun, activities.FinishInput{RunID: runID, Status: directory.RunSucceeded}, nil)
	assert.Equal(t, 1.0, find(t, h.reg, "usersync_runs_finished_total", runs).GetCounter().GetValue())
	assert.Equal(t, 3.0, find(t, h.reg, "usersync_run_users_total", map[string]string{"action": "created"}).GetCounter().GetValue())

	// A dry run counts as a run but changes no user.
	h.hist.err = errors.New("history unavailable") // phases are best effort
	h.sync(true)
	assert.Equal(t, 1.0, find(t, h.reg, "usersync_runs_finished_total", map[string]string{"dry_run": "true"}).GetCounter().GetValue())
	assert.Equal(t, 3.0, find(t, h.reg, "usersync_run_users_total", map[string]string{"action": "created"}).GetCounter().GetValue())
	assert.Equal(t, uint64(1), find(t, h.reg, "usersync_run_phase_duration_seconds", map[string]string{"phase": "fetch"}).GetHistogram().GetSampleCount())
}

func TestNewTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := New(reg, nil, nil), New(reg, nil, nil)
	assert.Same(t, a.runs, b.runs, "the second shares the first's series instead of panicking")
}
