package okta

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSystemLogAndChangeFilters(t *testing.T) {
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
	gone := sim.Members(sales.ID)[0]
	if gone == mover {
		gone = sim.Members(sales.ID)[1]
	}
	require.NoError(t, sim.DeleteUser(gone))
	clock.Add(time.Second)

	q := func(filter string) string { return url.QueryEscape(filter) }
	users, _ := all(t, srv, "/api/v1/users?filter="+q(`lastUpdated gt "`+since+`"`))
	assert.Equal(t, []string{mover}, users, "a filtered listing includes the DEPROVISIONED user")
	groups, _ := all(t, srv, "/api/v1/groups?filter="+q(`lastMembershipUpdated gt "`+since+`"`))
	assert.ElementsMatch(t, []string{eng.ID, sales.ID}, groups)

	a := get(t, srv, ssws, "/api/v1/logs?since="+q(since)+"&limit=1&filter="+
		q(`eventType eq "`+EventMembershipAdd+`" or eventType eq "`+EventMembershipRemove+`"`))
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	var events []struct {
		EventType string `json:"eventType"`
		Target    []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"target"`
	}
	a.json(t, &events)
	require.Len(t, events, 1)
	assert.Equal(t, EventMembershipRemove, events[0].EventType, "oldest first")
	assert.Equal(t, mover, events[0].Target[0].ID)
	assert.Equal(t, "UserGroup", events[0].Target[1].Type)
	require.NotEmpty(t, a.next())
	b := get(t, srv, ssws, a.next())
	b.json(t, &events)
	require.Len(t, events, 1)
	assert.Equal(t, EventMembershipAdd, events[0].EventType)
	assert.Empty(t, b.next())

	del := get(t, srv, ssws, "/api/v1/logs?since="+q(since)+"&filter="+q(`eventType eq "`+EventUserDeleted+`"`))
	del.json(t, &events)
	require.Len(t, events, 1)
	assert.Equal(t, gone, events[0].Target[0].ID)
	early := get(t, srv, ssws, "/api/v1/logs?since="+q(since)+"&until="+q(since))
	early.json(t, &events)
	assert.Empty(t, events, "until bounds the events")
	assert.Equal(t, http.StatusBadRequest, get(t, srv, ssws, "/api/v1/logs?since=yesterday").status)
}
