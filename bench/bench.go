// Package bench measures usersync end to end, the way it runs in
// production: a real Temporal server (the dev server from bin/temporal), a
// `usersync worker` process, PostgreSQL, and a simulated Entra ID tenant
// (idpsim/graph) served over TLS in this process. For each tenant size it
// times a first full sync, a re-sync with nothing changed (the delta run
// the product makes, and a forced full one), and an incremental sync after
// 1% of the users changed; it reads the worker's peak memory and counts
// the rows written. Beside them a raw baseline reads the same pages with
// net/http and encoding/json and bulk-copies them into a table: the ratio
// says how close the pipeline comes to what the machine can do at all.
//
// It is a command (cmd/usersync-bench, behind `make bench`) rather than a
// Go benchmark because it needs processes: the worker's memory is only its
// own in a process of its own. It is not in the usersync binary, which
// ships without it and without gonum/plot.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/idpsim/graph"
	"github.com/usersync/usersync/runs"
	"github.com/usersync/usersync/secret"
)

// Options configure a benchmark.
type Options struct {
	// Sizes are the tenant sizes, in users.
	Sizes []int
	// LDAPSizes are the sizes, in users, of OpenLDAP directories measured
	// after the tenants (ldap.go); they need slapd and slapadd.
	LDAPSizes []int
	// AdminURL is a Postgres server to create a throwaway database on
	// (dropped at the end), as postgres://user@host:port/db.
	AdminURL string
	// TemporalCLI is the Temporal CLI whose dev server the runs use.
	TemporalCLI string
	// Worker is the usersync binary, run as `usersync worker`.
	Worker string
	// ChangeShare is the share of users the incremental run finds changed
	// (default 0.01).
	ChangeShare float64
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Latency delays every request to the simulated Graph tenant, the
	// page reads of the baseline included: real tenants answer a page in
	// hundreds of milliseconds, the simulator in a few.
	Latency time.Duration
}

// Measure is one timed sync.
type Measure struct {
	Wall     time.Duration
	Users    int // users in the source (the whole tenant's scope)
	PeakRSS  int64
	UserRows int64 // user rows written (created or updated) by the run
	Rows     int64 // rows written to every table, as Postgres counted them
	Mode     string
	Counts   directory.RunCounts
	Phases   Phases
}

// UsersPerSecond is the scope's users over the wall time.
func (m Measure) UsersPerSecond() float64 {
	if m.Wall <= 0 {
		return 0
	}
	return float64(m.Users) / m.Wall.Seconds()
}

// Result is everything measured at one size.
type Result struct {
	Size         int
	Full         Measure // first sync
	NoChange     Measure // re-sync, nothing changed (delta)
	FullNoChange Measure // re-sync, nothing changed, forced full
	Incremental  Measure // after Changes changes (delta)
	Changes      int
	Baseline     Baseline
	// Server is the PostgreSQL server's version and the settings that
	// bound bulk writes, for the report.
	Server string
	// Latency is Options.Latency, for the report (Entra sizes).
	Latency time.Duration
	// LDAP is set for an LDAP directory's size, which has no baseline.
	LDAP *LDAPRun
}

// Ratio is the pipeline's full-sync users/s over the baseline's.
func (r Result) Ratio() float64 {
	if r.Baseline.UsersPerSecond() == 0 {
		return 0
	}
	return r.Full.UsersPerSecond() / r.Baseline.UsersPerSecond()
}

const taskQueue = "usersync-bench"

// env is what every size shares.
type env struct {
	o      Options
	log    *slog.Logger
	dbURL  string
	db     *directory.DB
	store  *directory.SQLStore
	key    string
	box    *secret.Box
	tc     client.Client
	tmpAdr string
	sim    *graph.Server
	simSrv *httptest.Server
	caFile string
	dir    string
	wf     *runs.Client
}

