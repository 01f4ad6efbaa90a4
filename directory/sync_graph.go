package directory

import (
	"context"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"
)

// The provider's group graph: for a source whose groups nest (Entra ID),
// who is in scope (a member, at any depth, of a selected group) and who
// is in which kept group follow from the direct memberships alone. A run
// stages the graph (sync_staged_pgroups, sync_staged_edges): all of it in
// a full run, the changes to its snapshot's in a delta run. The run's
// graph is then the snapshot's with the run's rows laid over it — an edge
// or group the run staged replaces the snapshot's, a removed one and the
// edges of a removed group are gone — and every query below reads it so,
// without copying the snapshot. A full run has no snapshot: its base is
// "", which no run id is.

// ResolveInput parameterises ResolveDelta.
type ResolveInput struct {
	Selected  []string // the profile's selected groups: the scope
	GroupSync bool     // memberships of kept groups follow the provider
}

// Work set kinds of sync_run_ids.
const (
	idsCandidate = "candidate"
	idsInScope   = "inscope"
	idsPending   = "pending"
)

// scopeExitReason is why a delta run removes a user the graph no longer
// puts under a selected group.
const scopeExitReason = "no longer a member of a selected group"

// graphEdges selects the run's edges as (g, m, is_group), filtered by
// where (over e), which takes whereArgs. Its arguments are graphEdgesArgs.
func graphEdges(where string) string {
	return `SELECT e.group_external_id AS g, e.member_external_id AS m, e.member_is_group AS is_group
FROM sync_staged_edges e
WHERE e.run_id = ? AND ` + where + `
  AND NOT EXISTS (SELECT 1 FROM sync_staged_edges x WHERE x.run_id = ? AND x.group_external_id = e.group_external_id
                  AND x.member_external_id = e.member_external_id)
  AND NOT EXISTS (SELECT 1 FROM sync_staged_pgroups x WHERE x.run_id = ? AND x.removed
                  AND x.external_id IN (e.group_external_id, e.member_external_id))
UNION ALL
SELECT e.group_external_id, e.member_external_id, e.member_is_group
FROM sync_staged_edges e
WHERE e.run_id = ? AND NOT e.removed AND ` + where + `
  AND NOT EXISTS (SELECT 1 FROM sync_staged_pgroups x WHERE x.run_id = ? AND x.removed
                  AND x.external_id IN (e.group_external_id, e.member_external_id))`
}

func graphEdgesArgs(base, run string, whereArgs ...any) []any {
	args := append([]any{base}, whereArgs...)
	args = append(args, run, run, run)
	args = append(args, whereArgs...)
	return append(args, run)
}

// keptGroups selects the run's kept groups as (id, name); its arguments
// are run, base, run.
const keptGroups = `SELECT g.external_id AS id, g.name AS name FROM sync_staged_pgroups g
WHERE g.run_id = ? AND g.kept AND NOT g.removed
UNION ALL
SELECT g.external_id, g.name FROM sync_staged_pgroups g
WHERE g.run_id = ? AND g.kept AND NOT EXISTS (SELECT 1 FROM sync_staged_pgroups x WHERE x.run_id = ? AND x.external_id = g.external_id)`

// baseOf is the snapshot run a run's graph lies over ("" for a full run).
func (s *SQLStore) baseOf(ctx context.Context, q querier, runID string) (string, error) {
	var r struct {
		Mode string `db:"sync_mode"`
		Base string `db:"base_run_id"`
	}
	if err := s.get(ctx, q, &r, `SELECT sync_mode, base_run_id FROM sync_runs WHERE id = ?`, runID); err != nil {
		return "", dbErr("run "+runID, err)
	}
	if r.Mode == ModeDelta {
		return r.Base, nil
	}
	return "", nil
}

