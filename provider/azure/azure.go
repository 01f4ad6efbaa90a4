// Package azure reads users and groups from Microsoft Entra ID through
// Microsoft Graph (msgraph-sdk-go) as a provider.Source.
//
// The SDK is used as it is meant to be, with three replacements that the
// wire facts in PROVIDERS.md force on us:
//
//   - Authentication is a TokenCredential of ours (client credentials, a
//     form POST to {authority}/{tenant}/oauth2/v2.0/token). azidentity
//     refuses a non-https authority, and we need sovereign clouds, custom
//     authorities and a local simulator alike; ours also turns the AADSTS
//     codes into messages that say which field of the profile to fix.
//   - The SDK's retry middleware truncates a fractional Retry-After to whole
//     seconds (so "0.5" means "retry at once") and backs off for seconds on
//     a 503: ours honours the exact wait, and hands a long throttle back to
//     the caller as a *provider.ThrottledError so that Temporal, not a
//     sleeping activity, does the waiting.
//   - Every request is built from the service client (so $select, $filter
//     and $top survive) and every nextLink is followed verbatim with the
//     headers the first page needed (the page iterator drops them).
//
// Scope is the transitive user members of the groups selected on the
// profile. A Users cursor names the selected group being read and the
// nextLink inside it, so a fetch resumes mid-group after a crash, and a
// nextLink Graph no longer accepts becomes provider.ErrCursorExpired (the
// fetch starts over) rather than a silent gap.
package azure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	azauth "github.com/microsoftgraph/msgraph-sdk-go-core/authentication"

	"github.com/usersync/usersync/provider"
)

// Clouds Open knows; the profile's cloud names them the same way.
const (
	CloudGlobal = "global"
	CloudUSGov  = "usgov"
	CloudChina  = "china"
)

type cloud struct {
	authority string // sign-in endpoint origin
	graph     string // Graph v1.0 base
}

var clouds = map[string]cloud{
	CloudGlobal: {"https://login.microsoftonline.com", "https://graph.microsoft.com/v1.0"},
	CloudUSGov:  {"https://login.microsoftonline.us", "https://graph.microsoft.us/v1.0"},
	CloudChina:  {"https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/v1.0"},
}

// MaxPageSize is the largest $top Graph accepts on user and member lists.
const MaxPageSize = 999

// DefaultUsernameAttribute is the Graph property that gives the username.
const DefaultUsernameAttribute = "userPrincipalName"

// UsernameAttributes are the properties a username may come from: string
// properties that every list returns on $select and that identify a person.
var UsernameAttributes = []string{"userPrincipalName", "mail", "mailNickname", "employeeId",
	"onPremisesSamAccountName", "onPremisesUserPrincipalName"}

// Config is the azure block of a profile plus what the process supplies.
type Config struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	// Cloud is global (default), usgov or china: it picks the sign-in and
	// Graph endpoints unless AuthorityURL or GraphBaseURL override them.
	Cloud string
	// GraphBaseURL overrides the cloud's Graph endpoint, such as
	// https://graph.microsoft.com/v1.0; a URL without a path gets /v1.0.
	GraphBaseURL string
	// AuthorityURL overrides the cloud's sign-in origin; the token URL is
	// {AuthorityURL}/{TenantID}/oauth2/v2.0/token.
	AuthorityURL string
	// IncludeMailEnabledSecurityGroups adds mail-enabled security groups to
	// the picker and to group sync.
	IncludeMailEnabledSecurityGroups bool
	// UsernameAttribute is the Graph property used as username (default
	// userPrincipalName); see UsernameAttributes.
	UsernameAttribute string
	// AttributeMap maps a Graph user property (Attributes) to
	// the directory field it fills in User.Attributes.
	AttributeMap map[string]string
	// PageSize is $top of user, member and group pages, 1 to 999
	// (default 999).
	PageSize int
	// AllowHTTPLoopback lets GraphBaseURL and AuthorityURL use plain http
	// to a loopback host (a simulator); https is required otherwise.
	AllowHTTPLoopback bool
	// HTTPClient, when set, lends its Transport (proxy, TLS settings) to
	// every request; the SDK's middleware runs on top of it.
	HTTPClient *http.Client
	// Retry tunes the in-process retries; zero values take the defaults.
	Retry  RetryPolicy
	Logger *slog.Logger
}

// tenantPattern is a tenant GUID or domain: it becomes a path segment of
// the token URL, so nothing else may pass.
var tenantPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)

// Source reads one Entra ID tenant. It is safe for concurrent use.
type Source struct {
	client    *msgraphsdk.GraphServiceClient
	adapter   abstractions.RequestAdapter
	cred      *clientSecretCredential
	scopes    []string
	graphBase string
	cloudName string

	includeMailEnabled bool
	usernameAttr       string
	listSelect         []string // $select of user pages
	listAttrs          []attrMapping
	perUserSelect      []string // per-user-only properties, read with $batch
	perUserAttrs       []attrMapping
	pageSize           int32
	retry              RetryPolicy
	log                *slog.Logger
}

var _ provider.Source = (*Source)(nil)

