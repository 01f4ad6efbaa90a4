package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/metrics"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
)

// The group picker, live run progress, switch-directory, /metrics and the
// OpenAPI document. Their dependencies are optional hooks of Options, kept
// together here so that api.go only names them.

// ProviderGroupsFunc lists one page of a profile's provider groups (the
// picker): search narrows by name, cursor is the provider's ("" = first
// page) and limit the page size asked for (providers may cap it).
type ProviderGroupsFunc func(ctx context.Context, p *directory.Profile, cfg *profile.Config,
	search, cursor string, limit int) (provider.Page[provider.Group], error)

// Progress is the live state of a running run, as the workflow's progress
// query answers it.
type Progress struct {
	Phase  string
	Counts directory.RunCounts
}

// ProgressFunc asks a running run's workflow for its progress.
type ProgressFunc func(ctx context.Context, run *directory.Run) (Progress, error)

// extras holds what the optional Options enable.
type extras struct {
	providerGroups ProviderGroupsFunc
	progress       ProgressFunc
	registry       *prometheus.Registry
	httpMetrics    *httpMetrics
}

func newExtras(o Options) extras {
	x := extras{providerGroups: o.ProviderGroups, progress: o.Progress, registry: o.Metrics}
	if o.Metrics != nil {
		x.httpMetrics = newHTTPMetrics(o.Metrics)
	}
	return x
}

// registerCredentialMetric puts the credential metric (health.go) on the
// registry of Options.Metrics; a second server of the same options (the
// admin page's Service) finds it there.
func (s *server) registerCredentialMetric(reg *prometheus.Registry) {
	if reg != nil {
		metrics.Register(reg, newCredentialCollector(s))
	}
}

// useExtras adds the middleware of the extras; it must run before any
// route is added, since Gin applies middleware to later routes only.
func (s *server) useExtras(r *gin.Engine) {
	if s.extras.httpMetrics != nil {
		r.Use(s.extras.httpMetrics.observe)
	}
}

// extraRoutes adds the routes of the extras: v1 is the authenticated
// group; the OpenAPI document and /metrics need no token, like the probes.
func (s *server) extraRoutes(r *gin.Engine, v1 *gin.RouterGroup) {
	open := r.Group("/api/v1")
	open.GET("/openapi.json", s.openAPI)
	if s.extras.registry != nil {
		// At the root, where Prometheus looks by default, and under the
		// base path, like the probes.
		metrics := gin.WrapH(metricsHandler(s.extras.registry, s.log))
		r.GET("/metrics", metrics)
		open.GET("/metrics", metrics)
	}
	if s.extras.providerGroups != nil {
		v1.GET("/profiles/:id/provider-groups", s.handle(s.listProviderGroups))
	}
	v1.POST("/users/switch-directory", s.handle(s.switchDirectory))
}

// uploadTimeout is how long a document upload (up to 100 MB) may take to
// arrive and be answered; every other request has the server's timeouts.
const uploadTimeout = 15 * time.Minute

// longBody lifts the server's read and write deadlines for this request
// to uploadTimeout, so that the server's short ReadTimeout and
// WriteTimeout, which protect everything else, do not cut a large upload.
func longBody(c *gin.Context) {
	rc := http.NewResponseController(c.Writer)
	deadline := time.Now().Add(uploadTimeout)
	// Not supported (a test recorder) means there is no deadline to lift.
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	c.Next()
}
