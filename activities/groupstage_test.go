package activities_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/sources"
)

// pagedSource is a provider whose users do not carry their groups (like
// Graph and Okta): group sync must list the groups, then each group's
// members, all of it paged.
type pagedSource struct {
	users   []provider.User
	groups  []provider.Group
	members map[string][]string // group id -> user ids
	gone    map[string]bool     // groups whose members answer not found
}

func page[T any](items []T, c provider.Cursor, size int) (provider.Page[T], error) {
	start := 0
	if c != "" {
		n, err := strconv.Atoi(c)
		if err != nil {
			return provider.Page[T]{}, fmt.Errorf("bad cursor: %w", provider.ErrCursorExpired)
		}
		start = n
	}
	end := min(start+size, len(items))
	p := provider.Page[T]{Items: items[start:end]}
	if end < len(items) {
		p.Next = strconv.Itoa(end)
	}
	return p, nil
}

func (s *pagedSource) Test(context.Context) error { return nil }
func (s *pagedSource) Users(_ context.Context, _ provider.Scope, c provider.Cursor) (provider.Page[provider.User], error) {
	return page(s.users, c, 2)
}
func (s *pagedSource) Groups(_ context.Context, q provider.GroupQuery, c provider.Cursor) (provider.Page[provider.Group], error) {
	if !q.ForSync {
		return provider.Page[provider.Group]{}, fmt.Errorf("group sync must ask for the sync set")
	}
	return page(s.groups, c, 1)
}
func (s *pagedSource) Members(_ context.Context, id string, c provider.Cursor) (provider.Page[provider.Member], error) {
	if s.gone[id] {
		return provider.Page[provider.Member]{}, fmt.Errorf("group %s: %w", id, provider.ErrNotFound)
	}
	var ms []provider.Member
	for _, u := range s.members[id] {
		ms = append(ms, provider.Member{UserID: u})
	}
	return page(ms, c, 1)
}

var fake = &pagedSource{}

func init() {
	sources.Register("fake", func(context.Context, sources.Env, sources.Target) (*sources.Opened, error) {
		return &sources.Opened{Source: fake}, nil
	})
}

func TestGroupSyncReadsGroupsThenMembers(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		*fake = pagedSource{
			groups: []provider.Group{{ID: "g3", Name: "Intranet B"}, {ID: "g1", Name: "Intranet A"}, {ID: "g2", Name: "Other"}, {ID: "g4", Name: "Intranet Gone"}},
			members: map[string][]string{
				"g1": {"id-1", "id-2", "id-outside-scope"},
				"g2": {"id-3"},
				"g3": {"id-3"},
			},
			gone: map[string]bool{"g4": true},
		}
		for i := 1; i <= 5; i++ {
			fake.users = append(fake.users, provider.User{ExternalID: fmt.Sprintf("id-%d", i), Username: fmt.Sprintf("user%d", i),
				FirstName: "F", LastName: "L", Email: fmt.Sprintf("user%d@example.com", i), Active: true})
		}
		h := newHarness(t, db, func(c *profile.Config) {
			c.Provider, c.Block = "fake", nil
			c.Groups = []string{"scope"}
			c.GroupSync = profile.GroupSync{Mode: profile.GroupSyncRegex, Pattern: "^Intranet"}
		})
		h.profile.Provider = "fake"
		run := h.mustSync()
		if run.Counts.Created != 5 || run.Counts.GroupsCreated != 3 || run.Counts.MembershipsAdded != 3 {
			t.Fatalf("counts %+v", run.Counts)
		}
		g := groupNames(t, h)
		if g["Intranet A"] != 2 || g["Intranet B"] != 1 || g["Intranet Gone"] != 0 {
			t.Fatalf("groups %v", g)
		}
		if _, ok := g["Other"]; ok {
			t.Fatal("a group outside the filter was created")
		}
		// user3 leaves Intranet B; the next run removes the membership.
		fake.members["g3"] = nil
		run = h.mustSync()
		if run.Counts.MembershipsRemoved != 1 || groupNames(t, h)["Intranet B"] != 0 {
			t.Fatalf("second run %+v", run.Counts)
		}
	})
}
