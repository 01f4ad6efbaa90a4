package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// find returns the metric of family name whose labels include want, or nil.
func find(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	fams, err := g.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue metrics
				}
			}
			return m
		}
	}
	return nil
}

func counter(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, g, name, labels)
	if m == nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

func TestProviderTransport(t *testing.T) {
	reg := NewRegistry()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/throttled":
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/busy":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer srv.Close()
	host := strings.Split(strings.TrimPrefix(srv.URL, "http://"), ":")[0]
	c := InstrumentClient(srv.Client())
	assert.Same(t, c.Transport, InstrumentClient(c).Transport, "instrumenting twice counts once")

	ctx := WithProvider(context.Background(), "okta")
	get := func(ctx context.Context, path string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	before := func(labels map[string]string) float64 {
		return counter(t, reg, "usersync_provider_requests_total", labels)
	}
	ok0 := before(map[string]string{"provider": "okta", "host": host, "code": "200"})
	thr0 := counter(t, reg, "usersync_provider_throttles_total", map[string]string{"provider": "okta", "host": host})

	get(ctx, "/users")
	get(ctx, "/users")
	get(ctx, "/throttled")
	get(ctx, "/busy")
	get(ctx, "/down")
	get(context.Background(), "/users")

	assert.Equal(t, ok0+2, before(map[string]string{"provider": "okta", "host": host, "code": "200"}))
	assert.Equal(t, 1.0, before(map[string]string{"provider": "okta", "host": host, "code": "429"}))
	assert.Equal(t, 2.0, before(map[string]string{"provider": "okta", "host": host, "code": "503"}))
	assert.GreaterOrEqual(t, before(map[string]string{"provider": Unknown, "host": host, "code": "200"}), 1.0)
	assert.Equal(t, thr0+2, counter(t, reg, "usersync_provider_throttles_total", map[string]string{"provider": "okta", "host": host}),
		"429 and 503 with Retry-After are throttles; a bare 503 is not")
	d := find(t, reg, "usersync_provider_request_duration_seconds", map[string]string{"provider": "okta", "host": host})
	require.NotNil(t, d)
	assert.GreaterOrEqual(t, d.GetHistogram().GetSampleCount(), uint64(5))

	// A request that gets no answer counts as "error".
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, deadURL, nil)
	_, err := c.Do(req)
	require.Error(t, err)
	u, _ := url.Parse(deadURL)
	assert.GreaterOrEqual(t, before(map[string]string{"provider": "okta", "host": u.Hostname(), "code": "error"}), 1.0)

	Throttled(ctx, "graph.example.com")
	assert.GreaterOrEqual(t, counter(t, reg, "usersync_provider_throttles_total", map[string]string{"provider": "okta", "host": "graph.example.com"}), 1.0)
}

func TestInstrumentNilClient(t *testing.T) {
	c := InstrumentClient(nil)
	tr, ok := c.Transport.(*Transport)
	require.True(t, ok)
	assert.Nil(t, tr.Base, "nil means http.DefaultTransport")
	assert.Zero(t, c.Timeout)
}

func TestTemporalHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := TemporalHandler(reg)
	base := h.WithTags(map[string]string{"namespace": "default", "client-name": "x"})

	base.Counter("temporal_request").Inc(2)
	base.WithTags(map[string]string{"operation": "StartWorkflowExecution"}).Counter("temporal_request").Inc(1)
	base.WithTags(map[string]string{"operation": "StartWorkflowExecution"}).Counter("temporal_request").Inc(3)
	base.WithTags(map[string]string{"operation": ""}).Counter("temporal_request").Inc(5) // empty = absent
	base.Gauge("temporal_sticky_cache_size").Update(7)
	base.Gauge("temporal_sticky_cache_size").Update(4)
	tm := base.WithTags(map[string]string{"activity_type": "Fetch"}).Timer("temporal_activity_execution_latency")
	tm.Record(3 * time.Millisecond)
	tm.Record(2 * time.Second)
	tm.Record(time.Hour)                               // beyond the last bucket: only in +Inf
	base.Timer("temporal_request").Record(time.Second) // a name of another kind: refused, not a broken scrape

	fams, err := reg.Gather()
	require.NoError(t, err, "series with different tag keys must gather")
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	assert.True(t, names["temporal_request_total"])
	assert.True(t, names["temporal_sticky_cache_size"])
	assert.True(t, names["temporal_activity_execution_latency_seconds"])

	assert.Equal(t, 7.0, counter(t, reg, "temporal_request_total", map[string]string{"namespace": "default", "client_name": "x", "operation": ""}),
		"the sanitized key, and the union of keys with \"\" for a series without one")
	assert.Equal(t, 4.0, counter(t, reg, "temporal_request_total", map[string]string{"operation": "StartWorkflowExecution"}))
	g := find(t, reg, "temporal_sticky_cache_size", nil)
	require.NotNil(t, g)
	assert.Equal(t, 4.0, g.GetGauge().GetValue())

	hist := find(t, reg, "temporal_activity_execution_latency_seconds", map[string]string{"activity_type": "Fetch"}).GetHistogram()
	assert.Equal(t, uint64(3), hist.GetSampleCount())
	assert.InDelta(t, 3602.003, hist.GetSampleSum(), 1e-6)
	for _, b := range hist.GetBucket() {
		switch b.GetUpperBound() {
		case .001:
			assert.Equal(t, uint64(0), b.GetCumulativeCount())
		case .005:
			assert.Equal(t, uint64(1), b.GetCumulativeCount())
		case 2.5, 300:
			assert.Equal(t, uint64(2), b.GetCumulativeCount())
		}
	}

	// A second handler on the same registry shares the series.
	TemporalHandler(reg).WithTags(map[string]string{"namespace": "default", "client-name": "x"}).Counter("temporal_request").Inc(1)
	assert.Equal(t, 8.0, counter(t, reg, "temporal_request_total", map[string]string{"client_name": "x", "operation": ""}))
}

func TestSanitize(t *testing.T) {
	assert.Equal(t, "a_b_c", sanitize("a-b.c"))
	assert.Equal(t, "_9lives", sanitize("9lives"))
	assert.Equal(t, "_", sanitize(""))
	assert.Equal(t, "x_total", promName("x", "_total"))
	assert.Equal(t, "x_total", promName("x_total", "_total"))
}
