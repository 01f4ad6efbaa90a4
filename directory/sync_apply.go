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
)

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
	stepWarn    = "warn"
	stepDone    = "done"
)

var stepOrder = []string{stepCreate, stepUpdate, stepSkip, stepManager, stepGroup, stepMember, stepDisable, stepWarn, stepDone}

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
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
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
		case stepWarn:
			finished, err = true, s.applyWarnings(ctx, tx, st)
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
	return s.d.newID
}

// applyCreate inserts a batch of the users to create, with the ids the
// plan gave them. With the org chart on, a user whose manager is in the
// directory or is created by this run (named by external id, as Graph and
// Okta name managers) gets it in the same insert: each user is written
// once, where a later update of every new user would write it twice. The
// manager step then finds these links made and sets only the others.
func (s *SQLStore) applyCreate(ctx context.Context, tx *sqlx.Tx, st *applyState, cursor string) (string, bool, error) {
	lo, hi, ok, err := s.batchKeys(ctx, tx, st, "('create')", cursor)
	if err != nil || !ok {
		return "", true, err
	}
	// The manager is found through the plan, which holds every user of
	// the source with the id it has (or, created by this run, will have),
	// and a departing one with its id too; a manager the plan lacks is left
	// to the manager step. Nothing here looks users up by directory: while
	// this step creates a directory's users, the planner's statistics still
	// count the few it had, and a lookup by directory planned on them
	// rescanned every user created so far, for each row of each batch.
	managerID, managerName, joins := "NULL", "''", ""
	if st.in.OrgChart {
		managerID = "mp.user_id"
		managerName = "COALESCE((SELECT mu.username FROM users mu WHERE mu.id = mp.user_id), ms.username, '')"
		joins = `
LEFT JOIN sync_plan mp ON s.manager_ref <> '' AND mp.run_id = p.run_id AND mp.external_id = s.manager_ref
LEFT JOIN sync_staged_users ms ON ms.run_id = mp.run_id AND ms.external_id = mp.external_id`
	}
	rng := []any{st.runID, lo, hi}
	var staged []struct {
		stagedRow
		ManagerID   *string `db:"manager_id"`
		ManagerName string  `db:"manager_name"`
	}
	if err := s.sel(ctx, tx, &staged, `SELECT p.external_id, p.user_id, s.username, s.first_name, s.last_name, s.email, s.attributes,
  `+managerID+` AS manager_id, `+managerName+` AS manager_name
FROM sync_plan p JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id`+joins+`
WHERE `+fmt.Sprintf(planRange, "('create')")+` ORDER BY p.external_id`, rng...); err != nil {
		return "", false, err
	}
	// A username taken between plan and apply (a user created through the
	// API meanwhile) makes the insert of that row do nothing; RETURNING
	// tells which rows really went in, and only those are recorded. A link
	// to such a manager is undone by the manager step, which resolves
	// every manager afresh.
	args := append([]any{st.in.DirectoryKey, st.at, st.at}, rng...)
	var created []string
	err = s.sel(ctx, tx, &created, `INSERT INTO users (id, directory_key, external_id, username, username_lower,
  first_name, last_name, email, status, password_hash, attributes, content_hash, manager_id, created_at, updated_at)
SELECT p.user_id, ?, s.external_id, s.username, s.username_lower, s.first_name, s.last_name, s.email,
  'active', s.password_hash, s.attributes, s.content_hash, `+managerID+`, ?, ?
FROM sync_plan p JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id`+joins+`
WHERE `+fmt.Sprintf(planRange, "('create')")+`
ON CONFLICT DO NOTHING
RETURNING id`, args...)
	if err != nil {
		return "", false, err
	}
	in := make(map[string]bool, len(created))
	for _, id := range created {
		in[id] = true
	}
	for i := range staged {
		r := &staged[i]
		if !in[r.UserID] {
			st.counts.Conflicts++
			st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.ExternalID, username: r.Username,
				action: "conflict", reason: fmt.Sprintf("username %q was taken while the run applied", r.Username)})
			continue
		}
		st.counts.Created++
		st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
			action: "created", changes: rules.Diff(rules.Record{}, r.record())})
		if r.ManagerID != nil {
			st.counts.ManagersLinked++
			st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
				action: "manager_linked", changes: managerChange("", r.ManagerName, nil, r.ManagerID)})
		}
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
	const acts = "('skipped', 'conflict', 'refused')"
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
		action := r.Action
		if action == actRefused {
			action = LedgerLicenceRefused
		}
		st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: subject, username: r.Username,
			action: action, reason: reason})
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

