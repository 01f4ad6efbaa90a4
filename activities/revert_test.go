package activities_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/syncrun"
)

// revert runs a whole revert of run target through the real activities, in
// the workflow's order; approve says what an operator answers when the
// guard holds it.
func (h *harness) revert(target string, dryRun, approve bool) result {
	h.t.Helper()
	ctx := h.ctx
	runID := uuid.NewString()
	finish := func(status, msg string) {
		if err := h.acts.FinishRun(ctx, activities.FinishInput{RunID: runID, Status: status, Error: msg}); err != nil {
			h.t.Fatal(err)
		}
	}
	if _, err := h.acts.StartRevert(ctx, syncrun.StartRevertInput{RunID: runID, ProfileID: h.profile.ID, TargetRunID: target,
		DryRun: dryRun}); err != nil {
		return result{err: err}
	}
	plan, err := h.acts.PlanRevert(ctx, syncrun.PlanRevertInput{RunID: runID})
	if err != nil {
		finish(directory.RunFailed, err.Error())
		return result{run: h.run(runID), err: err}
	}
	if dryRun {
		finish(directory.RunSucceeded, "")
		return result{run: h.run(runID), plan: plan}
	}
	if plan.Guard != "" && !approve {
		finish(directory.RunBlocked, plan.Guard)
		return result{run: h.run(runID), plan: plan, guard: plan.Guard}
	}
	for i := 0; ; i++ {
		r, err := h.acts.ApplyRevert(ctx, activities.ApplyInput{RunID: runID})
		if err != nil {
			finish(directory.RunFailed, err.Error())
			return result{run: h.run(runID), err: err}
		}
		if r.Done {
			break
		}
		require.Less(h.t, i, 10000, "the revert's apply does not end")
	}
	finish(directory.RunSucceeded, "")
	return result{run: h.run(runID), plan: plan, guard: plan.Guard}
}

func (h *harness) mustRevert(target string) *directory.Run {
	h.t.Helper()
	r := h.revert(target, false, false)
	require.NoError(h.t, r.err)
	require.Empty(h.t, r.guard)
	require.Contains(h.t, []string{directory.RunSucceeded, directory.RunPartial}, r.run.Status, r.run.Error)
	return r.run
}

// state is what a revert must put back of a user: fields, department,
// status, manager (by username) and groups.
type userState struct {
	First, Last, Email, Dept, Status, Manager, Groups string
}

func (h *harness) states() map[string]userState {
	h.t.Helper()
	users := h.users()
	byID := map[string]string{}
	for name, u := range users {
		byID[u.ID] = name
	}
	out := map[string]userState{}
	for name, u := range users {
		mgr := ""
		if u.ManagerID != nil {
			mgr = byID[*u.ManagerID]
		}
		groups := append([]string{}, u.Groups...)
		sort.Strings(groups)
		out[name] = userState{u.FirstName, u.LastName, u.Email, u.Attributes["department"], u.Status, mgr, strings.Join(groups, ";")}
	}
	return out
}

