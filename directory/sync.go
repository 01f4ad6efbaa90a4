package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// SyncEngine is the set-based part of a run: the fetched pages go to
// staging tables keyed by run id, the plan compares staging with the
// directory in SQL, and apply executes the plan in batches. Every write
// commits together with the progress it represents (fetch cursor, apply
// step and cursor, counts) so that a resumed activity neither skips nor
// repeats work.
//
// A run is full or delta. A full run stages the complete source, and
// whatever is not staged has left it. A delta run stages what changed since
// the last successful run of the profile (sync_state), whose staging is
// kept as the snapshot of the complete source: the changed users, the
// users that left (removals), and the changes to the provider's group
// graph. The plan of a delta run reaches exactly the directory a full run
// on the same source would (sync_plan.go says how), and a successful delta
// run folds its changes into the snapshot (sync_state.go).
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

	// Incremental runs (sync_state.go, sync_graph.go).

	// SyncState is what the last successful run of a directory left for
	// the next one, or ErrNotFound.
	SyncState(ctx context.Context, directoryKey string) (*SyncState, error)
	// ForgetSyncState drops a directory's sync state and snapshot: its next
	// run is a full one.
	ForgetSyncState(ctx context.Context, directoryKey string) error
	// SetRunMode fixes how a run reads its source, once: a later call
	// returns the mode the first one fixed. FallBackToFull replaces a delta
	// mode the provider refused by a full one and clears what was staged.
	SetRunMode(ctx context.Context, runID string, m RunMode) (RunMode, error)
	RunMode(ctx context.Context, runID string) (RunMode, error)
	FallBackToFull(ctx context.Context, runID string) error
	// CommitRun makes a succeeded run the base of the next delta run: a
	// full run's staging becomes the snapshot, a delta run's changes are
	// folded into it, and the provider state it read up to is saved.
	CommitRun(ctx context.Context, runID string) error
	// BuildAncestry computes the closure of the run's group graph, once
	// the graph is staged; InScope and the steps below read it.
	BuildAncestry(ctx context.Context, runID string) error
	// InScope tells which of ids are members, at any depth, of one of the
	// selected groups in the run's graph.
	InScope(ctx context.Context, runID string, selected, ids []string) (map[string]bool, error)
	// ResolveDelta works out, once the changes of a delta run are staged,
	// which users the changes to the group graph move: into the scope
	// (their records are then read by id: NextPending), out of it
	// (removals), or between kept groups (restated from the snapshot).
	ResolveDelta(ctx context.Context, runID string, in ResolveInput) error
	// NextPending returns up to limit ids of users the run must read by
	// id, after "after" in id order.
	NextPending(ctx context.Context, runID, after string, limit int) ([]string, error)
	// DeriveGroups stages the kept groups of the run's graph and every
	// staged user's memberships of them, at any depth.
	DeriveGroups(ctx context.Context, runID string) error
	// MissingGroups returns which of ids are not groups of the run's
	// graph (deleted in the provider, or never there), in the order given.
	MissingGroups(ctx context.Context, runID string, ids []string) ([]string, error)
	// StagedManagers returns the manager reference staged for each of ids
	// that runID (a snapshot) staged: a change that does not tell a
	// user's manager keeps this one.
	StagedManagers(ctx context.Context, runID string, ids []string) (map[string]string, error)
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

// GraphGroup is a group of the provider's group graph. A delta run stages
// only groups that changed; Removed marks a deleted one.
type GraphGroup struct {
	ExternalID string
	Name       string
	Kept       bool // group sync keeps it
	Removed    bool
}

// GraphEdge is a direct membership in the provider's group graph; in a
// delta run, Removed marks one that ended.
type GraphEdge struct {
	GroupExternalID  string
	MemberExternalID string
	MemberIsGroup    bool
	Removed          bool
}

// Removal takes a user out of the source in a delta run.
type Removal struct {
	ExternalID string
	Reason     string
}

// FetchedPage is what one provider page adds to staging.
type FetchedPage struct {
	Users   []StagedUser
	Groups  []StagedGroup
	Members []StagedMember
	// The provider's group graph, and users gone (delta).
	GraphGroups []GraphGroup
	GraphEdges  []GraphEdge
	Removals    []Removal
	// SourceState is merged into the provider state the run saves when it
	// succeeds (a delta token, keyed by listing).
	SourceState map[string]string
	// Latest says the page's users are newer than any record of them
	// staged before (a change round, which may list a changed user again
	// later in the round): they replace those records, the last of a page
	// winning. Otherwise the first record of a user is kept (a second
	// group's listing, a duplicate row of a file).
	Latest bool
}

