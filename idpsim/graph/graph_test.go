package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

type simFixture struct {
	t     *testing.T
	sim   *Server
	srv   *httptest.Server
	ten   *Tenant
	token string
}

func newSim(t *testing.T, o TenantOptions) *simFixture {
	t.Helper()
	sim := New(Options{Seed: 1})
	ten := sim.AddTenant(o)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	f := &simFixture{t: t, sim: sim, srv: srv, ten: ten}
	c := ten.Client()
	status, body := f.form(ten.ID, url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID},
		"client_secret": {c.Secret}, "scope": {"https://graph.microsoft.com/.default"}})
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	f.token = body["access_token"].(string)
	if body["token_type"] != "Bearer" || body["expires_in"].(float64) != 3599 {
		t.Fatalf("token answer %v", body)
	}
	return f
}

func (f *simFixture) form(tenant string, v url.Values) (int, map[string]any) {
	f.t.Helper()
	resp, err := http.PostForm(f.srv.URL+"/"+tenant+"/oauth2/v2.0/token", v)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out) //nolint:errcheck
	return resp.StatusCode, out
}

func (f *simFixture) get(path string, hdr ...string) (int, map[string]any, http.Header) {
	f.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = f.srv.URL + path
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		f.t.Fatalf("GET %s: %d %q", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out, resp.Header
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestTokenEndpointRefusals(t *testing.T) {
	f := newSim(t, TenantOptions{Seed: 1, Users: 3, Groups: 1})
	c := f.ten.Client()
	base := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {c.Secret},
		"scope": {"https://graph.microsoft.com/.default"}}
	with := func(k, v string) url.Values {
		out := url.Values{}
		for kk, vv := range base {
			out[kk] = vv
		}
		out.Set(k, v)
		return out
	}
	for _, tc := range []struct {
		tenant string
		form   url.Values
		status int
		err    string
		code   float64
	}{
		{"nope.onmicrosoft.com", base, 400, "invalid_request", 90002},
		{f.ten.ID, with("client_id", "x"), 400, "unauthorized_client", 700016},
		{f.ten.ID, with("client_secret", "bad"), 401, "invalid_client", 7000215},
		{f.ten.Domain, with("scope", "https://graph.microsoft.com/User.Read"), 400, "invalid_scope", 1002012},
		{f.ten.ID, with("grant_type", "password"), 400, "unsupported_grant_type", 70003},
	} {
		status, body := f.form(tc.tenant, tc.form)
		codes, _ := body["error_codes"].([]any)
		desc, _ := body["error_description"].(string)
		if status != tc.status || body["error"] != tc.err || len(codes) != 1 || codes[0].(float64) != tc.code ||
			!strings.HasPrefix(desc, "AADSTS") || !strings.Contains(desc, "\r\nTrace ID: ") {
			t.Errorf("%s %v: %d %v", tc.tenant, tc.form, status, body)
		}
	}
	if n := f.sim.Stats().Tokens; n != 1 {
		t.Fatalf("%d tokens issued", n)
	}
}

func TestGraphAnswersLikeGraph(t *testing.T) {
	f := newSim(t, TenantOptions{Seed: 2, Users: 30, Groups: 4, Depth: 2, Microsoft365Groups: 1})
	// Default properties, unset ones null, collections [] not null.
	st, body, _ := f.get("/v1.0/users?$top=2")
	v := body["value"].([]any)
	u := v[0].(map[string]any)
	if st != 200 || len(v) != 2 || len(u) != len(defaultUserProperties) {
		t.Fatalf("default page %d %v", st, body)
	}
	if _, ok := u["accountEnabled"]; ok {
		t.Fatal("accountEnabled returned without $select")
	}
	next, _ := body["@odata.nextLink"].(string)
	if !strings.HasPrefix(next, f.srv.URL+"/v1.0/users?") || !strings.Contains(next, "$skiptoken=") {
		t.Fatalf("nextLink %q", next)
	}
	st, body, _ = f.get("/v1.0/users?$select=id,accountEnabled,faxNumber,otherMails&$top=999")
	v = body["value"].([]any)
	u = v[0].(map[string]any)
	if st != 200 || len(v) != 30 || body["@odata.nextLink"] != nil || u["faxNumber"] != nil || u["accountEnabled"] == nil {
		t.Fatalf("selected page %d %v", st, u)
	}
	if l, ok := u["otherMails"].([]any); !ok || len(l) != 0 {
		t.Fatalf("otherMails %v", u["otherMails"])
	}
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1.0/users?$select=id,skills", 501, "NotImplemented"},
		{"/v1.0/users?$top=1000", 400, "Request_BadRequest"},
		{"/v1.0/users?$select=nope", 400, "Request_BadRequest"},
		{`/v1.0/groups?$search="displayName:eng"`, 400, "Request_UnsupportedQuery"},
		{"/v1.0/groups?$filter=" + url.QueryEscape("not groupTypes/any(c:c eq 'Unified')"), 400, "Request_UnsupportedQuery"},
		{"/v1.0/users/00000000-0000-0000-0000-000000000000", 404, "Request_ResourceNotFound"},
	} {
		if st, body, _ := f.get(tc.path); st != tc.status || errCode(body) != tc.code {
			t.Errorf("%s: %d %v", tc.path, st, body)
		}
	}
	// A single user GET has the per-user properties and the manager.
	id := f.ten.Users()[9].ID
	st, u, _ = f.get("/v1.0/users/" + id + "?$select=id,skills,aboutMe&$expand=manager($select=id)")
	m, _ := u["manager"].(map[string]any)
	if st != 200 || u["aboutMe"] != nil || len(u["skills"].([]any)) != 2 || m["id"] != f.ten.Users()[1].ID ||
		m["@odata.type"] != "#microsoft.graph.user" {
		t.Fatalf("single user %d %v", st, u)
	}
	// Members carry @odata.type; a cast keeps users only.
	root, _ := f.ten.GroupByName("All Staff")
	_, body, _ = f.get("/v1.0/groups/" + root.ID + "/members")
	for _, o := range body["value"].([]any) {
		if o.(map[string]any)["@odata.type"] != "#microsoft.graph.group" {
			t.Fatalf("root member %v", o)
		}
	}
	// The cast on transitiveMembers is an advanced query: refused without
	// its header and $count, and $expand is ignored there.
	cast := "/v1.0/groups/" + root.ID + "/transitiveMembers/microsoft.graph.user?$select=id&$top=999"
	if st, body, _ := f.get(cast); st != 400 || errCode(body) != "Request_UnsupportedQuery" {
		t.Fatalf("cast without advanced query: %d %v", st, body)
	}
	_, body, _ = f.get(cast+"&$count=true&$expand=manager", "ConsistencyLevel", "eventual")
	if n := len(body["value"].([]any)); n != len(f.ten.TransitiveUsers(root.ID)) || n == 0 {
		t.Fatalf("%d transitive users", n)
	}
	for _, o := range body["value"].([]any) {
		if _, ok := o.(map[string]any)["manager"]; ok {
			t.Fatalf("transitiveMembers expanded the manager: %v", o)
		}
	}
	// Group kinds and advanced search with its header, on every page.
	_, body, _ = f.get("/v1.0/groups?$filter=" + url.QueryEscape("securityEnabled eq true and mailEnabled eq false") + "&$select=id,groupTypes")
	if n := len(body["value"].([]any)); n != 4 {
		t.Fatalf("%d security groups", n)
	}
	st, body, _ = f.get(`/v1.0/groups?$search="displayName:team"&$count=true&$top=1`, "ConsistencyLevel", "eventual")
	next, _ = body["@odata.nextLink"].(string)
	if st != 200 || body["@odata.count"].(float64) != 1 || next != "" {
		t.Fatalf("search %d %v", st, body)
	}
}

