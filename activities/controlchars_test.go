package activities_test

import (
	"strings"
	"testing"

	"github.com/usersync/usersync/directory"
)

// TestCSVControlCharactersSkipTheRow is issue 13's item 3 through a whole
// run on both databases: a NUL in a username made PostgreSQL refuse the
// staged page on every retry (the run stayed running and every later sync
// was refused with 409), and SQLite created a user with a NUL in its name.
// Now the row is skipped with its line and column named, and the rest of
// the file syncs.
func TestCSVControlCharactersSkipTheRow(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice, "b\x00ob,Bob,Baker,bob@example.com,alice,Sales,Sales,",
			"carol,Carol,Cooper,carol@example.com,alice,Ops,Intranet\x07Readers,"))
		run := h.mustSync()
		if run.Status != directory.RunSucceeded {
			t.Fatalf("run %s: %s", run.Status, run.Error)
		}
		users := h.users()
		if _, ok := users["alice"]; !ok || len(users) != 1 {
			t.Fatalf("users %v, want alice only", users)
		}
		for name := range users {
			if strings.ContainsRune(name, 0) {
				t.Fatalf("a username with a NUL was created: %q", name)
			}
		}
		skipped := h.changes(run.ID, "skipped")
		if len(skipped) != 2 {
			t.Fatalf("skipped %+v, want bob's and carol's rows", skipped)
		}
		reasons := skipped[0].Reason + " | " + skipped[1].Reason
		for _, want := range []string{`line 3: username (column "username") contains a control character (U+0000`,
			`line 4: group name (column "groups") contains a control character (U+0007`} {
			if !strings.Contains(reasons, want) {
				t.Errorf("reasons %q do not say %q", reasons, want)
			}
		}
		// The profile is not wedged: the next sync starts and ends.
		h.setCSV(csvOf(alice, bob))
		if run := h.mustSync(); run.Status != directory.RunSucceeded {
			t.Fatalf("next run %s: %s", run.Status, run.Error)
		}
	})
}
