package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
)

func TestAuth(t *testing.T) {
	e := newEnv(t)
	r := e.doWith(http.MethodGet, "/api/v1/users", nil, nil)
	r.apiErr(http.StatusUnauthorized, "unauthorized")
	assert.Contains(t, r.Header().Get("WWW-Authenticate"), "Bearer")

	for _, h := range []string{"Bearer wrong", "Bearer " + testToken + "x", "Basic " + testToken, testToken, "Bearer "} {
		e.doWith(http.MethodGet, "/api/v1/users", nil, map[string]string{"Authorization": h}).
			apiErr(http.StatusUnauthorized, "unauthorized")
	}
	e.doWith(http.MethodGet, "/api/v1/users", nil, map[string]string{"Authorization": "bearer " + testToken}).status(http.StatusOK)
	e.do(http.MethodGet, "/api/v1/users", nil).status(http.StatusOK)
}

func TestNoTokenConfiguredRefusesAll(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Token = "" })
	e.doWith(http.MethodGet, "/api/v1/users", nil, map[string]string{"Authorization": "Bearer "}).
		apiErr(http.StatusUnauthorized, "unauthorized")
}

func TestProbesNeedNoToken(t *testing.T) {
	ready := errors.New("temporal: dial tcp 127.0.0.1:7233: connection refused")
	e := newEnv(t, func(o *Options) {
		o.Ready = func(context.Context) error { return ready }
	})
	for _, p := range []string{"/healthz", "/api/v1/healthz"} {
		assert.Equal(t, "ok", e.doWith(http.MethodGet, p, nil, nil).status(http.StatusOK)["status"])
	}
	for _, p := range []string{"/readyz", "/api/v1/readyz"} {
		r := e.doWith(http.MethodGet, p, nil, nil)
		r.apiErr(http.StatusServiceUnavailable, "unavailable")
		assert.NotContains(t, r.Body.String(), "7233", "the cause stays in the log")
	}
	assert.Contains(t, e.logs.String(), "connection refused")
	ready = nil
	assert.Equal(t, "ready", e.doWith(http.MethodGet, "/readyz", nil, nil).status(http.StatusOK)["status"])
}

func TestRequestIDAndLog(t *testing.T) {
	e := newEnv(t)
	r := e.doWith(http.MethodPost, "/api/v1/profiles", csvProfile, map[string]string{
		"Authorization": "Bearer " + testToken, "X-Request-Id": "abc-123"})
	r.status(http.StatusCreated)
	assert.Equal(t, "abc-123", r.Header().Get("X-Request-Id"))

	r = e.do(http.MethodGet, "/api/v1/users", nil)
	assert.Len(t, r.Header().Get("X-Request-Id"), 36, "generated when absent")

	r = e.doWith(http.MethodGet, "/healthz", nil, map[string]string{"X-Request-Id": "bad id\nforged log line"})
	assert.NotContains(t, r.Header().Get("X-Request-Id"), " ")

	logs := e.logs.String()
	assert.Contains(t, logs, `"requestId":"abc-123"`)
	assert.Contains(t, logs, `"method":"POST"`)
	assert.Contains(t, logs, `"path":"/api/v1/profiles"`)
	assert.Contains(t, logs, `"status":201`)
	assert.Contains(t, logs, `"duration"`)
	for _, secret := range []string{testToken, "pw-SECRET-1", "dpw-SECRET-2", "forged"} {
		assert.NotContains(t, logs, secret)
	}
}

func TestErrorShapes(t *testing.T) {
	e := newEnv(t)
	e.do(http.MethodGet, "/api/v1/nothing-here", nil).apiErr(http.StatusNotFound, "not_found")
	e.do(http.MethodPatch, "/api/v1/roles", nil).apiErr(http.StatusMethodNotAllowed, "method_not_allowed")
	e.do(http.MethodPost, "/api/v1/roles", `{"name":`).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodPost, "/api/v1/roles", "").apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodPost, "/api/v1/roles", `{"name":"a"} trailing`).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodPost, "/api/v1/roles", `{"name":"a","extra":1}`).apiErr(http.StatusBadRequest, "bad_request")
	big := `{"name":"` + strings.Repeat("x", maxJSONBody) + `"}`
	e.do(http.MethodPost, "/api/v1/roles", big).apiErr(http.StatusRequestEntityTooLarge, "too_large")
	e.do(http.MethodGet, "/api/v1/users?limit=0", nil).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodGet, "/api/v1/users?limit=ten", nil).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodGet, "/api/v1/users?cursor=%21%21", nil).apiErr(http.StatusBadRequest, "bad_request")
}

// brokenStore fails the way a database in trouble does, or panics.
type brokenStore struct{ directory.Store }

func (brokenStore) ListRoles(context.Context, directory.ListOptions) (directory.Page[directory.Role], error) {
	return directory.Page[directory.Role]{}, errors.New(`pq: relation "secret_internal_table" does not exist`)
}

func (brokenStore) ListGroups(context.Context, string, directory.ListOptions) (directory.Page[directory.Group], error) {
	panic("boom in the store")
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	e := newEnv(t)
	e = newEnv(t, func(o *Options) { o.Store = brokenStore{Store: e.store} })
	r := e.do(http.MethodGet, "/api/v1/roles", nil)
	er := r.apiErr(http.StatusInternalServerError, "internal")
	assert.NotContains(t, r.Body.String(), "secret_internal_table")
	assert.Contains(t, er["message"], r.Header().Get("X-Request-Id"))
	assert.Contains(t, e.logs.String(), "secret_internal_table", "the cause is logged")

	r = e.do(http.MethodGet, "/api/v1/groups", nil)
	r.apiErr(http.StatusInternalServerError, "internal")
	assert.NotContains(t, r.Body.String(), "boom")
	assert.Contains(t, e.logs.String(), "boom in the store")
	require.Contains(t, e.logs.String(), `"status":500`)
}
