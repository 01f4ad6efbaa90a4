package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/idpsim/graph"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/azure"
)

// tenantOptions shape the simulated tenant of a size: everyone in nested
// groups under "All Staff" bar 1%, 2% disabled accounts, a group per 2,000
// users or so.
func tenantOptions(n int) graph.TenantOptions {
	return graph.TenantOptions{Seed: uint64(n), Users: n, Groups: min(max(12, n/2000), 600), Depth: 2,
		OutOfScopeShare: 0.01, DisabledShare: 0.02}
}

// size runs the scenarios of one tenant size.
func (e *env) size(ctx context.Context, n int) (Result, error) {
	r := Result{Size: n}
	t0 := time.Now()
	ten := e.sim.AddTenant(tenantOptions(n))
	defer e.sim.RemoveTenant(ten.ID)
	e.log.Info("tenant generated", "users", n, "took", time.Since(t0).Round(time.Millisecond))
	p, err := e.createProfile(ctx, ten, n)
	if err != nil {
		return r, err
	}
	if err := e.runs(ctx, &r, p, "", func() (int, error) { return change(ten, e.o.ChangeShare) }); err != nil {
		return r, err
	}
	if r.Baseline, err = e.baseline(ctx, ten); err != nil {
		return r, err
	}
	e.log.Info("baseline", "users", r.Baseline.Users, "took", r.Baseline.Wall.Round(time.Millisecond),
		"usersPerSecond", int(r.Baseline.UsersPerSecond()), "ratio", fmt.Sprintf("%.2f", r.Ratio()))
	return r, nil
}

// runs measures the four runs of a size on a worker of its own: a full
// sync, a re-sync with nothing changed (delta, then forced full), and an
// incremental one after change; label prefixes their progress lines.
func (e *env) runs(ctx context.Context, r *Result, p *directory.Profile, label string, change func() (int, error)) error {
	w, err := e.startWorker(ctx, r.Size)
	if err != nil {
		return err
	}
	defer w.stop()
	if r.Full, err = e.measure(ctx, w, p, label+"full sync"); err != nil {
		return err
	}
	if r.NoChange, err = e.measure(ctx, w, p, label+"re-sync, nothing changed"); err != nil {
		return err
	}
	if err := e.store.ForgetSyncState(ctx, p.DirectoryKey); err != nil {
		return err
	}
	if r.FullNoChange, err = e.measure(ctx, w, p, label+"forced full re-sync, nothing changed"); err != nil {
		return err
	}
	if r.Changes, err = change(); err != nil {
		return err
	}
	r.Incremental, err = e.measure(ctx, w, p, fmt.Sprintf("%sincremental sync, %d changes", label, r.Changes))
	return err
}

// createProfile stores the profile of a tenant: the whole "All Staff"
// tree in scope, every security group synced, managers, two mapped
// attributes.
func (e *env) createProfile(ctx context.Context, ten *graph.Tenant, n int) (*directory.Profile, error) {
	root, ok := ten.GroupByName("All Staff")
	if !ok {
		return nil, fmt.Errorf("the tenant has no root group")
	}
	c := ten.Client()
	cfg := &profile.Config{Name: fmt.Sprintf("Bench %d", n), Provider: azure.Name,
		Block: &azure.Profile{TenantID: ten.ID, ClientID: c.ID, ClientSecret: c.Secret,
			AuthorityURL: e.simSrv.URL, GraphBaseURL: e.simSrv.URL + "/v1.0"},
		Groups: []string{root.ID}, GroupSync: profile.GroupSync{Mode: profile.GroupSyncAll}, PopulateOrgChart: true,
		AttributeMap: map[string]string{"department": "department", "jobTitle": "title"},
		Safety:       profile.Safety{MaxDisables: n, MaxDisablePercent: 100}}
	return e.storeProfile(ctx, cfg, fmt.Sprintf("bench-%d", n))
}

