package okta

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type logEventDoc struct {
	UUID      string `json:"uuid"`
	Published string `json:"published"`
	EventType string `json:"eventType"`
	Target    []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"target"`
}

// logs reads one page of the System Log at path (a path or a next link).
func logs(t *testing.T, srv *httptest.Server, path string) ([]logEventDoc, answer) {
	t.Helper()
	a := get(t, srv, ssws, path)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	var events []logEventDoc
	a.json(t, &events)
	return events, a
}

func q(s string) string { return url.QueryEscape(s) }

func TestChangeFilters(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	sim, srv := start(t, Config{Seed: 3, Users: 40, Now: clock.Now})
	eng, _ := sim.GroupByName("Engineering")
	sales, _ := sim.GroupByName("Sales")
	mover := sim.Members(eng.ID)[0]
	clock.Add(time.Hour)
	since := clock.Now().Format(timeLayout)
	clock.Add(time.Second)
	require.NoError(t, sim.MoveUser(mover, eng.ID, sales.ID))
	require.NoError(t, sim.Deactivate(mover))
	clock.Add(time.Second)

	users, _ := all(t, srv, "/api/v1/users?filter="+q(`lastUpdated gt "`+since+`"`))
	assert.Empty(t, users, "by default a filtered listing leaves DEPROVISIONED users out unless asked for by status")
	users, _ = all(t, srv, "/api/v1/users?filter="+q(`lastUpdated gt "`+since+`" and status eq "DEPROVISIONED"`))
	assert.Equal(t, []string{mover}, users)
	users, _ = all(t, srv, "/api/v1/users?search="+q(`lastUpdated gt "`+since+`"`))
	assert.Equal(t, []string{mover}, users, "search includes DEPROVISIONED users")
	sim.SetFilterIncludesDeprovisioned(true)
	users, _ = all(t, srv, "/api/v1/users?filter="+q(`lastUpdated gt "`+since+`"`))
	assert.Equal(t, []string{mover}, users, "the documented reading, when asked for")
	groups, _ := all(t, srv, "/api/v1/groups?filter="+q(`lastMembershipUpdated gt "`+since+`"`))
	assert.ElementsMatch(t, []string{eng.ID, sales.ID}, groups)

	// Filters take only what each endpoint documents.
	for _, path := range []string{
		"/api/v1/users?filter=" + q(`profile.department eq "Sales"`),
		"/api/v1/users?filter=" + q(`status sw "ACT"`),
		"/api/v1/users?filter=" + q(`not (status eq "ACTIVE")`),
		"/api/v1/users?filter=" + q(`status eq "ACTIVE`),
		"/api/v1/groups?filter=" + q(`profile.name eq "Sales"`),
		"/api/v1/logs?filter=" + q(`published gt "`+since+`"`),
	} {
		a := get(t, srv, ssws, path)
		assert.Equal(t, http.StatusBadRequest, a.status, path)
	}
	ok, _ := all(t, srv, "/api/v1/users?filter="+q(`status eq "DEPROVISIONED" and (id eq "`+mover+`" or id eq "00unone")`))
	assert.Equal(t, []string{mover}, ok, "parentheses group terms")
}

