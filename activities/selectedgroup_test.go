package activities_test

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
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