func TestBatch(t *testing.T) {
	f := newSim(t, TenantOptions{Seed: 3, Users: 25, Groups: 2})
	var reqs []map[string]any
	for i, u := range f.ten.Users()[:20] {
		reqs = append(reqs, map[string]any{"id": string(rune('a' + i)), "method": "GET", "url": "/users/" + u.ID + "?$select=id,skills"})
	}
	post := func(reqs []map[string]any) (int, map[string]any) {
		b, _ := json.Marshal(map[string]any{"requests": reqs})
		req, _ := http.NewRequest("POST", f.srv.URL+"/v1.0/$batch", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+f.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out) //nolint:errcheck
		return resp.StatusCode, out
	}
	f.sim.SetFaults(Faults{ThrottleShare: 0.5, RetryAfter: 1500 * time.Millisecond})
	st, body := post(reqs)
	var ok, throttled int
	for _, r := range body["responses"].([]any) {
		r := r.(map[string]any)
		switch r["status"].(float64) {
		case 200:
			ok++
		case 429:
			throttled++
			if r["headers"].(map[string]any)["Retry-After"] != "1.5" {
				t.Fatalf("inner 429 %v", r)
			}
		}
	}
	if st != 200 || ok+throttled != 20 || ok == 0 || throttled == 0 {
		t.Fatalf("batch %d: %d ok, %d throttled", st, ok, throttled)
	}
	f.sim.SetFaults(Faults{})
	if st, body := post(append(reqs, map[string]any{"id": "z", "method": "GET", "url": "/users"})); st != 400 || errCode(body) == "" {
		t.Fatalf("21 requests: %d %v", st, body)
	}
}

