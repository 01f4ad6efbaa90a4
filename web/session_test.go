package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/secret"
)

func sessionCookieOf(p page) *http.Cookie {
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

func TestSignInSessionAndSignOut(t *testing.T) {
	e := newEnv(t)
	b := e.browser()

	// Signed out: a page sends to the sign-in form and back.
	p := b.get("/users?q=ann")
	require.Equal(t, http.StatusSeeOther, p.status)
	assert.Equal(t, "/signin?next="+url.QueryEscape("/users?q=ann"), p.location)
	p = b.follow(p)
	require.Equal(t, http.StatusOK, p.status)
	assert.Contains(t, p.body, `<label for="token">API token</label>`)

	// A wrong token, a missing sign-in token and a foreign origin fail.
	p = b.post("/signin", url.Values{"token": {"nope"}, "next": {"/users?q=ann"}})
	assert.Equal(t, http.StatusUnauthorized, p.status)
	assert.Contains(t, p.body, "That is not the API token.")
	assert.Nil(t, sessionCookieOf(p))
	p = b.post("/signin", url.Values{"token": {testToken}, "csrf": {"forged"}})
	assert.Equal(t, http.StatusForbidden, p.status)
	p = b.postRaw("/signin", url.Values{"token": {testToken}, "csrf": {b.csrf}}, map[string]string{"Origin": "https://evil.example"})
	assert.Equal(t, http.StatusForbidden, p.status)
	assert.Nil(t, sessionCookieOf(p))

	// The right token: a session cookie as the issue asks, and back to
	// where the admin was going.
	p = b.post("/signin", url.Values{"token": {testToken}, "next": {"/users?q=ann"}})
	require.Equal(t, http.StatusSeeOther, p.status, p.body)
	assert.Equal(t, "/users?q=ann", p.location)
	c := sessionCookieOf(p)
	require.NotNil(t, c)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.False(t, c.Secure, "served over plain http here")
	assert.Equal(t, int(DefaultIdleTimeout/time.Second), c.MaxAge)
	assert.NotContains(t, c.Value, testToken)
	p = b.get("/users?q=ann")
	assert.Equal(t, http.StatusOK, p.status)
	assert.Contains(t, p.body, "Sign out")

	// An open redirect is not possible through next.
	for _, next := range []string{"//evil.example/x", "https://evil.example", "/\\evil.example"} {
		assert.Equal(t, "/", localPath(next), next)
	}

	// Idle: within the timeout the session lives (and is renewed), past it
	// the admin signs in again.
	e.clock.advance(7 * time.Hour)
	p = b.get("/profiles")
	require.Equal(t, http.StatusOK, p.status)
	require.NotNil(t, sessionCookieOf(p), "a used session is renewed")
	e.clock.advance(7 * time.Hour)
	require.Equal(t, http.StatusOK, b.get("/profiles").status, "7 h idle again: still signed in")
	e.clock.advance(DefaultIdleTimeout + time.Minute)
	p = b.get("/profiles")
	assert.Equal(t, http.StatusSeeOther, p.status)
	assert.True(t, strings.HasPrefix(p.location, "/signin"))
	// A form posted after expiry changes nothing and says why.
	p = b.post("/licence", url.Values{"limit": {"5"}})
	assert.Equal(t, http.StatusUnauthorized, p.status)
	assert.Contains(t, p.body, "session has ended")

	// Sign out clears the cookie.
	b.signIn()
	p = b.post("/signout", nil)
	require.Equal(t, http.StatusSeeOther, p.status)
	c = sessionCookieOf(p)
	require.NotNil(t, c)
	assert.Equal(t, -1, c.MaxAge)
	assert.Equal(t, http.StatusSeeOther, b.get("/profiles").status)
}

func TestSessionCookieIsSignedAndBoundToKey(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	key1, err := SessionKey(secret.GenerateKey(), "token-1")
	require.NoError(t, err)
	s := &sessions{key: key1, idle: time.Hour, now: func() time.Time { return now }}
	value := s.sign(sessionCookie, session{ID: "s1", Issued: now.Unix(), Seen: now.Unix(), CSRF: "abc"})
	req := func(v string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: v})
		return r
	}
	require.NotNil(t, s.read(req(value)))

	// Tampered payload, another cookie's signature, another key: refused.
	body, sig, _ := strings.Cut(value, ".")
	forged := s.sign(sessionCookie, session{ID: "s1", Issued: now.Unix(), Seen: now.Unix() + 1e6, CSRF: "abc"})
	fbody, _, _ := strings.Cut(forged, ".")
	assert.Nil(t, s.read(req(fbody+"."+sig)))
	assert.Nil(t, s.read(req(body+"."+sig[:len(sig)-2]+"AA")))
	signin := s.sign(signinCookie, session{ID: "s1", Issued: now.Unix(), Seen: now.Unix(), CSRF: "abc"})
	assert.Nil(t, s.read(req(signin)), "a sign-in cookie is not a session")

	// The key follows the API token and the secret key.
	skey := secret.GenerateKey()
	a, _ := SessionKey(skey, "token-1")
	b, _ := SessionKey(skey, "token-2")
	c, _ := SessionKey(secret.GenerateKey(), "token-1")
	assert.NotEqual(t, a, b)
	assert.NotEqual(t, a, c)
	other := &sessions{key: b, idle: time.Hour, now: s.now}
	assert.Nil(t, other.read(req(s.sign(sessionCookie, session{ID: "s1", Issued: now.Unix(), Seen: now.Unix(), CSRF: "x"}))))
	_, err = SessionKey("not base64!", "t")
	assert.Error(t, err)

	// Over TLS (or behind a proxy that says so) the cookie is Secure.
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Forwarded-Proto", "https")
	assert.True(t, s.cookie(r, sessionCookie, "v", time.Hour).Secure)

	// Older than the longest session: refused however busy.
	old := s.sign(sessionCookie, session{ID: "s1", Issued: now.Add(-maxSessionAge - time.Hour).Unix(), Seen: now.Unix(), CSRF: "abc"})
	assert.Nil(t, s.read(req(old)))
}
