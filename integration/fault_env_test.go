package integration

// What the fault tests share: a Postgres database, a CSV profile, worker
// processes of the real binary, and the exact directory a clean run gives,
// to compare with what a run that went through a fault leaves.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
	"github.com/usersync/usersync/workflows"
)

// faultEnv is one fault test's world.
type faultEnv struct {
	t        *testing.T
	ctx      context.Context
	dbName   string
	dbURL    string
	db       *directory.DB
	store    *directory.SQLStore
	key      string
	box      *secret.Box
	temporal client.Client
	address  string // Temporal frontend
	queue    string
	profile  *directory.Profile
	// workerEnv is added to every worker process's environment.
	workerEnv []string
	// binary is the usersync the processes run; "" is this code's.
	binary string
}

func newFaultEnv(t *testing.T, tc client.Client, address string) *faultEnv {
	t.Helper()
	e := &faultEnv{t: t, ctx: context.Background(), temporal: tc, address: address,
		queue: "fault-" + uuid.NewString()[:8], key: secret.GenerateKey()}
	e.dbURL = dbtest.URL(t, schema.Postgres)
	e.dbName = strings.TrimPrefix(strings.SplitN(e.dbURL, "?", 2)[0], "postgres://postgres@127.0.0.1:5432/")
	db, err := directory.OpenDB(e.ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.db, e.store = db, directory.NewSQLStore(db)
	e.box, _ = secret.NewBox(e.key)
	return e
}

// faultProfile is the CSV profile of the fault tests: the crash test's
// columns, group sync on, org chart on.
func faultProfile(name string) *profile.Config {
	cfg := &profile.Config{Name: name, Provider: csv.Name,
		Block: &csv.Profile{Source: "document", DocumentID: "set-below", UserMatchField: "username",
			ManagerField: "manager", DefaultPassword: "Welcome-1", GroupsField: "groups",
			ColumnMap: map[string]string{"department": "department"}},
		GroupSync: profile.GroupSync{Mode: profile.GroupSyncAll}, PopulateOrgChart: true}
	cfg.Normalize()
	return cfg
}

func (e *faultEnv) createProfile(cfg *profile.Config) {
	e.t.Helper()
	clear, sealed, err := profile.Seal(e.box, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.profile = &directory.Profile{ID: uuid.NewString(), Name: cfg.Name, Provider: cfg.Provider, Enabled: true,
		DirectoryKey: "p-" + uuid.NewString()[:8], Config: clear, Secrets: sealed}
	if err := e.store.CreateProfile(e.ctx, e.profile); err != nil {
		e.t.Fatal(err)
	}
}

// setDocument uploads content and points the profile at it.
func (e *faultEnv) setDocument(content string) {
	e.t.Helper()
	useDocument(e.t, e.store, e.box, e.profile, content)
}

// workerProc is a `usersync worker` child process.
type workerProc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	exitErr error
}

// Pid is the process id, which is also how Temporal names the worker: the
// SDK's default identity is "<pid>@<host>@".
func (w *workerProc) Pid() int { return w.cmd.Process.Pid }

func (w *workerProc) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// Log is what the process wrote so far.
func (w *workerProc) Log() string {
	b, _ := os.ReadFile(w.logPath)
	return string(b)
}

// startProcess runs the usersync binary with the environment of the test
// world plus extra, output to a log file.
func (e *faultEnv) startProcess(name string, extra []string, args ...string) *workerProc {
	e.t.Helper()
	bin := e.binary
	if bin == "" {
		bin = testenv.Binary(e.t)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+e.dbURL,
		"TEMPORAL_ADDRESS="+e.address,
		"TEMPORAL_TASK_QUEUE="+e.queue,
		"USERSYNC_SECRET_KEY="+e.key,
		"USERSYNC_LOG_FORMAT=json",
		// The test's file servers listen on loopback, which provider
		// requests may reach only when allowed.
		"USERSYNC_OUTBOUND_ALLOW=127.0.0.0/8",
	)
	cmd.Env = append(append(cmd.Env, e.workerEnv...), extra...)
	out, err := os.Create(filepath.Join(e.t.TempDir(), name+".log"))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	w := &workerProc{cmd: cmd, logPath: out.Name(), done: make(chan struct{})}
	go func() {
		w.exitErr = cmd.Wait()
		out.Close()
		close(w.done)
	}()
	e.t.Cleanup(func() {
		if !w.exited() {
			cmd.Process.Kill() //nolint:errcheck
			<-w.done
		}
		if e.t.Failed() {
			e.t.Logf("--- %s log (last 4 KiB) ---\n%s", name, tail(w.Log(), 4096))
		}
	})
	return w
}

// startWorker runs `usersync worker` with every fetched page and applied
// batch slowed by pageDelay, to widen the windows faults hit.
func (e *faultEnv) startWorker(name string, pageDelay time.Duration) *workerProc {
	return e.startProcess(name, []string{"USERSYNC_FAULT_PAGE_DELAY=" + pageDelay.String()}, "worker")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// killProc sends SIGKILL and waits for the process to be gone.
func killProc(t *testing.T, w *workerProc) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		t.Fatal("killed worker did not exit")
	}
}

