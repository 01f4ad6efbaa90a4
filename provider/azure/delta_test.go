package azure

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/idpsim/graph"
	"github.com/usersync/usersync/provider"
)

// userRound reads a users round from state to its end.
func userRound(t *testing.T, src *Source, state string) (map[string]provider.UserChange, string) {
	t.Helper()
	ctx := context.Background()
	out := map[string]provider.UserChange{}
	c := ""
	for range 10000 {
		p, err := src.UserChanges(ctx, state, c)
		if err != nil {
			t.Fatalf("users round: %v", err)
		}
		for _, u := range p.Items {
			out[u.User.ExternalID] = u
		}
		if p.Next == "" {
			if p.State == "" {
				t.Fatal("a round ended without a state")
			}
			return out, p.State
		}
		c = p.Next
	}
	t.Fatal("endless round")
	return nil, ""
}

// TestUserChangesTrackManagersAsGraphDocuments: the initial round tells
// every user's manager (manager@delta, $select=manager); a later round
// tells it only for a user whose manager changed, and a user listed for
// another change keeps its manager (ManagerUnchanged) instead of losing
// it; a cleared manager is "" and known; UsersByID tells the managers of
// the users it reads and leaves out the ones that are gone.
func TestUserChangesTrackManagersAsGraphDocuments(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 61, Users: 500, Groups: 6})
	src := f.open(t, func(c *Config) { c.AttributeMap = map[string]string{"department": "department"} })

	initial, state := userRound(t, src, "")
	if len(initial) != 500 {
		t.Fatalf("initial round: %d users", len(initial))
	}
	for _, u := range f.ten.Users() {
		c := initial[u.ID]
		if c.User.ManagerUnchanged || c.User.ManagerRef != u.ManagerID {
			t.Fatalf("initial round, user %s: manager %q (untold %t), want %q", u.ID, c.User.ManagerRef, c.User.ManagerUnchanged, u.ManagerID)
		}
	}

	all := f.ten.Users()
	dept, moved, cleared := all[10], all[11], all[12]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.ten.UpdateUser(dept.ID, func(u *graph.User) { u.Props["department"] = "Somewhere else" }))
	must(f.ten.SetManager(moved.ID, all[0].ID))
	must(f.ten.SetManager(cleared.ID, ""))
	joiner, err := f.ten.NewUser(graph.User{UserPrincipalName: "joiner@" + f.ten.Domain, GivenName: "J", Surname: "Oiner",
		Mail: "joiner@" + f.ten.Domain, AccountEnabled: true, ManagerID: all[1].ID})
	must(err)

	changes, _ := userRound(t, src, state)
	if len(changes) != 4 {
		t.Fatalf("%d changes, want 4: %v", len(changes), changes)
	}
	if c := changes[dept.ID].User; !c.ManagerUnchanged || c.Attributes["department"] != "Somewhere else" {
		t.Fatalf("department change: %+v", c)
	}
	if c := changes[moved.ID].User; c.ManagerUnchanged || c.ManagerRef != all[0].ID {
		t.Fatalf("manager change: %+v", c)
	}
	if c := changes[cleared.ID].User; c.ManagerUnchanged || c.ManagerRef != "" {
		t.Fatalf("manager cleared: %+v", c)
	}
	if c := changes[joiner].User; c.ManagerUnchanged || c.ManagerRef != all[1].ID {
		t.Fatalf("joiner: %+v", c)
	}

	gone := all[20].ID
	must(f.ten.DeleteUser(gone))
	got, err := src.UsersByID(context.Background(), []string{dept.ID, cleared.ID, gone})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("UsersByID: %+v", got)
	}
	for _, u := range got {
		want, _ := f.ten.User(u.ExternalID)
		if u.ManagerUnchanged || u.ManagerRef != want.ManagerID {
			t.Fatalf("UsersByID %s: manager %q, want %q", u.ExternalID, u.ManagerRef, want.ManagerID)
		}
	}
}

// TestUserRoundsSurviveEmptyPagesAndRefusedTokens: empty pages with a
// nextLink are followed to the round's end; a delta link Graph refuses, as
// 410 Gone or as an expired token's 400 syncStateNotFound, is
// provider.ErrStateExpired (the run reads in full).
func TestUserRoundsSurviveEmptyPagesAndRefusedTokens(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 62, Users: 450, Groups: 3})
	src := f.open(t, nil)
	f.sim.SetFaults(graph.Faults{EmptyPageShare: 1})
	users, state := userRound(t, src, "")
	if len(users) != 450 {
		t.Fatalf("%d users through empty pages", len(users))
	}
	f.sim.SetFaults(graph.Faults{})

	now := time.Now()
	f.sim.SetClock(func() time.Time { return now.Add(8 * 24 * time.Hour) })
	if _, err := src.UserChanges(context.Background(), state, ""); !errors.Is(err, provider.ErrStateExpired) {
		t.Fatalf("expired delta link: %v", err)
	}
	f.sim.SetClock(time.Now)
	f.sim.ExpireDeltaTokens()
	if _, err := src.UserChanges(context.Background(), state, ""); !errors.Is(err, provider.ErrStateExpired) {
		t.Fatalf("410 Gone: %v", err)
	}
}

// TestLinksOffGraphAreNotFollowed: a delta link, a nextLink or a cursor
// that points anywhere but the profile's Graph endpoint is refused before
// a request is made (the state makes the run read in full, a cursor
// starts the listing over), whoever stored it.
func TestLinksOffGraphAreNotFollowed(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 63, Users: 30, Groups: 2})
	src := f.open(t, nil)
	ctx := context.Background()
	before := f.sim.Stats().Requests
	for _, link := range []string{"https://attacker.example/v1.0/users/delta?$deltatoken=x",
		strings.Replace(f.srv.URL, "http://", "https://", 1) + "/v1.0/users/delta", f.srv.URL + "/beta/users/delta", "::"} {
		if _, err := src.UserChanges(ctx, link, ""); !errors.Is(err, provider.ErrStateExpired) {
			t.Fatalf("%s: %v", link, err)
		}
		if _, err := src.GroupChanges(ctx, link, ""); !errors.Is(err, provider.ErrStateExpired) {
			t.Fatalf("groups %s: %v", link, err)
		}
		if _, err := src.Groups(ctx, provider.GroupQuery{}, link); !errors.Is(err, provider.ErrCursorExpired) {
			t.Fatalf("picker %s: %v", link, err)
		}
		if _, err := src.Members(ctx, "g", link); !errors.Is(err, provider.ErrCursorExpired) {
			t.Fatalf("members %s: %v", link, err)
		}
	}
	if n := f.sim.Stats().Requests - before; n != 0 {
		t.Fatalf("%d requests were sent", n)
	}
}
