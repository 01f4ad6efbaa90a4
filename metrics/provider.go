package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Provider requests are counted where they leave the process, in an
// http.RoundTripper, so every provider gets them without code of its own
// as long as it sends through sources.Env.HTTPClient. The provider label
// comes from the request's context (WithProvider); the host tells a token
// endpoint from the data API.
var (
	providerRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "provider_requests_total",
		Help: "HTTP requests sent to identity providers, by provider, host and status code (\"error\" when no answer came).",
	}, []string{"provider", "host", "code"})
	providerDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "provider_request_duration_seconds",
		Help:    "Time from sending a provider request to its response headers.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"provider", "host"})
	providerThrottles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "provider_throttles_total",
		Help: "Provider answers that asked usersync to slow down (429, or 503 with Retry-After), by provider and host.",
	}, []string{"provider", "host"})
)

type providerKey struct{}

// Unknown is the provider label of a request whose context does not name one.
const Unknown = "unknown"

// WithProvider names the provider (azure, okta, csv) that requests sent
// with ctx talk to.
func WithProvider(ctx context.Context, provider string) context.Context {
	return context.WithValue(ctx, providerKey{}, provider)
}

// ProviderOf is the provider WithProvider put in ctx, or Unknown.
func ProviderOf(ctx context.Context) string {
	if p, ok := ctx.Value(providerKey{}).(string); ok && p != "" {
		return p
	}
	return Unknown
}

// Throttled counts a throttling answer the transport cannot see, such as
// a 429 inside a Graph $batch response that itself answered 200.
func Throttled(ctx context.Context, host string) {
	providerThrottles.WithLabelValues(ProviderOf(ctx), host).Inc()
}

// Transport counts and times the requests of Base (nil: http.DefaultTransport).
type Transport struct {
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	start := time.Now()
	resp, err := base.RoundTrip(req)
	provider, host := ProviderOf(req.Context()), req.URL.Hostname()
	providerDuration.WithLabelValues(provider, host).Observe(time.Since(start).Seconds())
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests ||
			(resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "") {
			providerThrottles.WithLabelValues(provider, host).Inc()
		}
	}
	providerRequests.WithLabelValues(provider, host, code).Inc()
	return resp, err
}

// InstrumentClient returns a copy of c (nil: a client with no timeout of
// its own, as http.DefaultClient) whose requests are counted.
func InstrumentClient(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	if _, done := out.Transport.(*Transport); !done {
		out.Transport = &Transport{Base: out.Transport}
	}
	return &out
}
