package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/workflows"
)

// retries reads the workflow's history (every execution of the run) and
// returns, per activity type, the failures its completed steps were retried
// after: the last failure an ActivityTaskStarted event carries.
func (e *faultEnv) retries() map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	types := map[int64]string{}
	it := e.temporal.GetWorkflowHistory(e.ctx, workflows.WorkflowID(e.profile.ID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			types[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && a.GetAttempt() > 1 {
			out[types[a.GetScheduledEventId()]] = append(out[types[a.GetScheduledEventId()]], a.GetLastFailure().GetMessage())
		}
	}
	return out
}

// TestFaultPostgresConnectionsCutDuringApply terminates, from an admin
// connection, the worker's connections to its database again and again
// while the run applies. Batches in flight roll back, activities fail and
// are retried, and the run must still end exactly: the counts a clean run
// gives, no duplicate user, the ledger and audit log not doubled.
func TestFaultPostgresConnectionsCutDuringApply(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level fault test")
	}
	tmp := testenv.StartDevServer(t)
	e := newFaultEnv(t, tmp.Client, tmp.Address)
	e.createProfile(faultProfile("Postgres cut"))
	s := scenario{initial: 3000, total: 5000, removed: 50, changed: 200}
	e.firstSync(s)

	admin, err := sqlx.Connect("postgres", dbtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	// The worker names its connections, so that the cuts hit the worker's
	// and not this test's own.
	e.workerEnv = []string{"DATABASE_URL=" + e.dbURL + "&application_name=usersync-worker"}
	e.setDocument(s.secondCSV())
	e.startWorker("worker", 300*time.Millisecond)
	runID, we := e.start(workflows.Options{HeartbeatTimeout: 5 * time.Second})

	e.waitRun(runID, "apply under way", 2*time.Minute, func(r *directory.Run) bool {
		return r.ApplyStep != "" || r.Status != directory.RunRunning
	})
	// Cut every 25 ms while the run applies, until three cuts have hit a
	// connection in the middle of a statement or a transaction: a cut of an
	// idle pooled connection is healed by database/sql without anyone
	// noticing, so only busy ones prove the retries. Apply batches are few
	// and short, hence the tight loop.
	cuts, busy := 0, 0
	for until := time.Now().Add(time.Minute); busy < 3 && time.Now().Before(until); cuts++ {
		var n int
		if err := admin.Get(&n, `SELECT COALESCE(SUM(CASE WHEN state <> 'idle' THEN 1 ELSE 0 END), 0)
			FROM (SELECT state, pg_terminate_backend(pid) FROM pg_stat_activity
			      WHERE datname = $1 AND application_name = 'usersync-worker') cut`, e.dbName); err != nil {
			t.Fatal(err)
		}
		busy += n
		if cuts%8 == 0 {
			if r, err := e.store.GetRun(e.ctx, runID); err == nil && r.Status != directory.RunRunning {
				break
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Logf("%d cuts, %d busy connections terminated", cuts, busy)
	if busy == 0 {
		t.Fatal("no busy connection was ever cut: the test proves nothing")
	}

	e.waitRun(runID, "the run ends", 3*time.Minute, func(r *directory.Run) bool { return r.Status != directory.RunRunning })
	if _, err := getResult(t, we, time.Minute); err != nil {
		t.Fatalf("run: %v", err)
	}
	e.checkExact(runID, s)

	retried := e.retries()
	t.Logf("steps retried after a failure: %v", retried)
	var sawCut bool
	for _, msgs := range retried {
		for _, m := range msgs {
			sawCut = sawCut || strings.Contains(m, "terminating connection") || strings.Contains(m, "bad connection") ||
				strings.Contains(m, "connection reset") || strings.Contains(m, "EOF")
		}
	}
	if !sawCut {
		t.Fatalf("no step was retried after a cut connection: %v", retried)
	}
}
