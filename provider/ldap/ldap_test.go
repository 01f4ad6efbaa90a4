package ldap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/provider/ldap/ldaptest"
)

// bulk is how many users beyond the named ones the OpenLDAP fixture has:
// with them the directory holds more than two server size limits.
const bulk = 2*ldaptest.SizeLimit + 20

// openLDAPFixture fills s with people, nested groups with a cycle
// (eng ∋ platform ∋ eng), managers and a disabled account:
//
//	alice             eng
//	bob    → alice    eng
//	carol  → bob      sales, disabled (nsAccountLock)
//	dave              no group
//	eve    → bob      platform (inside eng)
//	u000…             no group
func openLDAPFixture(t *testing.T, s *ldaptest.Server) {
	t.Helper()
	dn := func(n string) string { return ldaptest.UserDN("uid", n) }
	entries := []ldaptest.Entry{
		ldaptest.OpenLDAPUser(ldaptest.Person{Name: "alice", Given: "Alice", Sn: "Archer", Mail: "alice@example.org"}),
		ldaptest.OpenLDAPUser(ldaptest.Person{Name: "bob", Given: "Bob", Sn: "Baker", Mail: "bob@example.org", Manager: dn("alice")}),
		ldaptest.OpenLDAPUser(ldaptest.Person{Name: "carol", Given: "Carol", Sn: "Cook", Mail: "carol@example.org", Manager: dn("bob"), Disabled: true}),
		ldaptest.OpenLDAPUser(ldaptest.Person{Name: "dave", Given: "Dave", Sn: "Dyer", Mail: "dave@example.org"}),
		ldaptest.OpenLDAPUser(ldaptest.Person{Name: "eve", Given: "Eve", Sn: "Evans", Mail: "eve@example.org", Manager: dn("bob")}),
	}
	for i := range bulk {
		n := fmt.Sprintf("u%03d", i)
		entries = append(entries, ldaptest.OpenLDAPUser(ldaptest.Person{Name: n, Given: "U", Sn: n, Mail: n + "@example.org"}))
	}
	// groupOfNames needs a member: platform is made with eve, then eng
	// with platform, then platform gets eng (the cycle).
	entries = append(entries,
		ldaptest.OpenLDAPGroup("platform", dn("eve")),
		ldaptest.OpenLDAPGroup("eng", dn("alice"), dn("bob"), ldaptest.GroupDN("platform")),
		ldaptest.OpenLDAPGroup("sales", dn("carol")),
	)
	if err := s.Apply(entries...); err != nil {
		t.Fatal(err)
	}
	if err := s.Modify(ldaptest.GroupDN("platform"), map[string][]string{"member": {dn("eve"), ldaptest.GroupDN("eng")}}); err != nil {
		t.Fatal(err)
	}
}

func openLDAPConfig(s *ldaptest.Server) Config {
	return Config{URL: s.URL, StartTLS: true, CABundle: s.CAPEM, BindDN: ldaptest.ReaderDN, BindPassword: s.ReaderPassword,
		BaseDN: ldaptest.BaseDN, Flavour: FlavourOpenLDAP, RequestTimeout: 10 * time.Second}
}

func mustOpen(t *testing.T, c Config) *Source {
	t.Helper()
	src, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// allUsers reads a round of UserChanges to its end, with the page sizes.
func allUsers(t *testing.T, src *Source, state string) ([]provider.User, []int, string) {
	t.Helper()
	var (
		users []provider.User
		sizes []int
		c     provider.Cursor
	)
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("user changes do not end")
		}
		p, err := src.UserChanges(context.Background(), state, c)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(p.Items))
		for _, ch := range p.Items {
			users = append(users, ch.User)
		}
		if p.Next == "" {
			return users, sizes, p.State
		}
		c = p.Next
	}
}

func byName(users []provider.User) map[string]provider.User {
	m := map[string]provider.User{}
	for _, u := range users {
		m[u.Username] = u
	}
	return m
}

func graph(t *testing.T, src *Source, state string) (map[string][]provider.MemberChange, map[string]string, string) {
	t.Helper()
	members, names := map[string][]provider.MemberChange{}, map[string]string{}
	var c provider.Cursor
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("group changes do not end")
		}
		p, err := src.GroupChanges(context.Background(), state, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range p.Items {
			if g.HasProperties {
				names[g.Group.ID] = g.Group.Name
			}
			members[g.Group.ID] = append(members[g.Group.ID], g.Members...)
		}
		if p.Next == "" {
			return members, names, p.State
		}
		c = p.Next
	}
}

