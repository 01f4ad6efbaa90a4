package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/metrics"
	"github.com/usersync/usersync/metrics/runmetrics"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/runs"
	"github.com/usersync/usersync/secret"
)

// Timeouts of the HTTP servers. A request must arrive within
// httpReadTimeout and be answered within httpWriteTimeout: enough for a
// provider call behind "Test connection" or the group picker (a remote
// CSV download may take a minute), short enough that a slow client cannot
// hold a connection open. A document upload lifts both for itself
// (api.longBody).
const (
	httpReadHeaderTimeout = 10 * time.Second
	httpReadTimeout       = time.Minute
	httpWriteTimeout      = 2 * time.Minute
	httpIdleTimeout       = 2 * time.Minute
)

// newHTTPServer is an http.Server with the timeouts above.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// observability is what one process measures: one registry for all of
// it, and the HTTP client every provider call of the process goes
// through, so that provider requests and throttles are counted.
type observability struct {
	reg          *prometheus.Registry
	providerHTTP *http.Client
	// providerDial opens providers' raw connections (LDAP) under the same
	// outbound policy as providerHTTP.
	providerDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// loopbackHTTP lets provider URLs use plain http to loopback hosts:
	// `usersync dev` only, so that a laptop can sync a simulated tenant.
	loopbackHTTP bool
}

func newObservability(loopbackHTTP bool, allow []netip.Prefix) *observability {
	policy := outboundPolicy{allow: allow, loopback: loopbackHTTP}
	client := &http.Client{Transport: outboundTransport(policy)}
	return &observability{reg: metrics.NewRegistry(), providerHTTP: metrics.InstrumentClient(client),
		providerDial: policy.dialer().DialContext, loopbackHTTP: loopbackHTTP}
}

// deps are the activities' dependencies with the counted provider client.
func (o *observability) deps(store directory.Store, box *secret.Box, log *slog.Logger) activities.Deps {
	return activities.Deps{Store: store, Box: box, Logger: log, HTTPClient: o.providerHTTP, Dial: o.providerDial,
		AllowHTTPLoopback: o.loopbackHTTP}
}

// temporalOptions reports the Temporal SDK's metrics on the registry and,
// in a process that runs the worker, counts runs as the worker ends them
// (the interceptor reaches the worker through the client).
func (o *observability) temporalOptions(store directory.Store, log *slog.Logger, worker bool) func(*client.Options) {
	return func(opts *client.Options) {
		opts.MetricsHandler = metrics.TemporalHandler(o.reg)
		if worker {
			opts.Interceptors = append(opts.Interceptors, runmetrics.New(o.reg, store, log))
		}
	}
}

// tester is "Test connection" through the counted client.
func (o *observability) tester(store directory.Store, box *secret.Box, log *slog.Logger) api.TesterFunc {
	acts := activities.New(o.deps(store, box, log))
	return func(ctx context.Context, p *directory.Profile, cfg *profile.Config) ([]string, error) {
		return acts.TestConnection(metrics.WithProvider(ctx, p.Provider), p, cfg)
	}
}

// providerGroups is the API's group picker. Each request gets activities
// of its own, since the page size it asks for is a dependency of theirs.
func (o *observability) providerGroups(store directory.Store, box *secret.Box, log *slog.Logger) api.ProviderGroupsFunc {
	return func(ctx context.Context, p *directory.Profile, cfg *profile.Config, search, cursor string, limit int) (provider.Page[provider.Group], error) {
		d := o.deps(store, box, log)
		d.PageSize = limit
		acts := activities.New(d)
		return acts.ProviderGroups(metrics.WithProvider(ctx, p.Provider), p, cfg, search, cursor)
	}
}

// progress asks a run's workflow for its live phase and counts.
func progress(wf *runs.Client) api.ProgressFunc {
	return func(ctx context.Context, run *directory.Run) (api.Progress, error) {
		p, err := wf.Progress(ctx, run)
		if err != nil {
			return api.Progress{}, err
		}
		return api.Progress{Phase: p.Phase, Counts: p.Counts}, nil
	}
}

// serveMetrics serves /metrics and /healthz on addr (USERSYNC_METRICS_LISTEN)
// until stop is called. A failure of the listener after the start is sent
// to errc, if nothing else is there yet.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger, errc chan<- error) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (USERSYNC_METRICS_LISTEN): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg, log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	srv := newHTTPServer(mux, log)
	log.Info("metrics listening", "url", "http://"+displayAddr(ln.Addr().String())+"/metrics")
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case errc <- fmt.Errorf("metrics server: %w", err):
			default:
			}
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}, nil
}
