package directory

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

const runCols = `id, profile_id, profile_name, provider, directory_key, trigger, dry_run, status, phase,
	error, workflow_id, temporal_run_id, started_at, finished_at, source_document_id, fetch_cursor,
	fetch_done, apply_step, apply_cursor, counts`

// runReadCols are what a read of a run adds to runCols: how it read its
// source, which the run decides once it starts (SetRunMode).
const runReadCols = runCols + `, sync_mode, revert_of`

// finalStatuses end a run; nothing may move a run out of one.
var finalStatuses = []string{RunSucceeded, RunPartial, RunFailed, RunCancelled, RunBlocked, RunSkipped}

// IsFinalRunStatus reports whether a run in status st has ended.
func IsFinalRunStatus(st string) bool {
	for _, f := range finalStatuses {
		if st == f {
			return true
		}
	}
	return false
}

// finalStatusList is the SQL list of the final statuses, constants only.
func finalStatusList() string {
	return "'" + strings.Join(finalStatuses, "', '") + "'"
}

func fixRun(r *Run) error {
	r.StartedAt = utc(r.StartedAt)
	r.FinishedAt = utcPtr(r.FinishedAt)
	r.Counts = RunCounts{}
	if r.CountsJSON != "" {
		if err := json.Unmarshal([]byte(r.CountsJSON), &r.Counts); err != nil {
			return fmt.Errorf("run %s: counts: %w", r.ID, err)
		}
	}
	return nil
}

// CreateRun inserts r; an existing run of the same id is left as it is.
func (s *SQLStore) CreateRun(ctx context.Context, r *Run) error {
	if r.ID == "" {
		r.ID = newID()
	}
	if r.Status == "" {
		r.Status = RunRunning
	}
	if r.Phase == "" {
		r.Phase = PhaseFetch
	}
	r.StartedAt = s.orNow(r.StartedAt)
	r.FinishedAt = utcPtr(r.FinishedAt)
	counts, err := json.Marshal(r.Counts)
	if err != nil {
		return fmt.Errorf("create run %s: counts: %w", r.ID, err)
	}
	r.CountsJSON = string(counts)
	_, err = s.exec(ctx, s.db, `INSERT INTO sync_runs (`+runCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		r.ID, r.ProfileID, r.ProfileName, r.Provider, r.DirectoryKey, r.Trigger, r.DryRun, r.Status, r.Phase,
		r.Error, r.WorkflowID, r.TemporalRunID, r.StartedAt, r.FinishedAt, r.SourceDocumentID, r.FetchCursor,
		r.FetchDone, r.ApplyStep, r.ApplyCursor, r.CountsJSON)
	if err != nil {
		return dbErr("create run "+r.ID, err)
	}
	return nil
}

