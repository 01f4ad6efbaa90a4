package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usersync/usersync/rules"
	"github.com/usersync/usersync/schema"
)

// SyncEngine is the set-based part of a run: the fetched pages go to
// staging tables keyed by run id, the plan compares staging with the
// directory in SQL, and apply executes the plan in batches. Every write
// commits together with the progress it represents (fetch cursor, apply
// step and cursor, counts) so that a resumed activity neither skips nor
// repeats work.
type SyncEngine interface {
	// SetRunSource fixes the stored document a run reads (a CSV copy).
	SetRunSource(ctx context.Context, runID, documentID string) error
	// SaveFetchedPage stages one page and records the cursor of the next
	// page (done when it was the last) in one transaction. A page written
	// twice (a replay after a crash) changes nothing. It returns the number
	// of users staged so far.
	SaveFetchedPage(ctx context.Context, runID string, page *FetchedPage, next string, done bool) (int, error)
	// ResetFetch drops what a run staged and rewinds its cursor: the
	// provider no longer accepts the saved cursor.
	ResetFetch(ctx context.Context, runID string) error
	// ExistingExternalIDs tells which of ids already have a user in the directory.
	ExistingExternalIDs(ctx context.Context, directoryKey string, ids []string) (map[string]bool, error)
	// Plan compares the staged users with the directory and records what
	// apply will do. It runs only after a complete fetch.
	Plan(ctx context.Context, runID string, in PlanInput) (*PlanOutcome, error)
	// ApplyBatch executes the next batch of the plan and returns whether
	// the plan is complete, with the run's counts so far.
	ApplyBatch(ctx context.Context, runID string, in ApplyInput) (bool, RunCounts, error)
	// DropRunData removes the staging and plan rows of a finished run.
	DropRunData(ctx context.Context, runID string) error
	// NextStagedGroup is the first staged group of the run after "after"
	// (in external id order): the fetch reads members group by group.
	NextStagedGroup(ctx context.Context, runID, after string) (string, bool, error)
}

// StagedUser is a fetched user ready for staging: mapped, checked and hashed.
type StagedUser struct {
	ExternalID   string
	Line         int
	Username     string
	FirstName    string
	LastName     string
	Email        string
	Active       bool
	ManagerRef   string // the manager's external id, or else their username
	Attributes   map[string]string
	PasswordHash string
	ContentHash  string
	Invalid      string // why the record cannot be used, "" when it can
}

// StagedGroup is a provider group that group sync keeps.
type StagedGroup struct {
	ExternalID string
	Name       string
}

// StagedMember is a membership of a kept group.
type StagedMember struct {
	GroupExternalID string
	UserExternalID  string
}

// FetchedPage is what one provider page adds to staging.
type FetchedPage struct {
	Users   []StagedUser
	Groups  []StagedGroup
	Members []StagedMember
}

// PlanInput parameterises Plan.
type PlanInput struct {
	DirectoryKey string
	DryRun       bool // a dry run records the planned numbers as the run's counts
}

// PlanOutcome is what the plan found, with the numbers the guard and the
// licence rules need.
type PlanOutcome struct {
	Counts            RunCounts // the planned numbers
	ActiveInDirectory int       // active users of the profile's directory now
	ActiveTotal       int       // active users of all directories now (licence)
}

// ApplyInput parameterises ApplyBatch.
type ApplyInput struct {
	DirectoryKey string
	Connection   string // profile name, for the audit log
	GroupSync    bool   // memberships follow the provider
	OrgChart     bool   // managers are set
	BatchSize    int    // objects per batch, default 1000
}

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
)

// syncedActions are the plan actions of users that are in the directory and
// in the source after apply: the ones whose managers and memberships follow.
const syncedActions = "('create', 'update', 'reenable', 'unchanged')"

// Apply steps, in order. Disabling comes last and in one transaction, so a
// run cancelled at any point before it disables nobody.
const (
	stepCreate  = "create"
	stepUpdate  = "update"
	stepSkip    = "skip"
	stepManager = "manager"
	stepGroup   = "group"
	stepMember  = "member"
	stepDisable = "disable"
	stepDone    = "done"
)

var stepOrder = []string{stepCreate, stepUpdate, stepSkip, stepManager, stepGroup, stepMember, stepDisable, stepDone}

func nextStep(step string, in ApplyInput) string {
	for i, s := range stepOrder {
		if s != step {
			continue
		}
		for _, n := range stepOrder[i+1:] {
			if (n == stepManager && !in.OrgChart) || ((n == stepGroup || n == stepMember) && !in.GroupSync) {
				continue
			}
			return n
		}
	}
	return stepDone
}

