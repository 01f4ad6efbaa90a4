package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/config"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/runs"
	"github.com/usersync/usersync/worker"
)

// Timeouts of the process life cycle.
const (
	// temporalDialTimeout is how long a starting process waits for the
	// Temporal frontend: in docker-compose the server comes up after us.
	temporalDialTimeout = 2 * time.Minute
	// shutdownTimeout bounds the graceful stop of the HTTP server and worker.
	shutdownTimeout = 20 * time.Second
)

func runMigrate(ctx context.Context, e *env, args []string) error {
	cfg, err := loadConfig(e, "migrate", "apply the database migrations and exit", args)
	if err != nil {
		return err
	}
	log := newLogger(e, cfg)
	db, _, err := openDirectory(ctx, cfg, log)
	if err != nil {
		return err
	}
	return db.Close()
}

func runAPI(ctx context.Context, e *env, args []string) error {
	cfg, err := loadConfig(e, "api", "serve the HTTP API", args)
	if err != nil {
		return err
	}
	if err := cfg.Require("USERSYNC_API_TOKEN", "USERSYNC_SECRET_KEY"); err != nil {
		return err
	}
	if err := config.CheckAPIToken(cfg.APIToken); err != nil {
		return err
	}
	return serve(ctx, e, cfg, services{api: true})
}

func runWorker(ctx context.Context, e *env, args []string) error {
	cfg, err := loadConfig(e, "worker", "run the Temporal worker: sync workflows and activities", args)
	if err != nil {
		return err
	}
	if err := cfg.Require("USERSYNC_SECRET_KEY"); err != nil {
		return err
	}
	return serve(ctx, e, cfg, services{worker: true})
}

// services says what one process runs.
type services struct {
	api, worker bool
	// banner, when set, is printed once the API listens (dev).
	banner func(apiURL string)
	// loopbackHTTP allows provider URLs over plain http to loopback hosts
	// (dev: the simulated tenants of `usersync idpsim`).
	loopbackHTTP bool
}

// serve opens the database and Temporal, then runs the API and/or the
// worker until ctx ends (SIGINT/SIGTERM), and stops them gracefully.
func serve(ctx context.Context, e *env, cfg *config.Config, s services) error {
	log := newLogger(e, cfg)
	log.Info("usersync starting", "version", versionString(), "config", cfg)

	box, err := openBox(cfg)
	if err != nil {
		return err
	}
	db, store, err := openDirectory(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	// One registry for the whole process: the API's requests, the runs the
	// worker ends, provider calls and the Temporal SDK's own metrics.
	allow, err := cfg.OutboundAllowNets()
	if err != nil {
		return err
	}
	obs := newObservability(s.loopbackHTTP, allow)
	tc, err := dialTemporal(ctx, cfg, log, obs.temporalOptions(store, log, s.worker))
	if err != nil {
		return err
	}
	defer tc.Close()
	attrs, err := ensureSearchAttributes(ctx, tc, cfg, log)
	if err != nil {
		return err
	}

	errc := make(chan error, 1)

	if cfg.MetricsListen != "" {
		stop, err := serveMetrics(cfg.MetricsListen, obs.reg, log, errc)
		if err != nil {
			return err
		}
		defer stop()
	}

	if s.worker {
		d := obs.deps(store, box, log)
		d.PageDelay = cfg.FaultPageDelay
		acts := activities.New(d)
		if cfg.FaultPageDelay > 0 {
			log.Warn("fault injection: every fetched page is delayed", "pageDelay", cfg.FaultPageDelay.String())
		}
		limits, _ := cfg.ProviderLimits() // checked by Load
		wopts := worker.Options{
			MaxConcurrentActivities:    cfg.ActivitySlots,
			MaxConcurrentWorkflowTasks: cfg.WorkflowSlots,
			StopTimeout:                cfg.WorkerStopTimeout,
			ProviderLimits:             limits,
			ProviderOf: func(ctx context.Context, runID string) (string, error) {
				r, err := store.GetRun(ctx, runID)
				if err != nil {
					return "", err
				}
				return r.Provider, nil
			},
		}
		w := worker.New(tc, cfg.TemporalTaskQueue, acts, wopts)
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker on task queue %s: %w", cfg.TemporalTaskQueue, err)
		}
		defer func() {
			w.Stop()
			log.Info("worker stopped")
		}()
		log.Info("worker polling", "taskQueue", cfg.TemporalTaskQueue, "namespace", cfg.TemporalNamespace, "tuning", wopts)
	}

	if s.api {
		wf := &runs.Client{
			Temporal:  tc,
			TaskQueue: cfg.TemporalTaskQueue,
			Namespace: cfg.TemporalNamespace,
			UIBaseURL: cfg.TemporalUIURL,
			Store:     store,
			Attrs:     attrs,
		}
		// Mend what a save whose schedule step failed, profiles older than
		// schedules, or a Temporal server that lost its schedules left out
		// of step. Not fatal: the API serves anyway, and the next save of
		// a profile tries its schedule again.
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := wf.SyncAllSchedules(sctx); err != nil {
			log.Warn("bring the profiles' Temporal schedules in line", "error", err)
		}
		cancel()
		ready := func(ctx context.Context) error {
			if err := db.PingContext(ctx); err != nil {
				return fmt.Errorf("database: %w", err)
			}
			if _, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
				return fmt.Errorf("temporal: %w", err)
			}
			return nil
		}
		opts := api.Options{
			Store:  store,
			Runner: wf,
			Box:    box,
			Token:  cfg.APIToken,
			Logger: log,
			Ready:  ready,
			// Test connection and the group picker need the sources, not
			// the worker: the api builds its own activities for them.
			Tester:         obs.tester(store, box, log),
			ProviderGroups: obs.providerGroups(store, box, log),
			Progress:       progress(wf),
			Metrics:        obs.reg,
			// One throttle for the API and the admin page: a wrong token
			// counts the same through either.
			SignIns: api.NewSignInThrottle(obs.reg),
		}
		// The API and the admin page (package web, at "/") call one
		// service.
		opts.Service = api.NewService(opts)
		if opts.Admin, err = newAdmin(cfg, opts.Service, store, log); err != nil {
			return err
		}
		var handler http.Handler = api.New(opts)
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s (USERSYNC_LISTEN): %w", cfg.Listen, err)
		}
		apiURL := "http://" + displayAddr(ln.Addr().String()) + "/api/v1"
		log.Info("api listening", "url", apiURL, "admin", strings.TrimSuffix(apiURL, "api/v1"))
		if s.banner != nil {
			s.banner(apiURL)
		}
		srv := newHTTPServer(handler, log)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http server: %w", err)
				return
			}
			errc <- nil
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				log.Warn("http server did not stop in time", "err", err)
				srv.Close()
			}
			log.Info("api stopped")
		}()
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-errc:
		return err
	}
}

