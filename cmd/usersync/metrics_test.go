package main

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/secret"
)

// scrape reads a /metrics page.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestMetricsAfterARun runs `usersync worker` and `usersync api` as the
// separate processes of production (in-process, on one database), syncs
// the quickstart CSV and scrapes both: the worker, on
// USERSYNC_METRICS_LISTEN, counts the run, its users and its phases and
// shows the Temporal SDK's metrics; the API counts its requests.
func TestMetricsAfterARun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	temporalAddr := startTemporal(t)
	dir := t.TempDir()
	apiPort, metricsPort := freePort(t), freePort(t)
	vars := map[string]string{
		"TEMPORAL_ADDRESS":    temporalAddr,
		"TEMPORAL_TASK_QUEUE": "usersync-metrics-test",
		"DATABASE_URL":        "sqlite:" + filepath.Join(dir, "usersync.db"),
		"USERSYNC_SECRET_KEY": secret.GenerateKey(),
		"USERSYNC_API_TOKEN":  "metrics-test-token-0123456789abcdef",
		"USERSYNC_LISTEN":     "127.0.0.1:" + strconv.Itoa(apiPort),
		"USERSYNC_LOG_LEVEL":  "warn",
	}
	workerVars := map[string]string{"USERSYNC_METRICS_LISTEN": "127.0.0.1:" + strconv.Itoa(metricsPort)}
	for k, v := range vars {
		workerVars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var workerErr, apiErr lockedBuffer
	done := make(chan int, 2)
	start := func(vars map[string]string, stderr *lockedBuffer, cmd string) {
		e := &env{getenv: func(k string) string { return vars[k] }, stdout: io.Discard, stderr: stderr}
		go func() { done <- run(ctx, e, []string{cmd}) }()
	}
	start(workerVars, &workerErr, "worker")
	start(vars, &apiErr, "api")

	base := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	metricsURL := "http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics"
	deadline := time.Now().Add(90 * time.Second)
	for {
		r1, err1 := http.Get(base + "/healthz")
		r2, err2 := http.Get(metricsURL)
		if err1 == nil && err2 == nil {
			r1.Body.Close()
			r2.Body.Close()
			break
		}
		select {
		case code := <-done:
			t.Fatalf("a process exited with %d:\nworker: %s\napi: %s", code, workerErr.String(), apiErr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not up after 90 s: %v %v\nworker: %s\napi: %s", err1, err2, workerErr.String(), apiErr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	api := &apiClient{t: t, base: base, token: vars["USERSYNC_API_TOKEN"]}

	csvBytes, err := os.ReadFile(filepath.Join("..", "..", "examples", "people.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "people.csv")
	fw.Write(csvBytes)
	mw.Close()
	var doc struct {
		ID string `json:"id"`
	}
	api.do("POST", "/api/v1/documents", mw.FormDataContentType(), &body, &doc)
	var prof struct {
		ID string `json:"id"`
	}
	api.json("POST", "/api/v1/profiles", map[string]any{
		"name": "People CSV", "provider": "csv",
		"csv": map[string]any{"source": "document", "documentId": doc.ID, "userMatchField": "username",
			"managerField": "manager", "groupsField": "groups", "defaultPassword": "Welcome-2-usersync!"},
	}, &prof)
	var run struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	api.json("POST", "/api/v1/profiles/"+prof.ID+"/sync", map[string]any{"dryRun": false}, &run)
	for deadline = time.Now().Add(2 * time.Minute); run.Status == "running" || run.Status == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("run still running after 2 min\nworker: %s", workerErr.String())
		}
		time.Sleep(300 * time.Millisecond)
		api.json("GET", "/api/v1/runs/"+run.ID, nil, &run)
	}
	if run.Status != "succeeded" {
		t.Fatalf("run %s: %s %s\nworker: %s", run.ID, run.Status, run.Error, workerErr.String())
	}

	// The worker counts the run as FinishRun ends it, a moment before the
	// workflow closes: wait for the phases, the last thing it records.
	want := []string{
		`usersync_runs_finished_total{dry_run="false",profile="People CSV",provider="csv",status="succeeded"} 1`,
		`usersync_run_users_total{action="created",profile="People CSV",provider="csv"} 25`,
		`usersync_run_fetched_users_count{provider="csv"} 1`,
		`usersync_run_duration_seconds_count{provider="csv",status="succeeded"} 1`,
		`usersync_run_phase_duration_seconds_count{phase="fetch",provider="csv"} 1`,
		`usersync_run_phase_duration_seconds_count{phase="plan",provider="csv"} 1`,
		`usersync_run_phase_duration_seconds_count{phase="apply",provider="csv"} 1`,
		`temporal_activity_execution_latency_seconds_count{`,
		`temporal_request_total{`,
		`go_goroutines `,
	}
	var worker string
	for deadline = time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		worker = scrape(t, metricsURL)
		if strings.Contains(worker, want[len(want)-4]) || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range want {
		if !strings.Contains(worker, w) {
			t.Errorf("worker /metrics lacks %s", w)
		}
	}
	if t.Failed() {
		t.Logf("worker /metrics:\n%s", worker)
	}

	apiMetrics := scrape(t, base+"/metrics")
	for _, w := range []string{
		`usersync_http_requests_total{code="202",method="POST",route="/api/v1/profiles/:id/sync"} 1`,
		`usersync_http_requests_total{code="201",method="POST",route="/api/v1/documents"} 1`,
		`temporal_request_total{`,
	} {
		if !strings.Contains(apiMetrics, w) {
			t.Errorf("api /metrics lacks %s", w)
		}
	}
	if strings.Contains(apiMetrics, "usersync_runs_finished_total{") {
		t.Error("the api process runs no worker, so it counts no run")
	}

	cancel()
	for range 2 {
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit %d after cancel\nworker: %s\napi: %s", code, workerErr.String(), apiErr.String())
			}
		case <-time.After(shutdownTimeout + 10*time.Second):
			t.Fatal("a process did not stop after cancel")
		}
	}
	for _, logs := range []string{workerErr.String(), apiErr.String()} {
		if strings.Contains(logs, vars["USERSYNC_API_TOKEN"]) || strings.Contains(logs, vars["USERSYNC_SECRET_KEY"]) {
			t.Error("a log line shows the token or the key")
		}
	}
}