// SetRunSource implements SyncEngine.
func (s *SQLStore) SetRunSource(ctx context.Context, runID, documentID string) error {
	n, err := s.exec(ctx, s.db, `UPDATE sync_runs SET source_document_id = ? WHERE id = ?`, documentID, runID)
	if err != nil {
		return fmt.Errorf("set run source: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("run %s: %w", runID, ErrNotFound)
	}
	return nil
}

func (s *SQLStore) loadCounts(ctx context.Context, tx *sqlx.Tx, runID string) (RunCounts, error) {
	var raw string
	if err := s.get(ctx, tx, &raw, `SELECT counts FROM sync_runs WHERE id = ?`, runID); err != nil {
		return RunCounts{}, dbErr("run "+runID, err)
	}
	var c RunCounts
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			return RunCounts{}, fmt.Errorf("run %s counts: %w", runID, err)
		}
	}
	return c, nil
}

func countsJSON(c RunCounts) string {
	b, _ := json.Marshal(c) //nolint:errchkjson // plain struct
	return string(b)
}

func attrsJSON(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) //nolint:errchkjson // map of strings; keys come out sorted
	return string(b)
}

func parseAttrs(s string) map[string]string {
	m := map[string]string{}
	if s != "" {
		json.Unmarshal([]byte(s), &m) //nolint:errcheck // written by us; a bad value reads as empty
	}
	return m
}

// SaveFetchedPage implements SyncEngine.
func (s *SQLStore) SaveFetchedPage(ctx context.Context, runID string, page *FetchedPage, next string, done bool) (int, error) {
	var total int
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		userRows := make([][]any, 0, len(page.Users))
		for _, u := range page.Users {
			userRows = append(userRows, []any{runID, u.ExternalID, u.Line, u.Username, strings.ToLower(u.Username),
				u.FirstName, u.LastName, u.Email, u.Active, u.ManagerRef, strings.ToLower(u.ManagerRef), attrsJSON(u.Attributes), u.PasswordHash,
				u.ContentHash, u.Invalid})
		}
		// A user seen again (a replayed page, a second group, a duplicate
		// row the source already marked invalid) keeps its first record.
		added, err := s.insertRows(ctx, tx, "sync_staged_users",
			[]string{"run_id", "external_id", "line", "username", "username_lower", "first_name", "last_name", "email",
				"active", "manager_ref", "manager_ref_lower", "attributes", "password_hash", "content_hash", "invalid"},
			userRows, "ON CONFLICT DO NOTHING")
		if err != nil {
			return fmt.Errorf("stage users: %w", err)
		}
		groupRows := make([][]any, 0, len(page.Groups))
		for _, g := range page.Groups {
			groupRows = append(groupRows, []any{runID, g.ExternalID, g.Name})
		}
		if _, err := s.insertRows(ctx, tx, "sync_staged_groups", []string{"run_id", "external_id", "name"},
			groupRows, "ON CONFLICT DO NOTHING"); err != nil {
			return fmt.Errorf("stage groups: %w", err)
		}
		memberRows := make([][]any, 0, len(page.Members))
		for _, m := range page.Members {
			memberRows = append(memberRows, []any{runID, m.GroupExternalID, m.UserExternalID})
		}
		if _, err := s.insertRows(ctx, tx, "sync_staged_members", []string{"run_id", "group_external_id", "user_external_id"},
			memberRows, "ON CONFLICT DO NOTHING"); err != nil {
			return fmt.Errorf("stage memberships: %w", err)
		}
		c, err := s.loadCounts(ctx, tx, runID)
		if err != nil {
			return err
		}
		c.Fetched += int(added)
		total = c.Fetched
		_, err = s.exec(ctx, tx, `UPDATE sync_runs SET fetch_cursor = ?, fetch_done = ?, counts = ? WHERE id = ?`,
			next, done, countsJSON(c), runID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("save fetched page: %w", err)
	}
	return total, nil
}

// ResetFetch implements SyncEngine.
func (s *SQLStore) ResetFetch(ctx context.Context, runID string) error {
	return s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.deleteRunRows(ctx, tx, runID); err != nil {
			return err
		}
		c, err := s.loadCounts(ctx, tx, runID)
		if err != nil {
			return err
		}
		c.Fetched = 0
		_, err = s.exec(ctx, tx, `UPDATE sync_runs SET fetch_cursor = '', fetch_done = FALSE, counts = ? WHERE id = ?`,
			countsJSON(c), runID)
		return err
	})
}

func (s *SQLStore) deleteRunRows(ctx context.Context, q querier, runID string) error {
	for _, t := range []string{"sync_staged_users", "sync_staged_groups", "sync_staged_members", "sync_plan"} {
		if _, err := s.exec(ctx, q, `DELETE FROM `+t+` WHERE run_id = ?`, runID); err != nil {
			return fmt.Errorf("clear %s: %w", t, err)
		}
	}
	return nil
}

