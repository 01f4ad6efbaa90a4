package directory

import (
	"context"
	"fmt"
	"maps"

	"github.com/jmoiron/sqlx"
)

// Plan actions.
const (
	actCreate    = "create"
	actUpdate    = "update"
	actReenable  = "reenable"
	actUnchanged = "unchanged"
	actDisable   = "disable"
	actSkipped   = "skipped"
	actConflict  = "conflict"
	actIgnore    = "ignore"
	// actRefused: a creation or re-enable the licence does not allow.
	actRefused = "refused"
)

// syncedActions are the plan actions of users that are in the directory and
// in the source after apply: the ones whose managers and memberships follow.
const syncedActions = "('create', 'update', 'reenable', 'unchanged')"

// Origins of staged users a delta run did not read from the provider.
const (
	// originResolve: restated from the snapshot because a change to the
	// group graph moved the user between kept groups; its memberships come
	// from the graph (DeriveGroups).
	originResolve = "resolve"
	// originWiden: restated from the snapshot by the plan because the
	// full rules may judge the user differently after this run's changes;
	// its memberships are the snapshot's.
	originWiden = "widen"
)

// departedReason is why a user of the directory that the source no longer
// has is disabled, in full and delta runs alike.
const departedReason = "not in the source any more"

// Plan implements SyncEngine.
func (s *SQLStore) Plan(ctx context.Context, runID string, in PlanInput) (*PlanOutcome, error) {
	out := &PlanOutcome{}
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		var run struct {
			Step   string `db:"apply_step"`
			Cursor string `db:"apply_cursor"`
			Mode   string `db:"sync_mode"`
			Base   string `db:"base_run_id"`
		}
		if err := s.get(ctx, tx, &run, `SELECT apply_step, apply_cursor, sync_mode, base_run_id FROM sync_runs WHERE id = ?`, runID); err != nil {
			return dbErr("run "+runID, err)
		}
		out.Mode = ModeFull
		if run.Mode == ModeDelta {
			out.Mode = ModeDelta
		}
		p := planner{s: s, tx: tx, run: runID, base: run.Base, dir: in.DirectoryKey, delta: run.Mode == ModeDelta}
		// Once apply has begun the plan is fixed: re-planning against a half
		// applied directory would describe another run.
		started := run.Step != "" && (run.Step != stepCreate || run.Cursor != "")
		if !started {
			if err := s.tuneSession(ctx, tx); err != nil {
				return err
			}
			if err := p.build(ctx); err != nil {
				return err
			}
			if err := p.licence(ctx, in.LicenceLimit); err != nil {
				return err
			}
		}
		c, err := s.loadCounts(ctx, tx, runID)
		if err != nil {
			return err
		}
		var rows []struct {
			Action string `db:"action"`
			N      int    `db:"n"`
		}
		if err := s.sel(ctx, tx, &rows, `SELECT action, COUNT(*) AS n FROM sync_plan WHERE run_id = ? GROUP BY action`, runID); err != nil {
			return fmt.Errorf("plan counts: %w", err)
		}
		planned := RunCounts{Fetched: c.Fetched}
		for _, r := range rows {
			switch r.Action {
			case actCreate:
				planned.Created = r.N
			case actUpdate:
				planned.Updated = r.N
			case actReenable:
				planned.Reenabled = r.N
			case actUnchanged:
				planned.Unchanged = r.N
			case actDisable:
				planned.Disabled = r.N
			case actSkipped:
				planned.Skipped = r.N
			case actConflict:
				planned.Conflicts = r.N
			case actRefused:
				planned.LicenceRefused = r.N
			}
		}
		if planned.Inactive, planned.Departed, planned.Restated, err = s.planTally(ctx, tx, runID); err != nil {
			return err
		}
		out.Counts = planned
		if out.SourceUsers, err = p.sourceUsers(ctx); err != nil {
			return err
		}
		if err := s.get(ctx, tx, &out.ActiveInDirectory,
			`SELECT COUNT(*) FROM users WHERE directory_key = ? AND status = 'active'`, in.DirectoryKey); err != nil {
			return fmt.Errorf("count directory: %w", err)
		}
		if err := s.get(ctx, tx, &out.ActiveTotal, `SELECT COUNT(*) FROM users WHERE status = 'active'`); err != nil {
			return fmt.Errorf("count active users: %w", err)
		}
		if started {
			return nil
		}
		// What plan alone decides is final now; what apply does is counted
		// as it happens, except in a dry run where the plan is the result.
		c.Unchanged, c.Skipped, c.Conflicts, c.LicenceRefused = planned.Unchanged, planned.Skipped, planned.Conflicts, planned.LicenceRefused
		c.Inactive, c.Departed, c.Restated = planned.Inactive, planned.Departed, planned.Restated
		if in.DryRun {
			c = planned
		}
		_, err = s.exec(ctx, tx, `UPDATE sync_runs SET phase = 'plan', counts = ?, apply_step = ?, apply_cursor = '' WHERE id = ?`,
			countsJSON(c), stepCreate, runID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return out, nil
}

// licence refuses the creations and re-enables that would take the active
// users of all directories past limit, once the disables of this run are
// counted: offboarding never waits for the licence, and what the licence
// refuses is only bringing people in. Re-enables (people coming back) are
// allowed before creations, each kind in username order, so the same
// source and directory refuse the same users.
func (p *planner) licence(ctx context.Context, limit int) error {
	if limit <= 0 {
		return nil
	}
	var n struct {
		Active   int `db:"active"`
		Disables int `db:"disables"`
		Adds     int `db:"adds"`
	}
	if err := p.get(ctx, "licence", &n, `SELECT
  (SELECT COUNT(*) FROM users WHERE status = 'active') AS active,
  (SELECT COUNT(*) FROM sync_plan WHERE run_id = :run AND action = :disable) AS disables,
  (SELECT COUNT(*) FROM sync_plan WHERE run_id = :run AND action IN (:create, :reenable)) AS adds`,
		map[string]any{"disable": actDisable, "create": actCreate, "reenable": actReenable}); err != nil {
		return err
	}
	allowed := max(limit-(n.Active-n.Disables), 0)
	if n.Adds <= allowed {
		return nil
	}
	reason := fmt.Sprintf("licence limit %d reached: %d active users after this run's disables, %d more allowed, %d to add",
		limit, n.Active-n.Disables, allowed, n.Adds)
	return p.exec(ctx, "licence", `UPDATE sync_plan SET action = :refused, reason = :reason
WHERE run_id = :run AND external_id IN (
  SELECT p.external_id FROM sync_plan p JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id
  WHERE p.run_id = :run AND p.action IN (:create, :reenable)
  ORDER BY CASE WHEN p.action = :reenable THEN 0 ELSE 1 END, s.username_lower, p.external_id
  LIMIT :refuse OFFSET :allowed)`, map[string]any{"refused": actRefused, "reason": reason, "create": actCreate,
		"reenable": actReenable, "refuse": n.Adds - allowed, "allowed": allowed})
}

// tuneSession gives the transaction's large joins the memory to hash in
// RAM rather than in batches on disk (Postgres' default work_mem is 4 MB).
func (s *SQLStore) tuneSession(ctx context.Context, tx *sqlx.Tx) error {
	for _, q := range s.d.tuneLarge {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("tune session: %w", err)
		}
	}
	return nil
}

