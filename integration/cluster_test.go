package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

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
// and restarted mid-apply, and the directory is exact afterwards; then the
// profile's schedule ticks and its run is listed by ProfileName. `make
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

	// A schedule, as the API writes it, triggered now: its tick starts the
	// profile's run, which carries the search attributes (the tick passes
	// them on) and finds nothing to change; SQL visibility finds it by them.
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer scancel()
	var conf map[string]any
	if err := json.Unmarshal(e.profile.Config, &conf); err != nil {
		t.Fatal(err)
	}
	conf["schedule"] = map[string]any{"frequency": "interval", "everyMinutes": 60}
	e.profile.Config, _ = json.Marshal(conf)
	if err := e.store.UpdateProfile(sctx, e.profile); err != nil {
		t.Fatal(err)
	}
	wf := &runs.Client{Temporal: c.Client, TaskQueue: e.queue, Namespace: "default", Store: e.store, Attrs: runs.NewSearchAttributes(c.Client, st)}
	if err := wf.SyncSchedule(sctx, e.profile); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.ScheduleClient().GetHandle(sctx, runs.ScheduleID(e.profile.ID)).Trigger(sctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	var status string
	testenv.WaitFor(t, "the scheduled run succeeds", 4*time.Minute, func() (bool, string) {
		err := e.db.GetContext(sctx, &status, `SELECT status FROM sync_runs WHERE profile_id = $1 AND trigger = 'schedule'`, e.profile.ID)
		return err == nil && status == directory.RunSucceeded, fmt.Sprint(status, err)
	})
	testenv.WaitFor(t, "SQL visibility lists the profile's runs by ProfileName", time.Minute, func() (bool, string) {
		resp, err := c.Client.ListWorkflow(sctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", Query: "ProfileName = 'Cluster' AND WorkflowType = 'SyncProfile'"})
		if err != nil {
			return false, err.Error()
		}
		return len(resp.GetExecutions()) >= 1, fmt.Sprintf("%d executions", len(resp.GetExecutions()))
	})
}
