package activities

import (
	"context"
	"sync"
)

// readAhead overlaps a fetch's provider reads with its staging: when a
// page names a next one, the next is requested in the background while
// this one is written to the database, so a slow provider (real tenants
// answer a page in hundreds of milliseconds) and the database wait for
// each other less.
//
// Nothing about what is committed changes: a page read ahead is only a
// page read early, staged (or not) by the same code under the same cursor,
// and a page read ahead but never asked for (the call's budget ran out) is
// dropped and read again by the next call, as after a crash. The provider
// still sees one request at a time from a fetch: every provider call of
// the stager, read ahead or not, holds calls, so read-ahead adds no
// concurrency that its rate limits would have to absorb and no call races
// another on the source.
type readAhead struct {
	base  context.Context
	calls sync.Mutex
	wg    sync.WaitGroup

	key    string
	res    chan readResult
	cancel context.CancelFunc
}

type readResult struct {
	page any
	err  error
}

func newReadAhead(ctx context.Context) *readAhead { return &readAhead{base: ctx} }

// call runs one provider request, after any read ahead in flight.
func (r *readAhead) call(fn func() error) error {
	r.calls.Lock()
	defer r.calls.Unlock()
	return fn()
}

// read returns the page at key: the one read ahead when it is that page,
// else read now with fn.
func (r *readAhead) read(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	if r.res != nil && r.key == key {
		res := r.res
		r.res, r.cancel = nil, nil
		select {
		case got := <-res:
			return got.page, got.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r.drop()
	var page any
	err := r.call(func() (err error) {
		page, err = fn(ctx)
		return err
	})
	return page, err
}

// ahead starts reading the page at key in the background.
func (r *readAhead) ahead(key string, fn func(context.Context) (any, error)) {
	r.drop()
	ctx, cancel := context.WithCancel(r.base)
	res := make(chan readResult, 1)
	r.key, r.res, r.cancel = key, res, cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		var got readResult
		got.err = r.call(func() (err error) {
			got.page, err = fn(ctx)
			return err
		})
		res <- got
	}()
}

// drop abandons the read ahead in flight, if any.
func (r *readAhead) drop() {
	if r.cancel != nil {
		r.cancel()
	}
	r.res, r.cancel = nil, nil
}

// stop abandons what is in flight and waits for it: no request outlives
// the activity call that made it.
func (r *readAhead) stop() {
	r.drop()
	r.wg.Wait()
}

// readPage is read for a typed page.
func readPage[P any](ctx context.Context, r *readAhead, key string, fn func(context.Context) (P, error)) (P, error) {
	got, err := r.read(ctx, key, func(ctx context.Context) (any, error) { return fn(ctx) })
	if err != nil {
		var zero P
		return zero, err
	}
	return got.(P), nil
}

// readAheadPage is ahead for a typed page.
func readAheadPage[P any](r *readAhead, key string, fn func(context.Context) (P, error)) {
	r.ahead(key, func(ctx context.Context) (any, error) { return fn(ctx) })
}