// TestSystemLogPollingAndBoundedRequests holds the simulator to Okta's
// "System Log query" page: events become readable some time after they
// are published; polling requests see them in that order and always have
// a next link; bounded requests filter by published time and miss what
// was committed late.
func TestSystemLogPollingAndBoundedRequests(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	sim, srv := start(t, Config{Seed: 4, Users: 40, Now: clock.Now, LogLag: 3 * time.Second})
	eng, _ := sim.GroupByName("Engineering")
	members := sim.Members(eng.ID)
	t0 := clock.Now()
	filter := "&filter=" + q(`eventType eq "`+EventMembershipRemove+`"`)

	// A polling request from t0, before anything happened: empty, with a
	// next link nonetheless.
	events, a := logs(t, srv, "/api/v1/logs?since="+q(t0.Format(timeLayout))+"&limit=2"+filter)
	assert.Empty(t, events)
	link := a.next()
	require.NotEmpty(t, link, "a polling answer always has a next link")
	assert.NotContains(t, link, "since=", "the next link carries after, not since")

	// Three removals; the first is committed ten minutes late.
	clock.Add(time.Second)
	sim.DelayNextEvents(1, 10*time.Minute)
	for _, u := range members[:3] {
		require.NoError(t, sim.RemoveFromGroup(eng.ID, u))
		clock.Add(time.Second)
	}
	published := clock.Now()
	events, _ = logs(t, srv, link)
	assert.Empty(t, events, "within the lag nothing is readable yet")

	clock.Add(5 * time.Second)
	events, a = logs(t, srv, link)
	require.Len(t, events, 2, "the two on time, in the order they became readable")
	assert.Equal(t, members[1], events[0].Target[0].ID)
	assert.Equal(t, members[2], events[1].Target[0].ID)
	link = a.next()
	events, a = logs(t, srv, link)
	assert.Empty(t, events)
	link = a.next()
	require.NotEmpty(t, link)

	// A bounded request over the whole range, now: the late event is not
	// there yet, and the last page has no next link.
	bounded := "/api/v1/logs?since=" + q(t0.Format(timeLayout)) + "&until=" + q(published.Add(time.Second).Format(timeLayout)) + "&limit=1" + filter
	events, a = logs(t, srv, bounded)
	require.Len(t, events, 1)
	events, a = logs(t, srv, a.next())
	require.Len(t, events, 1)
	assert.Empty(t, a.next(), "a bounded request has a finite number of pages")

	// Ten minutes on, the late one is readable: the polling stream reads
	// it from where it stopped.
	clock.Add(10 * time.Minute)
	events, _ = logs(t, srv, link)
	require.Len(t, events, 1)
	assert.Equal(t, members[0], events[0].Target[0].ID)
	pub, err := time.Parse(time.RFC3339Nano, events[0].Published)
	require.NoError(t, err)
	assert.True(t, pub.Before(published), "published when it happened, read minutes later")
	// A bounded request over that range now sees it, in published order.
	events, _ = logs(t, srv, strings.Replace(bounded, "limit=1", "limit=10", 1))
	require.Len(t, events, 3)
	assert.Equal(t, members[0], events[0].Target[0].ID)
	// A bounded request that starts after its published time (as the
	// next of back-to-back bounded reads would) never will.
	events, _ = logs(t, srv, "/api/v1/logs?since="+q(t0.Add(1500*time.Millisecond).Format(timeLayout))+"&until="+q(clock.Now().Format(timeLayout))+filter)
	require.Len(t, events, 2)
	assert.NotEqual(t, members[0], events[0].Target[0].ID)
	assert.NotEqual(t, members[0], events[1].Target[0].ID)

	// DESCENDING bounded requests page backwards.
	events, a = logs(t, srv, strings.Replace(bounded, "limit=1", "limit=2", 1)+"&sortOrder=DESCENDING")
	require.Len(t, events, 2)
	assert.Equal(t, members[2], events[0].Target[0].ID)
	events, _ = logs(t, srv, a.next())
	require.Len(t, events, 1)
	assert.Equal(t, members[0], events[0].Target[0].ID)

	// What Okta refuses.
	for name, path := range map[string]string{
		"since and after":     link + "&since=" + q(t0.Format(timeLayout)),
		"until before since":  "/api/v1/logs?since=" + q(t0.Format(timeLayout)) + "&until=" + q(t0.Add(-time.Hour).Format(timeLayout)),
		"since over 180 days": "/api/v1/logs?since=" + q(clock.Now().Add(-181*24*time.Hour).Format(timeLayout)),
		"not a time":          "/api/v1/logs?since=yesterday",
		"sort order":          "/api/v1/logs?sortOrder=UP",
		"limit":               "/api/v1/logs?limit=1001",
		"forged after":        "/api/v1/logs?after=00u123",
	} {
		a := get(t, srv, ssws, path)
		assert.Equal(t, http.StatusBadRequest, a.status, name)
		assert.NotEmpty(t, a.code(t), name)
	}
	assert.Equal(t, "E0000053", get(t, srv, ssws, "/api/v1/logs?since="+q(clock.Now().Add(-181*24*time.Hour).Format(timeLayout))).code(t))
	sim.ExpireCursors()
	assert.Equal(t, http.StatusBadRequest, get(t, srv, ssws, link).status, "an expired position")
}

