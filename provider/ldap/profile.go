package ldap

import (
	"strings"

	"github.com/usersync/usersync/profile"
)

// Name is the provider's name in profiles ({"provider":"ldap","ldap":{…}}).
const Name = "ldap"

func init() { profile.Register(Provider) }

// Provider is the LDAP block's registration: its fields on the admin page,
// its defaults and its validation.
var Provider = profile.Provider{
	Name:           Name,
	DisplayName:    "LDAP / Active Directory",
	Description:    "Active Directory, OpenLDAP or 389 Directory Server, over LDAPS or StartTLS",
	New:            func() profile.Block { return &Profile{} },
	AttributeLabel: "LDAP attribute",
	Fields: []profile.Field{
		{Name: "url", Label: "Server URL", Kind: profile.KindText, Placeholder: "ldaps://dc1.corp.example.com",
			Help: "ldaps:// (port 636), or ldap:// with StartTLS (port 389)."},
		{Name: "startTls", Label: "StartTLS", Kind: profile.KindCheckbox, Help: "Upgrade an ldap:// connection to TLS before binding."},
		{Name: "caBundle", Label: "CA certificates (PEM)", Kind: profile.KindTextarea,
			Help: "The CA that signed the server's certificate, when the system does not trust it."},
		{Name: "bindDn", Label: "Bind DN", Kind: profile.KindText, Placeholder: "CN=svc-usersync,OU=Service Accounts,DC=corp,DC=example,DC=com",
			Help: "A service account that may read users and groups under the base DN."},
		{Name: "bindPassword", Label: "Bind password", Kind: profile.KindPassword},
		{Name: "baseDn", Label: "Base DN", Kind: profile.KindText, Placeholder: "DC=corp,DC=example,DC=com"},
		{Name: "flavour", Label: "Directory", Kind: profile.KindSelect, Options: []profile.Option{
			{Value: FlavourAD, Label: "Active Directory"}, {Value: FlavourOpenLDAP, Label: "OpenLDAP / 389 Directory Server"}},
			Help: "Sets the default filters and attributes below."},
		{Name: "scope", Label: "Users to sync", Kind: profile.KindRadio, Section: profile.SectionDirectory, Options: []profile.Option{
			{Value: ScopeGroups, Label: "Members of the selected groups (nested groups included)"},
			{Value: ScopeFilter, Label: "Every user the user filter matches"}}},
		{Name: "userFilter", Label: "User filter", Kind: profile.KindText, Section: profile.SectionDirectory,
			Help: "An LDAP filter (RFC 4515); empty: the directory's default."},
		{Name: "groupFilter", Label: "Group filter", Kind: profile.KindText, Section: profile.SectionDirectory},
		{Name: "idAttribute", Label: "Stable id", Kind: profile.KindText, Group: "Attributes", Section: profile.SectionMapping,
			Help: "objectGUID (AD), entryUUID (OpenLDAP); never a DN, which changes on rename."},
		{Name: "usernameAttribute", Label: "Username", Kind: profile.KindText, Group: "Attributes", Section: profile.SectionMapping,
			Help: "sAMAccountName or userPrincipalName (AD), uid (OpenLDAP)."},
		{Name: "memberAttribute", Label: "Group members", Kind: profile.KindText, Group: "Attributes", Section: profile.SectionMapping,
			Help: "member, or uniqueMember."},
		{Name: "managerAttribute", Label: "Manager (a DN)", Kind: profile.KindText, Group: "Attributes", Section: profile.SectionMapping},
		{Name: "dnAttribute", Label: "Entry DN", Kind: profile.KindText, Group: "Attributes", Section: profile.SectionMapping,
			Help: "An attribute holding the entry's own DN: distinguishedName (AD), entryDN (OpenLDAP, 389)."},
	},
}

