// Package okta is a simulated Okta org: an http.Handler that answers the
// parts of the Okta management API usersync reads (users, groups, group
// members, app group assignments, the OAuth token endpoint) the way a real
// org does on the wire, so that the Okta source can be tested with the real
// okta-sdk-golang/v2 client and `usersync idpsim` can serve demos and
// benchmarks without an Okta tenant.
//
// "The way a real org does" is the point of the package, because the SDK
// trips over details a naive fake would not have: responses need
// Content-Type application/json; the self and next links must come in two
// separate Link headers (combined, the SDK loops on self); a 429 without
// both X-Rate-Limit-Reset and Date is final for the SDK; /api/v1/users
// omits DEPROVISIONED users without a filter or search; each endpoint caps
// its limit differently (users 200, group members 1000, app groups 20 by
// default and 200 at most). Each endpoint takes only the query options
// Okta documents for it (api.go, filter.go), and the System Log is served
// with the lag, the polling and bounded requests and the next links of
// Okta's "System Log query" page (logs.go). Where the documentation is
// silent or contradicts itself, the simulator takes the reading that is
// harder on a client (a filtered /api/v1/users leaves DEPROVISIONED users
// out unless the filter asks for that status).
//
// The org is generated from a seed, so a test or a benchmark gets the same
// users, groups, managers and statuses every time, and its own Go methods
// change it between syncs (deactivate, suspend, move between groups, rename
// a login...). Rate limits are per endpoint family and window; the window is
// configurable so tests can exhaust a budget and wait for its reset in
// seconds rather than a minute. Faults (a share of 500s, a burst of them,
// latency) are knobs that can be turned while serving.
package okta

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate-limit families: requests are counted per family and window, like
// Okta's per-endpoint org limits.
const (
	FamilyUsers  = "users"  // /api/v1/users...
	FamilyGroups = "groups" // /api/v1/groups...
	FamilyApps   = "apps"   // /api/v1/apps...
	FamilyToken  = "token"  // /oauth2/v1/token
)

// DefaultRateLimits are the per-minute budgets of an Okta org (PROVIDERS.md).
var DefaultRateLimits = map[string]int{FamilyUsers: 600, FamilyGroups: 500, FamilyApps: 100, FamilyToken: 600, FamilyLogs: 120}

// OAuth scopes the simulator knows, and what each endpoint family needs.
const (
	ScopeUsersRead    = "okta.users.read"
	ScopeGroupsRead   = "okta.groups.read"
	ScopeAppsRead     = "okta.apps.read"
	ScopeUsersManage  = "okta.users.manage"
	ScopeGroupsManage = "okta.groups.manage"
)

var (
	familyScope = map[string]string{FamilyUsers: ScopeUsersRead, FamilyGroups: ScopeGroupsRead, FamilyApps: ScopeAppsRead, FamilyLogs: ScopeLogsRead}
	manageScope = map[string]string{FamilyUsers: ScopeUsersManage, FamilyGroups: ScopeGroupsManage, FamilyApps: "okta.apps.manage"}
)

// DefaultAPIToken is the SSWS token of a Config without one.
const DefaultAPIToken = "00sim-okta-api-token"

// Config describes the simulated org.
type Config struct {
	// Seed makes the org: the same seed, the same users and groups.
	Seed int64
	// Users is the number of generated users (default 100).
	Users int
	// Domain is the login and email domain (default example.com).
	Domain string
	// APIToken is an SSWS token allowed everything (default DefaultAPIToken).
	APIToken string
	// RateLimits overrides DefaultRateLimits per family; 0 throttles every
	// request of the family.
	RateLimits map[string]int
	// Window is the rate-limit window (default one minute, as in Okta).
	Window time.Duration
	// TokenTTL is the lifetime of OAuth access tokens (default one hour).
	TokenTTL time.Duration
	// ServerErrorRate is the share of requests answered with a 500.
	ServerErrorRate float64
	// Latency delays every answer.
	Latency time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// LogLag is how long after its published time a System Log event
	// becomes readable (Okta commits events to the log after they
	// happen, usually within seconds; DelayNextEvents makes a few late).
	LogLag time.Duration
	// FilterIncludesDeprovisioned makes /api/v1/users?filter= return
	// DEPROVISIONED users, as Okta's reference says it does; by default a
	// filtered listing has them only when the filter asks for that
	// status, the reading older pages allowed and the harder on a client.
	FilterIncludesDeprovisioned bool
}

