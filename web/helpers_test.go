package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"

	// The providers the admin page shows register themselves.
	_ "github.com/usersync/usersync/sources"
)

const testToken = "admin-token-0123456789"

// fakeRunner stands in for runs.Client: runs it starts stay running
// until the test changes them in the store.
type fakeRunner struct {
	mu        sync.Mutex
	store     directory.Store
	cancelled []string
	approved  []string
}

type busyError struct{ id string }

func (e busyError) Error() string        { return "a run of this profile is in progress" }
func (e busyError) RunningRunID() string { return e.id }

func (f *fakeRunner) Start(ctx context.Context, p *directory.Profile, trigger string, dryRun bool) (*directory.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if last, err := f.store.LastRun(ctx, p.ID); err == nil && !directory.IsFinalRunStatus(last.Status) {
		return nil, busyError{last.ID}
	}
	run := &directory.Run{ID: uuid.NewString(), ProfileID: p.ID, ProfileName: p.Name, Provider: p.Provider,
		DirectoryKey: p.DirectoryKey, Trigger: trigger, DryRun: dryRun, Status: directory.RunRunning,
		Phase: directory.PhaseFetch, WorkflowID: "usersync-" + p.ID, TemporalRunID: "trun-" + uuid.NewString()[:8]}
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
	return "http://localhost:8233/namespaces/default/workflows/" + r.WorkflowID + "/" + r.TemporalRunID + "/history"
}

// The fake runner keeps schedules too (api.Scheduler): every scheduled,
// enabled profile's next run is nextRun.
var nextRun = time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)

func (f *fakeRunner) SyncSchedule(context.Context, *directory.Profile) error { return nil }
func (f *fakeRunner) DeleteSchedule(context.Context, string) error           { return nil }
func (f *fakeRunner) TriggerSchedule(context.Context, *directory.Profile) error {
	return nil
}
func (f *fakeRunner) NextRunAt(context.Context, string) (*time.Time, error) {
	t := nextRun
	return &t, nil
}

// clock is the sessions' clock, moved by tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t      *testing.T
	db     *directory.DB
	store  *directory.SQLStore
	box    *secret.Box
	runner *fakeRunner
	clock  *clock
	srv    *httptest.Server
	// groups are what the fake provider lists for the picker.
	groups    []provider.Group
	groupsErr error
	// testErr is what Test connection answers, with testWarnings.
	testErr      error
	testWarnings []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, schema.SQLite)
}

// eachDialect runs f with an env on each database the store supports.
func eachDialect(t *testing.T, f func(t *testing.T, e *env)) {
	for _, d := range dbtest.Dialects {
		t.Run(d, func(t *testing.T) { f(t, newEnvOn(t, d)) })
	}
}

// newEnvOn is newEnv on a database of the dialect.
func newEnvOn(t *testing.T, dialect string) *env {
	t.Helper()
	return newEnvWrapped(t, dialect, nil)
}

// newEnvWrapped is newEnvOn with the API and the page given wrap's store
// (a counting one) instead of the env's; nil gives them the env's.
func newEnvWrapped(t *testing.T, dialect string, wrap func(directory.Store) directory.Store) *env {
	t.Helper()
	db := dbtest.Open(t, dialect)
	box, err := secret.NewBox(secret.GenerateKey())
	require.NoError(t, err)
	store := directory.NewSQLStore(db)
	e := &env{t: t, db: db, store: store, box: box, runner: &fakeRunner{store: store},
		clock: &clock{t: time.Date(2030, 1, 2, 9, 0, 0, 0, time.UTC)}}
	var served directory.Store = store
	if wrap != nil {
		served = wrap(store)
	}
	opts := api.Options{Store: served, Runner: e.runner, Box: box, Token: testToken, Logger: e.logger(),
		Tester: func(context.Context, *directory.Profile, *profile.Config) ([]string, error) {
			return e.testWarnings, e.testErr
		},
		ProviderGroups: e.listGroups}
	key, err := SessionKey(secret.GenerateKey(), testToken)
	require.NoError(t, err)
	opts.Service = api.NewService(opts) // one service behind the API and the page, as cmd/usersync has it
	admin, err := New(Options{Service: opts.Service, Store: served, Token: testToken, SessionKey: key,
		Now: e.clock.now, Logger: opts.Logger})
	require.NoError(t, err)
	opts.Admin = admin
	e.srv = httptest.NewServer(api.New(opts))
	t.Cleanup(e.srv.Close)
	return e
}

