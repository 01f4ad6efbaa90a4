package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"

	"github.com/usersync/usersync/provider"
)

// RetryPolicy says how long one Graph request may keep retrying inside the
// process before its failure goes back to the caller. The bound matters:
// a fetch activity heartbeats between pages, so a request that sleeps
// through a long Retry-After would look like a dead worker; handing the
// 429 back as a *provider.ThrottledError lets Temporal wait instead.
type RetryPolicy struct {
	// MaxRetries per request for 429, 502, 503 and 504 (default 8).
	MaxRetries int
	// BaseDelay is the first backoff when the answer has no Retry-After,
	// doubled on each retry with jitter (default 500ms).
	BaseDelay time.Duration
	// MaxWait bounds the total sleep of one call of the Source (a page
	// and the $batch requests behind it), default 15s; a Retry-After beyond
	// what is left ends the retries at once.
	MaxWait time.Duration
}

// waitBudget is what a Source call may still sleep between retries, shared
// by every request the call makes.
type waitBudget struct {
	mu   sync.Mutex
	left time.Duration
}

type budgetKey struct{}

// withWaitBudget gives the requests made with ctx one shared budget.
func withWaitBudget(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, budgetKey{}, &waitBudget{left: d})
}

// take spends d of the budget, or reports that it cannot.
func (b *waitBudget) take(d time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d > b.left {
		return false
	}
	b.left -= d
	return true
}

// budgetOf is the call's budget, or a fresh one for a lone request.
func budgetOf(ctx context.Context, p RetryPolicy) *waitBudget {
	if b, ok := ctx.Value(budgetKey{}).(*waitBudget); ok {
		return b
	}
	return &waitBudget{left: p.MaxWait}
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxRetries <= 0 {
		p.MaxRetries = 8
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 500 * time.Millisecond
	}
	if p.MaxWait <= 0 {
		p.MaxWait = 15 * time.Second
	}
	return p
}

// delay is the wait before retry number attempt (1-based) after resp.
func (p RetryPolicy) delay(resp *http.Response, attempt int) time.Duration {
	if d := retryAfter(resp.Header, -1); d >= 0 {
		return d
	}
	d := p.BaseDelay << min(attempt-1, 10)
	return d + rand.N(d/2+1) //nolint:gosec // jitter, not a secret
}

// retryAfter reads Retry-After as (possibly fractional) seconds or an HTTP
// date; def when it is missing or unreadable.
func retryAfter(h http.Header, def time.Duration) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return def
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return def
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryMiddleware replaces the SDK's RetryHandler (see the package comment).
type retryMiddleware struct {
	policy RetryPolicy
	// renew, when set, drops the cached token and signs in again: a 401
	// from Graph for a token we still thought valid (revoked, or cut short
	// by the service) is retried once with a fresh one.
	renew func(ctx context.Context, stale string) (string, error)
}

// Intercept implements khttp.Middleware.
func (m *retryMiddleware) Intercept(pipeline khttp.Pipeline, index int, req *http.Request) (*http.Response, error) {
	// Middleware further down (compression) rewrites the body and headers
	// of the request it is given, so every attempt gets a fresh clone of
	// the original.
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	ctx := req.Context()
	budget := budgetOf(ctx, m.policy)
	renewed := false
	for attempt := 0; ; attempt++ {
		r := req.Clone(ctx)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		if attempt > 0 {
			r.Header.Set("Retry-Attempt", strconv.Itoa(attempt))
		}
		resp, err := pipeline.Next(r, index)
		if err == nil && resp.StatusCode == http.StatusUnauthorized && m.renew != nil && !renewed {
			renewed = true
			stale, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
			if tok, rerr := m.renew(ctx, stale); rerr == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) //nolint:errcheck // draining for reuse only
				resp.Body.Close()
				req.Header.Set("Authorization", "Bearer "+tok)
				attempt--
				continue
			}
		}
		if err != nil || !retryableStatus(resp.StatusCode) || attempt >= m.policy.MaxRetries {
			return resp, err
		}
		d := m.policy.delay(resp, attempt+1)
		if !budget.take(d) {
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) //nolint:errcheck // draining for reuse only
		resp.Body.Close()
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newHTTPClient is the SDK's default Graph client with our retry middleware
// in place of its RetryHandler, over parent (nil: the SDK's transport).
func newHTTPClient(parent http.RoundTripper, timeout time.Duration, retry RetryPolicy, renew func(context.Context, string) (string, error)) *http.Client {
	opts := msgraphsdk.GetDefaultClientOptions()
	mws := msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)
	out := make([]khttp.Middleware, 0, len(mws))
	for _, mw := range mws {
		switch mw.(type) {
		case *khttp.RetryHandler, khttp.RetryHandler:
			out = append(out, &retryMiddleware{policy: retry, renew: renew})
		default:
			out = append(out, mw)
		}
	}
	// Last, so it sees the body as it came off the wire (decompressed by
	// the transport) and before the SDK parses it.
	out = append(out, jsonCheckMiddleware{})
	return &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(parent, out...),
		Timeout:   timeout,
		// Graph does not redirect list calls; the SDK's redirect middleware
		// handles the ones it does, without leaking the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// transportError types a failure to talk to an endpoint at all: DNS, TCP,
// TLS and timeouts make provider.ErrUnreachable (retryable), a cancelled
// context stays what it is.
func transportError(ctx context.Context, what, endpoint string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	host := endpoint
	if u, perr := url.Parse(endpoint); perr == nil && u.Host != "" {
		host = u.Host
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Errorf("%w: cannot resolve %s (%s): check the host name and the network", provider.ErrUnreachable, host, what)
	}
	return fmt.Errorf("%w: cannot reach %s at %s: %v", provider.ErrUnreachable, what, host, unwrapURL(err))
}

// unwrapURL drops the *url.Error wrapper, which repeats the whole URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// jsonCheckMiddleware refuses a successful answer whose body is not JSON.
// The SDK's parser reports that as an untyped error indistinguishable from
// any other; typed here, a broken page fails the run with a message
// instead of being retried for ever.
type jsonCheckMiddleware struct{}

// maxPageBody caps a Graph answer: a page of 999 users with every
// property is a few megabytes.
const maxPageBody = 64 << 20

// Intercept implements khttp.Middleware.
func (jsonCheckMiddleware) Intercept(pipeline khttp.Pipeline, index int, req *http.Request) (*http.Response, error) {
	resp, err := pipeline.Next(req, index)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 || resp.StatusCode == http.StatusNoContent {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBody+1))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(body) > maxPageBody {
		return nil, &provider.InvalidDataError{Object: "Microsoft Graph answer to " + req.URL.Path,
			Reason: fmt.Sprintf("larger than %d MB", maxPageBody>>20)}
	}
	if !json.Valid(body) {
		return nil, &provider.InvalidDataError{Object: "Microsoft Graph answer to " + req.URL.Path,
			Reason: fmt.Sprintf("not valid JSON (%d bytes)", len(body))}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}
