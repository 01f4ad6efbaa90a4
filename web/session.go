package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sessions are signed cookies: any API replica that has the same secret
// key and API token reads a session another one issued, so replicas behind
// a load balancer need no sticky sessions and no session store. Only a
// sign-out is shared state: it revokes the session's id in the database
// (directory.Store.RevokeSession), which every replica checks, so that a
// copied cookie stops working the moment its owner signs out. The idle
// timeout bounds a session nobody signed out of, and changing the API
// token (or the secret key) ends every session at once, because the
// signing key is derived from both.

const (
	sessionCookie = "usersync_session"
	// signinCookie carries the CSRF token of the sign-in form, before there
	// is a session to keep it in.
	signinCookie = "usersync_signin"

	// DefaultIdleTimeout ends a session nobody used for this long.
	DefaultIdleTimeout = 8 * time.Hour
	// maxSessionAge ends a session however busy, so that a cookie never
	// lives for ever.
	maxSessionAge = 7 * 24 * time.Hour
	// touchEvery is how stale a session's last-seen time may be before a
	// response renews the cookie: renewing on every request would set a
	// cookie on every answer, including the JSON a page polls.
	touchEvery = time.Minute
	// signinTTL bounds how long a sign-in form stays usable.
	signinTTL = time.Hour
)

// SessionKey derives the key that signs admin session cookies from the
// secret key (USERSYNC_SECRET_KEY, base64) and the API token, the admin's
// password. The key never signs anything but cookies: the secret key itself
// stays only for sealing profile secrets.
func SessionKey(secretKeyB64, apiToken string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(secretKeyB64))
	if err != nil || len(raw) < 16 {
		return nil, errors.New("session key: the secret key is not base64 of at least 16 bytes")
	}
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("usersync admin session v1\x00"))
	tok := sha256.Sum256([]byte(apiToken))
	m.Write(tok[:])
	return m.Sum(nil), nil
}

// session is what the session cookie holds, signed.
type session struct {
	ID     string `json:"sid"`  // what a sign-out revokes
	Issued int64  `json:"iat"`  // unix seconds
	Seen   int64  `json:"seen"` // unix seconds of the last request
	CSRF   string `json:"csrf"` // the forms' token
}

// signinState is what the sign-in cookie holds, signed.
type signinState struct {
	Issued int64  `json:"iat"`
	CSRF   string `json:"csrf"`
}

// sessions signs, reads and writes the cookies.
type sessions struct {
	key  []byte
	idle time.Duration
	now  func() time.Time
	// revoked tells whether a session id was signed out; revoke records
	// one (the store, shared by every replica).
	revoked func(ctx context.Context, id string) (bool, error)
	revoke  func(ctx context.Context, id string, until time.Time) error
	log     *slog.Logger
}

func newToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("web: crypto/rand: %v", err)) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sign encodes v as base64url(JSON) "." base64url(HMAC of that), with the
// cookie's name in the MAC so that one cookie cannot stand in for another.
func (s *sessions) sign(name string, v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("web: marshal %s cookie: %v", name, err)) // plain structs
	}
	body := base64.RawURLEncoding.EncodeToString(raw)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac(name, body))
}

func (s *sessions) mac(name, body string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(name + "\x00" + body))
	return m.Sum(nil)
}

