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

// Reverting a run: a run of its own (trigger "revert") that puts back what
// another run changed, from that run's ledger. PlanRevert works out, once,
// which of those changes can be put back (an object changed again since is
// a conflict, not reverted) and keeps them as the revert's work items
// (sync_revert_items); ApplyRevertBatch applies them batch by batch, each
// batch with its ledger, audit rows and cursor, like ApplyBatch. The
// revert writes the same ledger a sync does (with the old values, the
// manager's and the group's ids), so a revert can itself be reverted.

// TriggerRevert is the trigger of a run that reverts another.
const TriggerRevert = "revert"

// Ledger change fields that carry ids rather than what people read: the
// manager's user id (beside "manager", its username) and the group of a
// membership. Runs recorded before they were kept cannot have those
// changes reverted.
const (
	LedgerManagerID = "managerId"
	LedgerGroupID   = "groupId"
)

// Apply steps of a revert run (apply_step); stepDone ends both kinds.
const (
	revertStepItems   = "revert-items"
	revertStepDisable = "revert-disable"
)

// Kinds of revert items.
const (
	revertField   = "field"
	revertStatus  = "status"
	revertManager = "manager"
	revertMember  = "member"
	// revertLicence is a re-enable the licence refuses.
	revertLicence = "licence"
)

// memberValue is a membership's value in a revert item: a member, or not.
const memberValue = "member"

// RevertEngine reverts runs (revert.go).
type RevertEngine interface {
	// SetRevertTarget records which run runID reverts.
	SetRevertTarget(ctx context.Context, runID, target string) error
	// PlanRevert works out the inverse of the target run's ledger:
	// conflicts go to runID's ledger at once; a dry run writes to its
	// ledger what the revert would do and changes nothing.
	PlanRevert(ctx context.Context, runID string, in RevertPlanInput) (*RevertOutcome, error)
	// ApplyRevertBatch applies the next batch of a planned revert.
	ApplyRevertBatch(ctx context.Context, runID string, in RevertApplyInput) (bool, RunCounts, error)
}

// RevertPlanInput parameterises PlanRevert.
type RevertPlanInput struct {
	Target       string // the run to revert
	DryRun       bool
	Connection   string // profile name, for the audit log
	LicenceLimit int    // 0: none
}

// RevertOutcome is what PlanRevert found.
type RevertOutcome struct {
	Counts            RunCounts // the planned numbers; Disabled is what the guard weighs
	ActiveInDirectory int
}

// RevertApplyInput parameterises ApplyRevertBatch.
type RevertApplyInput struct {
	Connection string
	BatchSize  int // ledger entries per batch, default 1000
}

// RevertRefusal says why run r cannot be reverted, or "" when it can. The
// API asks before it starts a revert; the revert's plan asks again.
func RevertRefusal(r *Run) string {
	switch {
	case r.DryRun:
		return fmt.Sprintf("run %s is a dry run: it changed nothing", r.ID)
	case !IsFinalRunStatus(r.Status):
		return fmt.Sprintf("run %s is %s; only a finished run can be reverted", r.ID, r.Status)
	case r.Status == RunSkipped:
		return fmt.Sprintf("run %s was skipped: it changed nothing", r.ID)
	}
	return ""
}

// SetRevertTarget implements RevertEngine.
func (s *SQLStore) SetRevertTarget(ctx context.Context, runID, target string) error {
	n, err := s.exec(ctx, s.db, `UPDATE sync_runs SET revert_of = ? WHERE id = ?`, target, runID)
	if err != nil {
		return fmt.Errorf("record the run %s reverts: %w", runID, err)
	}
	if n == 0 {
		return fmt.Errorf("run %s: %w", runID, ErrNotFound)
	}
	return nil
}

// revertActions are the ledger actions a revert puts back; the others
// (skipped, conflict, warnings, group_created) changed nothing a revert
// can undo: a group the run created stays, without the memberships the
// run gave it.
const revertActions = `('created', 'updated', 'reenabled', 'disabled', 'manager_linked', 'member_added', 'member_removed')`

type ledgerRow struct {
	ID          int64     `db:"id"`
	RunID       string    `db:"run_id"`
	SubjectID   string    `db:"subject_id"`
	Username    string    `db:"username"`
	Action      string    `db:"action"`
	Reason      string    `db:"reason"`
	ChangesJSON string    `db:"changes"`
	At          time.Time `db:"at"`
	// Of the run that wrote it (later entries only).
	RevertOf string `db:"revert_of"`
	Trigger  string `db:"trigger"`
}

func (l *ledgerRow) changes() map[string]rules.Change {
	m := map[string]rules.Change{}
	if l.ChangesJSON != "" {
		json.Unmarshal([]byte(l.ChangesJSON), &m) //nolint:errcheck // written by us; a bad value reads as none
	}
	return m
}