// openDirectory opens and migrates the database of cfg.
func openDirectory(ctx context.Context, cfg *config.Config, log *slog.Logger) (*directory.DB, *directory.SQLStore, error) {
	db, err := directory.OpenDB(ctx, cfg.DatabaseURL())
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrate database: %w", err)
	}
	log.Info("database ready", "dialect", db.Dialect)
	return db, directory.NewSQLStore(db), nil
}

// temporalHint says how to get a Temporal server to connect to.
const temporalHint = "start one (`make run` starts a dev server; or `bin/temporal server start-dev`), " +
	"or set TEMPORAL_ADDRESS to a running one"

// dialTemporal connects to the Temporal frontend, retrying while it is not
// up yet (compose starts it alongside us), for at most temporalDialTimeout;
// tune, when set, adds to the client options (metrics, interceptors).
func dialTemporal(ctx context.Context, cfg *config.Config, log *slog.Logger, tune func(*client.Options)) (client.Client, error) {
	opts, err := cfg.TemporalClientOptions()
	if err != nil {
		return nil, err
	}
	opts.Logger = tlog.NewStructuredLogger(log.With("component", "temporal-sdk"))
	if tune != nil {
		tune(&opts)
	}
	deadline := time.Now().Add(temporalDialTimeout)
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		tc, err := client.DialContext(dctx, opts)
		cancel()
		if err == nil {
			log.Info("temporal connected", "address", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace,
				"security", cfg.TemporalSecurity())
			return tc, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to temporal at %s: %w", cfg.TemporalAddress, ctx.Err())
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("connect to temporal at %s (TEMPORAL_ADDRESS) for %s: %w; %s",
				cfg.TemporalAddress, temporalDialTimeout, err, temporalHint)
		}
		// Said in words, with what to do, so that a laptop without a
		// Temporal server does not seem to hang.
		log.Warn(fmt.Sprintf("waiting for the Temporal server at %s (TEMPORAL_ADDRESS, namespace %s); giving up in %s",
			cfg.TemporalAddress, cfg.TemporalNamespace, time.Until(deadline).Round(time.Second)),
			"attempt", attempt, "hint", temporalHint, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to temporal at %s: %w", cfg.TemporalAddress, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// ensureSearchAttributes registers ProfileName and Provider, or says
// exactly what to run when the server will not let us (Temporal Cloud has
// no operator API for them): the process works on without them, its runs
// listed by workflow id (usersync-profile-<profile id>) instead.
func ensureSearchAttributes(ctx context.Context, tc client.Client, cfg *config.Config, log *slog.Logger) (*runs.SearchAttributes, error) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := runs.EnsureSearchAttributes(sctx, tc, cfg.TemporalNamespace)
	if err != nil {
		return nil, fmt.Errorf("register search attributes: %w", err)
	}
	switch {
	case !st.Ready:
		log.Warn(fmt.Sprintf("search attributes %s missing on namespace %s and this client may not add them: "+
			"runs start without them, listed in the Temporal UI by workflow id usersync-profile-<profile id>",
			strings.Join(st.Missing, " and "), st.Namespace),
			"fix", st.Fix(), "error", st.Err)
	case len(st.Added) > 0:
		log.Info("search attributes registered", "namespace", st.Namespace, "added", st.Added)
	}
	return runs.NewSearchAttributes(tc, st), nil
}

// displayAddr turns a listen address into one a browser or curl can use:
// an unspecified host (":8080", "0.0.0.0:8080") becomes 127.0.0.1.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