// start starts a run of the profile straight through Temporal, as the api
// does, with test options (short heartbeat timeout, retry budget).
func (e *faultEnv) start(opts workflows.Options) (string, client.WorkflowRun) {
	e.t.Helper()
	runID := uuid.NewString()
	we, err := e.temporal.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID: workflows.WorkflowID(e.profile.ID), TaskQueue: e.queue,
	}, workflows.WorkflowName, workflows.SyncInput{RunID: runID, ProfileID: e.profile.ID, Trigger: "manual", Options: opts})
	if err != nil {
		e.t.Fatal(err)
	}
	return runID, we
}

// waitRun polls the run row until cond holds. Errors are ignored: some
// tests cut the database connections under it.
func (e *faultEnv) waitRun(runID, what string, within time.Duration, cond func(*directory.Run) bool) *directory.Run {
	e.t.Helper()
	return waitRunRow(e.t, e.ctx, e.store, runID, what, within, cond)
}

// waitRunRow polls the run's row in store until cond holds, read errors
// counting as "not yet".
func waitRunRow(t *testing.T, ctx context.Context, store directory.Store, runID, what string, within time.Duration,
	cond func(*directory.Run) bool) *directory.Run {
	t.Helper()
	var r *directory.Run
	testenv.WaitFor(t, "run "+runID+": "+what, within, func() (bool, string) {
		got, err := store.GetRun(ctx, runID)
		if err != nil {
			return false, err.Error()
		}
		r = got
		return cond(r), fmt.Sprintf("%s in %s, %+v", r.Status, r.Phase, r.Counts)
	})
	return r
}

// getResult waits for the workflow's result, at most within.
func getResult(t *testing.T, we client.WorkflowRun, within time.Duration) (directory.RunCounts, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var counts directory.RunCounts
	err := we.Get(ctx, &counts)
	if ctx.Err() != nil {
		t.Fatalf("the run did not end within %s", within)
	}
	return counts, err
}

// scenario is a two-run sync: a first run syncs rows [0, initial), the run
// under test syncs rows [0, total) minus the first `removed`, with the next
// `changed` rows' last names changed. It knows the exact result.
type scenario struct {
	initial, total, removed, changed int
}

func (s scenario) firstCSV() string { return peopleCSV(0, s.initial, never, never) }

func (s scenario) secondCSV() string {
	return peopleCSV(0, s.total, func(i int) bool { return i < s.removed },
		func(i int) bool { return i >= s.removed && i < s.removed+s.changed })
}

// counts of the run under test. Every new row is a new user with a
// manager and two groups that exist already.
func (s scenario) counts() directory.RunCounts {
	added := s.total - s.initial
	return directory.RunCounts{Fetched: s.total - s.removed, Created: added, Updated: s.changed,
		Unchanged: s.initial - s.removed - s.changed, Disabled: s.removed, Departed: s.removed,
		MembershipsAdded: 2 * added, ManagersLinked: added}
}

// firstSync runs the first run of the scenario with a worker process and
// checks it.
func (e *faultEnv) firstSync(s scenario) {
	e.t.Helper()
	e.setDocument(s.firstCSV())
	w := e.startWorker("worker-first", 0)
	_, we := e.start(workflows.Options{})
	counts, err := getResult(e.t, we, 3*time.Minute)
	if err != nil {
		e.t.Fatalf("first sync: %v", err)
	}
	if counts.Created != s.initial {
		e.t.Fatalf("first sync counts %+v", counts)
	}
	killProc(e.t, w)
}