// groupOfReason is the group name a membership entry's reason quotes.
func groupOfReason(reason string) string {
	rest, ok := strings.CutPrefix(reason, "group ")
	if !ok {
		return ""
	}
	var name string
	if _, err := fmt.Sscanf(rest, "%q", &name); err != nil {
		return ""
	}
	return name
}

// touched are the keys a ledger entry changed: "status", a field name,
// "manager", "member:<group id>" or, for an entry recorded before group ids
// were kept, "membername:<group name>".
func (l *ledgerRow) touched() []string {
	ch := l.changes()
	var keys []string
	switch l.Action {
	case "created", "disabled":
		keys = append(keys, revertStatus)
	case "reenabled", "updated":
		for k := range ch {
			keys = append(keys, k)
		}
	case "manager_linked":
		keys = append(keys, revertManager)
	case "member_added", "member_removed":
		if g, ok := ch[LedgerGroupID]; ok {
			keys = append(keys, "member:"+g.From+g.To)
		} else {
			keys = append(keys, "membername:"+groupOfReason(l.Reason))
		}
	}
	return keys
}

// revertItem is one change a revert puts back (or cannot).
type revertItem struct {
	kind, field string
	runTo       string // the value the reverted run left
	revertTo    string // the value the revert sets
	fromLabel   string
	toLabel     string
	keys        []string
	display     string // the change's name in a conflict
}

type currentUser struct {
	ID         string  `db:"id"`
	Username   string  `db:"username"`
	FirstName  string  `db:"first_name"`
	LastName   string  `db:"last_name"`
	Email      string  `db:"email"`
	Status     string  `db:"status"`
	ManagerID  *string `db:"manager_id"`
	Attributes string  `db:"attributes"`
	attrs      map[string]string
}

func (u *currentUser) field(name string) (string, bool) {
	switch name {
	case "username":
		return u.Username, true
	case "firstName":
		return u.FirstName, true
	case "lastName":
		return u.LastName, true
	case "email":
		return u.Email, true
	}
	if a, ok := strings.CutPrefix(name, "attributes."); ok {
		return u.attrs[a], true
	}
	return "", false
}

type handEdit struct {
	Action  string    `db:"action"`
	Subject string    `db:"subject"`
	Details string    `db:"details"`
	At      time.Time `db:"at"`
}

// revertPlanner works through the reverted run's ledger a page at a time.
type revertPlanner struct {
	s       *SQLStore
	tx      *sqlx.Tx
	runID   string
	target  *Run
	in      RevertPlanInput
	at      time.Time
	counts  RunCounts // planned
	planned RunCounts // conflicts only: what plan records for a run that applies
	entries []ledgerEntry
	items   [][]any
}

const revertPage = 2000