// Client is an OAuth service app allowed to get access tokens with a
// private-key JWT (client_credentials with a client assertion).
type Client struct {
	ID        string
	KeyID     string // the kid of the registered key; "" accepts any kid
	PublicKey *rsa.PublicKey
	Scopes    []string // the scopes granted to the app
}

// Server is the simulated org; it is safe for concurrent use.
type Server struct {
	now    func() time.Time
	window time.Duration
	ttl    time.Duration

	mu         sync.Mutex
	apiToken   string
	org        *org
	rng        *rand.Rand // for mutations that need new ids
	generation int        // bumped by ExpireCursors
	limits     map[string]int
	buckets    map[string]*bucket
	tokens     map[string][]string // SSWS token -> scopes (nil: everything)
	clients    map[string]Client
	access     map[string]accessToken
	errRate    float64
	failNext   int
	latency    time.Duration
	faultRNG   *rand.Rand
	requests   map[string]int
	throttled  map[string]int
	nextReqID  int
	events     []logEvent // the System Log, in the order events become readable
	nextEvent  int
	logLag     time.Duration
	lateNext   int           // the next events logged are this many...
	lateBy     time.Duration // ...and become readable this much later still
	backNext   int           // the next events logged are this many...
	backBy     time.Duration // ...and say they were published this long ago
	// filterDeprovisioned: a filtered user listing includes DEPROVISIONED users.
	filterDeprovisioned bool
}

type bucket struct {
	window int64
	used   int
}

type accessToken struct {
	scopes  []string
	expires time.Time
}

// New generates the org of cfg.
func New(cfg Config) *Server {
	if cfg.Users <= 0 {
		cfg.Users = 100
	}
	if cfg.Domain == "" {
		cfg.Domain = "example.com"
	}
	if cfg.APIToken == "" {
		cfg.APIToken = DefaultAPIToken
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{now: cfg.Now, window: cfg.Window, ttl: cfg.TokenTTL, apiToken: cfg.APIToken,
		org:      generate(cfg.Seed, cfg.Users, cfg.Domain),
		rng:      rand.New(rand.NewPCG(uint64(cfg.Seed)+1, 7)),
		limits:   map[string]int{},
		buckets:  map[string]*bucket{},
		tokens:   map[string][]string{cfg.APIToken: nil},
		clients:  map[string]Client{},
		access:   map[string]accessToken{},
		errRate:  cfg.ServerErrorRate,
		latency:  cfg.Latency,
		faultRNG: rand.New(rand.NewPCG(uint64(cfg.Seed)+2, 11)),
		requests: map[string]int{}, throttled: map[string]int{},
		logLag: cfg.LogLag, filterDeprovisioned: cfg.FilterIncludesDeprovisioned}
	for f, n := range DefaultRateLimits {
		s.limits[f] = n
	}
	for f, n := range cfg.RateLimits {
		s.limits[f] = n
	}
	return s
}

// APIToken is the SSWS token allowed everything.
func (s *Server) APIToken() string { return s.apiToken }

// AppID is the id of the usersync app whose assigned groups fill the picker.
func (s *Server) AppID() string { return s.org.appID }

// AddAPIToken adds an SSWS token limited to the given scopes (the
// simulator's stand-in for an admin role): a request to a family whose scope
// is missing answers 403 E0000006.
func (s *Server) AddAPIToken(token string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = append([]string{}, scopes...)
}

// AddClient registers an OAuth service app.
func (s *Server) AddClient(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Scopes = append([]string{}, c.Scopes...)
	s.clients[c.ID] = c
}

// SetRateLimit sets the budget of a family per window; 0 throttles every request.
func (s *Server) SetRateLimit(family string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[family] = n
}

// SetServerErrorRate sets the share of requests answered with a 500.
func (s *Server) SetServerErrorRate(rate float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errRate = rate
}

// FailNext answers the next n requests with a 500, whatever the rate.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetLogLag sets how long after its published time a System Log event
// becomes readable, for the events logged from now on.
func (s *Server) SetLogLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logLag = max(d, 0)
}

