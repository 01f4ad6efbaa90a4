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
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/secret"
)

// Runner starts and steers sync runs; runs.Client implements it. A
// Runner that also implements Scheduler gets each profile a Temporal
// schedule, and one that implements Reconciler keeps run reads in step
// with workflows ended in the Temporal UI (schedules.go).
type Runner interface {
	// Start starts a run of the profile and records it in the store. When
	// a run of it is already going, the error satisfies
	// errors.As(err, new(RunInProgress)).
	Start(ctx context.Context, p *directory.Profile, trigger string, dryRun bool) (*directory.Run, error)
	Cancel(ctx context.Context, run *directory.Run) error
	Approve(ctx context.Context, run *directory.Run) error
	// UIURL is the run's page in the Temporal Web UI.
	UIURL(run *directory.Run) string
}

// RunInProgress is what the error of Runner.Start implements when a run of
// the profile is already going: an interface rather than a type, so that
// the api need not import the workflow package that defines the error.
type RunInProgress interface {
	error
	RunningRunID() string
}

// Options configures the API.
type Options struct {
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

// TesterFunc is "Test connection" of a profile: an error fails it; the
// warnings say what works but not fully, each naming what to grant.
type TesterFunc func(ctx context.Context, p *directory.Profile, c *profile.Config) (warnings []string, err error)

// Trigger values a run records.
const (
	TriggerManual = "manual"
	TriggerRetry  = "retry"
)

type server struct {
	store  directory.Store
	runner Runner
	box    *secret.Box
	token  string
	log    *slog.Logger
	ready  func(ctx context.Context) error
	tester TesterFunc
	admin  http.Handler
	extras extras // extras.go
	// signIns throttles wrong tokens (throttle.go).
	signIns *SignInThrottle
	// cursors seals the group picker's cursors (cursor.go).
	cursors *pickerCursors

	maxDocument int64 // maxDocument, lowered by tests
}

// New returns the API handler: /healthz and /readyz, and everything else
// under /api/v1 behind the bearer token.
func New(o Options) http.Handler { return newServer(o).routes() }

func newServer(o Options) *server {
	if o.Store == nil {
		panic("api: Options.Store is required")
	}
	s := &server{store: o.Store, runner: o.Runner, box: o.Box, token: o.Token,
		log: o.Logger, ready: o.Ready, tester: o.Tester, admin: o.Admin, extras: newExtras(o), maxDocument: maxDocument}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.cursors = newPickerCursors(o.Box)
	s.registerCredentialMetric(o.Metrics)
	if s.signIns = o.SignIns; s.signIns == nil {
		var reg prometheus.Registerer
		if o.Metrics != nil {
			reg = o.Metrics
		}
		s.signIns = NewSignInThrottle(reg)
	}
	return s
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

	// Probes answer at the root, where orchestrators look, and under the
	// base path, where API.md lists them.
	for _, g := range []*gin.RouterGroup{&r.RouterGroup, r.Group("/api/v1")} {
		g.GET("/healthz", s.healthz)
		g.GET("/readyz", s.readyz)
	}

	v1 := r.Group("/api/v1", s.auth, s.checkParams)
	h := s.handle

	v1.POST("/profiles", h(s.createProfile))
	v1.GET("/profiles", h(s.listProfiles))
	v1.GET("/profiles/:id", h(s.getProfile))
	v1.PUT("/profiles/:id", h(s.updateProfile))
	v1.DELETE("/profiles/:id", h(s.deleteProfile))
	v1.POST("/profiles/:id/sync", h(s.syncProfile))
	v1.POST("/profiles/:id/reset-last-run", h(s.resetLastRun))
	v1.GET("/profiles/:id/health", h(s.getHealth))
	if s.tester != nil {
		v1.POST("/profiles/:id/test", h(s.testProfile))
	}

	v1.GET("/runs", h(s.listRuns))
	v1.GET("/runs/:id", h(s.getRun))
	v1.POST("/runs/:id/approve", h(s.approveRun))
	v1.POST("/runs/:id/cancel", h(s.cancelRun))
	v1.POST("/runs/:id/retry", h(s.retryRun))
	v1.POST("/runs/:id/revert", h(s.revertRun))
	v1.GET("/runs/:id/changes", h(s.listChanges))

	v1.GET("/users", h(s.listUsers))
	v1.POST("/users", h(s.createUser))
	v1.GET("/users/:id", h(s.getUser))
	v1.PATCH("/users/:id", h(s.patchUser))
	v1.DELETE("/users/:id", h(s.deleteUser))

	v1.GET("/groups", h(s.listGroups))
	v1.POST("/groups", h(s.createGroup))
	v1.GET("/groups/:id", h(s.getGroup))
	v1.GET("/groups/:id/members", h(s.listGroupMembers))
	v1.PUT("/groups/:id/members/:userId", h(s.addGroupMember))
	v1.DELETE("/groups/:id/members/:userId", h(s.removeGroupMember))

	v1.GET("/roles", h(s.listRoles))
	v1.POST("/roles", h(s.createRole))
	v1.PUT("/roles/:id/members/:userId", h(s.addRoleMember))
	v1.DELETE("/roles/:id/members/:userId", h(s.removeRoleMember))

	v1.GET("/audit", h(s.listAudit))
	v1.GET("/settings/licence", h(s.getLicence))
	v1.PUT("/settings/licence", h(s.putLicence))

	v1.POST("/documents", longBody, h(s.uploadDocument))
	v1.GET("/documents", h(s.listDocuments))
	v1.DELETE("/documents/:id", h(s.deleteDocument))
	s.extraRoutes(r, v1)
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