// Profile is the "ldap" block of a profile.
type Profile struct {
	URL               string `json:"url" maxlen:"2048"`
	StartTLS          bool   `json:"startTls,omitempty"`
	CABundle          string `json:"caBundle,omitempty" multiline:"true" maxlen:"65536"`
	BindDN            string `json:"bindDn" maxlen:"1024"`
	BindPassword      string `json:"bindPassword,omitempty" secret:"true"`
	BaseDN            string `json:"baseDn" maxlen:"1024"`
	Flavour           string `json:"flavour"`
	Scope             string `json:"scope"`
	UserFilter        string `json:"userFilter" maxlen:"4096"`
	GroupFilter       string `json:"groupFilter" maxlen:"4096"`
	IDAttribute       string `json:"idAttribute"`
	UsernameAttribute string `json:"usernameAttribute"`
	MemberAttribute   string `json:"memberAttribute"`
	ManagerAttribute  string `json:"managerAttribute"`
	DNAttribute       string `json:"dnAttribute"`
}

// Normalize fills the flavour's filters and attributes where they are
// empty, so that the stored profile says what a run reads. A profile
// scoped by the user filter selects the filter's one group.
func (p *Profile) Normalize(c *profile.Config) {
	p.URL, p.BindDN, p.BaseDN = strings.TrimSpace(p.URL), strings.TrimSpace(p.BindDN), strings.TrimSpace(p.BaseDN)
	p.Flavour = strings.ToLower(strings.TrimSpace(p.Flavour))
	if p.Scope == "" {
		p.Scope = ScopeGroups
	}
	if p.Flavour == FlavourAD || p.Flavour == FlavourOpenLDAP {
		attrs, users, groups := Defaults(p.Flavour)
		for _, f := range []struct {
			dst *string
			def string
		}{{&p.UserFilter, users}, {&p.GroupFilter, groups}, {&p.IDAttribute, attrs.ID}, {&p.UsernameAttribute, attrs.Username},
			{&p.MemberAttribute, attrs.Member}, {&p.ManagerAttribute, attrs.Manager}, {&p.DNAttribute, attrs.DN}} {
			if *f.dst = strings.TrimSpace(*f.dst); *f.dst == "" {
				*f.dst = f.def
			}
		}
	}
	if p.Scope == ScopeFilter && c != nil {
		c.Groups = []string{FilterGroupID}
	}
}

// Validate reports the block's invalid fields and the attribute map's
// LDAP attribute names. Plain ldap:// without StartTLS is allowed only to
// a loopback host (tests, the demo), as http is for the other providers.
func (p *Profile) Validate(c *profile.Config) profile.FieldErrors {
	var errs profile.FieldErrors
	cfg := p.Config(nil)
	cfg.AllowPlainLoopback = true
	for _, e := range cfg.Validate() {
		errs.Add(e.Field, "%s", e.Message)
	}
	if c != nil {
		for k, v := range c.AttributeMap {
			if !validAttribute(strings.TrimSpace(k)) {
				errs.Add("attributeMap", "%q (mapped to %s) is not an LDAP attribute name", k, v)
			}
		}
	}
	return errs
}

// Endpoints are where the bind password goes: the server, and the CA
// that decides which server may receive it.
func (p *Profile) Endpoints() []profile.Endpoint {
	return []profile.Endpoint{{Field: "url", Value: p.URL}, {Field: "caBundle", Value: strings.TrimSpace(p.CABundle)}}
}

// Config is the source's configuration for the block and the profile's
// attribute map.
func (p *Profile) Config(attributeMap map[string]string) Config {
	return Config{URL: p.URL, StartTLS: p.StartTLS, CABundle: p.CABundle, BindDN: p.BindDN, BindPassword: p.BindPassword,
		BaseDN: p.BaseDN, UserFilter: p.UserFilter, GroupFilter: p.GroupFilter, Flavour: p.Flavour, Scope: p.Scope,
		Attributes: Attributes{ID: p.IDAttribute, Username: p.UsernameAttribute, Member: p.MemberAttribute,
			Manager: p.ManagerAttribute, DN: p.DNAttribute},
		AttributeMap: attributeMap}
}

var _ profile.EndpointBlock = (*Profile)(nil)

// Fingerprint is what a change state depends on: a change of any of these
// makes the next run a full one (the states also carry their own
// fingerprint, so that one saved under other settings is refused).
func (p *Profile) Fingerprint() map[string]any {
	return map[string]any{"ldap": []any{p.URL, p.BindDN, p.BaseDN, p.Flavour, p.Scope, p.UserFilter, p.GroupFilter,
		p.IDAttribute, p.UsernameAttribute, p.MemberAttribute, p.ManagerAttribute, p.DNAttribute}}
}
