package okta

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usersync/usersync/provider"
)

// pacer is the HTTP transport under the SDK. Okta limits requests per
// endpoint family and minute, org-wide, and announces what is left on every
// answer (X-Rate-Limit-Limit, -Remaining, -Reset). The SDK only reacts to a
// 429, which Okta counts as a violation and reports to the org's admins; the
// pacer reads the headers of every answer and, when a family's budget is
// nearly spent, sleeps until its reset before sending the next request. It
// also retries 5xx answers, which the SDK does not, and records each call's
// last answer in the call's trace for errors.go.
type pacer struct {
	next           http.RoundTripper
	maxWait        time.Duration
	retries        int
	backoff        time.Duration
	attemptTimeout time.Duration
	log            *slog.Logger
	now            func() time.Time
	sleep          func(ctx context.Context, d time.Duration) error

	mu       sync.Mutex
	families map[string]*budget
	token    answer // the last token endpoint answer (its requests carry no context)
}

// budget is what Okta last said about a family's rate limit.
type budget struct {
	limit, remaining int
	resetAt          time.Time // on our clock
}

func newPacer(c Config, log *slog.Logger) *pacer {
	p := &pacer{maxWait: c.MaxWait, retries: c.ServerErrorRetries, backoff: c.RetryBackoff,
		attemptTimeout: c.RequestTimeout, log: log, now: time.Now, sleep: sleepCtx, families: map[string]*budget{}}
	if p.maxWait <= 0 {
		p.maxWait = DefaultMaxWait
	}
	switch {
	case p.retries == 0:
		p.retries = DefaultServerErrorRetries
	case p.retries < 0:
		p.retries = 0
	}
	if p.backoff <= 0 {
		p.backoff = DefaultRetryBackoff
	}
	if p.attemptTimeout <= 0 {
		p.attemptTimeout = DefaultRequestTimeout
	}
	return p
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// family is Okta's rate-limit bucket of a path, coarsely: the collection
// under /api/v1, or the token endpoint.
func family(path string) string {
	if strings.HasPrefix(path, "/oauth2/") {
		return "token"
	}
	rest, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return "other"
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// familyPath names a family for messages.
func familyPath(fam string) string {
	switch fam {
	case "token":
		return "/oauth2/v1/token"
	case "other":
		return "other endpoints"
	}
	return "/api/v1/" + fam
}

// reserve is the part of a budget left to other clients of the org: the
// pacer waits for the reset once no more than this remains.
func reserve(limit int) int { return limit / 20 }

// answer is what a call learned from the last response it got.
type answer struct {
	status      int
	contentType string
	retryAfter  time.Duration // for a 429: until the reset
}

// trace collects, for one SDK call, the last answer the pacer saw; the SDK
// does not return the response of a final 429 or of a failed token request.
type trace struct {
	mu   sync.Mutex
	last answer
}

func (t *trace) get() answer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

type traceKey struct{}

func withTrace(ctx context.Context) (context.Context, *trace) {
	t := &trace{}
	return context.WithValue(ctx, traceKey{}, t), t
}

func (p *pacer) RoundTrip(req *http.Request) (*http.Response, error) {
	fam := family(req.URL.Path)
	if err := p.wait(req.Context(), fam); err != nil {
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody
	for attempt := 0; ; attempt++ {
		resp, err := p.attempt(req)
		if err != nil {
			return nil, err
		}
		now := p.now()
		p.observe(fam, resp, now)
		a := answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
		if resp.StatusCode == http.StatusTooManyRequests {
			a.retryAfter = untilReset(resp.Header, now)
		}
		p.record(req, fam, a)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests && a.retryAfter > p.maxWait:
			// Longer than a call may wait: the caller retries later.
			drain(resp)
			return nil, &provider.ThrottledError{RetryAfter: a.retryAfter,
				Message: "okta rate limit of " + familyPath(fam) + " spent until its reset"}
		case resp.StatusCode >= 500 && attempt < p.retries && replayable:
			drain(resp)
			wait := p.backoff << attempt
			p.log.Debug("okta server error, retrying", "status", resp.StatusCode, "path", req.URL.Path, "wait", wait)
			if err := p.sleep(req.Context(), wait); err != nil {
				return nil, err
			}
			continue
		}
		return resp, nil
	}
}

// attempt sends the request once, bounded by the attempt timeout; the
// timeout ends when the body is read to its end or closed (the SDK reads
// a token answer to the end but never closes it).
func (p *pacer) attempt(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), p.attemptTimeout)
	resp, err := p.next.RoundTrip(req.Clone(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cancel()
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func (p *pacer) record(req *http.Request, fam string, a answer) {
	if t, ok := req.Context().Value(traceKey{}).(*trace); ok {
		t.mu.Lock()
		t.last = a
		t.mu.Unlock()
		return
	}
	if fam == "token" {
		p.mu.Lock()
		p.token = a
		p.mu.Unlock()
	}
}

func (p *pacer) lastToken() answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.token
}

// observe keeps what an answer says about its family's budget.
func (p *pacer) observe(fam string, resp *http.Response, now time.Time) {
	limit, err1 := strconv.Atoi(resp.Header.Get("X-Rate-Limit-Limit"))
	remaining, err2 := strconv.Atoi(resp.Header.Get("X-Rate-Limit-Remaining"))
	if err1 != nil || err2 != nil || resp.Header.Get("X-Rate-Limit-Reset") == "" {
		return
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		remaining = 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.families[fam] = &budget{limit: limit, remaining: remaining, resetAt: now.Add(untilReset(resp.Header, now))}
}

// untilReset is how long until X-Rate-Limit-Reset, measured on the
// server's clock (Date) so that a skewed local clock does not matter. Date
// has whole seconds and is never later than the server's true time, so
// Reset − Date never ends a wait early; a little is added for latency.
func untilReset(h http.Header, now time.Time) time.Duration {
	reset, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil {
		return time.Second
	}
	serverNow := now
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		serverNow = d
	}
	wait := time.Unix(reset, 0).Sub(serverNow) + 100*time.Millisecond
	return max(wait, 100*time.Millisecond)
}

// wait sleeps until the family's reset when its budget is down to the
// reserve. A reset further away than maxWait is not waited for: while
// requests remain they are spent, and when none remain the call fails
// throttled, for the caller to retry after the reset.
func (p *pacer) wait(ctx context.Context, fam string) error {
	now := p.now()
	p.mu.Lock()
	b := p.families[fam]
	var d time.Duration
	var remaining int
	if b != nil && now.Before(b.resetAt) && b.remaining <= reserve(b.limit) {
		d, remaining = b.resetAt.Sub(now), b.remaining
	}
	p.mu.Unlock()
	switch {
	case d == 0:
		return nil
	case d > p.maxWait && remaining > 0:
		return nil
	case d > p.maxWait:
		return &provider.ThrottledError{RetryAfter: d,
			Message: "okta rate limit of " + familyPath(fam) + " spent until its reset"}
	}
	p.log.Info("okta rate limit nearly spent, waiting for its reset", "family", fam, "remaining", remaining, "wait", d)
	if err := p.sleep(ctx, d); err != nil {
		return err
	}
	p.mu.Lock()
	if p.families[fam] == b {
		delete(p.families, fam) // the next answer tells the new budget
	}
	p.mu.Unlock()
	return nil
}
