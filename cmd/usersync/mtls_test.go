package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/secret"
)

// TestMTLSToARealServer connects a worker and doctor to the Temporal server
// itself (testenv.Cluster, deploy/temporal/config) with its frontend
// requiring client certificates, all made in the test: with the
// certificate in TEMPORAL_TLS_CLIENT_CERT_PATH/KEY_PATH the worker
// registers the search attributes and polls, and doctor finds both; with
// the CA alone the server turns the client away.
func TestMTLSToARealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	c := testenv.StartClusterWith(t, testenv.ClusterOptions{MTLS: true, OneProcess: true})
	vars := map[string]string{
		"TEMPORAL_ADDRESS":                 c.Address,
		"TEMPORAL_TLS_CLIENT_CERT_PATH":    c.ClientCert,
		"TEMPORAL_TLS_CLIENT_KEY_PATH":     c.ClientKey,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": c.CAFile,
		"TEMPORAL_TLS_SERVER_NAME":         c.ServerName,
		"TEMPORAL_TASK_QUEUE":              "usersync-mtls-test",
		"DATABASE_URL":                     "sqlite:" + filepath.Join(t.TempDir(), "usersync.db"),
		"USERSYNC_SECRET_KEY":              secret.GenerateKey(),
		"USERSYNC_LOG_FORMAT":              "json",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var workerErr lockedBuffer
	done := make(chan int, 1)
	e := &env{getenv: func(k string) string { return vars[k] }, stdout: io.Discard, stderr: &workerErr}
	go func() { done <- run(ctx, e, []string{"worker"}) }()
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(workerErr.String(), "worker polling"); time.Sleep(200 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("worker exited with %d:\n%s", code, workerErr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker not polling after 2 min:\n%s", workerErr.String())
		}
	}
	if !strings.Contains(workerErr.String(), `"security":"mTLS"`) || !strings.Contains(workerErr.String(), "search attributes registered") {
		t.Errorf("worker log:\n%s", workerErr.String())
	}

	code, out, errOut := runCmd(t, ctx, vars, "doctor", "--only", "temporal,workers")
	if code != 0 || !strings.Contains(out, "ok    temporal: "+c.Address+" (mTLS)") ||
		!strings.Contains(out, "ok    search attributes") || !strings.Contains(out, "ok    workers") {
		t.Errorf("doctor with the client certificate: exit %d\n%s%s", code, out, errOut)
	}

	noCert := map[string]string{}
	for k, v := range vars {
		noCert[k] = v
	}
	delete(noCert, "TEMPORAL_TLS_CLIENT_CERT_PATH")
	delete(noCert, "TEMPORAL_TLS_CLIENT_KEY_PATH")
	if code, out, _ := runCmd(t, ctx, noCert, "doctor", "--only", "temporal"); code != 1 || !strings.Contains(out, "FAIL  temporal") {
		t.Errorf("doctor without a client certificate: exit %d\n%s", code, out)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(shutdownTimeout + 10*time.Second):
		t.Fatal("the worker did not stop")
	}
}