// DropRunData implements SyncEngine.
func (s *SQLStore) DropRunData(ctx context.Context, runID string) error {
	return s.InTx(ctx, func(tx *sqlx.Tx) error { return s.deleteRunRows(ctx, tx, runID) })
}

// NextStagedGroup implements SyncEngine.
func (s *SQLStore) NextStagedGroup(ctx context.Context, runID, after string) (string, bool, error) {
	var ids []string
	if err := s.sel(ctx, s.db, &ids, `SELECT external_id FROM sync_staged_groups WHERE run_id = ? AND external_id > ?
ORDER BY external_id LIMIT 1`, runID, after); err != nil {
		return "", false, fmt.Errorf("next staged group: %w", err)
	}
	if len(ids) == 0 {
		return "", false, nil
	}
	return ids[0], true, nil
}

// ExistingExternalIDs implements SyncEngine.
func (s *SQLStore) ExistingExternalIDs(ctx context.Context, directoryKey string, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	q, args, err := sqlx.In(`SELECT external_id FROM users WHERE directory_key = ? AND external_id IN (?)`, directoryKey, ids)
	if err != nil {
		return nil, fmt.Errorf("existing users: %w", err)
	}
	var found []string
	if err := s.sel(ctx, s.db, &found, q, args...); err != nil {
		return nil, fmt.Errorf("existing users: %w", err)
	}
	for _, id := range found {
		out[id] = true
	}
	return out, nil
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

// Plan implements SyncEngine.
func (s *SQLStore) Plan(ctx context.Context, runID string, in PlanInput) (*PlanOutcome, error) {
	out := &PlanOutcome{}
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		var run struct {
			Step   string `db:"apply_step"`
			Cursor string `db:"apply_cursor"`
		}
		if err := s.get(ctx, tx, &run, `SELECT apply_step, apply_cursor FROM sync_runs WHERE id = ?`, runID); err != nil {
			return dbErr("run "+runID, err)
		}
		// Once apply has begun the plan is fixed: re-planning against a half
		// applied directory would describe another run.
		started := run.Step != "" && (run.Step != stepCreate || run.Cursor != "")
		if !started {
			if err := s.analyze(ctx, tx, "sync_staged_users", "sync_staged_groups", "sync_staged_members"); err != nil {
				return err
			}
			if err := s.buildPlan(ctx, tx, runID, in.DirectoryKey); err != nil {
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
			}
		}
		out.Counts = planned
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
		c.Unchanged, c.Skipped, c.Conflicts = planned.Unchanged, planned.Skipped, planned.Conflicts
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

// analyze refreshes the planner's statistics of tables a run has just
// filled in bulk: without it Postgres plans the joins of plan and apply for
// the nearly empty tables it last saw, and a large run crawls.
func (s *SQLStore) analyze(ctx context.Context, q querier, tables ...string) error {
	if s.db.Dialect != schema.Postgres {
		return nil
	}
	for _, t := range tables {
		if _, err := s.exec(ctx, q, "ANALYZE "+t); err != nil {
			return fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return nil
}

// buildPlan records one plan row per staged user and one per departed user.
func (s *SQLStore) buildPlan(ctx context.Context, tx *sqlx.Tx, runID, dir string) error {
	if _, err := s.exec(ctx, tx, `DELETE FROM sync_plan WHERE run_id = ?`, runID); err != nil {
		return fmt.Errorf("clear plan: %w", err)
	}
	// m is the directory user a staged user is: the one with its external
	// id, or else a user of this directory without one and with its
	// username (a local account switched to this directory, adopted).
	// o is anyone else holding the username; d flags usernames that two
	// records of the source share.
	// Plain equi-joins throughout: the planner hash-joins them, where a
	// correlated subquery per staged row turns into a nested loop on a
	// large directory. m1 matches by external id, m2 (only without m1) by
	// username among the directory's users that have no external id.
	_, err := s.exec(ctx, tx, `
INSERT INTO sync_plan (run_id, external_id, user_id, action, reason)
SELECT s.run_id, s.external_id, COALESCE(m1.id, m2.id),
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
  END,
  CASE
    WHEN s.invalid <> '' THEN s.invalid
    WHEN d.n IS NOT NULL THEN 'username "' || s.username || '" is used by ' || CAST(d.n AS TEXT) || ' users of the source'
    WHEN o.id IS NOT NULL AND o.directory_key = 'local' THEN 'username "' || s.username || '" belongs to a local account'
    WHEN o.id IS NOT NULL AND o.directory_key = ? THEN 'username "' || s.username || '" belongs to another user of this directory'
    WHEN o.id IS NOT NULL THEN 'username "' || s.username || '" belongs to a user of another directory (' || o.directory_key || ')'
    WHEN NOT s.active AND COALESCE(m1.status, m2.status) = 'active' THEN 'inactive in the provider'
    ELSE ''
  END
FROM sync_staged_users s
LEFT JOIN users m1 ON m1.directory_key = ? AND m1.external_id = s.external_id
LEFT JOIN users m2 ON m1.id IS NULL AND m2.directory_key = ? AND m2.external_id IS NULL AND m2.username_lower = s.username_lower
LEFT JOIN users o ON o.username_lower = s.username_lower AND o.id <> COALESCE(m1.id, m2.id, '')
LEFT JOIN (SELECT username_lower, COUNT(*) AS n FROM sync_staged_users
           WHERE run_id = ? AND invalid = '' GROUP BY username_lower HAVING COUNT(*) > 1) d
       ON d.username_lower = s.username_lower AND s.invalid = ''
WHERE s.run_id = ?`, dir, dir, dir, runID, runID)
	if err != nil {
		return fmt.Errorf("plan users: %w", err)
	}
	// The departures' anti-join reads what was just inserted.
	if err := s.analyze(ctx, tx, "sync_plan"); err != nil {
		return err
	}
	// Departed: active users of this directory that the complete fetch did
	// not bring (Plan only runs after a complete fetch).
	_, err = s.exec(ctx, tx, `
INSERT INTO sync_plan (run_id, external_id, user_id, action, reason)
SELECT ?, COALESCE(u.external_id, 'user:' || u.id), u.id, 'disable', 'not in the source any more'
FROM users u
WHERE u.directory_key = ? AND u.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM sync_plan p WHERE p.run_id = ? AND p.user_id = u.id)`, runID, dir, runID)
	if err != nil {
		return fmt.Errorf("plan departures: %w", err)
	}
	return nil
}

// applyState is one batch of apply: what it has to record besides its
// own writes.
type applyState struct {
	runID   string
	in      ApplyInput
	at      time.Time
	counts  RunCounts
	entries []ledgerEntry
}

type ledgerEntry struct {
	subjectType string
	subjectID   string
	username    string // the user's username, or the group's name
	action      string
	reason      string
	changes     map[string]rules.Change
}

// ApplyBatch implements SyncEngine.
func (s *SQLStore) ApplyBatch(ctx context.Context, runID string, in ApplyInput) (bool, RunCounts, error) {
	if in.BatchSize <= 0 {
		in.BatchSize = 1000
	}
	var done bool
	var counts RunCounts
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		var run struct {
			Step   string `db:"apply_step"`
			Cursor string `db:"apply_cursor"`
		}
		if err := s.get(ctx, tx, &run, `SELECT apply_step, apply_cursor FROM sync_runs WHERE id = ?`, runID); err != nil {
			return dbErr("run "+runID, err)
		}
		c, err := s.loadCounts(ctx, tx, runID)
		if err != nil {
			return err
		}
		st := &applyState{runID: runID, in: in, at: s.Now(), counts: c}
		step, cursor := run.Step, run.Cursor
		switch step {
		case "":
			return errors.New("apply before plan")
		case stepDone:
			done, counts = true, c
			return nil
		}
		var next string
		var finished bool
		switch step {
		case stepCreate:
			next, finished, err = s.applyCreate(ctx, tx, st, cursor)
		case stepUpdate:
			next, finished, err = s.applyUpdate(ctx, tx, st, cursor)
		case stepSkip:
			next, finished, err = s.applySkip(ctx, tx, st, cursor)
		case stepManager:
			next, finished, err = s.applyManagers(ctx, tx, st, cursor)
		case stepGroup:
			next, finished, err = s.applyGroups(ctx, tx, st, cursor)
		case stepMember:
			next, finished, err = s.applyMembers(ctx, tx, st, cursor)
		case stepDisable:
			finished, err = true, s.applyDisable(ctx, tx, st)
		default:
			return fmt.Errorf("unknown apply step %q", step)
		}
		if err != nil {
			return fmt.Errorf("apply %s: %w", step, err)
		}
		if err := s.record(ctx, tx, st); err != nil {
			return err
		}
		if finished {
			step, next = nextStep(step, in), ""
		}
		done, counts = step == stepDone, st.counts
		_, err = s.exec(ctx, tx, `UPDATE sync_runs SET phase = 'apply', apply_step = ?, apply_cursor = ?, counts = ? WHERE id = ?`,
			step, next, countsJSON(st.counts), runID)
		return err
	})
	if err != nil {
		return false, RunCounts{}, err
	}
	return done, counts, nil
}

// batchKeys returns the plan keys of the next batch of actions after cursor.
func (s *SQLStore) batchKeys(ctx context.Context, tx *sqlx.Tx, st *applyState, actions, cursor string) (lo, hi string, ok bool, err error) {
	var keys []string
	err = s.sel(ctx, tx, &keys, `SELECT external_id FROM sync_plan WHERE run_id = ? AND action IN `+actions+
		` AND external_id > ? ORDER BY external_id LIMIT ?`, st.runID, cursor, st.in.BatchSize)
	if err != nil || len(keys) == 0 {
		return "", "", false, err
	}
	return cursor, keys[len(keys)-1], true, nil
}

type stagedRow struct {
	ExternalID string `db:"external_id"`
	UserID     string `db:"user_id"`
	Action     string `db:"action"`
	Reason     string `db:"reason"`
	Line       int    `db:"line"`
	Username   string `db:"username"`
	FirstName  string `db:"first_name"`
	LastName   string `db:"last_name"`
	Email      string `db:"email"`
	Attributes string `db:"attributes"`
	// The directory's values before the batch.
	OldUsername   string `db:"old_username"`
	OldFirstName  string `db:"old_first_name"`
	OldLastName   string `db:"old_last_name"`
	OldEmail      string `db:"old_email"`
	OldAttributes string `db:"old_attributes"`
}

func (r *stagedRow) record() rules.Record {
	return rules.Record{Username: r.Username, FirstName: r.FirstName, LastName: r.LastName, Email: r.Email, Attributes: parseAttrs(r.Attributes)}
}

func (r *stagedRow) oldRecord() rules.Record {
	return rules.Record{Username: r.OldUsername, FirstName: r.OldFirstName, LastName: r.OldLastName, Email: r.OldEmail, Attributes: parseAttrs(r.OldAttributes)}
}

const planRange = `p.run_id = ? AND p.action IN %s AND p.external_id > ? AND p.external_id <= ?`

func (s *SQLStore) newIDExpr() string {
	if s.db.Dialect == schema.Postgres {
		return "gen_random_uuid()::text"
	}
	return "lower(hex(randomblob(16)))"
}

func (s *SQLStore) applyCreate(ctx context.Context, tx *sqlx.Tx, st *applyState, cursor string) (string, bool, error) {
	lo, hi, ok, err := s.batchKeys(ctx, tx, st, "('create')", cursor)
	if err != nil || !ok {
		return "", true, err
	}
	var staged []stagedRow
	if err := s.sel(ctx, tx, &staged, `SELECT p.external_id, s.username, s.first_name, s.last_name, s.email, s.attributes
FROM sync_plan p JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id
WHERE `+fmt.Sprintf(planRange, "('create')")+` ORDER BY p.external_id`, st.runID, lo, hi); err != nil {
		return "", false, err
	}
	// A username taken between plan and apply (a user created through the
	// API meanwhile) makes the insert of that row do nothing; RETURNING
	// tells which rows really went in, and only those are recorded.
	var created []struct {
		ID         string `db:"id"`
		ExternalID string `db:"external_id"`
	}
	err = s.sel(ctx, tx, &created, `INSERT INTO users (id, directory_key, external_id, username, username_lower,
  first_name, last_name, email, status, password_hash, attributes, content_hash, created_at, updated_at)
SELECT `+s.newIDExpr()+`, ?, s.external_id, s.username, s.username_lower, s.first_name, s.last_name, s.email,
  'active', s.password_hash, s.attributes, s.content_hash, ?, ?
FROM sync_plan p JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id
WHERE `+fmt.Sprintf(planRange, "('create')")+`
ON CONFLICT DO NOTHING
RETURNING id, external_id`, st.in.DirectoryKey, st.at, st.at, st.runID, lo, hi)
	if err != nil {
		return "", false, err
	}
	ids := make(map[string]string, len(created))
	for _, c := range created {
		ids[c.ExternalID] = c.ID
	}
	for i := range staged {
		r := &staged[i]
		id, ok := ids[r.ExternalID]
		if !ok {
			st.counts.Conflicts++
			st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.ExternalID, username: r.Username,
				action: "conflict", reason: fmt.Sprintf("username %q was taken while the run applied", r.Username)})
			continue
		}
		st.counts.Created++
		st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: id, username: r.Username,
			action: "created", changes: rules.Diff(rules.Record{}, r.record())})
	}
	return hi, false, nil
}

