package directory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/directory/storetest"
)

func TestSQLStoreConformance(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(d, func(t *testing.T) {
			storetest.RunTests(t, func(t *testing.T) directory.Store {
				return directory.NewSQLStore(dbtest.Open(t, d))
			})
		})
	}
}

func TestSQLStoreHelpers(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		fixed := time.Date(2030, 6, 7, 8, 9, 10, 123456789, time.FixedZone("x", 7200))
		s := directory.NewSQLStore(db).WithClock(func() time.Time { return fixed })
		assert.Same(t, db, s.DB())
		now := s.Now()
		assert.Equal(t, time.UTC, now.Location())
		assert.True(t, now.Equal(fixed.Truncate(time.Microsecond)))

		u := &directory.User{Username: "clock"}
		require.NoError(t, s.CreateUser(ctx, u))
		got, err := s.GetUser(ctx, u.ID)
		require.NoError(t, err)
		assert.Equal(t, now, got.CreatedAt)

		// A failed transaction leaves nothing, and its error comes back.
		boom := errors.New("boom")
		err = s.InTx(ctx, func(tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO settings (key, value) VALUES (?, ?)`), "k", "v")
			require.NoError(t, err)
			return boom
		})
		assert.ErrorIs(t, err, boom)
		var n int
		require.NoError(t, db.GetContext(ctx, &n, `SELECT COUNT(*) FROM settings`))
		assert.Equal(t, 0, n)

		// Both drivers' unique violations are recognised.
		_, err = db.ExecContext(ctx, db.Rebind(`INSERT INTO roles (id, name, created_at) VALUES (?, ?, ?)`), "r1", "a", now)
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, db.Rebind(`INSERT INTO roles (id, name, created_at) VALUES (?, ?, ?)`), "r2", "a", now)
		assert.True(t, directory.IsUniqueViolation(err), "%v", err)
		_, err = db.ExecContext(ctx, db.Rebind(`INSERT INTO roles (id, name, created_at) VALUES (?, ?, ?)`), "r1", "b", now)
		assert.True(t, directory.IsUniqueViolation(err), "primary key: %v", err)
		assert.False(t, directory.IsUniqueViolation(errors.New("other")))
		assert.False(t, directory.IsUniqueViolation(nil))
	})
}

// TestListChanges writes the ledger directly: only the sync engine adds to it.
func TestListChanges(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, db *directory.DB) {
		s := directory.NewSQLStore(db)
		at := s.Now()
		for i := range 250 {
			action := []string{"created", "updated"}[i%2]
			changes := "{}"
			if action == "updated" {
				changes = fmt.Sprintf(`{"email":{"from":"a%d@x","to":"b%d@x"}}`, i, i)
			}
			_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO change_ledger
				(run_id, subject_type, subject_id, username, action, reason, changes, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
				"run-1", "user", fmt.Sprintf("u%d", i), fmt.Sprintf("user%03d", i), action, "", changes, at)
			require.NoError(t, err)
		}
		_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO change_ledger
			(run_id, subject_type, subject_id, action, at) VALUES (?, ?, ?, ?, ?)`), "run-2", "group", "g1", "group_created", at)
		require.NoError(t, err)

		var all []directory.Change
		cur := ""
		pages := 0
		for {
			p, err := s.ListChanges(ctx, "run-1", "", directory.ListOptions{Limit: 100, Cursor: cur})
			require.NoError(t, err)
			pages++
			all = append(all, p.Items...)
			if p.NextCursor == "" {
				break
			}
			cur = p.NextCursor
		}
		assert.Equal(t, 3, pages)
		require.Len(t, all, 250)
		for i, c := range all {
			assert.Equal(t, fmt.Sprintf("user%03d", i), c.Username, "id order")
		}
		assert.Empty(t, all[0].Changes)
		assert.Equal(t, directory.FieldChange{From: "a1@x", To: "b1@x"}, all[1].Changes["email"])
		assert.True(t, at.Equal(all[1].At))

		p, err := s.ListChanges(ctx, "run-1", "updated", directory.ListOptions{Limit: 1000})
		require.NoError(t, err)
		assert.Len(t, p.Items, 125)
		p, err = s.ListChanges(ctx, "run-2", "", directory.ListOptions{})
		require.NoError(t, err)
		require.Len(t, p.Items, 1)
		assert.Equal(t, "group_created", p.Items[0].Action)
	})
}
