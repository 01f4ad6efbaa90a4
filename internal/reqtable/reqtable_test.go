package reqtable

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `# t

| provider | method | path | query options | headers | documentation | idpsim |
|---|---|---|---|---|---|---|
| graph | GET | /v1.0/users/delta | $select, $skiptoken (from next link) | — | https://learn.microsoft.com/graph/api/user-delta | x |
| graph | GET | /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user | $count | ConsistencyLevel | https://learn.microsoft.com/x | x |
| graph | POST | /v1.0/$batch | — | — | https://learn.microsoft.com/graph/json-batching | x |
| graph | GET | /v1.0/users/{id} | $select | — | https://learn.microsoft.com/y | x |
| okta | GET | /api/v1/logs | since, after (from next link) | — | https://developer.okta.com/docs/reference/system-log-query/ | x |
`

func load(t *testing.T, text string) (*Table, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "providers.md")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

// TestTableAllowsOnlyListedRequests: a request matches a row by method,
// path (a braced segment matches one segment), option names and notable
// headers; anything more is not allowed.
func TestTableAllowsOnlyListedRequests(t *testing.T) {
	tb, err := load(t, sample)
	if err != nil || len(tb.Rows) != 5 {
		t.Fatalf("load: %v, %d rows", err, len(tb.Rows))
	}
	for _, tc := range []struct {
		r  Request
		ok bool
	}{
		{Request{"graph", "GET", "/v1.0/users/delta", []string{"$select"}, nil}, true},
		{Request{"graph", "GET", "/v1.0/users/delta", []string{"$skiptoken"}, nil}, true},
		{Request{"graph", "GET", "/v1.0/users/delta", []string{"$select", "$expand"}, nil}, false},
		{Request{"graph", "GET", "/v1.0/users/delta", []string{"$select"}, []string{"Prefer"}}, false},
		{Request{"graph", "GET", "/v1.0/groups/g1/transitiveMembers/microsoft.graph.user", []string{"$count"}, []string{"ConsistencyLevel"}}, true},
		{Request{"graph", "GET", "/v1.0/groups/g1/transitiveMembers/graph.user", []string{"$count"}, nil}, false},
		{Request{"graph", "POST", "/v1.0/users/delta", nil, nil}, false},
		{Request{"okta", "GET", "/api/v1/logs", []string{"after"}, nil}, true},
		{Request{"okta", "GET", "/api/v1/logs", []string{"until"}, nil}, false},
		{Request{"graph", "GET", "/api/v1/logs", nil, nil}, false},
	} {
		if _, ok := tb.Allowed(tc.r); ok != tc.ok {
			t.Errorf("%s: allowed %t, want %t", tc.r, ok, tc.ok)
		}
	}
	if _, err := load(t, "| graph | GET | /x | — | — | not a link | x |\n"); err == nil {
		t.Fatal("a row without a documentation link was accepted")
	}
	if _, err := load(t, "# nothing\n"); err == nil {
		t.Fatal("a file without rows was accepted")
	}
}

// TestRecorderSeesInsideBatches: the requests of a $batch are recorded one
// by one, with their headers, and the simulator still gets the body.
func TestRecorderSeesInsideBatches(t *testing.T) {
	tb, err := load(t, sample)
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder()
	var got string
	h := rec.Wrap("graph", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(strings.Builder)
		_, _ = io.Copy(b, r.Body)
		got = b.String()
	}))
	body := `{"requests":[{"id":"1","method":"GET","url":"/users/u1?$select=aboutMe"},
{"id":"2","method":"GET","url":"/users/u2?$expand=manager","headers":{"ConsistencyLevel":"eventual"}}]}`
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1.0/$batch", strings.NewReader(body)))
	if got != body {
		t.Fatal("the batch body did not reach the handler")
	}
	bad := rec.Unlisted(tb)
	if len(rec.Requests()) != 3 || len(bad) != 1 || bad[0].Path != "/v1.0/users/u2" || len(bad[0].Headers) != 1 {
		t.Fatalf("recorded %v, unlisted %v", rec.Requests(), bad)
	}
}
