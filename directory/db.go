// Package directory is the target store of usersync: the synced directory
// (users, groups, memberships, roles), the connection profiles, runs, audit
// log, change ledger, documents and the staging tables a run works in. One
// implementation on sqlx serves PostgreSQL (lib/pq) and SQLite
// (modernc.org/sqlite); where the dialects differ the difference lives in a
// small dialect value, not in copies of the queries.
package directory

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // postgres driver
	_ "modernc.org/sqlite" // sqlite driver, pure Go

	"github.com/usersync/usersync/schema"
)

// DB is an open database with its dialect.
type DB struct {
	*sqlx.DB
	Dialect string // schema.Postgres or schema.SQLite
}

// OpenDB opens a database URL: "postgres://…" / "postgresql://…" (lib/pq) or
// "sqlite:PATH" (a file, created when missing; "sqlite::memory:" is refused
// because every pooled connection would see its own empty database).
func OpenDB(ctx context.Context, url string) (*DB, error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err := sqlx.ConnectContext(ctx, "postgres", url)
		if err != nil {
			return nil, fmt.Errorf("connect postgres: %w", err)
		}
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(10)
		return &DB{DB: db, Dialect: schema.Postgres}, nil
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
		if path == "" || strings.Contains(path, ":memory:") {
			return nil, fmt.Errorf("sqlite database url %q: a file path is required", url)
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create database folder: %w", err)
			}
		}
		// WAL lets the API read while a run writes; immediate transactions
		// take the write lock up front so two writers wait instead of
		// deadlocking on a lock upgrade.
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(30000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate&_time_format=sqlite"
		db, err := sqlx.ConnectContext(ctx, "sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		db.SetMaxOpenConns(8)
		return &DB{DB: db, Dialect: schema.SQLite}, nil
	}
	return nil, fmt.Errorf("database url must start with postgres:// or sqlite: (got %q)", redactURL(url))
}

// Migrate applies the schema migrations of the dialect.
func (db *DB) Migrate(ctx context.Context) error {
	return schema.Migrate(ctx, db.DB, db.Dialect)
}

// redactURL hides a password in a database URL so it can be printed.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	creds := u[scheme+3 : at]
	if user, _, ok := strings.Cut(creds, ":"); ok {
		return u[:scheme+3] + user + ":xxxxx" + u[at:]
	}
	return u
}
