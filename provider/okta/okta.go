// Package okta reads users and groups from an Okta org as a
// provider.Source, through okta-sdk-golang/v2.
//
// The v2 SDK is retired upstream, so it is confined to this package: no
// type of it crosses the package boundary, and moving to a newer major
// touches nothing else. It is also wrapped where its defaults are wrong for
// a server that syncs many orgs with credentials from a database:
//
//   - It merges ~/.okta/okta.yaml, a .okta.yaml beside its own source and
//     OKTA_* environment variables into its configuration before applying
//     the options it is given. Open therefore sets every field of that
//     configuration explicitly, so that nothing from the machine can
//     redirect a profile to another org, another token or a proxy.
//   - Its cache is on by default (list pages cached for five minutes): off.
//   - WithPrivateKey takes a file path as readily as a key, and exits the
//     process when the path cannot be read. The key is parsed here instead
//     (PKCS#1 or PKCS#8 RSA, as the Okta admin console hands them out) and
//     given to the SDK as a signer.
//   - It retries a 429 (waiting X-Rate-Limit-Reset − Date + 1 s) but not a
//     5xx, never slows down before a limit is hit, and turns a final 429
//     into a plain "too many requests". The pacer transport (transport.go)
//     retries 5xx answers, sleeps until the reset when a family's budget is
//     nearly spent, and records what each call saw, so errors.go can turn
//     the last answer into the typed errors a Temporal retry policy needs.
//
// Scope is the members of the profile's groups (/api/v1/groups/{id}/users),
// read one Okta page per call; cursors carry the group's index and Okta's
// next link (links.go), so a resumed fetch continues where it stopped.
package okta

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"

	"github.com/usersync/usersync/provider"
)

// OAuth scopes a service app asks for; ScopeAppsRead only with an AppID.
// ScopeLogsRead (delta.go) is asked for too, for incremental reads, but a
// service app that is not granted it still syncs, in full every time.
const (
	ScopeUsersRead  = "okta.users.read"
	ScopeGroupsRead = "okta.groups.read"
	ScopeAppsRead   = "okta.apps.read"
)

// Defaults of Config.
const (
	DefaultUsernameAttribute = "login"
	// DefaultPageSize is the users per page of a group listing: Okta's
	// default and maximum for /groups/{id}/users, so a sync spends as few
	// requests of its rate budget as it can.
	DefaultPageSize = 1000
	MaxPageSize     = 1000
	// DefaultMaxWait keeps a wait for a rate-limit reset inside one call
	// below Temporal's heartbeat timeout (30 s); a longer one comes back as
	// a *provider.ThrottledError and the activity retries after it.
	DefaultMaxWait            = 20 * time.Second
	DefaultRateLimitRetries   = 2
	DefaultServerErrorRetries = 3
	DefaultRetryBackoff       = 500 * time.Millisecond
	DefaultRequestTimeout     = 60 * time.Second
	// groupPageSize is the page of a group listing (the picker, group
	// sync); appGroupPageSize is smaller because each assigned group costs
	// one more request for its name and type.
	groupPageSize    = 200
	appGroupPageSize = 20
)