// storeProfile seals cfg's secrets and stores it as an enabled profile of
// its own directory.
func (e *env) storeProfile(ctx context.Context, cfg *profile.Config, directoryKey string) (*directory.Profile, error) {
	cfg.Normalize()
	clear, sealed, err := profile.Seal(e.box, cfg)
	if err != nil {
		return nil, err
	}
	p := &directory.Profile{ID: uuid.NewString(), Name: cfg.Name, Provider: cfg.Provider, Enabled: true,
		DirectoryKey: directoryKey, Config: clear, Secrets: sealed}
	if err := e.store.CreateProfile(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// worker is a `usersync worker` child process.
type worker struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (e *env) startWorker(ctx context.Context, n int) (*worker, error) {
	logf, err := os.Create(fmt.Sprintf("%s/worker-%d.log", e.dir, n))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.o.Worker, "worker")
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+e.dbURL, "TEMPORAL_ADDRESS="+e.tmpAdr, "TEMPORAL_TASK_QUEUE="+taskQueue,
		"USERSYNC_SECRET_KEY="+e.key, "SSL_CERT_FILE="+e.caFile, "USERSYNC_LOG_LEVEL=warn", "USERSYNC_LOG_FORMAT=text",
		// The simulated tenant is served on loopback, which a worker's
		// provider requests may not reach unless allowed.
		"USERSYNC_OUTBOUND_ALLOW=127.0.0.0/8")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start the worker: %w", err)
	}
	w := &worker{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait() //nolint:errcheck // its end is what done says
		logf.Close()
		close(w.done)
	}()
	// Wait until it polls the task queue, so that no run's time includes
	// the worker's start.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := e.tc.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: taskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
			TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY})
		if err == nil && len(resp.GetPollers()) > 0 {
			break
		}
		select {
		case <-w.done:
			return nil, fmt.Errorf("the worker stopped at its start: see %s/worker-%d.log", e.dir, n)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			w.stop()
			return nil, fmt.Errorf("the worker does not poll %s after a minute", taskQueue)
		}
	}
	e.log.Info("worker polling", "pid", cmd.Process.Pid)
	return w, nil
}

func (w *worker) stop() {
	w.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have stopped
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.cmd.Process.Kill() //nolint:errcheck
		<-w.done
	}
}

// peakRSS is the worker's peak resident memory since the last reset.
func (w *worker) peakRSS() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", w.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// resetPeak starts the peak resident memory afresh (Linux: clear_refs 5).
func (w *worker) resetPeak() {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", w.cmd.Process.Pid), []byte("5"), 0) //nolint:errcheck // best effort
}

// measure runs one sync of p through Temporal and measures it.
func (e *env) measure(ctx context.Context, w *worker, p *directory.Profile, label string) (Measure, error) {
	var m Measure
	before, err := e.rowsWritten(ctx)
	if err != nil {
		return m, err
	}
	w.resetPeak()
	since := e.store.Now().Add(-time.Millisecond)
	start := time.Now()
	run, err := e.wf.Start(ctx, p, "manual", false)
	if err != nil {
		return m, err
	}
	if run, err = e.waitRun(ctx, run.ID); err != nil {
		return m, err
	}
	m.Wall = time.Since(start)
	m.PeakRSS = w.peakRSS()
	// The run shows as ended from inside its last activity: let the
	// workflow close, so that its history holds every activity.
	if err := e.tc.GetWorkflow(ctx, run.WorkflowID, "").Get(ctx, nil); err != nil {
		return m, fmt.Errorf("workflow of run %s: %w", run.ID, err)
	}
	if m.Phases, err = readPhases(ctx, e.tc, run.WorkflowID, run.TemporalRunID); err != nil {
		return m, err
	}
	m.Counts = run.Counts
	mode, err := e.store.RunMode(ctx, run.ID)
	if err == nil {
		m.Mode = mode.Mode
	}
	if err := e.db.GetContext(ctx, &m.UserRows, e.db.Rebind(`SELECT COUNT(*) FROM users WHERE directory_key = ? AND updated_at >= ?`),
		p.DirectoryKey, since); err != nil {
		return m, err
	}
	if err := e.db.GetContext(ctx, &m.Users, e.db.Rebind(`SELECT COUNT(*) FROM sync_staged_users s JOIN sync_state st
  ON st.snapshot_run_id = s.run_id WHERE st.directory_key = ?`), p.DirectoryKey); err != nil {
		return m, err
	}
	after, err := e.rowsWritten(ctx)
	if err != nil {
		return m, err
	}
	m.Rows = after - before
	e.log.Info(label, "mode", m.Mode, "took", m.Wall.Round(time.Millisecond), "usersPerSecond", int(m.UsersPerSecond()),
		"peakRSSMB", m.PeakRSS>>20, "userRows", m.UserRows, "rows", m.Rows, "counts", fmt.Sprintf("%+v", m.Counts), "phases", m.Phases.String())
	return m, nil
}

// rowsWritten is the rows Postgres counted inserted, updated or deleted in
// the database's tables. A backend that reported within the last second
// holds its next counts for up to ten seconds once idle (PostgreSQL 15's
// PGSTAT_IDLE_INTERVAL), so a reading is taken as final once it holds for
// longer than that.
func (e *env) rowsWritten(ctx context.Context) (int64, error) {
	read := func() (int64, error) {
		var n int64
		if err := e.db.GetContext(ctx, &n, `SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables`); err != nil {
			return 0, fmt.Errorf("row counts: %w", err)
		}
		return n, nil
	}
	last, err := read()
	if err != nil {
		return 0, err
	}
	for range 6 {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(11 * time.Second):
		}
		n, err := read()
		if err != nil || n == last {
			return n, err
		}
		last = n
	}
	return last, nil
}