// PlanRevert implements RevertEngine.
func (s *SQLStore) PlanRevert(ctx context.Context, runID string, in RevertPlanInput) (*RevertOutcome, error) {
	var out RevertOutcome
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		var run struct {
			Step string `db:"apply_step"`
			Dir  string `db:"directory_key"`
		}
		if err := s.get(ctx, tx, &run, `SELECT apply_step, directory_key FROM sync_runs WHERE id = ?`, runID); err != nil {
			return dbErr("run "+runID, err)
		}
		if err := s.get(ctx, tx, &out.ActiveInDirectory, `SELECT COUNT(*) FROM users WHERE directory_key = ? AND status = 'active'`,
			run.Dir); err != nil {
			return fmt.Errorf("count active users: %w", err)
		}
		if run.Step != "" {
			// Planned by an earlier attempt: the items and the ledger
			// are there; only the numbers are needed again.
			return s.replannedCounts(ctx, tx, runID, &out)
		}
		var target Run
		if err := s.get(ctx, tx, &target, `SELECT `+runReadCols+` FROM sync_runs WHERE id = ?`, in.Target); err != nil {
			return dbErr("run "+in.Target, err)
		}
		if why := RevertRefusal(&target); why != "" {
			return fmt.Errorf("%s: %w", why, ErrConflict)
		}
		if target.DirectoryKey != run.Dir {
			return fmt.Errorf("run %s is of another directory than its revert %s: %w", in.Target, runID, ErrConflict)
		}
		p := &revertPlanner{s: s, tx: tx, runID: runID, target: &target, in: in, at: s.Now()}
		var after int64
		for {
			var page []ledgerRow
			if err := s.sel(ctx, tx, &page, `SELECT id, run_id, subject_id, username, action, reason, changes, at
FROM change_ledger WHERE run_id = ? AND subject_type = 'user' AND action IN `+revertActions+` AND id > ?
ORDER BY id LIMIT ?`, in.Target, after, revertPage); err != nil {
				return fmt.Errorf("read the ledger of run %s: %w", in.Target, err)
			}
			if len(page) == 0 {
				break
			}
			if err := p.page(ctx, page); err != nil {
				return err
			}
			after = page[len(page)-1].ID
		}
		if err := p.flush(ctx); err != nil {
			return err
		}
		if err := p.licence(ctx); err != nil {
			return err
		}
		step := revertStepItems
		counts := p.planned
		if in.DryRun {
			// The preview: the ledger says what the revert would do,
			// and nothing is applied.
			st := &revertState{applyState: &applyState{runID: runID, in: ApplyInput{Connection: in.Connection}, at: p.at,
				counts: p.planned}, target: in.Target}
			var after int64
			for {
				next, done, err := s.revertBatch(ctx, tx, st, after, true)
				if err != nil {
					return err
				}
				if done {
					break
				}
				after = next
			}
			if _, err := s.revertDisable(ctx, tx, st, true); err != nil {
				return err
			}
			if err := s.record(ctx, tx, st.applyState); err != nil {
				return err
			}
			if _, err := s.exec(ctx, tx, `DELETE FROM sync_revert_items WHERE run_id = ?`, runID); err != nil {
				return err
			}
			step, counts = stepDone, st.counts
		}
		out.Counts = p.counts
		_, err := s.exec(ctx, tx, `UPDATE sync_runs SET phase = 'plan', apply_step = ?, apply_cursor = '', counts = ? WHERE id = ?`,
			step, countsJSON(counts), runID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// replannedCounts fills out.Counts for a revert planned already.
func (s *SQLStore) replannedCounts(ctx context.Context, tx *sqlx.Tx, runID string, out *RevertOutcome) error {
	c, err := s.loadCounts(ctx, tx, runID)
	if err != nil {
		return err
	}
	var n int
	if err := s.get(ctx, tx, &n, `SELECT COUNT(DISTINCT user_id) FROM sync_revert_items
WHERE run_id = ? AND kind = 'status' AND to_value = 'disabled'`, runID); err != nil {
		return err
	}
	c.Disabled += n
	out.Counts = c
	return nil
}

// page plans one page of the reverted run's ledger.
func (p *revertPlanner) page(ctx context.Context, page []ledgerRow) error {
	s, tx := p.s, p.tx
	ids := make([]string, 0, len(page))
	names := make([]string, 0, len(page))
	seen := map[string]bool{}
	for _, e := range page {
		if !seen[e.SubjectID] {
			seen[e.SubjectID] = true
			ids = append(ids, e.SubjectID)
		}
		names = append(names, e.Username)
	}
	users := map[string]*currentUser{}
	var rows []currentUser
	if err := s.selIn(ctx, tx, &rows, `SELECT id, username, first_name, last_name, email, status, manager_id, attributes
FROM users WHERE id IN (?)`, ids); err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	for i := range rows {
		u := &rows[i]
		u.attrs = parseAttrs(u.Attributes)
		users[u.ID] = u
		names = append(names, u.Username)
	}
	var members []struct {
		UserID  string `db:"user_id"`
		GroupID string `db:"group_id"`
	}
	if err := s.selIn(ctx, tx, &members, `SELECT user_id, group_id FROM group_members WHERE user_id IN (?)`, ids); err != nil {
		return fmt.Errorf("read memberships: %w", err)
	}
	member := map[string]bool{}
	for _, m := range members {
		member[m.UserID+"|"+m.GroupID] = true
	}
	var later []ledgerRow
	if err := s.selIn(ctx, tx, &later, `SELECT l.id, l.run_id, l.subject_id, l.username, l.action, l.reason, l.changes, l.at,
  r.revert_of, r.trigger
FROM change_ledger l JOIN sync_runs r ON r.id = l.run_id
WHERE l.subject_id IN (?) AND l.id > ? AND l.run_id <> ? AND r.dry_run = FALSE AND l.action IN `+revertActions+`
ORDER BY l.id`, ids, page[0].ID, p.target.ID); err != nil {
		return fmt.Errorf("read later ledger entries: %w", err)
	}
	laterOf := map[string][]ledgerRow{}
	for _, l := range later {
		laterOf[l.SubjectID] = append(laterOf[l.SubjectID], l)
	}
	var edits []handEdit
	subjects := append(append([]string{}, ids...), names...)
	if err := s.selIn(ctx, tx, &edits, `SELECT action, subject, details, at FROM audit_log
WHERE category = '`+CategoryDirectory+`' AND at > ? AND subject IN (?)
  AND action IN ('user_enabled', 'user_disabled', 'group_member_added', 'group_member_removed')`,
		subjects, earliest(page)); err != nil {
		return fmt.Errorf("read hand edits: %w", err)
	}
	groups, err := p.groupNames(ctx, page)
	if err != nil {
		return err
	}
	managers, err := p.managerNames(ctx, page, users)
	if err != nil {
		return err
	}
	for i := range page {
		e := &page[i]
		p.entry(e, users[e.SubjectID], member, laterOf[e.SubjectID], edits, groups, managers)
	}
	return nil
}

func earliest(page []ledgerRow) time.Time {
	t := page[0].At
	for _, e := range page {
		if e.At.Before(t) {
			t = e.At
		}
	}
	return t
}

// groupNames are the directory's groups the page's membership entries
// name (a group deleted since is missing).
func (p *revertPlanner) groupNames(ctx context.Context, page []ledgerRow) (map[string]string, error) {
	var ids []string
	for _, e := range page {
		if g, ok := e.changes()[LedgerGroupID]; ok {
			ids = append(ids, g.From+g.To)
		}
	}
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ID   string `db:"id"`
		Name string `db:"name"`
	}
	if err := p.s.selIn(ctx, p.tx, &rows, `SELECT id, name FROM directory_groups WHERE id IN (?)`, ids); err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r.Name
	}
	return out, nil
}

