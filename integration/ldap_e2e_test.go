package integration

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/provider/ldap/ldaptest"
	"github.com/usersync/usersync/schema"
)

// TestLDAPEndToEnd syncs a real OpenLDAP server (slapd, started by the
// test) through the API, Temporal and Postgres: nested groups with a
// cycle, managers, a disabled account; then a leaver, a rename (a new
// RDN: the id stays), a manager move and a removal from the selected
// group (which makes the run read in full); then an incremental change.
// Both stores: PostgreSQL and SQLite (what usersync dev runs).
func TestLDAPEndToEnd(t *testing.T) {
	for _, dialect := range []string{schema.Postgres, schema.SQLite} {
		t.Run(dialect, func(t *testing.T) { ldapEndToEnd(t, dialect) })
	}
}

func ldapEndToEnd(t *testing.T, dialect string) {
	s := ldaptest.Start(t)
	dn := func(n string) string { return ldaptest.UserDN("uid", n) }
	p := func(name, given, sn, manager string) ldaptest.Entry {
		return ldaptest.OpenLDAPUser(ldaptest.Person{Name: name, Given: given, Sn: sn, Mail: name + "@example.org", Manager: manager})
	}
	must(t, s.Apply(
		p("alice", "Alice", "Archer", ""),
		p("bob", "Bob", "Baker", dn("alice")),
		p("carol", "Carol", "Cook", dn("bob")),
		p("dave", "Dave", "Dyer", ""),
		p("eve", "Eve", "Evans", dn("bob")),
		p("frank", "Frank", "Fox", dn("alice")),
		p("george", "George", "Gale", dn("alice")),
		ldaptest.OpenLDAPGroup("platform", dn("eve")),
		ldaptest.OpenLDAPGroup("eng", dn("alice"), dn("bob"), dn("frank"), dn("george"), ldaptest.GroupDN("platform")),
		ldaptest.OpenLDAPGroup("sales", dn("carol"), dn("dave")),
	))
	must(t, s.Modify(ldaptest.GroupDN("platform"), map[string][]string{"member": {dn("eve"), ldaptest.GroupDN("eng")}}))
	ids := entryUUIDs(t, s)

	st := newStack(t, stackOptions{Quiet: true, PageSize: 3, Dialect: dialect})
	body := map[string]any{
		"name": "OpenLDAP", "provider": "ldap",
		"ldap": map[string]any{"url": s.URL, "startTls": true, "caBundle": s.CAPEM, "bindDn": ldaptest.ReaderDN,
			"bindPassword": s.ReaderPassword, "baseDn": ldaptest.BaseDN, "flavour": "openldap"},
		"groups":    []string{ids["cn=eng"]},
		"groupSync": map[string]any{"mode": "all"}, "populateOrgChart": true,
	}
	var prof struct {
		ID           string `json:"id"`
		DirectoryKey string `json:"directoryKey"`
	}
	if code := st.api.do("POST", "/profiles", body, &prof); code != 201 {
		t.Fatalf("create profile: %d", code)
	}
	var light struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	if code := st.api.do("POST", "/profiles/"+prof.ID+"/test", nil, &light); code != 200 || !light.OK {
		t.Fatalf("test connection: %d %+v", code, light)
	}
	var picked struct {
		Items []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"items"`
	}
	if code := st.api.do("GET", "/profiles/"+prof.ID+"/provider-groups?search=plat", nil, &picked); code != 200 ||
		len(picked.Items) != 1 || picked.Items[0].ID != ids["cn=platform"] {
		t.Fatalf("picker: %d %+v", code, picked)
	}
	sync := func() runView {
		t.Helper()
		var run runView
		if code := st.api.do("POST", "/profiles/"+prof.ID+"/sync", map[string]any{"dryRun": false}, &run); code != 202 {
			t.Fatalf("sync: %d", code)
		}
		if run = st.api.waitRun(run.ID); run.Status != directory.RunSucceeded {
			t.Fatalf("run %+v", run)
		}
		return run
	}
	user := func(dir map[string]directoryUser, uid string) directoryUser {
		t.Helper()
		u, ok := dir[ids["uid="+uid]]
		if !ok {
			t.Fatalf("%s (%s) is not in the directory", uid, ids["uid="+uid])
		}
		return u
	}
	managerOf := func(dir map[string]directoryUser, uid string) string {
		if m := user(dir, uid).ManagerID; m != nil {
			return *m
		}
		return ""
	}

	// Run 1: eng at any depth (through platform, which eng is also in).
	run := sync()
	dir := st.api.directory(prof.DirectoryKey)
	if run.Counts.Created != 5 || len(dir) != 5 {
		t.Fatalf("first run created %d (%+v); directory %v", run.Counts.Created, run.Counts, dir)
	}
	for _, out := range []string{"carol", "dave"} {
		if _, ok := dir[ids["uid="+out]]; ok {
			t.Fatalf("%s is outside eng but was synced", out)
		}
	}
	if managerOf(dir, "eve") != user(dir, "bob").ID || managerOf(dir, "bob") != user(dir, "alice").ID {
		t.Fatalf("managers: eve→%s bob→%s", managerOf(dir, "eve"), managerOf(dir, "bob"))
	}
	bobID := user(dir, "bob").ID

	// A leaver, a rename, a manager move, a removal from the group.
	must(t, s.Modify(dn("frank"), map[string][]string{"nsAccountLock": {"TRUE"}}))
	must(t, s.Rename(dn("bob"), "uid=robert"))
	must(t, s.Modify(dn("robert"), map[string][]string{"sn": {"Baker-Smith"}}))
	must(t, s.Modify(dn("eve"), map[string][]string{"manager": {dn("george")}}))
	must(t, s.Modify(ldaptest.GroupDN("eng"), map[string][]string{"member": {dn("robert"), dn("frank"), dn("george"), ldaptest.GroupDN("platform")}}))
	sync()
	dir = st.api.directory(prof.DirectoryKey)
	if u := user(dir, "alice"); u.Status != directory.StatusDisabled {
		t.Errorf("alice left eng: %s", u.Status)
	}
	if u := user(dir, "frank"); u.Status != directory.StatusDisabled {
		t.Errorf("frank is locked: %s", u.Status)
	}
	if u := user(dir, "bob"); u.ID != bobID || u.Username != "robert" || u.LastName != "Baker-Smith" || u.Status != directory.StatusActive {
		t.Errorf("bob renamed robert: %+v", u)
	}
	if managerOf(dir, "eve") != user(dir, "george").ID {
		t.Errorf("eve's manager moved to george: %s", managerOf(dir, "eve"))
	}

	// An incremental run: no group changed.
	must(t, s.Modify(dn("george"), map[string][]string{"mail": {"george.gale@example.org"}}))
	sync()
	if u := user(st.api.directory(prof.DirectoryKey), "george"); u.Email != "george.gale@example.org" {
		t.Errorf("george's new mail: %s", u.Email)
	}
}

// entryUUIDs maps "uid=…" and "cn=…" (the RDN) to the entry's entryUUID.
func entryUUIDs(t *testing.T, s *ldaptest.Server) map[string]string {
	t.Helper()
	c, err := s.Admin()
	must(t, err)
	defer c.Close()
	res, err := c.Search(goldap.NewSearchRequest(ldaptest.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(|(objectClass=inetOrgPerson)(objectClass=groupOfNames))", []string{"entryUUID"}, nil))
	must(t, err)
	out := map[string]string{}
	for _, e := range res.Entries {
		d, err := goldap.ParseDN(e.DN)
		must(t, err)
		rdn := d.RDNs[0].Attributes[0]
		out[rdn.Type+"="+rdn.Value] = e.GetAttributeValue("entryUUID")
	}
	return out
}
