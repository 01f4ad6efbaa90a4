package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync/directory"
)

func user(name string) map[string]any {
	return map[string]any{"username": name, "firstName": "F " + name, "lastName": "L " + name, "email": name + "@example.com"}
}

func (e *env) createUser(name string) string {
	e.t.Helper()
	return e.do(http.MethodPost, "/api/v1/users", user(name)).status(http.StatusCreated)["id"].(string)
}

func TestCreateUser(t *testing.T) {
	e := newEnv(t)
	body := user("alice")
	body["password"] = "correct horse"
	r := e.do(http.MethodPost, "/api/v1/users", body)
	m := r.status(http.StatusCreated)
	assert.NotContains(t, r.Body.String(), "correct horse")
	assert.NotContains(t, r.Body.String(), "password")
	assert.Equal(t, "alice", m["username"])
	assert.Equal(t, "local", m["directoryKey"])
	assert.Equal(t, "active", m["status"])
	assert.Equal(t, map[string]any{}, m["attributes"])
	assert.Equal(t, []any{}, m["groups"])
	u, err := e.store.GetUser(context.Background(), m["id"].(string))
	require.NoError(t, err)
	assert.NoError(t, bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte("correct horse")))

	got := e.do(http.MethodGet, "/api/v1/users/"+u.ID, nil).status(http.StatusOK)
	assert.Equal(t, "alice@example.com", got["email"])
	e.do(http.MethodGet, "/api/v1/users/nope", nil).apiErr(http.StatusNotFound, "not_found")

	er := e.do(http.MethodPost, "/api/v1/users", user("ALICE")).apiErr(http.StatusConflict, "conflict")
	assert.Contains(t, er["message"], "taken")

	er = e.do(http.MethodPost, "/api/v1/users", map[string]any{"username": "bob", "email": "bob"}).
		apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Equal(t, "firstName: required; lastName: required; email: not a valid email address", er["message"])
	er = e.do(http.MethodPost, "/api/v1/users", map[string]any{}).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Len(t, er["details"], 4)
	long := user("carol")
	long["password"] = string(make([]byte, 73))
	er = e.do(http.MethodPost, "/api/v1/users", long).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Equal(t, "password: at most 72 bytes", er["message"])
	er = e.do(http.MethodPost, "/api/v1/users", `{"username":"x","directoryKey":"p-1"}`).apiErr(http.StatusBadRequest, "bad_request")
	assert.Equal(t, `unknown field "directoryKey"`, er["message"])

	assert.Len(t, e.audit("user_created"), 1)
}

