package okta

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	oktasim "github.com/usersync/usersync/idpsim/okta"
	"github.com/usersync/usersync/provider"
)

// stateTime is the lastUpdated time of a state.
func stateTime(t *testing.T, state string) time.Time {
	t.Helper()
	st, err := parseState(state, time.Now())
	require.NoError(t, err)
	at, err := time.Parse(time.RFC3339Nano, st.Updated)
	require.NoError(t, err)
	return at
}

// allUserChanges reads a round of user changes to its end.
func allUserChanges(t *testing.T, s *Source, state string) (map[string]provider.UserChange, string) {
	t.Helper()
	out := map[string]provider.UserChange{}
	var c provider.Cursor
	for {
		p, err := s.UserChanges(context.Background(), state, c)
		require.NoError(t, err)
		for _, ch := range p.Items {
			out[ch.User.ExternalID] = ch
		}
		if p.Next == "" {
			require.NotEmpty(t, p.State, "the last page hands out the next state")
			return out, p.State
		}
		c = p.Next
	}
}

// allGroupChanges reads a round of the group graph to its end.
func allGroupChanges(t *testing.T, s *Source, state string) ([]provider.GroupChange, string) {
	t.Helper()
	var out []provider.GroupChange
	var c provider.Cursor
	for {
		p, err := s.GroupChanges(context.Background(), state, c)
		require.NoError(t, err)
		out = append(out, p.Items...)
		if p.Next == "" {
			require.NotEmpty(t, p.State)
			return out, p.State
		}
		c = p.Next
	}
}

func TestUserChangesSeeDeactivationsAndDeletions(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 11, Users: 80})
	s := open(t, srv, func(c *Config) { c.PageSize = 3 })
	ctx := context.Background()
	state, err := s.LatestUserState(ctx)
	require.NoError(t, err)
	st := stateTime(t, state)
	assert.WithinDuration(t, time.Now().Add(-deltaSkew), st, 10*time.Second, "a state starts a little before now")

	var active []string
	for _, u := range sim.Users() {
		if u.Status == oktasim.StatusActive {
			active = append(active, u.ID)
		}
	}
	require.GreaterOrEqual(t, len(active), 5)
	require.NoError(t, sim.Deactivate(active[0]))
	require.NoError(t, sim.Suspend(active[1]))
	require.NoError(t, sim.SetProfile(active[2], "department", "Moved"))
	require.NoError(t, sim.DeleteUser(active[3]))
	staged, err := sim.AddUser(map[string]any{"login": "new@example.com", "firstName": "New", "lastName": "Hire"}, oktasim.StatusStaged)
	require.NoError(t, err)

	changes, next := allUserChanges(t, s, state)
	assert.Len(t, changes, 4, "only what changed: %v", changes)
	assert.False(t, changes[active[0]].Removed)
	assert.False(t, changes[active[0]].User.Active, "a DEPROVISIONED user is read, inactive")
	assert.False(t, changes[active[1]].User.Active)
	assert.True(t, changes[active[2]].User.Active)
	assert.True(t, changes[active[3]].Removed, "a deleted user comes from the System Log")
	assert.NotContains(t, changes, staged, "STAGED users are not created")
	assert.False(t, stateTime(t, next).Before(st))

	// Activation updates the STAGED user: it is read then.
	require.NoError(t, sim.Activate(staged))
	changes, _ = allUserChanges(t, s, next)
	assert.True(t, changes[staged].User.Active)

	_, err = s.UserChanges(ctx, "not a time", "")
	require.ErrorIs(t, err, provider.ErrStateExpired)
	_, err = s.UserChanges(ctx, time.Now().Add(-100*24*time.Hour).Format(oktaTime), "")
	require.ErrorIs(t, err, provider.ErrStateExpired, "older than the System Log keeps")

	got, err := s.UsersByID(ctx, []string{active[0], active[3], staged, active[4]})
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, u := range got {
		ids[u.ExternalID] = true
	}
	assert.Equal(t, map[string]bool{active[0]: true, staged: true, active[4]: true}, ids, "a deleted user is left out")
}

func TestGroupChangesGraphAndMemberships(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 12, Users: 120})
	s := open(t, srv, func(c *Config) { c.PageSize = 7; c.AppID = sim.AppID() })
	eng, vpn := groupID(t, sim, "Engineering"), groupID(t, sim, oktasim.GroupVPN)

	graph, state := allGroupChanges(t, s, "")
	members := map[string]map[string]bool{}
	props := map[string]provider.GroupChange{}
	for _, g := range graph {
		if g.HasProperties {
			props[g.Group.ID] = g
		}
		if members[g.Group.ID] == nil {
			members[g.Group.ID] = map[string]bool{}
		}
		for _, m := range g.Members {
			assert.False(t, m.Removed)
			members[g.Group.ID][m.ID] = true
		}
	}
	assert.Len(t, props, len(sim.Groups()), "every group of the org, assigned to the app or not")
	assert.True(t, props[eng].Eligible)
	assert.False(t, props[vpn].Eligible, "VPN Users is not assigned to the app")
	for _, g := range sim.Groups() {
		assert.Len(t, members[g.ID], len(sim.Members(g.ID)), g.Name)
	}

	in, out := sim.Members(eng)[0], ""
	for _, u := range sim.Users() {
		if !members[eng][u.ID] {
			out = u.ID
			break
		}
	}
	require.NoError(t, sim.RemoveFromGroup(eng, in))
	require.NoError(t, sim.AddToGroup(eng, out))
	require.NoError(t, sim.RemoveFromGroup(eng, out))
	require.NoError(t, sim.AddToGroup(eng, out))
	fresh := sim.AddGroup("Engineering Guild", "")
	changes, next := allGroupChanges(t, s, state)
	var got []provider.MemberChange
	sawFresh := false
	for _, g := range changes {
		if g.Group.ID == eng {
			got = append(got, g.Members...)
		}
		if g.Group.ID == fresh && g.HasProperties {
			sawFresh = true
			assert.False(t, g.Eligible)
		}
	}
	assert.ElementsMatch(t, []provider.MemberChange{{ID: in, Removed: true}, {ID: out}}, got, "the last event of a membership wins")
	assert.True(t, sawFresh, "a new group is read with its properties")
	assert.False(t, stateTime(t, next).Before(stateTime(t, state)))
}

func TestDeltaWithoutTheLogScopeFallsBack(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 13, Users: 30})
	key := testKey(t)
	sim.AddClient(oktasim.Client{ID: "0oasync", PublicKey: &key.PublicKey,
		Scopes: []string{oktasim.ScopeUsersRead, oktasim.ScopeGroupsRead}})
	s := open(t, srv, func(c *Config) { c.APIToken, c.ClientID, c.PrivateKey = "", "0oasync", pkcs1PEM(key) })
	state, err := s.LatestUserState(context.Background())
	require.NoError(t, err)
	_, err = s.UserChanges(context.Background(), state, "")
	require.ErrorIs(t, err, provider.ErrStateExpired, "the run reads in full, from its first page")
	assert.Contains(t, err.Error(), ScopeLogsRead)
	assert.Zero(t, sim.Requests(oktasim.FamilyLogs), "the log is not asked for with a token that may not read it")
}