func (s *SQLStore) applyUpdate(ctx context.Context, tx *sqlx.Tx, st *applyState, cursor string) (string, bool, error) {
	const acts = "('update', 'reenable')"
	lo, hi, ok, err := s.batchKeys(ctx, tx, st, acts, cursor)
	if err != nil || !ok {
		return "", true, err
	}
	var rows []stagedRow
	if err := s.sel(ctx, tx, &rows, `SELECT p.external_id, p.action, u.id AS user_id,
  s.username, s.first_name, s.last_name, s.email, s.attributes,
  u.username AS old_username, u.first_name AS old_first_name, u.last_name AS old_last_name,
  u.email AS old_email, u.attributes AS old_attributes
FROM sync_plan p
JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id
JOIN users u ON u.id = p.user_id
WHERE `+fmt.Sprintf(planRange, acts)+` ORDER BY p.external_id`, st.runID, lo, hi); err != nil {
		return "", false, err
	}
	// external_id is set too: an adopted local account gets its identity.
	if _, err := s.exec(ctx, tx, `UPDATE users SET external_id = s.external_id, username = s.username,
  username_lower = s.username_lower, first_name = s.first_name, last_name = s.last_name, email = s.email,
  attributes = s.attributes, content_hash = s.content_hash, status = 'active', disabled_at = NULL, updated_at = ?
FROM sync_plan p JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id
WHERE users.id = p.user_id AND `+fmt.Sprintf(planRange, acts), st.at, st.runID, lo, hi); err != nil {
		return "", false, err
	}
	for i := range rows {
		r := &rows[i]
		e := ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username, action: "updated",
			changes: rules.Diff(r.oldRecord(), r.record())}
		if r.Action == actReenable {
			e.action = "reenabled"
			e.changes["status"] = rules.Change{From: StatusDisabled, To: StatusActive}
			st.counts.Reenabled++
		} else {
			st.counts.Updated++
		}
		st.entries = append(st.entries, e)
	}
	return hi, false, nil
}

