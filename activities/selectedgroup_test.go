package activities_test

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/idpsim/graph"
)

// TestSelectedGroupGoneFailsTheRun: a selected group that the provider no
// longer has (deleted, or hidden from the app) fails the run with the
// group named and a final error, in a delta run and in the full run that
// follows, and nobody is disabled: skipping it would take all its members
// out of the scope at once.
func TestSelectedGroupGoneFailsTheRun(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			s := newEntraSide(t, dialect)
			var eng string
			for _, g := range s.ten.Groups() {
				if g.DisplayName == "Engineering" {
					eng = g.ID
				}
			}
			root, _ := s.ten.GroupByName("All Staff")
			s.h.cfg.Groups = []string{root.ID, eng}
			s.h.saveConfig()
			first := s.h.mustSync()
			if first.Counts.Created == 0 {
				t.Fatalf("first run created nobody: %+v", first.Counts)
			}
			before := s.directoryView(t)

			must(t, s.ten.DeleteGroup(eng))
			for _, mode := range []string{directory.ModeDelta, directory.ModeFull} {
				if mode == directory.ModeFull {
					if err := s.h.store.ForgetSyncState(s.h.ctx, s.h.profile.DirectoryKey); err != nil {
						t.Fatal(err)
					}
				}
				r := s.h.sync(false, false)
				var ae *temporal.ApplicationError
				if r.err == nil || !errors.As(r.err, &ae) || !ae.NonRetryable() || !strings.Contains(r.run.Error, eng) ||
					r.run.Status != directory.RunFailed {
					t.Fatalf("%s run: err %v, status %s, error %q", mode, r.err, r.run.Status, r.run.Error)
				}
				if m, _ := s.h.store.RunMode(s.h.ctx, r.run.ID); m.Mode != mode {
					t.Fatalf("run mode %q, want %q", m.Mode, mode)
				}
				after := s.directoryView(t)
				for ext, v := range before {
					if after[ext] != v {
						t.Fatalf("%s run changed %s: %s -> %s", mode, ext, v, after[ext])
					}
				}
			}
		})
	}
}

// TestProviderRecordWithANULIsSkipped: a Graph user whose name holds a
// NUL is skipped with the reason, and the run ends on PostgreSQL too (it
// refuses such text: stored as it came, the page failed on every retry
// and the run never ended).
func TestProviderRecordWithANULIsSkipped(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			s := newEntraSide(t, dialect)
			root, _ := s.ten.GroupByName("All Staff")
			id, err := s.ten.NewUser(graph.User{UserPrincipalName: "nul@" + s.ten.Domain, GivenName: "Bad\x00Name", Surname: "User",
				Mail: "nul@" + s.ten.Domain, AccountEnabled: true}, root.ID)
			must(t, err)
			r := s.h.mustSync()
			if r.Counts.Skipped == 0 {
				t.Fatalf("counts %+v", r.Counts)
			}
			var found bool
			for _, c := range s.h.changes(r.ID, "skipped") {
				if strings.Contains(c.Reason, "control character") {
					found = true
				}
			}
			if !found {
				t.Fatalf("no skip names the control character; skipped %+v", s.h.changes(r.ID, "skipped"))
			}
			if _, ok := s.directoryView(t)[id]; ok {
				t.Fatal("the user with a NUL in its name was created")
			}
		})
	}
}
