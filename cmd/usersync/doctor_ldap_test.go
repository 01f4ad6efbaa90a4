package main

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/ldap"
	"github.com/usersync/usersync/provider/ldap/ldaptest"
)

// Doctor tests an LDAP profile's connection as the API's Test connection
// does, outside dev (StartTLS with the directory's CA, as a real directory
// needs), and names the fix of each failure: a refused bind, a server that
// does not answer.
func TestDoctorTestsLDAPProfiles(t *testing.T) {
	ctx := context.Background()
	s := ldaptest.Start(t)
	if err := s.Apply(ldaptest.OpenLDAPUser(ldaptest.Person{Name: "ada", Given: "Ada", Sn: "Lovelace", Mail: "ada@example.org"})); err != nil {
		t.Fatal(err)
	}
	w := newDoctorWorld(t, true)
	block := func(edit func(*ldap.Profile)) func(*profile.Config) {
		return func(c *profile.Config) {
			b := &ldap.Profile{URL: s.URL, StartTLS: true, CABundle: s.CAPEM, BindDN: ldaptest.ReaderDN,
				BindPassword: s.ReaderPassword, BaseDN: ldaptest.BaseDN, Flavour: ldap.FlavourOpenLDAP, Scope: ldap.ScopeFilter}
			if edit != nil {
				edit(b)
			}
			c.Provider, c.Block = ldap.Name, b
		}
	}
	w.addProfile("Directory", w.box, block(nil))
	w.addProfile("Wrong password", w.box, block(func(b *ldap.Profile) { b.BindPassword = "not-the-password" }))
	w.addProfile("Down", w.box, block(func(b *ldap.Profile) { b.URL = "ldap://127.0.0.1:" + strconv.Itoa(freePort(t)) }))

	// Without the allowance the outbound policy holds LDAP's connections
	// as it holds HTTP's: a profile cannot point the worker inside. (First:
	// connections are pooled per process, and a bound one is not dialled
	// again.)
	code, out, errOut := runCmd(t, ctx, w.env("127.0.0.1:1", nil), "doctor", "--only", "database,connections")
	if code == 0 {
		t.Fatalf("doctor reached a loopback directory without USERSYNC_OUTBOUND_ALLOW:\n%s%s", out, errOut)
	}
	for _, want := range []string{`FAIL  profile "Directory" (ldap): test connection`, "loopback range", "USERSYNC_OUTBOUND_ALLOW"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}

	// The directory is on loopback, which provider connections reach only
	// when allowed.
	vars := w.env("127.0.0.1:1", map[string]string{"USERSYNC_OUTBOUND_ALLOW": "127.0.0.1"})
	code, out, errOut = runCmd(t, ctx, vars, "doctor", "--only", "database,connections")
	if code == 0 {
		t.Fatalf("doctor passed a wrong bind password and a server that is down: exit 0\n%s%s", out, errOut)
	}
	for _, want := range []string{
		`ok    profile "Directory" (ldap): connection ok`,
		`FAIL  profile "Wrong password" (ldap): test connection: ldap: bind as ` + ldaptest.ReaderDN + ` refused (invalid credentials)`,
		"fix: the provider refused the credentials: set the right ones on the profile",
		`FAIL  profile "Down" (ldap): test connection`,
		"fix: the provider cannot be reached from here",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "2 problem(s) found") {
		t.Errorf("doctor does not count two problems:\n%s", errOut)
	}
	if strings.Contains(out+errOut, s.ReaderPassword) || strings.Contains(out+errOut, "not-the-password") {
		t.Fatalf("doctor printed a bind password:\n%s", out)
	}

}
