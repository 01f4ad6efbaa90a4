package integration

import (
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/workflows"
)

// stopGrace is how long a process may take to stop after SIGTERM: the
// worker's stop timeout (worker.stopTimeout, 20 s) and a margin for the
// process to close its connections. docker-compose.yml gives the containers
// a longer stop_grace_period than this.
const stopGrace = 25 * time.Second

// sigterm stops a process gracefully and waits for it; it fails the test
// when the process takes longer than stopGrace or exits with an error.
func sigterm(t *testing.T, w *workerProc) time.Duration {
	t.Helper()
	began := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	case <-time.After(stopGrace):
		t.Fatalf("process still running %s after SIGTERM", stopGrace)
	}
	if w.exitErr != nil {
		t.Fatalf("process exited with %v after SIGTERM", w.exitErr)
	}
	return time.Since(began)
}

// TestFaultWorkerSIGTERMMidRun stops the only worker with SIGTERM once
// during the fetch and once during apply, as a deploy does. Each time the
// process must end within the stop timeout, having let the step in flight
// commit and report (so that a restarted worker carries on at once instead
// of waiting out the heartbeat timeout of an abandoned step), and the
// restarted worker must complete the run exactly.
func TestFaultWorkerSIGTERMMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level fault test")
	}
	tmp := testenv.StartDevServer(t)
	e := newFaultEnv(t, tmp.Client, tmp.Address)
	e.createProfile(faultProfile("Graceful"))
	s := scenario{initial: 3000, total: 5000, removed: 50, changed: 200}
	e.firstSync(s)

	e.setDocument(s.secondCSV())
	w := e.startWorker("worker-1", 400*time.Millisecond)
	// The default heartbeat timeout (30 s): an activity abandoned by the
	// stopping worker would hold the run that long.
	runID, we := e.start(workflows.Options{})

	e.waitRun(runID, "fetch under way on the worker", 2*time.Minute, func(r *directory.Run) bool {
		return r.Counts.Fetched >= 1000 && !r.FetchDone && e.runningActivity("Fetch") == w.Pid()
	})
	took := sigterm(t, w)
	t.Logf("worker stopped %s after SIGTERM during fetch", took.Round(time.Millisecond))
	if !strings.Contains(w.Log(), "worker stopped") {
		t.Fatal("the worker did not log its graceful stop")
	}
	r, _ := e.store.GetRun(e.ctx, runID)
	fetched, fetchDone := r.Counts.Fetched, r.FetchDone

	restarted := time.Now()
	w = e.startWorker("worker-2", 400*time.Millisecond)
	e.waitRun(runID, "progress soon after the restart", 2*time.Minute, func(r *directory.Run) bool {
		return r.Counts.Fetched > fetched || (fetchDone && r.ApplyStep != "") || r.Status != directory.RunRunning
	})
	if d := time.Since(restarted); d > 20*time.Second {
		t.Fatalf("the run waited %s after the restart: the stopped worker abandoned its step", d)
	}

	e.waitRun(runID, "apply under way on the worker", 2*time.Minute, func(r *directory.Run) bool {
		return r.ApplyStep != "" && e.runningActivity("Apply") == w.Pid()
	})
	took = sigterm(t, w)
	t.Logf("worker stopped %s after SIGTERM during apply", took.Round(time.Millisecond))

	e.startWorker("worker-3", 0)
	if _, err := getResult(t, we, 3*time.Minute); err != nil {
		t.Fatalf("run: %v", err)
	}
	e.checkExact(runID, s)
}

// TestFaultAPIDrainsOnSIGTERM stops `usersync api` in the middle of an
// upload: the request in flight completes, new connections are refused,
// and the process then exits cleanly.
func TestFaultAPIDrainsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level fault test")
	}
	tmp := testenv.StartDevServer(t)
	e := newFaultEnv(t, tmp.Client, tmp.Address)
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	api := e.startProcess("api", []string{"USERSYNC_API_TOKEN=drain-token-0123456789abcdef0123456789", "USERSYNC_LISTEN=127.0.0.1:" + strconv.Itoa(port)}, "api")
	testenv.WaitFor(t, "the api to be ready", time.Minute, func() (bool, string) {
		if api.exited() {
			t.Fatal("the api exited before it was ready")
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})

	// An upload whose body trickles in over about three seconds.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, _ := mw.CreateFormFile("file", "slow.csv")
		fmt.Fprint(part, "username,firstName,lastName,email\n")
		for i := 0; i < 30; i++ {
			fmt.Fprintf(part, "u%d,F,L,u%d@example.com\n", i, i)
			time.Sleep(100 * time.Millisecond)
		}
		mw.Close()
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/documents", pr)
	req.Header.Set("Authorization", "Bearer drain-token-0123456789abcdef0123456789")
	req.Header.Set("Content-Type", mw.FormDataContentType())
	type result struct {
		status int
		body   string
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		resc <- result{status: resp.StatusCode, body: string(b)}
	}()

	time.Sleep(time.Second) // the upload is in flight
	if err := api.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// Draining: no new connection is accepted.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	if resp, err := fresh.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a new request was served while draining: %d", resp.StatusCode)
	}
	select {
	case r := <-resc:
		if r.err != nil || r.status != http.StatusCreated || !strings.Contains(r.body, `"size"`) {
			t.Fatalf("upload in flight: %d %s %v", r.status, r.body, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the upload in flight never completed")
	}
	select {
	case <-api.done:
	case <-time.After(stopGrace):
		t.Fatal("api still running after the drain")
	}
	if api.exitErr != nil {
		t.Fatalf("api exited with %v", api.exitErr)
	}
	docs, err := e.store.ListDocuments(e.ctx, directory.ListOptions{})
	if err != nil || len(docs.Items) != 1 || docs.Items[0].Size == 0 {
		t.Fatalf("documents after the drain: %+v %v", docs, err)
	}
}