func TestListUsersPaging(t *testing.T) {
	e := newEnv(t)
	want := map[string]bool{}
	for i := range 7 {
		want[e.createUser(fmt.Sprintf("user%02d", i))] = true
	}
	got := map[string]bool{}
	cursor, pages := "", 0
	for {
		path := "/api/v1/users?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		m := e.do(http.MethodGet, path, nil).status(http.StatusOK)
		pages++
		for _, it := range m["items"].([]any) {
			u := it.(map[string]any)
			assert.False(t, got[u["id"].(string)], "user seen twice")
			got[u["id"].(string)] = true
			assert.Equal(t, []any{}, u["groups"])
		}
		next, ok := m["nextCursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	assert.Equal(t, 3, pages)
	assert.Equal(t, want, got)

	m := e.do(http.MethodGet, "/api/v1/users?q=USER03", nil).status(http.StatusOK)
	require.Len(t, m["items"], 1)
	m = e.do(http.MethodGet, "/api/v1/users?directory=local&status=active&limit=5000", nil).status(http.StatusOK)
	assert.Len(t, m["items"], 7)
	m = e.do(http.MethodGet, "/api/v1/users?directory=p-other", nil).status(http.StatusOK)
	assert.Empty(t, m["items"])
	e.do(http.MethodGet, "/api/v1/users?status=gone", nil).apiErr(http.StatusBadRequest, "bad_request")
}

func TestPatchAndDeleteUser(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("dave")
	m := e.do(http.MethodPatch, "/api/v1/users/"+id, `{"status":"disabled"}`).status(http.StatusOK)
	assert.Equal(t, "disabled", m["status"])
	assert.NotNil(t, m["disabledAt"])
	m = e.do(http.MethodGet, "/api/v1/users?status=disabled", nil).status(http.StatusOK)
	assert.Len(t, m["items"], 1)
	e.do(http.MethodPatch, "/api/v1/users/"+id, `{"status":"gone"}`).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	e.do(http.MethodPatch, "/api/v1/users/nope", `{"status":"active"}`).apiErr(http.StatusNotFound, "not_found")
	assert.Len(t, e.audit("user_disabled"), 1)

	e.do(http.MethodDelete, "/api/v1/users/"+id, nil).status(http.StatusNoContent)
	e.do(http.MethodDelete, "/api/v1/users/"+id, nil).apiErr(http.StatusNotFound, "not_found")
}

func TestGroups(t *testing.T) {
	e := newEnv(t)
	uid := e.createUser("erin")
	g := e.do(http.MethodPost, "/api/v1/groups", `{"name":"Intranet editors"}`).status(http.StatusCreated)
	gid := g["id"].(string)
	assert.Equal(t, "local", g["directoryKey"])
	e.do(http.MethodPost, "/api/v1/groups", `{"name":"intranet EDITORS"}`).apiErr(http.StatusConflict, "conflict")
	e.do(http.MethodPost, "/api/v1/groups", `{"name":" "}`).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	e.do(http.MethodPost, "/api/v1/groups", `{"title":"x"}`).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodPost, "/api/v1/groups", `{"name":"Other"}`).status(http.StatusCreated)

	m := e.do(http.MethodGet, "/api/v1/groups?q=intra", nil).status(http.StatusOK)
	require.Len(t, m["items"], 1)
	assert.Equal(t, gid, m["items"].([]any)[0].(map[string]any)["id"])
	m = e.do(http.MethodGet, "/api/v1/groups", nil).status(http.StatusOK)
	assert.Len(t, m["items"], 2)

	e.do(http.MethodPut, "/api/v1/groups/"+gid+"/members/"+uid, nil).status(http.StatusNoContent)
	e.do(http.MethodPut, "/api/v1/groups/"+gid+"/members/"+uid, nil).status(http.StatusNoContent) // idempotent
	assert.Equal(t, float64(1), e.do(http.MethodGet, "/api/v1/groups/"+gid, nil).status(http.StatusOK)["memberCount"])
	members := e.do(http.MethodGet, "/api/v1/groups/"+gid+"/members", nil).status(http.StatusOK)
	require.Len(t, members["items"], 1)
	assert.Equal(t, uid, members["items"].([]any)[0].(map[string]any)["id"])
	u := e.do(http.MethodGet, "/api/v1/users/"+uid, nil).status(http.StatusOK)
	assert.Equal(t, []any{"Intranet editors"}, u["groups"])

	e.do(http.MethodPut, "/api/v1/groups/"+gid+"/members/nope", nil).apiErr(http.StatusNotFound, "not_found")
	e.do(http.MethodPut, "/api/v1/groups/nope/members/"+uid, nil).apiErr(http.StatusNotFound, "not_found")
	e.do(http.MethodDelete, "/api/v1/groups/"+gid+"/members/"+uid, nil).status(http.StatusNoContent)
	members = e.do(http.MethodGet, "/api/v1/groups/"+gid+"/members", nil).status(http.StatusOK)
	assert.Empty(t, members["items"])
	e.do(http.MethodGet, "/api/v1/groups/nope", nil).apiErr(http.StatusNotFound, "not_found")
	e.do(http.MethodGet, "/api/v1/groups/nope/members", nil).apiErr(http.StatusNotFound, "not_found")
	assert.Len(t, e.audit("group_member_added"), 2)
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	uid := e.createUser("frank")
	role := e.do(http.MethodPost, "/api/v1/roles", `{"name":"Admins"}`).status(http.StatusCreated)
	rid := role["id"].(string)
	e.do(http.MethodPost, "/api/v1/roles", `{"name":"Admins"}`).apiErr(http.StatusConflict, "conflict")
	e.do(http.MethodPost, "/api/v1/roles", `{}`).apiErr(http.StatusUnprocessableEntity, "validation_failed")

	e.do(http.MethodPut, "/api/v1/roles/"+rid+"/members/"+uid, nil).status(http.StatusNoContent)
	members, err := e.store.ListRoleMembers(context.Background(), rid)
	require.NoError(t, err)
	assert.Equal(t, []string{uid}, members)
	m := e.do(http.MethodGet, "/api/v1/roles", nil).status(http.StatusOK)
	require.Len(t, m["items"], 1)
	assert.Equal(t, float64(1), m["items"].([]any)[0].(map[string]any)["memberCount"])

	e.do(http.MethodPut, "/api/v1/roles/nope/members/"+uid, nil).apiErr(http.StatusNotFound, "not_found")
	e.do(http.MethodPut, "/api/v1/roles/"+rid+"/members/nope", nil).apiErr(http.StatusNotFound, "not_found")
	e.do(http.MethodDelete, "/api/v1/roles/"+rid+"/members/"+uid, nil).status(http.StatusNoContent)
	members, err = e.store.ListRoleMembers(context.Background(), rid)
	require.NoError(t, err)
	assert.Empty(t, members)
	assert.Len(t, e.audit("role_created"), 1)
	assert.Equal(t, directory.CategoryDirectory, e.audit("role_member_removed")[0].Category)
}
