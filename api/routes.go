package api

import (
	"net/http"
	"regexp"

	"github.com/gin-gonic/gin"
)

// access says what a route asks of its caller.
type access int

const (
	// needsToken: the bearer token, and path and query values the store
	// can take (checkParams).
	needsToken access = iota
	// open: nothing; the probes, /metrics and the OpenAPI document, which
	// orchestrators and tools read before they have a token.
	open
)

// route is one line of the API's route table.
type route struct {
	method string
	// path is written as API.md and api/openapi.json write it
	// ("/api/v1/runs/{id}"), so the table and the document compare as
	// they are (TestOpenAPIMatchesRoutes).
	path    string
	access  access
	handler gin.HandlerFunc
	// upload lifts the server's read and write deadlines (longBody).
	upload bool
}

// table is every route the API serves: the one place a route is added,
// with what it needs. Routes of optional parts (Test connection, the
// group picker, /metrics) are in it only when their part is configured.
func (s *server) table() []route {
	h := s.handle
	rs := []route{
		// Probes answer at the root, where orchestrators look, and under
		// the base path, where API.md lists them.
		{method: http.MethodGet, path: "/healthz", access: open, handler: s.healthz},
		{method: http.MethodGet, path: "/readyz", access: open, handler: s.readyz},
		{method: http.MethodGet, path: "/api/v1/healthz", access: open, handler: s.healthz},
		{method: http.MethodGet, path: "/api/v1/readyz", access: open, handler: s.readyz},
		{method: http.MethodGet, path: "/api/v1/openapi.json", access: open, handler: s.openAPI},

		{method: http.MethodPost, path: "/api/v1/profiles", handler: h(s.createProfile)},
		{method: http.MethodGet, path: "/api/v1/profiles", handler: h(s.listProfiles)},
		{method: http.MethodGet, path: "/api/v1/profiles/{id}", handler: h(s.getProfile)},
		{method: http.MethodPut, path: "/api/v1/profiles/{id}", handler: h(s.updateProfile)},
		{method: http.MethodDelete, path: "/api/v1/profiles/{id}", handler: h(s.deleteProfile)},
		{method: http.MethodPost, path: "/api/v1/profiles/{id}/sync", handler: h(s.syncProfile)},
		{method: http.MethodPost, path: "/api/v1/profiles/{id}/reset-last-run", handler: h(s.resetLastRun)},
		{method: http.MethodGet, path: "/api/v1/profiles/{id}/health", handler: h(s.getHealth)},

		{method: http.MethodGet, path: "/api/v1/runs", handler: h(s.listRuns)},
		{method: http.MethodGet, path: "/api/v1/runs/{id}", handler: h(s.getRun)},
		{method: http.MethodPost, path: "/api/v1/runs/{id}/approve", handler: h(s.approveRun)},
		{method: http.MethodPost, path: "/api/v1/runs/{id}/cancel", handler: h(s.cancelRun)},
		{method: http.MethodPost, path: "/api/v1/runs/{id}/retry", handler: h(s.retryRun)},
		{method: http.MethodPost, path: "/api/v1/runs/{id}/revert", handler: h(s.revertRun)},
		{method: http.MethodGet, path: "/api/v1/runs/{id}/changes", handler: h(s.listChanges)},

		{method: http.MethodGet, path: "/api/v1/users", handler: h(s.listUsers)},
		{method: http.MethodPost, path: "/api/v1/users", handler: h(s.createUser)},
		{method: http.MethodPost, path: "/api/v1/users/switch-directory", handler: h(s.switchDirectory)},
		{method: http.MethodGet, path: "/api/v1/users/{id}", handler: h(s.getUser)},
		{method: http.MethodPatch, path: "/api/v1/users/{id}", handler: h(s.patchUser)},
		{method: http.MethodDelete, path: "/api/v1/users/{id}", handler: h(s.deleteUser)},

		{method: http.MethodGet, path: "/api/v1/groups", handler: h(s.listGroups)},
		{method: http.MethodPost, path: "/api/v1/groups", handler: h(s.createGroup)},
		{method: http.MethodGet, path: "/api/v1/groups/{id}", handler: h(s.getGroup)},
		{method: http.MethodGet, path: "/api/v1/groups/{id}/members", handler: h(s.listGroupMembers)},
		{method: http.MethodPut, path: "/api/v1/groups/{id}/members/{userId}", handler: h(s.addGroupMember)},
		{method: http.MethodDelete, path: "/api/v1/groups/{id}/members/{userId}", handler: h(s.removeGroupMember)},

		{method: http.MethodGet, path: "/api/v1/roles", handler: h(s.listRoles)},
		{method: http.MethodPost, path: "/api/v1/roles", handler: h(s.createRole)},
		{method: http.MethodPut, path: "/api/v1/roles/{id}/members/{userId}", handler: h(s.addRoleMember)},
		{method: http.MethodDelete, path: "/api/v1/roles/{id}/members/{userId}", handler: h(s.removeRoleMember)},

		{method: http.MethodGet, path: "/api/v1/audit", handler: h(s.listAudit)},
		{method: http.MethodGet, path: "/api/v1/settings/licence", handler: h(s.getLicence)},
		{method: http.MethodPut, path: "/api/v1/settings/licence", handler: h(s.putLicence)},

		{method: http.MethodPost, path: "/api/v1/documents", handler: h(s.uploadDocument), upload: true},
		{method: http.MethodGet, path: "/api/v1/documents", handler: h(s.listDocuments)},
		{method: http.MethodDelete, path: "/api/v1/documents/{id}", handler: h(s.deleteDocument)},
	}
	if s.canTest {
		rs = append(rs, route{method: http.MethodPost, path: "/api/v1/profiles/{id}/test", handler: h(s.testProfile)})
	}
	if s.canGroups {
		rs = append(rs, route{method: http.MethodGet, path: "/api/v1/profiles/{id}/provider-groups", handler: h(s.listProviderGroups)})
	}
	if s.registry != nil {
		metrics := gin.WrapH(metricsHandler(s.registry, s.log))
		rs = append(rs,
			route{method: http.MethodGet, path: "/metrics", access: open, handler: metrics},
			route{method: http.MethodGet, path: "/api/v1/metrics", access: open, handler: metrics})
	}
	return rs
}

var pathParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// ginPath is a table path as Gin writes it ("/runs/:id").
func ginPath(p string) string { return pathParam.ReplaceAllString(p, ":$1") }
