package service

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/usersync/usersync/directory"
)

// Live progress of running runs (API.md: "while a run is running its
// counts are live"). The workflow answers its progress query after each
// activity call, while the store advances the counts in the transaction of
// each page or batch, so either may be ahead of the other: a running run
// shows, count by count, the larger of the two, and the later phase. A
// query that fails or is slow leaves the stored row as it is.

// progressTimeout bounds the progress queries of one request.
const progressTimeout = 2 * time.Second

// maxProgressQueries is how many queries one list request runs at once.
const maxProgressQueries = 4

var phaseOrder = map[string]int{directory.PhaseFetch: 1, directory.PhasePlan: 2, directory.PhaseApply: 3, directory.PhaseDone: 4}

// withProgress merges the live progress into each running run.
func (s *Service) withProgress(ctx context.Context, runs ...*directory.Run) {
	if s.progress == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, progressTimeout)
	defer cancel()
	sem := make(chan struct{}, maxProgressQueries)
	var wg sync.WaitGroup
	for _, r := range runs {
		if r.Status != directory.RunRunning {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := s.progress(ctx, r)
			if err != nil {
				s.log.DebugContext(ctx, "live progress of a run; showing the stored counts", "runId", r.ID, "error", err)
				return
			}
			if phaseOrder[p.Phase] > phaseOrder[r.Phase] {
				r.Phase = p.Phase
			}
			r.Counts = maxCounts(r.Counts, p.Counts)
		}()
	}
	wg.Wait()
}

// withProgressPage is withProgress for the items of a listing.
func (s *Service) withProgressPage(ctx context.Context, items []directory.Run) {
	ptrs := make([]*directory.Run, len(items))
	for i := range items {
		ptrs[i] = &items[i]
	}
	s.withProgress(ctx, ptrs...)
}

// maxCounts is, field by field, the larger of a and b: counts only grow
// during a run (but for a fetch restarted after its cursor expired, whose
// old total then shows until the workflow's next answer).
func maxCounts(a, b directory.RunCounts) directory.RunCounts {
	va, vb := reflect.ValueOf(&a).Elem(), reflect.ValueOf(b)
	for i := 0; i < va.NumField(); i++ {
		if f := va.Field(i); f.CanSet() && f.Kind() == reflect.Int && vb.Field(i).Int() > f.Int() {
			f.SetInt(vb.Field(i).Int())
		}
	}
	return a
}