// DelayNextEvents makes the next n System Log events late: each becomes
// readable d after it would have (its published time plus the lag), as
// an event Okta commits to the log long after it happened.
func (s *Server) DelayNextEvents(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lateNext, s.lateBy = max(n, 0), max(d, 0)
}

// BackdateNextEvents makes the next n System Log events say they were
// published d before they were logged: to a reader, an event committed to
// the log d after it happened, on a real clock (DelayNextEvents needs a
// clock that can be moved on, as a test's fake one can).
func (s *Server) BackdateNextEvents(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backNext, s.backBy = max(n, 0), max(d, 0)
}

// SetFilterIncludesDeprovisioned says whether /api/v1/users?filter=
// returns DEPROVISIONED users whatever the filter (Config
// FilterIncludesDeprovisioned).
func (s *Server) SetFilterIncludesDeprovisioned(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.filterDeprovisioned = on
}

// ExpireCursors makes every "after" cursor handed out so far invalid, as
// when a long outage outlives the cursors a client kept.
func (s *Server) ExpireCursors() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.generation++
}

// Requests is the number of requests answered per family, 429s included.
func (s *Server) Requests(family string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[family]
}

// Throttled is the number of 429s answered per family.
func (s *Server) Throttled(family string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled[family]
}

// apiError is Okta's error body.
type apiError struct {
	ErrorCode    string       `json:"errorCode"`
	ErrorSummary string       `json:"errorSummary"`
	ErrorLink    string       `json:"errorLink"`
	ErrorID      string       `json:"errorId"`
	ErrorCauses  []errorCause `json:"errorCauses"`
}

type errorCause struct {
	ErrorSummary string `json:"errorSummary"`
}

// Okta error codes the simulator answers with.
const (
	codeValidation   = "E0000001" // API validation failed
	codeInvalidToken = "E0000011"
	codeForbidden    = "E0000006"
	codeNotFound     = "E0000007"
	codeServer       = "E0000009"
	codeMethod       = "E0000022"
	codeBadSearch    = "E0000031"
	codeInvalidParam = "E0000053" // the System Log's invalid filter or parameter
	codeRateLimit    = "E0000047"
)

func (s *Server) writeError(w http.ResponseWriter, status int, code, summary string, causes ...string) {
	e := apiError{ErrorCode: code, ErrorSummary: summary, ErrorLink: code, ErrorID: "oae" + strconv.Itoa(status) + code,
		ErrorCauses: []errorCause{}}
	for _, c := range causes {
		e.ErrorCauses = append(e.ErrorCauses, errorCause{ErrorSummary: c})
	}
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// family tells which rate-limit bucket a path spends.
func family(path string) string {
	switch {
	case path == "/oauth2/v1/token":
		return FamilyToken
	case strings.HasPrefix(path, "/api/v1/users"):
		return FamilyUsers
	case strings.HasPrefix(path, "/api/v1/groups"):
		return FamilyGroups
	case strings.HasPrefix(path, "/api/v1/apps"):
		return FamilyApps
	case strings.HasPrefix(path, "/api/v1/logs"):
		return FamilyLogs
	}
	return "other"
}

// ServeHTTP answers one request: latency, the rate limit, faults, then
// authentication and the endpoint, in the order a real org applies them.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.admin(w, r)
		return
	}
	fam := family(r.URL.Path)
	s.mu.Lock()
	latency := s.latency
	s.nextReqID++
	reqID := fmt.Sprintf("sim-%08d", s.nextReqID)
	s.mu.Unlock()
	if latency > 0 {
		if sleep(r.Context(), latency) != nil {
			return
		}
	}
	now := s.now()
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	w.Header().Set("X-Okta-Request-Id", reqID)

	s.mu.Lock()
	s.requests[fam]++
	limit, remaining, reset, allowed := s.spend(fam, now)
	fail := false
	if allowed {
		switch {
		case s.failNext > 0:
			s.failNext--
			fail = true
		case s.errRate > 0 && s.faultRNG.Float64() < s.errRate:
			fail = true
		}
	} else {
		s.throttled[fam]++
	}
	s.mu.Unlock()
	if limit >= 0 {
		w.Header().Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
		w.Header().Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(reset, 10))
	}
	switch {
	case !allowed:
		s.writeError(w, http.StatusTooManyRequests, codeRateLimit, "API call exceeded rate limit due to too many requests.")
		return
	case fail:
		s.writeError(w, http.StatusInternalServerError, codeServer, "Internal Server Error")
		return
	}

	if fam == FamilyToken {
		s.token(w, r, now)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/api/v1/") {
		s.writeError(w, http.StatusNotFound, codeNotFound, "Not found: Resource not found: "+r.URL.Path+" (Resource)")
		return
	}
	switch r.Method {
	case http.MethodGet:
		if s.authorize(w, r, familyScope[fam], now) {
			s.api(w, r)
		}
	case http.MethodPost, http.MethodPut, http.MethodDelete:
		if s.authorize(w, r, manageScope[fam], now) {
			s.write(w, r)
		}
	default:
		s.writeError(w, http.StatusMethodNotAllowed, codeMethod, "The endpoint does not support the provided HTTP method")
	}
}