// PlanInput parameterises Plan.
type PlanInput struct {
	DirectoryKey string
	DryRun       bool // a dry run records the planned numbers as the run's counts
	// LicenceLimit caps the active users of all directories (0: none).
	// Disables and updates always apply; creations and re-enables beyond
	// it are refused, each recorded with the reason.
	LicenceLimit int
}

// PlanOutcome is what the plan found, with the numbers the guard and the
// licence rules need.
type PlanOutcome struct {
	Counts            RunCounts // the planned numbers
	ActiveInDirectory int       // active users of the profile's directory now
	ActiveTotal       int       // active users of all directories now (licence)
	// SourceUsers is the number of users in the complete source: what a
	// full run fetched, the snapshot with a delta run's changes.
	SourceUsers int
	Mode        string // full | delta
}

// ApplyInput parameterises ApplyBatch.
type ApplyInput struct {
	DirectoryKey string
	Connection   string // profile name, for the audit log
	GroupSync    bool   // memberships follow the provider
	OrgChart     bool   // managers are set
	BatchSize    int    // objects per batch, default 1000
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

var (
	stagedUserCols = []string{"run_id", "external_id", "line", "username", "username_lower", "first_name", "last_name", "email",
		"active", "manager_ref", "manager_ref_lower", "attributes", "password_hash", "content_hash", "invalid"}
	stagedGroupCols  = []string{"run_id", "external_id", "name"}
	stagedMemberCols = []string{"run_id", "group_external_id", "user_external_id"}
	graphGroupCols   = []string{"run_id", "external_id", "name", "kept", "removed"}
	graphEdgeCols    = []string{"run_id", "group_external_id", "member_external_id", "member_is_group", "removed"}
	removalCols      = []string{"run_id", "external_id", "reason"}
)

// lockRun serialises the transactions that move a run forward. Two
// attempts of one activity can overlap (Temporal starts a retry once it
// deems the first dead, which may yet be working), and each reads the
// run's cursor and counts before it writes them back: on PostgreSQL the
// second now waits for the first to commit and then reads what it left.
// It comes first in the transaction, before any other lock, so that it
// cannot take part in a deadlock. SQLite has one writer at a time, and a
// transaction that read before another's write fails and is retried.
func (s *SQLStore) lockRun(ctx context.Context, tx *sqlx.Tx, runID string) error {
	if !s.d.rowLocks {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM sync_runs WHERE id = $1 FOR UPDATE`, runID); err != nil {
		return fmt.Errorf("lock run %s: %w", runID, err)
	}
	return nil
}

// SaveFetchedPage implements SyncEngine.
func (s *SQLStore) SaveFetchedPage(ctx context.Context, runID string, page *FetchedPage, next string, done bool) (int, error) {
	var total int
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		users := page.Users
		if page.Latest {
			users = lastOfEach(users)
		}
		userRows := make([][]any, 0, len(users))
		for _, u := range users {
			userRows = append(userRows, []any{runID, u.ExternalID, u.Line, u.Username, strings.ToLower(u.Username),
				u.FirstName, u.LastName, u.Email, u.Active, u.ManagerRef, strings.ToLower(u.ManagerRef), attrsJSON(u.Attributes), u.PasswordHash,
				u.ContentHash, u.Invalid})
		}
		// A user seen again (a replayed page, a second group, a duplicate
		// row the source already marked invalid) keeps its first record.
		added, err := s.bulkInsert(ctx, tx, "sync_staged_users", stagedUserCols, userRows, onConflictNothing)
		if err != nil {
			return fmt.Errorf("stage users: %w", err)
		}
		// Unless the page is the newer record: the users already staged
		// take this page's record. An upsert finds them by the primary key
		// whatever the planner's statistics say; a DELETE … IN of the
		// page's ids went by the (run_id, username_lower) index while the
		// run was missing from the statistics and read every row the run
		// had staged, once a page (a 1M first sync's fetch slowed down
		// quadratically).
		if page.Latest && added < int64(len(userRows)) {
			if _, err := s.bulkInsert(ctx, tx, "sync_staged_users", stagedUserCols, userRows, onConflictReplaceStaged); err != nil {
				return fmt.Errorf("stage users: %w", err)
			}
		}
		groupRows := make([][]any, 0, len(page.Groups))
		for _, g := range page.Groups {
			groupRows = append(groupRows, []any{runID, g.ExternalID, g.Name})
		}
		if _, err := s.bulkInsert(ctx, tx, "sync_staged_groups", stagedGroupCols, groupRows, onConflictNothing); err != nil {
			return fmt.Errorf("stage groups: %w", err)
		}
		memberRows := make([][]any, 0, len(page.Members))
		for _, m := range page.Members {
			memberRows = append(memberRows, []any{runID, m.GroupExternalID, m.UserExternalID})
		}
		if _, err := s.bulkInsert(ctx, tx, "sync_staged_members", stagedMemberCols, memberRows, onConflictNothing); err != nil {
			return fmt.Errorf("stage memberships: %w", err)
		}
		if err := s.stageGraph(ctx, tx, runID, page); err != nil {
			return err
		}
		c, err := s.loadCounts(ctx, tx, runID)
		if err != nil {
			return err
		}
		c.Fetched += int(added)
		total = c.Fetched
		state := ""
		if len(page.SourceState) > 0 {
			if state, err = s.mergeSourceState(ctx, tx, runID, page.SourceState); err != nil {
				return err
			}
		}
		_, err = s.exec(ctx, tx, `UPDATE sync_runs SET fetch_cursor = ?, fetch_done = ?, counts = ?,
  source_state = CASE WHEN ? = '' THEN source_state ELSE ? END WHERE id = ?`,
			next, done, countsJSON(c), state, state, runID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("save fetched page: %w", err)
	}
	return total, nil
}

// lastOfEach keeps the last record of each user, in first-seen order.
func lastOfEach(users []StagedUser) []StagedUser {
	at := make(map[string]int, len(users))
	out := make([]StagedUser, 0, len(users))
	for _, u := range users {
		if i, ok := at[u.ExternalID]; ok {
			out[i] = u
			continue
		}
		at[u.ExternalID] = len(out)
		out = append(out, u)
	}
	return out
}

// stageGraph stages a page's part of the group graph and its removals.
// The last word on a group or an edge wins: a delta lists each once, but a
// page replayed after a crash lists them again.
func (s *SQLStore) stageGraph(ctx context.Context, tx *sqlx.Tx, runID string, page *FetchedPage) error {
	// One row per key and statement: Postgres refuses an upsert that
	// touches a row twice.
	groups := make(map[string]int, len(page.GraphGroups))
	rows := make([][]any, 0, len(page.GraphGroups))
	for _, g := range page.GraphGroups {
		row := []any{runID, g.ExternalID, g.Name, g.Kept, g.Removed}
		if i, ok := groups[g.ExternalID]; ok {
			rows[i] = row
			continue
		}
		groups[g.ExternalID] = len(rows)
		rows = append(rows, row)
	}
	if _, err := s.bulkInsert(ctx, tx, "sync_staged_pgroups", graphGroupCols, rows,
		"ON CONFLICT (run_id, external_id) DO UPDATE SET name = excluded.name, kept = excluded.kept, removed = excluded.removed"); err != nil {
		return fmt.Errorf("stage group graph: %w", err)
	}
	edges := make(map[[2]string]int, len(page.GraphEdges))
	rows = make([][]any, 0, len(page.GraphEdges))
	for _, e := range page.GraphEdges {
		row := []any{runID, e.GroupExternalID, e.MemberExternalID, e.MemberIsGroup, e.Removed}
		k := [2]string{e.GroupExternalID, e.MemberExternalID}
		if i, ok := edges[k]; ok {
			rows[i] = row
			continue
		}
		edges[k] = len(rows)
		rows = append(rows, row)
	}
	if _, err := s.bulkInsert(ctx, tx, "sync_staged_edges", graphEdgeCols, rows,
		"ON CONFLICT (run_id, group_external_id, member_external_id) DO UPDATE SET member_is_group = excluded.member_is_group, removed = excluded.removed"); err != nil {
		return fmt.Errorf("stage group graph: %w", err)
	}
	rows = make([][]any, 0, len(page.Removals))
	for _, r := range page.Removals {
		rows = append(rows, []any{runID, r.ExternalID, r.Reason})
	}
	if _, err := s.bulkInsert(ctx, tx, "sync_staged_removals", removalCols, rows, onConflictNothing); err != nil {
		return fmt.Errorf("stage removals: %w", err)
	}
	return nil
}

// mergeSourceState adds to the provider state a run will save.
func (s *SQLStore) mergeSourceState(ctx context.Context, tx *sqlx.Tx, runID string, add map[string]string) (string, error) {
	var raw string
	if err := s.get(ctx, tx, &raw, `SELECT source_state FROM sync_runs WHERE id = ?`, runID); err != nil {
		return "", dbErr("run "+runID, err)
	}
	st := parseAttrs(raw)
	for k, v := range add {
		st[k] = v
	}
	return attrsJSON(st), nil
}

// ResetFetch implements SyncEngine.
func (s *SQLStore) ResetFetch(ctx context.Context, runID string) error {
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
		_, err = s.exec(ctx, tx, `UPDATE sync_runs SET fetch_cursor = '', fetch_done = FALSE, counts = ?, source_state = '{}' WHERE id = ?`,
			countsJSON(c), runID)
		return err
	})
}

// runTables are the tables that hold rows of one run, keyed by run_id. A
// revert's work items are among them, so that a revert cancelled or failed
// before it finished leaves none behind either.
var runTables = []string{"sync_staged_users", "sync_staged_groups", "sync_staged_members", "sync_staged_pgroups",
	"sync_staged_edges", "sync_staged_removals", "sync_run_ids", "sync_run_ancestry", "sync_plan",
	"sync_plan_managers", "sync_plan_members", "sync_revert_items"}

func (s *SQLStore) deleteRunRows(ctx context.Context, q querier, runID string) error {
	return s.clearRun(ctx, q, runID, runTables...)
}

// clearRun removes a run's rows from work tables. On PostgreSQL a table
// that holds no other run's rows is truncated instead: a first sync of a
// million users leaves millions of plan rows, which a DELETE marks and
// logs one by one for over a minute. It takes the table's exclusive lock
// without waiting, inside a savepoint, and falls back to DELETE when
// another transaction uses the table (another profile's run), so it never
// waits for one nor holds one up.
func (s *SQLStore) clearRun(ctx context.Context, q querier, runID string, tables ...string) error {
	tx, isTx := q.(*sqlx.Tx)
	for _, t := range tables {
		if s.d.truncate && isTx {
			done, err := s.truncateAlone(ctx, tx, t, runID)
			if err != nil {
				return fmt.Errorf("clear %s: %w", t, err)
			}
			if done {
				continue
			}
		}
		if _, err := s.exec(ctx, q, `DELETE FROM `+t+` WHERE run_id = ?`, runID); err != nil {
			return fmt.Errorf("clear %s: %w", t, err)
		}
	}
	return nil
}

// truncateAlone truncates table if it can lock it at once and it holds no
// row of another run; it reports whether it did.
func (s *SQLStore) truncateAlone(ctx context.Context, tx *sqlx.Tx, table, runID string) (bool, error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT clear_run`); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `LOCK TABLE `+table+` IN ACCESS EXCLUSIVE MODE NOWAIT`); err != nil {
		// Busy (lock_not_available): undo the failed statement only.
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT clear_run`); rerr != nil {
			return false, errors.Join(err, rerr)
		}
		return false, nil
	}
	// Two range reads of the run_id index, not a scan of the run's rows.
	var others bool
	if err := tx.GetContext(ctx, &others, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE run_id < $1)
  OR EXISTS (SELECT 1 FROM `+table+` WHERE run_id > $1)`, runID); err != nil {
		return false, err
	}
	if !others {
		if _, err := tx.ExecContext(ctx, `TRUNCATE `+table); err != nil {
			return false, err
		}
	}
	_, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT clear_run`)
	return !others, err
}

// DropRunData implements SyncEngine. The staging of the run a directory's
// next delta run builds on is kept.
func (s *SQLStore) DropRunData(ctx context.Context, runID string) error {
	return s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		snapshot, err := s.exists(ctx, tx, `SELECT 1 FROM sync_state WHERE snapshot_run_id = ?`, runID)
		if err != nil {
			return fmt.Errorf("drop run data: %w", err)
		}
		if snapshot {
			return s.dropWorkRows(ctx, tx, runID)
		}
		return s.deleteRunRows(ctx, tx, runID)
	})
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
