package ldaptest

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// The server refuses the reader an unpaged search past SizeLimit: what
// the provider's tests rely on to prove that it pages.
func TestSizeLimitRefusesAnUnpagedSearch(t *testing.T) {
	s := Start(t)
	var es []Entry
	for i := range SizeLimit + 5 {
		es = append(es, OpenLDAPUser(Person{Name: "u" + string(rune('a'+i/26)) + string(rune('a'+i%26)), Sn: "x"}))
	}
	if err := s.Apply(es...); err != nil {
		t.Fatal(err)
	}
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(ReaderDN, s.ReaderPassword); err != nil {
		t.Fatal(err)
	}
	_, err = c.Search(ldap.NewSearchRequest(UsersDN, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=inetOrgPerson)", []string{"uid"}, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		t.Fatalf("unpaged search of %d entries: %v, want sizeLimitExceeded", SizeLimit+5, err)
	}
}