func (s *SQLStore) applySkip(ctx context.Context, tx *sqlx.Tx, st *applyState, cursor string) (string, bool, error) {
	const acts = "('skipped', 'conflict')"
	lo, hi, ok, err := s.batchKeys(ctx, tx, st, acts, cursor)
	if err != nil || !ok {
		return "", true, err
	}
	var rows []stagedRow
	if err := s.sel(ctx, tx, &rows, `SELECT p.external_id, p.action, COALESCE(p.user_id, '') AS user_id, p.reason, s.line, s.username
FROM sync_plan p JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id
WHERE `+fmt.Sprintf(planRange, acts)+` ORDER BY p.external_id`, st.runID, lo, hi); err != nil {
		return "", false, err
	}
	for _, r := range rows {
		reason := r.Reason
		if r.Line > 0 {
			reason = fmt.Sprintf("line %d: %s", r.Line, reason)
		}
		subject := r.UserID
		if subject == "" {
			subject = r.ExternalID
		}
		st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: subject, username: r.Username,
			action: r.Action, reason: reason})
	}
	return hi, false, nil
}

// managerJoins find the manager a staged user s names, in the directory
// bound twice: m1 by external id (Graph, Okta ids), else m2 by username (a
// CSV manager column, an Okta login in managerId). Equi-joins, for the
// same reason as the plan's.
const managerJoins = `
LEFT JOIN users m1 ON s.manager_ref <> '' AND m1.directory_key = ? AND m1.external_id = s.manager_ref
LEFT JOIN users m2 ON s.manager_ref <> '' AND m1.id IS NULL AND m2.directory_key = ? AND m2.username_lower = s.manager_ref_lower`

