package azure

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync/idpsim/graph"
	"github.com/usersync/usersync/internal/reqtable"
	"github.com/usersync/usersync/provider"
)

// fixture is a simulated tenant served over loopback http.
type fixture struct {
	sim *graph.Server
	srv *httptest.Server
	ten *graph.Tenant
}

func newFixture(t *testing.T, o graph.TenantOptions) *fixture {
	t.Helper()
	sim := graph.New(graph.Options{Seed: o.Seed + 100})
	ten := sim.AddTenant(o)
	srv := httptest.NewServer(reqtable.Check(t, "graph", sim))
	t.Cleanup(srv.Close)
	return &fixture{sim: sim, srv: srv, ten: ten}
}

// config is a working configuration with retries fast enough for tests.
func (f *fixture) config() Config {
	c := f.ten.Client()
	return Config{TenantID: f.ten.ID, ClientID: c.ID, ClientSecret: c.Secret,
		AuthorityURL: f.srv.URL, GraphBaseURL: f.srv.URL + "/v1.0", AllowHTTPLoopback: true,
		Retry:  RetryPolicy{BaseDelay: 5 * time.Millisecond, MaxWait: 5 * time.Second},
		Logger: slog.New(slog.DiscardHandler)}
}

func (f *fixture) open(t *testing.T, edit func(c *Config)) *Source {
	t.Helper()
	c := f.config()
	if edit != nil {
		edit(&c)
	}
	src, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// pages reads a listing to its end the way the fetch activity does:
// a throttled page is asked again after the wait the provider gave (as
// Temporal would), any other error ends the test.
func pages[T any](t *testing.T, read func(c provider.Cursor) (provider.Page[T], error)) ([]T, int) {
	t.Helper()
	var out []T
	cur, n := "", 0
	for range 100000 {
		p, err := read(cur)
		var thr *provider.ThrottledError
		if errors.As(err, &thr) {
			time.Sleep(thr.RetryAfter)
			continue
		}
		if err != nil {
			t.Fatalf("page %d: %v", n, err)
		}
		n++
		out = append(out, p.Items...)
		if p.Next == "" {
			return out, n
		}
		cur = p.Next
	}
	t.Fatal("listing never ended")
	return nil, 0
}

// readUsers reads the users of groups the way a full run does: the users
// delta function's initial round, kept to the transitive members of groups
// (the engine works those out from the group graph).
func readUsers(t *testing.T, src *Source, ten *graph.Tenant, groups ...string) []provider.User {
	t.Helper()
	ctx := context.Background()
	scope := map[string]bool{}
	for _, g := range groups {
		for _, id := range ten.TransitiveUsers(g) {
			scope[id] = true
		}
	}
	changes, _ := pages(t, func(c provider.Cursor) (provider.Page[provider.UserChange], error) {
		p, err := src.UserChanges(ctx, "", c)
		return provider.Page[provider.UserChange]{Items: p.Items, Next: p.Next}, err
	})
	var out []provider.User
	for _, c := range changes {
		if !c.Removed && scope[c.User.ExternalID] {
			if c.User.ManagerUnchanged {
				t.Fatalf("an initial round left the manager of %s untold", c.User.ExternalID)
			}
			out = append(out, c.User)
		}
	}
	return out
}

// byID keeps the first record of each user, as the engine does.
func byID(users []provider.User) map[string]provider.User {
	out := map[string]provider.User{}
	for _, u := range users {
		if _, ok := out[u.ExternalID]; !ok {
			out[u.ExternalID] = u
		}
	}
	return out
}

// wantUsers is what the source must return for the users in groups.
func wantUsers(ten *graph.Tenant, groups ...string) map[string]provider.User {
	out := map[string]provider.User{}
	for _, g := range groups {
		for _, id := range ten.TransitiveUsers(g) {
			u, _ := ten.User(id)
			out[id] = provider.User{ExternalID: u.ID, Username: u.UserPrincipalName, FirstName: u.GivenName,
				LastName: u.Surname, Email: u.Mail, Active: u.AccountEnabled, ManagerRef: u.ManagerID}
		}
	}
	return out
}

func sameUsers(t *testing.T, got, want map[string]provider.User) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d users, want %d", len(got), len(want))
	}
	bad := 0
	for id, w := range want {
		g, ok := got[id]
		if ok && g.ManagerUnchanged {
			w.ManagerRef = "" // a listing that does not carry managers
		}
		if !ok || core(g) != core(w) {
			if bad++; bad <= 5 {
				t.Errorf("user %s:\n got %+v\nwant %+v", id, g, w)
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			if bad++; bad <= 5 {
				t.Errorf("user %s is not in scope", id)
			}
		}
	}
}