// analyze refreshes the planner's statistics of tables a run has just
// filled in bulk: without it Postgres plans the joins of plan and apply for
// the nearly empty tables it last saw, and a large run crawls. A table
// another transaction is analysing (another profile's run, autovacuum) is
// skipped rather than waited for: its statistics are being refreshed, and
// ANALYZE's lock lasts until that transaction ends.
func (s *SQLStore) analyze(ctx context.Context, q querier, tables ...string) error {
	if !s.d.analyze {
		return nil
	}
	for _, t := range tables {
		if _, err := s.exec(ctx, q, "ANALYZE (SKIP_LOCKED) "+t); err != nil {
			return fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return nil
}

// planner builds the plan of one run.
//
// A full run's staging is the complete source: every staged user gets a
// plan row, and every active user of the directory without one has left.
//
// A delta run's staging holds what changed; the snapshot (the base run's
// staging, every earlier delta folded in) holds the rest of the source.
// The plan must reach the directory a full run would, so before it judges
// the staged users it restates from the snapshot ("widens") every user the
// full rules could judge differently because of this run's changes, and
// the rules that count over the whole source count over snapshot and
// changes together:
//
//   - drift: a snapshot user the directory does not hold as the snapshot
//     says (missing, disabled or with other values while active and valid
//     in the source; active while inactive in the source) — what a full run
//     would create, re-enable, update or disable;
//   - username neighbours: snapshot users sharing a username with a
//     staged user, or with the old username of a changed or removed one —
//     a username shared in the source makes a conflict of every holder;
//   - manager references: snapshot users whose manager reference names a
//     user this run creates, adopts or renames — their manager resolves
//     anew;
//   - departures: an active user of the directory without a plan row that
//     is not in the snapshot, or is one of the run's removals.
//
// Users neither staged nor widened are judged unchanged by a full run too,
// and keep their memberships (the fetch restates users whose memberships
// the graph changed).
type planner struct {
	s     *SQLStore
	tx    *sqlx.Tx
	run   string
	base  string // delta: the snapshot run
	dir   string
	delta bool
}

// exec runs one of the plan's statements. They take named parameters
// (:run, :base, :dir and those in named), not positional ones: the same
// value appears in many places of one statement, and a list of a dozen
// question marks is easy to get out of step when a statement changes.
// Named statements carry no ':' of their own (sqlx reads one as a name).
func (p *planner) exec(ctx context.Context, what, q string, named map[string]any) error {
	q, args, err := p.bind(q, named)
	if err != nil {
		return fmt.Errorf("plan %s: %w", what, err)
	}
	if _, err := p.s.exec(ctx, p.tx, q, args...); err != nil {
		return fmt.Errorf("plan %s: %w", what, err)
	}
	return nil
}

// get is exec for a statement that reads one row into dest.
func (p *planner) get(ctx context.Context, what string, dest any, q string, named map[string]any) error {
	q, args, err := p.bind(q, named)
	if err != nil {
		return fmt.Errorf("plan %s: %w", what, err)
	}
	if err := p.s.get(ctx, p.tx, dest, q, args...); err != nil {
		return fmt.Errorf("plan %s: %w", what, err)
	}
	return nil
}

// bind turns the named parameters into the positional ones the drivers
// take (s.exec rebinds them for PostgreSQL).
func (p *planner) bind(q string, named map[string]any) (string, []any, error) {
	values := map[string]any{"run": p.run, "base": p.base, "dir": p.dir}
	maps.Copy(values, named)
	return sqlx.Named(q, values)
}

// build records one plan row per staged user and one per departed user.
func (p *planner) build(ctx context.Context) error {
	if err := p.exec(ctx, "clear", `DELETE FROM sync_plan WHERE run_id = :run`, nil); err != nil {
		return err
	}
	if p.delta {
		if err := p.widenDrift(ctx); err != nil {
			return err
		}
	}
	if err := p.s.analyze(ctx, p.tx, "sync_staged_users", "sync_staged_groups", "sync_staged_members"); err != nil {
		return err
	}
	if err := p.planStaged(ctx); err != nil {
		return err
	}
	if p.delta {
		if err := p.widenManagers(ctx); err != nil {
			return err
		}
	}
	// The departures' anti-join reads what was just inserted.
	if err := p.s.analyze(ctx, p.tx, "sync_plan"); err != nil {
		return err
	}
	return p.planDepartures(ctx)
}

// stagedCols are the columns a widening copies from the snapshot.
const stagedCols = `external_id, line, username, username_lower, first_name, last_name, email, active,
  manager_ref, manager_ref_lower, attributes, password_hash, content_hash, invalid`

// notChanged keeps snapshot rows s that the run neither staged nor removed.
// Named parameters: :run.
const notChanged = `NOT EXISTS (SELECT 1 FROM sync_staged_users r WHERE r.run_id = :run AND r.external_id = s.external_id)
  AND NOT EXISTS (SELECT 1 FROM sync_staged_removals x WHERE x.run_id = :run AND x.external_id = s.external_id)`

// widenDrift restates the drifted users and the username neighbours.
func (p *planner) widenDrift(ctx context.Context) error {
	err := p.exec(ctx, "drift and username neighbours", `
INSERT INTO sync_staged_users (run_id, `+stagedCols+`, origin)
SELECT :run, `+stagedCols+`, :widen
FROM sync_staged_users s
WHERE s.run_id = :base AND `+notChanged+`
  AND (
    (s.invalid = '' AND s.active AND NOT EXISTS (SELECT 1 FROM users u WHERE u.directory_key = :dir AND u.external_id = s.external_id
                                                 AND u.status = 'active' AND u.content_hash = s.content_hash))
    OR (s.invalid = '' AND NOT s.active AND EXISTS (SELECT 1 FROM users u WHERE u.directory_key = :dir AND u.external_id = s.external_id
                                                    AND u.status = 'active'))
    OR s.username_lower IN (SELECT r.username_lower FROM sync_staged_users r WHERE r.run_id = :run)
    OR s.username_lower IN (SELECT o.username_lower FROM sync_staged_users o WHERE o.run_id = :base AND (
         o.external_id IN (SELECT external_id FROM sync_staged_users WHERE run_id = :run)
         OR o.external_id IN (SELECT external_id FROM sync_staged_removals WHERE run_id = :run)))
  )`, map[string]any{"widen": originWiden})
	if err != nil {
		return err
	}
	return p.copyWidenedMembers(ctx)
}

// widenManagers restates the users whose manager reference names a user
// this run creates or changes, and plans them.
func (p *planner) widenManagers(ctx context.Context) error {
	const changed = `p.run_id = :run AND p.action IN ('create', 'update', 'reenable')`
	err := p.exec(ctx, "manager references", `
INSERT INTO sync_staged_users (run_id, `+stagedCols+`, origin)
SELECT :run, `+stagedCols+`, :widen
FROM sync_staged_users s
WHERE s.run_id = :base AND s.manager_ref <> '' AND `+notChanged+`
  AND (s.manager_ref IN (SELECT p.external_id FROM sync_plan p WHERE `+changed+`)
    OR s.manager_ref_lower IN (SELECT r.username_lower FROM sync_plan p
                               JOIN sync_staged_users r ON r.run_id = p.run_id AND r.external_id = p.external_id WHERE `+changed+`)
    OR s.manager_ref_lower IN (SELECT u.username_lower FROM sync_plan p JOIN users u ON u.id = p.user_id WHERE `+changed+`))`,
		map[string]any{"widen": originWiden})
	if err != nil {
		return err
	}
	if err := p.copyWidenedMembers(ctx); err != nil {
		return err
	}
	return p.planStaged(ctx)
}

// copyWidenedMembers gives widened users their snapshot memberships: the
// run did not change them (else the fetch would have restated the user).
func (p *planner) copyWidenedMembers(ctx context.Context) error {
	return p.exec(ctx, "widened memberships", `
INSERT INTO sync_staged_members (run_id, group_external_id, user_external_id)
SELECT :run, m.group_external_id, m.user_external_id FROM sync_staged_members m
WHERE m.run_id = :base AND m.user_external_id IN (SELECT external_id FROM sync_staged_users WHERE run_id = :run AND origin = :widen)
ON CONFLICT DO NOTHING`, map[string]any{"widen": originWiden})
}

// planStaged records a plan row for every staged user that has none yet.
func (p *planner) planStaged(ctx context.Context) error {
	// m is the directory user a staged user is: the one with its external
	// id, or else a user of this directory without one and with its
	// username (a local account switched to this directory, adopted).
	// o is anyone else holding the username; d flags usernames that two
	// records of the source share.
	// Plain equi-joins throughout: the planner hash-joins them, where a
	// correlated subquery per staged row turns into a nested loop on a
	// large directory. m1 matches by external id, m2 (only without m1) by
	// username among the directory's users that have no external id.
	dupes := `SELECT username_lower, COUNT(*) AS n FROM sync_staged_users
           WHERE run_id = :run AND invalid = '' GROUP BY username_lower HAVING COUNT(*) > 1`
	if p.delta {
		// Over the whole source: the staged users and the snapshot's others.
		dupes = `SELECT v.username_lower, COUNT(*) AS n FROM (
             SELECT username_lower FROM sync_staged_users WHERE run_id = :run AND invalid = ''
             UNION ALL
             SELECT s.username_lower FROM sync_staged_users s WHERE s.run_id = :base AND s.invalid = ''
               AND s.username_lower IN (SELECT username_lower FROM sync_staged_users WHERE run_id = :run) AND ` + notChanged + `
           ) v GROUP BY v.username_lower HAVING COUNT(*) > 1`
	}
	// A user to create gets its id now, so that the create step can set
	// the managers it creates in the same run (see applyCreate).
	return p.exec(ctx, "users", `
INSERT INTO sync_plan (run_id, external_id, user_id, action, reason)
SELECT c.run_id, c.external_id, CASE WHEN c.action = 'create' THEN `+p.s.newIDExpr()+` ELSE c.user_id END, c.action, c.reason
FROM (
SELECT s.run_id, s.external_id, COALESCE(m1.id, m2.id) AS user_id,
  CASE
    WHEN s.invalid <> '' THEN 'skipped'
    WHEN d.n IS NOT NULL THEN 'conflict'
    WHEN o.id IS NOT NULL THEN 'conflict'
    WHEN COALESCE(m1.id, m2.id) IS NULL AND NOT s.active THEN 'ignore'
    WHEN COALESCE(m1.id, m2.id) IS NULL THEN 'create'
    WHEN NOT s.active AND COALESCE(m1.status, m2.status) = 'active' THEN 'disable'
    WHEN NOT s.active THEN 'ignore'
    WHEN COALESCE(m1.status, m2.status) <> 'active' THEN 'reenable'
    WHEN m1.id IS NULL OR m1.content_hash <> s.content_hash THEN 'update'
    ELSE 'unchanged'
  END AS action,
  CASE
    WHEN s.invalid <> '' THEN s.invalid
    WHEN d.n IS NOT NULL THEN 'username "' || s.username || '" is used by ' || CAST(d.n AS TEXT) || ' users of the source'
    WHEN o.id IS NOT NULL AND o.directory_key = 'local' THEN 'username "' || s.username || '" belongs to a local account'
    WHEN o.id IS NOT NULL AND o.directory_key = :dir THEN 'username "' || s.username || '" belongs to another user of this directory'
    WHEN o.id IS NOT NULL THEN 'username "' || s.username || '" belongs to a user of another directory (' || o.directory_key || ')'
    WHEN NOT s.active AND COALESCE(m1.status, m2.status) = 'active' THEN 'inactive in the provider'
    ELSE ''
  END AS reason
FROM sync_staged_users s
LEFT JOIN users m1 ON m1.directory_key = :dir AND m1.external_id = s.external_id
LEFT JOIN users m2 ON m1.id IS NULL AND m2.directory_key = :dir AND m2.external_id IS NULL AND m2.username_lower = s.username_lower
LEFT JOIN users o ON o.username_lower = s.username_lower AND o.id <> COALESCE(m1.id, m2.id, '')
LEFT JOIN (`+dupes+`) d
       ON d.username_lower = s.username_lower AND s.invalid = ''
WHERE s.run_id = :run AND NOT EXISTS (SELECT 1 FROM sync_plan x WHERE x.run_id = s.run_id AND x.external_id = s.external_id)
) c`, nil)
}

// planDepartures disables the active users of this directory that left the
// source (Plan only runs after a complete fetch): in a full run those the
// fetch did not bring, in a delta run those the snapshot does not have or
// the run removed.
func (p *planner) planDepartures(ctx context.Context) error {
	// A user without an external id (a local account adopted earlier) is
	// keyed by its id; the prefix is a parameter, a ':' being a name to sqlx.
	departed := map[string]any{"local": "user:", "reason": departedReason}
	if !p.delta {
		return p.exec(ctx, "departures", `
INSERT INTO sync_plan (run_id, external_id, user_id, action, reason)
SELECT :run, COALESCE(u.external_id, :local || u.id), u.id, 'disable', :reason
FROM users u
WHERE u.directory_key = :dir AND u.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM sync_plan p WHERE p.run_id = :run AND p.user_id = u.id)`, departed)
	}
	return p.exec(ctx, "departures", `
INSERT INTO sync_plan (run_id, external_id, user_id, action, reason)
SELECT :run, COALESCE(u.external_id, :local || u.id), u.id, 'disable', :reason
FROM users u
WHERE u.directory_key = :dir AND u.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM sync_plan p WHERE p.run_id = :run AND p.user_id = u.id)
  AND NOT EXISTS (SELECT 1 FROM sync_staged_users s WHERE s.run_id = :base AND s.external_id = u.external_id
                  AND NOT EXISTS (SELECT 1 FROM sync_staged_removals x WHERE x.run_id = :run AND x.external_id = s.external_id))`,
		departed)
}

// sourceUsers counts the users of the complete source: the staging of a
// full run; the snapshot with a delta run's changes.
func (p *planner) sourceUsers(ctx context.Context) (int, error) {
	var n int
	if err := p.get(ctx, "count source", &n, `SELECT COUNT(*) FROM sync_staged_users WHERE run_id = :run`, nil); err != nil {
		return 0, err
	}
	if !p.delta {
		return n, nil
	}
	var rest int
	if err := p.get(ctx, "count source", &rest, `SELECT COUNT(*) FROM sync_staged_users s WHERE s.run_id = :base AND `+notChanged, nil); err != nil {
		return 0, err
	}
	return n + rest, nil
}