// logger keeps request lines out of the test output; -v shows them.
func (e *env) logger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// listGroups is the fake provider's picker: a substring search, pages of 2.
func (e *env) listGroups(_ context.Context, _ *directory.Profile, cfg *profile.Config, search, cursor string, _ int) (provider.Page[provider.Group], error) {
	if e.groupsErr != nil {
		return provider.Page[provider.Group]{}, e.groupsErr
	}
	if cfg == nil || cfg.Block == nil {
		return provider.Page[provider.Group]{}, errors.New("no provider block")
	}
	var match []provider.Group
	for _, g := range e.groups {
		if strings.Contains(strings.ToLower(g.Name), strings.ToLower(search)) {
			match = append(match, g)
		}
	}
	start := 0
	if cursor != "" {
		fmt.Sscan(cursor, &start)
	}
	end := min(start+2, len(match))
	page := provider.Page[provider.Group]{Items: match[start:end]}
	if end < len(match) {
		page.Next = fmt.Sprint(end)
	}
	return page, nil
}

// browser is a client with cookies that does not follow redirects, so a
// test sees each 303.
type browser struct {
	e    *env
	c    *http.Client
	csrf string // the last token a page carried
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// page is one answer.
type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(b.e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.e.t, err)
	p := page{status: resp.StatusCode, body: string(raw), location: resp.Header.Get("Location"), header: resp.Header}
	if m := csrfField.FindStringSubmatch(p.body); m != nil {
		b.csrf = html.UnescapeString(m[1])
	}
	return p
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	require.NoError(b.e.t, err)
	return b.do(req)
}

// post sends a form with the current CSRF token (unless the form has one).
func (b *browser) post(path string, form url.Values) page {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	return b.postRaw(path, form, nil)
}

func (b *browser) postRaw(path string, form url.Values, header map[string]string) page {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return b.do(req)
}

// follow gets the page a redirect points to.
func (b *browser) follow(p page) page {
	b.e.t.Helper()
	require.Equal(b.e.t, http.StatusSeeOther, p.status, "not a redirect: %s", p.body)
	return b.get(p.location)
}

// signIn signs in with the API token.
func (b *browser) signIn() {
	b.e.t.Helper()
	b.get("/signin")
	p := b.post("/signin", url.Values{"token": {testToken}, "next": {"/profiles"}})
	require.Equal(b.e.t, http.StatusSeeOther, p.status, p.body)
	b.get("/profiles") // picks up the session's CSRF token
}

// upload posts a file to /documents; csrfFirst puts the token before the
// file, as the page's form does.
func (b *browser) upload(name, content, csrf string, csrfFirst bool) page {
	b.e.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if csrfFirst {
		require.NoError(b.e.t, w.WriteField("csrf", csrf))
	}
	f, err := w.CreateFormFile("file", name)
	require.NoError(b.e.t, err)
	_, _ = f.Write([]byte(content))
	if !csrfFirst {
		require.NoError(b.e.t, w.WriteField("csrf", csrf))
	}
	require.NoError(b.e.t, w.Close())
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+"/documents", &buf)
	require.NoError(b.e.t, err)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return b.do(req)
}

// fieldError is the text of the error shown beside a profile field.
func fieldError(body, path string) string {
	re := regexp.MustCompile(`<p class="field-error" id="` + regexp.QuoteMeta(fieldID(path)) + `-error">([^<]*)</p>`)
	if m := re.FindStringSubmatch(body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

func regexpFind(t *testing.T, s, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	require.NotNil(t, m, "no %s", pattern)
	return m[1]
}

func htmlUnescape(s string) string { return html.UnescapeString(s) }

var (
	controlTag = regexp.MustCompile(`<(input|select|textarea)\b([^>]*)>`)
	attrID     = regexp.MustCompile(`\bid="([^"]+)"`)
	attrType   = regexp.MustCompile(`\btype="([^"]+)"`)
	labelFor   = regexp.MustCompile(`<label[^>]*\bfor="([^"]+)"`)
)

// assertLabelled checks that every form control of a page has a label
// (hidden inputs and buttons need none).
func assertLabelled(t *testing.T, path, body string) {
	t.Helper()
	labels := map[string]bool{}
	for _, m := range labelFor.FindAllStringSubmatch(body, -1) {
		labels[m[1]] = true
	}
	for _, m := range controlTag.FindAllStringSubmatch(body, -1) {
		if ty := attrType.FindStringSubmatch(m[2]); ty != nil && (ty[1] == "hidden" || ty[1] == "submit") {
			continue
		}
		id := attrID.FindStringSubmatch(m[2])
		if id == nil || !labels[id[1]] {
			t.Errorf("%s: a %s without a label: %s", path, m[1], m[0])
		}
	}
}
