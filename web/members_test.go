package web

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
)

// Issue 14, item 2 on the admin page: a disabled user is in no group's
// member list or count unless the admin asks for every member.
func TestGroupPageHidesDisabledMembers(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		b := e.browser()
		b.signIn()
		g := &directory.Group{Name: "Staff"}
		require.NoError(t, e.store.CreateGroup(ctx, g))
		for _, n := range []string{"ann", "ben"} {
			u := &directory.User{Username: n, FirstName: n, LastName: "X", Email: n + "@example.com"}
			require.NoError(t, e.store.CreateUser(ctx, u))
			require.NoError(t, e.store.AddGroupMember(ctx, g.ID, u.ID))
			if n == "ben" {
				require.NoError(t, e.store.SetUserStatus(ctx, u.ID, directory.StatusDisabled, e.clock.now()))
			}
		}

		page := b.get("/groups/" + g.ID)
		require.Equal(t, http.StatusOK, page.status)
		assert.Contains(t, page.body, ">ann</a>")
		assert.NotContains(t, page.body, ">ben</a>")
		assert.Contains(t, page.body, "<dd>1 <span class=\"muted\">(and 1 disabled, not counted)</span></dd>")
		assert.Contains(t, page.body, "Show the 1 disabled member too")

		page = b.get("/groups/" + g.ID + "?status=all")
		assert.Contains(t, page.body, ">ann</a>")
		assert.Contains(t, page.body, ">ben</a>")
		assert.Contains(t, page.body, "Show active members only")
		assert.Equal(t, http.StatusUnprocessableEntity, b.get("/groups/"+g.ID+"?status=gone").status)

		page = b.get("/groups")
		assert.Contains(t, page.body, `<td>1 <span class="muted">(+1 disabled)</span></td>`)
	})
}
