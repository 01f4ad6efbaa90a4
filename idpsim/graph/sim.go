// Package graph is a simulated Microsoft Entra ID: the client credentials
// token endpoint and the part of Microsoft Graph v1.0 that usersync reads,
// answering the way PROVIDERS.md says the real service does — absolute
// nextLinks, $top up to 999, $select honoured with unset properties as
// null, 501 for per-user-only properties on a list, @odata.type on
// directory objects, $batch, $expand=manager, the AADSTS errors of a
// refused sign-in, 403 for an app without consent, advanced queries that
// need ConsistencyLevel, and 429 with a fractional Retry-After.
//
// It exists so that the Entra ID source can be tested with the real SDK
// end to end, and so that anyone can demo or benchmark usersync without a
// tenant (`usersync idpsim`). A tenant is generated from a seed (users,
// nested security groups, managers, disabled accounts, and mail-enabled,
// Microsoft 365 and distribution groups that a picker must or must not
// show) and then changed between syncs through Go methods or the admin
// endpoints under /_sim. One server holds any number of tenants: the token
// says which one a Graph request reads, so profiles on two tenants can
// sync side by side against one URL. Faults — throttling, 5xx, latency,
// empty pages, broken JSON, expired page tokens — are knobs on the server.
package graph

import (
	"crypto/rand"
	"encoding/hex"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults are what the server does wrong on purpose, on Graph requests
// (not on the token endpoint or /_sim).
type Faults struct {
	// ThrottleShare of requests (inner $batch requests too) answer 429
	// TooManyRequests with Retry-After: RetryAfter in seconds, fractional.
	ThrottleShare float64       `json:"throttleShare"`
	RetryAfter    time.Duration `json:"retryAfter"`
	// ErrorShare of requests answer 503 or 504.
	ErrorShare float64 `json:"errorShare"`
	// Latency is added to every top-level request.
	Latency time.Duration `json:"latency"`
	// EmptyPageShare of list pages that have more to come answer an empty
	// value with a nextLink to the same place.
	EmptyPageShare float64 `json:"emptyPageShare"`
}

// Options configure a server.
type Options struct {
	// Seed drives the fault dice.
	Seed uint64
	// TokenLifetime is expires_in of issued tokens (default 3599s).
	TokenLifetime time.Duration
	// DeltaPageSize is how many entries a delta page holds (a group's
	// members one each): the server's choice, since the delta functions
	// ignore $top. Default DefaultDeltaPageSize.
	DeltaPageSize int
	Faults        Faults
}

// DefaultDeltaPageSize is the entries of a delta page when Options do not
// say.
const DefaultDeltaPageSize = 200

// Stats count what the server answered.
type Stats struct {
	Tokens    int // tokens issued
	Requests  int // Graph requests, inner $batch requests included
	Throttled int // 429s sent
	Failed    int // 5xx sent
	Batches   int // $batch requests
	// MostInFlight is the most top-level Graph requests ever answered at
	// once: how much concurrency a client put on the tenant.
	MostInFlight int
}

// Server is the simulator; it is an http.Handler.
type Server struct {
	opts Options

	mu        sync.Mutex
	tenants   map[string]*Tenant // by lower-case id and domain
	order     []*Tenant
	tokens    map[string]token
	faults    Faults
	dice      *mrand.Rand
	failNext  []int // statuses for the next top-level requests
	corrupt   int   // next list pages to send as broken JSON
	pageEpoch int   // page tokens of earlier epochs are expired
	inFlight  int   // top-level Graph requests being answered
	// deltaEpoch: delta tokens of earlier epochs answer 410 (delta.go)
	deltaEpoch int
	stats      Stats
	now        func() time.Time
}

type token struct {
	tenant  *Tenant
	client  Client
	expires time.Time
}

// New returns a server without tenants.
func New(o Options) *Server {
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = 3599 * time.Second
	}
	return &Server{opts: o, tenants: map[string]*Tenant{}, tokens: map[string]token{}, faults: o.Faults,
		dice: mrand.New(mrand.NewPCG(o.Seed, o.Seed+1)), now: time.Now} //nolint:gosec // fault dice
}

func (s *Server) deltaPageSize() int {
	if s.opts.DeltaPageSize > 0 {
		return s.opts.DeltaPageSize
	}
	return DefaultDeltaPageSize
}

// SetClock replaces the server's clock (tests: tokens and delta links
// that age).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// AddTenant generates a tenant and serves it.
func (s *Server) AddTenant(o TenantOptions) *Tenant {
	t := newTenant(o)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenants[strings.ToLower(t.ID)] = t
	s.tenants[strings.ToLower(t.Domain)] = t
	s.order = append(s.order, t)
	return t
}

// Tenants lists the tenants in the order they were added.
func (s *Server) Tenants() []*Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Tenant(nil), s.order...)
}

// Tenant finds a tenant by id or domain.
func (s *Server) Tenant(idOrDomain string) (*Tenant, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[strings.ToLower(idOrDomain)]
	return t, ok
}

// SetFaults replaces the fault knobs.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Faults returns the fault knobs.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// FailNext makes the next n top-level Graph requests answer status (a 5xx
// storm, say) before the server recovers.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, status)
	}
}

// StopFailing drops what is left of FailNext: the storm is over.
func (s *Server) StopFailing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = nil
}

// CorruptNext makes the next n list pages broken JSON.
func (s *Server) CorruptNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt += n
}

// ExpirePageTokens makes every nextLink handed out so far answer 400
// Directory_ExpiredPageToken, as after a long outage.
func (s *Server) ExpirePageTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageEpoch++
}

// ExpireTokens makes every access token issued so far expired.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.tokens {
		t.expires = s.now().Add(-time.Second)
		s.tokens[k] = t
	}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ServeHTTP routes to the token endpoint, Graph v1.0 and the admin API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/v1.0/"):
		s.mu.Lock()
		s.inFlight++
		s.stats.MostInFlight = max(s.stats.MostInFlight, s.inFlight)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}()
		s.serveGraph(w, r, false)
	case strings.HasPrefix(path, "/_sim/"):
		s.serveAdmin(w, r)
	case strings.HasSuffix(path, "/oauth2/v2.0/token"):
		s.serveToken(w, r)
	default:
		writeError(w, http.StatusNotFound, "Request_BadRequest", "Invalid request: no such endpoint "+path)
	}
}

// roll is the fault dice: true with probability p.
func (s *Server) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dice.Float64() < p
}

// retryAfterValue writes d as Graph does: seconds, possibly fractional.
func retryAfterValue(d time.Duration) string {
	if d <= 0 {
		d = 100 * time.Millisecond
	}
	secs := math.Round(d.Seconds()*1000) / 1000
	return strings.TrimRight(strings.TrimRight(strconv.FormatFloat(secs, 'f', 3, 64), "0"), ".")
}

func newOpaque(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RemoveTenant stops serving a tenant and lets its data go.
func (s *Server) RemoveTenant(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[strings.ToLower(id)]
	if t == nil {
		return
	}
	delete(s.tenants, strings.ToLower(t.ID))
	delete(s.tenants, strings.ToLower(t.Domain))
	for i, o := range s.order {
		if o == t {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	for k, tk := range s.tokens {
		if tk.tenant == t {
			delete(s.tokens, k)
		}
	}
}
