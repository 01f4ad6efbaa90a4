package ldap

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/usersync/usersync/profile"
)

func TestValidateNamesEachField(t *testing.T) {
	errs := Config{URL: "http://dc1.example.com/ou=x", BindDN: "not a dn", BaseDN: "", Flavour: "novell",
		UserFilter: "(uid=", Scope: "everyone", CABundle: "no pem here", Attributes: Attributes{ID: "object GUID"}}.Validate()
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	want := []string{"ldap.attributes.id", "ldap.baseDn", "ldap.bindDn", "ldap.bindPassword", "ldap.caBundle", "ldap.flavour",
		"ldap.scope", "ldap.url", "ldap.userFilter"}
	if !slices.Equal(fields, want) {
		t.Fatalf("fields %v, want %v (%v)", fields, want, errs)
	}
	plain := Config{URL: "ldap://dc1.example.com", BindDN: "cn=a,dc=x", BindPassword: "p", BaseDN: "dc=x", Flavour: FlavourAD}
	if errs := plain.Validate(); len(errs) != 1 || errs[0].Field != "ldap.url" || !strings.Contains(errs[0].Message, "clear") {
		t.Fatalf("ldap:// without StartTLS: %v", errs)
	}
	plain.StartTLS = true
	if errs := plain.Validate(); len(errs) != 0 {
		t.Fatalf("ldap:// with StartTLS: %v", errs)
	}
	if _, err := plain.Open(); err != nil {
		t.Fatal(err)
	}
}

// The block is registered, fills its flavour's defaults and, scoped by the
// filter, selects the filter's group.
func TestProfileBlock(t *testing.T) {
	p, ok := profile.Lookup(Name)
	if !ok {
		t.Fatal("ldap is not registered")
	}
	b, ok := p.New().(*Profile)
	if !ok {
		t.Fatalf("New returns %T", p.New())
	}
	b.URL, b.BindDN, b.BindPassword, b.BaseDN, b.Flavour, b.Scope = "ldaps://dc1.corp.example.test",
		"CN=svc,DC=corp,DC=example,DC=test", "secret", "DC=corp,DC=example,DC=test", "AD", ScopeFilter
	c := &profile.Config{Provider: Name, AttributeMap: map[string]string{"department": "department"}}
	b.Normalize(c)
	if b.IDAttribute != "objectGUID" || b.UsernameAttribute != "sAMAccountName" || b.DNAttribute != "distinguishedName" ||
		!strings.Contains(b.UserFilter, "objectCategory=person") {
		t.Fatalf("AD defaults: %+v", b)
	}
	if !slices.Equal(c.Groups, []string{FilterGroupID}) {
		t.Fatalf("groups of a filter-scoped profile: %v", c.Groups)
	}
	if errs := b.Validate(c); len(errs) != 0 {
		t.Fatalf("valid block: %v", errs)
	}
	c.AttributeMap["not an attribute"] = "x"
	if errs := b.Validate(c); len(errs) != 1 || errs[0].Field != "attributeMap" {
		t.Fatalf("attribute map: %v", errs)
	}
	b.URL = "ldap://127.0.0.1:3389"
	if errs := b.Validate(nil); len(errs) != 0 {
		t.Fatalf("plain ldap to loopback: %v", errs)
	}
	if ep := b.Endpoints(); len(ep) != 2 || ep[0].Value != b.URL {
		t.Fatalf("endpoints %v", ep)
	}
	before := fmt.Sprint(b.Fingerprint())
	b.UserFilter = "(objectClass=user)"
	if fmt.Sprint(b.Fingerprint()) == before {
		t.Fatal("a new user filter leaves the delta fingerprint as it was")
	}
}