func (s *SQLStore) applyManagers(ctx context.Context, tx *sqlx.Tx, st *applyState, cursor string) (string, bool, error) {
	lo, hi, ok, err := s.batchKeys(ctx, tx, st, syncedActions, cursor)
	if err != nil || !ok {
		return "", true, err
	}
	dir := st.in.DirectoryKey
	var rows []struct {
		UserID       string  `db:"user_id"`
		Username     string  `db:"username"`
		ManagerRef   string  `db:"manager_ref"`
		Current      *string `db:"current_id"`
		CurrentName  string  `db:"current_name"`
		Resolved     *string `db:"resolved_id"`
		ResolvedName string  `db:"resolved_name"`
	}
	if err := s.sel(ctx, tx, &rows, `SELECT u.id AS user_id, u.username, s.manager_ref,
  u.manager_id AS current_id, COALESCE(c.username, '') AS current_name,
  COALESCE(m1.id, m2.id) AS resolved_id, COALESCE(m1.username, m2.username, '') AS resolved_name
FROM sync_plan p
JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id
JOIN users u ON u.directory_key = ? AND u.external_id = p.external_id
LEFT JOIN users c ON c.id = u.manager_id`+managerJoins+`
WHERE `+fmt.Sprintf(planRange, syncedActions)+` ORDER BY p.external_id`, dir, dir, dir, st.runID, lo, hi); err != nil {
		return "", false, err
	}
	// One statement sets every manager of the batch that differs; an
	// unresolved reference clears the field rather than keep a guess.
	if _, err := s.exec(ctx, tx, `UPDATE users SET manager_id = COALESCE(m1.id, m2.id), updated_at = ?
FROM sync_plan p
JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id`+managerJoins+`
WHERE users.directory_key = ? AND users.external_id = p.external_id AND `+fmt.Sprintf(planRange, syncedActions)+`
  AND users.manager_id IS DISTINCT FROM COALESCE(m1.id, m2.id)`, st.at, dir, dir, dir, st.runID, lo, hi); err != nil {
		return "", false, err
	}
	for _, r := range rows {
		if r.ManagerRef != "" && r.Resolved == nil {
			st.counts.ManagersUnresolved++
			st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
				action: "manager_unresolved", reason: fmt.Sprintf("manager %q is not a user of this directory", r.ManagerRef)})
		}
		if samePtr(r.Current, r.Resolved) {
			continue
		}
		if r.Resolved != nil {
			st.counts.ManagersLinked++
		}
		st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
			action: "manager_linked", changes: map[string]rules.Change{"manager": {From: r.CurrentName, To: r.ResolvedName}}})
	}
	return hi, false, nil
}