func TestFaultKnobs(t *testing.T) {
	f := newSim(t, TenantOptions{Seed: 4, Users: 10, Groups: 1})
	f.sim.FailNext(2, 503)
	for i := range 2 {
		if st, _, _ := f.get("/v1.0/users"); st != 503 {
			t.Fatalf("request %d: %d", i, st)
		}
	}
	f.sim.CorruptNext(1)
	req, _ := http.NewRequest("GET", f.srv.URL+"/v1.0/users", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || json.Valid(raw) {
		t.Fatalf("corrupt page %d %q", resp.StatusCode, raw)
	}
	_, body, _ := f.get("/v1.0/users?$top=3")
	next := body["@odata.nextLink"].(string)
	f.sim.ExpirePageTokens()
	if st, body, _ := f.get(next); st != 400 || errCode(body) != "Directory_ExpiredPageToken" {
		t.Fatalf("expired token %d %v", st, body)
	}
	f.sim.SetFaults(Faults{EmptyPageShare: 1})
	_, body, _ = f.get("/v1.0/users?$top=3")
	if len(body["value"].([]any)) != 0 || body["@odata.nextLink"] == nil {
		t.Fatalf("empty page %v", body)
	}
	_, body, _ = f.get(body["@odata.nextLink"].(string))
	if len(body["value"].([]any)) != 3 {
		t.Fatalf("after the empty page %v", body)
	}
	f.ten.AddClient(Client{ID: "nc", Secret: "s", NoConsent: true})
	_, tok := f.form(f.ten.ID, url.Values{"grant_type": {"client_credentials"}, "client_id": {"nc"}, "client_secret": {"s"},
		"scope": {"https://graph.microsoft.com/.default"}})
	f.token = tok["access_token"].(string)
	if st, body, _ := f.get("/v1.0/users"); st != 403 || errCode(body) != "Authorization_RequestDenied" {
		t.Fatalf("no consent %d %v", st, body)
	}
	f.token = "forged"
	if st, body, _ := f.get("/v1.0/users"); st != 401 || errCode(body) != "InvalidAuthenticationToken" {
		t.Fatalf("bad token %d %v", st, body)
	}
}

func TestGenerationIsDeterministic(t *testing.T) {
	o := TenantOptions{Seed: 77, Users: 200, Groups: 12, Depth: 3, DisabledShare: 0.2, OutOfScopeShare: 0.1,
		MailEnabledSecurityGroups: 1, Microsoft365Groups: 1, DistributionGroups: 1}
	a, b := newTenant(o), newTenant(o)
	if a.ID != b.ID || a.Client() != b.Client() {
		t.Fatal("ids differ")
	}
	ua, ub := a.Users(), b.Users()
	for i := range ua {
		if ua[i].ID != ub[i].ID || ua[i].UserPrincipalName != ub[i].UserPrincipalName || ua[i].AccountEnabled != ub[i].AccountEnabled {
			t.Fatalf("user %d differs", i)
		}
	}
	ga := a.Groups()
	var disabled, depth3 int
	for _, u := range ua {
		if !u.AccountEnabled {
			disabled++
		}
	}
	root, _ := a.GroupByName("All Staff")
	for _, g := range ga {
		if strings.Count(g.DisplayName, " ") >= 4 && len(a.TransitiveUsers(g.ID)) > 0 {
			depth3++
		}
	}
	inScope := len(a.TransitiveUsers(root.ID))
	if len(ga) != 15 || disabled < 20 || disabled > 60 || inScope < 160 || inScope > 195 || depth3 == 0 {
		t.Fatalf("%d groups, %d disabled, %d in scope, %d deep groups with users", len(ga), disabled, inScope, depth3)
	}
}

func TestAdminEndpoints(t *testing.T) {
	f := newSim(t, TenantOptions{Seed: 5, Users: 5, Groups: 2})
	do := func(method, path, body string) int {
		req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	root, _ := f.ten.GroupByName("All Staff")
	u := f.ten.Users()[0]
	tp := "/_sim/tenants/" + f.ten.ID
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/_sim/tenants", "", 200},
		{"POST", tp + "/users", `{"userPrincipalName":"new@x.example","givenName":"N","surname":"U","groups":["` + root.ID + `"]}`, 201},
		{"PATCH", tp + "/users/" + u.ID, `{"accountEnabled":false,"userPrincipalName":"renamed@x.example","props":{"department":"Legal"}}`, 204},
		{"PATCH", tp + "/groups/" + root.ID, `{"displayName":"Everyone"}`, 204},
		{"DELETE", tp + "/users/nope", "", 404},
		{"PUT", "/_sim/faults", `{"throttleShare":0.1,"retryAfter":"250ms"}`, 200},
	} {
		if st := do(tc.method, tc.path, tc.body); st != tc.status {
			t.Errorf("%s %s: %d", tc.method, tc.path, st)
		}
	}
	got, _ := f.ten.User(u.ID)
	g, _ := f.ten.GroupByName("Everyone")
	if got.AccountEnabled || got.UserPrincipalName != "renamed@x.example" || got.Props["department"] != "Legal" ||
		len(f.ten.Users()) != 6 || g.ID != root.ID || f.sim.Faults().RetryAfter != 250*time.Millisecond {
		t.Fatalf("admin changes not applied: %+v", got)
	}
}
