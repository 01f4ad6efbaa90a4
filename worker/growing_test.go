package worker

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
	"github.com/usersync/usersync/workflows"
)

// slowPlan is the store with a Plan that takes longer than the run's
// heartbeat timeout, as the one transaction of a large tenant's plan
// does. It counts the calls: an attempt taken for dead would be followed
// by a second one, which calls it again.
type slowPlan struct {
	directory.Store
	delay time.Duration
	calls atomic.Int32
}

func (s *slowPlan) Plan(ctx context.Context, runID string, in directory.PlanInput) (*directory.PlanOutcome, error) {
	s.calls.Add(1)
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	return s.Store.Plan(ctx, runID, in)
}

// A Plan that outlasts the run's heartbeat timeout, through the real
// worker, workflow and activities on a real server, ends in its first
// attempt: the heartbeats keep it alive, and the run completes with Plan
// called exactly once.
func TestPlanOutlastsHeartbeatTimeoutOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Temporal dev server and PostgreSQL")
	}
	const heartbeat = 2 * time.Second
	srv := testenv.StartDevServer(t)
	store := &slowPlan{Store: directory.NewSQLStore(dbtest.Open(t, schema.Postgres)), delay: 3 * heartbeat}
	box, err := secret.NewBox(secret.GenerateKey())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	doc, err := store.CreateDocument(ctx, "people.csv", "text/csv", strings.NewReader(
		"username,firstName,lastName,email\nada,Ada,Lovelace,ada@example.com\nalan,Alan,Turing,alan@example.com\n"), 1<<20)
	require.NoError(t, err)
	cfg := &profile.Config{Name: "People CSV", Provider: csv.Name,
		Block:     &csv.Profile{Source: "document", DocumentID: doc.ID, UserMatchField: "username", DefaultPassword: "Welcome-1"},
		GroupSync: profile.GroupSync{Mode: profile.GroupSyncOff}}
	cfg.Normalize()
	clear, sealed, err := profile.Seal(box, cfg)
	require.NoError(t, err)
	p := &directory.Profile{ID: uuid.NewString(), Name: cfg.Name, Provider: cfg.Provider, Enabled: true,
		DirectoryKey: "k-" + uuid.NewString()[:8], Config: clear, Secrets: sealed}
	require.NoError(t, store.CreateProfile(ctx, p))

	const queue = "growing-test"
	w := New(srv.Client, queue, activities.New(activities.Deps{Store: store, Box: box, BcryptCost: 4}), Options{})
	require.NoError(t, w.Start())
	defer w.Stop()

	runID := uuid.NewString()
	we, err := srv.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(p.ID), TaskQueue: queue},
		workflows.WorkflowName, workflows.SyncInput{RunID: runID, ProfileID: p.ID, Trigger: "manual",
			Options: workflows.Options{HeartbeatTimeout: heartbeat}})
	require.NoError(t, err)
	var counts directory.RunCounts
	require.NoError(t, we.Get(ctx, &counts))
	require.Equal(t, 2, counts.Created)
	require.EqualValues(t, 1, store.calls.Load(), "Plan ran more than once: an attempt was taken for dead")

	run, err := store.GetRun(ctx, runID)
	require.NoError(t, err)
	require.Equal(t, directory.RunSucceeded, run.Status, run.Error)

	// The plan did run under the short heartbeat timeout, and no step
	// timed out.
	iter := srv.Client.GetWorkflowHistory(ctx, we.GetID(), we.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var planned bool
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		require.NotEqual(t, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, ev.GetEventType())
		if a := ev.GetActivityTaskScheduledEventAttributes(); a.GetActivityType().GetName() == "Plan" {
			planned = true
			require.Equal(t, heartbeat, a.GetHeartbeatTimeout().AsDuration())
		}
	}
	require.True(t, planned, "no Plan in the history")
}