// Config is the Okta block of a profile, plus how to reach it.
type Config struct {
	// OrgURL is the org's address: https://example.okta.com, or a bare
	// domain (example.okta.com, example.oktapreview.com,
	// example.okta-emea.com). Nothing after the host is allowed.
	OrgURL string
	// APIToken is an SSWS API token. When empty, ClientID and PrivateKey
	// authenticate as an OAuth service app.
	APIToken string
	// ClientID, PrivateKey (PEM, RSA) and KeyID (the key's kid in Okta)
	// are the service app's.
	ClientID   string
	PrivateKey string
	KeyID      string
	// Scopes overrides the scopes a service app asks for: by default
	// okta.users.read, okta.groups.read and okta.logs.read, plus
	// okta.apps.read with an AppID. okta.logs.read is dropped when Okta
	// refuses it (invalid_scope): incremental sync is then off.
	Scopes []string
	// AppID is the usersync app; its assigned groups fill the picker and
	// group sync. Empty: all groups of the org.
	AppID string
	// UsernameAttribute is the profile attribute that becomes the
	// username (default login).
	UsernameAttribute string
	// AttributeMap maps an Okta profile attribute (built-in or custom) to
	// a directory field; firstName, lastName, email and username as
	// targets replace those fields, any other target is an attribute.
	AttributeMap map[string]string
	// PageSize is the users per page (default and maximum 1000).
	PageSize int
	// AllowHTTPLoopback lets OrgURL be plain http to a loopback host
	// (simulators, tests); otherwise only https is accepted.
	AllowHTTPLoopback bool
	// HTTPClient supplies the transport (and cookie jar); nil means
	// net/http's defaults. Its redirect policy is not used: an org URL that
	// redirects is not an Okta API.
	HTTPClient *http.Client
	// MaxWait bounds one wait for a rate-limit reset (default 20 s).
	MaxWait time.Duration
	// RateLimitRetries is how often the SDK retries a 429 (default 2;
	// negative: never).
	RateLimitRetries int
	// ServerErrorRetries is how often a 5xx is retried (default 3), with
	// RetryBackoff doubling from its default of 500 ms.
	ServerErrorRetries int
	RetryBackoff       time.Duration
	// RequestTimeout bounds each HTTP attempt (default 60 s).
	RequestTimeout time.Duration
	// Logger receives what is worth knowing but not an error: waits for a
	// rate-limit reset, okta.logs.read refused to a service app.
	Logger *slog.Logger
	// Now is the clock of change states (when a round starts, whether a
	// saved state is older than the System Log keeps); nil is time.Now.
	Now func() time.Time
}

// Source reads one Okta org. One Source may serve concurrent calls.
type Source struct {
	client    *okta.Client
	org       string // scheme://host, for messages
	oauth     bool
	appID     string
	userAttr  string
	attrs     map[string]string
	pageSize  int
	logLimit  int // events per System Log page
	pacer     *pacer
	log       *slog.Logger
	scopeHint string // the scopes to grant, for messages
	// scopes drops okta.logs.read from a service app's token requests
	// once Okta refused it; nil for API tokens.
	scopes *scopeFallback
	now    func() time.Time
}

var _ provider.Source = (*Source)(nil)