// spend counts a request against its family's budget. limit is -1 for
// families without one; reset is the end of the window in epoch seconds.
func (s *Server) spend(fam string, now time.Time) (limit, remaining int, reset int64, ok bool) {
	limit, has := s.limits[fam]
	if !has {
		return -1, 0, 0, true
	}
	idx := now.UnixNano() / int64(s.window)
	end := time.Unix(0, (idx+1)*int64(s.window))
	reset = end.Unix()
	if end.Nanosecond() > 0 {
		reset++
	}
	b := s.buckets[fam]
	if b == nil || b.window != idx {
		b = &bucket{window: idx}
		s.buckets[fam] = b
	}
	if b.used >= limit {
		return limit, 0, reset, false
	}
	b.used++
	return limit, limit - b.used, reset, true
}

// authorize checks the SSWS token or OAuth access token and the scope the
// family needs, answering 401 or 403 as Okta does when they are wrong.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, need string, now time.Time) bool {
	h := r.Header.Get("Authorization")
	s.mu.Lock()
	var scopes []string
	known, bearer := false, false
	switch {
	case strings.HasPrefix(h, "SSWS "):
		scopes, known = s.tokens[strings.TrimPrefix(h, "SSWS ")]
		if known && scopes == nil {
			scopes = []string{ScopeUsersRead, ScopeGroupsRead, ScopeAppsRead, ScopeLogsRead, ScopeUsersManage, ScopeGroupsManage}
		}
	case strings.HasPrefix(h, "Bearer "):
		bearer = true
		var at accessToken
		at, known = s.access[strings.TrimPrefix(h, "Bearer ")]
		if known && now.After(at.expires) {
			delete(s.access, strings.TrimPrefix(h, "Bearer "))
			known = false
		}
		scopes = at.scopes
	}
	s.mu.Unlock()
	realm := `Bearer authorization_uri="` + origin(r) + `/oauth2/v1/authorize", realm="IdpMyAccountAPI", scope="` + need + `"`
	if !known {
		if bearer {
			w.Header().Set("WWW-Authenticate", realm+`, error="invalid_token", error_description="The access token is invalid."`)
		}
		s.writeError(w, http.StatusUnauthorized, codeInvalidToken, "Invalid token provided")
		return false
	}
	if need != "" && !contains(scopes, need) {
		if bearer {
			w.Header().Set("WWW-Authenticate", realm+`, error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="`+r.URL.Path+`"`)
		}
		s.writeError(w, http.StatusForbidden, codeForbidden, "You do not have permission to perform the requested action")
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// origin is the org URL as the client addressed it.
func origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// sleep waits d, or less when ctx ends first (the client gave up).
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
