package activities

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeListing is a paged listing that records how its pages were read.
type fakeListing struct {
	delay    time.Duration
	mu       sync.Mutex
	reads    map[string]int
	inFlight atomic.Int32
	overlap  atomic.Bool
	fail     map[string]error
}

func (l *fakeListing) page(cursor string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		if l.inFlight.Add(1) > 1 {
			l.overlap.Store(true)
		}
		defer l.inFlight.Add(-1)
		l.mu.Lock()
		if l.reads == nil {
			l.reads = map[string]int{}
		}
		l.reads[cursor]++
		l.mu.Unlock()
		select {
		case <-time.After(l.delay):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if err := l.fail[cursor]; err != nil {
			return "", err
		}
		return "page " + cursor, nil
	}
}

// readsOf is how many times the page at cursor was requested. It locks:
// a dropped read ahead may still be running when a test looks.
func (l *fakeListing) readsOf(cursor string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads[cursor]
}

func TestReadAheadServesTheNextPageOnceWithOneCallAtATime(t *testing.T) {
	l := &fakeListing{delay: 20 * time.Millisecond}
	r := newReadAhead(context.Background())
	defer r.stop()
	ctx := context.Background()
	for i, cursor := range []string{"a", "b", "c", "d"} {
		got, err := readPage(ctx, r, cursor, l.page(cursor))
		if err != nil || got != "page "+cursor {
			t.Fatalf("page %d: %q, %v", i, got, err)
		}
		if next := []string{"b", "c", "d", ""}[i]; next != "" {
			readAheadPage(r, next, l.page(next))
		}
		// Staging, while the next page is read; a provider call of the
		// stager meanwhile waits for the read ahead instead of racing it.
		if err := r.call(func() error {
			_, err := l.page("other-" + cursor)(ctx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, cursor := range []string{"a", "b", "c", "d"} {
		if n := l.readsOf(cursor); n != 1 {
			t.Errorf("page %s read %d times, want once", cursor, n)
		}
	}
	if l.overlap.Load() {
		t.Error("two provider calls overlapped")
	}
}

func TestReadAheadNotAskedForIsDroppedAndErrorsReachTheReader(t *testing.T) {
	refused := errors.New("refused")
	l := &fakeListing{delay: time.Millisecond, fail: map[string]error{"bad": refused}}
	r := newReadAhead(context.Background())
	defer r.stop()
	ctx := context.Background()

	readAheadPage(r, "b", l.page("b"))
	// The fetch went elsewhere (a fallback to a full read, say): the page
	// read ahead is not served for another key.
	if got, err := readPage(ctx, r, "a", l.page("a")); err != nil || got != "page a" {
		t.Fatalf("a: %q, %v", got, err)
	}
	readAheadPage(r, "bad", l.page("bad"))
	if _, err := readPage(ctx, r, "bad", l.page("bad")); !errors.Is(err, refused) {
		t.Fatalf("a failed read ahead: %v, want its error", err)
	}
	if n := l.readsOf("bad"); n != 1 {
		t.Errorf("the failed page was read %d times, want once (the caller retries, not read-ahead)", n)
	}
}

func TestReadAheadStopCancelsAndWaits(t *testing.T) {
	l := &fakeListing{delay: time.Hour}
	r := newReadAhead(context.Background())
	readAheadPage(r, "slow", l.page("slow"))
	for l.inFlight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() { r.stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not cancel the read in flight")
	}
	if n := l.inFlight.Load(); n != 0 {
		t.Fatalf("%d reads still in flight after stop", n)
	}
}
