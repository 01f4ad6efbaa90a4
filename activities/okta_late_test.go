package activities_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	oktasim "github.com/usersync/usersync/idpsim/okta"
)

// TestOktaLateLogEventIsReadByTheNextDelta: Okta commits some System Log
// events to the log well after they happened. A user leaves the only
// selected group they were in; the removal's event says it was published
// ten minutes ago and becomes readable only after a first delta run has
// passed. That run cannot see it; the next delta run must, and leave the
// directory as a full run leaves it: the user out of scope, disabled. (Bounded reads from the last run's start, two minutes early, never
// see an event published before that.)
func TestOktaLateLogEventIsReadByTheNextDelta(t *testing.T) {
	// The SDK reads ~/.okta/okta.yaml.
	t.Setenv("HOME", t.TempDir())
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			delta, full := newOktaSide(t, dialect), newOktaSide(t, dialect)
			delta.h.mustSync()
			full.h.mustSync()

			// Someone active in Engineering and in no other selected group.
			eng, sales, contractors := oktaGroup(t, delta.sim, "Engineering"), oktaGroup(t, delta.sim, "Sales"),
				oktaGroup(t, delta.sim, oktasim.GroupContractors)
			var leaver string
			for _, id := range delta.sim.Members(eng) {
				u, _ := delta.sim.User(id)
				if u.Status == oktasim.StatusActive && !slices.Contains(delta.sim.Members(sales), id) &&
					!slices.Contains(delta.sim.Members(contractors), id) {
					leaver = id
					break
				}
			}
			if leaver == "" {
				t.Fatal("no one to remove")
			}
			const lag = 5 * time.Second
			for _, sim := range []*oktasim.Server{delta.sim, full.sim} {
				sim.SetLogLag(lag)
				sim.BackdateNextEvents(1, 10*time.Minute)
				must(t, sim.RemoveFromGroup(eng, leaver))
				sim.SetLogLag(0)
			}
			readable := time.Now().Add(lag)

			first := delta.h.mustSync()
			mustMode(t, delta.h, first.ID, directory.ModeDelta)
			if time.Now().After(readable) {
				t.Skip("the first delta run outlasted the event's lag; nothing was shown")
			}
			before := delta.status(t, leaver)
			if !strings.HasPrefix(before, directory.StatusActive+"|") {
				t.Fatalf("before the event is readable the leaver is still %q", before)
			}

			time.Sleep(time.Until(readable) + 200*time.Millisecond)
			second := delta.h.mustSync()
			mustMode(t, delta.h, second.ID, directory.ModeDelta)
			if err := full.h.store.ForgetSyncState(full.h.ctx, full.h.profile.DirectoryKey); err != nil {
				t.Fatal(err)
			}
			fr := full.h.mustSync()
			mustMode(t, full.h, fr.ID, directory.ModeFull)

			fv, dv := (&entraSide{h: full.h}).directoryView(t), (&entraSide{h: delta.h}).directoryView(t)
			sameDirectory(t, 2, fv, dv, fr.Counts, second.Counts)
			if after := delta.status(t, leaver); !strings.HasPrefix(after, directory.StatusDisabled+"|") {
				t.Fatalf("after the late event the leaver is %q", after)
			}
		})
	}
}

func oktaGroup(t *testing.T, sim *oktasim.Server, name string) string {
	t.Helper()
	g, ok := sim.GroupByName(name)
	if !ok {
		t.Fatalf("no group %q", name)
	}
	return g.ID
}

func mustMode(t *testing.T, h *harness, runID, want string) {
	t.Helper()
	m, err := h.store.RunMode(h.ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Mode != want {
		t.Fatalf("run %s is %q, want %q", runID, m.Mode, want)
	}
}

// status is a user's status and groups in the directory, by external id.
func (s *oktaSide) status(t *testing.T, externalID string) string {
	t.Helper()
	v, ok := (&entraSide{h: s.h}).directoryView(t)[externalID]
	if !ok {
		t.Fatalf("%s is not in the directory", externalID)
	}
	return v
}