// userCore is the comparable part of a provider user.
type userCore struct {
	id, username, first, last, email, manager string
	active                                    bool
}

func core(u provider.User) userCore {
	return userCore{u.ExternalID, u.Username, u.FirstName, u.LastName, u.Email, u.ManagerRef, u.Active}
}

func group(t *testing.T, ten *graph.Tenant, name string) string {
	t.Helper()
	g, ok := ten.GroupByName(name)
	if !ok {
		t.Fatalf("no group %q", name)
	}
	return g.ID
}

var nested = graph.TenantOptions{Seed: 42, Users: 1200, Groups: 30, Depth: 3, OutOfScopeShare: 0.05,
	DisabledShare: 0.1, MailEnabledSecurityGroups: 2, Microsoft365Groups: 2, DistributionGroups: 2}

// TestUsersAreTheTransitiveMembersOfTheSelectedGroups selects a department
// (three levels of nesting), one of its own subgroups (overlap) and a
// second department, with small pages: every user in scope comes exactly
// as Graph has it, nobody else does.
func TestUsersAreTheTransitiveMembersOfTheSelectedGroups(t *testing.T) {
	f := newFixture(t, nested)
	src := f.open(t, func(c *Config) { c.PageSize = 50 })
	eng, sales := group(t, f.ten, "Engineering"), group(t, f.ten, "Sales")
	var sub string
	for _, g := range f.ten.Groups() {
		if strings.HasPrefix(g.DisplayName, "Engineering ") && len(f.ten.TransitiveUsers(g.ID)) > 0 {
			sub = g.ID
			break
		}
	}
	if sub == "" {
		t.Fatal("no Engineering subgroup with users")
	}
	users := readUsers(t, src, f.ten, eng, sub, sales)
	want := wantUsers(f.ten, eng, sales)
	if len(want) < 100 {
		t.Fatalf("fixture too small: %d users in scope", len(want))
	}
	sameUsers(t, byID(users), want)
	var disabled, managed int
	for _, u := range want {
		if !u.Active {
			disabled++
		}
		if u.ManagerRef != "" {
			managed++
		}
	}
	if disabled == 0 || managed == 0 {
		t.Fatalf("fixture lacks disabled (%d) or managed (%d) users", disabled, managed)
	}

	// The whole tenant through the root, with the largest page.
	root := group(t, f.ten, "All Staff")
	sameUsers(t, byID(readUsers(t, f.open(t, nil), f.ten, root)), wantUsers(f.ten, root))
}

// TestUsernameAttribute reads the username from another property.
func TestUsernameAttribute(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 3, Users: 30, Groups: 3})
	root := group(t, f.ten, "All Staff")
	for _, attr := range []string{"mail", "employeeId", "mailNickname"} {
		src := f.open(t, func(c *Config) { c.UsernameAttribute = attr })
		for _, u := range readUsers(t, src, f.ten, root) {
			gu, _ := f.ten.User(u.ExternalID)
			want := gu.Mail
			if attr != "mail" {
				want = gu.Props[attr].(string)
			}
			if u.Username != want {
				t.Fatalf("%s: username %q, want %q", attr, u.Username, want)
			}
		}
	}
}

