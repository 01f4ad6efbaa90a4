package storetest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
)

func testSwitchDirectory(t *testing.T, s directory.Store) {
	p := &directory.Profile{Name: "Contoso", Provider: "azure", Enabled: true, DirectoryKey: "dir-contoso", Config: json.RawMessage(`{}`)}
	require.NoError(t, s.CreateProfile(ctx, p))
	other := &directory.Profile{Name: "Okta", Provider: "okta", Enabled: true, DirectoryKey: "dir-okta", Config: json.RawMessage(`{}`)}
	require.NoError(t, s.CreateProfile(ctx, other))

	ann := mustUser(t, s, "Ann")
	bob := newUser("bob")
	bob.Status = directory.StatusDisabled
	require.NoError(t, s.CreateUser(ctx, bob))
	ext := "okta-1"
	carl := newUser("carl")
	carl.DirectoryKey, carl.ExternalID = "dir-okta", &ext
	require.NoError(t, s.CreateUser(ctx, carl))
	group := &directory.Group{Name: "Staff"}
	require.NoError(t, s.CreateGroup(ctx, group))
	require.NoError(t, s.AddGroupMember(ctx, group.ID, ann.ID))

	res, err := s.SwitchDirectory(ctx, "dir-contoso", []string{"ANN", "nobody", "carl", "ann", "bob"})
	require.NoError(t, err)
	assert.Equal(t, []directory.SwitchResult{
		{Username: "ANN", Result: directory.SwitchSwitched, UserID: ann.ID, DirectoryKey: "dir-contoso"},
		{Username: "nobody", Result: directory.SwitchNotFound},
		{Username: "carl", Result: directory.SwitchNotLocal, UserID: carl.ID, DirectoryKey: "dir-okta"},
		{Username: "ann", Result: directory.SwitchAlreadyThere, UserID: ann.ID, DirectoryKey: "dir-contoso"},
		{Username: "bob", Result: directory.SwitchSwitched, UserID: bob.ID, DirectoryKey: "dir-contoso"},
	}, res)

	got, err := s.GetUser(ctx, ann.ID)
	require.NoError(t, err)
	assert.Equal(t, "dir-contoso", got.DirectoryKey)
	assert.Nil(t, got.ExternalID, "the sync gives it its external id when it adopts it")
	assert.Equal(t, []string{"Staff"}, got.Groups, "memberships stay")
	assert.False(t, got.UpdatedAt.Before(ann.UpdatedAt))
	got, err = s.GetUser(ctx, bob.ID)
	require.NoError(t, err)
	assert.Equal(t, directory.StatusDisabled, got.Status, "the status stays")
	got, err = s.GetUser(ctx, carl.ID)
	require.NoError(t, err)
	assert.Equal(t, "dir-okta", got.DirectoryKey, "a synced user is never moved")

	// Only a profile's directory is a target; nothing moves otherwise.
	dave := mustUser(t, s, "dave")
	for _, key := range []string{"dir-nope", directory.LocalDirectory} {
		_, err = s.SwitchDirectory(ctx, key, []string{"dave"})
		assert.ErrorIs(t, err, directory.ErrNotFound, key)
	}
	got, err = s.GetUser(ctx, dave.ID)
	require.NoError(t, err)
	assert.Equal(t, directory.LocalDirectory, got.DirectoryKey)

	res, err = s.SwitchDirectory(ctx, "dir-okta", nil)
	require.NoError(t, err)
	assert.Empty(t, res)
}
