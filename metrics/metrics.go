// Package metrics is the Prometheus side of usersync. Each process (api,
// worker, dev) builds one registry with NewRegistry and serves it on
// /metrics; everything that counts registers there, so one scrape shows the
// process whole: HTTP requests of the API, runs and phases the worker ended
// (package runmetrics), provider requests, and the Temporal SDK's own
// metrics through TemporalHandler.
//
// The package has no dependency on the rest of usersync, so providers can
// call its hooks (Throttled, WithProvider) without an import cycle.
package metrics

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric usersync defines (the Temporal SDK's
// keep their temporal_ prefix).
const Namespace = "usersync"

// NewRegistry returns a registry with the Go runtime and process
// collectors and the provider request metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		providerRequests, providerDuration, providerThrottles,
	)
	return reg
}

// Handler serves the registry in the Prometheus text format. A collector
// that fails is logged and left out of the answer rather than failing the
// whole scrape.
func Handler(reg prometheus.Gatherer, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Register registers c on reg, or returns the collector already registered
// under the same descriptors, so that building a component twice on one
// registry (tests, a restarted handler) shares its series.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // an invalid or clashing metric definition is a programming error
	}
	return c
}