// managerNames are the users the page's manager entries name, and the
// managers the page's users have now.
func (p *revertPlanner) managerNames(ctx context.Context, page []ledgerRow, users map[string]*currentUser) (map[string]string, error) {
	var ids []string
	for _, e := range page {
		if m, ok := e.changes()[LedgerManagerID]; ok {
			ids = append(ids, m.From, m.To)
		}
	}
	for _, u := range users {
		if u.ManagerID != nil {
			ids = append(ids, *u.ManagerID)
		}
	}
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ID       string `db:"id"`
		Username string `db:"username"`
	}
	if err := p.s.selIn(ctx, p.tx, &rows, `SELECT id, username FROM users WHERE id IN (?)`, ids); err != nil {
		return nil, fmt.Errorf("read managers: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r.Username
	}
	return out, nil
}

// wanted is what an entry of the reverted run asks the revert to put
// back; unrevertable is why it cannot be, for an entry recorded before
// the ledger kept what its revert needs.
func wanted(e *ledgerRow, groups map[string]string) (items []revertItem, unrevertable string) {
	ch := e.changes()
	status := func(from, to string) revertItem {
		return revertItem{kind: revertStatus, field: revertStatus, runTo: to, revertTo: from,
			keys: []string{revertStatus}, display: revertStatus}
	}
	fields := func() {
		names := make([]string, 0, len(ch))
		for k := range ch {
			if k != revertStatus {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			items = append(items, revertItem{kind: revertField, field: k, runTo: ch[k].To, revertTo: ch[k].From,
				keys: []string{k}, display: k})
		}
	}
	switch e.Action {
	case "created":
		// A user the run created is disabled, never deleted.
		items = append(items, status(StatusDisabled, StatusActive))
	case "disabled":
		items = append(items, status(StatusActive, StatusDisabled))
	case "reenabled":
		fields()
		items = append(items, status(StatusDisabled, StatusActive))
	case "updated":
		fields()
	case "manager_linked":
		m, ok := ch[LedgerManagerID]
		if !ok {
			return nil, "the run was recorded before the ledger kept managers' ids: its manager changes cannot be reverted"
		}
		items = append(items, revertItem{kind: revertManager, field: revertManager, runTo: m.To, revertTo: m.From,
			fromLabel: ch["manager"].To, toLabel: ch["manager"].From, keys: []string{revertManager}, display: "manager"})
	case "member_added", "member_removed":
		g, ok := ch[LedgerGroupID]
		if !ok {
			return nil, "the run was recorded before the ledger kept groups' ids: its membership changes cannot be reverted"
		}
		gid := g.From + g.To
		it := revertItem{kind: revertMember, field: gid, runTo: memberValue, revertTo: "",
			keys: []string{"member:" + gid}, display: fmt.Sprintf("member of %q", groupOfReason(e.Reason))}
		if name, ok := groups[gid]; ok {
			it.keys = append(it.keys, "membername:"+name)
			it.toLabel = name
		}
		if e.Action == "member_removed" {
			it.runTo, it.revertTo = "", memberValue
		}
		items = append(items, it)
	}
	return items, ""
}

// entry plans one ledger entry of the reverted run: each change it made is
// a work item, or a conflict when the object changed again since.
func (p *revertPlanner) entry(e *ledgerRow, u *currentUser, member map[string]bool, later []ledgerRow, edits []handEdit,
	groups, managers map[string]string) {
	conflict := func(reason string, ch map[string]rules.Change) {
		p.entries = append(p.entries, ledgerEntry{subjectType: "user", subjectID: e.SubjectID, username: e.Username,
			action: "conflict", reason: fmt.Sprintf("not reverted (run %s): %s", p.target.ID, reason), changes: ch})
	}
	items, why := wanted(e, groups)
	if why != "" {
		p.counts.Conflicts++
		p.planned.Conflicts++
		conflict(why, e.changes())
		return
	}
	if u == nil {
		p.counts.Conflicts += len(items)
		p.planned.Conflicts += len(items)
		conflict("the user was deleted after the run", nil)
		return
	}
	for i, it := range items {
		cur, ok := p.current(u, member, it)
		reason := ""
		switch {
		case !ok:
			reason = fmt.Sprintf("the run changed %s, which a revert does not set", it.field)
		case p.laterRun(it, e.ID, later) != "":
			reason = p.laterRun(it, e.ID, later)
		case handEdited(it, e, u, edits) != "":
			reason = handEdited(it, e, u, edits)
		case cur != it.runTo:
			reason = fmt.Sprintf("%s changed after the run", it.display)
		case it.kind == revertMember && it.toLabel == "":
			reason = "the group was deleted after the run"
		case it.kind == revertManager && it.revertTo != "" && managers[it.revertTo] == "":
			reason = fmt.Sprintf("the former manager %q was deleted after the run", it.toLabel)
		}
		if reason != "" {
			p.counts.Conflicts++
			p.planned.Conflicts++
			runTo, now := it.runTo, cur
			switch it.kind {
			case revertMember:
				runTo, now = memberLabel(runTo), memberLabel(now)
			case revertManager:
				runTo, now = it.fromLabel, managers[cur]
			}
			conflict(reason, map[string]rules.Change{it.display: {From: runTo, To: now}})
			continue
		}
		from, fromLabel := cur, it.fromLabel
		if it.kind == revertManager {
			fromLabel = managers[cur]
		}
		p.items = append(p.items, []any{p.runID, e.ID, i, u.ID, u.Username, it.kind, it.field, from, it.revertTo,
			fromLabel, it.toLabel})
		switch {
		case it.kind == revertStatus && it.revertTo == StatusDisabled:
			p.counts.Disabled++
		case it.kind == revertStatus:
			p.counts.Reenabled++
		}
	}
}

func memberLabel(v string) string {
	if v == memberValue {
		return "member"
	}
	return "not a member"
}

// current is the directory's value now of what item it changes.
func (p *revertPlanner) current(u *currentUser, member map[string]bool, it revertItem) (string, bool) {
	switch it.kind {
	case revertStatus:
		return u.Status, true
	case revertManager:
		if u.ManagerID == nil {
			return "", true
		}
		return *u.ManagerID, true
	case revertMember:
		if member[u.ID+"|"+it.field] {
			return memberValue, true
		}
		return "", true
	}
	return u.field(it.field)
}

// laterRun names the run that changed the item again after the entry at
// id, or "". A later run and the revert of it cancel out: after both, the
// item is as the entry left it (this is what lets the newest run be
// reverted first, then an older one).
func (p *revertPlanner) laterRun(it revertItem, id int64, later []ledgerRow) string {
	type touch struct {
		run, revertOf, trigger string
	}
	var runs []touch
	in := map[string]bool{}
	for _, l := range later {
		if l.ID <= id || in[l.RunID] || !overlaps(it.keys, l.touched()) {
			continue
		}
		in[l.RunID] = true
		runs = append(runs, touch{l.RunID, l.RevertOf, l.Trigger})
	}
	gone := map[string]bool{}
	for _, r := range runs {
		if r.revertOf != "" && in[r.revertOf] {
			gone[r.run], gone[r.revertOf] = true, true
		}
	}
	for _, r := range runs {
		if gone[r.run] {
			continue
		}
		if r.revertOf == p.target.ID {
			return fmt.Sprintf("%s was reverted already, by run %s", it.display, r.run)
		}
		return fmt.Sprintf("%s changed again after the run, by run %s (%s)", it.display, r.run, r.trigger)
	}
	return ""
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// handEdited says whether someone changed the item by hand (the API, the
// admin page) after the entry: a status or a membership. Fields a hand
// edit changes show as a value that differs.
func handEdited(it revertItem, e *ledgerRow, u *currentUser, edits []handEdit) string {
	for _, h := range edits {
		if !h.At.After(e.At) {
			continue
		}
		switch {
		case it.kind == revertStatus && (h.Action == "user_enabled" || h.Action == "user_disabled") &&
			(strings.EqualFold(h.Subject, u.Username) || strings.EqualFold(h.Subject, e.Username)):
			return fmt.Sprintf("status changed by hand after the run (%s at %s)", strings.ReplaceAll(h.Action, "_", " "),
				h.At.UTC().Format(time.RFC3339))
		case it.kind == revertMember && (h.Action == "group_member_added" || h.Action == "group_member_removed") &&
			h.Subject == u.ID && h.Details == "group "+it.field:
			return fmt.Sprintf("%s changed by hand after the run (%s at %s)", it.display, strings.ReplaceAll(h.Action, "_", " "),
				h.At.UTC().Format(time.RFC3339))
		}
	}
	return ""
}

// flush writes the planned items and the conflicts.
func (p *revertPlanner) flush(ctx context.Context) error {
	if _, err := p.s.bulkInsert(ctx, p.tx, "sync_revert_items", []string{"run_id", "entry_id", "seq", "user_id", "username",
		"kind", "field", "from_value", "to_value", "from_label", "to_label"}, p.items, ""); err != nil {
		return fmt.Errorf("write revert items: %w", err)
	}
	st := &applyState{runID: p.runID, in: ApplyInput{Connection: p.in.Connection}, at: p.at, entries: p.entries}
	return p.s.record(ctx, p.tx, st)
}

// licence refuses, as a sync does, the re-enables beyond the licence: the
// active users once the revert is applied may not exceed it. Disables go
// through whatever the licence says.
func (p *revertPlanner) licence(ctx context.Context) error {
	if p.in.LicenceLimit <= 0 || p.counts.Reenabled == 0 {
		return nil
	}
	var active int
	if err := p.s.get(ctx, p.tx, &active, `SELECT COUNT(*) FROM users WHERE status = 'active'`); err != nil {
		return fmt.Errorf("count active users: %w", err)
	}
	allowed := p.in.LicenceLimit - active + p.counts.Disabled
	if allowed < 0 {
		allowed = 0
	}
	refused := p.counts.Reenabled - allowed
	if refused <= 0 {
		return nil
	}
	var keys []struct {
		EntryID int64 `db:"entry_id"`
		Seq     int   `db:"seq"`
	}
	if err := p.s.sel(ctx, p.tx, &keys, `SELECT entry_id, seq FROM sync_revert_items
WHERE run_id = ? AND kind = 'status' AND to_value = 'active' ORDER BY entry_id DESC, seq DESC LIMIT ?`, p.runID, refused); err != nil {
		return err
	}
	for _, k := range keys {
		if _, err := p.s.exec(ctx, p.tx, `UPDATE sync_revert_items SET kind = 'licence'
WHERE run_id = ? AND entry_id = ? AND seq = ?`, p.runID, k.EntryID, k.Seq); err != nil {
			return err
		}
	}
	p.counts.Reenabled -= len(keys)
	p.counts.LicenceRefused += len(keys)
	return nil
}

// selIn runs a query with one "IN (?)" list (and other arguments around
// it), in chunks that keep under the drivers' parameter limits.
func (s *SQLStore) selIn(ctx context.Context, q querier, dest any, query string, list []string, args ...any) error {
	// Every list is passed in one call: args before the list are those
	// before "IN (?)" in the query; the callers here put them after.
	if len(list) == 0 {
		return nil
	}
	before := strings.Count(query[:strings.Index(query, "IN (?)")], "?")
	full := append(append(append([]any{}, args[:before]...), list), args[before:]...)
	qs, qargs, err := sqlx.In(query, full...)
	if err != nil {
		return err
	}
	return s.sel(ctx, q, dest, qs, qargs...)
}

// ApplyRevertBatch implements RevertEngine.
func (s *SQLStore) ApplyRevertBatch(ctx context.Context, runID string, in RevertApplyInput) (bool, RunCounts, error) {
	if in.BatchSize <= 0 {
		in.BatchSize = 1000
	}
	var (
		done   bool
		counts RunCounts
	)
	err := s.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		var run struct {
			Step   string `db:"apply_step"`
			Cursor string `db:"apply_cursor"`
			Dir    string `db:"directory_key"`
		}
		if err := s.get(ctx, tx, &run, `SELECT apply_step, apply_cursor, directory_key FROM sync_runs WHERE id = ?`, runID); err != nil {
			return dbErr("run "+runID, err)
		}
		c, err := s.loadCounts(ctx, tx, runID)
		if err != nil {
			return err
		}
		st := &revertState{applyState: &applyState{runID: runID, in: ApplyInput{Connection: in.Connection, BatchSize: in.BatchSize},
			at: s.Now(), counts: c}}
		step := run.Step
		switch step {
		case "":
			return errors.New("apply a revert before its plan")
		case stepDone:
			done, counts = true, c
			return nil
		case revertStepItems:
			if run.Cursor == "" {
				// The directory no longer is what the provider's last
				// state says: the next sync reads the source in full.
				if err := s.forgetSyncState(ctx, tx, run.Dir); err != nil {
					return err
				}
			}
			var after int64
			if run.Cursor != "" {
				if _, err := fmt.Sscan(run.Cursor, &after); err != nil {
					return fmt.Errorf("revert cursor %q: %w", run.Cursor, err)
				}
			}
			next, finished, err := s.revertBatch(ctx, tx, st, after, false)
			if err != nil {
				return fmt.Errorf("revert: %w", err)
			}
			if finished {
				step, run.Cursor = revertStepDisable, ""
			} else {
				run.Cursor = fmt.Sprint(next)
			}
		case revertStepDisable:
			if _, err := s.revertDisable(ctx, tx, st, false); err != nil {
				return fmt.Errorf("revert: %w", err)
			}
			if _, err := s.exec(ctx, tx, `DELETE FROM sync_revert_items WHERE run_id = ?`, runID); err != nil {
				return err
			}
			step = stepDone
		default:
			return fmt.Errorf("unknown revert step %q", step)
		}
		if err := s.record(ctx, tx, st.applyState); err != nil {
			return err
		}
		done, counts = step == stepDone, st.counts
		_, err = s.exec(ctx, tx, `UPDATE sync_runs SET phase = 'apply', apply_step = ?, apply_cursor = ?, counts = ? WHERE id = ?`,
			step, run.Cursor, countsJSON(st.counts), runID)
		return err
	})
	if err != nil {
		return false, RunCounts{}, err
	}
	return done, counts, nil
}