// Open checks the configuration and builds the SDK client. It does not
// call Okta: Test does.
func (c Config) Open() (*Source, error) {
	org, loopbackHTTP, err := orgURL(c.OrgURL, c.AllowHTTPLoopback)
	if err != nil {
		return nil, err
	}
	s := &Source{org: org, appID: strings.TrimSpace(c.AppID), userAttr: strings.TrimSpace(c.UsernameAttribute),
		pageSize: c.PageSize, logLimit: logsLimit, log: c.Logger, attrs: map[string]string{}, now: c.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.userAttr == "" {
		s.userAttr = DefaultUsernameAttribute
	}
	switch {
	case s.pageSize == 0:
		s.pageSize = DefaultPageSize
	case s.pageSize < 0:
		return nil, fmt.Errorf("okta: page size %d is negative", c.PageSize)
	case s.pageSize > MaxPageSize:
		s.pageSize = MaxPageSize
	}
	for k, v := range c.AttributeMap {
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" || v == "" {
			return nil, fmt.Errorf("okta: attribute map entry %q -> %q is incomplete", k, v)
		}
		s.attrs[k] = v
	}

	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = []string{ScopeUsersRead, ScopeGroupsRead}
		if s.appID != "" {
			scopes = append(scopes, ScopeAppsRead)
		}
		scopes = append(scopes, ScopeLogsRead)
	}
	// The scopes to grant, for messages: okta.logs.read is not needed to
	// sync, only to sync incrementally.
	s.scopeHint = strings.Join(slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return sc == ScopeLogsRead }), ", ")
	if slices.Contains(scopes, ScopeLogsRead) {
		s.scopeHint += " (and " + ScopeLogsRead + " for incremental sync)"
	}

	var signer jose.Signer
	mode, token := "SSWS", strings.TrimSpace(c.APIToken)
	switch {
	case token != "":
	case c.ClientID != "" && c.PrivateKey != "":
		key, err := parsePrivateKey(c.PrivateKey)
		if err != nil {
			return nil, err
		}
		opts := &jose.SignerOptions{}
		if c.KeyID != "" {
			opts = opts.WithHeader("kid", c.KeyID)
		}
		if signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts); err != nil {
			return nil, fmt.Errorf("okta: private key cannot sign: %w", err)
		}
		mode, s.oauth = "PrivateKey", true
	case c.ClientID != "":
		return nil, errors.New("okta: a service app needs its private key (okta.privateKey)")
	case c.PrivateKey != "":
		return nil, errors.New("okta: a private key needs its service app's client id (okta.clientId)")
	default:
		return nil, errors.New("okta: no credentials: set an API token, or a service app's client id and private key")
	}

	p := newPacer(c, s.log)
	s.pacer = p
	base := c.HTTPClient
	if base == nil {
		base = &http.Client{}
	}
	next := base.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	p.next = next
	var transport http.RoundTripper = p
	if s.oauth && slices.Contains(scopes, ScopeLogsRead) && len(scopes) > 1 {
		s.scopes = &scopeFallback{next: p, optional: ScopeLogsRead, org: s.org, log: s.log}
		transport = s.scopes
	}
	hc := &http.Client{Transport: transport, Jar: base.Jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	retries := c.RateLimitRetries
	if retries == 0 {
		retries = DefaultRateLimitRetries
	}
	var oauthScopes []string
	if s.oauth {
		oauthScopes = scopes
	}
	// Every field of the SDK's configuration is set here, so that the
	// values it read from ~/.okta, .okta.yaml and OKTA_* are all replaced.
	setters := []okta.ConfigSetter{
		okta.WithOrgUrl(org),
		okta.WithToken(token),
		okta.WithAuthorizationMode(mode),
		okta.WithClientId(strings.TrimSpace(c.ClientID)),
		okta.WithScopes(oauthScopes),
		okta.WithPrivateKey(""), // never a path: the signer below carries the key
		okta.WithPrivateKeyId(c.KeyID),
		okta.WithPrivateKeySigner(signer),
		okta.WithClientAssertion(""),
		okta.WithCache(false),
		okta.WithCacheManager(nil),
		okta.WithCacheTtl(0),
		okta.WithCacheTti(0),
		okta.WithProxyHost(""),
		okta.WithProxyPort(0),
		okta.WithProxyUsername(""),
		okta.WithProxyPassword(""),
		okta.WithConnectionTimeout(int64(p.attemptTimeout / time.Second)),
		okta.WithRequestTimeout(0), // the pacer bounds each attempt instead
		okta.WithRateLimitMaxRetries(int32(max(retries, 0))),
		okta.WithRateLimitMaxBackOff(max(int64(p.maxWait/time.Second), 1)),
		okta.WithTestingDisableHttpsCheck(loopbackHTTP),
		okta.WithUserAgentExtra("usersync"),
		okta.WithHttpClientPtr(hc),
	}
	_, client, err := okta.NewClient(context.Background(), setters...)
	if err != nil {
		return nil, fmt.Errorf("okta: %w", err)
	}
	s.client = client
	return s, nil
}

// orgURL normalises the org address to scheme://host[:port]. loopbackHTTP
// tells whether it is plain http to a loopback host (allowed only with
// allowHTTP, and the only case the SDK's https check is turned off).
func orgURL(raw string, allowHTTP bool) (org string, loopbackHTTP bool, err error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", false, errors.New("okta: no org URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", false, fmt.Errorf("okta: org URL cannot be read: %w", err)
	}
	host := u.Hostname()
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "", false, fmt.Errorf("okta: org URL must be https, not %s", u.Scheme)
	case host == "":
		return "", false, errors.New("okta: org URL has no host")
	case u.User != nil:
		return "", false, errors.New("okta: org URL must not carry credentials")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", false, fmt.Errorf("okta: org URL must be the org address only, such as https://%s (no path or query)", u.Host)
	case strings.Contains(host, "-admin."):
		return "", false, fmt.Errorf("okta: %s is the admin console; use the org address without -admin", host)
	}
	if u.Scheme == "http" {
		if !isLoopback(host) || !allowHTTP {
			return "", false, fmt.Errorf("okta: org URL must be https (http only to a loopback host in tests): %s", u.Host)
		}
		loopbackHTTP = true
	}
	return u.Scheme + "://" + u.Host, loopbackHTTP, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parsePrivateKey reads an RSA key in PEM: PKCS#1 ("RSA PRIVATE KEY") or
