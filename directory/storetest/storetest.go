// Package storetest is the conformance suite of directory.Store: every
// implementation (each SQL dialect) must pass the same tests, so a
// behaviour cannot quietly differ between Postgres and SQLite.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
)

// RunTests runs the suite; newStore must return a store on an empty,
// migrated database each time it is called.
func RunTests(t *testing.T, newStore func(t *testing.T) directory.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s directory.Store)
	}{
		{"Profiles", testProfiles},
		{"Users", testUsers},
		{"UserFilters", testUserFilters},
		{"UserPaging", testUserPaging},
		{"SwitchDirectory", testSwitchDirectory},
		{"Groups", testGroups},
		{"DisabledMembers", testDisabledMembers},
		{"Roles", testRoles},
		{"Documents", testDocuments},
		{"DocumentTooLarge", testDocumentTooLarge},
		{"Audit", testAudit},
		{"Licence", testLicence},
		{"Runs", testRuns},
		{"RunPaging", testRunPaging},
		{"RunStatusGuard", testRunStatusGuard},
		{"Cursors", testCursors},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newStore(t)) })
	}
}

var ctx = context.Background()

// pageAll walks a listing with limit and returns every item and the
// number of pages it took.
func pageAll[T any](t *testing.T, limit int, list func(opt directory.ListOptions) (directory.Page[T], error)) ([]T, int) {
	t.Helper()
	var all []T
	cur := ""
	for pages := 1; ; pages++ {
		p, err := list(directory.ListOptions{Limit: limit, Cursor: cur})
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Items), limit)
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			return all, pages
		}
		require.Len(t, p.Items, limit, "a page before the last is full")
		require.Less(t, pages, 10000, "paging does not end")
		cur = p.NextCursor
	}
}

func newUser(name string) *directory.User {
	return &directory.User{Username: name, FirstName: "First " + name, LastName: "Last " + name, Email: name + "@example.com"}
}

func mustUser(t *testing.T, s directory.Store, name string) *directory.User {
	t.Helper()
	u := newUser(name)
	require.NoError(t, s.CreateUser(ctx, u))
	return u
}

func sameTime(t *testing.T, want, got time.Time, what string) {
	t.Helper()
	assert.True(t, want.Equal(got), "%s: want %v, got %v", what, want, got)
	assert.Equal(t, time.UTC, got.Location(), "%s is UTC", what)
}

func testProfiles(t *testing.T, s directory.Store) {
	p := &directory.Profile{Name: "Contoso Entra", Provider: "azure", Enabled: true, DirectoryKey: "dir-contoso",
		Config: json.RawMessage(`{"groups":["g1"]}`), Secrets: "sealed"}
	require.NoError(t, s.CreateProfile(ctx, p))
	require.NotEmpty(t, p.ID)
	require.False(t, p.CreatedAt.IsZero())

	got, err := s.GetProfile(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, p.Name, got.Name)
	assert.Equal(t, "azure", got.Provider)
	assert.True(t, got.Enabled)
	assert.Equal(t, "dir-contoso", got.DirectoryKey)
	assert.JSONEq(t, `{"groups":["g1"]}`, string(got.Config))
	assert.Equal(t, "sealed", got.Secrets)
	sameTime(t, p.CreatedAt, got.CreatedAt, "created")

	// Names are unique case-insensitively, directory keys too.
	err = s.CreateProfile(ctx, &directory.Profile{Name: "CONTOSO entra", Provider: "okta", DirectoryKey: "dir-other"})
	assert.ErrorIs(t, err, directory.ErrConflict)
	err = s.CreateProfile(ctx, &directory.Profile{Name: "Another", Provider: "okta", DirectoryKey: "dir-contoso"})
	assert.ErrorIs(t, err, directory.ErrConflict)
	// A refused create leaves no directory behind: the key is free again.
	require.NoError(t, s.CreateProfile(ctx, &directory.Profile{Name: "Okta", Provider: "okta", DirectoryKey: "dir-other"}))

	_, err = s.GetProfile(ctx, "nope")
	assert.ErrorIs(t, err, directory.ErrNotFound)

	// Update.
	got.Name, got.Enabled, got.Config, got.Secrets = "Contoso", false, json.RawMessage(`{}`), "sealed2"
	require.NoError(t, s.UpdateProfile(ctx, got))
	again, err := s.GetProfile(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, "Contoso", again.Name)
	assert.False(t, again.Enabled)
	assert.Equal(t, "sealed2", again.Secrets)
	assert.Equal(t, "dir-contoso", again.DirectoryKey)
	assert.False(t, again.UpdatedAt.Before(again.CreatedAt))
	again.Name = "OKTA"
	assert.ErrorIs(t, s.UpdateProfile(ctx, again), directory.ErrConflict)
	assert.ErrorIs(t, s.UpdateProfile(ctx, &directory.Profile{ID: "nope", Name: "x"}), directory.ErrNotFound)

	// The profile's directory holds users, and they outlive the profile.
	u := newUser("synced")
	u.DirectoryKey = "dir-contoso"
	require.NoError(t, s.CreateUser(ctx, u))

	page, err := s.ListProfiles(ctx, directory.ListOptions{})
	require.NoError(t, err)
	require.Len(t, page.Items, 2)
	assert.Equal(t, "Contoso", page.Items[0].Name)
	assert.Equal(t, "Okta", page.Items[1].Name)
	assert.Empty(t, page.NextCursor)

	require.NoError(t, s.DeleteProfile(ctx, p.ID))
	assert.ErrorIs(t, s.DeleteProfile(ctx, p.ID), directory.ErrNotFound)
	_, err = s.GetProfile(ctx, p.ID)
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = s.GetUser(ctx, u.ID)
	assert.NoError(t, err)

	// Paging by name.
	for i := range 5 {
		require.NoError(t, s.CreateProfile(ctx, &directory.Profile{Name: fmt.Sprintf("p%d", i), Provider: "csv",
			DirectoryKey: fmt.Sprintf("dir-p%d", i)}))
	}
	all, pages := pageAll(t, 2, func(opt directory.ListOptions) (directory.Page[directory.Profile], error) {
		return s.ListProfiles(ctx, opt)
	})
	assert.Equal(t, 3, pages)
	var names []string
	for _, p := range all {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"Okta", "p0", "p1", "p2", "p3", "p4"}, names)
}