// TestAttributeMap maps list properties, multi-valued ones and per-user
// ones; the per-user ones come through $batch, and only when mapped.
func TestAttributeMap(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 5, Users: 130, Groups: 4})
	root := group(t, f.ten, "All Staff")
	readUsers(t, f.open(t, func(c *Config) { c.AttributeMap = map[string]string{"department": "dept"} }), f.ten, root)
	if b := f.sim.Stats().Batches; b != 0 {
		t.Fatalf("%d $batch requests without a per-user property mapped", b)
	}
	// One user has every per-user property, and one has none.
	full := f.ten.Users()[3].ID
	if err := f.ten.UpdateUser(full, func(u *graph.User) {
		u.Props["aboutMe"] = "Plays the cello"
		u.Props["mySite"] = "https://contoso.sharepoint.com/personal/x"
		u.Props["interests"] = []string{"cello", "chess"}
		u.Props["birthday"] = time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC)
		u.Props["otherMails"] = []string{"a@example.com", "b@example.com"}
	}); err != nil {
		t.Fatal(err)
	}
	empty := f.ten.Users()[4].ID
	f.ten.UpdateUser(empty, func(u *graph.User) { //nolint:errcheck // known user
		for _, p := range PerUserProperties {
			delete(u.Props, p)
		}
		delete(u.Props, "businessPhones")
	})
	attrMap := map[string]string{"department": "dept", "businessPhones": "phones", "otherMails": "otherMails",
		"employeeHireDate": "hired", "accountEnabled": "x"}
	delete(attrMap, "accountEnabled") // not a mappable attribute: checked in TestOpenValidates
	for _, p := range PerUserProperties {
		attrMap[p] = "pu_" + p
	}
	src := f.open(t, func(c *Config) { c.AttributeMap = attrMap; c.PageSize = 45 })
	got := byID(readUsers(t, src, f.ten, root))
	if f.sim.Stats().Batches < 130/20 {
		t.Fatalf("only %d $batch requests for 130 users", f.sim.Stats().Batches)
	}
	u := got[full]
	want := map[string]string{"pu_aboutMe": "Plays the cello", "pu_mySite": "https://contoso.sharepoint.com/personal/x",
		"pu_interests": "cello;chess", "pu_birthday": "1990-05-17T00:00:00Z", "otherMails": "a@example.com;b@example.com"}
	gu, _ := f.ten.User(full)
	want["dept"] = gu.Props["department"].(string)
	want["phones"] = strings.Join(gu.Props["businessPhones"].([]string), ";")
	want["pu_skills"] = strings.Join(gu.Props["skills"].([]string), ";")
	want["pu_preferredName"] = gu.Props["preferredName"].(string)
	want["pu_hireDate"] = gu.Props["hireDate"].(time.Time).Format(time.RFC3339)
	want["hired"] = gu.Props["employeeHireDate"].(time.Time).Format(time.RFC3339)
	for k, v := range want {
		if u.Attributes[k] != v {
			t.Errorf("%s = %q, want %q", k, u.Attributes[k], v)
		}
	}
	if len(u.Attributes) != len(want) {
		t.Errorf("attributes %v, want exactly %v", u.Attributes, want)
	}
	e := got[empty].Attributes
	for k := range e {
		if strings.HasPrefix(k, "pu_") || k == "phones" || k == "otherMails" {
			t.Errorf("unset property came as %s=%q", k, e[k])
		}
	}
	for id, u := range got {
		if id == empty {
			continue
		}
		gu, _ := f.ten.User(id)
		if u.Attributes["dept"] != gu.Props["department"] || u.Attributes["pu_skills"] != strings.Join(gu.Props["skills"].([]string), ";") {
			t.Fatalf("user %s attributes %v", id, u.Attributes)
		}
	}
}

// TestThrottlingStorm: with 30% of requests answered 429 (fractional
// Retry-After), inner $batch requests included, a full read still ends
// with exactly the users, attributes and members of the tenant.
func TestThrottlingStorm(t *testing.T) {
	f := newFixture(t, nested)
	f.sim.SetFaults(graph.Faults{ThrottleShare: 0.3, RetryAfter: 15 * time.Millisecond})
	src := f.open(t, func(c *Config) {
		c.PageSize = 100
		c.AttributeMap = map[string]string{"skills": "skills", "department": "department"}
	})
	root := group(t, f.ten, "All Staff")
	got := byID(readUsers(t, src, f.ten, root))
	sameUsers(t, got, wantUsers(f.ten, root))
	sameSkills(t, f.ten, got)
	ctx := context.Background()
	groups, _ := pages(t, func(c provider.Cursor) (provider.Page[provider.Group], error) {
		return src.Groups(ctx, provider.GroupQuery{ForSync: true}, c)
	})
	for _, g := range groups {
		members, _ := pages(t, func(c provider.Cursor) (provider.Page[provider.Member], error) {
			return src.Members(ctx, g.ID, c)
		})
		var ids []string
		for _, m := range members {
			ids = append(ids, m.UserID)
		}
		want := f.ten.TransitiveUsers(g.ID)
		sort.Strings(ids)
		sort.Strings(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("group %s: %d members, want %d", g.Name, len(ids), len(want))
		}
	}
	if st := f.sim.Stats(); st.Throttled < 20 {
		t.Fatalf("the storm throttled only %d requests", st.Throttled)
	}
}

