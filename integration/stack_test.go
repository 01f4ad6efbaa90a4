package integration

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
	"github.com/usersync/usersync/worker"
	"github.com/usersync/usersync/workflows"
)

// stack is usersync as `usersync dev` runs it: Postgres, a real Temporal
// dev server, an in-process worker and the API over HTTP.
type stack struct {
	api    *apiClient
	store  *directory.SQLStore
	tmp    *testenv.DevServer
	client *workflows.Client
}

// newStack starts the stack; pageDelay slows every fetched page and
// applied batch so that a test can catch a run in flight.
func newStack(t *testing.T, pageDelay time.Duration) *stack {
	t.Helper()
	ctx := context.Background()
	db, err := directory.OpenDB(ctx, dbtest.URL(t, schema.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store := directory.NewSQLStore(db)
	box, err := secret.NewBox(secret.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	tmp := testenv.StartDevServer(t)
	queue := "it-" + uuid.NewString()[:8]
	acts := activities.New(activities.Deps{Store: store, Box: box, PageSize: 2, BcryptCost: 4, PageDelay: pageDelay})
	w := worker.New(tmp.Client, queue, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	wf := &workflows.Client{Temporal: tmp.Client, TaskQueue: queue, Namespace: "default",
		UIBaseURL: "http://localhost:8233", Store: store}
	srv := httptest.NewServer(api.New(api.Options{Store: store, Runner: wf, Box: box, Token: "it-token",
		Tester: acts.TestConnection}))
	t.Cleanup(srv.Close)
	return &stack{api: &apiClient{t: t, base: srv.URL + "/api/v1", token: "it-token"}, store: store, tmp: tmp, client: wf}
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
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
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