func testUsers(t *testing.T, s directory.Store) {
	u := newUser("Alice")
	u.Attributes = map[string]string{"department": "R&D"}
	require.NoError(t, s.CreateUser(ctx, u))
	assert.NotEmpty(t, u.ID)
	assert.Equal(t, directory.LocalDirectory, u.DirectoryKey)
	assert.Equal(t, directory.StatusActive, u.Status)

	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, "Alice", got.Username)
	assert.Equal(t, "First Alice", got.FirstName)
	assert.Equal(t, "Last Alice", got.LastName)
	assert.Equal(t, "Alice@example.com", got.Email)
	assert.Equal(t, directory.LocalDirectory, got.DirectoryKey)
	assert.Equal(t, map[string]string{"department": "R&D"}, got.Attributes)
	assert.Nil(t, got.ExternalID)
	assert.Nil(t, got.DisabledAt)
	assert.Equal(t, []string{}, got.Groups)
	sameTime(t, u.CreatedAt, got.CreatedAt, "created")

	// Usernames are unique case-insensitively.
	assert.ErrorIs(t, s.CreateUser(ctx, newUser("ALICE")), directory.ErrConflict)
	assert.ErrorIs(t, s.CreateUser(ctx, newUser("alice")), directory.ErrConflict)
	// An unknown directory is not found.
	bad := newUser("bob")
	bad.DirectoryKey = "no-such-directory"
	assert.ErrorIs(t, s.CreateUser(ctx, bad), directory.ErrNotFound)
	_, err = s.GetUser(ctx, "nope")
	assert.ErrorIs(t, err, directory.ErrNotFound)

	// Groups of a user, sorted by name.
	for _, name := range []string{"zeta", "Alpha"} {
		g := &directory.Group{Name: name}
		require.NoError(t, s.CreateGroup(ctx, g))
		require.NoError(t, s.AddGroupMember(ctx, g.ID, u.ID))
	}
	got, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"Alpha", "zeta"}, got.Groups)
	// A listing carries them too.
	list, err := s.ListUsers(ctx, directory.UserFilter{Query: u.Username}, directory.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	assert.Equal(t, []string{"Alpha", "zeta"}, list.Items[0].Groups)

	// Status.
	at := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.FixedZone("x", 3600))
	require.NoError(t, s.SetUserStatus(ctx, u.ID, directory.StatusDisabled, at))
	got, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, directory.StatusDisabled, got.Status)
	require.NotNil(t, got.DisabledAt)
	sameTime(t, at, *got.DisabledAt, "disabled at")
	sameTime(t, at, got.UpdatedAt, "updated at")
	n, err := s.CountActiveUsers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, n)

	require.NoError(t, s.SetUserStatus(ctx, u.ID, directory.StatusActive, time.Time{}))
	got, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, directory.StatusActive, got.Status)
	assert.Nil(t, got.DisabledAt)
	n, err = s.CountActiveUsers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.ErrorIs(t, s.SetUserStatus(ctx, "nope", directory.StatusDisabled, time.Time{}), directory.ErrNotFound)
	assert.Error(t, s.SetUserStatus(ctx, u.ID, "weird", time.Time{}))

	// Delete: memberships go, reports lose their manager.
	report := newUser("report")
	report.ManagerID = &u.ID
	require.NoError(t, s.CreateUser(ctx, report))
	got, err = s.GetUser(ctx, report.ID)
	require.NoError(t, err)
	require.NotNil(t, got.ManagerID)
	assert.Equal(t, u.ID, *got.ManagerID)

	require.NoError(t, s.DeleteUser(ctx, u.ID))
	assert.ErrorIs(t, s.DeleteUser(ctx, u.ID), directory.ErrNotFound)
	_, err = s.GetUser(ctx, u.ID)
	assert.ErrorIs(t, err, directory.ErrNotFound)
	got, err = s.GetUser(ctx, report.ID)
	require.NoError(t, err)
	assert.Nil(t, got.ManagerID)
	groups, err := s.ListGroups(ctx, "", directory.ListOptions{})
	require.NoError(t, err)
	for _, g := range groups.Items {
		assert.Equal(t, 0, g.MemberCount, g.Name)
	}
	// The username is free again.
	require.NoError(t, s.CreateUser(ctx, newUser("alice")))

	// A disabled user created as such, and a synced one.
	d := newUser("dora")
	d.Status = directory.StatusDisabled
	ext := "ext-1"
	d.ExternalID = &ext
	require.NoError(t, s.CreateUser(ctx, d))
	got, err = s.GetUser(ctx, d.ID)
	require.NoError(t, err)
	assert.NotNil(t, got.DisabledAt)
	require.NotNil(t, got.ExternalID)
	assert.Equal(t, "ext-1", *got.ExternalID)
}