func (s *SQLStore) applyGroups(ctx context.Context, tx *sqlx.Tx, st *applyState, cursor string) (string, bool, error) {
	var rows []struct {
		ExternalID string  `db:"external_id"`
		Name       string  `db:"name"`
		ID         *string `db:"id"`
		OldName    string  `db:"old_name"`
	}
	if err := s.sel(ctx, tx, &rows, `SELECT g.external_id, g.name, d.id, COALESCE(d.name, '') AS old_name
FROM sync_staged_groups g
LEFT JOIN directory_groups d ON d.directory_key = ? AND d.external_id = g.external_id
WHERE g.run_id = ? AND g.external_id > ? ORDER BY g.external_id LIMIT ?`,
		st.in.DirectoryKey, st.runID, cursor, st.in.BatchSize); err != nil {
		return "", false, err
	}
	if len(rows) == 0 {
		return "", true, nil
	}
	var inserts [][]any
	for _, r := range rows {
		switch {
		case r.ID == nil:
			id := newID()
			inserts = append(inserts, []any{id, st.in.DirectoryKey, r.ExternalID, r.Name, st.at, st.at})
			st.counts.GroupsCreated++
			st.entries = append(st.entries, ledgerEntry{subjectType: "group", subjectID: id, username: r.Name, action: "group_created"})
		case r.OldName != r.Name:
			// A renamed provider group keeps its directory group.
			if _, err := s.exec(ctx, tx, `UPDATE directory_groups SET name = ?, updated_at = ? WHERE id = ?`, r.Name, st.at, *r.ID); err != nil {
				return "", false, err
			}
		}
	}
	if _, err := s.insertRows(ctx, tx, "directory_groups",
		[]string{"id", "directory_key", "external_id", "name", "created_at", "updated_at"}, inserts, ""); err != nil {
		return "", false, err
	}
	return rows[len(rows)-1].ExternalID, false, nil
}