// BuildAncestry implements SyncEngine. The closure runs over the edges
// between groups only, a small part of the graph, and Entra ID refuses
// cycles but UNION would end one anyway.
func (s *SQLStore) BuildAncestry(ctx context.Context, runID string) error {
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		base, err := s.baseOf(ctx, tx, runID)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM sync_run_ancestry WHERE run_id = ?`, runID); err != nil {
			return err
		}
		args := graphEdgesArgs(base, runID)
		args = append(args, runID, base, runID)
		_, err = s.exec(ctx, tx, `
WITH RECURSIVE ge (g, m) AS (
  SELECT g, m FROM (`+graphEdges("e.member_is_group")+`) x
),
nodes (id) AS (
  SELECT g FROM ge
  UNION SELECT m FROM ge
  UNION SELECT external_id FROM sync_staged_pgroups WHERE run_id = ? AND NOT removed
  UNION SELECT s.external_id FROM sync_staged_pgroups s WHERE s.run_id = ?
    AND NOT EXISTS (SELECT 1 FROM sync_staged_pgroups x WHERE x.run_id = ? AND x.external_id = s.external_id)
),
anc (g, a) AS (
  SELECT id, id FROM nodes
  UNION
  SELECT anc.g, ge.g FROM anc JOIN ge ON ge.m = anc.a
)
INSERT INTO sync_run_ancestry (run_id, group_external_id, ancestor_external_id)
SELECT ?, g, a FROM anc`, append(args, runID)...)
		if err != nil {
			return err
		}
		// The graph is staged now, and what follows reads the run's rows
		// against the snapshot's: a planner that still counts the run's
		// rows as none re-scanned them per row of the snapshot's graph.
		return s.analyze(ctx, tx, "sync_staged_edges", "sync_staged_pgroups", "sync_run_ancestry")
	})
	if err != nil {
		return fmt.Errorf("group ancestry: %w", err)
	}
	return nil
}

// InScope implements SyncEngine.
func (s *SQLStore) InScope(ctx context.Context, runID string, selected, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(selected) == 0 || len(ids) == 0 {
		return out, nil
	}
	base, err := s.baseOf(ctx, s.db, runID)
	if err != nil {
		return nil, err
	}
	// The page's edges are worked out once (MATERIALIZED), whatever the
	// planner guesses of the ancestry they join: planned inside the join,
	// they were worked out again for every group under a selected one.
	q := `WITH e AS MATERIALIZED (` + graphEdges("NOT e.member_is_group AND e.member_external_id IN (?)") + `)
SELECT DISTINCT e.m FROM e
JOIN sync_run_ancestry an ON an.run_id = ? AND an.group_external_id = e.g
WHERE an.ancestor_external_id IN (?)`
	args := graphEdgesArgs(base, runID, ids)
	args = append(args, runID, selected)
	q, args, err = sqlx.In(q, args...)
	if err != nil {
		return nil, fmt.Errorf("scope: %w", err)
	}
	var found []string
	if err := s.sel(ctx, s.db, &found, q, args...); err != nil {
		return nil, fmt.Errorf("scope: %w", err)
	}
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// ResolveDelta implements SyncEngine. It is idempotent: it starts by
// dropping what an earlier attempt worked out.
//
// The candidates are the users a change to the graph may move: members of
// a changed edge, and the users under a group whose place in the graph or
// whose kept flag changed (a nested group moved, a group renamed into or
// out of the filter, a group deleted), under it in the snapshot's graph or
// in the run's. Of those the run did not stage or remove, a user of the
// snapshot that the run's graph puts out of scope is removed, one still in
// scope is restated from the snapshot so that its memberships are worked
// out again (with group sync on), and one not in the snapshot that is in
// scope now must be read from the provider (pending).
func (s *SQLStore) ResolveDelta(ctx context.Context, runID string, in ResolveInput) error {
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		if err := s.tuneSession(ctx, tx); err != nil {
			return err
		}
		base, err := s.baseOf(ctx, tx, runID)
		if err != nil {
			return err
		}
		steps := []struct {
			what string
			q    string
			args []any
		}{
			{"clear", `DELETE FROM sync_run_ids WHERE run_id = ?`, []any{runID}},
			{"clear", `DELETE FROM sync_staged_users WHERE run_id = ? AND origin = ?`, []any{runID, originResolve}},
			{"clear", `DELETE FROM sync_staged_removals WHERE run_id = ? AND reason = ?`, []any{runID, scopeExitReason}},
			{"candidates", `INSERT INTO sync_run_ids (run_id, kind, external_id)
SELECT DISTINCT run_id, ?, member_external_id FROM sync_staged_edges WHERE run_id = ? AND NOT member_is_group`,
				[]any{idsCandidate, runID}},
			{"candidates", `
WITH RECURSIVE affected (id) AS (
  SELECT member_external_id FROM sync_staged_edges WHERE run_id = ? AND member_is_group
  UNION
  SELECT g.external_id FROM sync_staged_pgroups g WHERE g.run_id = ? AND NOT EXISTS (
    SELECT 1 FROM sync_staged_pgroups o WHERE o.run_id = ? AND o.external_id = g.external_id AND o.kept = g.kept AND NOT g.removed)
),
snapshot_edges (g, m) AS (
  SELECT group_external_id, member_external_id FROM sync_staged_edges WHERE run_id = ? AND member_is_group
),
below_before (id) AS (
  SELECT id FROM affected
  UNION
  SELECT snapshot_edges.m FROM below_before JOIN snapshot_edges ON snapshot_edges.g = below_before.id
),
below (id) AS (
  SELECT id FROM below_before
  UNION
  SELECT group_external_id FROM sync_run_ancestry WHERE run_id = ? AND ancestor_external_id IN (SELECT id FROM affected)
)
INSERT INTO sync_run_ids (run_id, kind, external_id)
SELECT DISTINCT ?, ?, e.member_external_id FROM sync_staged_edges e
WHERE e.run_id IN (?, ?) AND NOT e.member_is_group AND e.group_external_id IN (SELECT id FROM below)
ON CONFLICT DO NOTHING`, []any{runID, runID, base, base, runID, runID, idsCandidate, base, runID}},
			// Staged and removed users are settled already.
			{"candidates", `DELETE FROM sync_run_ids WHERE run_id = ? AND kind = ? AND (
  external_id IN (SELECT external_id FROM sync_staged_users WHERE run_id = ?)
  OR external_id IN (SELECT external_id FROM sync_staged_removals WHERE run_id = ?))`, []any{runID, idsCandidate, runID, runID}},
		}
		for _, st := range steps {
			if _, err := s.exec(ctx, tx, st.q, st.args...); err != nil {
				return fmt.Errorf("%s: %w", st.what, err)
			}
		}
		if len(in.Selected) > 0 {
			// The candidates' edges once, as in InScope.
			q := `WITH e AS MATERIALIZED (` + graphEdges("NOT e.member_is_group AND e.member_external_id IN (SELECT external_id FROM sync_run_ids WHERE run_id = ? AND kind = ?)") + `)
INSERT INTO sync_run_ids (run_id, kind, external_id)
SELECT DISTINCT ?, ?, e.m FROM e
JOIN sync_run_ancestry an ON an.run_id = ? AND an.group_external_id = e.g
WHERE an.ancestor_external_id IN (?)`
			args := graphEdgesArgs(base, runID, runID, idsCandidate)
			args = append(args, runID, idsInScope, runID, in.Selected)
			q, args, err = sqlx.In(q, args...)
			if err != nil {
				return fmt.Errorf("scope: %w", err)
			}
			if _, err := s.exec(ctx, tx, q, args...); err != nil {
				return fmt.Errorf("scope: %w", err)
			}
		}
		const (
			candidate = `c.run_id = ? AND c.kind = ?`
			inScope   = `EXISTS (SELECT 1 FROM sync_run_ids i WHERE i.run_id = c.run_id AND i.kind = ? AND i.external_id = c.external_id)`
			inSnap    = `EXISTS (SELECT 1 FROM sync_staged_users b WHERE b.run_id = ? AND b.external_id = c.external_id)`
		)
		if _, err := s.exec(ctx, tx, `INSERT INTO sync_staged_removals (run_id, external_id, reason)
SELECT c.run_id, c.external_id, ? FROM sync_run_ids c
WHERE `+candidate+` AND NOT `+inScope+` AND `+inSnap,
			scopeExitReason, runID, idsCandidate, idsInScope, base); err != nil {
			return fmt.Errorf("scope exits: %w", err)
		}
		if in.GroupSync {
			if _, err := s.exec(ctx, tx, `INSERT INTO sync_staged_users (run_id, `+stagedCols+`, origin)
SELECT ?, `+stagedCols+`, ? FROM sync_staged_users s
WHERE s.run_id = ? AND s.external_id IN (SELECT c.external_id FROM sync_run_ids c WHERE `+candidate+` AND `+inScope+`)`,
				runID, originResolve, base, runID, idsCandidate, idsInScope); err != nil {
				return fmt.Errorf("restate moved users: %w", err)
			}
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO sync_run_ids (run_id, kind, external_id)
SELECT c.run_id, ?, c.external_id FROM sync_run_ids c
WHERE `+candidate+` AND `+inScope+` AND NOT `+inSnap,
			idsPending, runID, idsCandidate, idsInScope, base); err != nil {
			return fmt.Errorf("scope entries: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("resolve delta: %w", err)
	}
	return nil
}

