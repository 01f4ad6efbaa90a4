package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/workflows"
)

// How the CSV server answers.
const (
	serveOK         = "ok"
	serve500        = "500"      // 500 Internal Server Error, failuresLeft times (-1: for ever), then ok
	serveShort      = "short"    // Content-Length of the whole file, half of it sent, connection closed
	serveChunkedCut = "chunked"  // chunked, connection closed before the last chunk
	serveUnframed   = "unframed" // no length, no chunking: the body ends where the connection does, five lines early
)

// csvServer is a remote CSV file behind HTTPS and basic auth that can fail
// the ways a real file server does.
type csvServer struct {
	srv          *httptest.Server
	user, pass   string
	mu           sync.Mutex
	content      string
	mode         string
	failuresLeft int
	requests     int
}

func newCSVServer(t *testing.T, user, pass string) *csvServer {
	c := &csvServer{user: user, pass: pass, mode: serveOK}
	c.srv = httptest.NewTLSServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *csvServer) set(content, mode string, failures int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.content, c.mode, c.failuresLeft, c.requests = content, mode, failures, 0
}

func (c *csvServer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

func (c *csvServer) serve(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != c.user || p != c.pass {
		http.Error(w, "who are you", http.StatusUnauthorized)
		return
	}
	c.mu.Lock()
	c.requests++
	content, mode := c.content, c.mode
	if mode == serve500 {
		switch {
		case c.failuresLeft == 0:
			mode = serveOK
		case c.failuresLeft > 0:
			c.failuresLeft--
		}
	}
	c.mu.Unlock()

	switch mode {
	case serveOK:
		w.Header().Set("Content-Type", "text/csv")
		fmt.Fprint(w, content)
	case serve500:
		http.Error(w, "storage backend down", http.StatusInternalServerError)
	case serveShort, serveChunkedCut, serveUnframed:
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		half := content[:len(content)/2]
		switch mode {
		case serveUnframed:
			// Cut at a line end, so that what arrives parses as a whole,
			// smaller file: only the framing can tell it is not.
			cut := len(content) - 1
			for i := 0; i < 5; i++ {
				cut = strings.LastIndexByte(content[:cut], '\n')
			}
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nConnection: close\r\n\r\n%s", content[:cut+1])
		case serveShort:
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\n%s", len(content), half)
		default:
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n")
			for len(half) > 0 {
				n := min(len(half), 4096)
				fmt.Fprintf(buf, "%x\r\n%s\r\n", n, half[:n])
				half = half[n:]
			}
		}
		buf.Flush() //nolint:errcheck // the connection is cut right after
	}
}

// directoryFingerprint sums up every user and membership, to tell that a
// run changed nothing at all.
func (e *faultEnv) directoryFingerprint() string {
	e.t.Helper()
	var users, members string
	if err := e.db.GetContext(e.ctx, &users, `SELECT COALESCE(md5(string_agg(id || status || username || last_name ||
		COALESCE(manager_id, '') || updated_at::text, ',' ORDER BY id)), '') FROM users`); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.GetContext(e.ctx, &members, `SELECT COUNT(*)::text FROM group_members`); err != nil {
		e.t.Fatal(err)
	}
	return users + "/" + members
}

// TestFaultProviderOutage serves a remote CSV profile's file over HTTPS
// and makes the server fail: 500s that stop after a while, 500s that never
// stop, and responses cut mid-stream (a Content-Length the body never
// reaches, a chunked body without its last chunk). A provider that recovers
// is waited for; one that does not fails the run once its retry budget is
// spent, with the provider's error as the run's message; a download that
// ends early is never taken for the whole file. In no case is anybody
// disabled by a run that did not read the whole source.
func TestFaultProviderOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level fault test")
	}
	const password = "Remote-CSV-pass-9f3c"
	files := newCSVServer(t, "sync", password)
	tmp := testenv.StartDevServer(t)
	e := newFaultEnv(t, tmp.Client, tmp.Address)
	// The worker process trusts the test server's certificate the way a
	// deployment trusts a private CA: through SSL_CERT_FILE.
	e.workerEnv = []string{"SSL_CERT_FILE=" + trustFile(t, files.srv.Certificate())}
	cfg := faultProfile("Remote CSV")
	cfg.Block.(*csv.Profile).Source, cfg.Block.(*csv.Profile).DocumentID = csv.SourceRemote, ""
	cfg.Block.(*csv.Profile).URL, cfg.Block.(*csv.Profile).Username, cfg.Block.(*csv.Profile).Password = files.srv.URL+"/exports/people.csv", "sync", password
	if errs := cfg.Validate(); errs != nil {
		t.Fatal(errs)
	}
	e.createProfile(cfg)
	s := scenario{initial: 300, total: 400, removed: 10, changed: 20}

	files.set(s.firstCSV(), serveOK, 0)
	e.startWorker("worker", 0)
	if _, we := e.start(workflows.Options{}); true {
		if counts, err := getResult(t, we, 2*time.Minute); err != nil || counts.Created != s.initial {
			t.Fatalf("first sync: %+v %v", counts, err)
		}
	}

	// A short budget, so that giving up takes seconds, not the default hour.
	// A failure the provider may recover from is retried until then; one
	// it cannot (a server that never says how long the file is) is final.
	failing := workflows.Options{HeartbeatTimeout: 5 * time.Second, ProviderRetryBudget: 6 * time.Second}
	for _, tc := range []struct {
		name, mode string
		content    string // what the server would send, were it not failing
		wantError  string
		retried    bool // retried until the budget was spent, rather than final at once
	}{
		{"never recovers", serve500, peopleCSV(0, 100, never, never), "500 Internal Server Error", true},
		{"content-length cut", serveShort, peopleCSV(0, 100, never, never), "unexpected EOF", true},
		{"chunked cut", serveChunkedCut, peopleCSV(0, 100, never, never), "unexpected EOF", true},
		// The directory's own file, five lines short: read as a whole file,
		// it would disable five people, too few for the delete guard.
		{"unframed cut", serveUnframed, s.firstCSV(), "without a length", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, active := e.directoryFingerprint(), e.activeUsers()
			files.set(tc.content, tc.mode, -1)
			runID, we := e.start(failing)
			began := time.Now()
			if counts, err := getResult(t, we, 2*time.Minute); err == nil {
				t.Fatalf("the run succeeded on a source it could not read: %+v", counts)
			}
			run, err := e.store.GetRun(e.ctx, runID)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("run failed after %s and %d downloads: %s", time.Since(began).Round(time.Second), files.count(), run.Error)
			if run.Status != directory.RunFailed || !strings.Contains(run.Error, tc.wantError) {
				t.Fatalf("run %s: %q, want a failure naming %q", run.Status, run.Error, tc.wantError)
			}
			if strings.Contains(run.Error, password) {
				t.Fatal("the run's error shows the password")
			}
			if tc.retried && (files.count() < 2 || !strings.Contains(run.Error, "gave up after")) {
				t.Fatalf("%d downloads, error %q: not retried until the budget was spent", files.count(), run.Error)
			}
			if run.Counts.Disabled != 0 || e.activeUsers() != active || e.directoryFingerprint() != before {
				t.Fatalf("a failed download changed the directory (counts %+v)", run.Counts)
			}
		})
	}

	t.Run("recovers", func(t *testing.T) {
		files.set(s.secondCSV(), serve500, 4)
		// The default budget: an hour, far beyond this outage.
		runID, we := e.start(workflows.Options{HeartbeatTimeout: 5 * time.Second})
		if _, err := getResult(t, we, 2*time.Minute); err != nil {
			t.Fatalf("run: %v", err)
		}
		if n := files.count(); n < 5 {
			t.Fatalf("%d downloads, want 4 failures and the one that worked", n)
		}
		if r := e.retries()["StartRun"]; len(r) == 0 || !strings.Contains(r[len(r)-1], "500 Internal Server Error") {
			t.Fatalf("StartRun retries: %v", r)
		}
		e.checkExact(runID, s)
	})
}