func usernames(us []directory.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

func testUserFilters(t *testing.T, s directory.Store) {
	require.NoError(t, s.CreateProfile(ctx, &directory.Profile{Name: "Okta", Provider: "okta", DirectoryKey: "okta1"}))
	mk := func(username, first, last, email, dir, status string) {
		u := &directory.User{Username: username, FirstName: first, LastName: last, Email: email, DirectoryKey: dir, Status: status}
		require.NoError(t, s.CreateUser(ctx, u))
	}
	mk("jdoe", "John", "Doe", "john@example.com", "local", "active")
	mk("MSmith", "Mary", "Smith", "mary@corp.example", "okta1", "active")
	mk("bjones", "Bob", "Jones", "bob@example.com", "okta1", "disabled")
	mk("under_score", "Pct", "100%", "u@x.org", "local", "active")
	mk("underXscore", "Plain", "Name", "p@x.org", "local", "active")

	list := func(f directory.UserFilter) []string {
		p, err := s.ListUsers(ctx, f, directory.ListOptions{})
		require.NoError(t, err)
		return usernames(p.Items)
	}
	assert.Equal(t, []string{"bjones", "jdoe", "MSmith", "under_score", "underXscore"}, list(directory.UserFilter{}))
	assert.Equal(t, []string{"bjones"}, list(directory.UserFilter{Status: "disabled"}))
	assert.Equal(t, []string{"bjones", "MSmith"}, list(directory.UserFilter{Directory: "okta1"}))
	assert.Equal(t, []string{"MSmith"}, list(directory.UserFilter{Directory: "okta1", Status: "active"}))
	assert.Equal(t, []string{"MSmith"}, list(directory.UserFilter{Query: "smi"}))   // username and last name
	assert.Equal(t, []string{"MSmith"}, list(directory.UserFilter{Query: "MARY"}))  // first name
	assert.Equal(t, []string{"MSmith"}, list(directory.UserFilter{Query: "CORP."})) // email
	assert.Equal(t, []string{"bjones", "jdoe"}, list(directory.UserFilter{Query: "@example.com"}))
	// LIKE wildcards in q are literal.
	assert.Equal(t, []string{"under_score"}, list(directory.UserFilter{Query: "r_s"}))
	assert.Equal(t, []string{"under_score"}, list(directory.UserFilter{Query: "0%"}))
	assert.Equal(t, []string{}, list(directory.UserFilter{Query: "nobody"}))
	assert.Equal(t, []string{}, list(directory.UserFilter{Query: "john", Status: "disabled"}))
}

func testUserPaging(t *testing.T, s directory.Store) {
	const n = 250
	want := map[string]bool{}
	for i := range n {
		// Mixed case, so the order must follow the lower-cased name.
		name := fmt.Sprintf("user%03d", i)
		if i%3 == 0 {
			name = strings.ToUpper(name)
		}
		mustUser(t, s, name)
		want[strings.ToLower(name)] = true
	}
	all, pages := pageAll(t, 100, func(opt directory.ListOptions) (directory.Page[directory.User], error) {
		return s.ListUsers(ctx, directory.UserFilter{}, opt)
	})
	assert.Equal(t, 3, pages)
	require.Len(t, all, n)
	seen := map[string]bool{}
	for i, u := range all {
		lower := strings.ToLower(u.Username)
		assert.False(t, seen[lower], "duplicate %s", u.Username)
		seen[lower] = true
		assert.Equal(t, fmt.Sprintf("user%03d", i), lower, "order")
	}
	assert.Equal(t, want, seen)

	// Default limit 100, cap 1000.
	p, err := s.ListUsers(ctx, directory.UserFilter{}, directory.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, p.Items, 100)
	assert.NotEmpty(t, p.NextCursor)
	p, err = s.ListUsers(ctx, directory.UserFilter{}, directory.ListOptions{Limit: 5000})
	require.NoError(t, err)
	assert.Len(t, p.Items, n)
	assert.Empty(t, p.NextCursor)
	// Exactly limit rows: no further page.
	p, err = s.ListUsers(ctx, directory.UserFilter{}, directory.ListOptions{Limit: n})
	require.NoError(t, err)
	assert.Len(t, p.Items, n)
	assert.Empty(t, p.NextCursor)
	// Filters hold across pages.
	filtered, _ := pageAll(t, 7, func(opt directory.ListOptions) (directory.Page[directory.User], error) {
		return s.ListUsers(ctx, directory.UserFilter{Query: "USER1"}, opt)
	})
	assert.Len(t, filtered, 100) // user100..user199
}

func testGroups(t *testing.T, s directory.Store) {
	g := &directory.Group{Name: "Engineering"}
	require.NoError(t, s.CreateGroup(ctx, g))
	assert.NotEmpty(t, g.ID)
	assert.Equal(t, directory.LocalDirectory, g.DirectoryKey)
	assert.ErrorIs(t, s.CreateGroup(ctx, &directory.Group{Name: "engineering"}), directory.ErrConflict)

	got, err := s.GetGroup(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, "Engineering", got.Name)
	assert.Nil(t, got.ExternalID)
	assert.Equal(t, 0, got.MemberCount)
	_, err = s.GetGroup(ctx, "nope")
	assert.ErrorIs(t, err, directory.ErrNotFound)

	a, b := mustUser(t, s, "bob"), mustUser(t, s, "Alice")
	require.NoError(t, s.AddGroupMember(ctx, g.ID, a.ID))
	require.NoError(t, s.AddGroupMember(ctx, g.ID, a.ID)) // twice is fine
	require.NoError(t, s.AddGroupMember(ctx, g.ID, b.ID))
	assert.ErrorIs(t, s.AddGroupMember(ctx, "nope", a.ID), directory.ErrNotFound)
	assert.ErrorIs(t, s.AddGroupMember(ctx, g.ID, "nope"), directory.ErrNotFound)

	got, err = s.GetGroup(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, got.MemberCount)
	members, err := s.ListGroupMembers(ctx, g.ID, directory.MemberFilter{}, directory.ListOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"Alice", "bob"}, usernames(members.Items))
	_, err = s.ListGroupMembers(ctx, "nope", directory.MemberFilter{}, directory.ListOptions{})
	assert.ErrorIs(t, err, directory.ErrNotFound)

	require.NoError(t, s.RemoveGroupMember(ctx, g.ID, a.ID))
	require.NoError(t, s.RemoveGroupMember(ctx, g.ID, a.ID)) // twice is fine
	assert.ErrorIs(t, s.RemoveGroupMember(ctx, "nope", a.ID), directory.ErrNotFound)
	assert.ErrorIs(t, s.RemoveGroupMember(ctx, g.ID, "nope"), directory.ErrNotFound)
	members, err = s.ListGroupMembers(ctx, g.ID, directory.MemberFilter{}, directory.ListOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"Alice"}, usernames(members.Items))

	// Paging and q, ordered by name regardless of case.
	for i := range 25 {
		name := fmt.Sprintf("team-%02d", i)
		if i%2 == 1 {
			name = strings.ToUpper(name)
		}
		require.NoError(t, s.CreateGroup(ctx, &directory.Group{Name: name}))
	}
	all, pages := pageAll(t, 10, func(opt directory.ListOptions) (directory.Page[directory.Group], error) {
		return s.ListGroups(ctx, "TEAM", opt)
	})
	assert.Equal(t, 3, pages)
	require.Len(t, all, 25)
	for i, g := range all {
		assert.Equal(t, fmt.Sprintf("team-%02d", i), strings.ToLower(g.Name))
	}
	p, err := s.ListGroups(ctx, "", directory.ListOptions{Limit: 1})
	require.NoError(t, err)
	require.Len(t, p.Items, 1)
	assert.Equal(t, "Engineering", p.Items[0].Name)
	assert.Equal(t, 1, p.Items[0].MemberCount)
	p, err = s.ListGroups(ctx, "%", directory.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, p.Items)
}