// verify reads a value sign made, or reports false when it was not signed
// with our key.
func (s *sessions) verify(name, value string, v any) bool {
	body, sig, ok := strings.Cut(value, ".")
	if !ok {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(name, body)) {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	return err == nil && json.Unmarshal(raw, v) == nil
}

// read returns the request's live session, or nil.
func (s *sessions) read(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	var se session
	// A cookie without an id (issued before sign-out revoked sessions)
	// could not be revoked, so it is not taken.
	if !s.verify(sessionCookie, c.Value, &se) || se.CSRF == "" || se.ID == "" {
		return nil
	}
	now := s.now()
	if now.Sub(time.Unix(se.Seen, 0)) > s.idle || now.Sub(time.Unix(se.Issued, 0)) > maxSessionAge {
		return nil
	}
	if s.revoked != nil {
		gone, err := s.revoked(r.Context(), se.ID)
		if err != nil {
			// Fail closed: a session that cannot be checked is not used.
			s.log.WarnContext(r.Context(), "admin session check failed", "error", err)
			return nil
		}
		if gone {
			return nil
		}
	}
	return &se
}

// start issues a new session (a new CSRF token too: one from before the
// sign-in must not carry over).
func (s *sessions) start(w http.ResponseWriter, r *http.Request) *session {
	now := s.now().Unix()
	se := &session{ID: newToken(), Issued: now, Seen: now, CSRF: newToken()}
	s.write(w, r, se)
	return se
}

// touch renews the cookie of a session last seen more than touchEvery ago.
func (s *sessions) touch(w http.ResponseWriter, r *http.Request, se *session) {
	now := s.now()
	if now.Sub(time.Unix(se.Seen, 0)) < touchEvery {
		return
	}
	se.Seen = now.Unix()
	s.write(w, r, se)
}

func (s *sessions) write(w http.ResponseWriter, r *http.Request, se *session) {
	http.SetCookie(w, s.cookie(r, sessionCookie, s.sign(sessionCookie, se), s.idle))
}

// end revokes the session everywhere and clears its cookie. The cookie
// is cleared even when the revocation fails, which the error reports.
func (s *sessions) end(w http.ResponseWriter, r *http.Request, se *session) error {
	http.SetCookie(w, s.cookie(r, sessionCookie, "", -1))
	if s.revoke == nil || se == nil {
		return nil
	}
	if err := s.revoke(r.Context(), se.ID, time.Unix(se.Issued, 0).Add(maxSessionAge)); err != nil {
		return fmt.Errorf("revoke the admin session: %w", err)
	}
	return nil
}

// signinToken returns the CSRF token of the sign-in form, issuing a signed
// cookie for it when the request has no valid one.
func (s *sessions) signinToken(w http.ResponseWriter, r *http.Request) string {
	if st := s.readSignin(r); st != nil {
		return st.CSRF
	}
	st := signinState{Issued: s.now().Unix(), CSRF: newToken()}
	http.SetCookie(w, s.cookie(r, signinCookie, s.sign(signinCookie, st), signinTTL))
	return st.CSRF
}

func (s *sessions) readSignin(r *http.Request) *signinState {
	c, err := r.Cookie(signinCookie)
	if err != nil {
		return nil
	}
	var st signinState
	if !s.verify(signinCookie, c.Value, &st) || st.CSRF == "" ||
		s.now().Sub(time.Unix(st.Issued, 0)) > signinTTL {
		return nil
	}
	return &st
}

// cookie is a cookie as every admin cookie is set: HttpOnly, SameSite
// Strict (a request from another site carries none, which is most of the
// CSRF defence), Secure when the page came over TLS. maxAge < 0 deletes.
func (s *sessions) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: overTLS(r)}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// overTLS reports whether the browser reached us over HTTPS, directly or
// through a proxy that says so. Trusting the header can only make the
// cookie stricter.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// tokenEqual compares secrets in time independent of where they differ
// (and of their lengths, since both sides are hashed first).
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// sameOrigin refuses a state-changing request that a browser says came
// from another site. SameSite=Strict already keeps our cookies off such a
// request; this also covers the sign-in form, which has no session yet.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		// Behind a proxy that rewrites Host, X-Forwarded-Host is what the
		// browser saw; a cross-site form cannot set either header.
		u, err := url.Parse(o)
		if err != nil || (!strings.EqualFold(u.Host, r.Host) && !strings.EqualFold(u.Host, r.Header.Get("X-Forwarded-Host"))) {
			return false
		}
	}
	return true
}

// localPath keeps a post-sign-in redirect on this site: a path, not a URL,
// and not "//host" (which browsers read as another host). Browsers drop
// tab and line breaks from a URL and read a backslash as a slash, so
// "/\t/evil.example" or "/\\evil.example" would be "//evil.example" to them:
// a path with any control character or backslash is refused whole.
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsRune(p, '\\') {
		return "/"
	}
	for _, r := range p {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == utf8.RuneError {
			return "/"
		}
	}
	if u, err := url.Parse(p); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return p
}
