package integration

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/runs"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
	"github.com/usersync/usersync/web"
	"github.com/usersync/usersync/worker"
)

// stack is usersync as `usersync dev` runs it: Postgres, a real Temporal
// dev server, an in-process worker and the API over HTTP.
type stack struct {
	api    *apiClient
	srv    *httptest.Server
	store  *directory.SQLStore
	tmp    *testenv.DevServer
	client *runs.Client
	token  string
}

// directoryUser is a directory user as GET /users and GET /users/{id} show it.
type directoryUser struct {
	ID         string            `json:"id"`
	Username   string            `json:"username"`
	FirstName  string            `json:"firstName"`
	LastName   string            `json:"lastName"`
	Email      string            `json:"email"`
	Status     string            `json:"status"`
	ExternalID *string           `json:"externalId"`
	ManagerID  *string           `json:"managerId"`
	Attributes map[string]string `json:"attributes"`
	Groups     []string          `json:"groups"`
}

// directory reads a directory's users through the API, by external id.
func (c *apiClient) directory(dirKey string) map[string]directoryUser {
	c.t.Helper()
	out := map[string]directoryUser{}
	cursor := ""
	for {
		var page struct {
			Items      []directoryUser `json:"items"`
			NextCursor string          `json:"nextCursor"`
		}
		path := "/users?limit=1000&directory=" + url.QueryEscape(dirKey) + "&cursor=" + url.QueryEscape(cursor)
		if st := c.do("GET", path, nil, &page); st != 200 {
			c.t.Fatalf("GET users: %d", st)
		}
		for _, u := range page.Items {
			if u.ExternalID == nil || u.Status == "" {
				c.t.Fatalf("synced user without external id: %+v", u)
			}
			out[*u.ExternalID] = u
		}
		if cursor = page.NextCursor; cursor == "" {
			return out
		}
	}
}

// stackOptions tune a stack for a test.
type stackOptions struct {
	// PageDelay slows every fetched page and applied batch so that a test
	// can catch a run in flight.
	PageDelay time.Duration
	// PageSize is the provider page size (CSV records, Okta users); 0 is
	// the provider's own.
	PageSize int
	// Quiet discards the API's and the activities' logs.
	Quiet bool
	// Admin mounts the admin page at /.
	Admin bool
	// Dialect is the store's database: PostgreSQL unless set.
	Dialect string
}

