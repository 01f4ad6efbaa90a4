package azure

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/usersync/usersync/provider"
)

// clientSecretCredential is the OAuth 2.0 client credentials grant of
// Microsoft Entra ID as an azcore.TokenCredential. Tokens are kept until
// shortly before they expire, in a cache shared by the process: a Source
// lives for one activity call, and a long run makes hundreds of those, all
// happy with the same token. One sign-in at a time refreshes it.
type clientSecretCredential struct {
	tokenURL string
	tenant   string
	clientID string
	secret   string
	cloud    string
	http     *http.Client
	now      func() time.Time
}

var _ azcore.TokenCredential = (*clientSecretCredential)(nil)

// tokenCache holds the tokens of every credential of the process, by
// token URL, client, secret (hashed: a new secret signs in anew) and
// scope. Each entry has its own lock, so that a slow sign-in for one
// tenant holds up no other.
var tokenCache = struct {
	sync.Mutex
	entries map[[sha256.Size]byte]*cachedToken
}{entries: map[[sha256.Size]byte]*cachedToken{}}

type cachedToken struct {
	mu  sync.Mutex
	tok azcore.AccessToken
}

// maxTokenBody caps what is read of a token response.
const maxTokenBody = 1 << 20

// GetToken implements azcore.TokenCredential.
func (c *clientSecretCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.token(ctx, opts, "")
}

// renew returns a token other than stale, signing in again if the cache
// still holds stale (which Graph has just refused).
func (c *clientSecretCredential) renew(ctx context.Context, opts policy.TokenRequestOptions, stale string) (string, error) {
	tok, err := c.token(ctx, opts, stale)
	return tok.Token, err
}

// token is the cached token unless it is due for refresh or is stale.
func (c *clientSecretCredential) token(ctx context.Context, opts policy.TokenRequestOptions, stale string) (azcore.AccessToken, error) {
	scope := strings.Join(opts.Scopes, " ")
	key := sha256.Sum256([]byte(strings.Join([]string{c.tokenURL, c.clientID, c.secret, scope}, "\x00")))
	tokenCache.Lock()
	e := tokenCache.entries[key]
	if e == nil {
		e = &cachedToken{}
		tokenCache.entries[key] = e
	}
	tokenCache.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tok.Token != "" && e.tok.Token != stale && c.now().Before(e.tok.RefreshOn) {
		return e.tok, nil
	}
	tok, err := c.fetch(ctx, scope)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	e.tok = tok
	return tok, nil
}

// tokenResponse is both shapes of the token endpoint's answer.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	ExpiresIn   json.RawMessage `json:"expires_in"` // a number, or a string on some authorities
	Error       string          `json:"error"`
	Description string          `json:"error_description"`
	Codes       []int           `json:"error_codes"`
}

