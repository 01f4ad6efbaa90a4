package integration

import (
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/workflows"
)

// runningActivity asks Temporal which worker process runs the pending
// activity of that type: the SDK's default worker identity starts with the
// process id. 0 when none is running now.
func (e *faultEnv) runningActivity(activityType string) int {
	e.t.Helper()
	d, err := e.temporal.DescribeWorkflow(e.ctx, workflows.WorkflowID(e.profile.ID), "")
	if err != nil {
		return 0
	}
	desc := d.RawResponse
	for _, pa := range desc.GetPendingActivities() {
		if pa.GetActivityType().GetName() != activityType || pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED {
			continue
		}
		pid, _, _ := strings.Cut(pa.GetLastWorkerIdentity(), "@")
		if n, err := strconv.Atoi(pid); err == nil {
			return n
		}
	}
	return 0
}

// TestFaultFetchWorkerKilledOtherWorkerFinishes runs two worker processes
// on one task queue and SIGKILLs the one Temporal says runs the fetch. The
// other one must take the fetch over from its last committed page and
// finish the run, with the directory exactly as a clean run leaves it.
func TestFaultFetchWorkerKilledOtherWorkerFinishes(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level fault test")
	}
	tmp := testenv.StartDevServer(t)
	e := newFaultEnv(t, tmp.Client, tmp.Address)
	e.createProfile(faultProfile("Two workers"))
	s := scenario{initial: 3000, total: 5000, removed: 50, changed: 200}
	e.firstSync(s)

	e.setDocument(s.secondCSV())
	workers := map[int]*workerProc{}
	for _, name := range []string{"worker-a", "worker-b"} {
		w := e.startWorker(name, 400*time.Millisecond)
		workers[w.Pid()] = w
	}
	runID, we := e.start(workflows.Options{HeartbeatTimeout: 3 * time.Second})

	// Wait until a worker is well into the fetch, and find out which.
	var victim int
	r := e.waitRun(runID, "fetch under way on a known worker", 2*time.Minute, func(r *directory.Run) bool {
		if r.Counts.Fetched < 1000 || r.FetchDone {
			return false
		}
		victim = e.runningActivity("Fetch")
		return workers[victim] != nil
	})
	fetchedAtKill := r.Counts.Fetched
	killProc(t, workers[victim])
	delete(workers, victim)
	var survivor *workerProc
	for _, w := range workers {
		survivor = w
	}
	t.Logf("killed worker %d during fetch at %d fetched; %d carries on", victim, fetchedAtKill, survivor.Pid())

	// The survivor resumes the fetch where the victim's last page
	// committed: the staged count never goes back.
	e.waitRun(runID, "fetch resumed by the other worker", 2*time.Minute, func(r *directory.Run) bool {
		if r.Counts.Fetched < fetchedAtKill {
			t.Fatalf("fetch went back from %d to %d: restarted instead of resumed", fetchedAtKill, r.Counts.Fetched)
		}
		return r.FetchDone || e.runningActivity("Fetch") == survivor.Pid()
	})

	if _, err := getResult(t, we, 3*time.Minute); err != nil {
		t.Fatalf("run: %v", err)
	}
	if survivor.exited() {
		t.Fatalf("the surviving worker exited: %v", survivor.exitErr)
	}
	e.checkExact(runID, s)
}
