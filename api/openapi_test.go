package api

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
)

// fullEnv is a server with every optional part configured, so that every
// route exists.
func fullEnv(t *testing.T) *env {
	return newEnv(t, func(o *Options) {
		o.Tester = func(context.Context, *directory.Profile, *profile.Config) ([]string, error) { return nil, nil }
		o.ProviderGroups = func(context.Context, *directory.Profile, *profile.Config, string, string, int) (provider.Page[provider.Group], error) {
			return provider.Page[provider.Group]{}, nil
		}
		o.Progress = func(context.Context, *directory.Run) (Progress, error) { return Progress{}, nil }
		o.Metrics = prometheus.NewRegistry()
	})
}

type openAPIDocument struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]openAPIParam `json:"parameters"`
	} `json:"components"`
}

type openAPIParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type openAPIOperation struct {
	OperationID string                     `json:"operationId"`
	Parameters  []openAPIParam             `json:"parameters"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Security    *[]map[string][]string     `json:"security"`
	RequestBody json.RawMessage            `json:"requestBody"`
}

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}

func loadOpenAPI(t *testing.T) openAPIDocument {
	t.Helper()
	var doc openAPIDocument
	require.NoError(t, json.Unmarshal(openAPIDoc, &doc))
	return doc
}

// operations lists "METHOD /path/{param}" -> operation.
func (d openAPIDocument) operations(t *testing.T) map[string]openAPIOperation {
	t.Helper()
	out := map[string]openAPIOperation{}
	for path, item := range d.Paths {
		for method, raw := range item {
			if !httpMethods[method] {
				continue
			}
			var op openAPIOperation
			require.NoError(t, json.Unmarshal(raw, &op), "%s %s", method, path)
			out[strings.ToUpper(method)+" "+path] = op
		}
	}
	return out
}

// The document lists exactly the routes of the table, each open (no
// token) exactly when the document says so, and Gin serves the table: a
// route added without its documentation, documentation of a route that is
// gone, or a route registered outside the table fails here.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := fullEnv(t)
	table := map[string]route{}
	for _, r := range e.srv.table() {
		table[r.method+" "+r.path] = r
	}
	ops := loadOpenAPI(t).operations(t)
	var missing, stale []string
	for k, r := range table {
		op, ok := ops[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		isOpen := op.Security != nil && len(*op.Security) == 0
		assert.Equal(t, isOpen, r.access == open, "%s: the table and the document disagree on its token", k)
	}
	for k := range ops {
		if _, ok := table[k]; !ok {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	assert.Empty(t, missing, "routes of the table that api/openapi.json lacks")
	assert.Empty(t, stale, "operations api/openapi.json documents that the table does not hold")
	assert.Greater(t, len(table), 40)

	engine, ok := e.h.(*gin.Engine)
	require.True(t, ok)
	served := map[string]bool{}
	for _, r := range engine.Routes() {
		served[r.Method+" "+r.Path] = true
	}
	want := map[string]bool{}
	for _, r := range table {
		want[r.method+" "+ginPath(r.path)] = true
	}
	assert.Equal(t, want, served, "Gin serves the table, and only it")
}

// The document holds together: every $ref resolves, operation ids are
// unique, every path parameter is declared, every operation answers
// something, and only the open endpoints drop the token.
func TestOpenAPIDocumentIsConsistent(t *testing.T) {
	var whole map[string]any
	require.NoError(t, json.Unmarshal(openAPIDoc, &whole))
	assert.Equal(t, "3.0.3", whole["openapi"])
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				if s, ok := y.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(whole)
	require.NotEmpty(t, refs)
	for _, r := range refs {
		require.True(t, strings.HasPrefix(r, "#/"), r)
		var node any = whole
		for _, seg := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
			m, ok := node.(map[string]any)
			require.True(t, ok, "unresolved $ref %s", r)
			node, ok = m[seg]
			require.True(t, ok, "unresolved $ref %s", r)
		}
	}

	doc := loadOpenAPI(t)
	open := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /api/v1/healthz": true,
		"GET /api/v1/readyz": true, "GET /api/v1/metrics": true, "GET /api/v1/openapi.json": true}
	ids := map[string]string{}
	for key, op := range doc.operations(t) {
		require.NotEmpty(t, op.OperationID, key)
		if other, dup := ids[op.OperationID]; dup {
			t.Errorf("operationId %s used by %s and %s", op.OperationID, other, key)
		}
		ids[op.OperationID] = key
		assert.NotEmpty(t, op.Responses, key)
		isOpen := op.Security != nil && len(*op.Security) == 0
		assert.Equal(t, open[key], isOpen, "%s: only the probes, /metrics and the document need no token", key)
		if !isOpen {
			assert.Contains(t, op.Responses, "401", key)
		}

		path := strings.SplitN(key, " ", 2)[1]
		declared := map[string]bool{}
		var pathLevel []openAPIParam
		if raw, ok := doc.Paths[path]["parameters"]; ok {
			require.NoError(t, json.Unmarshal(raw, &pathLevel))
		}
		for _, p := range append(pathLevel, op.Parameters...) {
			if p.Ref != "" {
				p = doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
			}
			if p.In == "path" {
				declared[p.Name] = true
			}
		}
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
			assert.True(t, declared[m[1]], "%s: path parameter %s is not declared", key, m[1])
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	r := e.doWith(http.MethodGet, "/api/v1/openapi.json", nil, nil) // no token
	require.Equal(t, http.StatusOK, r.Code)
	assert.Contains(t, r.Header().Get("Content-Type"), "application/json")
	assert.JSONEq(t, string(openAPIDoc), r.Body.String())
}

// Every operation documented with a 404 answers one, in the error shape,
// for ids that do not exist; every operation behind the token answers 401
// without it.
func TestDocumentedErrorsAreAnswered(t *testing.T) {
	e := fullEnv(t)
	// A valid body where one is needed, so that the 404 is about the id.
	bodies := map[string]any{
		"updateProfile": csvProfile,
		"patchUser":     map[string]any{"status": "disabled"},
	}
	for key, op := range loadOpenAPI(t).operations(t) {
		method, path, _ := strings.Cut(key, " ")
		url := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "does-not-exist")
		if _, ok := op.Responses["404"]; ok && strings.Contains(path, "{") {
			r := e.do(method, url, bodies[op.OperationID])
			r.apiErr(http.StatusNotFound, "not_found")
		}
		if _, ok := op.Responses["401"]; ok {
			e.doWith(method, url, nil, nil).apiErr(http.StatusUnauthorized, "unauthorized")
		}
	}
}