// checkExact asserts that the run under test of s succeeded with exactly
// its counts, and that the directory is exactly right: nobody duplicated,
// nobody wrongly disabled, memberships and managers complete, and the
// ledger and audit log of the run not doubled by replayed batches.
func (e *faultEnv) checkExact(runID string, s scenario) {
	e.t.Helper()
	run, err := e.store.GetRun(e.ctx, runID)
	if err != nil {
		e.t.Fatal(err)
	}
	if want := s.counts(); run.Status != directory.RunSucceeded || run.Counts != want {
		e.t.Fatalf("run %s (%s) counts\n got %+v\nwant %+v", run.Status, run.Error, run.Counts, want)
	}
	var n struct{ Total, Distinct, Disabled, WrongDisabled, Members, Managed int }
	q := func(dst *int, query string) {
		if err := e.db.GetContext(e.ctx, dst, query); err != nil {
			e.t.Fatal(err)
		}
	}
	q(&n.Total, `SELECT COUNT(*) FROM users`)
	q(&n.Distinct, `SELECT COUNT(DISTINCT external_id) FROM users`)
	q(&n.Disabled, `SELECT COUNT(*) FROM users WHERE status = 'disabled'`)
	q(&n.WrongDisabled, fmt.Sprintf(`SELECT COUNT(*) FROM users WHERE status = 'disabled' AND external_id >= 'u%05d'`, s.removed))
	q(&n.Members, `SELECT COUNT(*) FROM group_members`)
	q(&n.Managed, `SELECT COUNT(*) FROM users WHERE manager_id IS NOT NULL`)
	want := struct{ Total, Distinct, Disabled, WrongDisabled, Members, Managed int }{
		s.total, s.total, s.removed, 0, 2 * s.total, s.total - 10}
	if n != want {
		e.t.Fatalf("directory\n got %+v\nwant %+v", n, want)
	}
	var ledger, created, disabled int
	q(&ledger, `SELECT COUNT(*) FROM change_ledger WHERE run_id = '`+runID+`' AND action = 'created'`)
	q(&created, `SELECT COUNT(*) FROM audit_log WHERE run_id = '`+runID+`' AND action = 'user_created'`)
	q(&disabled, `SELECT COUNT(*) FROM change_ledger WHERE run_id = '`+runID+`' AND action = 'disabled'`)
	if added := s.total - s.initial; ledger != added || created != added || disabled != s.removed {
		e.t.Fatalf("ledger created %d, audit created %d, ledger disabled %d; want %d, %d, %d: replayed batches recorded twice",
			ledger, created, disabled, added, added, s.removed)
	}
}

// activeUsers counts the active users of the directory.
func (e *faultEnv) activeUsers() int {
	e.t.Helper()
	var n int
	if err := e.db.GetContext(e.ctx, &n, `SELECT COUNT(*) FROM users WHERE status = 'active'`); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// freePort is a TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// devServer is a Temporal dev server process this test starts and stops
// itself, on a fixed port and a persistent SQLite file, so that it can be
// restarted under a running sync.
type devServer struct {
	t      *testing.T
	port   int
	dbFile string
	cmd    *exec.Cmd
	done   chan struct{}
	log    *lockedBuffer
}

func startDevServerProcess(t *testing.T, port int, dbFile string) *devServer {
	t.Helper()
	d := &devServer{t: t, port: port, dbFile: dbFile}
	d.start()
	t.Cleanup(func() {
		d.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("--- temporal dev server log ---\n%s", tail(d.log.String(), 4096))
		}
	})
	return d
}

func (d *devServer) address() string { return "127.0.0.1:" + strconv.Itoa(d.port) }

func (d *devServer) start() {
	d.t.Helper()
	d.cmd = exec.Command(testenv.TemporalCLI(d.t), "server", "start-dev", "--headless",
		"--ip", "127.0.0.1", "--port", strconv.Itoa(d.port), "--db-filename", d.dbFile, "--log-level", "error",
		"--search-attribute", "ProfileName=Keyword", "--search-attribute", "Provider=Keyword")
	d.log = &lockedBuffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait() //nolint:errcheck
		close(done)
	}(d.cmd, d.done)
	testenv.WaitFor(d.t, "the temporal dev server on "+d.address(), 90*time.Second, func() (bool, string) {
		c, err := net.DialTimeout("tcp", d.address(), time.Second)
		if err != nil {
			return false, err.Error() + "\n" + d.log.String()
		}
		c.Close()
		return true, ""
	})
}

// stop signals the server and waits until it has exited and its port is free.
func (d *devServer) stop(sig syscall.Signal) {
	d.t.Helper()
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(sig) //nolint:errcheck
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill() //nolint:errcheck
		<-d.done
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

// trustFile writes cert as a PEM file a child process can trust through
// SSL_CERT_FILE: how a worker process downloads from an httptest TLS
// server without any test-only switch in usersync.
func trustFile(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