// Open checks the configuration and builds the Graph client. It makes no
// request: Test does.
func (c Config) Open() (*Source, error) {
	tenant := strings.TrimSpace(c.TenantID)
	switch {
	case tenant == "":
		return nil, errors.New("azure: tenantId is required (the Directory (tenant) ID of the app registration)")
	case !tenantPattern.MatchString(tenant):
		return nil, fmt.Errorf("azure: tenantId %q must be a tenant GUID or domain name", tenant)
	}
	clientID := strings.TrimSpace(c.ClientID)
	if clientID == "" {
		return nil, errors.New("azure: clientId is required (the Application (client) ID of the app registration)")
	}
	if c.ClientSecret == "" {
		return nil, errors.New("azure: clientSecret is required (a client secret's Value)")
	}
	cloudName := c.Cloud
	if cloudName == "" {
		cloudName = CloudGlobal
	}
	cl, ok := clouds[cloudName]
	if !ok {
		return nil, fmt.Errorf("azure: unknown cloud %q (global, usgov or china)", c.Cloud)
	}
	authority, graphBase := cl.authority, cl.graph
	if c.AuthorityURL != "" {
		u, err := checkEndpoint("authorityUrl", c.AuthorityURL, c.AllowHTTPLoopback)
		if err != nil {
			return nil, err
		}
		authority = strings.TrimRight(u.String(), "/")
	}
	if c.GraphBaseURL != "" {
		u, err := checkEndpoint("graphBaseUrl", c.GraphBaseURL, c.AllowHTTPLoopback)
		if err != nil {
			return nil, err
		}
		if strings.Trim(u.Path, "/") == "" {
			u.Path = "/v1.0"
		}
		graphBase = strings.TrimRight(u.String(), "/")
	}
	gu, _ := url.Parse(graphBase) // both forms above parse
	// The token is for the Graph resource we call; Graph hosts are their own
	// resource ids in every cloud, and a simulator accepts any .default.
	scopes := []string{gu.Scheme + "://" + gu.Host + "/.default"}

	usernameAttr := c.UsernameAttribute
	if usernameAttr == "" {
		usernameAttr = DefaultUsernameAttribute
	}
	if !slices.Contains(UsernameAttributes, usernameAttr) {
		return nil, fmt.Errorf("azure: usernameAttribute %q is not one of %s", usernameAttr, strings.Join(UsernameAttributes, ", "))
	}
	pageSize := c.PageSize
	switch {
	case pageSize == 0:
		pageSize = MaxPageSize
	case pageSize < 0:
		return nil, fmt.Errorf("azure: page size %d is negative", pageSize)
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	retry := c.Retry.withDefaults()

	s := &Source{graphBase: graphBase, scopes: scopes, cloudName: cloudName,
		includeMailEnabled: c.IncludeMailEnabledSecurityGroups, usernameAttr: usernameAttr,
		pageSize: int32(pageSize), retry: retry, log: log}
	if err := s.planAttributes(c.AttributeMap); err != nil {
		return nil, err
	}

	var parent http.RoundTripper
	timeout := 100 * time.Second
	if c.HTTPClient != nil {
		parent = c.HTTPClient.Transport
		if c.HTTPClient.Timeout > 0 {
			timeout = c.HTTPClient.Timeout
		}
	}
	s.cred = &clientSecretCredential{
		tokenURL: authority + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token",
		tenant:   tenant, clientID: clientID, secret: c.ClientSecret, cloud: cloudName,
		http: &http.Client{Transport: orDefault(parent), Timeout: 30 * time.Second,
			// A token endpoint that redirects is not one to send a secret to.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		now: time.Now,
	}
	auth, err := azauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(s.cred, scopes, []string{gu.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(
		auth, nil, nil, newHTTPClient(parent, timeout, retry, func(ctx context.Context, stale string) (string, error) {
			return s.cred.renew(ctx, tokenOptions(scopes), stale)
		}))
	if err != nil {
		return nil, fmt.Errorf("azure: %w", err)
	}
	// Before the service client is made: it copies the base URL into the
	// path parameters of every request builder.
	adapter.SetBaseUrl(graphBase)
	s.adapter = adapter
	s.client = msgraphsdk.NewGraphServiceClient(adapter)
	return s, nil
}

// checkEndpoint accepts an absolute https URL, or http to a loopback host
// when allowed; it never echoes credentials in a URL.
func checkEndpoint(field, raw string, allowHTTPLoopback bool) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("azure: %s: invalid URL: %w", field, err)
	}
	switch {
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, fmt.Errorf("azure: %s must be an absolute https URL", field)
	case u.User != nil:
		return nil, fmt.Errorf("azure: %s must not carry credentials", field)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("azure: %s must not have a query or fragment", field)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("azure: %s: http is allowed only to localhost, 127.0.0.1 or ::1; use https", field)
	case u.Scheme == "http" && !allowHTTPLoopback:
		return nil, fmt.Errorf("azure: %s: plain http to %s is not enabled in this process; use https", field, u.Host)
	}
	return u, nil
}

// onGraph checks that a link Graph handed out (a nextLink, a deltaLink, a
// cursor or state made of one) points at the Graph endpoint of this
// profile, scheme, host and version, before the request is sent: a link
// from anywhere else is not followed, whoever stored it. sentinel says
// what the caller does then (start the listing over, or read in full).
func (s *Source) onGraph(link string, sentinel error) error {
	u, err := url.Parse(link)
	base, _ := url.Parse(s.graphBase)
	if err != nil || u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) ||
		!strings.HasPrefix(u.Path, strings.TrimRight(base.Path, "/")+"/") || u.User != nil {
		return fmt.Errorf("azure: a link to %s is not on this profile's Graph endpoint %s: %w", hostOf(link), s.graphBase, sentinel)
	}
	return nil
}

// hostOf names where a link points, for messages, without its query.
func hostOf(link string) string {
	u, err := url.Parse(link)
	if err != nil || u.Host == "" {
		return "an unreadable address"
	}
	return u.Scheme + "://" + u.Host
}

// isLoopback is the SDK's own notion of a loopback host: it sends a token
// over plain http only to these, so accepting 127.0.0.2 here would fail later.
func isLoopback(host string) bool {
	switch strings.ToLower(host) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

func orDefault(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}