// forgetSyncState is ForgetSyncState inside tx.
func (s *SQLStore) forgetSyncState(ctx context.Context, tx *sqlx.Tx, dir string) error {
	var snap []string
	if err := s.sel(ctx, tx, &snap, `SELECT snapshot_run_id FROM sync_state WHERE directory_key = ?`, dir); err != nil {
		return fmt.Errorf("forget sync state: %w", err)
	}
	for _, id := range snap {
		if err := s.deleteRunRows(ctx, tx, id); err != nil {
			return err
		}
	}
	_, err := s.exec(ctx, tx, `DELETE FROM sync_state WHERE directory_key = ?`, dir)
	return err
}

type revertRow struct {
	EntryID   int64  `db:"entry_id"`
	Seq       int    `db:"seq"`
	UserID    string `db:"user_id"`
	Username  string `db:"username"`
	Kind      string `db:"kind"`
	Field     string `db:"field"`
	From      string `db:"from_value"`
	To        string `db:"to_value"`
	FromLabel string `db:"from_label"`
	ToLabel   string `db:"to_label"`
}

const revertCols = `entry_id, seq, user_id, username, kind, field, from_value, to_value, from_label, to_label`

// revertState is one batch of a revert: apply's, and the run it reverts.
type revertState struct {
	*applyState
	target string
}

