package integration

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/workflows"
)

// TestFaultTemporalRestartedDuringRun takes the Temporal server away under
// a running sync, twice: stopped cleanly during the fetch and killed during
// apply, each time started again on the same port and database file a few
// seconds later. The worker process rides it out (its polls and heartbeats
// fail meanwhile), and the run completes exactly.
func TestFaultTemporalRestartedDuringRun(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level fault test")
	}
	srv := startDevServerProcess(t, freePort(t), filepath.Join(t.TempDir(), "temporal.db"))
	tc, err := client.Dial(client.Options{HostPort: srv.address(), Namespace: "default", Logger: testenv.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	e := newFaultEnv(t, tc, srv.address())
	e.createProfile(faultProfile("Temporal restart"))
	s := scenario{initial: 3000, total: 5000, removed: 50, changed: 200}
	e.firstSync(s)

	e.setDocument(s.secondCSV())
	w := e.startWorker("worker", 400*time.Millisecond)
	runID, we := e.start(workflows.Options{HeartbeatTimeout: 5 * time.Second})

	restart := func(what string, sig syscall.Signal, cond func(*directory.Run) bool) {
		t.Helper()
		e.waitRun(runID, what, 2*time.Minute, cond)
		srv.stop(sig)
		t.Logf("temporal stopped (%s) during %s", sig, what)
		time.Sleep(4 * time.Second) // the worker's calls fail meanwhile
		srv.start()
		t.Logf("temporal started again on %s", srv.address())
	}
	restart("fetch", syscall.SIGTERM, func(r *directory.Run) bool { return r.Counts.Fetched >= 1000 && !r.FetchDone })
	restart("apply", syscall.SIGKILL, func(r *directory.Run) bool { return r.ApplyStep != "" && r.ApplyCursor != "" })

	// The run row follows the workflow to its end.
	e.waitRun(runID, "the run ends", 3*time.Minute, func(r *directory.Run) bool { return r.Status != directory.RunRunning })
	if _, err := getResult(t, we, time.Minute); err != nil {
		t.Fatalf("run: %v", err)
	}
	if w.exited() {
		t.Fatalf("the worker gave up while Temporal was away: %v", w.exitErr)
	}
	e.checkExact(runID, s)
}
