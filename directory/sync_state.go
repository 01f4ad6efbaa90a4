package directory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Run modes: how a run reads its source.
const (
	ModeFull  = "full"
	ModeDelta = "delta"
)

// SyncState is what the last successful run of a directory left for the
// next run: the snapshot of the complete source (the staging of
// SnapshotRunID, with every later delta folded in), the provider state to
// read changes from, the fingerprint of the profile settings both were
// made with, and when the last full run was.
type SyncState struct {
	DirectoryKey    string            `db:"directory_key"`
	SnapshotRunID   string            `db:"snapshot_run_id"`
	LastRunID       string            `db:"last_run_id"`
	SourceStateJSON string            `db:"source_state"`
	SourceState     map[string]string `db:"-"`
	Fingerprint     string            `db:"fingerprint"`
	FullAt          time.Time         `db:"full_at"`
	UpdatedAt       time.Time         `db:"updated_at"`
}

// RunMode is how a run reads its source.
type RunMode struct {
	Mode        string // ModeFull, ModeDelta, or "" before the fetch fixed it
	BaseRunID   string // delta: the snapshot the changes apply to
	Fingerprint string // of the profile settings the run reads with
	// From is, for a delta run, the provider state to read changes from
	// (the base's sync state); Saved is what the run read up to so far,
	// saved when it succeeds.
	From  map[string]string
	Saved map[string]string
}

// SyncState implements SyncEngine.
func (s *SQLStore) SyncState(ctx context.Context, directoryKey string) (*SyncState, error) {
	var st SyncState
	if err := s.get(ctx, s.db, &st, `SELECT directory_key, snapshot_run_id, last_run_id, source_state, fingerprint, full_at, updated_at
FROM sync_state WHERE directory_key = ?`, directoryKey); err != nil {
		return nil, dbErr("sync state of "+directoryKey, err)
	}
	st.SourceState = parseAttrs(st.SourceStateJSON)
	st.FullAt, st.UpdatedAt = utc(st.FullAt), utc(st.UpdatedAt)
	return &st, nil
}

// ForgetSyncState implements SyncEngine.
func (s *SQLStore) ForgetSyncState(ctx context.Context, directoryKey string) error {
	return s.InTx(ctx, func(tx *sqlx.Tx) error { return s.forgetSyncState(ctx, tx, directoryKey) })
}

type runModeRow struct {
	Mode        string `db:"sync_mode"`
	Base        string `db:"base_run_id"`
	Fingerprint string `db:"fingerprint"`
	Saved       string `db:"source_state"`
	Directory   string `db:"directory_key"`
}

// SetRunMode implements SyncEngine.
func (s *SQLStore) SetRunMode(ctx context.Context, runID string, m RunMode) (RunMode, error) {
	if m.Mode != ModeFull && m.Mode != ModeDelta {
		return RunMode{}, fmt.Errorf("set run mode: unknown mode %q", m.Mode)
	}
	if m.Mode == ModeFull {
		m.BaseRunID = ""
	}
	if _, err := s.exec(ctx, s.db, `UPDATE sync_runs SET sync_mode = ?, base_run_id = ?, fingerprint = ? WHERE id = ? AND sync_mode = ''`,
		m.Mode, m.BaseRunID, m.Fingerprint, runID); err != nil {
		return RunMode{}, fmt.Errorf("set run mode: %w", err)
	}
	return s.RunMode(ctx, runID)
}

// RunMode implements SyncEngine.
func (s *SQLStore) RunMode(ctx context.Context, runID string) (RunMode, error) {
	var r runModeRow
	if err := s.get(ctx, s.db, &r, `SELECT sync_mode, base_run_id, fingerprint, source_state, directory_key FROM sync_runs WHERE id = ?`, runID); err != nil {
		return RunMode{}, dbErr("run "+runID, err)
	}
	m := RunMode{Mode: r.Mode, BaseRunID: r.Base, Fingerprint: r.Fingerprint, Saved: parseAttrs(r.Saved)}
	if m.Mode == ModeDelta {
		st, err := s.SyncState(ctx, r.Directory)
		if err != nil {
			return RunMode{}, err
		}
		if st.SnapshotRunID != m.BaseRunID {
			return RunMode{}, fmt.Errorf("run %s builds on snapshot %s, but the directory's is now %s", runID, m.BaseRunID, st.SnapshotRunID)
		}
		m.From = st.SourceState
	}
	return m, nil
}

// FallBackToFull implements SyncEngine.
func (s *SQLStore) FallBackToFull(ctx context.Context, runID string) error {
	return s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		if err := s.deleteRunRows(ctx, tx, runID); err != nil {
			return err
		}
		c, err := s.loadCounts(ctx, tx, runID)
		if err != nil {
			return err
		}
		c.Fetched = 0
		_, err = s.exec(ctx, tx, `UPDATE sync_runs SET sync_mode = ?, base_run_id = '', fetch_cursor = '', fetch_done = FALSE,
  counts = ?, source_state = '{}' WHERE id = ?`, ModeFull, countsJSON(c), runID)
		return err
	})
}

// dropWorkRows removes what a run computed on the way (plan, work sets),
// keeping its staging.
func (s *SQLStore) dropWorkRows(ctx context.Context, q querier, runID string) error {
	return s.clearRun(ctx, q, runID, "sync_plan", "sync_plan_managers", "sync_plan_members", "sync_run_ids", "sync_run_ancestry", "sync_staged_removals")
}

