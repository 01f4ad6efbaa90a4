package okta

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	oktasim "github.com/usersync/usersync/idpsim/okta"
	"github.com/usersync/usersync/provider"
)

// clock is a fake clock shared by the simulator and the source, so that
// "minutes later" takes no time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logCall is one System Log request and what came back.
type logCall struct {
	url    *url.URL
	next   string // the rel="next" link of the answer
	events int
}

// recorder is a transport that keeps every System Log request.
type recorder struct {
	mu    sync.Mutex
	calls []logCall
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || req.URL.Path != "/api/v1/logs" {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	var events []json.RawMessage
	_ = json.Unmarshal(body, &events)
	call := logCall{url: req.URL, events: len(events)}
	for _, l := range resp.Header.Values("Link") {
		if strings.Contains(l, `rel="next"`) {
			call.next = strings.TrimPrefix(strings.SplitN(l, ">", 2)[0], "<")
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
	return resp, nil
}

func (r *recorder) take() []logCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

// removals is the memberships a round of group changes ended, as
// "group/user".
func removals(changes []provider.GroupChange) map[string]bool {
	out := map[string]bool{}
	for _, g := range changes {
		for _, m := range g.Members {
			if m.Removed {
				out[g.Group.ID+"/"+m.ID] = true
			}
		}
	}
	return out
}

// TestTheSystemLogIsPolledAndLateEventsAreRead: a round of changes reads
// the System Log with one polling request (since, no until), then follows
// each next link as Okta wrote it, and stops at the first empty page. A
// membership removal that becomes readable ten minutes after it was
// published, after a round has passed whose bounded read (since the last
// round's start, until its own) would have covered its published time, is
// read by the round after it became readable.
func TestTheSystemLogIsPolledAndLateEventsAreRead(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	sim, srv := simOrg(t, oktasim.Config{Seed: 21, Users: 120, Now: c.Now, LogLag: 2 * time.Second})
	rec := &recorder{}
	s := open(t, srv, func(cfg *Config) { cfg.HTTPClient, cfg.Now = &http.Client{Transport: rec}, c.Now })
	s.logLimit = 2
	eng := groupID(t, sim, "Engineering")

	_, state := allGroupChanges(t, s, "")
	assert.Empty(t, rec.take(), "the full graph does not read the log")

	// Five memberships end; the first one's event is committed to the
	// log ten minutes late.
	c.Add(30 * time.Second)
	members := sim.Members(eng)
	require.GreaterOrEqual(t, len(members), 6)
	late := members[0]
	sim.DelayNextEvents(1, 10*time.Minute)
	for _, u := range members[:5] {
		require.NoError(t, sim.RemoveFromGroup(eng, u))
	}

	c.Add(5 * time.Minute)
	changes, state1 := allGroupChanges(t, s, state)
	got := removals(changes)
	assert.Len(t, got, 4, "the four events readable now")
	assert.False(t, got[eng+"/"+late], "not readable yet")
	calls := rec.take()
	require.Len(t, calls, 3, "two full pages of two, then an empty one")
	first := calls[0].url.Query()
	assert.NotEmpty(t, first.Get("since"), "the first request polls from the state's time")
	assert.Empty(t, first.Get("until"), "never a bounded request")
	assert.Equal(t, "ASCENDING", first.Get("sortOrder"))
	for i, call := range calls {
		q := call.url.Query()
		assert.False(t, q.Has("until"), "request %d is a polling request", i)
		assert.False(t, q.Has("since") && q.Has("after"), "since and after are mutually exclusive")
		assert.NotEmpty(t, call.next, "a polling answer always has a next link")
		if i > 0 {
			assert.Equal(t, calls[i-1].next, "http://"+call.url.Host+call.url.RequestURI(), "the next link is followed verbatim")
		}
	}
	assert.Equal(t, 0, calls[len(calls)-1].events, "the round stops at the first empty page")
	st1, err := parseState(state1, c.Now())
	require.NoError(t, err)
	assert.Equal(t, calls[len(calls)-1].next, st1.Link, "the state resumes at the empty page's next link")

	// Ten minutes on, the late event is readable; the next round, which
	// resumes where the last one stopped, reads it and nothing else.
	c.Add(10 * time.Minute)
	changes, state2 := allGroupChanges(t, s, state1)
	assert.Equal(t, map[string]bool{eng + "/" + late: true}, removals(changes), "the late removal is read")
	calls = rec.take()
	require.NotEmpty(t, calls)
	assert.Empty(t, calls[0].url.Query().Get("since"), "a round resumes at the saved link, not at a time")
	assert.Equal(t, st1.Link, "http://"+calls[0].url.Host+calls[0].url.RequestURI())

	// And a round with nothing new reads one empty page.
	c.Add(time.Minute)
	changes, _ = allGroupChanges(t, s, state2)
	assert.Empty(t, removals(changes))
	calls = rec.take()
	require.Len(t, calls, 1)
	assert.Equal(t, 0, calls[0].events)
}

// TestABareTimeStateIsStillRead: states saved before the System Log was
// polled are a bare time. They are read as the time of the lastUpdated
// filters and of the first polling request; the round hands out a state
// of the new form, which resumes the log at a link.
func TestABareTimeStateIsStillRead(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)}
	sim, srv := simOrg(t, oktasim.Config{Seed: 22, Users: 60, Now: c.Now})
	s := open(t, srv, func(cfg *Config) { cfg.Now = c.Now })
	legacy := c.Now().Add(-time.Minute).Format(oktaTime)

	var active []string
	for _, u := range sim.Users() {
		if u.Status == oktasim.StatusActive {
			active = append(active, u.ID)
		}
	}
	c.Add(time.Second)
	require.NoError(t, sim.DeleteUser(active[0]))
	require.NoError(t, sim.SetProfile(active[1], "title", "Moved"))
	c.Add(time.Minute)
	changes, next := allUserChanges(t, s, legacy)
	assert.True(t, changes[active[0]].Removed, "the deletion since the bare time is read")
	assert.Contains(t, changes, active[1], "the lastUpdated filter starts at the bare time")
	st, err := parseState(next, c.Now())
	require.NoError(t, err)
	assert.NotEmpty(t, st.Link, "the new state resumes the System Log at a link")
	_, err = time.Parse(time.RFC3339Nano, next)
	assert.Error(t, err, "the new state is not a bare time")
	_, err = s.UserChanges(context.Background(), "yesterday", "")
	require.ErrorIs(t, err, provider.ErrStateExpired)
}

// TestANextLinkToAnotherOriginIsRefused: a next link, from an answer or a
// saved state, goes to the org's own scheme and host or nowhere: the
// credentials are never sent elsewhere, and the run falls back to a full
// read.
func TestANextLinkToAnotherOriginIsRefused(t *testing.T) {
	var stolen atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "[]")
	}))
	defer evil.Close()
	sim := oktasim.New(oktasim.Config{Seed: 23, Users: 40})
	// An org whose System Log answers point their next links at evil.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/logs" {
			sim.ServeHTTP(w, r)
			return
		}
		rw := httptest.NewRecorder()
		sim.ServeHTTP(rw, r)
		for k, v := range rw.Header() {
			for _, x := range v {
				if k == "Link" {
					x = strings.Replace(x, "http://"+r.Host, evil.URL, 1)
				}
				w.Header().Add(k, x)
			}
		}
		w.WriteHeader(rw.Code)
		w.Write(rw.Body.Bytes())
	}))
	defer srv.Close()
	s := open(t, srv, nil)
	ctx := context.Background()
	state, err := s.LatestUserState(ctx)
	require.NoError(t, err)

	var c provider.Cursor
	for {
		p, err := s.UserChanges(ctx, state, c)
		if err != nil {
			require.ErrorIs(t, err, provider.ErrStateExpired, "a full run needs no link")
			assert.Contains(t, err.Error(), "refusing to send the credentials there")
			assert.Contains(t, err.Error(), evil.URL)
			break
		}
		require.NotEmpty(t, p.Next, "a round cannot end on a link it may not follow")
		c = p.Next
	}
	assert.Zero(t, stolen.Load(), "nothing was sent to the other origin")

	// A saved state whose link is elsewhere, or not a System Log query.
	for _, link := range []string{evil.URL + "/api/v1/logs?after=x", "https://" + strings.TrimPrefix(srv.URL, "http://") + "/api/v1/logs?after=x",
		srv.URL + "/api/v1/users?after=x", "::not a url"} {
		bad := changeState{Updated: time.Now().UTC().Format(oktaTime), Link: link}.encode()
		var c provider.Cursor
		for {
			p, err := s.UserChanges(ctx, bad, c)
			if err != nil {
				require.ErrorIs(t, err, provider.ErrStateExpired, link)
				break
			}
			c = p.Next
		}
	}
	assert.Zero(t, stolen.Load())
}

