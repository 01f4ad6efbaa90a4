package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/provider/ldap/ldaptest"
)

// TestLDAPAdminFormInBrowser creates an LDAP profile through the admin
// page in headless Chromium, against a real slapd and the real API, store,
// worker and Temporal: the LDAP form (URL, StartTLS with the server's CA,
// bind DN and password, base DN, directory flavour), Test connection that
// names the failure of a wrong password and then passes, the group picker's
// search, Save and sync, the run page's counts and the users page. The
// bind password is never in a page the browser is sent.
func TestLDAPAdminFormInBrowser(t *testing.T) {
	b := startBrowser(t)
	s := ldaptest.Start(t)
	dn := func(n string) string { return ldaptest.UserDN("uid", n) }
	p := func(name, given, sn, manager string, locked bool) ldaptest.Entry {
		return ldaptest.OpenLDAPUser(ldaptest.Person{Name: name, Given: given, Sn: sn, Mail: name + "@example.org",
			Manager: manager, Disabled: locked})
	}
	// engineering holds platform; erin is locked; dave is only in sales.
	must(t, s.Apply(
		p("alice", "Alice", "Archer", "", false),
		p("bob", "Bob", "Baker", dn("alice"), false),
		p("carol", "Carol", "Cook", dn("bob"), false),
		p("dave", "Dave", "Dyer", "", false),
		p("erin", "Erin", "Evans", dn("bob"), true),
		p("frank", "Frank", "Fox", dn("bob"), false),
		ldaptest.OpenLDAPGroup("platform", dn("frank"), dn("erin")),
		ldaptest.OpenLDAPGroup("engineering", dn("alice"), dn("bob"), dn("carol"), ldaptest.GroupDN("platform")),
		ldaptest.OpenLDAPGroup("sales", dn("dave")),
	))
	ids := entryUUIDs(t, s)

	st := newStack(t, stackOptions{Admin: true, Quiet: true})
	const wrongPassword = "not-the-reader-password-7f3a"
	noPassword := func(where string) {
		t.Helper()
		h := b.html()
		for _, pw := range []string{s.ReaderPassword, wrongPassword} {
			if strings.Contains(h, pw) {
				b.shot("FAILED-password-" + where)
				t.Fatalf("%s: a bind password is in the page's HTML", where)
			}
		}
	}

	// 1. Sign in, choose LDAP, fill the connection with a wrong password.
	b.signIn(st.srv.URL, st.token)
	b.do("new profile", chromedp.Navigate(st.srv.URL+"/profiles/new"), chromedp.WaitVisible(chromedp.CSS(".choices")))
	b.expect("ldap offered", b.text(".choices"), "LDAP / Active Directory")
	b.submit("choose ldap", `a[href="/profiles/new?provider=ldap"]`)
	b.do("fill profile",
		chromedp.WaitVisible(chromedp.CSS("#f-name")),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "Corporate LDAP"),
		chromedp.SendKeys(chromedp.CSS("#f-ldap-url"), s.URL),
		chromedp.Click(chromedp.CSS("#f-ldap-startTls")),
		chromedp.SetValue(chromedp.CSS("#f-ldap-caBundle"), s.CAPEM),
		chromedp.SendKeys(chromedp.CSS("#f-ldap-bindDn"), ldaptest.ReaderDN),
		chromedp.SendKeys(chromedp.CSS("#f-ldap-bindPassword"), wrongPassword),
		chromedp.SendKeys(chromedp.CSS("#f-ldap-baseDn"), ldaptest.BaseDN),
		chromedp.SetValue(chromedp.CSS("#f-ldap-flavour"), "openldap"),
		chromedp.Click(chromedp.CSS("#f-ldap-scope-0")),
		chromedp.Click(chromedp.CSS("#f-populateOrgChart")),
		chromedp.Click(chromedp.CSS("#gs-all")),
	)
	b.shot("new-ldap-profile")

	// 2. Test connection saves the profile and names the failure; so does
	// the group picker, which cannot list the groups.
	b.submit("test with a wrong password", `button[name="action"][value="test"]`)
	b.do("red light", chromedp.WaitVisible(chromedp.CSS(".test-result .light.fail")))
	b.expect("failure named", b.text(".test-result"), "invalid credentials")
	b.expect("failure says what to check", b.text(".test-result"), "ldap.bindPassword")
	b.expect("picker names it too", b.text("#groups-load-error"), "invalid credentials")
	b.expect("password stored", b.text("#f-ldap-bindPassword-state"), "Leave blank to keep it")
	b.shot("test-connection-wrong-password")
	noPassword("after the failed test")

	// 3. The right password: Test connection passes.
	b.do("type the password", chromedp.SendKeys(chromedp.CSS("#f-ldap-bindPassword"), s.ReaderPassword))
	b.submit("test again", `button[name="action"][value="test"]`)
	b.do("green light", chromedp.WaitVisible(chromedp.CSS(".test-result .light.ok")))
	b.shot("test-connection-green")
	noPassword("after the test that passed")

	// 4. The group picker: search for engineering and tick it.
	// The editor lists every group before a search: the search's answer
	// is the list without sales.
	b.do("search groups", chromedp.WaitVisible(chromedp.CSS("#g-"+ids["cn=sales"])),
		chromedp.SendKeys(chromedp.CSS("#group-search-q"), "engin"),
		chromedp.Click(chromedp.CSS(`button[form="group-search"]`)),
		chromedp.WaitNotPresent(chromedp.CSS("#g-"+ids["cn=sales"])),
		chromedp.WaitVisible(chromedp.CSS("#g-"+ids["cn=engineering"])))
	list := b.text("#group-list")
	b.expect("picker lists engineering", list, "engineering")
	if strings.Contains(list, "sales") || strings.Contains(list, "platform") {
		b.shot("FAILED-picker-search")
		t.Fatalf("the search for engin lists other groups: %q", list)
	}
	b.do("tick engineering", chromedp.Click(chromedp.CSS("#g-"+ids["cn=engineering"])))
	b.shot("group-picked")

	// 5. Save and sync; the run page shows the run succeeded, with
	// engineering's members at any depth bar the locked one.
	b.submit("save and sync", `button[name="action"][value="sync"]`)
	b.expect("sync notice", b.text(".notice"), "a sync started")
	noPassword("after save and sync")
	b.submit("open run", ".notice a")
	waitRunPage(t, b.ctx, b.shot, directory.RunSucceeded)
	for count, want := range map[string]int{"created": 4, "inactive": 1, "managersLinked": 3, "groupsCreated": 3} {
		if got := strings.TrimSpace(b.text(fmt.Sprintf(`[data-count=%q]`, count))); got != fmt.Sprint(want) {
			b.shot("FAILED-count-" + count)
			t.Fatalf("run page: %s is %s, want %d", count, got, want)
		}
	}
	b.shot("run-succeeded")
	noPassword("on the run page")

	// 6. The users page lists whom the run created, and no one else.
	b.do("users", chromedp.Navigate(st.srv.URL+"/users"), chromedp.WaitVisible(chromedp.CSS("main table")))
	users := b.text("main table")
	// By e-mail address: "erin" is also in "engineering".
	for _, u := range []string{"alice", "bob", "carol", "frank"} {
		b.expect("users list", users, u+"@example.org")
	}
	for _, u := range []string{"dave", "erin"} {
		if strings.Contains(users, u+"@example.org") {
			b.shot("FAILED-users")
			t.Fatalf("%s is listed, but is not an active member of engineering", u)
		}
	}
	b.shot("users")

	// 7. The editor, opened afresh, shows the password as set, never its
	// value, and the group as selected.
	profiles, err := st.store.ListProfiles(t.Context(), directory.ListOptions{})
	if err != nil || len(profiles.Items) != 1 {
		t.Fatalf("profiles: %v %+v", err, profiles.Items)
	}
	b.do("editor", chromedp.Navigate(st.srv.URL+"/profiles/"+profiles.Items[0].ID), chromedp.WaitVisible(chromedp.CSS("#f-ldap-bindPassword")))
	b.expect("password set", b.text("#f-ldap-bindPassword-state"), "Leave blank to keep it")
	if on, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](
		`!!document.querySelector('input[name="groups"][value="`+ids["cn=engineering"]+`"]:checked')`)); err != nil || !on {
		b.shot("FAILED-group-selected")
		t.Fatalf("engineering is not selected in the saved profile (%v)", err)
	}
	b.shot("editor-saved")
	noPassword("in the editor")
}