// CommitRun implements SyncEngine. It runs in one transaction and once: a
// retry after it committed finds the run already recorded as the last.
func (s *SQLStore) CommitRun(ctx context.Context, runID string) error {
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		var run struct {
			runModeRow
			StartedAt time.Time `db:"started_at"`
		}
		if err := s.get(ctx, tx, &run, `SELECT sync_mode, base_run_id, fingerprint, source_state, directory_key, started_at
FROM sync_runs WHERE id = ?`, runID); err != nil {
			return dbErr("run "+runID, err)
		}
		var st []SyncState
		if err := s.sel(ctx, tx, &st, `SELECT directory_key, snapshot_run_id, last_run_id, source_state, fingerprint, full_at, updated_at
FROM sync_state WHERE directory_key = ?`, run.Directory); err != nil {
			return err
		}
		if len(st) > 0 && st[0].LastRunID == runID {
			return nil
		}
		now := s.Now()
		switch run.Mode {
		case ModeFull:
			if len(st) > 0 && st[0].SnapshotRunID != runID {
				if err := s.deleteRunRows(ctx, tx, st[0].SnapshotRunID); err != nil {
					return err
				}
			}
			if err := s.dropWorkRows(ctx, tx, runID); err != nil {
				return err
			}
			_, err := s.exec(ctx, tx, `INSERT INTO sync_state (directory_key, snapshot_run_id, last_run_id, source_state, fingerprint, full_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (directory_key) DO UPDATE SET snapshot_run_id = excluded.snapshot_run_id, last_run_id = excluded.last_run_id,
  source_state = excluded.source_state, fingerprint = excluded.fingerprint, full_at = excluded.full_at, updated_at = excluded.updated_at`,
				run.Directory, runID, runID, run.Saved, run.Fingerprint, utc(run.StartedAt), now)
			return err
		case ModeDelta:
			if len(st) == 0 || st[0].SnapshotRunID != run.Base {
				return fmt.Errorf("run %s builds on a snapshot the directory no longer has", runID)
			}
			if err := s.foldDelta(ctx, tx, run.Base, runID); err != nil {
				return err
			}
			saved := parseAttrs(st[0].SourceStateJSON)
			for k, v := range parseAttrs(run.Saved) {
				saved[k] = v
			}
			_, err := s.exec(ctx, tx, `UPDATE sync_state SET last_run_id = ?, source_state = ?, updated_at = ? WHERE directory_key = ?`,
				runID, attrsJSON(saved), now, run.Directory)
			return err
		}
		return errors.New("the run has no sync mode")
	})
	if err != nil {
		return fmt.Errorf("commit run: %w", err)
	}
	return nil
}

// foldDelta folds a delta run's staging into the snapshot: the users it
// staged (changed, restated) replace theirs with their memberships, the
// users it removed go, the kept groups are replaced, and its changes to
// the group graph are applied. What is left of the run's rows goes.
func (s *SQLStore) foldDelta(ctx context.Context, tx *sqlx.Tx, snapshot, runID string) error {
	const touched = `(SELECT external_id FROM sync_staged_users WHERE run_id = ?
  UNION SELECT external_id FROM sync_staged_removals WHERE run_id = ?)`
	steps := []struct {
		what string
		q    string
		args []any
	}{
		{"memberships", `DELETE FROM sync_staged_members WHERE run_id = ? AND user_external_id IN ` + touched, []any{snapshot, runID, runID}},
		{"users", `DELETE FROM sync_staged_users WHERE run_id = ? AND external_id IN ` + touched, []any{snapshot, runID, runID}},
		{"users", `UPDATE sync_staged_users SET run_id = ?, origin = '' WHERE run_id = ?`, []any{snapshot, runID}},
		{"memberships", `UPDATE sync_staged_members SET run_id = ? WHERE run_id = ?`, []any{snapshot, runID}},
		{"groups", `DELETE FROM sync_staged_groups WHERE run_id = ?`, []any{snapshot}},
		{"groups", `UPDATE sync_staged_groups SET run_id = ? WHERE run_id = ?`, []any{snapshot, runID}},
		// The graph: edges first, while the run's removed groups are known.
		{"graph", `DELETE FROM sync_staged_edges WHERE run_id = ? AND (
    EXISTS (SELECT 1 FROM sync_staged_edges x WHERE x.run_id = ? AND x.group_external_id = sync_staged_edges.group_external_id
            AND x.member_external_id = sync_staged_edges.member_external_id)
 OR EXISTS (SELECT 1 FROM sync_staged_pgroups g WHERE g.run_id = ? AND g.removed
            AND g.external_id IN (sync_staged_edges.group_external_id, sync_staged_edges.member_external_id)))`,
			[]any{snapshot, runID, runID}},
		{"graph", `DELETE FROM sync_staged_edges WHERE run_id = ? AND removed`, []any{runID}},
		{"graph", `UPDATE sync_staged_edges SET run_id = ? WHERE run_id = ?`, []any{snapshot, runID}},
		{"graph", `DELETE FROM sync_staged_pgroups WHERE run_id = ? AND external_id IN (SELECT external_id FROM sync_staged_pgroups WHERE run_id = ?)`,
			[]any{snapshot, runID}},
		{"graph", `DELETE FROM sync_staged_pgroups WHERE run_id = ? AND removed`, []any{runID}},
		{"graph", `UPDATE sync_staged_pgroups SET run_id = ? WHERE run_id = ?`, []any{snapshot, runID}},
	}
	for _, st := range steps {
		if _, err := s.exec(ctx, tx, st.q, st.args...); err != nil {
			return fmt.Errorf("fold %s into the snapshot: %w", st.what, err)
		}
	}
	return s.deleteRunRows(ctx, tx, runID)
}
