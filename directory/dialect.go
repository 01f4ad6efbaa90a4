package directory

import "github.com/usersync/usersync/schema"

// dialect is everything the engine does differently on PostgreSQL and
// SQLite, decided once when the store opens, so that the SQL code asks
// what a database can do rather than which one it is.
type dialect struct {
	// newID is an SQL expression giving a fresh random id. It carries no
	// "::" cast, being used in statements with named parameters.
	newID string
	// rowLocks: SELECT ... FOR UPDATE locks a row until commit. SQLite has
	// one writer at a time, which is the same guarantee for the whole
	// database.
	rowLocks bool
	// copyIn: bulk rows go through COPY (lib/pq CopyIn) rather than
	// multi-row INSERTs.
	copyIn bool
	// truncate: a run's work tables may be truncated (with a lock taken
	// without waiting, inside a savepoint) instead of deleted from.
	truncate bool
	// analyze: ANALYZE (SKIP_LOCKED) refreshes a table's statistics
	// without waiting for another transaction's.
	analyze bool
	// tuneLarge are statements that give one large transaction more
	// memory (SET LOCAL), run at its start.
	tuneLarge []string
}

func dialectOf(name string) dialect {
	if name == schema.Postgres {
		return dialect{
			newID:     "CAST(gen_random_uuid() AS text)",
			rowLocks:  true,
			copyIn:    true,
			truncate:  true,
			analyze:   true,
			tuneLarge: []string{`SET LOCAL work_mem = '64MB'`},
		}
	}
	return dialect{newID: "lower(hex(randomblob(16)))"}
}