// newStack starts the stack. Providers may use plain http to loopback
// hosts (the simulators), as under `usersync dev`.
func newStack(t *testing.T, opt stackOptions) *stack {
	t.Helper()
	ctx := context.Background()
	dialect := opt.Dialect
	if dialect == "" {
		dialect = schema.Postgres
	}
	db, err := directory.OpenDB(ctx, dbtest.URL(t, dialect))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store := directory.NewSQLStore(db)
	secretKey := secret.GenerateKey()
	box, err := secret.NewBox(secretKey)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.Default()
	if opt.Quiet {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	deps := activities.Deps{Store: store, Box: box, Logger: log, PageSize: opt.PageSize, BcryptCost: 4,
		PageDelay: opt.PageDelay, AllowHTTPLoopback: true}
	tmp := testenv.StartDevServer(t)
	queue := "it-" + uuid.NewString()[:8]
	acts := activities.New(deps)
	w := worker.New(tmp.Client, queue, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	wf := &runs.Client{Temporal: tmp.Client, TaskQueue: queue, Namespace: "default",
		UIBaseURL: "http://localhost:8233", Store: store}
	const token = "it-token-0123456789"
	opts := api.Options{Store: store, Runner: wf, Box: box, Token: token, Logger: log, Tester: acts.TestConnection,
		ProviderGroups: func(ctx context.Context, p *directory.Profile, cfg *profile.Config, search, cursor string, limit int) (provider.Page[provider.Group], error) {
			d := deps
			d.PageSize = limit
			return activities.New(d).ProviderGroups(ctx, p, cfg, search, cursor)
		},
		Progress: func(ctx context.Context, run *directory.Run) (api.Progress, error) {
			p, err := wf.Progress(ctx, run)
			if err != nil {
				return api.Progress{}, err
			}
			return api.Progress{Phase: p.Phase, Counts: p.Counts}, nil
		}}
	if opt.Admin {
		key, err := web.SessionKey(secretKey, token)
		if err != nil {
			t.Fatal(err)
		}
		opts.Service = api.NewService(opts)
		if opts.Admin, err = web.New(web.Options{Service: opts.Service, Store: store, Token: token, SessionKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(api.New(opts))
	t.Cleanup(srv.Close)
	return &stack{api: &apiClient{t: t, base: srv.URL + "/api/v1", token: token}, srv: srv, store: store, tmp: tmp,
		client: wf, token: token}
}

// upload stores a CSV document and returns its id.
func (s *stack) upload(content string) string {
	s.api.t.Helper()
	var doc struct {
		ID string `json:"id"`
	}
	if st := s.api.do("POST", "/documents", csvUpload("people.csv", content), &doc); st != 201 && st != 200 {
		s.api.t.Fatalf("upload: %d", st)
	}
	return doc.ID
}

// csvProfile is the body of a CSV profile reading document docID.
func csvProfile(name, docID string, schedule map[string]any) map[string]any {
	return map[string]any{
		"name": name, "provider": "csv",
		"csv": map[string]any{"source": "document", "documentId": docID, "userMatchField": "username",
			"managerField": "manager", "defaultPassword": "Welcome-1"},
		"groupSync": map[string]any{"mode": "off"},
		"schedule":  schedule,
		"safety":    map[string]any{"maxDisables": 100, "maxDisablePercent": 100},
	}
}

type profileView struct {
	ID        string     `json:"id"`
	NextRunAt *time.Time `json:"nextRunAt"`
	Enabled   *bool      `json:"enabled"`
}

// runRow is a run as GET /runs shows it.
type runRow struct {
	ID            string              `json:"id"`
	Trigger       string              `json:"trigger"`
	Status        string              `json:"status"`
	Error         string              `json:"error"`
	Counts        directory.RunCounts `json:"counts"`
	WorkflowID    string              `json:"workflowId"`
	TemporalRunID string              `json:"temporalRunId"`
	TemporalUIURL string              `json:"temporalUiUrl"`
	FinishedAt    *time.Time          `json:"finishedAt"`
}

// run reads one run.
func (s *stack) run(id string) runRow {
	s.api.t.Helper()
	var r runRow
	if st := s.api.do("GET", "/runs/"+id, nil, &r); st != 200 {
		s.api.t.Fatalf("GET run %s: %d", id, st)
	}
	return r
}

// waitRun waits until the run has ended, or is awaiting approval.
func (s *stack) waitRun(id string) runRow {
	s.api.t.Helper()
	var r runRow
	waitFor(s.api.t, "run "+id+" to end", func() bool {
		r = s.run(id)
		return r.Status != directory.RunRunning
	})
	return r
}

// runsOf lists the runs of a profile, newest first.
func (s *stack) runsOf(profileID string) []runRow {
	s.api.t.Helper()
	var page struct {
		Items []runRow `json:"items"`
	}
	if st := s.api.do("GET", "/runs?profileId="+profileID, nil, &page); st != 200 {
		s.api.t.Fatalf("GET runs: %d", st)
	}
	return page.Items
}

// waitFor polls cond until it holds or a minute passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, what, time.Minute, func() (bool, string) { return cond(), "" })
}

// people is a CSV of n users u01…un.
func people(n int) string {
	s := "username,firstName,lastName,email,manager\n"
	for i := 1; i <= n; i++ {
		u := userName(i)
		s += u + ",First" + u + ",Last" + u + "," + u + "@example.com,\n"
	}
	return s
}

func userName(i int) string {
	return "u" + string(rune('0'+i/10)) + string(rune('0'+i%10))
}
