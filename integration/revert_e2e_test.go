package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
)

// staff is a CSV of users s001…s<n> of department dept, but for the
// departments over.
func staff(n int, dept string, over map[int]string) string {
	var b strings.Builder
	b.WriteString("username,firstName,lastName,email,manager,department\n")
	for i := 1; i <= n; i++ {
		d := dept
		if o, ok := over[i]; ok {
			d = o
		}
		fmt.Fprintf(&b, "s%03d,First%d,Last%d,s%03d@example.com,,%s\n", i, i, i, i, d)
	}
	return b.String()
}

// userRecord is what a revert must put back of a user.
type userRecord struct{ First, Last, Email, Status, Dept string }

func (c *apiClient) records() map[string]userRecord {
	c.t.Helper()
	out := map[string]userRecord{}
	for name, u := range c.users() {
		out[name] = userRecord{u.FirstName, u.LastName, u.Email, u.Status, u.Attributes["department"]}
	}
	return out
}

// TestRevertThroughTheAPI reverts runs through the API, on Temporal and on
// each database: a run that wrongly disabled 300 users and changed the
// department of 50 is previewed (nothing changes), then reverted exactly,
// with the profile's schedule paused; the revert is itself reverted, which
// restores the run's changes; after a later run and a hand edit, a revert
// skips the two items they changed and reports them with both values.
// Runs that cannot be reverted are refused with a message.
func TestRevertThroughTheAPI(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) { testRevert(t, dialect) })
	}
}

func testRevert(t *testing.T, dialect string) {
	s := newStack(t, stackOptions{Dialect: dialect, Quiet: true})
	c := s.api
	body := csvProfile("Revert "+dialect, s.upload(staff(400, "Sales", nil)),
		map[string]any{"frequency": "interval", "everyMinutes": 600})
	body["csv"].(map[string]any)["columnMap"] = map[string]any{"department": "department"}
	body["safety"] = map[string]any{"maxDisables": 1000, "maxDisablePercent": 100}
	var p profileView
	require.Equal(t, 201, c.do("POST", "/profiles", body, &p))
	sync := func(csv string) runRow {
		t.Helper()
		body["csv"].(map[string]any)["documentId"] = s.upload(csv)
		require.Equal(t, 200, c.do("PUT", "/profiles/"+p.ID, body, nil))
		var run runRow
		require.Equal(t, 202, c.do("POST", "/profiles/"+p.ID+"/sync", map[string]any{}, &run))
		run = s.waitRun(run.ID)
		require.Equal(t, directory.RunSucceeded, run.Status, "%+v", run)
		return run
	}
	revert := func(id string, req map[string]any) runRow {
		t.Helper()
		var run runRow
		require.Equal(t, 202, c.do("POST", "/runs/"+id+"/revert", req, &run))
		assert.Equal(t, directory.TriggerRevert, run.Trigger)
		run = s.waitRun(run.ID)
		require.Equal(t, directory.RunSucceeded, run.Status, "%+v", run)
		return run
	}
	changes := func(runID, action string) []directory.Change {
		t.Helper()
		var page struct {
			Items []directory.Change `json:"items"`
		}
		require.Equal(t, 200, c.do("GET", "/runs/"+runID+"/changes?limit=1000&action="+action, nil, &page))
		return page.Items
	}

	first := sync(staff(400, "Sales", nil))
	require.Equal(t, 400, first.Counts.Created)
	good := c.records()

	wrongDepts := map[int]string{}
	for i := 1; i <= 50; i++ {
		wrongDepts[i] = "Wrong"
	}
	wrong := sync(staff(100, "Sales", wrongDepts))
	require.Equal(t, 300, wrong.Counts.Disabled)
	require.Equal(t, 50, wrong.Counts.Updated)
	bad := c.records()

	preview := revert(wrong.ID, map[string]any{"dryRun": true})
	assert.Equal(t, 300, preview.Counts.Reenabled, "%+v", preview.Counts)
	assert.Equal(t, 50, preview.Counts.Updated)
	assert.Len(t, changes(preview.ID, "reenabled"), 300, "the preview lists each change")
	assert.Equal(t, bad, c.records(), "a preview changes nothing")

	undo := revert(wrong.ID, map[string]any{"pauseSchedule": true})
	assert.Equal(t, 300, undo.Counts.Reenabled, "%+v", undo.Counts)
	assert.Equal(t, 50, undo.Counts.Updated)
	assert.Zero(t, undo.Counts.Conflicts)
	require.Equal(t, good, c.records(), "the revert puts back exactly what the run changed")
	var paused profileView
	require.Equal(t, 200, c.do("GET", "/profiles/"+p.ID, nil, &paused))
	require.NotNil(t, paused.Enabled)
	assert.False(t, *paused.Enabled, "the profile is paused")
	assert.Nil(t, paused.NextRunAt, "its schedule is paused")
	var full map[string]any
	require.Equal(t, 200, c.do("GET", "/runs/"+undo.ID, nil, &full))
	assert.Equal(t, wrong.ID, full["revertOf"])
	body["enabled"] = true
	require.Equal(t, 200, c.do("PUT", "/profiles/"+p.ID, body, nil))

	redo := revert(undo.ID, nil)
	assert.Equal(t, 300, redo.Counts.Disabled, "%+v", redo.Counts)
	require.Equal(t, bad, c.records(), "a revert of the revert restores the run's changes")

	// A later run changes s001's department again, and s101 is enabled
	// by hand: a revert leaves both and says so.
	wrongDepts[1] = "Other"
	sync(staff(100, "Sales", wrongDepts))
	users := c.users()
	require.Equal(t, 200, c.do("PATCH", "/users/"+users["s101"].ID, map[string]any{"status": "active"}, nil))
	partial := revert(redo.ID, nil)
	assert.Equal(t, 2, partial.Counts.Conflicts, "%+v", partial.Counts)
	assert.Equal(t, 299, partial.Counts.Reenabled)
	assert.Equal(t, 49, partial.Counts.Updated)
	conflicts := map[string]directory.Change{}
	for _, ch := range changes(partial.ID, "conflict") {
		conflicts[ch.Username] = ch
	}
	require.Len(t, conflicts, 2)
	assert.Equal(t, directory.FieldChange{From: "Wrong", To: "Other"}, conflicts["s001"].Changes["attributes.department"])
	assert.Equal(t, directory.FieldChange{From: directory.StatusDisabled, To: directory.StatusActive}, conflicts["s101"].Changes["status"])
	now := c.records()
	assert.Equal(t, "Other", now["s001"].Dept)
	assert.Equal(t, "Sales", now["s002"].Dept)
	assert.Equal(t, directory.StatusActive, now["s400"].Status)

	// Refusals: a dry run, then any run of a deleted profile.
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	require.Equal(t, 409, c.do("POST", "/runs/"+preview.ID+"/revert", nil, &e))
	assert.Equal(t, "not_revertable", e.Error.Code)
	assert.Contains(t, e.Error.Message, "dry run")
	require.Equal(t, 204, c.do("DELETE", "/profiles/"+p.ID, nil, nil))
	require.Equal(t, 409, c.do("POST", "/runs/"+wrong.ID+"/revert", nil, &e))
	assert.Equal(t, "profile_deleted", e.Error.Code)
	assert.Contains(t, e.Error.Message, "was deleted")
}
