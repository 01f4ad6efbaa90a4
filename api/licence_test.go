package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
)

// Issue 14, item 1: the licence holds for users made active by hand, with
// an error that says which limit and what to do; disabling never waits
// for it.
func TestLicenceRefusesUsersByHand(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice := e.createUser("alice")
		bob := e.createUser("bob")
		e.do(http.MethodPut, "/api/v1/settings/licence", map[string]any{"limit": 2}).status(http.StatusOK)

		er := e.do(http.MethodPost, "/api/v1/users", user("carol")).apiErr(http.StatusConflict, "licence_limit_reached")
		assert.Equal(t, "cannot create carol: the licence allows 2 active users and 2 are active; "+
			"disable a user or raise the licence limit first", er["message"])
		page, err := e.store.ListUsers(ctx, directory.UserFilter{Query: "carol"}, directory.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, page.Items, "a refused user is not created")

		// Disabling is never refused; enabling again takes the seat back.
		e.do(http.MethodPatch, "/api/v1/users/"+bob, map[string]any{"status": "disabled"}).status(http.StatusOK)
		carol := e.createUser("carol")
		er = e.do(http.MethodPatch, "/api/v1/users/"+bob, map[string]any{"status": "active"}).
			apiErr(http.StatusConflict, "licence_limit_reached")
		assert.Contains(t, er["message"], "cannot enable bob: the licence allows 2 active users")
		u, err := e.store.GetUser(ctx, bob)
		require.NoError(t, err)
		assert.Equal(t, directory.StatusDisabled, u.Status)

		// An active user made active again is no new seat.
		e.do(http.MethodPatch, "/api/v1/users/"+alice, map[string]any{"status": "active"}).status(http.StatusOK)

		e.do(http.MethodPut, "/api/v1/settings/licence", map[string]any{"limit": 0}).status(http.StatusOK)
		m := e.do(http.MethodPatch, "/api/v1/users/"+bob, map[string]any{"status": "active"}).status(http.StatusOK)
		assert.Equal(t, "active", m["status"])
		assert.NotEmpty(t, carol)
		assert.Len(t, e.audit("user_enabled"), 2)
		assert.Len(t, e.audit("user_disabled"), 1)
	})
}