// applyManagers sets the manager of every synced user whose manager, as the
// source names it, is not the one the directory holds, and reports the
// references that name nobody. Which users those are is worked out once,
// set-based, when the step starts (sync_plan_managers); the batches then
// only write them. Re-reading every synced user batch by batch cost a join
// per batch over the whole directory, even when nothing had changed.
func (s *SQLStore) applyManagers(ctx context.Context, tx *sqlx.Tx, st *applyState, cursor string) (string, bool, error) {
	dir := st.in.DirectoryKey
	if cursor == "" {
		// Users created and updated by this run are in the join now.
		if err := s.analyze(ctx, tx, "users"); err != nil {
			return "", false, err
		}
		if err := s.tuneSession(ctx, tx); err != nil {
			return "", false, err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM sync_plan_managers WHERE run_id = ?`, st.runID); err != nil {
			return "", false, err
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO sync_plan_managers (run_id, user_id, username, manager_ref,
  current_id, current_name, resolved_id, resolved_name)
SELECT p.run_id, u.id, u.username, s.manager_ref, u.manager_id, COALESCE(c.username, ''),
  COALESCE(m1.id, m2.id), COALESCE(m1.username, m2.username, '')
FROM sync_plan p
JOIN sync_staged_users s ON s.run_id = p.run_id AND s.external_id = p.external_id
JOIN users u ON u.directory_key = ? AND u.external_id = p.external_id
LEFT JOIN users c ON c.id = u.manager_id`+managerJoins+`
WHERE p.run_id = ? AND p.action IN `+syncedActions+`
  AND (u.manager_id IS DISTINCT FROM COALESCE(m1.id, m2.id) OR (s.manager_ref <> '' AND m1.id IS NULL AND m2.id IS NULL))`,
			dir, dir, dir, st.runID); err != nil {
			return "", false, err
		}
	}
	var rows []struct {
		UserID       string  `db:"user_id"`
		Username     string  `db:"username"`
		ManagerRef   string  `db:"manager_ref"`
		Current      *string `db:"current_id"`
		CurrentName  string  `db:"current_name"`
		Resolved     *string `db:"resolved_id"`
		ResolvedName string  `db:"resolved_name"`
	}
	if err := s.sel(ctx, tx, &rows, `SELECT user_id, username, manager_ref, current_id, current_name, resolved_id, resolved_name
FROM sync_plan_managers WHERE run_id = ? AND user_id > ? ORDER BY user_id LIMIT ?`, st.runID, cursor, st.in.BatchSize); err != nil {
		return "", false, err
	}
	if len(rows) == 0 {
		return "", true, nil
	}
	hi := rows[len(rows)-1].UserID
	// One statement sets every manager of the batch that differs; an
	// unresolved reference clears the field rather than keep a guess.
	if _, err := s.exec(ctx, tx, `UPDATE users SET manager_id = w.resolved_id, updated_at = ?
FROM sync_plan_managers w
WHERE w.run_id = ? AND w.user_id > ? AND w.user_id <= ? AND users.id = w.user_id
  AND users.manager_id IS DISTINCT FROM w.resolved_id`, st.at, st.runID, cursor, hi); err != nil {
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
			action: "manager_linked", changes: managerChange(r.CurrentName, r.ResolvedName, r.Current, r.Resolved)})
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

// memberCursor is where the membership step stands: the last (user,
// group) pair it applied.
func memberCursor(userID, groupID string) string { return userID + "|" + groupID }

func parseMemberCursor(c string) (string, string) {
	u, g, _ := strings.Cut(c, "|")
	return u, g
}

