package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 14, item 2: a disabled user is listed in no group and counted in
// no group's member count unless the caller asks for it; its memberships
// and roles are kept, so enabling it brings it back.
func TestDisabledUsersAreInNoGroup(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		g := e.do(http.MethodPost, "/api/v1/groups", map[string]any{"name": "Staff"}).status(http.StatusCreated)["id"].(string)
		role := e.do(http.MethodPost, "/api/v1/roles", map[string]any{"name": "editors"}).status(http.StatusCreated)["id"].(string)
		ids := map[string]string{}
		for _, n := range []string{"alice", "bob", "carol"} {
			ids[n] = e.createUser(n)
			e.do(http.MethodPut, "/api/v1/groups/"+g+"/members/"+ids[n], nil).status(http.StatusNoContent)
		}
		e.do(http.MethodPut, "/api/v1/roles/"+role+"/members/"+ids["bob"], nil).status(http.StatusNoContent)
		e.do(http.MethodPatch, "/api/v1/users/"+ids["bob"], map[string]any{"status": "disabled"}).status(http.StatusOK)

		members := func(query string) []string {
			t.Helper()
			m := e.do(http.MethodGet, "/api/v1/groups/"+g+"/members"+query, nil).status(http.StatusOK)
			var out []string
			for _, it := range m["items"].([]any) {
				out = append(out, it.(map[string]any)["username"].(string))
			}
			return out
		}
		assert.Equal(t, []string{"alice", "carol"}, members(""))
		assert.Equal(t, []string{"alice", "carol"}, members("?status=active"))
		assert.Equal(t, []string{"bob"}, members("?status=disabled"))
		assert.Equal(t, []string{"alice", "bob", "carol"}, members("?status=all"))
		er := e.do(http.MethodGet, "/api/v1/groups/"+g+"/members?status=gone", nil).apiErr(http.StatusBadRequest, "bad_request")
		assert.Equal(t, "status must be one of active, disabled, all", er["message"])

		got := e.do(http.MethodGet, "/api/v1/groups/"+g, nil).status(http.StatusOK)
		assert.EqualValues(t, 2, got["memberCount"])
		assert.EqualValues(t, 1, got["disabledMemberCount"])
		list := e.do(http.MethodGet, "/api/v1/groups?q=staff", nil).status(http.StatusOK)["items"].([]any)
		require.Len(t, list, 1)
		assert.EqualValues(t, 2, list[0].(map[string]any)["memberCount"])

		// The user's own record still names the group it is kept in, and
		// its role is untouched.
		bob := e.do(http.MethodGet, "/api/v1/users/"+ids["bob"], nil).status(http.StatusOK)
		assert.Equal(t, []any{"Staff"}, bob["groups"])
		roles := e.do(http.MethodGet, "/api/v1/roles", nil).status(http.StatusOK)["items"].([]any)
		require.Len(t, roles, 1)
		assert.EqualValues(t, 1, roles[0].(map[string]any)["memberCount"])

		e.do(http.MethodPatch, "/api/v1/users/"+ids["bob"], map[string]any{"status": "active"}).status(http.StatusOK)
		assert.Equal(t, []string{"alice", "bob", "carol"}, members(""))
		got = e.do(http.MethodGet, "/api/v1/groups/"+g, nil).status(http.StatusOK)
		assert.EqualValues(t, 3, got["memberCount"])
		assert.EqualValues(t, 0, got["disabledMemberCount"])
	})
}
