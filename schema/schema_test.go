package schema

import (
	"strings"
	"testing"
)

// The SQLite migrations are translated, not written: nothing PostgreSQL
// alone understands may survive the translation.
func TestSQLiteTranslation(t *testing.T) {
	ms, err := migrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations")
	}
	for _, m := range ms {
		for _, pg := range []string{"TIMESTAMPTZ", "BYTEA", "GENERATED ALWAYS", "SERIAL", "JSONB", "::", "now()"} {
			if strings.Contains(m.sql, pg) {
				t.Errorf("%s: %q left in the SQLite migration", m.name, pg)
			}
		}
	}
	if _, err := migrations("mysql"); err == nil {
		t.Error("an unknown dialect was accepted")
	}
}
