package okta

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(a.body, v), string(a.body))
}

func (a answer) code(t *testing.T) string {
	t.Helper()
	var e apiError
	a.json(t, &e)
	return e.ErrorCode
}

// next is the rel="next" link, "" when none.
func (a answer) next() string {
	for _, l := range a.header.Values("Link") {
		if strings.HasSuffix(l, `rel="next"`) {
			return strings.TrimSuffix(strings.TrimPrefix(strings.Split(l, ";")[0], "<"), ">")
		}
	}
	return ""
}

func get(t *testing.T, srv *httptest.Server, auth, path string) answer {
	t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = srv.URL + path
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "every answer is JSON: %s", path)
	return answer{resp.StatusCode, resp.Header, b}
}

const ssws = "SSWS " + DefaultAPIToken

func start(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	sim := New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

// all follows next links from path and returns every item's id.
func all(t *testing.T, srv *httptest.Server, path string) (ids []string, pages int) {
	t.Helper()
	for path != "" {
		a := get(t, srv, ssws, path)
		require.Equal(t, http.StatusOK, a.status, string(a.body))
		var items []struct {
			ID string `json:"id"`
		}
		a.json(t, &items)
		for _, it := range items {
			ids = append(ids, it.ID)
		}
		pages++
		path = a.next()
	}
	return ids, pages
}

func TestSameSeedSameOrg(t *testing.T) {
	_, a := start(t, Config{Seed: 7, Users: 50})
	_, b := start(t, Config{Seed: 7, Users: 50})
	_, c := start(t, Config{Seed: 8, Users: 50})
	ra, rb, rc := get(t, a, ssws, "/api/v1/users"), get(t, b, ssws, "/api/v1/users"), get(t, c, ssws, "/api/v1/users")
	// The links name the server, which differs; the bodies must not.
	assert.Equal(t, strings.ReplaceAll(string(ra.body), a.URL, ""), strings.ReplaceAll(string(rb.body), b.URL, ""))
	assert.NotEqual(t, strings.ReplaceAll(string(ra.body), a.URL, ""), strings.ReplaceAll(string(rc.body), c.URL, ""))
}

func TestGeneratedOrgHasEverything(t *testing.T) {
	sim, _ := start(t, Config{Seed: 1, Users: 1200})
	statuses := map[string]int{}
	forms := map[string]int{}
	noEmail := 0
	for _, u := range sim.Users() {
		statuses[u.Status]++
		switch {
		case u.Profile["managerId"] != nil && strings.HasPrefix(u.Profile["managerId"].(string), "00u"):
			forms["id"]++
		case u.Profile["managerId"] != nil:
			forms["login"]++
		case u.Profile["manager"] != nil:
			forms["manager"]++
		}
		if u.Profile["email"] == nil {
			noEmail++
		}
	}
	for _, st := range Statuses {
		assert.Positive(t, statuses[st], st)
	}
	assert.Equal(t, 3, len(forms), "managers as id, as login in managerId, and in manager: %v", forms)
	assert.Equal(t, 3, noEmail, "users 9, 509 and 1009 have no email")
	types := map[string]int{}
	for _, g := range sim.Groups() {
		types[g.Type]++
	}
	assert.Equal(t, map[string]int{GroupOkta: 12, GroupApp: 3, GroupBuiltIn: 1}, types)
	everyone, _ := sim.GroupByName(GroupEveryone)
	assert.Len(t, sim.Members(everyone.ID), 1200)
	assert.Len(t, sim.AppGroups(), 13)
}

func TestUsersListingHidesDeprovisionedAndCapsLimit(t *testing.T) {
	sim, srv := start(t, Config{Seed: 3, Users: 450})
	deprovisioned := map[string]bool{}
	for _, u := range sim.Users() {
		if u.Status == StatusDeprovisioned {
			deprovisioned[u.ID] = true
		}
	}
	require.NotEmpty(t, deprovisioned)

	first := get(t, srv, ssws, "/api/v1/users?limit=500")
	var items []map[string]any
	first.json(t, &items)
	assert.Len(t, items, UsersMaxLimit, "limit is capped at 200")
	ids, pages := all(t, srv, "/api/v1/users?limit=500")
	assert.Equal(t, 450-len(deprovisioned), len(ids))
	assert.Equal(t, 3, pages)
	for _, id := range ids {
		assert.False(t, deprovisioned[id], "unfiltered /users leaves deprovisioned users out")
	}
	filtered, _ := all(t, srv, "/api/v1/users?filter="+url.QueryEscape(`status eq "DEPROVISIONED"`))
	assert.Len(t, filtered, len(deprovisioned))

	// Links come as two headers, the cursor is opaque, the last page has no next.
	links := first.header.Values("Link")
	require.Len(t, links, 2)
	assert.True(t, strings.HasSuffix(links[0], `rel="self"`))
	assert.True(t, strings.HasSuffix(links[1], `rel="next"`))
	next, err := url.Parse(first.next())
	require.NoError(t, err)
	after := next.Query().Get("after")
	assert.NotEmpty(t, after)
	assert.NotContains(t, after, "00u", "the after cursor is not a bare id")
	assert.Equal(t, "200", next.Query().Get("limit"))

	// An expired cursor is refused.
	sim.ExpireCursors()
	stale := get(t, srv, ssws, first.next())
	assert.Equal(t, http.StatusBadRequest, stale.status)
	assert.Equal(t, codeValidation, stale.code(t))
}

func TestGroupMembersAndAppGroupsPaging(t *testing.T) {
	sim, srv := start(t, Config{Seed: 4, Users: 2500})
	everyone, _ := sim.GroupByName(GroupEveryone)
	a := get(t, srv, ssws, "/api/v1/groups/"+everyone.ID+"/users?limit=5000")
	var items []map[string]any
	a.json(t, &items)
	assert.Len(t, items, GroupUsersMaxLimit)
	ids, pages := all(t, srv, "/api/v1/groups/"+everyone.ID+"/users")
	assert.Equal(t, sim.Members(everyone.ID), ids, "every member once, in id order, deprovisioned included")
	assert.Equal(t, 3, pages)

	ids, pages = all(t, srv, "/api/v1/apps/"+sim.AppID()+"/groups?limit=5")
	assert.Equal(t, sim.AppGroups(), ids)
	assert.Equal(t, 3, pages)
	ed, _ := sim.GroupByName(GroupIntranetEditors)
	rd, _ := sim.GroupByName(GroupIntranetReaders)
	ids, _ = all(t, srv, "/api/v1/apps/"+sim.AppID()+"/groups?q=intranet")
	assert.ElementsMatch(t, []string{ed.ID, rd.ID}, ids, "q is a name prefix")
	ids, _ = all(t, srv, "/api/v1/groups?q=AD:")
	assert.Len(t, ids, 2)
	ids, _ = all(t, srv, "/api/v1/groups?filter="+url.QueryEscape(`type eq "BUILT_IN"`))
	assert.Equal(t, []string{everyone.ID}, ids)

	assert.Equal(t, codeNotFound, get(t, srv, ssws, "/api/v1/groups/00gmissing/users").code(t))
	assert.Equal(t, codeNotFound, get(t, srv, ssws, "/api/v1/apps/0oamissing/groups").code(t))
}

func TestAuthErrors(t *testing.T) {
	sim, srv := start(t, Config{Seed: 1, Users: 10})
	a := get(t, srv, "SSWS wrong", "/api/v1/users")
	assert.Equal(t, http.StatusUnauthorized, a.status)
	assert.Equal(t, codeInvalidToken, a.code(t))
	assert.Equal(t, http.StatusUnauthorized, get(t, srv, "", "/api/v1/users").status)
	sim.AddAPIToken("groups-only", ScopeGroupsRead)
	a = get(t, srv, "SSWS groups-only", "/api/v1/users")
	assert.Equal(t, http.StatusForbidden, a.status)
	assert.Equal(t, codeForbidden, a.code(t))
	assert.Equal(t, http.StatusOK, get(t, srv, "SSWS groups-only", "/api/v1/groups").status)
}

func TestRateLimitWindowAndFaults(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	sim, srv := start(t, Config{Seed: 1, Users: 10, Window: 2 * time.Second, Now: clock.Now,
		RateLimits: map[string]int{FamilyUsers: 3}})
	for i := 2; i >= 0; i-- {
		a := get(t, srv, ssws, "/api/v1/users")
		require.Equal(t, http.StatusOK, a.status)
		assert.Equal(t, "3", a.header.Get("X-Rate-Limit-Limit"))
		assert.Equal(t, strconv.Itoa(i), a.header.Get("X-Rate-Limit-Remaining"))
		assert.Equal(t, strconv.FormatInt(clock.Now().Unix()+2, 10), a.header.Get("X-Rate-Limit-Reset"))
	}
	a := get(t, srv, ssws, "/api/v1/users")
	assert.Equal(t, http.StatusTooManyRequests, a.status)
	assert.Equal(t, codeRateLimit, a.code(t))
	assert.Equal(t, "0", a.header.Get("X-Rate-Limit-Remaining"))
	assert.Equal(t, clock.Now().Format(http.TimeFormat), a.header.Get("Date"))
	assert.Equal(t, http.StatusOK, get(t, srv, ssws, "/api/v1/groups").status, "families have their own budgets")
	assert.Equal(t, 1, sim.Throttled(FamilyUsers))

	clock.Add(2 * time.Second)
	assert.Equal(t, http.StatusOK, get(t, srv, ssws, "/api/v1/users").status, "a new window, a new budget")

	sim.FailNext(2)
	assert.Equal(t, http.StatusInternalServerError, get(t, srv, ssws, "/api/v1/groups").status)
	assert.Equal(t, codeServer, get(t, srv, ssws, "/api/v1/groups").code(t))
	assert.Equal(t, http.StatusOK, get(t, srv, ssws, "/api/v1/groups").status)
}

// assertion signs a client assertion as the v2 SDK does.
func assertion(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": kid})
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	require.NoError(t, err)
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestTokenEndpoint(t *testing.T) {
	sim, srv := start(t, Config{Seed: 1, Users: 10})
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	sim.AddClient(Client{ID: "0oaclient", KeyID: "k1", PublicKey: &key.PublicKey, Scopes: []string{ScopeUsersRead}})
	now := time.Now()
	claims := map[string]any{"iss": "0oaclient", "sub": "0oaclient", "aud": srv.URL + "/oauth2/v1/token",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	post := func(k *rsa.PrivateKey, kid, scope string, claims map[string]any) (int, map[string]any) {
		q := url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
			"client_assertion_type": {clientAssertionTypeJWT}, "client_assertion": {assertion(t, k, kid, claims)}}
		resp, err := srv.Client().Post(srv.URL+"/oauth2/v1/token?"+q.Encode(), "application/x-www-form-urlencoded", nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return resp.StatusCode, m
	}
	st, m := post(key, "k1", ScopeUsersRead, claims)
	require.Equal(t, http.StatusOK, st, m)
	bearer := "Bearer " + m["access_token"].(string)
	assert.Equal(t, http.StatusOK, get(t, srv, bearer, "/api/v1/users").status)
	a := get(t, srv, bearer, "/api/v1/groups")
	assert.Equal(t, http.StatusForbidden, a.status, "the token has no groups scope")
	assert.Contains(t, a.header.Get("WWW-Authenticate"), `error="insufficient_scope"`)

	st, m = post(other, "k1", ScopeUsersRead, claims)
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, "invalid_client", m["error"])
	assert.Contains(t, m["error_description"], "signature is invalid")
	st, m = post(key, "k1", ScopeUsersRead+" "+ScopeGroupsRead, claims)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "invalid_scope", m["error"])
	expired := map[string]any{}
	for k, v := range claims {
		expired[k] = v
	}
	expired["exp"] = now.Add(-time.Minute).Unix()
	st, m = post(key, "k1", ScopeUsersRead, expired)
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Contains(t, m["error_description"], "expired")
	expired["exp"], expired["aud"] = now.Add(time.Hour).Unix(), "https://elsewhere.okta.com/oauth2/v1/token"
	st, m = post(key, "k1", ScopeUsersRead, expired)
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Contains(t, m["error_description"], "audience")

	a = get(t, srv, "Bearer not-a-token", "/api/v1/users")
	assert.Equal(t, http.StatusUnauthorized, a.status)
	assert.Equal(t, codeInvalidToken, a.code(t))
}

func TestMutations(t *testing.T) {
	sim, srv := start(t, Config{Seed: 5, Users: 30})
	var active User
	for _, u := range sim.Users() {
		if u.Status == StatusActive {
			active = u
			break
		}
	}
	require.NoError(t, sim.Deactivate(active.ID))
	ids, _ := all(t, srv, "/api/v1/users")
	assert.NotContains(t, ids, active.ID)
	require.NoError(t, sim.Activate(active.ID))
	require.NoError(t, sim.RenameLogin(active.ID, "renamed@example.com"))
	var got map[string]any
	get(t, srv, ssws, "/api/v1/users/renamed@example.com").json(t, &got)
	assert.Equal(t, active.ID, got["id"])
	assert.Equal(t, StatusActive, got["status"])

	eng, _ := sim.GroupByName("Engineering")
	sales, _ := sim.GroupByName("Sales")
	require.NoError(t, sim.AddToGroup(eng.ID, active.ID))
	require.NoError(t, sim.MoveUser(active.ID, eng.ID, sales.ID))
	assert.NotContains(t, sim.Members(eng.ID), active.ID)
	assert.Contains(t, sim.Members(sales.ID), active.ID)

	boss := sim.Users()[0]
	require.NoError(t, sim.SetManager(active.ID, boss.ID, "login"))
	u, _ := sim.User(active.ID)
	assert.Equal(t, boss.Login(), u.Profile["managerId"])
	assert.Nil(t, u.Profile["manager"])

	id, err := sim.AddUser(map[string]any{"login": "new@example.com", "firstName": "New", "lastName": "Person",
		"email": "new@example.com"}, StatusActive, sales.ID)
	require.NoError(t, err)
	assert.Contains(t, sim.GroupsOf(id), sales.ID)
	require.NoError(t, sim.DeleteGroup(sales.ID))
	assert.Equal(t, codeNotFound, get(t, srv, ssws, "/api/v1/groups/"+sales.ID).code(t))
	require.NoError(t, sim.DeleteUser(id))
	_, ok := sim.User(id)
	assert.False(t, ok)
}

func send(t *testing.T, srv *httptest.Server, method, path, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", ssws)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

// TestWriteCallsAsOktaTakesThem: a script changes the simulated org with
// the requests it would send to a real one.
func TestWriteCallsAsOktaTakesThem(t *testing.T) {
	sim, srv := start(t, Config{Seed: 6, Users: 20})
	eng, _ := sim.GroupByName("Engineering")
	a := send(t, srv, "POST", "/api/v1/users?activate=false",
		`{"profile":{"login":"x@example.com","firstName":"X","lastName":"Y","email":"x@example.com"},"groupIds":["`+eng.ID+`"]}`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	var u struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	a.json(t, &u)
	assert.Equal(t, StatusStaged, u.Status)
	assert.Contains(t, sim.Members(eng.ID), u.ID)

	assert.Equal(t, http.StatusBadRequest, send(t, srv, "POST", "/api/v1/users/"+u.ID+"/lifecycle/suspend", "").status,
		"a STAGED user cannot be suspended")
	assert.Equal(t, http.StatusOK, send(t, srv, "POST", "/api/v1/users/"+u.ID+"/lifecycle/activate", "").status)
	assert.Equal(t, http.StatusOK, send(t, srv, "POST", "/api/v1/users/"+u.ID+"/lifecycle/suspend", "").status)
	got, _ := sim.User(u.ID)
	assert.Equal(t, StatusSuspended, got.Status)

	a = send(t, srv, "POST", "/api/v1/users/"+u.ID, `{"profile":{"login":"z@example.com","title":null,"city":"Oslo"}}`)
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	got, _ = sim.User("z@example.com")
	assert.Equal(t, "Oslo", got.Profile["city"])

	assert.Equal(t, http.StatusNoContent, send(t, srv, "DELETE", "/api/v1/groups/"+eng.ID+"/users/"+u.ID, "").status)
	assert.NotContains(t, sim.Members(eng.ID), u.ID)
	assert.Equal(t, http.StatusNoContent, send(t, srv, "DELETE", "/api/v1/users/"+u.ID, "").status)
	got, _ = sim.User(u.ID)
	assert.Equal(t, StatusDeprovisioned, got.Status, "the first DELETE deactivates")
	assert.Equal(t, http.StatusNoContent, send(t, srv, "DELETE", "/api/v1/users/"+u.ID, "").status)
	_, ok := sim.User(u.ID)
	assert.False(t, ok, "the second deletes")
	assert.Equal(t, http.StatusNotFound, send(t, srv, "PUT", "/api/v1/groups/"+eng.ID+"/users/"+u.ID, "").status)

	sim.AddAPIToken("reader", ScopeUsersRead)
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/users/"+sim.Users()[0].ID+"/lifecycle/deactivate", nil)
	req.Header.Set("Authorization", "SSWS reader")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "writes need the manage permission")

	// The simulator's own knobs.
	a = send(t, srv, "GET", "/_sim/org", "")
	var info struct {
		APIToken string `json:"apiToken"`
		AppID    string `json:"appId"`
		OrgURL   string `json:"orgUrl"`
	}
	a.json(t, &info)
	assert.Equal(t, DefaultAPIToken, info.APIToken)
	assert.Equal(t, sim.AppID(), info.AppID)
	assert.Equal(t, srv.URL, info.OrgURL)
	assert.Equal(t, http.StatusOK, send(t, srv, "PUT", "/_sim/faults", `{"failNext":1}`).status)
	assert.Equal(t, http.StatusInternalServerError, get(t, srv, ssws, "/api/v1/users").status)
	assert.Equal(t, http.StatusOK, send(t, srv, "PUT", "/_sim/rate-limits", `{"users":0}`).status)
	assert.Equal(t, http.StatusTooManyRequests, get(t, srv, ssws, "/api/v1/users").status)
}