// revertBatch applies (or, dry, only records) the items of the next batch
// of ledger entries after the entry id after, all but the disables. It
// returns the next cursor, or done when there were none left.
func (s *SQLStore) revertBatch(ctx context.Context, tx *sqlx.Tx, st *revertState, after int64, dry bool) (int64, bool, error) {
	batch := st.in.BatchSize
	if batch <= 0 {
		batch = 1000
	}
	var keys []int64
	if err := s.sel(ctx, tx, &keys, `SELECT DISTINCT entry_id FROM sync_revert_items
WHERE run_id = ? AND entry_id > ? AND NOT (kind = 'status' AND to_value = 'disabled') ORDER BY entry_id LIMIT ?`,
		st.runID, after, batch); err != nil {
		return 0, false, err
	}
	if len(keys) == 0 {
		return 0, true, nil
	}
	hi := keys[len(keys)-1]
	var rows []revertRow
	if err := s.sel(ctx, tx, &rows, `SELECT `+revertCols+` FROM sync_revert_items
WHERE run_id = ? AND entry_id > ? AND entry_id <= ? AND NOT (kind = 'status' AND to_value = 'disabled')
ORDER BY entry_id, seq`, st.runID, after, hi); err != nil {
		return 0, false, err
	}
	reason := "reverts run " + st.revertOf(ctx, s, tx)
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].EntryID == rows[i].EntryID {
			j++
		}
		if err := s.revertEntry(ctx, tx, st, rows[i:j], reason, dry); err != nil {
			return 0, false, err
		}
		i = j
	}
	return hi, false, nil
}

