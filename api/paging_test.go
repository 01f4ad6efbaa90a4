package api

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// walk follows a listing two items at a time and returns the ids it saw.
func (e *env) walk(path string) []string {
	e.t.Helper()
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(e.t, pages, 50, "%s: paging does not end", path)
		sep := "?"
		if u, _ := url.Parse(path); u.RawQuery != "" {
			sep = "&"
		}
		p := path + sep + "limit=2"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		m := e.do(http.MethodGet, p, nil).status(http.StatusOK)
		items := m["items"].([]any)
		require.LessOrEqual(e.t, len(items), 2, path)
		for _, it := range items {
			obj := it.(map[string]any)
			id := fmt.Sprint(obj["id"])
			if _, ok := obj["id"]; !ok {
				id = fmt.Sprint(obj["subjectId"])
			}
			ids = append(ids, id)
		}
		next, ok := m["nextCursor"].(string)
		if !ok {
			return ids
		}
		require.NotEmpty(e.t, next, "%s: nextCursor is absent on the last page, never empty", path)
		require.Len(e.t, items, 2, "%s: a page before the last is full", path)
		cursor = next
	}
}

// Every listing pages with ?limit= and the cursor it hands out, and the
// pages together hold every item once.
func TestEveryListPages(t *testing.T) {
	e := newEnv(t)
	group := e.do(http.MethodPost, "/api/v1/groups", map[string]any{"name": "Staff"}).status(http.StatusCreated)["id"].(string)
	for i := range 5 {
		e.createProfile(fmt.Sprintf(`{"name":"P%d","provider":"csv","csv":{"url":"https://x.example.com/a.csv"}}`, i))
		u := e.createUser(fmt.Sprintf("user%d", i))
		e.do(http.MethodPut, "/api/v1/groups/"+group+"/members/"+u, nil).status(http.StatusNoContent)
		e.do(http.MethodPost, "/api/v1/roles", map[string]any{"name": fmt.Sprintf("Role %d", i)}).status(http.StatusCreated)
		e.do(http.MethodPost, "/api/v1/groups", map[string]any{"name": fmt.Sprintf("G%d", i)}).status(http.StatusCreated)
		e.upload("file", "f.csv", "a,b\n").status(http.StatusCreated)
		e.startRun(fmt.Sprintf("R%d", i))
	}
	for path, want := range map[string]int{
		"/api/v1/profiles":                                10,
		"/api/v1/users":                                   5,
		"/api/v1/users?status=active&q=user":              5,
		"/api/v1/groups":                                  6,
		"/api/v1/groups/" + group + "/members":            5,
		"/api/v1/roles":                                   5,
		"/api/v1/documents":                               5,
		"/api/v1/runs":                                    5,
		"/api/v1/runs?status=running":                     5,
		"/api/v1/audit":                                   -1, // at least the entries above
		"/api/v1/audit?category=Directory":                -1,
		"/api/v1/audit?action=user_created&subject=user3": 1,
	} {
		ids := e.walk(path)
		seen := map[string]bool{}
		for _, id := range ids {
			assert.False(t, seen[id], "%s: %s twice", path, id)
			seen[id] = true
		}
		if want >= 0 {
			assert.Len(t, ids, want, path)
		} else {
			assert.Greater(t, len(ids), 10, path)
		}
	}
}