// TestAServiceAppWithoutTheLogScope: the service app asks for
// okta.logs.read with the other scopes. Granted, incremental reads work.
// Not granted, Okta refuses the whole token request (invalid_scope): the
// source asks again without it, reads users and groups as before, turns
// incremental reads into full ones and says so in Test.
func TestAServiceAppWithoutTheLogScope(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 24, Users: 60})
	key := testKey(t)
	sim.AddClient(oktasim.Client{ID: "0oafull", PublicKey: &key.PublicKey,
		Scopes: []string{oktasim.ScopeUsersRead, oktasim.ScopeGroupsRead, oktasim.ScopeAppsRead, oktasim.ScopeLogsRead}})
	sim.AddClient(oktasim.Client{ID: "0oanologs", PublicKey: &key.PublicKey,
		Scopes: []string{oktasim.ScopeUsersRead, oktasim.ScopeGroupsRead, oktasim.ScopeAppsRead}})
	app := func(id string, logs io.Writer) func(*Config) {
		return func(c *Config) {
			c.APIToken, c.ClientID, c.PrivateKey, c.AppID = "", id, pkcs1PEM(key), sim.AppID()
			c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		}
	}
	ctx := context.Background()
	eng := groupID(t, sim, "Engineering")

	var quietLog strings.Builder
	granted := open(t, srv, app("0oafull", &quietLog))
	warnings, err := granted.TestWarnings(ctx)
	require.NoError(t, err)
	assert.Empty(t, warnings)
	state, err := granted.LatestUserState(ctx)
	require.NoError(t, err)
	require.NoError(t, sim.DeleteUser(sim.Members(eng)[0]))
	changes, _ := allUserChanges(t, granted, state)
	assert.NotEmpty(t, changes, "incremental reads work with the scope")
	assert.Positive(t, sim.Requests(oktasim.FamilyLogs))

	var logs strings.Builder
	s := open(t, srv, app("0oanologs", &logs))
	warnings, err = s.TestWarnings(ctx)
	require.NoError(t, err, "the connection works")
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "okta.logs.read is not granted")
	assert.Contains(t, warnings[0], "incremental sync is off")
	require.NoError(t, s.Test(ctx))
	assert.Contains(t, logs.String(), "okta.logs.read is not granted", "Test says so in the log")

	users, _ := allUsers(t, s, eng)
	assert.Len(t, users, len(inScope(sim, eng)), "sync reads work")
	graph, _ := allGroupChanges(t, s, "")
	assert.NotEmpty(t, graph, "the full graph needs no log")
	_, err = s.UserChanges(ctx, state, "")
	require.ErrorIs(t, err, provider.ErrStateExpired)
	assert.Contains(t, err.Error(), ScopeLogsRead)
	_, err = s.GroupChanges(ctx, state, "")
	require.ErrorIs(t, err, provider.ErrStateExpired)

	// A fresh source learns it from its first token request, and its
	// first delta page already says so.
	fresh := open(t, srv, app("0oanologs", io.Discard))
	_, err = fresh.GroupChanges(ctx, state, "")
	require.ErrorIs(t, err, provider.ErrStateExpired)
	assert.Contains(t, err.Error(), "not granted "+ScopeLogsRead)

	// An API token whose admin may not read the System Log: Test works
	// and warns.
	sim.AddAPIToken("no-logs", oktasim.ScopeUsersRead, oktasim.ScopeGroupsRead)
	warnings, err = open(t, srv, func(c *Config) { c.APIToken = "no-logs" }).TestWarnings(ctx)
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "may not read the System Log")
}

func wrap(resp *http.Response) *okta.Response { return &okta.Response{Response: resp} }

// TestNextLinkParsing: Link headers as RFC 8288 allows them.
func TestNextLinkParsing(t *testing.T) {
	for _, tc := range []struct {
		headers []string
		want    string
	}{
		{[]string{`<https://o/api/v1/logs?a=1>; rel="self"`, `<https://o/api/v1/logs?after=2>; rel="next"`}, "https://o/api/v1/logs?after=2"},
		{[]string{`<https://o/x?a=1>; rel="self", <https://o/x?after=3&b=a,b>; rel="next"`}, "https://o/x?after=3&b=a,b"},
		{[]string{`<https://o/x>; rel=next`}, "https://o/x"},
		{[]string{`<https://o/x>; title="a"; rel="prev next"`}, "https://o/x"},
		{[]string{`<https://o/x>; rel="self"`}, ""},
		{[]string{`garbage`}, ""},
		{nil, ""},
	} {
		resp := &http.Response{Header: http.Header{}}
		for _, h := range tc.headers {
			resp.Header.Add("Link", h)
		}
		assert.Equal(t, tc.want, nextLink(wrap(resp)), "%q", tc.headers)
	}
}
