package service

import (
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersync/usersync/metrics"
)

// SignInThrottle slows down guessing of the API token, which is both the
// bearer token and the admin page's password: every wrong token a client
// presents (to the API or to the sign-in form) uses up one of its
// attempts, and one of everybody's. A client, or everybody, out of
// attempts is refused (429, Retry-After) before the token is even
// compared, until attempts come back at a steady rate. A random token of
// 32 characters cannot be guessed either way; the throttle keeps a weak
// one from being guessed quickly and makes an attack visible in /metrics.
//
// A client is its IP address as the connection shows it. X-Forwarded-For
// is not trusted (anyone can send it), so behind a proxy every client is
// the proxy, and the per-client limit acts as a second global one.
type SignInThrottle struct {
	mu      sync.Mutex
	clients map[string]*bucket
	global  bucket
	now     func() time.Time

	perClient, all rate

	failures  *prometheus.CounterVec
	throttled *prometheus.CounterVec
}

// rate is a bucket's size and how fast it fills.
type rate struct {
	burst float64
	every time.Duration // one attempt back per every
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Attempts per client and for everybody: a burst, then one back per period.
var (
	defaultPerClient = rate{burst: 10, every: 6 * time.Second}         // 10 a minute
	defaultGlobal    = rate{burst: 100, every: 600 * time.Millisecond} // 100 a minute
)

// maxTrackedClients bounds the memory an attack from many addresses can
// take: past it, clients with full buckets are forgotten.
const maxTrackedClients = 10000

// NewSignInThrottle returns a throttle; its counters are registered on reg
// when it is not nil (usersync_signin_failures_total and
// usersync_signin_throttled_total, by "via": api or admin).
func NewSignInThrottle(reg prometheus.Registerer) *SignInThrottle {
	t := &SignInThrottle{clients: map[string]*bucket{}, now: time.Now, perClient: defaultPerClient, all: defaultGlobal,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "signin_failures_total",
			Help: "Wrong API tokens presented, to the API (bearer) or the admin page's sign-in form."}, []string{"via"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "signin_throttled_total",
			Help: "Sign-in attempts refused unchecked because the client, or everybody, had too many failures."}, []string{"via"}),
	}
	t.global = bucket{tokens: t.all.burst, at: t.now()}
	if reg != nil {
		t.failures = metrics.Register(reg, t.failures)
		t.throttled = metrics.Register(reg, t.throttled)
	}
	return t
}

// Where an attempt came from, for the counters.
const (
	ViaAPI   = "api"
	ViaAdmin = "admin"
)

// Allow reports whether client may try a token now; when not, the wait
// before it may, and the refusal is counted.
func (t *SignInThrottle) Allow(client, via string) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	b := t.client(client, now)
	t.fill(&t.global, t.all, now)
	wait := max(need(b, t.perClient), need(&t.global, t.all))
	if wait > 0 {
		t.throttled.WithLabelValues(via).Inc()
		return false, wait
	}
	return true, 0
}

// Fail records a wrong token from client.
func (t *SignInThrottle) Fail(client, via string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	b := t.client(client, now)
	t.fill(&t.global, t.all, now)
	b.tokens = max(b.tokens-1, 0)
	t.global.tokens = max(t.global.tokens-1, 0)
	t.failures.WithLabelValues(via).Inc()
}

func (t *SignInThrottle) client(addr string, now time.Time) *bucket {
	b, ok := t.clients[addr]
	if !ok {
		if len(t.clients) >= maxTrackedClients {
			for k, c := range t.clients {
				if t.fill(c, t.perClient, now); c.tokens >= t.perClient.burst {
					delete(t.clients, k)
				}
			}
		}
		b = &bucket{tokens: t.perClient.burst, at: now}
		t.clients[addr] = b
	}
	t.fill(b, t.perClient, now)
	return b
}

func (t *SignInThrottle) fill(b *bucket, r rate, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(r.burst, b.tokens+float64(d)/float64(r.every))
		b.at = now
	}
}

// need is how long until the bucket holds one attempt.
func need(b *bucket, r rate) time.Duration {
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - b.tokens) * float64(r.every)))
}

// ClientOf is the throttle's name of the client of r: its IP address.
func ClientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
