// Package schema holds the SQL migrations of the usersync database,
// embedded in the binary so that api, worker and migrate apply the same
// files at start without anything to ship beside them. They are written
// once, for PostgreSQL; SQLite's are the same statements with the few type
// names the two dialects spell differently translated (toSQLite), so the
// two can never drift apart.
package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

//go:embed postgres/*.sql
var files embed.FS

// sqliteTypes are the PostgreSQL spellings a migration may use and their
// SQLite equivalents. SQLite reads TIMESTAMP columns back as times (the
// modernc driver parses them), keeps booleans as integers and takes the
// TRUE/FALSE literals; anything else the schema uses is common SQL.
var sqliteTypes = strings.NewReplacer(
	"BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT",
	"TIMESTAMPTZ", "TIMESTAMP",
	"BYTEA", "BLOB",
)

// toSQLite translates a PostgreSQL migration for SQLite.
func toSQLite(sql string) string { return sqliteTypes.Replace(sql) }

// Dialects supported by the migrations.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

type migration struct {
	version int
	name    string
	sql     string
}

func migrations(dialect string) ([]migration, error) {
	if dialect != Postgres && dialect != SQLite {
		return nil, fmt.Errorf("unknown dialect %q", dialect)
	}
	entries, err := fs.ReadDir(files, Postgres)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		body, err := fs.ReadFile(files, Postgres+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		sql := string(body)
		if dialect == SQLite {
			sql = toSQLite(sql)
		}
		out = append(out, migration{version: v, name: name, sql: sql})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies, in order and each in its own transaction, the migrations
// of the dialect that the database has not seen yet. Concurrent starts of
// several processes are serialised by an advisory lock on Postgres and by
// SQLite's single writer.
func Migrate(ctx context.Context, db *sqlx.DB, dialect string) error {
	ms, err := migrations(dialect)
	if err != nil {
		return err
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if dialect == Postgres {
		// Any constant will do: it only has to be the same in every process.
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7433001)`); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(7433001)`) //nolint:errcheck
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
		var n int
		if err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version); err != nil {
			tx.Rollback() //nolint:errcheck
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
		if n > 0 {
			tx.Rollback() //nolint:errcheck
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback() //nolint:errcheck
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
			m.version, m.name, time.Now().UTC().Format(time.RFC3339)); err != nil {
			tx.Rollback() //nolint:errcheck
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
	}
	return nil
}

// Status is what Check found: the migrations this binary has that the
// database has not applied, and the versions the database has applied that
// this binary does not know (a database migrated by a newer usersync).
type Status struct {
	Known   int      // migrations this binary has
	Pending []string // names, in order
	Unknown []int    // versions
}

// Check compares the database with the migrations of the dialect without
// changing anything (usersync doctor); Migrate is what applies them.
func Check(ctx context.Context, db *sqlx.DB, dialect string) (Status, error) {
	ms, err := migrations(dialect)
	if err != nil {
		return Status{}, err
	}
	st := Status{Known: len(ms)}
	exists := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	if dialect == Postgres {
		exists = `SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'`
	}
	var n int
	if err := db.GetContext(ctx, &n, exists); err != nil {
		return Status{}, fmt.Errorf("check migrations: %w", err)
	}
	applied := map[int]bool{}
	if n > 0 {
		var versions []int
		if err := db.SelectContext(ctx, &versions, `SELECT version FROM schema_migrations ORDER BY version`); err != nil {
			return Status{}, fmt.Errorf("check migrations: %w", err)
		}
		for _, v := range versions {
			applied[v] = true
		}
	}
	for _, m := range ms {
		if !applied[m.version] {
			st.Pending = append(st.Pending, m.name)
		}
		delete(applied, m.version)
	}
	for v := range applied {
		st.Unknown = append(st.Unknown, v)
	}
	sort.Ints(st.Unknown)
	return st, nil
}
