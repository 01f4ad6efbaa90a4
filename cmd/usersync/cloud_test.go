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

	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/secret"
	"github.com/usersync/usersync/workflows"
)

// TestTemporalCloudShape runs `usersync worker` and `usersync api` against
// a frontend shaped like Temporal Cloud's (testenv.CloudFrontend before a
// dev server without usersync's search attributes): TLS to a CA given in
// TEMPORAL_TLS_SERVER_CA_CERT_PATH, the API key of TEMPORAL_API_KEY on
// every call, and the operator API refused. Both start, say what to run to
// add the search attributes, and sync; the run is found by workflow id;
// doctor warns with the same fix; the worker shows its tuning in the log
// and its task slots in /metrics.
func TestTemporalCloudShape(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	dev := testenv.StartBareDevServer(t)
	cloud := testenv.StartCloudFrontend(t, dev.Address)
	dir := t.TempDir()
	apiPort, metricsPort := freePort(t), freePort(t)
	vars := map[string]string{
		"TEMPORAL_ADDRESS":                 cloud.Address,
		"TEMPORAL_API_KEY":                 cloud.APIKey,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": cloud.CAFile,
		"TEMPORAL_TLS_SERVER_NAME":         cloud.ServerName,
		"TEMPORAL_TASK_QUEUE":              "usersync-cloud-test",
		"DATABASE_URL":                     "sqlite:" + filepath.Join(dir, "usersync.db"),
		"USERSYNC_SECRET_KEY":              secret.GenerateKey(),
		"USERSYNC_API_TOKEN":               "cloud-test-token-0123456789abcdef",
		"USERSYNC_LISTEN":                  "127.0.0.1:" + strconv.Itoa(apiPort),
		"USERSYNC_LOG_FORMAT":              "json",
	}
	workerVars := map[string]string{
		"USERSYNC_METRICS_LISTEN":        "127.0.0.1:" + strconv.Itoa(metricsPort),
		"USERSYNC_WORKER_ACTIVITY_SLOTS": "3",
		"USERSYNC_WORKER_WORKFLOW_SLOTS": "5",
		"USERSYNC_PROVIDER_CONCURRENCY":  "azure=1,csv=2",
		"USERSYNC_WORKER_STOP_TIMEOUT":   "7s",
	}
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
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r1, err1 := http.Get(base + "/readyz")
		r2, err2 := http.Get(metricsURL)
		if err1 == nil && err2 == nil && r1.StatusCode == http.StatusOK {
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
	}
	// The worker logs its tuning once it polls, a moment after /metrics is up.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(workerErr.String(), "worker polling") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	const tcld = "tcld namespace search-attributes add --namespace default --search-attribute ProfileName=Keyword --search-attribute Provider=Keyword"
	for name, logs := range map[string]string{"worker": workerErr.String(), "api": apiErr.String()} {
		if !strings.Contains(logs, tcld) || !strings.Contains(logs, "temporal operator search-attribute create --namespace default") {
			t.Errorf("the %s does not say what to run to add the search attributes:\n%s", name, logs)
		}
		if !strings.Contains(logs, `"security":"TLS + API key"`) {
			t.Errorf("the %s does not log how it reaches Temporal:\n%s", name, logs)
		}
		if strings.Contains(logs, cloud.APIKey) {
			t.Errorf("the %s logs the API key", name)
		}
	}
	if !strings.Contains(workerErr.String(), `"tuning":{"activitySlots":3,"workflowSlots":5,"providerConcurrency":"azure=1,csv=2","stopTimeout":7000000000}`) {
		t.Errorf("the worker does not log its tuning:\n%s", workerErr.String())
	}
	if cloud.OperatorNos.Load() == 0 || cloud.Unkeyed.Load() != 0 {
		t.Errorf("operator calls refused %d, calls without the key %d", cloud.OperatorNos.Load(), cloud.Unkeyed.Load())
	}

	// A sync, on a namespace without the search attributes.
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
		ID            string `json:"id"`
		Status        string `json:"status"`
		Error         string `json:"error"`
		WorkflowID    string `json:"workflowId"`
		TemporalRunID string `json:"temporalRunId"`
	}
	api.json("POST", "/api/v1/profiles/"+prof.ID+"/sync", map[string]any{"dryRun": false}, &run)
	for deadline := time.Now().Add(2 * time.Minute); run.Status == "running" || run.Status == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("run still running after 2 min\nworker: %s", workerErr.String())
		}
		time.Sleep(300 * time.Millisecond)
		api.json("GET", "/api/v1/runs/"+run.ID, nil, &run)
	}
	if run.Status != "succeeded" {
		t.Fatalf("run %s: %s %s\nworker: %s", run.ID, run.Status, run.Error, workerErr.String())
	}
	// Listed by workflow id: the server holds the run under the profile's.
	d, err := dev.Client.DescribeWorkflow(ctx, workflows.WorkflowID(prof.ID), "")
	if err != nil {
		t.Fatalf("the run is not found by workflow id %s: %v", workflows.WorkflowID(prof.ID), err)
	}
	fields := d.RawResponse.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
	if _, ok := fields["ProfileName"]; ok {
		t.Error("the run carries ProfileName, which the namespace does not have")
	}

	// The SDK's task slots, as the worker was tuned.
	metrics := scrape(t, metricsURL)
	for _, want := range []string{`temporal_worker_task_slots_available{`, `worker_type="ActivityWorker"`, `temporal_worker_task_slots_used{`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("worker /metrics lacks %s", want)
		}
	}
	if !slotLine(metrics, "temporal_worker_task_slots_available", "ActivityWorker", "3") ||
		!slotLine(metrics, "temporal_worker_task_slots_available", "WorkflowWorker", "5") {
		t.Errorf("idle worker's available slots are not the configured 3 and 5:\n%s", grepLines(metrics, "task_slots"))
	}

	// Doctor: the same connection, a warning with the same fix.
	code, out, errOut := runCmd(t, ctx, vars, "doctor", "--only", "temporal,workers")
	if code != 0 || !strings.Contains(out, "WARN  search attributes: ProfileName and Provider missing") ||
		!strings.Contains(out, tcld) || !strings.Contains(out, "ok    temporal: "+cloud.Address+" (TLS + API key)") {
		t.Errorf("doctor: exit %d\n%s%s", code, out, errOut)
	}
	// Without the key the frontend refuses everything, and doctor says so.
	noKey := map[string]string{}
	for k, v := range vars {
		noKey[k] = v
	}
	delete(noKey, "TEMPORAL_API_KEY")
	noKey["TEMPORAL_TLS"] = "true"
	if code, out, _ := runCmd(t, ctx, noKey, "doctor", "--only", "temporal"); code != 1 || !strings.Contains(out, "FAIL  temporal") {
		t.Errorf("doctor without the API key: exit %d\n%s", code, out)
	}
	if cloud.Unkeyed.Load() == 0 {
		t.Error("the frontend never saw a call without the key")
	}

	cancel()
	for range 2 {
		select {
		case <-done:
		case <-time.After(shutdownTimeout + 10*time.Second):
			t.Fatal("a process did not stop after cancel")
		}
	}
}

// slotLine finds a series of name for the worker type with the value.
func slotLine(metrics, name, workerType, value string) bool {
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, name+"{") && strings.Contains(l, `worker_type="`+workerType+`"`) && strings.HasSuffix(l, " "+value) {
			return true
		}
	}
	return false
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
