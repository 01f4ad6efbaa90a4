package graph

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// serveToken is POST {authority}/{tenant}/oauth2/v2.0/token with the
// client credentials grant, refusing the way Entra ID does.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", 900561,
			"The endpoint only accepts POST requests. Received a "+r.Method+" request.")
		return
	}
	tenantRef := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/oauth2/v2.0/token")
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must be form encoded.")
		return
	}
	f := r.PostForm
	t, ok := s.Tenant(tenantRef)
	switch {
	case !ok:
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf(
			"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
			tenantRef))
		return
	case f.Get("grant_type") == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	case f.Get("grant_type") != "client_credentials":
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+f.Get("grant_type")+"'.")
		return
	case f.Get("client_id") == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	case f.Get("scope") == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
		return
	case !strings.HasSuffix(f.Get("scope"), "/.default"):
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf(
			"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
			f.Get("scope")))
		return
	}
	t.mu.Lock()
	c, known := t.client(f.Get("client_id"))
	t.mu.Unlock()
	switch {
	case !known:
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			f.Get("client_id"), t.Domain))
		return
	case f.Get("client_secret") == "":
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000216,
			"'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
		return
	case f.Get("client_secret") != c.Secret:
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf(
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.",
			c.ID))
		return
	}
	tok := "simtok." + newOpaque(24)
	s.mu.Lock()
	s.tokens[tok] = token{tenant: t, client: c, expires: s.now().Add(s.opts.TokenLifetime)}
	s.stats.Tokens++
	s.mu.Unlock()
	secs := int(s.opts.TokenLifetime / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs,
		"access_token": tok})
}

// writeOAuthError answers like the Entra sign-in endpoint: the AADSTS code
// leads the description, trace lines follow it.
func writeOAuthError(w http.ResponseWriter, status int, errCode string, aadsts int, msg string) {
	now := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	trace, corr := newOpaque(16), newOpaque(16)
	writeJSON(w, status, map[string]any{
		"error": errCode,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			aadsts, msg, trace, corr, now),
		"error_codes":    []int{aadsts},
		"timestamp":      now,
		"trace_id":       trace,
		"correlation_id": corr,
		"error_uri":      fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
