package directory

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// onConflictNothing keeps the row already there: staging is idempotent.
const onConflictNothing = "ON CONFLICT DO NOTHING"

// onConflictReplaceStaged makes the row inserted the staged record of its
// user: every column of stagedUserCols but the key, and the origin a
// fetched record has.
var onConflictReplaceStaged = func() string {
	set := []string{"origin = ''"}
	for _, c := range stagedUserCols[2:] {
		set = append(set, c+" = excluded."+c)
	}
	return "ON CONFLICT (run_id, external_id) DO UPDATE SET " + strings.Join(set, ", ")
}()

// copyThreshold is the number of rows from which bulkInsert takes COPY
// over a multi-row INSERT: below it the temporary table costs more than
// the statement's parsing saves.
const copyThreshold = 100

// bulkInsert inserts rows and returns how many went in. On Postgres a large
// set goes through COPY (lib/pq CopyIn), several times faster than a
// multi-row INSERT of the same rows, whose thousands of bound parameters
// the server parses and plans each time; a conflict clause needs a
// temporary table to copy into first, since COPY itself has none. SQLite
// has no COPY and cheap statements: multi-row INSERT.
func (s *SQLStore) bulkInsert(ctx context.Context, tx *sqlx.Tx, table string, cols []string, rows [][]any, conflict string) (int64, error) {
	if !s.d.copyIn || len(rows) < copyThreshold {
		return s.insertRows(ctx, tx, table, cols, rows, conflict)
	}
	if conflict == "" {
		if err := copyRows(ctx, tx, table, cols, rows); err != nil {
			return 0, err
		}
		return int64(len(rows)), nil
	}
	tmp := "tmp_" + table
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+tmp+` (LIKE `+table+` INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
		return 0, fmt.Errorf("copy into %s: %w", table, err)
	}
	// The same transaction may copy into the table twice.
	if _, err := tx.ExecContext(ctx, `TRUNCATE `+tmp); err != nil {
		return 0, fmt.Errorf("copy into %s: %w", table, err)
	}
	if err := copyRows(ctx, tx, tmp, cols, rows); err != nil {
		return 0, err
	}
	list := strings.Join(cols, ", ")
	return s.exec(ctx, tx, `INSERT INTO `+table+` (`+list+`) SELECT `+list+` FROM `+tmp+` `+conflict)
}

// copyRows streams rows into table with COPY FROM STDIN.
func copyRows(ctx context.Context, tx *sqlx.Tx, table string, cols []string, rows [][]any) error {
	//lint:ignore SA1019 CopyIn quotes the names; the statement it builds is what pq's note suggests
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r...); err != nil {
			stmt.Close()
			return fmt.Errorf("copy into %s: %w", table, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	if err := stmt.Close(); err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	return nil
}

// insertRows inserts rows in multi-row statements sized under both
// drivers' bound-parameter limits, and returns how many rows were added.
func (s *SQLStore) insertRows(ctx context.Context, q querier, table string, cols []string, rows [][]any, suffix string) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	per := 30000 / len(cols)
	marks := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	var total int64
	for start := 0; start < len(rows); start += per {
		end := min(start+per, len(rows))
		var b strings.Builder
		b.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ")
		args := make([]any, 0, (end-start)*len(cols))
		for i, r := range rows[start:end] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(marks)
			args = append(args, r...)
		}
		b.WriteString(" " + suffix)
		n, err := s.exec(ctx, q, b.String(), args...)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}
