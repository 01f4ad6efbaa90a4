// Package api is the HTTP API of usersync (API.md): connection profiles,
// runs, the synced directory, audit and documents, on Gin. It holds no
// state of its own: the directory.Store keeps everything and a Runner
// starts and steers the Temporal workflows, so the api package never
// imports the workflow code and its handlers are tested against a real
// store and a fake Runner.
//
// Every error leaves as {"error":{"code","message","details"?}}, and no
// response or log line carries a secret: profiles are sealed before they
// reach the store and redacted on every read.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/secret"
	"github.com/usersync/usersync/service"
)

// The types of Options are the service's (package service), named here
// too for the code that wires the API.
type (
	Runner             = service.Runner
	RunInProgress      = service.RunInProgress
	Scheduler          = service.Scheduler
	Reconciler         = service.Reconciler
	Reverter           = service.Reverter
	TesterFunc         = service.TesterFunc
	ProviderGroupsFunc = service.ProviderGroupsFunc
	Progress           = service.Progress
	ProgressFunc       = service.ProgressFunc
)

// Options configures the API.
type Options struct {
	// Service, when set, is the service the API calls (the admin page's
	// too); nil makes one of the fields below (NewService).
	Service *service.Service

	Store  directory.Store
	Runner Runner
	Box    *secret.Box // seals profile secrets
	Token  string      // the bearer token; empty refuses every authenticated request
	Logger *slog.Logger
	// Ready checks the database and Temporal for /readyz; nil means ready.
	Ready func(ctx context.Context) error
	// Tester runs "Test connection" for POST /profiles/{id}/test; nil
	// leaves the endpoint out.
	Tester TesterFunc
	// Admin, when set, serves every path outside /api/v1 and the probes:
	// the admin page (package web), on the API's origin so that its
	// cookies and forms never cross origins.
	Admin http.Handler

	// ProviderGroups lists a profile's provider groups for
	// GET /profiles/{id}/provider-groups (the picker); nil leaves it out.
	ProviderGroups ProviderGroupsFunc
	// Progress asks a running run's workflow for its live phase and
	// counts, shown by GET /runs and /runs/{id}; nil shows the stored ones.
	Progress ProgressFunc
	// Metrics, when set, is served on /metrics (no token) and receives the
	// API's HTTP request metrics.
	Metrics *prometheus.Registry
	// SignIns throttles wrong tokens; the API and the admin page (through
	// Service) share it when both are made from the same Options. Nil
	// makes one, counted on Metrics.
	SignIns *SignInThrottle
}

type server struct {
	svc   *service.Service
	store directory.Store
	token string
	log   *slog.Logger
	ready func(ctx context.Context) error
	admin http.Handler
	// canTest and canGroups add the routes of Test connection and the
	// group picker (routes.go).
	canTest, canGroups bool
	registry           *prometheus.Registry
	httpMetrics        *httpMetrics
}

// New returns the API handler: /healthz and /readyz, and everything else
// under /api/v1 behind the bearer token.
func New(o Options) http.Handler { return newServer(o).routes() }

func newServer(o Options) *server {
	svc := o.Service
	if svc == nil {
		svc = NewService(o)
	}
	s := &server{svc: svc, store: svc.Store(), token: o.Token, log: o.Logger, ready: o.Ready, admin: o.Admin,
		canTest: svc.CanTest(), canGroups: svc.CanListGroups(), registry: o.Metrics}
	if s.log == nil {
		s.log = slog.Default()
	}
	if o.Metrics != nil {
		s.httpMetrics = newHTTPMetrics(o.Metrics)
	}
	return s
}

// NewService is the service of these options (Service, Admin and the
// API's own settings are not used): what the admin page calls when the
// API and the page are made from the same Options.
func NewService(o Options) *service.Service {
	return service.New(service.Options{Store: o.Store, Runner: o.Runner, Box: o.Box, Logger: o.Logger,
		Tester: o.Tester, ProviderGroups: o.ProviderGroups, Progress: o.Progress, Metrics: o.Metrics, SignIns: o.SignIns})
}

func (s *server) routes() http.Handler {
	gin.SetMode(gin.ReleaseMode) // no debug banner or route dump on stdout
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(s.requestID, s.logRequests, s.recover)
	s.useExtras(r)
	r.NoRoute(func(c *gin.Context) {
		if s.admin != nil && c.Request.URL.Path != "/api/v1" && !strings.HasPrefix(c.Request.URL.Path, "/api/v1/") {
			// Gin has set 404 for the unmatched route; a handler that
			// writes without WriteHeader means 200.
			c.Status(http.StatusOK)
			s.admin.ServeHTTP(c.Writer, c.Request)
			return
		}
		s.fail(c, errNotFound("no such endpoint"))
	})
	r.NoMethod(func(c *gin.Context) {
		s.fail(c, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "method not allowed on this endpoint"})
	})

	for _, rt := range s.table() {
		handlers := []gin.HandlerFunc{}
		if rt.access == needsToken {
			handlers = append(handlers, s.auth, s.checkParams)
		}
		if rt.upload {
			handlers = append(handlers, longBody)
		}
		r.Handle(rt.method, ginPath(rt.path), append(handlers, rt.handler)...)
	}
	return r
}

// handle adapts a handler that returns its error to Gin, so that every
// failure is answered in one place and in one shape.
func (s *server) handle(f func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := f(c); err != nil {
			s.fail(c, err)
		}
	}
}

func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *server) readyz(c *gin.Context) {
	if s.ready != nil {
		if err := s.ready(c.Request.Context()); err != nil {
			// The cause goes to the log, not to an unauthenticated caller.
			s.log.Warn("not ready", "error", err, "requestId", requestIDOf(c))
			s.fail(c, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "not ready"})
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
