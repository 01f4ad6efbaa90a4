package okta

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	clientAssertionTypeJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	grantClientCredentials = "client_credentials"
	// maxAssertionLife is how far in the future Okta accepts a client
	// assertion's exp (one hour), plus clock skew.
	maxAssertionLife = time.Hour + time.Minute
	clockSkew        = time.Minute
)

// oauthError is the body of a token endpoint error (RFC 6749 §5.2).
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// token is POST /oauth2/v1/token for a service app: client_credentials
// with a private-key JWT client assertion (RFC 7523). The v2 SDK sends the
// parameters in the query string; a form body works as well.
func (s *Server) token(w http.ResponseWriter, r *http.Request, now time.Time) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "The token endpoint accepts only POST."})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "The request body cannot be parsed."})
		return
	}
	p := r.Form
	if g := p.Get("grant_type"); g != grantClientCredentials {
		writeJSON(w, http.StatusBadRequest, oauthError{"unsupported_grant_type",
			fmt.Sprintf("The authorization grant type %q is not supported. Configured grant types: [client_credentials].", g)})
		return
	}
	if p.Get("client_assertion_type") != clientAssertionTypeJWT || p.Get("client_assertion") == "" {
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client",
			"Client authentication failed: a private_key_jwt client assertion is required."})
		return
	}
	s.mu.Lock()
	clients := make(map[string]Client, len(s.clients))
	for k, v := range s.clients {
		clients[k] = v
	}
	s.mu.Unlock()
	c, refused := verifyAssertion(p.Get("client_assertion"), clients, origin(r)+"/oauth2/v1/token", now)
	if refused != "" {
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", refused})
		return
	}
	scopes := strings.Fields(p.Get("scope"))
	if len(scopes) == 0 {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_scope", "The 'scope' parameter is required."})
		return
	}
	var missing []string
	for _, sc := range scopes {
		if !contains(c.Scopes, sc) {
			missing = append(missing, sc)
		}
	}
	if len(missing) > 0 {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_scope",
			"The following scopes are not granted to the client: " + strings.Join(missing, " ")})
		return
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := "sim." + hex.EncodeToString(b[:])
	s.mu.Lock()
	s.access[tok] = accessToken{scopes: scopes, expires: now.Add(s.ttl)}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": int(s.ttl / time.Second),
		"access_token": tok, "scope": strings.Join(scopes, " ")})
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

type jwtClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *float64        `json:"exp"`
	Iat *float64        `json:"iat"`
	Nbf *float64        `json:"nbf"`
}

// verifyAssertion checks a client assertion as Okta does: RS256, signed by
// the key registered for its issuer, iss = sub = the client id, aud the
// token endpoint, not expired and not valid for more than an hour. refused
// is the error_description when it is not acceptable.
func verifyAssertion(assertion string, clients map[string]Client, audience string, now time.Time) (client Client, refused string) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return Client{}, "The client_assertion is not a valid JWT."
	}
	var h jwtHeader
	var c jwtClaims
	if err := decodeSegment(parts[0], &h); err != nil {
		return Client{}, "The client_assertion header cannot be decoded."
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return Client{}, "The client_assertion claims cannot be decoded."
	}
	if h.Alg != "RS256" {
		return Client{}, fmt.Sprintf("The client_assertion signature algorithm %q is not allowed; use RS256.", h.Alg)
	}
	cl, ok := clients[c.Iss]
	if !ok || c.Iss == "" {
		return Client{}, fmt.Sprintf("The client_assertion issuer %q is not a registered client.", c.Iss)
	}
	if c.Sub != c.Iss {
		return Client{}, "The client_assertion subject must be the client id."
	}
	if cl.KeyID != "" && h.Kid != "" && h.Kid != cl.KeyID {
		return Client{}, fmt.Sprintf("The client_assertion kid %q does not identify a registered key.", h.Kid)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Client{}, "The client_assertion signature cannot be decoded."
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if cl.PublicKey == nil || rsa.VerifyPKCS1v15(cl.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return Client{}, "The client_assertion signature is invalid."
	}
	if !audienceIs(c.Aud, audience) {
		return Client{}, fmt.Sprintf("The audience of the client_assertion must be %s.", audience)
	}
	switch {
	case c.Exp == nil:
		return Client{}, "The client_assertion has no expiry."
	case now.After(unix(*c.Exp)):
		return Client{}, "The client_assertion has expired."
	case unix(*c.Exp).After(now.Add(maxAssertionLife)):
		return Client{}, "The client_assertion expiry is more than one hour away."
	case c.Iat != nil && unix(*c.Iat).After(now.Add(clockSkew)):
		return Client{}, "The client_assertion was issued in the future."
	case c.Nbf != nil && unix(*c.Nbf).After(now.Add(clockSkew)):
		return Client{}, "The client_assertion is not valid yet."
	}
	return cl, ""
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func audienceIs(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return contains(many, want)
	}
	return false
}

func unix(f float64) time.Time { return time.Unix(int64(f), 0) }