func TestSystemLogEvents(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	sim, srv := start(t, Config{Seed: 5, Users: 40, Now: clock.Now})
	eng, _ := sim.GroupByName("Engineering")
	sales, _ := sim.GroupByName("Sales")
	since := clock.Now().Format(timeLayout)
	mover := sim.Members(eng.ID)[0]
	require.NoError(t, sim.MoveUser(mover, eng.ID, sales.ID))
	gone := sim.Members(sales.ID)[1]
	require.NoError(t, sim.DeleteUser(gone))
	clock.Add(time.Second)

	events, _ := logs(t, srv, "/api/v1/logs?since="+q(since)+"&filter="+
		q(`eventType eq "`+EventMembershipAdd+`" or eventType eq "`+EventMembershipRemove+`"`))
	require.Len(t, events, 2)
	assert.Equal(t, EventMembershipRemove, events[0].EventType, "oldest first")
	assert.Equal(t, mover, events[0].Target[0].ID)
	assert.Equal(t, "UserGroup", events[0].Target[1].Type)
	assert.Equal(t, eng.ID, events[0].Target[1].ID)
	events, _ = logs(t, srv, "/api/v1/logs?since="+q(since)+"&filter="+q(`target.id eq "`+sales.ID+`"`))
	assert.Len(t, events, 1, "target.id matches any target")
	events, _ = logs(t, srv, "/api/v1/logs?since="+q(since)+"&filter="+q(`eventType eq "`+EventUserDeleted+`"`))
	require.Len(t, events, 1)
	assert.Equal(t, gone, events[0].Target[0].ID)
	events, _ = logs(t, srv, "/api/v1/logs?since="+q(since)+"&q="+q("user.lifecycle"))
	assert.Len(t, events, 1, "keywords")

	// A backdated event: logged now, published ten minutes ago. A polling
	// request sees it; a bounded one from five minutes ago does not.
	clock.Add(time.Minute)
	sim.BackdateNextEvents(1, 10*time.Minute)
	require.NoError(t, sim.RemoveFromGroup(sales.ID, mover))
	clock.Add(time.Second)
	events, _ = logs(t, srv, "/api/v1/logs?since="+q(clock.Now().Add(-2*time.Second).Format(timeLayout)))
	require.Len(t, events, 1)
	pub, err := time.Parse(time.RFC3339Nano, events[0].Published)
	require.NoError(t, err)
	assert.Equal(t, clock.Now().Add(-10*time.Minute-time.Second), pub)
	events, _ = logs(t, srv, "/api/v1/logs?since="+q(clock.Now().Add(-5*time.Minute).Format(timeLayout))+"&until="+q(clock.Now().Format(timeLayout))+
		"&filter="+q(`eventType eq "`+EventMembershipRemove+`" and target.id eq "`+sales.ID+`"`))
	assert.Empty(t, events)

	// Okta keeps 90 days.
	clock.Add(91 * 24 * time.Hour)
	events, _ = logs(t, srv, "/api/v1/logs?since="+q(since))
	assert.Empty(t, events)
}

// TestQueriesDoNotPage: q on users and groups is a picker's query, one
// page of results, as Okta documents.
func TestQueriesDoNotPage(t *testing.T) {
	_, srv := start(t, Config{Seed: 6, Users: 300})
	a := get(t, srv, ssws, "/api/v1/users?q=a")
	var users []map[string]any
	a.json(t, &users)
	assert.Len(t, users, UsersQueryDefaultLimit)
	assert.Empty(t, a.next())
	a = get(t, srv, ssws, "/api/v1/groups?q=a&limit=1")
	var groups []map[string]any
	a.json(t, &groups)
	assert.Len(t, groups, 1)
	assert.Empty(t, a.next(), "paging and q are mutually exclusive")
}
