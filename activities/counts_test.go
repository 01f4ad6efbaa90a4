package activities_test

import (
	"testing"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
)

// countsAddUp fails the test unless every user the run judged is in
// exactly one of its counts (issue 14, item 7): the fetched users and the
// ones a delta run restated from its snapshot are each created, updated,
// unchanged, re-enabled, skipped, a conflict, refused by the licence,
// inactive, or disabled (the disabled users that departed the source were
// not fetched).
func countsAddUp(t *testing.T, what string, c directory.RunCounts) {
	t.Helper()
	t.Logf("%s: %+v", what, c)
	judged := c.Fetched + c.Restated
	landed := c.Created + c.Updated + c.Unchanged + c.Reenabled + c.Skipped + c.Conflicts + c.LicenceRefused +
		c.Inactive + (c.Disabled - c.Departed)
	if judged != landed || c.Departed > c.Disabled {
		t.Fatalf("%s: counts do not add up: fetched %d + restated %d = %d, but they land in %d: %+v",
			what, c.Fetched, c.Restated, judged, landed, c)
	}
}

func TestRunCountsAddUp(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			s := newEntraSide(t, dialect)
			first := s.h.mustSync()
			countsAddUp(t, "full run", first.Counts)
			if first.Counts.Inactive == 0 {
				t.Fatalf("the tenant's disabled accounts are not counted inactive: %+v", first.Counts)
			}
			for round := range 2 {
				mutate(t, s.ten, round)
				r := s.h.mustSync()
				countsAddUp(t, "delta run", r.Counts)
				if r.Counts.Departed == 0 {
					t.Fatalf("round %d: deleted users are not counted departed: %+v", round, r.Counts)
				}
			}
			// A run with nothing changed: all unchanged or inactive.
			r := s.h.mustSync()
			countsAddUp(t, "quiet run", r.Counts)
			// A full run over the same tenant.
			if err := s.h.store.ForgetSyncState(s.h.ctx, s.h.profile.DirectoryKey); err != nil {
				t.Fatal(err)
			}
			r = s.h.mustSync()
			countsAddUp(t, "forced full run", r.Counts)
			if r.Counts.Restated != 0 {
				t.Fatalf("a full run restated users: %+v", r.Counts)
			}
		})
	}
}
