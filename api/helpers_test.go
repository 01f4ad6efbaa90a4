package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
)

const testToken = "test-token-0123456789"

// fakeRunner stands in for runs.Client: it records calls and keeps one
// run per profile going until the test ends it.
type fakeRunner struct {
	mu        sync.Mutex
	started   []string // trigger/profile id/dry
	cancelled []string
	approved  []string
	running   map[string]string // profile id -> run id
	startErr  error
	store     directory.Store // where Start records the run, as runs.Client does
}

type busyError struct{ runID string }

func (e busyError) Error() string        { return "a run of this profile is in progress" }
func (e busyError) RunningRunID() string { return e.runID }

func (f *fakeRunner) Start(ctx context.Context, p *directory.Profile, trigger string, dryRun bool) (*directory.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return nil, f.startErr
	}
	if id, ok := f.running[p.ID]; ok {
		return nil, fmt.Errorf("start workflow: %w", busyError{runID: id})
	}
	f.started = append(f.started, fmt.Sprintf("%s/%s/%v", trigger, p.ID, dryRun))
	run := &directory.Run{ID: uuid.NewString(), ProfileID: p.ID, ProfileName: p.Name, Provider: p.Provider,
		DirectoryKey: p.DirectoryKey, Trigger: trigger, DryRun: dryRun, Status: directory.RunRunning,
		Phase: directory.PhaseFetch, WorkflowID: "usersync-" + p.ID, TemporalRunID: "trun-1"}
	f.running[p.ID] = run.ID
	return run, f.store.CreateRun(ctx, run)
}

func (f *fakeRunner) Cancel(_ context.Context, r *directory.Run) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, r.ID)
	return nil
}

func (f *fakeRunner) Approve(_ context.Context, r *directory.Run) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.approved = append(f.approved, r.ID)
	return nil
}

func (f *fakeRunner) UIURL(r *directory.Run) string {
	return "http://localhost:8233/namespaces/default/workflows/" + r.WorkflowID + "/" + r.TemporalRunID
}

// finish ends the profile's fake run, so another may start.
func (f *fakeRunner) finish(profileID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, profileID)
}

type env struct {
	t      *testing.T
	store  *directory.SQLStore
	db     *directory.DB
	runner *fakeRunner
	box    *secret.Box
	srv    *server
	h      http.Handler
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type envOption func(*Options)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, schema.SQLite, opts...)
}

// eachDialect runs f with an env on each database the store supports.
func eachDialect(t *testing.T, f func(t *testing.T, e *env), opts ...envOption) {
	for _, d := range dbtest.Dialects {
		t.Run(d, func(t *testing.T) { f(t, newEnvOn(t, d, opts...)) })
	}
}

// newEnvOn is newEnv on a database of the dialect.
func newEnvOn(t *testing.T, dialect string, opts ...envOption) *env {
	t.Helper()
	db := dbtest.Open(t, dialect)
	box, err := secret.NewBox(secret.GenerateKey())
	require.NoError(t, err)
	store := directory.NewSQLStore(db)
	e := &env{t: t, db: db, store: store, runner: &fakeRunner{running: map[string]string{}, store: store},
		box: box, logs: &syncBuffer{}}
	o := Options{Store: e.store, Runner: e.runner, Box: box, Token: testToken,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, opt := range opts {
		opt(&o)
	}
	e.srv = newServer(o)
	e.h = e.srv.routes()
	return e
}

// response is a recorded answer with helpers to read it.
type response struct {
	*httptest.ResponseRecorder
	t *testing.T
}

func (r response) json() map[string]any {
	r.t.Helper()
	var m map[string]any
	require.NoError(r.t, json.Unmarshal(r.Body.Bytes(), &m), "body: %s", r.Body.String())
	return m
}

// apiErr asserts the error shape and status, and returns the error object.
func (r response) apiErr(status int, code string) map[string]any {
	r.t.Helper()
	require.Equal(r.t, status, r.Code, "body: %s", r.Body.String())
	m := r.json()
	e, ok := m["error"].(map[string]any)
	require.True(r.t, ok, "no error object in %s", r.Body.String())
	assert.Equal(r.t, code, e["code"])
	assert.NotEmpty(r.t, e["message"])
	return e
}

func (r response) status(want int) map[string]any {
	r.t.Helper()
	require.Equal(r.t, want, r.Code, "body: %s", r.Body.String())
	if r.Body.Len() == 0 {
		return nil
	}
	return r.json()
}

// do sends a request with the test token; body is a string sent as is or
// a value encoded as JSON.
func (e *env) do(method, path string, body any) response {
	return e.doWith(method, path, body, map[string]string{"Authorization": "Bearer " + testToken})
}

func (e *env) doWith(method, path string, body any, headers map[string]string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return response{ResponseRecorder: rec, t: e.t}
}

const csvProfile = `{"name":"People file","provider":"csv",
	"csv":{"url":"https://files.example.com/people.csv","username":"svc","password":"pw-SECRET-1","defaultPassword":"dpw-SECRET-2"},
	"attributeMap":{"dept":"department"}}`

// createProfile creates a profile and returns its id.
func (e *env) createProfile(body string) string {
	e.t.Helper()
	m := e.do(http.MethodPost, "/api/v1/profiles", body).status(http.StatusCreated)
	return m["id"].(string)
}

// storedConfig opens the stored profile with its secrets.
func (e *env) storedConfig(id string) *profile.Config {
	e.t.Helper()
	p, err := e.store.GetProfile(context.Background(), id)
	require.NoError(e.t, err)
	c, err := profile.Open(e.box, p.Config, p.Secrets)
	require.NoError(e.t, err)
	return c
}

func (e *env) audit(action string) []directory.AuditEntry {
	e.t.Helper()
	page, err := e.store.ListAudit(context.Background(), directory.AuditFilter{Action: action}, directory.ListOptions{})
	require.NoError(e.t, err)
	return page.Items
}
