package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/testenv"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startTemporal starts an in-memory, headless Temporal dev server for the
// test, deliberately without the search attributes usersync needs: `dev`
// must register them itself.
func startTemporal(t *testing.T) string {
	t.Helper()
	bin := testenv.TemporalCLI(t)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
		"--port", strconv.Itoa(port), "--log-level", "error")
	var logBuf lockedBuffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("temporal dev server not up on %s: %v\n%s", addr, err, logBuf.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// client of the test: the API base URL and the token.
type apiClient struct {
	t     *testing.T
	base  string // http://host:port
	token string
}

func (c *apiClient) do(method, path, contentType string, body io.Reader, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %d, decode %q: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	if resp.StatusCode >= 300 && out != nil {
		c.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

func (c *apiClient) json(method, path string, in, out any) int {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	return c.do(method, path, "application/json", body, out)
}

// TestDevQuickstart runs `usersync dev` in-process against a Temporal dev
// server and walks the README quickstart: token file, health, auth, upload
// examples/people.csv, create a CSV profile, sync, read the run and users.
func TestDevQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	temporalAddr := startTemporal(t)
	dataDir := t.TempDir()
	vars := map[string]string{
		"TEMPORAL_ADDRESS":    temporalAddr,
		"TEMPORAL_TASK_QUEUE": "usersync-cmd-test",
		"USERSYNC_DATA_DIR":   dataDir,
		"USERSYNC_LISTEN":     "127.0.0.1:0",
		"USERSYNC_LOG_LEVEL":  "warn",
	}
	var stdout, stderr lockedBuffer
	e := &env{getenv: func(k string) string { return vars[k] }, stdout: &stdout, stderr: &stderr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, []string{"dev"}) }()

	// The banner names the API URL (the port was :0) and the token.
	bannerRe := regexp.MustCompile(`API\s+(http://\S+)/api/v1\n\s+API token\s+(\S+)`)
	var m []string
	deadline := time.Now().Add(90 * time.Second)
	for m == nil {
		select {
		case code := <-done:
			t.Fatalf("usersync dev exited with %d before serving:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no banner after 90 s; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		m = bannerRe.FindStringSubmatch(stdout.String())
		time.Sleep(100 * time.Millisecond)
	}
	base, token := m[1], m[2]
	if !strings.Contains(stdout.String(), "Temporal UI  http://localhost:8233") {
		t.Errorf("banner lacks the Temporal UI URL:\n%s", stdout.String())
	}

	// The generated token and key are in the data dir, owner-only.
	for _, f := range []string{devTokenFile, devKeyFile, "usersync.db"} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); err != nil {
			t.Errorf("data dir lacks %s: %v", f, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dataDir, devTokenFile)); err != nil || strings.TrimSpace(string(b)) != token {
		t.Errorf("token file %q, %v; banner token %q", b, err, token)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, devTokenFile)); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", fi.Mode().Perm())
	}

	anon := &apiClient{t: t, base: base}
	if code := anon.do("GET", "/healthz", "", nil, nil); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code := anon.do("GET", "/readyz", "", nil, nil); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	if code := anon.do("GET", "/api/v1/profiles", "", nil, nil); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	api := &apiClient{t: t, base: base, token: token}

	// Quickstart: upload the example CSV.
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
		"name":     "People CSV",
		"provider": "csv",
		"csv": map[string]any{
			"source": "document", "documentId": doc.ID,
			"userMatchField": "username", "managerField": "manager", "groupsField": "groups",
			"columnMap":       map[string]any{"department": "department"},
			"defaultPassword": "Welcome-2-usersync!",
		},
		"groupSync":        map[string]any{"mode": "all"},
		"populateOrgChart": true,
	}, &prof)

	var started struct {
		ID string `json:"id"`
	}
	api.json("POST", "/api/v1/profiles/"+prof.ID+"/sync", map[string]any{"dryRun": false}, &started)

	var runView struct {
		Status        string         `json:"status"`
		Error         string         `json:"error"`
		Counts        map[string]int `json:"counts"`
		TemporalUIURL string         `json:"temporalUiUrl"`
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		api.json("GET", "/api/v1/runs/"+started.ID, nil, &runView)
		if runView.Status != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run still running after 2 min: %+v", runView)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("run %s: %+v", started.ID, runView)
	if runView.Status != "succeeded" {
		t.Fatalf("run %s: %+v\n%s", started.ID, runView, stderr.String())
	}
	if runView.Counts["created"] != 25 {
		t.Errorf("created %d users, want 25: %+v", runView.Counts["created"], runView.Counts)
	}
	if !strings.HasPrefix(runView.TemporalUIURL, "http://localhost:8233/namespaces/default/workflows/") {
		t.Errorf("temporalUiUrl = %q", runView.TemporalUIURL)
	}
	var users struct {
		Items []struct {
			Username string `json:"username"`
		} `json:"items"`
	}
	api.json("GET", "/api/v1/users?limit=100", nil, &users)
	if len(users.Items) != 25 {
		t.Errorf("GET /users: %d users, want 25", len(users.Items))
	}
	// The quoted field with a comma of examples/people.csv arrives whole.
	var one struct {
		Items []struct {
			Username   string            `json:"username"`
			ManagerID  string            `json:"managerId"`
			Attributes map[string]string `json:"attributes"`
			Groups     []string          `json:"groups"`
		} `json:"items"`
	}
	api.json("GET", "/api/v1/users?q=cdubois", nil, &one)
	if len(one.Items) != 1 || one.Items[0].Attributes["department"] != "Research, Development & Innovation" ||
		one.Items[0].ManagerID == "" {
		t.Errorf("cdubois: %+v", one.Items)
	}

	// Ctrl-C: a graceful stop with exit status 0.
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after cancel:\n%s", code, stderr.String())
		}
	case <-time.After(shutdownTimeout + 10*time.Second):
		t.Fatal("usersync dev did not stop after cancel")
	}
	if strings.Contains(stderr.String(), token) {
		t.Error("the logs show the API token")
	}
}