// TestRetryAfterIsHonouredToTheMillisecond: the SDK's own handler would
// truncate "0.3" to zero and hammer the server; ours waits.
func TestRetryAfterIsHonouredToTheMillisecond(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "0.3")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`)) //nolint:errcheck
	}))
	defer srv.Close()
	c := newHTTPClient(nil, time.Minute, RetryPolicy{}.withDefaults(), nil)
	resp, err := c.Post(srv.URL, "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(times) != 2 {
		t.Fatalf("status %d after %d requests", resp.StatusCode, len(times))
	}
	if d := times[1].Sub(times[0]); d < 300*time.Millisecond || d > 2*time.Second {
		t.Fatalf("retried after %s, want 300ms", d)
	}
}

// TestLongThrottleGoesBackToTheCaller: a Retry-After beyond the in-process
// budget comes back as a ThrottledError carrying the wait.
func TestLongThrottleGoesBackToTheCaller(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 9, Users: 10, Groups: 2})
	src := f.open(t, func(c *Config) { c.Retry.MaxWait = time.Second })
	f.sim.SetFaults(graph.Faults{ThrottleShare: 1, RetryAfter: 2500 * time.Millisecond})
	_, err := src.Users(context.Background(), provider.Scope{GroupIDs: []string{group(t, f.ten, "All Staff")}}, "")
	var thr *provider.ThrottledError
	if !errors.As(err, &thr) || thr.RetryAfter != 2500*time.Millisecond {
		t.Fatalf("got %v, want a ThrottledError of 2.5s", err)
	}
	if !provider.Retryable(err) {
		t.Fatal("throttling must be retryable")
	}
}

// TestServerErrorStorm: a short run of 503s is absorbed inside the call;
// a long one fails the call with a retryable error, and the same cursor
// works once the service recovers.
func TestServerErrorStorm(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 11, Users: 300, Groups: 5})
	src := f.open(t, func(c *Config) { c.PageSize = 60; c.Retry.MaxRetries = 3 })
	root := group(t, f.ten, "All Staff")
	ctx, scope := context.Background(), provider.Scope{GroupIDs: []string{root}}

	f.sim.FailNext(3, http.StatusServiceUnavailable)
	first, err := src.Users(ctx, scope, "")
	if err != nil {
		t.Fatalf("three 503s were not absorbed: %v", err)
	}
	f.sim.FailNext(10, http.StatusGatewayTimeout)
	_, err = src.Users(ctx, scope, first.Next)
	var thr *provider.ThrottledError
	if err == nil || !provider.Retryable(err) || errors.As(err, &thr) || errors.Is(err, provider.ErrInvalidData) {
		t.Fatalf("storm: got %v, want a retryable server error", err)
	}
	f.sim.StopFailing()
	users := append([]provider.User(nil), first.Items...)
	rest, _ := pages(t, func(c provider.Cursor) (provider.Page[provider.User], error) {
		if c == "" {
			c = first.Next
		}
		return src.Users(ctx, scope, c)
	})
	sameUsers(t, byID(append(users, rest...)), wantUsers(f.ten, root))
}

// TestMalformedPage: a page that is not JSON fails the call for good.
func TestMalformedPage(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 12, Users: 20, Groups: 2})
	src := f.open(t, nil)
	f.sim.CorruptNext(1)
	_, err := src.Users(context.Background(), provider.Scope{GroupIDs: []string{group(t, f.ten, "All Staff")}}, "")
	if !errors.Is(err, provider.ErrInvalidData) || provider.Retryable(err) {
		t.Fatalf("got %v, want invalid data", err)
	}
}

// TestEmptyPagesWithNextLinks: pages that are empty but not the last are
// followed, not taken for the end.
func TestEmptyPagesWithNextLinks(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 13, Users: 200, Groups: 4})
	f.sim.SetFaults(graph.Faults{EmptyPageShare: 1})
	src := f.open(t, func(c *Config) { c.PageSize = 30 })
	root := group(t, f.ten, "All Staff")
	users, n := pages(t, func(c provider.Cursor) (provider.Page[provider.User], error) {
		return src.Users(context.Background(), provider.Scope{GroupIDs: []string{root}}, c)
	})
	if n < 2*200/30 {
		t.Fatalf("%d pages: no empty pages were served", n)
	}
	sameUsers(t, byID(users), wantUsers(f.ten, root))
}

// TestIncompleteUserComesThrough: a user without mail or surname is the
// engine's to skip, not the source's to drop.
func TestIncompleteUserComesThrough(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 14, Users: 10, Groups: 2})
	root := group(t, f.ten, "All Staff")
	id, err := f.ten.NewUser(graph.User{UserPrincipalName: "nomail@" + f.ten.Domain, GivenName: "No", AccountEnabled: true}, root)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := byID(readUsers(t, f.open(t, nil), f.ten, root))[id]
	if !ok || u.Email != "" || u.LastName != "" || u.FirstName != "No" || u.Username != "nomail@"+f.ten.Domain {
		t.Fatalf("got %+v (found %t)", u, ok)
	}
}

// TestSelectedGroupGone: a selected group deleted in Entra ID fails the
// listing with an error that names it, before the run and in the middle of
// it: skipping it would take its members out of scope.
func TestSelectedGroupGone(t *testing.T) {
	f := newFixture(t, nested)
	src := f.open(t, func(c *Config) { c.PageSize = 40 })
	eng, sales := group(t, f.ten, "Engineering"), group(t, f.ten, "Sales")
	if err := f.ten.DeleteGroup(eng); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err := src.Users(ctx, provider.Scope{GroupIDs: []string{eng, sales}}, "")
	if !errors.Is(err, provider.ErrNotFound) || provider.Retryable(err) || !strings.Contains(err.Error(), eng) {
		t.Fatalf("deleted selected group: %v", err)
	}

	var mkt string
	for _, g := range f.ten.Groups() {
		if g.ID != sales && !strings.HasPrefix(g.DisplayName, "Sales") && len(f.ten.TransitiveUsers(g.ID)) > 20 {
			mkt = g.ID
			break
		}
	}
	scope := provider.Scope{GroupIDs: []string{mkt, sales}}
	src = f.open(t, func(c *Config) { c.PageSize = 5 })
	first, err := src.Users(ctx, scope, "")
	if err != nil || first.Next == "" {
		t.Fatalf("first page: %v, next %q", err, first.Next)
	}
	if err := f.ten.DeleteGroup(mkt); err != nil {
		t.Fatal(err)
	}
	next := first.Next
	for {
		p, err := src.Users(ctx, scope, next)
		if err != nil {
			if !errors.Is(err, provider.ErrNotFound) || !strings.Contains(err.Error(), mkt) {
				t.Fatalf("group deleted mid-listing: %v", err)
			}
			break
		}
		if p.Next == "" {
			t.Fatal("the listing ended without the deleted group's error")
		}
		next = p.Next
	}
}

// TestCursorExpired: a nextLink Graph no longer takes, a cursor for a group
// no longer selected and a garbled cursor all say "start over".
func TestCursorExpired(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 15, Users: 100, Groups: 3})
	src := f.open(t, func(c *Config) { c.PageSize = 10 })
	root := group(t, f.ten, "All Staff")
	ctx, scope := context.Background(), provider.Scope{GroupIDs: []string{root}}
	first, err := src.Users(ctx, scope, "")
	if err != nil {
		t.Fatal(err)
	}
	f.sim.ExpirePageTokens()
	if _, err := src.Users(ctx, scope, first.Next); !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("expired nextLink: %v", err)
	}
	if _, err := src.Users(ctx, provider.Scope{GroupIDs: []string{"other"}}, first.Next); !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("group no longer selected: %v", err)
	}
	if _, err := src.Users(ctx, scope, "garbage!"); !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("garbled cursor: %v", err)
	}
	m, err := src.Members(ctx, root, "")
	if err != nil {
		t.Fatal(err)
	}
	f.sim.ExpirePageTokens()
	if _, err := src.Members(ctx, root, m.Next); !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("expired members nextLink: %v", err)
	}
}

// TestGroupPicker: security groups; mail-enabled security groups only when
// included; never Microsoft 365 or distribution groups; a word search that
// spans pages (ConsistencyLevel resent on every nextLink).
func TestGroupPicker(t *testing.T) {
	f := newFixture(t, nested)
	ctx := context.Background()
	kinds := map[string]graph.GroupKind{}
	for _, g := range f.ten.Groups() {
		kinds[g.ID] = g.Kind
	}
	count := func(k graph.GroupKind) int {
		n := 0
		for _, v := range kinds {
			if v == k {
				n++
			}
		}
		return n
	}
	for _, include := range []bool{false, true} {
		src := f.open(t, func(c *Config) { c.IncludeMailEnabledSecurityGroups = include; c.PageSize = 7 })
		got, n := pages(t, func(c provider.Cursor) (provider.Page[provider.Group], error) {
			return src.Groups(ctx, provider.GroupQuery{}, c)
		})
		want := count(graph.Security)
		if include {
			want += count(graph.MailEnabledSecurity)
		}
		if len(got) != want || n < 2 {
			t.Fatalf("include=%t: %d groups in %d pages, want %d", include, len(got), n, want)
		}
		for _, g := range got {
			k := kinds[g.ID]
			switch {
			case k == graph.Security && g.Type == TypeSecurity && g.SecurityEnabled && !g.MailEnabled:
			case k == graph.MailEnabledSecurity && include && g.Type == TypeMailEnabledSecurity && g.MailEnabled:
			default:
				t.Fatalf("include=%t: group %+v of kind %s", include, g, k)
			}
		}
	}
	src := f.open(t, func(c *Config) { c.PageSize = 2 })
	for _, term := range []string{"engineering", "Eng", "Mail"} {
		got, _ := pages(t, func(c provider.Cursor) (provider.Page[provider.Group], error) {
			return src.Groups(ctx, provider.GroupQuery{Search: term}, c)
		})
		want := 0
		for _, g := range f.ten.Groups() {
			if g.Kind == graph.Security && wordPrefix(g.DisplayName, term) {
				want++
			}
		}
		if len(got) != want || (term != "Mail" && want < 3) {
			t.Fatalf("search %q: %d groups, want %d", term, len(got), want)
		}
	}
}

func wordPrefix(name, term string) bool {
	for _, w := range strings.Fields(name) {
		if strings.HasPrefix(strings.ToLower(w), strings.ToLower(term)) {
			return true
		}
	}
	return false
}

// TestMembers lists transitive user members; an unknown group is ErrNotFound.
func TestMembers(t *testing.T) {
	f := newFixture(t, nested)
	src := f.open(t, func(c *Config) { c.PageSize = 33 })
	ctx := context.Background()
	for _, name := range []string{"All Staff", "Engineering", "Mail-enabled Security 1"} {
		id := group(t, f.ten, name)
		members, _ := pages(t, func(c provider.Cursor) (provider.Page[provider.Member], error) {
			return src.Members(ctx, id, c)
		})
		var got []string
		for _, m := range members {
			got = append(got, m.UserID)
		}
		want := f.ten.TransitiveUsers(id)
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) || len(want) == 0 {
			t.Fatalf("%s: %d members, want %d", name, len(got), len(want))
		}
	}
	if _, err := src.Members(ctx, "00000000-0000-0000-0000-000000000000", ""); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
}

// TestTestConnection: each wrong setting gets a message that names it and
// never shows the secret.
func TestTestConnection(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 16, Users: 5, Groups: 2})
	f.ten.AddClient(graph.Client{ID: "11111111-2222-3333-4444-555555555555", Secret: "no-consent-secret", NoConsent: true})
	ctx := context.Background()
	if err := f.open(t, nil).Test(ctx); err != nil {
		t.Fatalf("good settings: %v", err)
	}
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}()
	const wrong = "Wr0ng~secret-value-1234567890"
	cases := []struct {
		name     string
		edit     func(c *Config)
		sentinel error
		says     []string
	}{
		{"wrong secret", func(c *Config) { c.ClientSecret = wrong }, provider.ErrAuth,
			[]string{"AADSTS7000215", "azure.clientSecret", "Value"}},
		{"unknown tenant", func(c *Config) { c.TenantID = "contoso-typo.onmicrosoft.com" }, provider.ErrAuth,
			[]string{"AADSTS90002", "azure.tenantId", "contoso-typo.onmicrosoft.com"}},
		{"unknown app", func(c *Config) { c.ClientID = "99999999-9999-9999-9999-999999999999" }, provider.ErrAuth,
			[]string{"AADSTS700016", "azure.clientId", "99999999-9999-9999-9999-999999999999"}},
		{"no consent", func(c *Config) {
			c.ClientID, c.ClientSecret = "11111111-2222-3333-4444-555555555555", "no-consent-secret"
		}, provider.ErrPermission, []string{"Authorization_RequestDenied", "admin consent", "GroupMember.Read.All"}},
		{"sign-in endpoint down", func(c *Config) { c.AuthorityURL = closed }, provider.ErrUnreachable,
			[]string{"sign-in endpoint", strings.TrimPrefix(closed, "http://")}},
		{"graph down", func(c *Config) { c.GraphBaseURL = closed + "/v1.0" }, provider.ErrUnreachable,
			[]string{"Microsoft Graph", strings.TrimPrefix(closed, "http://")}},
	}
	for _, tc := range cases {
		err := f.open(t, tc.edit).Test(ctx)
		if !errors.Is(err, tc.sentinel) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.sentinel)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not say %q", tc.name, err, s)
			}
		}
		for _, secret := range []string{wrong, f.ten.Client().Secret, "no-consent-secret"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: message shows the secret: %s", tc.name, err)
			}
		}
		if provider.Retryable(err) != (tc.sentinel == provider.ErrUnreachable) {
			t.Errorf("%s: retryable=%t", tc.name, provider.Retryable(err))
		}
	}
}

// TestTokenIsCachedUntilShortlyBeforeExpiry: one sign-in serves many
// requests and Sources, and a token is renewed before it lapses.
func TestTokenIsCachedUntilShortlyBeforeExpiry(t *testing.T) {
	sim := graph.New(graph.Options{Seed: 1, TokenLifetime: 2 * time.Second})
	ten := sim.AddTenant(graph.TenantOptions{Seed: 17, Users: 50, Groups: 3})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	f := &fixture{sim: sim, srv: srv, ten: ten}
	src := f.open(t, func(c *Config) { c.PageSize = 5 })
	root := group(t, ten, "All Staff")
	readUsers(t, src, ten, root)
	readUsers(t, f.open(t, nil), ten, root) // a Source per activity call shares the process's token
	if n := sim.Stats().Tokens; n != 1 {
		t.Fatalf("%d sign-ins for two listings", n)
	}
	time.Sleep(1100 * time.Millisecond) // past the refresh point (half of a short lifetime)
	readUsers(t, src, ten, root)
	if n := sim.Stats().Tokens; n != 2 {
		t.Fatalf("%d sign-ins, want a renewal", n)
	}
}

// TestTwoTenantsOnOneServer: the token says which tenant a request reads.
func TestTwoTenantsOnOneServer(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 18, Users: 40, Groups: 3})
	other := f.sim.AddTenant(graph.TenantOptions{Seed: 19, Users: 25, Groups: 2})
	a := byID(readUsers(t, f.open(t, nil), f.ten, group(t, f.ten, "All Staff")))
	b := byID(readUsers(t, f.open(t, func(c *Config) {
		c.TenantID, c.ClientID, c.ClientSecret = other.ID, other.Client().ID, other.Client().Secret
	}), other, group(t, other, "All Staff")))
	if len(a) != 40 || len(b) != 25 {
		t.Fatalf("%d and %d users", len(a), len(b))
	}
	for id := range b {
		if _, ok := a[id]; ok {
			t.Fatal("tenants share a user")
		}
	}
}

// TestSovereignClouds: each cloud signs in at its own authority, for its
// own Graph, and only its Graph host gets the token.
func TestSovereignClouds(t *testing.T) {
	sim := graph.New(graph.Options{Seed: 2})
	ten := sim.AddTenant(graph.TenantOptions{Seed: 20, Users: 5, Groups: 2})
	srv := httptest.NewTLSServer(sim)
	defer srv.Close()
	target, _ := url.Parse(srv.URL)
	for _, tc := range []struct{ cloud, login, graph string }{
		{CloudGlobal, "login.microsoftonline.com", "graph.microsoft.com"},
		{CloudUSGov, "login.microsoftonline.us", "graph.microsoft.us"},
		{CloudChina, "login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn"},
	} {
		var mu sync.Mutex
		seen := map[string]string{} // host -> authorization or form scope
		rt := roundTripper(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			if r.URL.Path == "/"+ten.ID+"/oauth2/v2.0/token" {
				body, _ := io.ReadAll(r.Body)
				form, _ := url.ParseQuery(string(body))
				r.Body = io.NopCloser(bytes.NewReader(body))
				seen[r.URL.Host] = "scope=" + form.Get("scope")
			} else {
				seen[r.URL.Host] = r.Header.Get("Authorization")
			}
			mu.Unlock()
			r.URL.Scheme, r.URL.Host = "https", target.Host
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test server
			return tr.RoundTrip(r)
		})
		c := ten.Client()
		src, err := Config{TenantID: ten.ID, ClientID: c.ID, ClientSecret: c.Secret, Cloud: tc.cloud,
			HTTPClient: &http.Client{Transport: rt}}.Open()
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Test(context.Background()); err != nil {
			t.Fatalf("%s: %v", tc.cloud, err)
		}
		if seen[tc.login] != "scope=https://"+tc.graph+"/.default" || !strings.HasPrefix(seen[tc.graph], "Bearer simtok.") || len(seen) != 2 {
			t.Fatalf("%s: requests %v", tc.cloud, seen)
		}
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestOpenValidates refuses what cannot work, naming the setting.
func TestOpenValidates(t *testing.T) {
	good := Config{TenantID: "contoso.onmicrosoft.com", ClientID: "c", ClientSecret: "s"}
	cases := []struct {
		edit func(c *Config)
		says string
	}{
		{func(c *Config) { c.TenantID = "" }, "tenantId is required"},
		{func(c *Config) { c.TenantID = "a/../b" }, "tenantId"},
		{func(c *Config) { c.ClientID = " " }, "clientId is required"},
		{func(c *Config) { c.ClientSecret = "" }, "clientSecret is required"},
		{func(c *Config) { c.Cloud = "mars" }, "unknown cloud"},
		{func(c *Config) { c.GraphBaseURL = "http://graph.example.com/v1.0" }, "only to localhost"},
		{func(c *Config) { c.AuthorityURL = "http://127.0.0.1:9" }, "not enabled"},
		{func(c *Config) { c.AuthorityURL = "https://u:p@login.example.com" }, "credentials"},
		{func(c *Config) { c.GraphBaseURL = "graph.microsoft.com" }, "absolute https URL"},
		{func(c *Config) { c.UsernameAttribute = "displayName" }, "usernameAttribute"},
		{func(c *Config) { c.AttributeMap = map[string]string{"accountEnabled": "x"} }, "unknown Graph user property"},
		{func(c *Config) { c.AttributeMap = map[string]string{"city": " "} }, "no directory field"},
		{func(c *Config) { c.PageSize = -1 }, "negative"},
	}
	for _, tc := range cases {
		c := good
		tc.edit(&c)
		if _, err := c.Open(); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%+v: got %v, want %q", c, err, tc.says)
		}
	}
	src, err := good.Open()
	if err != nil {
		t.Fatal(err)
	}
	if src.cred.tokenURL != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" ||
		src.graphBase != "https://graph.microsoft.com/v1.0" || src.pageSize != MaxPageSize || src.usernameAttr != "userPrincipalName" {
		t.Fatalf("defaults: %s %s %d %s", src.cred.tokenURL, src.graphBase, src.pageSize, src.usernameAttr)
	}
	c := good
	c.GraphBaseURL, c.AuthorityURL, c.AllowHTTPLoopback = "http://localhost:8080", "http://[::1]:9000/", true
	if src, err = c.Open(); err != nil || src.graphBase != "http://localhost:8080/v1.0" ||
		src.cred.tokenURL != "http://[::1]:9000/contoso.onmicrosoft.com/oauth2/v2.0/token" || src.scopes[0] != "http://localhost:8080/.default" {
		t.Fatalf("overrides: %v %+v", err, src)
	}
}

// TestEveryCatalogueAttributeIsReadable keeps the getters in step with
// Attributes.
func TestEveryCatalogueAttributeIsReadable(t *testing.T) {
	for _, a := range Attributes {
		if getters[a] == nil {
			t.Errorf("no getter for %s", a)
		}
	}
}

// TestWrongGraphPathIsNotAnEmptyTenant: a 404 that is not a missing group
// (a graphBaseUrl with a wrong path) fails the read instead of skipping
// every group and returning nobody.
func TestWrongGraphPathIsNotAnEmptyTenant(t *testing.T) {
	// A server without the request table: the request is wrong on purpose.
	sim := graph.New(graph.Options{Seed: 121})
	ten := sim.AddTenant(graph.TenantOptions{Seed: 21, Users: 10, Groups: 2})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	f := &fixture{sim: sim, srv: srv, ten: ten}
	src := f.open(t, func(c *Config) { c.GraphBaseURL = f.srv.URL + "/v2.0" })
	_, err := src.Users(context.Background(), provider.Scope{GroupIDs: []string{group(t, f.ten, "All Staff")}}, "")
	if !errors.Is(err, provider.ErrNotFound) || provider.Retryable(err) {
		t.Fatalf("got %v, want a final not-found error", err)
	}
}

// TestRefusedTokenIsRenewedOnce: a token Graph stops accepting before its
// time is replaced by a fresh sign-in, not taken for bad credentials.
func TestRefusedTokenIsRenewedOnce(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 22, Users: 30, Groups: 2})
	src := f.open(t, func(c *Config) { c.PageSize = 10 })
	root := group(t, f.ten, "All Staff")
	ctx, scope := context.Background(), provider.Scope{GroupIDs: []string{root}}
	first, err := src.Users(ctx, scope, "")
	if err != nil {
		t.Fatal(err)
	}
	f.sim.ExpireTokens()
	if _, err := src.Users(ctx, scope, first.Next); err != nil {
		t.Fatalf("after the token was cut short: %v", err)
	}
	if n := f.sim.Stats().Tokens; n != 2 {
		t.Fatalf("%d sign-ins, want 2", n)
	}
}

// TestPerUserBatchesOverlapWithinTheirLimit: on a tenant answering each
// request after a delay, as real ones do, a page's per-user $batch
// requests overlap, never more than perUserBatches at once, and every
// user still gets its per-user properties.
func TestPerUserBatchesOverlapWithinTheirLimit(t *testing.T) {
	f := newFixture(t, graph.TenantOptions{Seed: 7, Users: 300, Groups: 2})
	f.sim.SetFaults(graph.Faults{Latency: 40 * time.Millisecond})
	src := f.open(t, func(c *Config) {
		c.PageSize = 200
		c.AttributeMap = map[string]string{"skills": "skills"}
	})
	root := group(t, f.ten, "All Staff")
	got := byID(readUsers(t, src, f.ten, root))
	sameUsers(t, got, wantUsers(f.ten, root))
	sameSkills(t, f.ten, got)
	st := f.sim.Stats()
	if st.Batches < 300/maxBatch {
		t.Fatalf("%d $batch requests for 300 users", st.Batches)
	}
	if st.MostInFlight < 2 || st.MostInFlight > perUserBatches {
		t.Fatalf("at most %d requests in flight, want 2..%d", st.MostInFlight, perUserBatches)
	}
}

// sameSkills checks each user's skills, a per-user property, against the
// tenant's.
func sameSkills(t *testing.T, ten *graph.Tenant, got map[string]provider.User) {
	t.Helper()
	for id, u := range got {
		gu, _ := ten.User(id)
		if u.Attributes["skills"] != strings.Join(gu.Props["skills"].([]string), ";") {
			t.Fatalf("user %s skills %q", id, u.Attributes["skills"])
		}
	}
}