func (s *SQLStore) GetRun(ctx context.Context, id string) (*Run, error) {
	var r Run
	if err := s.get(ctx, s.db, &r, `SELECT `+runReadCols+` FROM sync_runs WHERE id = ?`, id); err != nil {
		return nil, dbErr("run "+id, err)
	}
	if err := fixRun(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ListRuns lists runs newest first.
func (s *SQLStore) ListRuns(ctx context.Context, f RunFilter, opt ListOptions) (Page[Run], error) {
	c, err := decodeCursor(opt.Cursor)
	if err != nil {
		return Page[Run]{}, err
	}
	limit := pageLimit(opt)
	var w where
	if f.ProfileID != "" {
		w.add("profile_id = ?", f.ProfileID)
	}
	if f.Status != "" {
		w.add("status = ?", f.Status)
	}
	if c != nil {
		w.after(true, "started_at, id", c.T, c.ID)
	}
	var runs []Run
	if err := s.sel(ctx, s.db, &runs, `SELECT `+runReadCols+` FROM sync_runs`+w.String()+
		` ORDER BY started_at DESC, id DESC LIMIT ?`, append(w.args, limit+1)...); err != nil {
		return Page[Run]{}, fmt.Errorf("list runs: %w", err)
	}
	for i := range runs {
		if err := fixRun(&runs[i]); err != nil {
			return Page[Run]{}, err
		}
	}
	return finishPage(runs, limit, func(r *Run) cursor { return cursor{T: r.StartedAt, ID: r.ID} }), nil
}

func (s *SQLStore) LastRun(ctx context.Context, profileID string) (*Run, error) {
	var r Run
	if err := s.get(ctx, s.db, &r, `SELECT `+runCols+` FROM sync_runs WHERE profile_id = ?
		ORDER BY started_at DESC, id DESC LIMIT 1`, profileID); err != nil {
		return nil, dbErr("last run of profile "+profileID, err)
	}
	if err := fixRun(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// LastRuns implements Store: a listing of profiles shows each one's last
// run, and a query per profile made a page of them N+1 queries.
func (s *SQLStore) LastRuns(ctx context.Context, profileIDs []string) (map[string]*Run, error) {
	out := map[string]*Run{}
	if len(profileIDs) == 0 {
		return out, nil
	}
	q, args, err := sqlx.In(`SELECT `+runCols+` FROM sync_runs r WHERE r.profile_id IN (?)
  AND NOT EXISTS (SELECT 1 FROM sync_runs o WHERE o.profile_id = r.profile_id
                  AND (o.started_at > r.started_at OR (o.started_at = r.started_at AND o.id > r.id)))`, profileIDs)
	if err != nil {
		return nil, fmt.Errorf("last runs: %w", err)
	}
	var rows []Run
	if err := s.sel(ctx, s.db, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("last runs: %w", err)
	}
	for i := range rows {
		if err := fixRun(&rows[i]); err != nil {
			return nil, err
		}
		out[rows[i].ProfileID] = &rows[i]
	}
	return out, nil
}

// SetRunStatus records a status. A run that has ended keeps its final
// status against a late non-final write (a workflow activity reporting
// "running" after the API cancelled it); such a write is ignored, not an
// error.
func (s *SQLStore) SetRunStatus(ctx context.Context, id, status, phase, errMsg string, at time.Time) error {
	if status == "" {
		return fmt.Errorf("set run %s status: status is required", id)
	}
	at = s.orNow(at)
	set := "status = ?, phase = CASE WHEN ? = '' THEN phase ELSE ? END, error = ?"
	args := []any{status, phase, phase, errMsg}
	cond := "id = ?"
	if IsFinalRunStatus(status) {
		set += ", finished_at = ?"
		args = append(args, at)
	} else {
		cond += " AND status NOT IN (" + finalStatusList() + ")"
	}
	args = append(args, id)
	n, err := s.exec(ctx, s.db, `UPDATE sync_runs SET `+set+` WHERE `+cond, args...)
	if err != nil {
		return fmt.Errorf("set run %s status: %w", id, err)
	}
	if n == 0 {
		ok, err := s.exists(ctx, s.db, `SELECT 1 FROM sync_runs WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("set run %s status: %w", id, err)
		}
		if !ok {
			return fmt.Errorf("run %s: %w", id, ErrNotFound)
		}
	}
	return nil
}

// ListChanges lists the ledger of a run in the order it was written.
func (s *SQLStore) ListChanges(ctx context.Context, runID, action string, opt ListOptions) (Page[Change], error) {
	c, err := decodeCursor(opt.Cursor)
	if err != nil {
		return Page[Change]{}, err
	}
	limit := pageLimit(opt)
	var w where
	w.add("run_id = ?", runID)
	if action != "" {
		w.add("action = ?", action)
	}
	if c != nil {
		w.after(false, "id", c.N)
	}
	var chs []Change
	if err := s.sel(ctx, s.db, &chs, `SELECT id, run_id, subject_type, subject_id, username, action, reason, changes, at
		FROM change_ledger`+w.String()+` ORDER BY id LIMIT ?`, append(w.args, limit+1)...); err != nil {
		return Page[Change]{}, fmt.Errorf("list changes of run %s: %w", runID, err)
	}
	for i := range chs {
		ch := &chs[i]
		ch.At = utc(ch.At)
		if ch.ChangesJSON != "" && ch.ChangesJSON != "{}" {
			if err := json.Unmarshal([]byte(ch.ChangesJSON), &ch.Changes); err != nil {
				return Page[Change]{}, fmt.Errorf("change %d: %w", ch.ID, err)
			}
		}
		if ch.Changes == nil {
			ch.Changes = map[string]FieldChange{}
		}
	}
	return finishPage(chs, limit, func(ch *Change) cursor { return cursor{N: ch.ID} }), nil
}
