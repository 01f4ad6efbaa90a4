package integration

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/runs"
	"github.com/usersync/usersync/workflows"
)

// TestCluster runs a sync on the Temporal server as production runs it
// (testenv.Cluster: PostgreSQL persistence, SQL visibility, frontend,
// history, matching and worker as separate processes from
// deploy/temporal/config): usersync registers its search attributes on the
// SQL visibility store, a 20,000-user run goes through two `usersync
// worker` processes, one killed mid-fetch, the history service is killed
// and restarted mid-apply, and the directory is exact afterwards. `make
// test-cluster` runs it alone.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal cluster")
	}
	c := testenv.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	st, err := runs.EnsureSearchAttributes(ctx, c.Client, "default")
	if err != nil || !st.Ready || len(st.Added) != 2 {
		t.Fatalf("search attributes on SQL visibility: %+v, %v", st, err)
	}
	testenv.WaitFor(t, "search attributes listed", 30*time.Second, func() (bool, string) {
		st, err := runs.CheckSearchAttributes(ctx, c.Client, "default")
		return err == nil && st.Ready, ""
	})

	e := newFaultEnv(t, c.Client, c.Address)
	e.createProfile(faultProfile("Cluster"))
	s := scenario{initial: 18000, total: 20000, removed: 100, changed: 500}
	e.firstSync(s)

	e.setDocument(s.secondCSV())
	workers := map[int]*workerProc{}
	for _, name := range []string{"worker-a", "worker-b"} {
		w := e.startWorker(name, 100*time.Millisecond)
		workers[w.Pid()] = w
	}
	runID, we := e.start(workflows.Options{HeartbeatTimeout: 5 * time.Second})

	var victim int
	e.waitRun(runID, "fetch under way on a known worker", 3*time.Minute, func(r *directory.Run) bool {
		if r.Counts.Fetched < 2000 || r.FetchDone {
			return false
		}
		victim = e.runningActivity("Fetch")
		return workers[victim] != nil
	})
	killProc(t, workers[victim])
	delete(workers, victim)
	t.Logf("killed worker %d during the fetch", victim)

	e.waitRun(runID, "apply under way", 5*time.Minute, func(r *directory.Run) bool { return r.ApplyStep != "" && r.ApplyCursor != "" })
	c.Restart("history", syscall.SIGKILL)
	t.Logf("history service killed and started again during apply")

	e.waitRun(runID, "the run ends", 5*time.Minute, func(r *directory.Run) bool { return r.Status != directory.RunRunning })
	if _, err := getResult(t, we, 2*time.Minute); err != nil {
		t.Fatalf("run: %v\n%s", err, c.Logs())
	}
	for _, w := range workers {
		if w.exited() {
			t.Fatalf("the surviving worker exited: %v", w.exitErr)
		}
	}
	e.checkExact(runID, s)
}
