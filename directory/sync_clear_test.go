package directory_test

import (
	"testing"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/schema"
)

// On PostgreSQL a finished run's work rows are truncated away when no
// other run has rows in the table, deleted when one has, and deleted
// without waiting when another transaction is using the table.
func TestEngineClearsRunRowsByTruncateWhenAlone(t *testing.T) {
	db := dbtest.Open(t, schema.Postgres)
	a, b := newEngine(t, db), newEngine(t, db)
	plan := func(e *engine) {
		e.newRun()
		e.stage(true, staged("x1-"+e.dir, "u1-"+e.dir, "A"), staged("x2-"+e.dir, "u2-"+e.dir, "B"))
		if _, err := e.s.Plan(e.ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir}); err != nil {
			t.Fatal(err)
		}
	}
	filenode := func() (n int64) {
		if err := db.Get(&n, `SELECT pg_relation_filenode('sync_plan')`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	planRows := func(e *engine) (n int) {
		if err := db.Get(&n, `SELECT COUNT(*) FROM sync_plan WHERE run_id = $1`, e.runID); err != nil {
			t.Fatal(err)
		}
		return n
	}
	plan(a)
	plan(b)
	before := filenode()
	if err := a.s.DropRunData(a.ctx, a.runID); err != nil {
		t.Fatal(err)
	}
	if planRows(a) != 0 || planRows(b) != 2 || filenode() != before {
		t.Fatalf("with another run's rows: a %d, b %d rows, table rewritten: %v", planRows(a), planRows(b), filenode() != before)
	}

	// Another transaction reads the table: clearing must neither wait for
	// it nor truncate under it.
	reader, err := db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.Get(&n, `SELECT COUNT(*) FROM sync_plan`); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := b.s.DropRunData(b.ctx, b.runID); err != nil {
		t.Fatal(err)
	}
	if planRows(b) != 0 || filenode() != before || time.Since(t0) > 10*time.Second {
		t.Fatalf("while the table is in use: %d rows left, rewritten %v, took %v", planRows(b), filenode() != before, time.Since(t0))
	}
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}

	// Alone in the table, the run's rows go by truncation.
	plan(b)
	if err := b.s.DropRunData(b.ctx, b.runID); err != nil {
		t.Fatal(err)
	}
	if planRows(b) != 0 || filenode() == before {
		t.Fatalf("alone: %d rows left, rewritten %v", planRows(b), filenode() != before)
	}
}