func (s *SQLStore) applyMembers(ctx context.Context, tx *sqlx.Tx, st *applyState, cursor string) (string, bool, error) {
	lo, hi, ok, err := s.batchKeys(ctx, tx, st, syncedActions, cursor)
	if err != nil || !ok {
		return "", true, err
	}
	dir := st.in.DirectoryKey
	type pair struct {
		UserID    string `db:"user_id"`
		Username  string `db:"username"`
		GroupID   string `db:"group_id"`
		GroupName string `db:"group_name"`
	}
	var add, remove []pair
	if err := s.sel(ctx, tx, &add, `SELECT u.id AS user_id, u.username, g.id AS group_id, g.name AS group_name
FROM sync_plan p
JOIN users u ON u.directory_key = ? AND u.external_id = p.external_id
JOIN sync_staged_members sm ON sm.run_id = p.run_id AND sm.user_external_id = p.external_id
JOIN directory_groups g ON g.directory_key = ? AND g.external_id = sm.group_external_id
WHERE `+fmt.Sprintf(planRange, syncedActions)+`
  AND NOT EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = g.id AND gm.user_id = u.id)
ORDER BY u.id, g.id`, dir, dir, st.runID, lo, hi); err != nil {
		return "", false, err
	}
	// Every membership a synced user has that the provider does not list
	// goes: local groups and groups that left the filter included.
	if err := s.sel(ctx, tx, &remove, `SELECT u.id AS user_id, u.username, g.id AS group_id, g.name AS group_name
FROM sync_plan p
JOIN users u ON u.directory_key = ? AND u.external_id = p.external_id
JOIN group_members gm ON gm.user_id = u.id
JOIN directory_groups g ON g.id = gm.group_id
WHERE `+fmt.Sprintf(planRange, syncedActions)+`
  AND NOT (g.directory_key = ? AND EXISTS (SELECT 1 FROM sync_staged_members sm
           WHERE sm.run_id = p.run_id AND sm.user_external_id = p.external_id AND sm.group_external_id = g.external_id))
ORDER BY u.id, g.id`, dir, st.runID, lo, hi, dir); err != nil {
		return "", false, err
	}
	rows := make([][]any, 0, len(add))
	for _, a := range add {
		rows = append(rows, []any{a.GroupID, a.UserID, st.at})
		st.counts.MembershipsAdded++
		st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: a.UserID, username: a.Username,
			action: "member_added", reason: fmt.Sprintf("group %q", a.GroupName)})
	}
	if _, err := s.insertRows(ctx, tx, "group_members", []string{"group_id", "user_id", "created_at"}, rows, "ON CONFLICT DO NOTHING"); err != nil {
		return "", false, err
	}
	for _, r := range remove {
		if _, err := s.exec(ctx, tx, `DELETE FROM group_members WHERE group_id = ? AND user_id = ?`, r.GroupID, r.UserID); err != nil {
			return "", false, err
		}
		st.counts.MembershipsRemoved++
		st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
			action: "member_removed", reason: fmt.Sprintf("group %q", r.GroupName)})
	}
	return hi, false, nil
}

// applyDisable disables every user the plan disables in one statement: it
// runs last, so a run stopped before it has disabled nobody.
func (s *SQLStore) applyDisable(ctx context.Context, tx *sqlx.Tx, st *applyState) error {
	var rows []stagedRow
	if err := s.sel(ctx, tx, &rows, `SELECT p.user_id, p.reason, u.username
FROM sync_plan p JOIN users u ON u.id = p.user_id
WHERE p.run_id = ? AND p.action = 'disable' AND u.status = 'active' ORDER BY p.external_id`, st.runID); err != nil {
		return err
	}
	if _, err := s.exec(ctx, tx, `UPDATE users SET status = 'disabled', disabled_at = ?, updated_at = ?
WHERE status = 'active' AND id IN (SELECT user_id FROM sync_plan WHERE run_id = ? AND action = 'disable')`,
		st.at, st.at, st.runID); err != nil {
		return err
	}
	for _, r := range rows {
		st.counts.Disabled++
		st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
			action: "disabled", reason: r.Reason, changes: map[string]rules.Change{"status": {From: StatusActive, To: StatusDisabled}}})
	}
	return nil
}

// auditAction names a ledger action in the audit log.
func auditAction(e ledgerEntry) string {
	switch e.action {
	case "created", "updated", "disabled", "reenabled", "skipped", "conflict":
		return "user_" + e.action
	}
	return e.action
}

// record writes the batch's ledger and audit entries.
func (s *SQLStore) record(ctx context.Context, tx *sqlx.Tx, st *applyState) error {
	if len(st.entries) == 0 {
		return nil
	}
	ledger := make([][]any, 0, len(st.entries))
	audit := make([][]any, 0, len(st.entries))
	for _, e := range st.entries {
		ch := "{}"
		if len(e.changes) > 0 {
			b, _ := json.Marshal(e.changes) //nolint:errchkjson // map of plain structs
			ch = string(b)
		}
		ledger = append(ledger, []any{st.runID, e.subjectType, e.subjectID, e.username, e.action, e.reason, ch, st.at})
		details := e.reason
		if len(e.changes) > 0 {
			fields := make([]string, 0, len(e.changes))
			for k := range e.changes {
				fields = append(fields, k)
			}
			sort.Strings(fields)
			if details != "" {
				details += "; "
			}
			details += "changed: " + strings.Join(fields, ", ")
		}
		audit = append(audit, []any{st.at, CategorySync, auditAction(e), st.in.Connection, st.runID, e.username, details})
	}
	if _, err := s.insertRows(ctx, tx, "change_ledger",
		[]string{"run_id", "subject_type", "subject_id", "username", "action", "reason", "changes", "at"}, ledger, ""); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	if _, err := s.insertRows(ctx, tx, "audit_log",
		[]string{"at", "category", "action", "connection", "run_id", "subject", "details"}, audit, ""); err != nil {
		return fmt.Errorf("write audit: %w", err)
	}
	return nil
}

func samePtr(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
