package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/workflows"
)

// previousRelease is the last landed release: a rolling deploy from it to
// this code must carry its runs in flight. Move it forward when a release
// lands (CONTRIBUTING.md, "Changing a workflow").
const previousRelease = "dba5f433783deae01a20a4158547ed5c98591b86"

// previousReleaseBinary builds `usersync` as previousRelease had it, from
// the repository's own history (an export of that commit, built with the
// module cache this build uses).
func previousReleaseBinary(t *testing.T) string {
	t.Helper()
	root := testenv.RepoRoot()
	if err := exec.Command("git", "-C", root, "cat-file", "-e", previousRelease+"^{commit}").Run(); err != nil {
		// Without the history there is no previous release to run; under
		// CI that is a broken checkout, not a reason to pass.
		testenv.Need(t, "the previous release "+previousRelease[:12]+" in the git history", err)
	}
	dir := t.TempDir()
	export := exec.Command("sh", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", root, previousRelease, dir))
	if out, err := export.CombinedOutput(); err != nil {
		t.Fatalf("export %s: %v\n%s", previousRelease, err, out)
	}
	bin := filepath.Join(dir, "usersync-previous")
	build := exec.Command("go", "build", "-o", bin, "./cmd/usersync")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous release: %v\n%s", err, out)
	}
	return bin
}

// TestRollingDeployFinishesARunOfThePreviousRelease is a rolling deploy
// with a run in flight: the previous release's worker starts the run and
// is stopped (SIGTERM, as a deploy stops it) in the middle of its fetch;
// the current worker takes the same task queue, replays the run's history
// through the current workflow code and finishes it. The directory must
// be exactly what one clean run leaves. An unguarded change to the
// workflow's commands fails here with a non-determinism error.
func TestRollingDeployFinishesARunOfThePreviousRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level deploy test")
	}
	previous := previousReleaseBinary(t)
	tmp := testenv.StartDevServer(t)
	e := newFaultEnv(t, tmp.Client, tmp.Address)
	e.createProfile(faultProfile("Rolling deploy"))
	s := scenario{initial: 3000, total: 5000, removed: 50, changed: 200}
	e.binary = previous
	e.firstSync(s)

	e.setDocument(s.secondCSV())
	old := e.startWorker("worker-previous", 400*time.Millisecond)
	runID, we := e.start(workflows.Options{HeartbeatTimeout: 3 * time.Second})
	e.waitRun(runID, "fetch under way on the previous release's worker", 2*time.Minute, func(r *directory.Run) bool {
		return r.Counts.Fetched >= 1000 && !r.FetchDone
	})
	if err := old.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.done:
	case <-time.After(time.Minute):
		t.Fatal("the previous release's worker did not stop")
	}
	r, err := e.store.GetRun(e.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != directory.RunRunning {
		t.Fatalf("the run ended with the previous worker (%s: %s): nothing left for the new one", r.Status, r.Error)
	}
	t.Logf("previous release stopped at %d fetched; the current worker takes over", r.Counts.Fetched)

	e.binary = ""
	e.startWorker("worker-current", 0)
	if _, err := getResult(t, we, 3*time.Minute); err != nil {
		t.Fatalf("the current worker did not finish the run: %v", err)
	}
	e.checkExact(runID, s)
}