func (c *clientSecretCredential) fetch(ctx context.Context, scope string) (azcore.AccessToken, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.clientID},
		"client_secret": {c.secret},
		"scope":         {scope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("azure sign-in: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := c.now()
	resp, err := c.http.Do(req)
	if err != nil {
		return azcore.AccessToken{}, transportError(ctx, "the Microsoft Entra sign-in endpoint", c.tokenURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return azcore.AccessToken{}, transportError(ctx, "the Microsoft Entra sign-in endpoint", c.tokenURL, err)
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode == http.StatusOK && jsonErr == nil && tr.AccessToken != "" {
		lifetime := parseExpiresIn(tr.ExpiresIn)
		// Refresh ahead of expiry (five minutes, or half of a short
		// lifetime) so that a token never lapses between two pages.
		margin := min(5*time.Minute, lifetime/2)
		return azcore.AccessToken{Token: tr.AccessToken, ExpiresOn: start.Add(lifetime), RefreshOn: start.Add(lifetime - margin)}, nil
	}
	return azcore.AccessToken{}, c.signInError(resp, tr, jsonErr)
}

// parseExpiresIn reads expires_in in seconds; a missing or odd value means
// the token is used for a minute and then asked for again.
func parseExpiresIn(raw json.RawMessage) time.Duration {
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 {
		return time.Minute
	}
	return time.Duration(n * float64(time.Second))
}

// AADSTS codes the sign-in endpoint gives for a wrong profile field.
const (
	aadTenantNotFound  = 90002
	aadTenantInvalid   = 900023
	aadAppNotFound     = 700016
	aadInvalidSecret   = 7000215
	aadSecretExpired   = 7000222
	aadInvalidScope    = 70011
	aadInvalidResource = 500011
)

// signInError turns a refused token request into an error that names the
// profile field to fix. The secret never appears in it: the endpoint does
// not echo it, and any text taken from the answer is scrubbed anyway.
func (c *clientSecretCredential) signInError(resp *http.Response, tr tokenResponse, jsonErr error) error {
	status := resp.StatusCode
	switch {
	case status == http.StatusTooManyRequests:
		return &provider.ThrottledError{RetryAfter: retryAfter(resp.Header, time.Second),
			Message: "the Microsoft Entra sign-in endpoint is throttling token requests"}
	case status >= 500:
		return fmt.Errorf("azure sign-in: the Microsoft Entra sign-in endpoint answered %d; retry later", status)
	case jsonErr != nil || (tr.Error == "" && len(tr.Codes) == 0):
		// Not the token endpoint at all (a proxy page, a wrong authorityUrl).
		if status == http.StatusOK || status == http.StatusNotFound {
			return fmt.Errorf("%w: %s did not answer as a Microsoft Entra token endpoint (HTTP %d): check azure.authorityUrl and azure.cloud",
				provider.ErrAuth, c.tokenURL, status)
		}
		return fmt.Errorf("%w: the sign-in endpoint %s answered HTTP %d without an OAuth error", provider.ErrAuth, c.tokenURL, status)
	}
	code := 0
	if len(tr.Codes) > 0 {
		code = tr.Codes[0]
	} else if n, ok := aadstsCode(tr.Description); ok {
		code = n
	}
	switch code {
	case aadTenantNotFound, aadTenantInvalid:
		return fmt.Errorf("%w: tenant %q was not found in the %s cloud (AADSTS%d): check azure.tenantId (the Directory (tenant) ID on the app registration's overview) and azure.cloud",
			provider.ErrAuth, c.tenant, c.cloud, code)
	case aadAppNotFound:
		return fmt.Errorf("%w: no application with client id %q in tenant %q (AADSTS%d): check azure.clientId (the Application (client) ID) and that the app is registered in this tenant",
			provider.ErrAuth, c.clientID, c.tenant, code)
	case aadInvalidSecret:
		return fmt.Errorf("%w: the client secret of application %q was refused (AADSTS%d): check azure.clientSecret; it must be the secret's Value, not its Secret ID",
			provider.ErrAuth, c.clientID, code)
	case aadSecretExpired:
		return fmt.Errorf("%w: the client secret of application %q has expired (AADSTS%d): create a new secret on the app registration and save it in azure.clientSecret",
			provider.ErrAuth, c.clientID, code)
	case aadInvalidScope, aadInvalidResource:
		return fmt.Errorf("%w: the sign-in endpoint refused a token for Microsoft Graph (AADSTS%d): check azure.cloud and azure.graphBaseUrl",
			provider.ErrAuth, code)
	}
	desc := firstLine(tr.Description)
	if c.secret != "" {
		desc = strings.ReplaceAll(desc, c.secret, "[redacted]")
	}
	return fmt.Errorf("%w: sign-in refused for application %q in tenant %q (%s): %s", provider.ErrAuth, c.clientID, c.tenant, tr.Error, desc)
}

// aadstsCode reads the number of "AADSTS7000215: …".
func aadstsCode(desc string) (int, bool) {
	rest, ok := strings.CutPrefix(desc, "AADSTS")
	if !ok {
		return 0, false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	n, err := strconv.Atoi(rest[:end])
	return n, err == nil
}

// firstLine keeps the human part of an error_description: the lines after
// it are trace and correlation ids.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	return strings.TrimSpace(s)
}

func tokenOptions(scopes []string) policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: scopes}
}