func TestOpenLDAPFullRoundPagesPastTheSizeLimit(t *testing.T) {
	s := ldaptest.Start(t)
	openLDAPFixture(t, s)
	src := mustOpen(t, openLDAPConfig(s))
	if err := src.Test(context.Background()); err != nil {
		t.Fatalf("test connection: %v", err)
	}
	users, sizes, state := allUsers(t, src, "")
	if want := 5 + bulk; len(users) != want {
		t.Fatalf("read %d users in pages %v, want %d", len(users), sizes, want)
	}
	if len(sizes) < 3 || slices.Max(sizes) > ldaptest.SizeLimit {
		t.Fatalf("pages %v: want pages of at most the server's limit %d, several of them", sizes, ldaptest.SizeLimit)
	}
	if state == "" {
		t.Fatal("the last page hands out no state")
	}
	ids := map[string]bool{}
	for _, u := range users {
		if !isUUID(u.ExternalID) || u.ExternalID != strings.ToLower(u.ExternalID) || ids[u.ExternalID] {
			t.Fatalf("user %s: id %q is not a unique lower-case entryUUID", u.Username, u.ExternalID)
		}
		ids[u.ExternalID] = true
	}
	m := byName(users)
	alice, bob, carol := m["alice"], m["bob"], m["carol"]
	if bob.ManagerRef != alice.ExternalID || carol.ManagerRef != bob.ExternalID || alice.ManagerRef != "" {
		t.Errorf("managers: bob→%q carol→%q alice→%q, want bob→alice (%s), carol→bob (%s), alice none",
			bob.ManagerRef, carol.ManagerRef, alice.ManagerRef, alice.ExternalID, bob.ExternalID)
	}
	if carol.Active || !alice.Active {
		t.Errorf("active: carol %v (nsAccountLock TRUE), alice %v", carol.Active, alice.Active)
	}
	if bob.FirstName != "Bob" || bob.LastName != "Baker" || bob.Email != "bob@example.org" {
		t.Errorf("bob mapped as %+v", bob)
	}
}