// A revert puts back every kind of change a run makes: re-enables whom it
// disabled, disables (never deletes) whom it created, sets fields,
// managers and memberships back; a group it created stays, without the
// memberships. Its preview changes nothing; reverting the revert restores
// the run's changes; each revert is a run with trigger revert, a ledger
// and audit entries.
func TestRevertPutsBackEveryKindOfChange(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(
			"boss,Bo,Boss,boss@example.com,,Board,Staff,",
			"ann,Ann,Ash,ann@example.com,boss,Sales,Staff,",
			"ben,Ben,Birch,ben@example.com,boss,Sales,Staff,",
		))
		h.mustSync()
		before := h.states()

		h.setCSV(csvOf(
			"boss,Bo,Boss,boss@example.com,,Board,Staff,",
			"ann,Ann,Ashby,ann@example.com,cat,Ops,Staff;Admins,",
			"cat,Cat,Cole,cat@example.com,boss,Ops,Admins,",
		))
		wrong := h.mustSync()
		require.Equal(t, 1, wrong.Counts.Disabled)
		require.Equal(t, 1, wrong.Counts.Created)
		after := h.states()
		require.Equal(t, "Ops", after["ann"].Dept)
		require.Equal(t, "cat", after["ann"].Manager)

		preview := h.revert(wrong.ID, true, false)
		require.NoError(t, preview.err)
		assert.Equal(t, directory.RunSucceeded, preview.run.Status)
		assert.Equal(t, directory.TriggerRevert, preview.run.Trigger)
		assert.Equal(t, wrong.ID, preview.run.RevertOf)
		assert.Equal(t, after, h.states(), "a preview changes nothing")
		assert.Equal(t, 1, preview.run.Counts.Reenabled, "%+v", preview.run.Counts)
		assert.Equal(t, 1, preview.run.Counts.Disabled)
		assert.Len(t, h.changes(preview.run.ID, "reenabled"), 1, "the preview lists what the revert would do")

		rev := h.mustRevert(wrong.ID)
		assert.Equal(t, directory.TriggerRevert, rev.Trigger)
		assert.Zero(t, rev.Counts.Conflicts, "%+v", h.changes(rev.ID, "conflict"))
		got := h.states()
		assert.Equal(t, before["ann"], got["ann"])
		assert.Equal(t, before["ben"], got["ben"])
		assert.Equal(t, before["boss"], got["boss"])
		assert.Equal(t, directory.StatusDisabled, got["cat"].Status, "a user the run created is disabled, not deleted")
		admins, err := h.store.ListGroups(h.ctx, "Admins", directory.ListOptions{Limit: 10})
		require.NoError(t, err)
		require.Len(t, admins.Items, 1, "a group the run created stays")
		assert.Equal(t, 0, admins.Items[0].MemberCount, "without the memberships the run gave it")
		assert.NotEmpty(t, h.audit(rev.ID, "user_reenabled"), "the revert's audit entries")
		ben := h.changes(rev.ID, "reenabled")
		require.Len(t, ben, 1)
		assert.Contains(t, ben[0].Reason, wrong.ID)

		// The revert of the revert restores the run's changes, cat
		// included.
		again := h.mustRevert(rev.ID)
		assert.Zero(t, again.Counts.Conflicts, "%+v", h.changes(again.ID, "conflict"))
		assert.Equal(t, after, h.states())

		// The next sync puts the provider's state back over a revert: it
		// reads the source in full and writes the users the revert touched.
		h.mustRevert(again.ID)
		require.Equal(t, before["ann"], h.states()["ann"])
		h.mustSync()
		assert.Equal(t, after, h.states())
	})
}

// Reverting the newest run first, then an older one, puts back both; the
// other way round, the older run's change is a conflict with both values,
// as is an item changed by hand after the run.
func TestRevertConflicts(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		row := func(dept string) string { return "ann,Ann,Ash,ann@example.com,," + dept + ",," }
		other := "ben,Ben,Birch,ben@example.com,,Sales,,"
		h.setCSV(csvOf(row("A"), other))
		h.mustSync()
		h.setCSV(csvOf(row("B"), other))
		second := h.mustSync()
		h.setCSV(csvOf(row("C")))
		third := h.mustSync() // and disables ben

		early := h.mustRevert(second.ID)
		require.Equal(t, 1, early.Counts.Conflicts)
		c := h.changes(early.ID, "conflict")
		require.Len(t, c, 1)
		assert.Equal(t, directory.FieldChange{From: "B", To: "C"}, c[0].Changes["attributes.department"])
		assert.Contains(t, c[0].Reason, third.ID)
		assert.Equal(t, "C", h.states()["ann"].Dept, "a conflict is not reverted")

		// Newest first, then the older one: both go back.
		r3 := h.mustRevert(third.ID)
		assert.Zero(t, r3.Counts.Conflicts, "%+v", h.changes(r3.ID, "conflict"))
		assert.Equal(t, "B", h.states()["ann"].Dept)
		assert.Equal(t, directory.StatusActive, h.states()["ben"].Status)
		r2 := h.mustRevert(second.ID)
		assert.Zero(t, r2.Counts.Conflicts, "%+v", h.changes(r2.ID, "conflict"))
		assert.Equal(t, "A", h.states()["ann"].Dept)

		// A status changed by hand after the run is not reverted.
		h.setCSV(csvOf(row("A")))
		gone := h.mustSync()
		require.Equal(t, 1, gone.Counts.Disabled)
		ben := h.user("ben")
		require.NoError(t, h.store.SetUserStatus(h.ctx, ben.ID, directory.StatusActive, h.store.Now()))
		require.NoError(t, h.store.AddAudit(h.ctx, &directory.AuditEntry{Category: directory.CategoryDirectory,
			Action: "user_enabled", Subject: "ben", Details: "by hand"}))
		require.NoError(t, h.store.SetUserStatus(h.ctx, ben.ID, directory.StatusDisabled, h.store.Now()))
		require.NoError(t, h.store.AddAudit(h.ctx, &directory.AuditEntry{Category: directory.CategoryDirectory,
			Action: "user_disabled", Subject: "ben", Details: "by hand"}))
		hand := h.mustRevert(gone.ID)
		assert.Equal(t, 1, hand.Counts.Conflicts)
		c = h.changes(hand.ID, "conflict")
		require.Len(t, c, 1)
		assert.Contains(t, c[0].Reason, "by hand")
		assert.Equal(t, directory.StatusDisabled, h.states()["ben"].Status)
	})
}

