package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/runs"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
	"github.com/usersync/usersync/worker"
)

// doctorWorld is a database and a key for doctor to look at.
type doctorWorld struct {
	t     *testing.T
	url   string
	db    *directory.DB
	store *directory.SQLStore
	key   string
	box   *secret.Box
	queue string
}

func newDoctorWorld(t *testing.T, migrate bool) *doctorWorld {
	t.Helper()
	ctx := context.Background()
	w := &doctorWorld{t: t, url: dbtest.URL(t, schema.Postgres), key: secret.GenerateKey(), queue: "doctor-" + uuid.NewString()[:8]}
	db, err := directory.OpenDB(ctx, w.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if migrate {
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w.db, w.store = db, directory.NewSQLStore(db)
	w.box, _ = secret.NewBox(w.key)
	return w
}

// addProfile stores a CSV profile sealed with box.
func (w *doctorWorld) addProfile(name string, box *secret.Box, edit func(*profile.Config)) *directory.Profile {
	w.t.Helper()
	ctx := context.Background()
	doc, err := w.store.CreateDocument(ctx, "p.csv", "text/csv",
		strings.NewReader("username,firstName,lastName,email\nada,Ada,L,ada@example.com\n"), 1<<20)
	if err != nil {
		w.t.Fatal(err)
	}
	cfg := &profile.Config{Name: name, Provider: csv.Name,
		Block: &csv.Profile{Source: csv.SourceDocument, DocumentID: doc.ID, UserMatchField: "username", DefaultPassword: "Welcome-1"}}
	if edit != nil {
		edit(cfg)
	}
	cfg.Normalize()
	if errs := cfg.Validate(); errs != nil {
		w.t.Fatal(errs)
	}
	clear, sealed, err := profile.Seal(box, cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	p := &directory.Profile{Name: name, Provider: cfg.Provider, Enabled: cfg.IsEnabled(),
		DirectoryKey: "p-" + uuid.NewString()[:8], Config: clear, Secrets: sealed}
	if err := w.store.CreateProfile(ctx, p); err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *doctorWorld) env(temporal string, extra map[string]string) map[string]string {
	m := map[string]string{"DATABASE_URL": w.url, "TEMPORAL_ADDRESS": temporal, "TEMPORAL_TASK_QUEUE": w.queue,
		"USERSYNC_SECRET_KEY": w.key, "USERSYNC_API_TOKEN": "doctor-test-token-0123456789abcdef", "USERSYNC_LOG_LEVEL": "error"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func hourly(c *profile.Config) {
	c.Schedule = profile.Schedule{Frequency: profile.ScheduleInterval, EveryMinutes: 60}
}

func TestDoctorHealthy(t *testing.T) {
	ctx := context.Background()
	w := newDoctorWorld(t, true)
	tmp := testenv.StartDevServer(t)
	wk := worker.New(tmp.Client, w.queue, activities.New(activities.Deps{Store: w.store, Box: w.box}), worker.Options{})
	if err := wk.Start(); err != nil {
		t.Fatal(err)
	}
	defer wk.Stop()
	w.addProfile("Plain", w.box, nil)
	scheduled := w.addProfile("Hourly", w.box, hourly)
	off := false
	w.addProfile("Off", w.box, func(c *profile.Config) { c.Enabled = &off })
	wf := &runs.Client{Temporal: tmp.Client, TaskQueue: w.queue, Namespace: "default", Store: w.store}
	if err := wf.SyncSchedule(ctx, scheduled); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCmd(t, ctx, w.env(tmp.Address, nil), "doctor")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"ok    database: postgres", "ok    temporal: " + tmp.Address, "ok    search attributes",
		"ok    workers: 1 worker(s) poll task queue", "ok    schedules: the schedules of 3 profile(s) are in step",
		`ok    profile "Plain" (csv): connection ok`, `ok    profile "Hourly" (csv): connection ok`,
		`skip  profile "Off" (csv): disabled`, "no problem found",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, w.key) || strings.Contains(out, "Welcome-1") {
		t.Fatal("doctor printed a secret")
	}

	// The container health check of a worker: only what it depends on.
	code, out, _ = runCmd(t, ctx, w.env(tmp.Address, nil), "doctor", "--only", "database,temporal")
	if code != 0 || strings.Contains(out, "profile") || strings.Contains(out, "workers") {
		t.Fatalf("--only database,temporal: exit %d\n%s", code, out)
	}
}

func TestDoctorFindsProblems(t *testing.T) {
	ctx := context.Background()

	t.Run("nothing reachable", func(t *testing.T) {
		w := newDoctorWorld(t, false)
		env := w.env("127.0.0.1:"+strconv.Itoa(freePort(t)), map[string]string{"USERSYNC_SECRET_KEY": "", "USERSYNC_API_TOKEN": ""})
		code, out, errOut := runCmd(t, ctx, env, "doctor")
		if code != 1 || !strings.Contains(errOut, "problem(s) found") {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		// Every migration the binary has is pending on a fresh database.
		sqls, err := filepath.Glob(filepath.Join("..", "..", "schema", "postgres", "*.sql"))
		if err != nil || len(sqls) == 0 {
			t.Fatalf("migrations: %v %v", sqls, err)
		}
		for _, want := range []string{
			"FAIL  USERSYNC_SECRET_KEY: not set", "WARN  USERSYNC_API_TOKEN",
			fmt.Sprintf("FAIL  migrations: %d of %d not applied", len(sqls), len(sqls)), "fix: run `usersync migrate`",
			"FAIL  temporal: cannot connect", "fix: check TEMPORAL_ADDRESS",
			"skip  workers: Temporal is not reachable", "skip  schedules: the database is not ready",
			"skip  connections: the database is not ready",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("doctor output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("search attributes missing", func(t *testing.T) {
		w := newDoctorWorld(t, true)
		// A Temporal server nobody prepared: `dev` would register them.
		addr := startTemporal(t)
		code, out, _ := runCmd(t, ctx, w.env(addr, nil), "doctor", "--only", "temporal")
		if code != 1 || !strings.Contains(out, "FAIL  search attributes: ProfileName, Provider missing") ||
			!strings.Contains(out, "fix: start `usersync api` or `usersync worker` once") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})

	t.Run("out of step", func(t *testing.T) {
		w := newDoctorWorld(t, true)
		tmp := testenv.StartDevServer(t) // and no worker on the queue
		addr := tmp.Address
		wf := &runs.Client{Temporal: tmp.Client, TaskQueue: w.queue, Namespace: "default", Store: w.store}

		w.addProfile("Hourly without schedule", w.box, hourly)
		paused := w.addProfile("Disabled but running", w.box, hourly)
		if err := wf.SyncSchedule(ctx, paused); err != nil {
			t.Fatal(err)
		}
		paused.Enabled = false // saved without its schedule following
		if err := w.store.UpdateProfile(ctx, paused); err != nil {
			t.Fatal(err)
		}
		ghost := &directory.Profile{ID: "ghost", Name: "Ghost", Config: paused.Config, Enabled: true}
		if err := wf.SyncSchedule(ctx, ghost); err != nil {
			t.Fatal(err)
		}
		stranger, _ := secret.NewBox(secret.GenerateKey())
		w.addProfile("Other key", stranger, nil)
		w.addProfile("Unreachable", w.box, func(c *profile.Config) {
			c.Block.(*csv.Profile).Source, c.Block.(*csv.Profile).DocumentID = csv.SourceRemote, ""
			c.Block.(*csv.Profile).URL = "https://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/people.csv"
		})

		// The outbound policy lets the loopback address through, as it
		// would an on-premises server: the connection is then refused.
		code, out, _ := runCmd(t, ctx, w.env(addr, map[string]string{"USERSYNC_OUTBOUND_ALLOW": "127.0.0.1/32"}), "doctor")
		if code != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, want := range []string{
			"ok    database", "ok    search attributes",
			"FAIL  workers: no worker polls task queue " + strconv.Quote(w.queue),
			`FAIL  schedule of "Hourly without schedule": the profile syncs every 60 minutes but Temporal has no schedule for it`,
			`FAIL  schedule of "Disabled but running": paused=false while the profile is enabled=false`,
			"schedule(s) of deleted profiles still start runs: " + runs.ScheduleID("ghost"),
			`FAIL  profile "Other key" (csv): open profile secrets`, "USERSYNC_SECRET_KEY_OLD",
			`FAIL  profile "Unreachable" (csv): test connection`, "fix: the provider cannot be reached from here",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("doctor output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("usage", func(t *testing.T) {
		if code, _, errOut := runCmd(t, ctx, nil, "doctor", "--only", "vibes"); code != 2 || !strings.Contains(errOut, `unknown check "vibes"`) {
			t.Fatalf("unknown check: exit %d, %s", code, errOut)
		}
	})
}

func TestDoctorProbe(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	ctx := context.Background()
	if code, out, errOut := runCmd(t, ctx, nil, "doctor", "--probe", srv.URL+"/readyz"); code != 0 || !strings.Contains(out, "200 OK") {
		t.Fatalf("probe of a ready server: exit %d %s %s", code, out, errOut)
	}
	status = http.StatusServiceUnavailable
	if code, _, errOut := runCmd(t, ctx, nil, "doctor", "--probe", srv.URL+"/readyz"); code != 1 || !strings.Contains(errOut, "503") {
		t.Fatalf("probe of a server not ready: exit %d %s", code, errOut)
	}
	srv.Close()
	if code, _, _ := runCmd(t, ctx, nil, "doctor", "--probe", srv.URL+"/readyz"); code != 1 {
		t.Fatalf("probe of a server gone: exit %d", code)
	}
}
