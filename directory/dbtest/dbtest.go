// Package dbtest gives each test a fresh, migrated database of either
// dialect: a new Postgres database (dropped afterwards) or a new SQLite file.
// Without Postgres the Postgres variant skips, except under CI where a
// skipped test would prove nothing: there it fails.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/schema"
)

// Dialects lists the backends every store test runs against.
var Dialects = []string{schema.Postgres, schema.SQLite}

// AdminURL is the Postgres server the tests create databases on;
// USERSYNC_TEST_POSTGRES overrides it.
func AdminURL() string {
	if u := os.Getenv("USERSYNC_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// RequirePostgres fails (under CI) or skips the test when Postgres is down.
func RequirePostgres(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := sqlx.ConnectContext(ctx, "postgres", AdminURL())
	if err == nil {
		db.Close()
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("postgres is required under CI: %v", err)
	}
	t.Skipf("postgres not reachable: %v", err)
}

// URL creates an empty database of the dialect for this test and returns
// its URL; it is removed when the test ends.
func URL(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case schema.SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "usersync.db")
	case schema.Postgres:
		RequirePostgres(t)
		var b [6]byte
		rand.Read(b[:]) //nolint:errcheck
		name := "usersync_t_" + hex.EncodeToString(b[:])
		admin := sqlx.MustConnect("postgres", AdminURL())
		defer admin.Close()
		admin.MustExec("CREATE DATABASE " + name)
		t.Cleanup(func() {
			a, err := sqlx.Connect("postgres", AdminURL())
			if err != nil {
				return
			}
			defer a.Close()
			a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") //nolint:errcheck
		})
		return "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
	}
	t.Fatalf("unknown dialect %q", dialect)
	return ""
}

// Open returns a fresh migrated database of the dialect, closed at cleanup.
func Open(t testing.TB, dialect string) *directory.DB {
	t.Helper()
	ctx := context.Background()
	db, err := directory.OpenDB(ctx, URL(t, dialect))
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", dialect, err)
	}
	return db
}

// Each runs f as a subtest once per dialect, each with its own database.
func Each(t *testing.T, f func(t *testing.T, db *directory.DB)) {
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) { f(t, Open(t, d)) })
	}
}
