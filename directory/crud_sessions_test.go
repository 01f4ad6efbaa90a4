package directory_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
)

// TestRevokeSession: a signed-out admin session is revoked for every
// replica reading the store, and records past their expiry are dropped.
func TestRevokeSession(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		s := directory.NewSQLStore(db)
		now := time.Now()
		gone, err := s.SessionRevoked(ctx, "sid-1")
		require.NoError(t, err)
		assert.False(t, gone)
		require.NoError(t, s.RevokeSession(ctx, "sid-1", now.Add(time.Hour)))
		require.NoError(t, s.RevokeSession(ctx, "sid-1", now.Add(time.Hour)), "twice is fine")
		require.NoError(t, s.RevokeSession(ctx, "sid-old", now.Add(-time.Hour)))
		gone, err = s.SessionRevoked(ctx, "sid-1")
		require.NoError(t, err)
		assert.True(t, gone)
		// The next revocation forgets the expired one.
		require.NoError(t, s.RevokeSession(ctx, "sid-2", now.Add(time.Hour)))
		gone, err = s.SessionRevoked(ctx, "sid-old")
		require.NoError(t, err)
		assert.False(t, gone, "an expired record is dropped")
		assert.Error(t, s.RevokeSession(ctx, "", now))
		// The licence limit, in the same table, is untouched.
		require.NoError(t, s.SetLicenceLimit(ctx, 7))
		require.NoError(t, s.RevokeSession(ctx, "sid-3", now.Add(time.Hour)))
		n, err := s.GetLicenceLimit(ctx)
		require.NoError(t, err)
		assert.Equal(t, 7, n)
	})
}