// A run recorded before the ledger kept managers' and groups' ids has
// those changes refused as conflicts that say why; the rest reverts.
// Runs that cannot be reverted are refused.
func TestRevertRefusals(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf("boss,Bo,Boss,boss@example.com,,Board,,", "ann,Ann,Ash,ann@example.com,,Sales,Staff,"))
		h.mustSync()
		h.setCSV(csvOf("boss,Bo,Boss,boss@example.com,,Board,,", "ann,Ann,Ash,ann@example.com,boss,Ops,,"))
		old := h.mustSync()
		// As a run of an earlier release recorded them.
		_, err := db.ExecContext(h.ctx, db.Rebind(`UPDATE change_ledger SET changes = '{}' WHERE run_id = ? AND action IN ('member_added', 'member_removed')`), old.ID)
		require.NoError(t, err)
		_, err = db.ExecContext(h.ctx, db.Rebind(`UPDATE change_ledger SET changes = '{"manager":{"from":"","to":"boss"}}' WHERE run_id = ? AND action = 'manager_linked'`), old.ID)
		require.NoError(t, err)

		rev := h.mustRevert(old.ID)
		assert.Equal(t, 2, rev.Counts.Conflicts)
		for _, c := range h.changes(rev.ID, "conflict") {
			assert.Contains(t, c.Reason, "recorded before the ledger kept")
		}
		st := h.states()
		assert.Equal(t, "Sales", st["ann"].Dept, "the fields revert")
		assert.Equal(t, "boss", st["ann"].Manager, "the manager stays")

		dry := h.revert(old.ID, true, false).run
		_, err = h.acts.StartRevert(h.ctx, syncrun.StartRevertInput{RunID: uuid.NewString(), ProfileID: h.profile.ID,
			TargetRunID: dry.ID})
		require.ErrorContains(t, err, "dry run")
	})
}

// A revert cancelled after it planned leaves no work items behind: its
// FinishRun drops them with the run's other work rows.
func TestCancelledRevertLeavesNoWorkItems(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf("ann,Ann,Ash,ann@example.com,,Sales,,", "bob,Bob,Bay,bob@example.com,,Sales,,"))
		h.mustSync()
		h.setCSV(csvOf("ann,Ann,Ash,ann@example.com,,Ops,,", "bob,Bob,Bay,bob@example.com,,Ops,,"))
		changed := h.mustSync()

		runID := uuid.NewString()
		_, err := h.acts.StartRevert(h.ctx, syncrun.StartRevertInput{RunID: runID, ProfileID: h.profile.ID, TargetRunID: changed.ID})
		require.NoError(t, err)
		_, err = h.acts.PlanRevert(h.ctx, syncrun.PlanRevertInput{RunID: runID})
		require.NoError(t, err)
		items := func() int {
			var n int
			require.NoError(t, db.GetContext(h.ctx, &n, db.Rebind(`SELECT COUNT(*) FROM sync_revert_items WHERE run_id = ?`), runID))
			return n
		}
		require.Positive(t, items(), "the plan wrote work items")
		require.NoError(t, h.acts.FinishRun(h.ctx, activities.FinishInput{RunID: runID, Status: directory.RunCancelled, Error: "cancelled"}))
		assert.Zero(t, items())
		assert.Equal(t, "Ops", h.states()["ann"].Dept, "a cancelled revert changed nothing")
	})
}
