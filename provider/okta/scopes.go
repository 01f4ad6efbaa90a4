package okta

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
)

// scopeFallback is the transport under the SDK that lets a service app
// sync without okta.logs.read. Okta's org authorization server checks every
// requested scope against the app's grants; a scope that is not granted
// fails the whole token request with invalid_scope (RFC 6749 §5.2). The
// logs scope only serves incremental reads, which fall back to full reads
// without it, so a token request refused with invalid_scope is sent again
// once without it; when that succeeds, the scope is left out of every
// later token request of this source and logsRefused turns incremental
// reads into full ones. The v2 SDK sends the token request's parameters in
// its query string (getAccessTokenForPrivateKey), which is where the scope
// is taken out.
type scopeFallback struct {
	next     http.RoundTripper
	optional string // the scope that may be dropped: ScopeLogsRead
	org      string
	log      *slog.Logger
	dropped  atomic.Bool
}

// refused tells whether the optional scope was refused and is left out.
func (f *scopeFallback) refused() bool { return f.dropped.Load() }

func (f *scopeFallback) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path != "/oauth2/v1/token" || !slices.Contains(strings.Fields(req.URL.Query().Get("scope")), f.optional) {
		return f.next.RoundTrip(req)
	}
	if f.dropped.Load() {
		return f.next.RoundTrip(f.without(req))
	}
	resp, err := f.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		return resp, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var oe struct {
		Error string `json:"error"`
	}
	if rerr != nil || json.Unmarshal(body, &oe) != nil || oe.Error != "invalid_scope" {
		return resp, nil
	}
	narrow := f.without(req)
	if narrow.URL.Query().Get("scope") == "" {
		return resp, nil
	}
	again, err := f.next.RoundTrip(narrow)
	if err != nil || again.StatusCode/100 != 2 {
		// Refused without it too: another scope is missing, and the
		// answer says so; the logs scope may well be granted.
		return again, err
	}
	if !f.dropped.Swap(true) {
		f.log.Warn("okta: the service app is not granted "+f.optional+"; incremental sync is off and every run reads the org in full (grant the scope on the app's Okta API Scopes tab)",
			"org", f.org)
	}
	return again, nil
}

// without is req with the optional scope taken out of its scope parameter.
func (f *scopeFallback) without(req *http.Request) *http.Request {
	q := req.URL.Query()
	scopes := slices.DeleteFunc(strings.Fields(q.Get("scope")), func(s string) bool { return s == f.optional })
	q.Set("scope", strings.Join(scopes, " "))
	out := req.Clone(req.Context())
	u := *req.URL
	u.RawQuery = q.Encode()
	out.URL = &u
	return out
}