// A disabled user keeps its memberships but is in no group's count, and
// its groups list it only when asked for disabled or every member; its
// roles are untouched.
func testDisabledMembers(t *testing.T, s directory.Store) {
	g := &directory.Group{Name: "Staff"}
	require.NoError(t, s.CreateGroup(ctx, g))
	r := &directory.Role{Name: "editors"}
	require.NoError(t, s.CreateRole(ctx, r))
	alice, bob, carol := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
	for _, u := range []*directory.User{alice, bob, carol} {
		require.NoError(t, s.AddGroupMember(ctx, g.ID, u.ID))
	}
	require.NoError(t, s.AddRoleMember(ctx, r.ID, bob.ID))
	require.NoError(t, s.SetUserStatus(ctx, bob.ID, directory.StatusDisabled, time.Time{}))

	got, err := s.GetGroup(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, got.MemberCount)
	assert.Equal(t, 1, got.DisabledMemberCount)
	list, err := s.ListGroups(ctx, "staff", directory.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	assert.Equal(t, 2, list.Items[0].MemberCount)
	assert.Equal(t, 1, list.Items[0].DisabledMemberCount)

	for status, want := range map[string][]string{
		directory.StatusActive:   {"alice", "carol"},
		directory.StatusDisabled: {"bob"},
		"":                       {"alice", "bob", "carol"},
	} {
		members, err := s.ListGroupMembers(ctx, g.ID, directory.MemberFilter{Status: status}, directory.ListOptions{})
		require.NoError(t, err)
		assert.Equal(t, want, usernames(members.Items), "status %q", status)
	}
	// Paging within the filter.
	all, pages := pageAll(t, 1, func(opt directory.ListOptions) (directory.Page[directory.User], error) {
		return s.ListGroupMembers(ctx, g.ID, directory.MemberFilter{Status: directory.StatusActive}, opt)
	})
	assert.Equal(t, []string{"alice", "carol"}, usernames(all))
	assert.Equal(t, 2, pages)
	_, err = s.ListGroupMembers(ctx, g.ID, directory.MemberFilter{Status: "gone"}, directory.ListOptions{})
	assert.Error(t, err)

	u, err := s.GetUser(ctx, bob.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"Staff"}, u.Groups, "the membership is kept")
	roleMembers, err := s.ListRoleMembers(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{bob.ID}, roleMembers, "roles are untouched")

	// Enabled again, the user is back in the group at once.
	require.NoError(t, s.SetUserStatus(ctx, bob.ID, directory.StatusActive, time.Time{}))
	got, err = s.GetGroup(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, 3, got.MemberCount)
	assert.Equal(t, 0, got.DisabledMemberCount)
}

