package directory

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// planTally counts what the plan decides that no apply step counts: the
// users inactive in the provider that the directory has not active
// (actIgnore), the disables of users gone from the source, and the users
// a delta run restated from its snapshot rather than fetched. With them
// the counts of a run add up: every user it judged is in exactly one of
// them (syncrun.RunCounts).
func (s *SQLStore) planTally(ctx context.Context, tx *sqlx.Tx, runID string) (inactive, departed, restated int, err error) {
	var n struct {
		Inactive int `db:"inactive"`
		Departed int `db:"departed"`
		Restated int `db:"restated"`
	}
	if err := s.get(ctx, tx, &n, `SELECT
  (SELECT COUNT(*) FROM sync_plan WHERE run_id = ? AND action = ?) AS inactive,
  (SELECT COUNT(*) FROM sync_plan WHERE run_id = ? AND action = ? AND reason = ?) AS departed,
  (SELECT COUNT(*) FROM sync_staged_users WHERE run_id = ? AND origin IN (?, ?)) AS restated`,
		runID, actIgnore, runID, actDisable, departedReason, runID, originWiden, originResolve); err != nil {
		return 0, 0, 0, fmt.Errorf("plan counts: %w", err)
	}
	return n.Inactive, n.Departed, n.Restated, nil
}
