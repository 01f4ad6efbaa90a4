package directory_test

import (
	"fmt"
	"sync"
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

// Two attempts of one activity can overlap: Temporal starts a retry once it
// deems an attempt dead, which may yet be working. Apply batches run side
// by side must still apply and record every change once.
func TestEngineOverlappingApplyAttemptsRecordEachChangeOnce(t *testing.T) {
	db := dbtest.Open(t, schema.Postgres)
	e := newEngine(t, db)
	e.newRun()
	const n = 120
	page := &directory.FetchedPage{Groups: []directory.StagedGroup{{ExternalID: "g1", Name: "One"}, {ExternalID: "g2", Name: "Two"}}}
	for i := range n {
		u := staged(fmt.Sprintf("x%03d", i), fmt.Sprintf("user%03d", i), "L")
		if i > 0 {
			u.ManagerRef = "x000"
		}
		page.Users = append(page.Users, u)
		page.Members = append(page.Members, directory.StagedMember{GroupExternalID: "g1", UserExternalID: u.ExternalID},
			directory.StagedMember{GroupExternalID: "g2", UserExternalID: u.ExternalID})
	}
	if _, err := e.s.SaveFetchedPage(e.ctx, e.runID, page, "", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Plan(e.ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir}); err != nil {
		t.Fatal(err)
	}
	in := directory.ApplyInput{DirectoryKey: e.dir, OrgChart: true, GroupSync: true, BatchSize: 7}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				done, _, err := e.s.ApplyBatch(e.ctx, e.runID, in)
				if err != nil {
					errs <- err
					return
				}
				if done {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, c, err := e.s.ApplyBatch(e.ctx, e.runID, in)
	if err != nil {
		t.Fatal(err)
	}
	count := func(q string, args ...any) (k int) {
		if err := db.Get(&k, q, args...); err != nil {
			t.Fatal(err)
		}
		return k
	}
	ledger := func(action string) int {
		return count(`SELECT COUNT(*) FROM change_ledger WHERE run_id = $1 AND action = $2`, e.runID, action)
	}
	if c.Created != n || c.MembershipsAdded != 2*n || c.ManagersLinked != n-1 ||
		ledger("created") != n || ledger("member_added") != 2*n || ledger("manager_linked") != n-1 ||
		count(`SELECT COUNT(*) FROM audit_log WHERE run_id = $1 AND action = 'member_added'`, e.runID) != 2*n ||
		count(`SELECT COUNT(*) FROM group_members`) != 2*n {
		t.Fatalf("counts %+v; ledger created %d, member_added %d, manager_linked %d", c, ledger("created"), ledger("member_added"), ledger("manager_linked"))
	}
}