// Run measures every size in turn and returns the results.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if o.ChangeShare <= 0 {
		o.ChangeShare = 0.01
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	e := &env{o: o, log: slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	var err error
	if e.dir, err = os.MkdirTemp("", "usersync-bench-"); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(e.dir)
	drop, err := e.createDatabase(ctx)
	if err != nil {
		return nil, err
	}
	defer drop()
	if e.db, err = directory.OpenDB(ctx, e.dbURL); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer e.db.Close()
	if err := e.db.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	e.store = directory.NewSQLStore(e.db)
	e.key = secret.GenerateKey()
	if e.box, err = secret.NewBox(e.key); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	stop, err := e.startTemporal(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	e.wf = &runs.Client{Temporal: e.tc, TaskQueue: taskQueue, Namespace: "default", Store: e.store}
	if err := e.startSimulator(); err != nil {
		return nil, err
	}
	defer e.simSrv.Close()

	server, err := e.serverSettings(ctx)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, n := range o.Sizes {
		r, err := e.size(ctx, n)
		r.Server, r.Latency = server, o.Latency
		if err != nil {
			return out, fmt.Errorf("bench: %d users: %w", n, err)
		}
		out = append(out, r)
	}
	for _, n := range o.LDAPSizes {
		r, err := e.ldapSize(ctx, n)
		r.Server = server
		if err != nil {
			return out, fmt.Errorf("bench: ldap, %d users: %w", n, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// serverSettings describes the PostgreSQL server: a first sync is bulk
// writing, whose speed the shared buffers and the WAL size between
// checkpoints bound (Debian's defaults are 128 MB and 1 GB).
func (e *env) serverSettings(ctx context.Context) (string, error) {
	var v struct {
		Version string `db:"server_version"`
		Buffers string `db:"shared_buffers"`
		WAL     string `db:"max_wal_size"`
	}
	if err := e.db.GetContext(ctx, &v, `SELECT current_setting('server_version') AS server_version,
  current_setting('shared_buffers') AS shared_buffers, current_setting('max_wal_size') AS max_wal_size`); err != nil {
		return "", fmt.Errorf("bench: server settings: %w", err)
	}
	return fmt.Sprintf("PostgreSQL %s (shared_buffers %s, max_wal_size %s)", v.Version, v.Buffers, v.WAL), nil
}

// createDatabase makes a throwaway database on the admin server.
func (e *env) createDatabase(ctx context.Context) (func(), error) {
	u, err := url.Parse(e.o.AdminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("bench: the database must be a postgres:// URL (got %q)", redact(e.o.AdminURL))
	}
	admin, err := sqlx.ConnectContext(ctx, "postgres", e.o.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("bench: connect to postgres: %w", err)
	}
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail
	name := "usersync_bench_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return nil, fmt.Errorf("bench: create database: %w", err)
	}
	u.Path = "/" + name
	q := u.Query()
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	e.dbURL = u.String()
	e.log.Info("database", "name", name)
	return func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin.ExecContext(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") //nolint:errcheck // best effort
		admin.Close()
	}, nil
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "?"
	}
	return p.Redacted()
}

// startTemporal starts a dev server with usersync's search attributes.
func (e *env) startTemporal(ctx context.Context) (func(), error) {
	if _, err := os.Stat(e.o.TemporalCLI); err != nil {
		return nil, fmt.Errorf("bench: the Temporal CLI (make tools): %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(sctx, testsuite.DevServerOptions{
		ExistingPath: e.o.TemporalCLI,
		ClientOptions: &client.Options{Namespace: "default",
			Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))},
		LogLevel: "error",
		SearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword("ProfileName").ValueSet(""),
			temporal.NewSearchAttributeKeyKeyword("Provider").ValueSet(""),
		),
		Stdout: io.Discard,
		Stderr: io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: start the Temporal dev server: %w", err)
	}
	e.tc, e.tmpAdr = srv.Client(), srv.FrontendHostPort()
	e.log.Info("temporal dev server", "address", e.tmpAdr)
	return func() {
		srv.Client().Close()
		srv.Stop() //nolint:errcheck // best effort at the end
	}, nil
}

// startSimulator serves the Graph simulator over TLS, as Graph is: the
// worker trusts its certificate through SSL_CERT_FILE, so it runs exactly
// as in production, with no loopback allowance.
func (e *env) startSimulator() error {
	e.sim = graph.New(graph.Options{Seed: 1})
	e.sim.SetFaults(graph.Faults{Latency: e.o.Latency})
	e.simSrv = httptest.NewTLSServer(e.sim)
	cert := e.simSrv.Certificate()
	e.caFile = filepath.Join(e.dir, "simulator-ca.pem")
	if err := os.WriteFile(e.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	e.log.Info("graph simulator", "url", e.simSrv.URL)
	return nil
}

// waitRun waits for a run to end and returns it.
func (e *env) waitRun(ctx context.Context, id string) (*directory.Run, error) {
	for {
		run, err := e.store.GetRun(ctx, id)
		if err != nil && !errors.Is(err, directory.ErrNotFound) {
			return nil, err
		}
		if run != nil && directory.IsFinalRunStatus(run.Status) {
			if run.Status != directory.RunSucceeded {
				return run, fmt.Errorf("run %s ended %s: %s", id, run.Status, run.Error)
			}
			return run, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ParseSizes reads "10000,100000" or "10k,1m".
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		mul := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mul, f = 1000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "m"):
			mul, f = 1000000, strings.TrimSuffix(f, "m")
		}
		var n int
		if _, err := fmt.Sscanf(f, "%d", &n); err != nil || n <= 0 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n*mul)
	}
	if len(out) == 0 {
		return nil, errors.New("no sizes")
	}
	return out, nil
}