// PKCS#8 ("PRIVATE KEY", what the Okta admin console generates). Keys
// pasted into JSON often carry literal \n; those are undone first.
func parsePrivateKey(s string) (*rsa.PrivateKey, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, `\n`, "\n"))
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("okta: private key is not PEM: paste the whole key, from -----BEGIN PRIVATE KEY----- to the END line")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("okta: private key cannot be parsed: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("okta: private key cannot be parsed: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("okta: private key is %T, but Okta service apps sign with RSA", k)
		}
		return rk, nil
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("okta: private key is encrypted: give the key without a passphrase")
	}
	return nil, fmt.Errorf("okta: private key PEM block is %q, not an RSA private key", block.Type)
}

// Test reads one user and one group (or one of the app's groups): the
// cheapest reads that prove the credentials, the scopes and, with an
// AppID, that the app exists. What works but not fully (the System Log
// out of reach, so every run reads in full) is logged as a warning; a
// caller that can show it uses TestWarnings.
func (s *Source) Test(ctx context.Context) error {
	warnings, err := s.TestWarnings(ctx)
	for _, w := range warnings {
		s.log.Warn(w, "org", s.org)
	}
	return err
}

// TestWarnings is Test, and says what the connection cannot do although
// it works: read the System Log, which incremental sync needs.
func (s *Source) TestWarnings(ctx context.Context) ([]string, error) {
	uctx, tr := withTrace(ctx)
	_, resp, err := s.client.User.ListUsers(uctx, &query.Params{Limit: 1})
	if err := s.check(uctx, tr, resp, err, "read users", ""); err != nil {
		return nil, err
	}
	if s.appID != "" {
		actx, tr := withTrace(ctx)
		_, resp, err = s.client.Application.ListApplicationGroupAssignments(actx, url.PathEscape(s.appID), &query.Params{Limit: 1})
		if err := s.check(actx, tr, resp, err, "read the groups assigned to app "+s.appID+" (okta.appId)", ""); err != nil {
			return nil, err
		}
	}
	// Checked with an app too: a sync scoped to an app's groups still
	// reads those groups and their members through the groups API
	// (okta.groups.read), which an app grant alone does not give.
	gctx, tr := withTrace(ctx)
	_, resp, err = s.client.Group.ListGroups(gctx, &query.Params{Limit: 1})
	if err := s.check(gctx, tr, resp, err, "read groups", ""); err != nil {
		return nil, err
	}
	if w := s.logWarning(ctx); w != "" {
		return []string{w}, nil
	}
	return nil, nil
}

// logWarning reads one event of the System Log with a polling request,
// as incremental sync does, and says what is wrong when it cannot. It
// gives no since: Okta's default (7 days back) is valid whatever the
// local clock says.
func (s *Source) logWarning(ctx context.Context) string {
	if s.scopes != nil && s.scopes.refused() {
		return "okta: " + ScopeLogsRead + " is not granted to the service app (the token endpoint answered invalid_scope): incremental sync is off and every run reads the whole org; grant " + ScopeLogsRead + " on the app's Okta API Scopes tab to turn it on"
	}
	lctx, tr := withTrace(ctx)
	_, resp, err := s.client.LogEvent.GetLogs(lctx, &query.Params{SortOrder: "ASCENDING", Limit: 1})
	err = s.check(lctx, tr, resp, err, "read the System Log", "")
	switch {
	case err == nil:
		return ""
	case errors.Is(err, provider.ErrPermission) && s.oauth:
		return "okta: the service app's access token may not read the System Log (scope " + ScopeLogsRead + "): incremental sync is off and every run reads the whole org; grant " + ScopeLogsRead + " to the app: " + err.Error()
	case errors.Is(err, provider.ErrPermission):
		return "okta: the API token may not read the System Log: incremental sync is off and every run reads the whole org; the token's admin needs a role that reads the System Log (such as Read-only or Report Administrator): " + err.Error()
	}
	return "okta: the System Log could not be read, which incremental sync needs: " + err.Error()
}