// revertOf is the run the revert reverts, for the ledger's reasons.
func (st *revertState) revertOf(ctx context.Context, s *SQLStore, tx *sqlx.Tx) string {
	if st.target == "" {
		s.get(ctx, tx, &st.target, `SELECT revert_of FROM sync_runs WHERE id = ?`, st.runID) //nolint:errcheck // only a reason's text
	}
	return st.target
}

// revertEntry puts back the items of one ledger entry of the reverted run.
func (s *SQLStore) revertEntry(ctx context.Context, tx *sqlx.Tx, st *revertState, rows []revertRow, reason string, dry bool) error {
	u := rows[0]
	fields := map[string]rules.Change{}
	for _, r := range rows {
		switch r.Kind {
		case revertField:
			fields[r.Field] = rules.Change{From: r.From, To: r.To}
		case revertStatus:
			if !dry {
				if _, err := s.exec(ctx, tx, `UPDATE users SET status = 'active', disabled_at = NULL, content_hash = '', updated_at = ?
WHERE id = ? AND status = 'disabled'`, st.at, r.UserID); err != nil {
					return err
				}
			}
			st.counts.Reenabled++
			st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
				action: "reenabled", reason: reason, changes: map[string]rules.Change{"status": {From: StatusDisabled, To: StatusActive}}})
		case revertLicence:
			st.counts.LicenceRefused++
			st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
				action: LedgerLicenceRefused, reason: reason + ": re-enabling the user would exceed the licence"})
		case revertManager:
			if !dry {
				var to any
				if r.To != "" {
					to = r.To
				}
				if _, err := s.exec(ctx, tx, `UPDATE users SET manager_id = ?, content_hash = '', updated_at = ? WHERE id = ?`,
					to, st.at, r.UserID); err != nil {
					return err
				}
			}
			if r.To != "" {
				st.counts.ManagersLinked++
			}
			st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
				action: "manager_linked", reason: reason,
				changes: managerChange(r.FromLabel, r.ToLabel, strPtr(r.From), strPtr(r.To))})
		case revertMember:
			action, ch := "member_added", rules.Change{From: "", To: r.Field}
			q := `INSERT INTO group_members (group_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
			args := []any{r.Field, r.UserID, st.at}
			if r.To != memberValue {
				action, ch = "member_removed", rules.Change{From: r.Field, To: ""}
				q, args = `DELETE FROM group_members WHERE group_id = ? AND user_id = ?`, []any{r.Field, r.UserID}
				st.counts.MembershipsRemoved++
			} else {
				st.counts.MembershipsAdded++
			}
			if !dry {
				if _, err := s.exec(ctx, tx, q, args...); err != nil {
					return err
				}
			}
			st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
				action: action, reason: fmt.Sprintf("group %q (%s)", r.ToLabel, reason), changes: map[string]rules.Change{LedgerGroupID: ch}})
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return s.revertFields(ctx, tx, st, u, fields, reason, dry)
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// revertFields sets a user's fields back. A username someone else has
// taken since is a conflict, not an error that would fail the run.
func (s *SQLStore) revertFields(ctx context.Context, tx *sqlx.Tx, st *revertState, u revertRow, fields map[string]rules.Change,
	reason string, dry bool) error {
	if ch, ok := fields["username"]; ok {
		taken, err := s.exists(ctx, tx, `SELECT 1 FROM users WHERE username_lower = ? AND id <> ?`, strings.ToLower(ch.To), u.UserID)
		if err != nil {
			return err
		}
		if taken {
			delete(fields, "username")
			st.counts.Conflicts++
			st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: u.UserID, username: u.Username,
				action: "conflict", reason: fmt.Sprintf("not reverted (%s): username %q is taken by another user", reason, ch.To),
				changes: map[string]rules.Change{"username": ch}})
			if len(fields) == 0 {
				return nil
			}
		}
	}
	if !dry {
		var cur currentUser
		if err := s.get(ctx, tx, &cur, `SELECT id, username, first_name, last_name, email, status, manager_id, attributes