// The graph holds each group's direct members, users and groups, the
// cycle included; Users of a selected group expands it at any depth and
// ends although eng and platform contain each other.
func TestOpenLDAPGroupGraphWithACycle(t *testing.T) {
	s := ldaptest.Start(t)
	openLDAPFixture(t, s)
	src := mustOpen(t, openLDAPConfig(s))
	users, _, _ := allUsers(t, src, "")
	m := byName(users)
	members, names, state := graph(t, src, "")
	if state == "" {
		t.Fatal("the graph's last page hands out no state")
	}
	ids := map[string]string{}
	for id, n := range names {
		ids[n] = id
	}
	if len(ids) != 3 {
		t.Fatalf("groups %v, want eng, platform, sales", names)
	}
	got := func(g string) []string {
		var out []string
		for _, mc := range members[ids[g]] {
			switch {
			case mc.IsGroup:
				out = append(out, "group:"+names[mc.ID])
			default:
				for n, u := range m {
					if u.ExternalID == mc.ID {
						out = append(out, n)
					}
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if g := got("eng"); !slices.Equal(g, []string{"alice", "bob", "group:platform"}) {
		t.Errorf("eng: %v", g)
	}
	if g := got("platform"); !slices.Equal(g, []string{"eve", "group:eng"}) {
		t.Errorf("platform: %v", g)
	}
	page, err := src.Users(context.Background(), provider.Scope{GroupIDs: []string{ids["eng"]}}, "")
	if err != nil {
		t.Fatal(err)
	}
	var scoped []string
	for c := page.Next; ; {
		for _, u := range page.Items {
			scoped = append(scoped, u.Username)
		}
		if c == "" {
			break
		}
		if page, err = src.Users(context.Background(), provider.Scope{GroupIDs: []string{ids["eng"]}}, c); err != nil {
			t.Fatal(err)
		}
		c = page.Next
	}
	slices.Sort(scoped)
	if !slices.Equal(scoped, []string{"alice", "bob", "eve"}) {
		t.Errorf("users of eng at any depth: %v, want alice bob eve", scoped)
	}
	mem, err := src.Members(context.Background(), ids["platform"], "")
	if err != nil || len(mem.Items) != 1 || mem.Items[0].UserID != m["eve"].ExternalID {
		t.Errorf("direct user members of platform: %+v, %v; want eve", mem.Items, err)
	}
	picked, err := src.Groups(context.Background(), provider.GroupQuery{Search: "PLAT"}, "")
	if err != nil || len(picked.Items) != 1 || picked.Items[0].Name != "platform" {
		t.Errorf("picker for PLAT: %+v, %v", picked.Items, err)
	}
}

// A fetch resumed in another process finds no pooled connection for its
// paging cookie: it reads the search again up to where it was, and when
// the entries before that point changed it says the cursor expired
// rather than skip or repeat someone.
func TestPagedSearchResumesWithoutItsConnection(t *testing.T) {
	s := ldaptest.Start(t)
	openLDAPFixture(t, s)
	src := mustOpen(t, openLDAPConfig(s))
	ctx := context.Background()
	first, err := src.UserChanges(ctx, "", "")
	if err != nil || first.Next == "" {
		t.Fatalf("first page: %v, next %q", err, first.Next)
	}
	dropPool(t)
	seen := map[string]bool{}
	for _, u := range first.Items {
		seen[u.User.Username] = true
	}
	c := first.Next
	for c != "" {
		p, err := src.UserChanges(ctx, "", c)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range p.Items {
			if seen[u.User.Username] {
				t.Fatalf("%s read twice after the connection was lost", u.User.Username)
			}
			seen[u.User.Username] = true
		}
		c = p.Next
		dropPool(t)
	}
	if len(seen) != 5+bulk {
		t.Fatalf("read %d users across lost connections, want %d", len(seen), 5+bulk)
	}

	first, err = src.UserChanges(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	dropPool(t)
	var last string
	for _, u := range first.Items {
		last = u.User.Username
	}
	if err := s.Delete(ldaptest.UserDN("uid", last)); err != nil {
		t.Fatal(err)
	}
	if _, err := src.UserChanges(ctx, "", first.Next); !errors.Is(err, provider.ErrCursorExpired) {
		t.Fatalf("resumed after %s (read) was deleted: %v, want ErrCursorExpired", last, err)
	}
}

// A restarted server (or one whose idle timeout is shorter than the
// pool's) has dropped the pooled connections: the next Test connection or
// page dials again instead of failing as unreachable, also when go-ldap has
// not yet noticed the drop.
func TestPooledConnectionsOfARestartedServer(t *testing.T) {
	s := ldaptest.Start(t)
	openLDAPFixture(t, s)
	src := mustOpen(t, openLDAPConfig(s))
	ctx := context.Background()
	first, err := src.UserChanges(ctx, "", "")
	if err != nil || first.Next == "" {
		t.Fatalf("first page: %v, next %q", err, first.Next)
	}
	// A base search leaves an idle connection in the pool; the page's
	// waits for the next page.
	if _, err := src.one(ctx, ldaptest.BaseDN, "(objectClass=*)", []string{"1.1"}); err != nil {
		t.Fatal(err)
	}
	conns.mu.Lock()
	n := len(conns.idle[src.key])
	conns.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d idle connections before the restart, want 1", n)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := src.Test(ctx); err != nil {
		t.Fatalf("test connection after a restart: %v", err)
	}
	if _, err := src.UserChanges(ctx, "", first.Next); err != nil {
		t.Fatalf("next page after a restart: %v", err)
	}

	dropPool(t)
	conns.putIdle(src.key, droppedConn{})
	if err := src.Test(ctx); err != nil {
		t.Fatalf("test connection over a pooled connection the server dropped: %v", err)
	}
}

// droppedConn is a pooled connection the server closed before go-ldap's
// reader saw it: it does not say it is closing, and every operation fails.
type droppedConn struct{}

func (droppedConn) Search(*goldap.SearchRequest) (*goldap.SearchResult, error) {
	return nil, goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: connection closed"))
}

func (droppedConn) Close() error { return nil }

// dropPool closes every pooled connection, as a new worker process has
// none.
func dropPool(t *testing.T) {
	t.Helper()
	conns.mu.Lock()
	defer conns.mu.Unlock()
	for k, l := range conns.idle {
		for _, c := range l {
			_ = c.c.Close()
		}
		delete(conns.idle, k)
	}
	for k, c := range conns.paging {
		_ = c.c.Close()
		delete(conns.paging, k)
	}
}

func TestLDAPSAndTestConnectionFailures(t *testing.T) {
	s := ldaptest.Start(t)
	openLDAPFixture(t, s)
	ctx := context.Background()
	good := openLDAPConfig(s)

	ldaps := good
	ldaps.URL, ldaps.StartTLS = s.LDAPSURL, false
	if err := mustOpen(t, ldaps).Test(ctx); err != nil {
		t.Fatalf("ldaps: %v", err)
	}

	cases := []struct {
		name   string
		change func(*Config)
		is     error
		says   string
	}{
		{"dns", func(c *Config) { c.URL = "ldaps://no-such-host.invalid"; c.StartTLS = false }, provider.ErrUnreachable, "DNS"},
		{"refused", func(c *Config) { c.URL = "ldap://127.0.0.1:1" }, provider.ErrUnreachable, "connect"},
		{"untrusted CA", func(c *Config) { c.CABundle = "" }, provider.ErrUnreachable, "trusted CA"},
		{"ldaps without CA", func(c *Config) { c.URL, c.StartTLS, c.CABundle = s.LDAPSURL, false, "" }, provider.ErrUnreachable, "trusted CA"},
		{"TLS to a plain port", func(c *Config) { c.URL, c.StartTLS = strings.Replace(s.URL, "ldap://", "ldaps://", 1), false }, provider.ErrUnreachable, "TLS"},
		{"bind", func(c *Config) { c.BindPassword = "wrong" }, provider.ErrAuth, "invalid credentials"},
		{"base DN", func(c *Config) { c.BaseDN = "ou=nowhere," + ldaptest.BaseDN }, provider.ErrNotFound, "base DN"},
		{"no entries", func(c *Config) { c.UserFilter = "(uid=nobody-at-all)" }, provider.ErrNotFound, "no entries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.DialTimeout = 5 * time.Second
			tc.change(&c)
			err := mustOpen(t, c).Test(ctx)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("test connection: %v; want %v saying %q", err, tc.is, tc.says)
			}
		})
	}
}

// A change round reads the users changed since the state; a changed group
// or a state of other settings falls back to a full run.
func TestOpenLDAPChangesSinceAState(t *testing.T) {
	s := ldaptest.Start(t)
	openLDAPFixture(t, s)
	// The state is the worker's clock less deltaSkew: shifted here by the
	// skew, a state is "now" on the server's clock (same machine).
	c := openLDAPConfig(s)
	c.Now = func() time.Time { return time.Now().Add(deltaSkew) }
	src := mustOpen(t, c)
	// modifyTimestamp has whole seconds: the fixture's are all before the
	// state's second, the changes below after it.
	time.Sleep(1100 * time.Millisecond)
	_, _, groupsState := graph(t, src, "")
	_, _, usersState := allUsers(t, src, "")
	time.Sleep(1100 * time.Millisecond)
	if err := s.Modify(ldaptest.UserDN("uid", "bob"), map[string][]string{"sn": {"Baker-Smith"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Modify(ldaptest.UserDN("uid", "eve"), map[string][]string{"manager": {ldaptest.UserDN("uid", "alice")}}); err != nil {
		t.Fatal(err)
	}
	changed, _, next := allUsers(t, src, usersState)
	m := byName(changed)
	if len(changed) != 2 || m["bob"].LastName != "Baker-Smith" || m["eve"].ManagerRef == "" {
		t.Fatalf("changes: %+v, want bob renamed and eve's new manager", changed)
	}
	if next == "" || next == usersState {
		t.Fatalf("the change round hands out state %q", next)
	}
	if _, _, st := graph(t, src, groupsState); st == "" {
		t.Fatal("a graph round without group changes hands out no state")
	}
	if err := s.Modify(ldaptest.GroupDN("sales"), map[string][]string{"member": {ldaptest.UserDN("uid", "dave")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.GroupChanges(context.Background(), groupsState, ""); !errors.Is(err, provider.ErrStateExpired) {
		t.Fatalf("group changed since the state: %v, want ErrStateExpired", err)
	}
	other := openLDAPConfig(s)
	other.UserFilter = "(&(objectClass=inetOrgPerson)(mail=*))"
	if _, err := mustOpen(t, other).UserChanges(context.Background(), usersState, ""); !errors.Is(err, provider.ErrStateExpired) {
		t.Fatalf("state of another user filter: %v, want ErrStateExpired", err)
	}
	if _, err := src.UserChanges(context.Background(), "not a state", ""); !errors.Is(err, provider.ErrStateExpired) {
		t.Fatalf("unreadable state: %v, want ErrStateExpired", err)
	}
}

// Scoped by the user filter alone, the graph holds one group of every
// user under it, which the profile selects; a change round says who came
// under the filter and who left it.
func TestOpenLDAPScopeByFilter(t *testing.T) {
	s := ldaptest.Start(t)
	openLDAPFixture(t, s)
	c := openLDAPConfig(s)
	c.Now = func() time.Time { return time.Now().Add(deltaSkew) }
	c.Scope, c.UserFilter = ScopeFilter, "(&(objectClass=inetOrgPerson)(mail=*@example.org))"
	src := mustOpen(t, c)
	time.Sleep(1100 * time.Millisecond) // past the fixture's modifyTimestamps
	members, names, state := graph(t, src, "")
	if names[FilterGroupID] == "" || len(members[FilterGroupID]) != 5+bulk {
		t.Fatalf("filter group %q with %d members, want every user (%d)", names[FilterGroupID], len(members[FilterGroupID]), 5+bulk)
	}
	users, _, _ := allUsers(t, src, "")
	dave := byName(users)["dave"].ExternalID
	time.Sleep(1100 * time.Millisecond)
	if err := s.Modify(ldaptest.UserDN("uid", "dave"), map[string][]string{"mail": {"dave@elsewhere.test"}}); err != nil {
		t.Fatal(err)
	}
	members, _, _ = graph(t, src, state)
	if got := members[FilterGroupID]; len(got) != 1 || got[0].ID != dave || !got[0].Removed {
		t.Fatalf("dave left the filter: %+v, want his membership ended", got)
	}
	picked, err := src.Groups(context.Background(), provider.GroupQuery{}, "")
	if err != nil || len(picked.Items) == 0 || picked.Items[0].ID != FilterGroupID {
		t.Fatalf("picker: %+v, %v; want the filter's group first", picked.Items, err)
	}
}

// The AD shape on slapd: binary objectGUID rendered as a GUID string and
// searched for byte by byte, userAccountControl's disabled bit,
// sAMAccountName as the username. slapd has no distinguishedName, so the
// DN attribute is entryDN here.
func TestADShapeOnSlapd(t *testing.T) {
	s := ldaptest.Start(t)
	dn := func(n string) string { return ldaptest.UserDN("cn", n) }
	if err := s.Apply(
		ldaptest.ADUser(ldaptest.Person{Name: "ann", Given: "Ann", Sn: "Ames", Mail: "ann@example.org", GUID: 1}),
		ldaptest.ADUser(ldaptest.Person{Name: "ben", Given: "Ben", Sn: "Bell", Mail: "ben@example.org", GUID: 2, Manager: dn("ann")}),
		ldaptest.ADUser(ldaptest.Person{Name: "cid", Given: "Cid", Sn: "Cole", Mail: "cid@example.org", GUID: 3, Disabled: true}),
		ldaptest.ADGroup("staff", 100, dn("ann"), dn("ben"), dn("cid")),
	); err != nil {
		t.Fatal(err)
	}
	src := mustOpen(t, Config{URL: s.LDAPSURL, CABundle: s.CAPEM, BindDN: ldaptest.ReaderDN, BindPassword: s.ReaderPassword,
		BaseDN: ldaptest.BaseDN, Flavour: FlavourAD, UserFilter: "(objectClass=user)", Attributes: Attributes{DN: "entryDN"}})
	users, _, _ := allUsers(t, src, "")
	m := byName(users)
	ann, ben, cid := m["ann"], m["ben"], m["cid"]
	if want := guidString(ldaptest.GUID(1)); ann.ExternalID != want || !isUUID(want) {
		t.Fatalf("ann's id %q, want the GUID string %q", ann.ExternalID, want)
	}
	if ben.ManagerRef != ann.ExternalID || cid.Active || !ann.Active {
		t.Errorf("ben's manager %q (want %q), cid active %v (userAccountControl 514), ann active %v", ben.ManagerRef, ann.ExternalID, cid.Active, ann.Active)
	}
	got, err := src.UsersByID(context.Background(), []string{ben.ExternalID, "00000000-0000-0000-0000-000000000000"})
	if err != nil || len(got) != 1 || got[0].Username != "ben" {
		t.Fatalf("users by GUID: %+v, %v; want ben alone", got, err)
	}
	members, names, _ := graph(t, src, "")
	staff := guidString(ldaptest.GUID(100))
	if names[staff] != "staff" || len(members[staff]) != 3 {
		t.Fatalf("graph: %v %v", names, members)
	}
}
