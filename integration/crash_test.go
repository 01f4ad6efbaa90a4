// Package integration holds the tests that run usersync as it runs in
// production: the real binary as a worker process, a real Temporal dev
// server, Postgres.
package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
	"github.com/usersync/usersync/worker"
	"github.com/usersync/usersync/workflows"
)

// peopleCSV writes rows [from, to) minus the removed ones; changed rows get
// another last name. Row i reports to row i/10 (rows 0-9 have no manager).
func peopleCSV(from, to int, removed func(int) bool, changed func(int) bool) string {
	var b strings.Builder
	b.WriteString("username,firstName,lastName,email,manager,department,groups\n")
	for i := from; i < to; i++ {
		if removed(i) {
			continue
		}
		last := fmt.Sprintf("Last%d", i)
		if changed(i) {
			last = fmt.Sprintf("Changed%d", i)
		}
		mgr := ""
		if i >= 10 {
			mgr = fmt.Sprintf("u%05d", i/10)
		}
		fmt.Fprintf(&b, "u%05d,First%d,%s,u%05d@example.com,%s,Dept %d,Team %d;All Staff\n", i, i, last, i, mgr, i%7, i%20)
	}
	return b.String()
}

func never(int) bool { return false }

type crashEnv struct {
	t        *testing.T
	ctx      context.Context
	dbURL    string
	store    *directory.SQLStore
	key      string
	temporal *testenv.DevServer
	queue    string
	profile  *directory.Profile
	box      *secret.Box
}

func (e *crashEnv) setCSV(content string) {
	e.t.Helper()
	useDocument(e.t, e.store, e.box, e.profile, content)
}

// useDocument stores content as a CSV document and points the CSV profile
// p at it (the profile is updated in place and in the store).
func useDocument(t *testing.T, store *directory.SQLStore, box *secret.Box, p *directory.Profile, content string) {
	t.Helper()
	ctx := context.Background()
	doc, err := store.CreateDocument(ctx, "people.csv", "text/csv", strings.NewReader(content), 100<<20)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := profile.Open(box, p.Config, p.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Block.(*csv.Profile).DocumentID = doc.ID
	clear, sealed, err := profile.Seal(box, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Config, p.Secrets = clear, sealed
	if err := store.UpdateProfile(ctx, p); err != nil {
		t.Fatal(err)
	}
}

// startWorker runs `usersync worker` as a child process.
func (e *crashEnv) startWorker(pageDelay time.Duration) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(testenv.Binary(e.t), "worker")
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+e.dbURL,
		"TEMPORAL_ADDRESS="+e.temporal.Address,
		"TEMPORAL_TASK_QUEUE="+e.queue,
		"USERSYNC_SECRET_KEY="+e.key,
		"USERSYNC_FAULT_PAGE_DELAY="+pageDelay.String(),
	)
	out, err := os.CreateTemp(e.t.TempDir(), "worker-*.log")
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill() //nolint:errcheck
			cmd.Wait()         //nolint:errcheck
		}
	})
	return cmd
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck
}

// waitRun polls the run row until cond holds.
func (e *crashEnv) waitRun(runID, what string, cond func(*directory.Run) bool) *directory.Run {
	e.t.Helper()
	return waitRunRow(e.t, e.ctx, e.store, runID, what, 3*time.Minute, cond)
}

func (e *crashEnv) start(opts workflows.Options) (string, client.WorkflowRun) {
	e.t.Helper()
	runID := uuid.NewString()
	we, err := e.temporal.Client.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID: workflows.WorkflowID(e.profile.ID), TaskQueue: e.queue,
	}, workflows.WorkflowName, workflows.SyncInput{RunID: runID, ProfileID: e.profile.ID, Trigger: "manual", Options: opts})
	if err != nil {
		e.t.Fatal(err)
	}
	return runID, we
}