func testRoles(t *testing.T, s directory.Store) {
	r := &directory.Role{Name: "admin"}
	require.NoError(t, s.CreateRole(ctx, r))
	assert.NotEmpty(t, r.ID)
	assert.ErrorIs(t, s.CreateRole(ctx, &directory.Role{Name: "admin"}), directory.ErrConflict)
	viewer := &directory.Role{Name: "viewer"}
	require.NoError(t, s.CreateRole(ctx, viewer))

	a, b := mustUser(t, s, "a"), mustUser(t, s, "b")
	require.NoError(t, s.AddRoleMember(ctx, r.ID, a.ID))
	require.NoError(t, s.AddRoleMember(ctx, r.ID, a.ID))
	require.NoError(t, s.AddRoleMember(ctx, r.ID, b.ID))
	assert.ErrorIs(t, s.AddRoleMember(ctx, "nope", a.ID), directory.ErrNotFound)
	assert.ErrorIs(t, s.AddRoleMember(ctx, r.ID, "nope"), directory.ErrNotFound)

	ids, err := s.ListRoleMembers(ctx, r.ID)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{a.ID, b.ID}, ids)
	ids, err = s.ListRoleMembers(ctx, viewer.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{}, ids)
	_, err = s.ListRoleMembers(ctx, "nope")
	assert.ErrorIs(t, err, directory.ErrNotFound)

	roles, err := s.ListRoles(ctx, directory.ListOptions{})
	require.NoError(t, err)
	require.Len(t, roles.Items, 2)
	assert.Equal(t, "admin", roles.Items[0].Name)
	assert.Equal(t, 2, roles.Items[0].MemberCount)
	assert.Equal(t, 0, roles.Items[1].MemberCount)
	all, pages := pageAll(t, 1, func(opt directory.ListOptions) (directory.Page[directory.Role], error) {
		return s.ListRoles(ctx, opt)
	})
	assert.Equal(t, 2, pages)
	assert.Len(t, all, 2)

	require.NoError(t, s.RemoveRoleMember(ctx, r.ID, a.ID))
	require.NoError(t, s.RemoveRoleMember(ctx, r.ID, a.ID))
	assert.ErrorIs(t, s.RemoveRoleMember(ctx, r.ID, "nope"), directory.ErrNotFound)
	// Deleting a user takes its roles.
	require.NoError(t, s.DeleteUser(ctx, b.ID))
	ids, err = s.ListRoleMembers(ctx, r.ID)
	require.NoError(t, err)
	assert.Empty(t, ids)
}

// pattern is deterministic content whose every byte depends on its offset.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func readAt(t *testing.T, s directory.Store, id string, off int64) []byte {
	t.Helper()
	rc, err := s.OpenDocument(ctx, id, off)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