FROM users WHERE id = ?`, u.UserID); err != nil {
			return dbErr("user "+u.UserID, err)
		}
		attrs := parseAttrs(cur.Attributes)
		for k, ch := range fields {
			switch k {
			case "username":
				cur.Username = ch.To
			case "firstName":
				cur.FirstName = ch.To
			case "lastName":
				cur.LastName = ch.To
			case "email":
				cur.Email = ch.To
			default:
				a := strings.TrimPrefix(k, "attributes.")
				if ch.To == "" {
					delete(attrs, a)
				} else {
					attrs[a] = ch.To
				}
			}
		}
		b, err := json.Marshal(attrs)
		if err != nil {
			return fmt.Errorf("attributes of %s: %w", u.UserID, err)
		}
		// content_hash '' makes the next sync write the provider's values
		// again rather than take the user for unchanged.
		if _, err := s.exec(ctx, tx, `UPDATE users SET username = ?, username_lower = ?, first_name = ?, last_name = ?, email = ?,
  attributes = ?, content_hash = '', updated_at = ? WHERE id = ?`,
			cur.Username, strings.ToLower(cur.Username), cur.FirstName, cur.LastName, cur.Email, string(b), st.at, u.UserID); err != nil {
			return err
		}
	}
	st.counts.Updated++
	st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: u.UserID, username: u.Username,
		action: "updated", reason: reason, changes: fields})
	return nil
}

// revertDisable disables, in one statement and last (as a sync does), the
// users the revert disables: those the reverted run created or re-enabled.
func (s *SQLStore) revertDisable(ctx context.Context, tx *sqlx.Tx, st *revertState, dry bool) (int, error) {
	var rows []revertRow
	if err := s.sel(ctx, tx, &rows, `SELECT `+revertCols+` FROM sync_revert_items
WHERE run_id = ? AND kind = 'status' AND to_value = 'disabled' ORDER BY entry_id, seq`, st.runID); err != nil {
		return 0, err
	}
	if !dry {
		if _, err := s.exec(ctx, tx, `UPDATE users SET status = 'disabled', disabled_at = ?, content_hash = '', updated_at = ?
WHERE status = 'active' AND id IN (SELECT user_id FROM sync_revert_items
  WHERE run_id = ? AND kind = 'status' AND to_value = 'disabled')`, st.at, st.at, st.runID); err != nil {
			return 0, err
		}
	}
	reason := "reverts run " + st.revertOf(ctx, s, tx)
	for _, r := range rows {
		st.counts.Disabled++
		st.entries = append(st.entries, ledgerEntry{subjectType: "user", subjectID: r.UserID, username: r.Username,
			action: "disabled", reason: reason, changes: map[string]rules.Change{"status": {From: StatusActive, To: StatusDisabled}}})
	}
	return len(rows), nil
}