// TestWorkerKilledDuringFetchAndApply syncs a 20,000-row CSV while the
// worker process is killed (SIGKILL) once during fetch and once during
// apply; the run must complete with exactly the directory and the counts a
// clean run gives: nobody duplicated, nobody wrongly disabled.
func TestWorkerKilledDuringFetchAndApply(t *testing.T) {
	if testing.Short() {
		t.Skip("long integration test")
	}
	e := &crashEnv{t: t, ctx: context.Background(), queue: "crash-" + uuid.NewString()[:8], key: secret.GenerateKey()}
	e.dbURL = dbtest.URL(t, schema.Postgres)
	db, err := directory.OpenDB(e.ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.store = directory.NewSQLStore(db)
	e.box, _ = secret.NewBox(e.key)
	e.temporal = testenv.StartDevServer(t)

	cfg := &profile.Config{Name: "Crash CSV", Provider: csv.Name,
		Block: &csv.Profile{Source: "document", DocumentID: "set-below", UserMatchField: "username",
			ManagerField: "manager", DefaultPassword: "Welcome-1", GroupsField: "groups",
			ColumnMap: map[string]string{"department": "department"}},
		GroupSync: profile.GroupSync{Mode: profile.GroupSyncAll}, PopulateOrgChart: true}
	cfg.Normalize()
	clear, sealed, err := profile.Seal(e.box, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.profile = &directory.Profile{ID: uuid.NewString(), Name: cfg.Name, Provider: cfg.Provider, Enabled: true,
		DirectoryKey: "p-crash", Config: clear, Secrets: sealed}
	if err := e.store.CreateProfile(e.ctx, e.profile); err != nil {
		t.Fatal(err)
	}

	// A clean first sync of 15,000 users by an in-process worker.
	acts := activities.New(activities.Deps{Store: e.store, Box: e.box})
	w := worker.New(e.temporal.Client, e.queue, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	e.setCSV(peopleCSV(0, 15000, never, never))
	_, we := e.start(workflows.Options{})
	var first directory.RunCounts
	if err := we.Get(e.ctx, &first); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	w.Stop()
	if first.Created != 15000 {
		t.Fatalf("first sync counts %+v", first)
	}

	// The second sync: 100 leave, 500 change, 5,000 join.
	removed := func(i int) bool { return i < 100 }
	changed := func(i int) bool { return i >= 100 && i < 600 }
	e.setCSV(peopleCSV(0, 20000, removed, changed))
	proc := e.startWorker(100 * time.Millisecond)
	runID, we := e.start(workflows.Options{HeartbeatTimeout: 3 * time.Second})

	e.waitRun(runID, "fetch under way", func(r *directory.Run) bool {
		return r.Counts.Fetched >= 2000 && !r.FetchDone
	})
	kill(t, proc)
	t.Log("worker killed during fetch")
	proc = e.startWorker(100 * time.Millisecond)
	r := e.waitRun(runID, "apply under way", func(r *directory.Run) bool {
		return r.ApplyStep == "create" && r.ApplyCursor != ""
	})
	if !r.FetchDone {
		t.Fatal("apply before the fetch completed")
	}
	kill(t, proc)
	t.Log("worker killed during apply")
	e.startWorker(0)

	var counts directory.RunCounts
	if err := we.Get(e.ctx, &counts); err != nil {
		t.Fatalf("second sync: %v", err)
	}
	run, err := e.store.GetRun(e.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	want := directory.RunCounts{Fetched: 19900, Created: 5000, Updated: 500, Unchanged: 14400, Disabled: 100, Departed: 100,
		MembershipsAdded: 10000, ManagersLinked: 5000}
	if run.Status != directory.RunSucceeded || run.Counts != want {
		t.Fatalf("run %s counts\n got %+v\nwant %+v", run.Status, run.Counts, want)
	}

	// The directory is exactly right.
	var n struct {
		Total, Distinct, Disabled, WrongDisabled, Members, Managed int
	}
	q := func(dst *int, query string) {
		if err := db.GetContext(e.ctx, dst, query); err != nil {
			t.Fatal(err)
		}
	}
	q(&n.Total, `SELECT COUNT(*) FROM users`)
	q(&n.Distinct, `SELECT COUNT(DISTINCT external_id) FROM users`)
	q(&n.Disabled, `SELECT COUNT(*) FROM users WHERE status = 'disabled'`)
	q(&n.WrongDisabled, `SELECT COUNT(*) FROM users WHERE status = 'disabled' AND external_id >= 'u00100'`)
	q(&n.Members, `SELECT COUNT(*) FROM group_members`)
	q(&n.Managed, `SELECT COUNT(*) FROM users WHERE manager_id IS NOT NULL`)
	if n.Total != 20000 || n.Distinct != 20000 || n.Disabled != 100 || n.WrongDisabled != 0 || n.Members != 40000 || n.Managed != 19990 {
		t.Fatalf("directory %+v", n)
	}
	var ledger, created int
	q(&ledger, `SELECT COUNT(*) FROM change_ledger WHERE run_id = '`+runID+`' AND action = 'created'`)
	q(&created, `SELECT COUNT(*) FROM audit_log WHERE run_id = '`+runID+`' AND action = 'user_created'`)
	if ledger != 5000 || created != 5000 {
		t.Fatalf("ledger %d, audit %d: replayed batches recorded twice", ledger, created)
	}
}