func testDocuments(t *testing.T, s directory.Store) {
	const mib = 1 << 20
	data := pattern(2*mib + 12345)
	d, err := s.CreateDocument(ctx, "people.csv", "text/csv", bytes.NewReader(data), 100*mib)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	assert.Equal(t, hex.EncodeToString(sum[:]), d.SHA256)
	assert.Equal(t, int64(len(data)), d.Size)
	assert.Equal(t, "people.csv", d.Name)

	got, err := s.GetDocument(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, d.SHA256, got.SHA256)
	assert.Equal(t, d.Size, got.Size)
	assert.Equal(t, "text/csv", got.ContentType)
	sameTime(t, d.CreatedAt, got.CreatedAt, "created")

	for _, off := range []int64{0, 1, mib - 1, mib, mib + 1, 2*mib - 1, 2 * mib, 2*mib + 12344} {
		assert.True(t, bytes.Equal(data[off:], readAt(t, s, d.ID, off)), "offset %d", off)
	}
	assert.Empty(t, readAt(t, s, d.ID, int64(len(data))))
	assert.Empty(t, readAt(t, s, d.ID, int64(len(data))+mib))
	_, err = s.OpenDocument(ctx, "nope", 0)
	assert.ErrorIs(t, err, directory.ErrNotFound)

	// Small reads across a chunk boundary.
	rc, err := s.OpenDocument(ctx, d.ID, mib-3)
	require.NoError(t, err)
	buf := make([]byte, 2)
	var small []byte
	for len(small) < 8 {
		n, err := rc.Read(buf)
		require.NoError(t, err)
		small = append(small, buf[:n]...)
	}
	require.NoError(t, rc.Close())
	assert.Equal(t, data[mib-3:mib-3+len(small)], small)

	empty, err := s.CreateDocument(ctx, "empty.csv", "", strings.NewReader(""), 10)
	require.NoError(t, err)
	assert.Equal(t, int64(0), empty.Size)
	assert.Empty(t, readAt(t, s, empty.ID, 0))

	exact, err := s.CreateDocument(ctx, "exact.csv", "text/csv", strings.NewReader("0123456789"), 10)
	require.NoError(t, err)
	assert.Equal(t, "3456789", string(readAt(t, s, exact.ID, 3)))

	docs, pages := pageAll(t, 2, func(opt directory.ListOptions) (directory.Page[directory.Document], error) {
		return s.ListDocuments(ctx, opt)
	})
	assert.Equal(t, 2, pages)
	ids := map[string]bool{}
	for _, x := range docs {
		ids[x.ID] = true
	}
	assert.Equal(t, map[string]bool{d.ID: true, empty.ID: true, exact.ID: true}, ids)

	// A document deleted while it is read fails the read; it does not
	// pass for a shorter file.
	rc, err = s.OpenDocument(ctx, d.ID, 0)
	require.NoError(t, err)
	_, err = rc.Read(buf)
	require.NoError(t, err)
	require.NoError(t, s.DeleteDocument(ctx, d.ID))
	_, err = io.ReadAll(rc)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.NoError(t, rc.Close())

	assert.ErrorIs(t, s.DeleteDocument(ctx, d.ID), directory.ErrNotFound)
	_, err = s.GetDocument(ctx, d.ID)
	assert.ErrorIs(t, err, directory.ErrNotFound)
	_, err = s.OpenDocument(ctx, d.ID, 0)
	assert.ErrorIs(t, err, directory.ErrNotFound)
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func testDocumentTooLarge(t *testing.T, s directory.Store) {
	const mib = 1 << 20
	_, err := s.CreateDocument(ctx, "big.csv", "text/csv", bytes.NewReader(pattern(2*mib+1)), 2*mib)
	require.ErrorIs(t, err, directory.ErrTooLarge)
	_, err = s.CreateDocument(ctx, "eleven.csv", "text/csv", strings.NewReader("01234567890"), 10)
	require.ErrorIs(t, err, directory.ErrTooLarge)
	// A failed read stores nothing either.
	_, err = s.CreateDocument(ctx, "broken.csv", "text/csv", &failingReader{n: mib + 10}, 0)
	require.Error(t, err)
	p, err := s.ListDocuments(ctx, directory.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, p.Items, "nothing stored")
}

func testAudit(t *testing.T, s directory.Store) {
	base := time.Date(2021, 5, 1, 12, 0, 0, 0, time.UTC)
	// 250 entries, ten per timestamp, so the order needs the id tie-break.
	for i := range 250 {
		e := &directory.AuditEntry{
			At: base.Add(time.Duration(i/10) * time.Second), Category: directory.CategorySync,
			Action: []string{"user_created", "user_disabled"}[i%2], Connection: []string{"Contoso", "Okta"}[i%5/4],
			RunID: fmt.Sprintf("run-%d", i%3), Subject: fmt.Sprintf("user%03d", i), Details: "d",
		}
		require.NoError(t, s.AddAudit(ctx, e))
		require.NotZero(t, e.ID)
	}
	cfg := &directory.AuditEntry{Category: directory.CategorySyncConfig, Action: "profile_updated", Connection: "Contoso"}
	require.NoError(t, s.AddAudit(ctx, cfg))
	assert.False(t, cfg.At.IsZero(), "at defaults to now")
	assert.Error(t, s.AddAudit(ctx, &directory.AuditEntry{}))

	sync := directory.AuditFilter{Category: directory.CategorySync}
	all, pages := pageAll(t, 100, func(opt directory.ListOptions) (directory.Page[directory.AuditEntry], error) {
		return s.ListAudit(ctx, sync, opt)
	})
	assert.Equal(t, 3, pages)
	require.Len(t, all, 250)
	seen := map[int64]bool{}
	for i, e := range all {
		assert.False(t, seen[e.ID], "duplicate %d", e.ID)
		seen[e.ID] = true
		assert.Equal(t, fmt.Sprintf("user%03d", 249-i), e.Subject, "newest first")
	}
	assert.Equal(t, time.UTC, all[0].At.Location())
	sameTime(t, base.Add(24*time.Second), all[0].At, "at")

	count := func(f directory.AuditFilter) int {
		es, _ := pageAll(t, 1000, func(opt directory.ListOptions) (directory.Page[directory.AuditEntry], error) {
			return s.ListAudit(ctx, f, opt)
		})
		return len(es)
	}
	assert.Equal(t, 251, count(directory.AuditFilter{}))
	assert.Equal(t, 1, count(directory.AuditFilter{Category: directory.CategorySyncConfig}))
	assert.Equal(t, 125, count(directory.AuditFilter{Action: "user_created"}))
	// A word matches the actions that are it or end in it, and nothing
	// by a LIKE wildcard.
	assert.Equal(t, 125, count(directory.AuditFilter{ActionWord: "created"}))
	assert.Equal(t, 125, count(directory.AuditFilter{ActionWord: "user_created"}))
	assert.Equal(t, 1, count(directory.AuditFilter{ActionWord: "updated"}))
	assert.Equal(t, 0, count(directory.AuditFilter{ActionWord: "reated"}))
	assert.Equal(t, 0, count(directory.AuditFilter{ActionWord: "%"}))
	assert.Equal(t, 0, count(directory.AuditFilter{ActionWord: "user_create_"}))
	assert.Equal(t, 50, count(directory.AuditFilter{Connection: "Okta"}))
	assert.Equal(t, 84, count(directory.AuditFilter{RunID: "run-0"}))
	assert.Equal(t, 1, count(directory.AuditFilter{Subject: "user007"}))
	assert.Equal(t, 0, count(directory.AuditFilter{Subject: "user"}))
	// Since is inclusive: seconds 20..24 hold entries 200..249, plus the config one.
	assert.Equal(t, 51, count(directory.AuditFilter{Since: base.Add(20 * time.Second)}))
	assert.Equal(t, 50, count(directory.AuditFilter{Since: base.Add(20 * time.Second), Category: directory.CategorySync}))
	assert.Equal(t, 25, count(directory.AuditFilter{Since: base.Add(20 * time.Second), Category: directory.CategorySync,
		Action: "user_disabled"}))

	// The newest entry of an action per subject, in one query: ties on
	// the time go to the later entry, other actions and categories are
	// not looked at, and a subject without one is left out.
	for i, e := range []directory.AuditEntry{
		{At: base, Category: directory.CategorySyncConfig, Action: "connection_tested", Subject: "p1", Details: "old"},
		{At: base.Add(time.Hour), Category: directory.CategorySyncConfig, Action: "connection_tested", Subject: "p1", Details: "tie 1"},
		{At: base.Add(time.Hour), Category: directory.CategorySyncConfig, Action: "connection_tested", Subject: "p1", Details: "tie 2"},
		{At: base.Add(2 * time.Hour), Category: directory.CategorySyncConfig, Action: "profile_updated", Subject: "p1", Details: "other action"},
		{At: base.Add(2 * time.Hour), Category: directory.CategorySync, Action: "connection_tested", Subject: "p1", Details: "other category"},
		{At: base, Category: directory.CategorySyncConfig, Action: "connection_tested", Subject: "p2", Details: "p2"},
	} {
		require.NoError(t, s.AddAudit(ctx, &e), i)
	}
	lasts, err := s.LastAudit(ctx, directory.CategorySyncConfig, "connection_tested", []string{"p1", "p2", "p3"})
	require.NoError(t, err)
	require.Len(t, lasts, 2, "a subject never tested is left out")
	assert.Equal(t, "tie 2", lasts["p1"].Details)
	assert.Equal(t, "p2", lasts["p2"].Details)
	sameTime(t, base.Add(time.Hour), lasts["p1"].At, "at")
	assert.Equal(t, time.UTC, lasts["p1"].At.Location())
	none, err := s.LastAudit(ctx, directory.CategorySyncConfig, "connection_tested", nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func testLicence(t *testing.T, s directory.Store) {
	n, err := s.GetLicenceLimit(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "unlimited by default")
	require.NoError(t, s.SetLicenceLimit(ctx, 5000))
	n, err = s.GetLicenceLimit(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5000, n)
	require.NoError(t, s.SetLicenceLimit(ctx, 0))
	n, err = s.GetLicenceLimit(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	assert.Error(t, s.SetLicenceLimit(ctx, -1))

	active, err := s.CountActiveUsers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, active)
	require.NoError(t, s.CreateProfile(ctx, &directory.Profile{Name: "CSV", Provider: "csv", DirectoryKey: "csv1"}))
	mustUser(t, s, "a")
	u := newUser("b")
	u.DirectoryKey = "csv1"
	require.NoError(t, s.CreateUser(ctx, u))
	d := newUser("c")
	d.Status = directory.StatusDisabled
	require.NoError(t, s.CreateUser(ctx, d))
	active, err = s.CountActiveUsers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, active, "all directories, disabled users do not count")
}

func testRuns(t *testing.T, s directory.Store) {
	started := time.Date(2031, 1, 1, 10, 0, 0, 123456000, time.UTC)
	r := &directory.Run{ID: "run-1", ProfileID: "p1", ProfileName: "Contoso", Provider: "azure", DirectoryKey: "d1",
		Trigger: "manual", DryRun: true, WorkflowID: "wf", StartedAt: started,
		Counts: directory.RunCounts{Fetched: 7, Created: 3}}
	require.NoError(t, s.CreateRun(ctx, r))
	// A second create of the same id changes nothing.
	dup := *r
	dup.ProfileName, dup.Trigger = "other", "api"
	require.NoError(t, s.CreateRun(ctx, &dup))

	got, err := s.GetRun(ctx, "run-1")
	require.NoError(t, err)
	assert.Equal(t, "Contoso", got.ProfileName)
	assert.Equal(t, "manual", got.Trigger)
	assert.True(t, got.DryRun)
	assert.Equal(t, directory.RunRunning, got.Status)
	assert.Equal(t, directory.PhaseFetch, got.Phase)
	assert.Equal(t, 7, got.Counts.Fetched)
	assert.Equal(t, 3, got.Counts.Created)
	assert.Nil(t, got.FinishedAt)
	assert.False(t, got.FetchDone)
	sameTime(t, started, got.StartedAt, "started")
	_, err = s.GetRun(ctx, "nope")
	assert.ErrorIs(t, err, directory.ErrNotFound)

	// Phase and error.
	require.NoError(t, s.SetRunStatus(ctx, "run-1", directory.RunRunning, directory.PhasePlan, "", time.Time{}))
	got, err = s.GetRun(ctx, "run-1")
	require.NoError(t, err)
	assert.Equal(t, directory.PhasePlan, got.Phase)
	require.NoError(t, s.SetRunStatus(ctx, "run-1", directory.RunAwaitingApproval, "", "guard tripped", time.Time{}))
	got, err = s.GetRun(ctx, "run-1")
	require.NoError(t, err)
	assert.Equal(t, directory.RunAwaitingApproval, got.Status)
	assert.Equal(t, directory.PhasePlan, got.Phase, "empty phase keeps the phase")
	assert.Equal(t, "guard tripped", got.Error)
	assert.Nil(t, got.FinishedAt)
	assert.ErrorIs(t, s.SetRunStatus(ctx, "nope", directory.RunFailed, "", "", time.Time{}), directory.ErrNotFound)

	// Last run and listing by profile and status.
	r2 := &directory.Run{ID: "run-2", ProfileID: "p1", ProfileName: "Contoso", Provider: "azure", Trigger: "schedule",
		StartedAt: started.Add(time.Hour)}
	require.NoError(t, s.CreateRun(ctx, r2))
	r3 := &directory.Run{ID: "run-3", ProfileID: "p2", ProfileName: "Okta", Provider: "okta", Trigger: "manual",
		StartedAt: started.Add(2 * time.Hour), Status: directory.RunSucceeded}
	require.NoError(t, s.CreateRun(ctx, r3))
	last, err := s.LastRun(ctx, "p1")
	require.NoError(t, err)
	assert.Equal(t, "run-2", last.ID)
	_, err = s.LastRun(ctx, "p9")
	assert.ErrorIs(t, err, directory.ErrNotFound)
	lasts, err := s.LastRuns(ctx, []string{"p1", "p2", "p9"})
	require.NoError(t, err)
	require.Len(t, lasts, 2, "a profile without runs is left out")
	assert.Equal(t, "run-2", lasts["p1"].ID)
	assert.Equal(t, "run-3", lasts["p2"].ID)
	assert.Equal(t, last.StartedAt, lasts["p1"].StartedAt)
	none, err := s.LastRuns(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, none)

	ids := func(f directory.RunFilter) []string {
		p, err := s.ListRuns(ctx, f, directory.ListOptions{})
		require.NoError(t, err)
		out := []string{}
		for _, r := range p.Items {
			out = append(out, r.ID)
		}
		return out
	}
	assert.Equal(t, []string{"run-3", "run-2", "run-1"}, ids(directory.RunFilter{}))
	assert.Equal(t, []string{"run-2", "run-1"}, ids(directory.RunFilter{ProfileID: "p1"}))
	assert.Equal(t, []string{"run-3"}, ids(directory.RunFilter{Status: directory.RunSucceeded}))
	assert.Equal(t, []string{"run-2"}, ids(directory.RunFilter{ProfileID: "p1", Status: directory.RunRunning}))

	// The ledger of a run without entries is an empty page.
	ch, err := s.ListChanges(ctx, "run-1", "", directory.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, ch.Items)
	assert.NotNil(t, ch.Items)
}

func testRunPaging(t *testing.T, s directory.Store) {
	base := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 250 {
		// Runs share start times, so the order needs the id tie-break.
		require.NoError(t, s.CreateRun(ctx, &directory.Run{ID: fmt.Sprintf("run-%03d", i), ProfileID: "p", ProfileName: "P",
			Provider: "csv", Trigger: "schedule", StartedAt: base.Add(time.Duration(i/7) * time.Minute)}))
	}
	all, pages := pageAll(t, 100, func(opt directory.ListOptions) (directory.Page[directory.Run], error) {
		return s.ListRuns(ctx, directory.RunFilter{ProfileID: "p"}, opt)
	})
	assert.Equal(t, 3, pages)
	require.Len(t, all, 250)
	for i, r := range all {
		assert.Equal(t, fmt.Sprintf("run-%03d", 249-i), r.ID)
	}

	// Start times whose fractions have different numbers of digits still
	// sort and page in time order.
	offsets := []time.Duration{0, 500 * time.Millisecond, 50 * time.Millisecond, time.Second,
		time.Second + time.Microsecond, 999999 * time.Microsecond, 5 * time.Millisecond, 10 * time.Second}
	for i, off := range offsets {
		require.NoError(t, s.CreateRun(ctx, &directory.Run{ID: fmt.Sprintf("q-%d", i), ProfileID: "q", ProfileName: "Q",
			Provider: "csv", Trigger: "manual", StartedAt: base.Add(off)}))
	}
	qs, _ := pageAll(t, 3, func(opt directory.ListOptions) (directory.Page[directory.Run], error) {
		return s.ListRuns(ctx, directory.RunFilter{ProfileID: "q"}, opt)
	})
	var order []string
	for _, r := range qs {
		order = append(order, r.ID)
	}
	assert.Equal(t, []string{"q-7", "q-4", "q-3", "q-5", "q-1", "q-2", "q-6", "q-0"}, order)
}

func testRunStatusGuard(t *testing.T, s directory.Store) {
	require.NoError(t, s.CreateRun(ctx, &directory.Run{ID: "r", ProfileID: "p", ProfileName: "P", Provider: "csv", Trigger: "manual"}))
	end := time.Date(2031, 3, 3, 3, 3, 3, 0, time.UTC)
	require.NoError(t, s.SetRunStatus(ctx, "r", directory.RunCancelled, directory.PhaseDone, "cancelled by operator", end))
	got, err := s.GetRun(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, directory.RunCancelled, got.Status)
	require.NotNil(t, got.FinishedAt)
	sameTime(t, end, *got.FinishedAt, "finished")

	// A late "running" from an activity does not resurrect the run.
	require.NoError(t, s.SetRunStatus(ctx, "r", directory.RunRunning, directory.PhaseApply, "", time.Time{}))
	require.NoError(t, s.SetRunStatus(ctx, "r", directory.RunAwaitingApproval, "", "", time.Time{}))
	got, err = s.GetRun(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, directory.RunCancelled, got.Status)
	assert.Equal(t, directory.PhaseDone, got.Phase)
	assert.Equal(t, "cancelled by operator", got.Error)
	require.NotNil(t, got.FinishedAt)

	for _, st := range []string{directory.RunSucceeded, directory.RunFailed, directory.RunBlocked, directory.RunSkipped} {
		id := "r-" + st
		require.NoError(t, s.CreateRun(ctx, &directory.Run{ID: id, ProfileID: "p", ProfileName: "P", Provider: "csv", Trigger: "manual"}))
		require.NoError(t, s.SetRunStatus(ctx, id, st, "", "", time.Time{}))
		require.NoError(t, s.SetRunStatus(ctx, id, directory.RunRunning, "", "", time.Time{}))
		got, err := s.GetRun(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, st, got.Status)
		assert.NotNil(t, got.FinishedAt, st)
	}
}

func testCursors(t *testing.T, s directory.Store) {
	_, err := s.ListUsers(ctx, directory.UserFilter{}, directory.ListOptions{Cursor: "!!not base64!!"})
	assert.ErrorIs(t, err, directory.ErrInvalidCursor)
	_, err = s.ListRuns(ctx, directory.RunFilter{}, directory.ListOptions{Cursor: "bm90IGpzb24"})
	assert.ErrorIs(t, err, directory.ErrInvalidCursor)
}
