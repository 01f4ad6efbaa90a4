package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// The Temporal SDK reports through client.MetricsHandler: counters,
// gauges and timers created by name, with tags. TemporalHandler records
// them on a Prometheus registry, so the SDK's metrics (requests to the
// frontend, poll latency, activity and workflow task latency, sticky cache
// size, …) are scraped with ours, without the tally bridge and its extra
// modules.
//
// The SDK does not promise that every use of a name carries the same tag
// keys, and Prometheus refuses a family whose series have different label
// names. The handler therefore keeps its own series and, at each scrape,
// gives every series of a name the union of that name's label keys ("" for
// those it lacks).

// timerBuckets cover the SDK's timers, from a local RPC to a long poll.
var timerBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

type temporalKind int

const (
	kindCounter temporalKind = iota
	kindGauge
	kindTimer
)

// temporalSeries is one series: its labels and its value (counter, gauge)
// or histogram state (timer).
type temporalSeries struct {
	labels  map[string]string
	value   float64
	buckets []uint64 // timer: non-cumulative count per bucket
	count   uint64
	sum     float64
}

type temporalFamily struct {
	kind   temporalKind
	series map[string]*temporalSeries // by label signature
}

// temporalCollector holds what the SDK reported, by Prometheus name.
type temporalCollector struct {
	mu       sync.Mutex
	families map[string]*temporalFamily
}

// temporalCollectors maps each registry to its collector: an unchecked
// collector registered twice would report every series twice.
var temporalCollectors sync.Map // prometheus.Registerer -> *temporalCollector

// TemporalHandler returns a client.MetricsHandler (for client.Options)
// whose metrics appear on reg: counters as name_total, timers as
// name_seconds histograms, gauges as they are. Handlers made for one
// registry share their series.
func TemporalHandler(reg prometheus.Registerer) client.MetricsHandler {
	fresh := &temporalCollector{families: map[string]*temporalFamily{}}
	c, loaded := temporalCollectors.LoadOrStore(reg, fresh)
	if !loaded {
		reg.MustRegister(fresh)
	}
	return &temporalHandler{c: c.(*temporalCollector), tags: map[string]string{}}
}

// Describe sends nothing: the families are only known once the SDK has
// reported, which makes this an unchecked collector.
func (c *temporalCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *temporalCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, f := range c.families {
		keySet := map[string]bool{}
		for _, s := range f.series {
			for k := range s.labels {
				keySet[k] = true
			}
		}
		keys := slices.Sorted(maps.Keys(keySet))
		desc := prometheus.NewDesc(name, "Temporal SDK metric "+name+".", keys, nil)
		for _, s := range f.series {
			vals := make([]string, len(keys))
			for i, k := range keys {
				vals[i] = s.labels[k]
			}
			var m prometheus.Metric
			var err error
			switch f.kind {
			case kindCounter:
				m, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, s.value, vals...)
			case kindGauge:
				m, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, s.value, vals...)
			case kindTimer:
				cum := make(map[float64]uint64, len(timerBuckets))
				var n uint64
				for i, b := range timerBuckets {
					n += s.buckets[i]
					cum[b] = n
				}
				m, err = prometheus.NewConstHistogram(desc, s.count, s.sum, cum, vals...)
			}
			if err == nil {
				ch <- m
			}
		}
	}
}

// series finds or makes the series of name with labels, or returns nil
// when the name is already used by another kind of metric.
func (c *temporalCollector) series(name string, kind temporalKind, labels map[string]string) *temporalSeries {
	sig := signature(labels)
	f := c.families[name]
	if f == nil {
		f = &temporalFamily{kind: kind, series: map[string]*temporalSeries{}}
		c.families[name] = f
	}
	if f.kind != kind {
		return nil
	}
	s := f.series[sig]
	if s == nil {
		s = &temporalSeries{labels: labels}
		if kind == kindTimer {
			s.buckets = make([]uint64, len(timerBuckets))
		}
		f.series[sig] = s
	}
	return s
}

func signature(labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

type temporalHandler struct {
	c    *temporalCollector
	tags map[string]string // sanitized keys
}

// WithTags implements client.MetricsHandler.
func (h *temporalHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	for k, v := range tags {
		// An empty value is an absent label to Prometheus: keeping it
		// would make two series of one family read the same.
		if v == "" {
			delete(merged, sanitize(k))
			continue
		}
		merged[sanitize(k)] = v
	}
	return &temporalHandler{c: h.c, tags: merged}
}

// Counter implements client.MetricsHandler.
func (h *temporalHandler) Counter(name string) client.MetricsCounter {
	name = promName(name, "_total")
	return counterFunc(func(d int64) {
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		if s := h.c.series(name, kindCounter, h.tags); s != nil && d > 0 {
			s.value += float64(d)
		}
	})
}

// Gauge implements client.MetricsHandler.
func (h *temporalHandler) Gauge(name string) client.MetricsGauge {
	name = promName(name, "")
	return gaugeFunc(func(v float64) {
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		if s := h.c.series(name, kindGauge, h.tags); s != nil {
			s.value = v
		}
	})
}

// Timer implements client.MetricsHandler.
func (h *temporalHandler) Timer(name string) client.MetricsTimer {
	name = promName(name, "_seconds")
	return timerFunc(func(d time.Duration) {
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		s := h.c.series(name, kindTimer, h.tags)
		if s == nil {
			return
		}
		sec := d.Seconds()
		s.count++
		s.sum += sec
		for i, b := range timerBuckets {
			if sec <= b {
				s.buckets[i]++
				break
			}
		}
	})
}

type (
	counterFunc func(int64)
	gaugeFunc   func(float64)
	timerFunc   func(time.Duration)
)

func (f counterFunc) Inc(d int64)          { f(d) }
func (f gaugeFunc) Update(v float64)       { f(v) }
func (f timerFunc) Record(d time.Duration) { f(d) }

// promName makes an SDK name a valid Prometheus name with the conventional
// suffix of its kind.
func promName(name, suffix string) string {
	name = sanitize(name)
	if suffix != "" && !strings.HasSuffix(name, suffix) {
		name += suffix
	}
	return name
}

// sanitize replaces what Prometheus does not allow in a metric or label
// name with '_'.
func sanitize(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			b[i] = '_'
		}
	}
	if b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}
