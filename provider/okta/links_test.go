package okta

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	oktasim "github.com/usersync/usersync/idpsim/okta"
	"github.com/usersync/usersync/provider"
)

// rewriteLinks serves sim, passing each next link of a listing through
// edit first.
func rewriteLinks(t *testing.T, sim *oktasim.Server, edit func(link string) string) (*httptest.Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RequestURI())
		mu.Unlock()
		rw := httptest.NewRecorder()
		sim.ServeHTTP(rw, r)
		for k, v := range rw.Header() {
			for _, x := range v {
				if k == "Link" && strings.HasSuffix(x, `rel="next"`) {
					link := strings.TrimPrefix(strings.SplitN(x, ">", 2)[0], "<")
					x = "<" + edit(link) + `>; rel="next"`
				}
				w.Header().Add(k, x)
			}
		}
		w.WriteHeader(rw.Code)
		w.Write(rw.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

// TestListingsFollowNextLinksVerbatim: every page after the first is
// asked for at the next link of the page before, as Okta wrote it; what
// the link carries that usersync does not know is kept.
func TestListingsFollowNextLinksVerbatim(t *testing.T) {
	sim := oktasim.New(oktasim.Config{Seed: 31, Users: 150})
	srv, seen := rewriteLinks(t, sim, func(link string) string { return link + "&opaque=kept%2Fas-is" })
	s := open(t, srv, func(c *Config) { c.PageSize = 20; c.AppID = sim.AppID() })
	g := groupID(t, sim, oktasim.GroupEveryone)
	users, pages := allUsers(t, s, g)
	assert.Len(t, users, len(inScope(sim, g)))
	require.Greater(t, pages, 2)
	ctx := context.Background()
	graph, state := allGroupChanges(t, s, "")
	assert.NotEmpty(t, graph)
	_, err := s.UsersByID(ctx, sim.Members(g)[:30])
	require.NoError(t, err)
	_, _ = allUserChanges(t, s, state)

	followed := 0
	for _, uri := range *seen {
		if strings.Contains(uri, "after=") {
			followed++
			assert.Contains(t, uri, "opaque=kept%2Fas-is", "a next link is followed as given: %s", uri)
		}
	}
	assert.Greater(t, followed, pages, "the members, the groups and the app's groups were paged")
}

// TestAListingsNextLinkToAnotherOriginIsRefused: a listing's next link
// off the org's origin, or to another path, fails the read, final, and
// nothing is sent there.
func TestAListingsNextLinkToAnotherOriginIsRefused(t *testing.T) {
	var stolen atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { stolen.Add(1) }))
	defer evil.Close()
	sim := oktasim.New(oktasim.Config{Seed: 32, Users: 80})
	for _, edit := range []func(string) string{
		func(link string) string { return evil.URL + link[strings.Index(link, "/api/"):] },
		func(link string) string { return strings.Replace(link, "/users?", "/groups?", 1) },
	} {
		srv, _ := rewriteLinks(t, sim, edit)
		s := open(t, srv, func(c *Config) { c.PageSize = 10 })
		g := groupID(t, sim, oktasim.GroupEveryone)
		p, err := s.Users(context.Background(), provider.Scope{GroupIDs: []string{g}}, "")
		require.Error(t, err)
		assert.Empty(t, p.Next)
		require.ErrorIs(t, err, provider.ErrInvalidData)
		assert.False(t, provider.Retryable(err))
	}
	assert.Zero(t, stolen.Load())
}
