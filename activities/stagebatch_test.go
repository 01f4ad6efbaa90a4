package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/idpsim/graph"
	"github.com/usersync/usersync/provider"
)

// savesCounter counts the staging transactions that hold users.
type savesCounter struct {
	directory.Store
	userPages int
}

func (s *savesCounter) SaveFetchedPage(ctx context.Context, runID string, page *directory.FetchedPage, next string, done bool) (int, error) {
	if len(page.Users) > 0 {
		s.userPages++
	}
	return s.Store.SaveFetchedPage(ctx, runID, page, next, done)
}

// TestChangeListingsStageSeveralPagesATransaction: Graph's delta pages are
// the server's size, and the fetch stages several in one transaction. What
// it stages is what page-by-page staging stages, even when pages in the
// middle of a transaction's batch are throttled (the pages read before are
// staged, the throttled one is read again by the next call).
func TestChangeListingsStageSeveralPagesATransaction(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			const pageSize, entries = 20, 150
			var pageCount, batchCount *savesCounter
			byPage := newEntraSideWith(t, dialect, graph.Options{Seed: 5, DeltaPageSize: pageSize}, func(d *activities.Deps) {
				pageCount = &savesCounter{Store: d.Store}
				d.Store, d.StageEntries = pageCount, 1
			})
			batched := newEntraSideWith(t, dialect, graph.Options{Seed: 5, DeltaPageSize: pageSize}, func(d *activities.Deps) {
				batchCount = &savesCounter{Store: d.Store}
				d.Store, d.StageEntries = batchCount, entries
				// A clock that stands still: only entries and throttled
				// pages end a batch, however slow the machine.
				now := time.Now()
				d.Now = func() time.Time { return now }
			})
			first := byPage.h.mustSync()

			// A Retry-After beyond what the provider may wait in-process
			// hands the 429 back to the fetch, as Temporal would see it.
			run, retries := syncRetryingFetch(t, batched, graph.Faults{ThrottleShare: 0.01, RetryAfter: time.Minute, EmptyPageShare: 0.1})
			if run.Status != directory.RunSucceeded {
				t.Fatalf("batched run %s: %s", run.Status, run.Error)
			}
			throttled := batched.sim.Stats().Throttled
			if retries == 0 || throttled == 0 {
				t.Fatalf("no page was throttled (%d retries, %d 429s): the test proves nothing", retries, throttled)
			}
			sameDirectory(t, 0, byPage.directoryView(t), batched.directoryView(t), first.Counts, run.Counts)
			if run.Counts.Fetched != first.Counts.Fetched || run.Counts.Created != first.Counts.Created {
				t.Fatalf("counts: batched %+v, page by page %+v", run.Counts, first.Counts)
			}

			// Page by page, each of the users' pages is a transaction; in
			// batches, a transaction takes entries users, or ends early at
			// a throttled page.
			if least := first.Counts.Fetched / pageSize; pageCount.userPages < least {
				t.Fatalf("page by page: %d transactions with users, want at least %d", pageCount.userPages, least)
			}
			if most := (run.Counts.Fetched+entries-1)/entries + throttled; batchCount.userPages > most {
				t.Fatalf("batched: %d transactions with users, want at most %d (%d throttled)", batchCount.userPages, most, throttled)
			}
			t.Logf("transactions with users: %d page by page, %d batched (%d pages throttled)", pageCount.userPages, batchCount.userPages, throttled)
		})
	}
}

// syncRetryingFetch runs a sync of s's profile whose fetch meets faults and
// is called again after each retryable failure, as Temporal would, then
// plans and applies.
func syncRetryingFetch(t *testing.T, s *entraSide, faults graph.Faults) (*directory.Run, int) {
	t.Helper()
	h := s.h
	runID := uuid.NewString()
	if _, err := h.acts.StartRun(h.ctx, activities.StartRunInput{RunID: runID, ProfileID: h.profile.ID, Trigger: "manual"}); err != nil {
		t.Fatal(err)
	}
	s.sim.SetFaults(faults)
	retries := 0
	for {
		r, err := h.acts.Fetch(h.ctx, activities.FetchInput{RunID: runID})
		if err != nil {
			if !provider.Retryable(err) || retries > 1000 {
				t.Fatalf("fetch after %d retries: %v", retries, err)
			}
			retries++
			continue
		}
		if r.Done {
			break
		}
	}
	s.sim.SetFaults(graph.Faults{})
	if plan, err := h.acts.Plan(h.ctx, activities.PlanInput{RunID: runID}); err != nil || plan.Guard != "" {
		t.Fatalf("plan: %v %s", err, plan.Guard)
	}
	for {
		r, err := h.acts.Apply(h.ctx, activities.ApplyInput{RunID: runID})
		if err != nil {
			t.Fatal(err)
		}
		if r.Done {
			break
		}
	}
	if err := h.acts.FinishRun(h.ctx, activities.FinishInput{RunID: runID, Status: directory.RunSucceeded}); err != nil {
		t.Fatal(err)
	}
	return h.run(runID), retries
}