// applyMembers makes each synced user's memberships exactly those the
// source lists: memberships of kept groups it lacks are added, any other
// (a local group, a group that left the filter) removed. The differences
// are worked out once, set-based, when the step starts
// (sync_plan_members), and applied batch by batch in (user, group) order.
func (s *SQLStore) applyMembers(ctx context.Context, tx *sqlx.Tx, st *applyState, cursor string) (string, bool, error) {
	dir := st.in.DirectoryKey
	if cursor == "" {
		if err := s.analyze(ctx, tx, "users", "group_members"); err != nil {
			return "", false, err
		}
		if err := s.tuneSession(ctx, tx); err != nil {
			return "", false, err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM sync_plan_members WHERE run_id = ?`, st.runID); err != nil {
			return "", false, err
		}
		// In key order: millions of rows go into the primary key's last
		// page rather than all over an index larger than the cache.
		if _, err := s.exec(ctx, tx, `INSERT INTO sync_plan_members (run_id, user_id, group_id, op, username, group_name)
SELECT p.run_id, u.id, g.id, 'add', u.username, g.name
FROM sync_plan p
JOIN users u ON u.directory_key = ? AND u.external_id = p.external_id
JOIN sync_staged_members sm ON sm.run_id = p.run_id AND sm.user_external_id = p.external_id
JOIN directory_groups g ON g.directory_key = ? AND g.external_id = sm.group_external_id
WHERE p.run_id = ? AND p.action IN `+syncedActions+`
  AND NOT EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = g.id AND gm.user_id = u.id)
ORDER BY u.id, g.id`, dir, dir, st.runID); err != nil {
			return "", false, err
		}
		// Every membership a synced user has that the provider does not list
		// goes: local groups and groups that left the filter included.
		if _, err := s.exec(ctx, tx, `INSERT INTO sync_plan_members (run_id, user_id, group_id, op, username, group_name)
SELECT p.run_id, u.id, g.id, 'remove', u.username, g.name
FROM sync_plan p
JOIN users u ON u.directory_key = ? AND u.external_id = p.external_id
JOIN group_members gm ON gm.user_id = u.id
JOIN directory_groups g ON g.id = gm.group_id
WHERE p.run_id = ? AND p.action IN `+syncedActions+`
  AND NOT (g.directory_key = ? AND EXISTS (SELECT 1 FROM sync_staged_members sm
           WHERE sm.run_id = p.run_id AND sm.user_external_id = p.external_id AND sm.group_external_id = g.external_id))`,
			dir, st.runID, dir); err != nil {
			return "", false, err
		}
		if err := s.analyze(ctx, tx, "sync_plan_members"); err != nil {
			return "", false, err
		}
	}
	cu, cg := parseMemberCursor(cursor)
	var rows []struct {
		UserID  string `db:"user_id"`
		GroupID string `db:"group_id"`
		Op      string `db:"op"`
	}
	if err := s.sel(ctx, tx, &rows, `SELECT user_id, group_id, op FROM sync_plan_members
WHERE run_id = ? AND (user_id, group_id) > (?, ?) ORDER BY user_id, group_id LIMIT ?`,
		st.runID, cu, cg, st.in.BatchSize); err != nil {
		return "", false, err
	}
	if len(rows) == 0 {
		return "", true, nil
	}
	last := rows[len(rows)-1]
	hu, hg := last.UserID, last.GroupID
	// Row-value comparisons: the primary key's range, which an OR of
	// column comparisons would make a scan of the whole set per batch.
	const batch = `w.run_id = ? AND (w.user_id, w.group_id) > (?, ?) AND (w.user_id, w.group_id) <= (?, ?)`
	bargs := []any{st.runID, cu, cg, hu, hg}
	if _, err := s.exec(ctx, tx, `INSERT INTO group_members (group_id, user_id, created_at)
SELECT w.group_id, w.user_id, ? FROM sync_plan_members w WHERE w.op = 'add' AND `+batch+`
ON CONFLICT DO NOTHING`, append([]any{st.at}, bargs...)...); err != nil {
		return "", false, err
	}
	if _, err := s.exec(ctx, tx, `DELETE FROM group_members WHERE (group_id, user_id) IN (
  SELECT w.group_id, w.user_id FROM sync_plan_members w WHERE w.op = 'remove' AND `+batch+`)`, bargs...); err != nil {
		return "", false, err
	}
	// Memberships are most of a first sync's changes: their ledger and
	// audit rows are written set-based, not carried through Go and back.
	// The reason quotes the group's name as Go's %q does for printable
	// text.
	const (
		action = `CASE w.op WHEN 'add' THEN 'member_added' ELSE 'member_removed' END`
		reason = `'group "' || REPLACE(REPLACE(w.group_name, '\', '\\'), '"', '\"') || '"'`
		// The group's id, which a revert needs (names are not unique).
		gid     = `REPLACE(REPLACE(w.group_id, '\', '\\'), '"', '\"')`
		changes = `CASE w.op WHEN 'add' THEN '{"groupId":{"from":"","to":"' || ` + gid + ` || '"}}'
  ELSE '{"groupId":{"from":"' || ` + gid + ` || '","to":""}}' END`
	)
	if _, err := s.exec(ctx, tx, `INSERT INTO change_ledger (run_id, subject_type, subject_id, username, action, reason, changes, at)
SELECT w.run_id, 'user', w.user_id, w.username, `+action+`, `+reason+`, `+changes+`, ?
FROM sync_plan_members w WHERE `+batch+` ORDER BY w.user_id, w.group_id`, append([]any{st.at}, bargs...)...); err != nil {
		return "", false, fmt.Errorf("write ledger: %w", err)
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO audit_log (at, category, action, connection, run_id, subject, details)
SELECT ?, ?, `+action+`, ?, w.run_id, w.username, `+reason+`
FROM sync_plan_members w WHERE `+batch+` ORDER BY w.user_id, w.group_id`,
		append([]any{st.at, CategorySync, st.in.Connection}, bargs...)...); err != nil {
		return "", false, fmt.Errorf("write audit: %w", err)
	}
	for _, r := range rows {
		if r.Op == "remove" {
			st.counts.MembershipsRemoved++
		} else {
			st.counts.MembershipsAdded++
		}
	}
	return memberCursor(hu, hg), false, nil
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

// LedgerDuplicateEmail is the ledger action of a warning: an active user of
// the run's directory shares its e-mail address with another active user.
const LedgerDuplicateEmail = "duplicate_email"

// maxWarnings bounds the warnings one run records: a tenant where every
// address is shared does not need a million of them to be told.
const maxWarnings = 1000

// applyWarnings records, once the directory is as the run leaves it, the
// active users of its directory whose e-mail address another active user
// (of any directory) has too. Some tenants have them on purpose (shared
// mailboxes), so they are not refused, only named.
func (s *SQLStore) applyWarnings(ctx context.Context, tx *sqlx.Tx, st *applyState) error {
	var rows []struct {
		ID       string `db:"id"`
		Username string `db:"username"`
		Email    string `db:"email"`
		N        int    `db:"n"`
	}
	if err := s.sel(ctx, tx, &rows, `WITH shared AS (
  SELECT lower(email) AS e, COUNT(*) AS n FROM users WHERE status = 'active' AND email <> ''
  GROUP BY lower(email) HAVING COUNT(*) > 1
)
SELECT u.id, u.username, u.email, shared.n FROM users u JOIN shared ON shared.e = lower(u.email)
WHERE u.directory_key = ? AND u.status = 'active'
ORDER BY u.username_lower, u.id LIMIT ?`, st.in.DirectoryKey, maxWarnings); err != nil {
		return fmt.Errorf("duplicate e-mail addresses: %w", err)
	}
	for _, r := range rows {
		st.counts.DuplicateEmails++
		st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.ID, username: r.Username,
			action: LedgerDuplicateEmail, reason: fmt.Sprintf("e-mail address %s is shared by %d active users", r.Email, r.N)})
	}
	return nil
}

// LedgerLicenceRefused is the ledger action of a user the licence did not
// let a run create or re-enable.
const LedgerLicenceRefused = "licence_refused"

// auditAction names a ledger action in the audit log.
func auditAction(e ledgerEntry) string {
	switch e.action {
	case "created", "updated", "disabled", "reenabled", "skipped", "conflict", LedgerLicenceRefused:
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
	if _, err := s.bulkInsert(ctx, tx, "change_ledger",
		[]string{"run_id", "subject_type", "subject_id", "username", "action", "reason", "changes", "at"}, ledger, ""); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	if _, err := s.bulkInsert(ctx, tx, "audit_log",
		[]string{"at", "category", "action", "connection", "run_id", "subject", "details"}, audit, ""); err != nil {
		return fmt.Errorf("write audit: %w", err)
	}
	return nil
}

// managerChange is the ledger's change of a user's manager: the names
// people read, and the ids (managerId) a revert sets back, since a name
// may change or be reused.
func managerChange(fromName, toName string, fromID, toID *string) map[string]rules.Change {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return map[string]rules.Change{
		"manager":       {From: fromName, To: toName},
		LedgerManagerID: {From: deref(fromID), To: deref(toID)},
	}
}

func samePtr(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