// NextPending implements SyncEngine.
func (s *SQLStore) NextPending(ctx context.Context, runID, after string, limit int) ([]string, error) {
	var ids []string
	if err := s.sel(ctx, s.db, &ids, `SELECT external_id FROM sync_run_ids WHERE run_id = ? AND kind = ? AND external_id > ?
ORDER BY external_id LIMIT ?`, runID, idsPending, after, limit); err != nil {
		return nil, fmt.Errorf("pending users: %w", err)
	}
	return ids, nil
}

// DeriveGroups implements SyncEngine: the staged groups are every kept
// group of the run's graph, and a staged user's memberships are the kept
// groups among the ancestors of the groups it is a direct member of.
func (s *SQLStore) DeriveGroups(ctx context.Context, runID string) error {
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		if err := s.tuneSession(ctx, tx); err != nil {
			return err
		}
		base, err := s.baseOf(ctx, tx, runID)
		if err != nil {
			return err
		}
		if err := s.analyze(ctx, tx, "sync_staged_edges", "sync_run_ancestry", "sync_staged_users"); err != nil {
			return err
		}
		for _, t := range []string{"sync_staged_groups", "sync_staged_members"} {
			if _, err := s.exec(ctx, tx, `DELETE FROM `+t+` WHERE run_id = ?`, runID); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO sync_staged_groups (run_id, external_id, name)
SELECT ?, k.id, k.name FROM (`+keptGroups+`) k`, runID, runID, base, runID); err != nil {
			return fmt.Errorf("kept groups: %w", err)
		}
		args := graphEdgesArgs(base, runID, runID)
		args = append(args, runID, runID, runID)
		// The staged users' edges once, as in InScope; the rows go in in
		// primary key order, as applyMembers writes its work set.
		_, err = s.exec(ctx, tx, `WITH e AS MATERIALIZED (`+graphEdges("NOT e.member_is_group AND e.member_external_id IN (SELECT external_id FROM sync_staged_users WHERE run_id = ?)")+`)
INSERT INTO sync_staged_members (run_id, group_external_id, user_external_id)
SELECT DISTINCT ?, an.ancestor_external_id, e.m
FROM e
JOIN sync_run_ancestry an ON an.run_id = ? AND an.group_external_id = e.g
JOIN sync_staged_groups k ON k.run_id = ? AND k.external_id = an.ancestor_external_id
ORDER BY an.ancestor_external_id, e.m`, args...)
		if err != nil {
			return err
		}
		// The plan and apply join what was just written.
		return s.analyze(ctx, tx, "sync_staged_members")
	})
	if err != nil {
		return fmt.Errorf("derive groups: %w", err)
	}
	return nil
}

// MissingGroups implements SyncEngine.
func (s *SQLStore) MissingGroups(ctx context.Context, runID string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	base, err := s.baseOf(ctx, s.db, runID)
	if err != nil {
		return nil, err
	}
	q, args, err := sqlx.In(`SELECT g.external_id FROM sync_staged_pgroups g
WHERE g.run_id = ? AND NOT g.removed AND g.external_id IN (?)
UNION
SELECT g.external_id FROM sync_staged_pgroups g
WHERE g.run_id = ? AND g.external_id IN (?)
  AND NOT EXISTS (SELECT 1 FROM sync_staged_pgroups x WHERE x.run_id = ? AND x.external_id = g.external_id)`,
		runID, ids, base, ids, runID)
	if err != nil {
		return nil, fmt.Errorf("selected groups: %w", err)
	}
	var found []string
	if err := s.sel(ctx, s.db, &found, q, args...); err != nil {
		return nil, fmt.Errorf("selected groups: %w", err)
	}
	var missing []string
	for _, id := range ids {
		if !slices.Contains(found, id) && !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// StagedManagers implements SyncEngine.
func (s *SQLStore) StagedManagers(ctx context.Context, runID string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 || runID == "" {
		return out, nil
	}
	q, args, err := sqlx.In(`SELECT external_id, manager_ref FROM sync_staged_users WHERE run_id = ? AND external_id IN (?)`, runID, ids)
	if err != nil {
		return nil, fmt.Errorf("staged managers: %w", err)
	}
	var rows []struct {
		ID  string `db:"external_id"`
		Ref string `db:"manager_ref"`
	}
	if err := s.sel(ctx, s.db, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("staged managers: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r.Ref
	}
	return out, nil
}
