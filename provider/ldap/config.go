package ldap

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Flavours of directory: they decide the default attributes.
const (
	FlavourAD       = "ad"       // Active Directory
	FlavourOpenLDAP = "openldap" // OpenLDAP, 389 Directory Server
)

// Scopes of a profile.
const (
	// ScopeGroups: the members, at any depth, of the selected groups.
	ScopeGroups = "groups"
	// ScopeFilter: every user the user filter matches. The users are
	// presented as the members of one group, FilterGroupID, which the
	// profile selects.
	ScopeFilter = "filter"
)

// FilterGroupID is the group of every user under the user filter, in a
// ScopeFilter profile.
const FilterGroupID = "ldap-user-filter"

// Defaults.
const (
	DefaultPageSize    = 500
	MaxPageSize        = 1000 // Active Directory's MaxPageSize default
	DefaultDialTimeout = 10 * time.Second
	// DefaultRequestTimeout bounds one LDAP operation (a page), inside
	// Temporal's heartbeat timeout.
	DefaultRequestTimeout = 25 * time.Second
)

// Attributes says which LDAP attribute holds what. Empty fields take the
// flavour's default (Defaults).
type Attributes struct {
	ID        string `json:"id,omitempty"`        // stable id: objectGUID, entryUUID
	Username  string `json:"username,omitempty"`  // sAMAccountName, uid
	FirstName string `json:"firstName,omitempty"` // givenName
	LastName  string `json:"lastName,omitempty"`  // sn
	Email     string `json:"email,omitempty"`     // mail
	Manager   string `json:"manager,omitempty"`   // a DN: manager
	Member    string `json:"member,omitempty"`    // a group's member DNs: member, uniqueMember
	GroupName string `json:"groupName,omitempty"` // cn
	// DN is an attribute that holds an entry's own DN and can be
	// filtered on, to resolve member and manager DNs in batches:
	// distinguishedName (AD), entryDN (OpenLDAP, 389).
	DN string `json:"dn,omitempty"`
}

// Defaults are a flavour's attributes and filters.
func Defaults(flavour string) (Attributes, string, string) {
	if flavour == FlavourAD {
		return Attributes{ID: "objectGUID", Username: "sAMAccountName", FirstName: "givenName", LastName: "sn",
				Email: "mail", Manager: "manager", Member: "member", GroupName: "cn", DN: "distinguishedName"},
			"(&(objectCategory=person)(objectClass=user))", "(objectClass=group)"
	}
	return Attributes{ID: "entryUUID", Username: "uid", FirstName: "givenName", LastName: "sn", Email: "mail",
			Manager: "manager", Member: "member", GroupName: "cn", DN: "entryDN"},
		"(objectClass=inetOrgPerson)", "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
}

// Config is the LDAP block of a profile, plus how to reach the server.
type Config struct {
	// URL is ldap://host[:389] or ldaps://host[:636].
	URL string `json:"url"`
	// StartTLS upgrades an ldap:// connection before binding (RFC 4511
	// section 4.14).
	StartTLS bool `json:"startTls,omitempty"`
	// CABundle is PEM certificates to trust for LDAPS and StartTLS, in
	// place of the system's.
	CABundle string `json:"caBundle,omitempty"`
	// BindDN and BindPassword are the service account's simple bind; the
	// password is a secret.
	BindDN       string `json:"bindDn"`
	BindPassword string `json:"bindPassword,omitempty"`
	BaseDN       string `json:"baseDn"`
	// UserFilter and GroupFilter select users and groups under BaseDN;
	// empty: the flavour's.
	UserFilter  string `json:"userFilter,omitempty"`
	GroupFilter string `json:"groupFilter,omitempty"`
	Flavour     string `json:"flavour"`
	// Scope is ScopeGroups (default) or ScopeFilter.
	Scope      string     `json:"scope,omitempty"`
	Attributes Attributes `json:"attributes,omitempty"`
	// AttributeMap maps an LDAP attribute to a directory field; the
	// targets firstName, lastName, email and username replace those.
	AttributeMap map[string]string `json:"-"`
	PageSize     int               `json:"-"`
	// DialTimeout bounds the connection and TLS handshake;
	// RequestTimeout each operation.
	DialTimeout    time.Duration `json:"-"`
	RequestTimeout time.Duration `json:"-"`
	// AllowPlainLoopback lets a test or a demo bind over plain ldap:// to
	// a loopback host; elsewhere a password never travels unencrypted.
	AllowPlainLoopback bool         `json:"-"`
	Logger             *slog.Logger `json:"-"`
	// Now is the clock of OpenLDAP and 389 change states (the time a round
	// starts from); nil is time.Now. A test moves it to the server's clock.
	Now func() time.Time `json:"-"`
	// Dial opens the TCP connection to the server; nil is a plain
	// net.Dialer. A process gives its outbound policy here, so that a
	// profile cannot point the worker at an inside address that HTTP
	// providers may not reach either.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error) `json:"-"`
}

// FieldError is one invalid setting; Field is its path in the profile
// ("ldap.url").
type FieldError struct {
	Field   string
	Message string
}

// FieldErrors are all the problems of a Config.
type FieldErrors []FieldError

func (e FieldErrors) Error() string {
	parts := make([]string, len(e))
	for i, f := range e {
		parts[i] = f.Field + ": " + f.Message
	}
	return "ldap: " + strings.Join(parts, "; ")
}

func (e *FieldErrors) add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: "ldap." + field, Message: fmt.Sprintf(format, args...)})
}

// Validate reports every invalid setting at once, with its path.
func (c Config) Validate() FieldErrors {
	var errs FieldErrors
	u, err := parseURL(c.URL)
	switch {
	case strings.TrimSpace(c.URL) == "":
		errs.add("url", "required")
	case err != nil:
		errs.add("url", "%v", err)
	case u.Scheme == "ldaps" && c.StartTLS:
		errs.add("startTls", "an ldaps:// URL is already TLS; StartTLS is for ldap://")
	case u.Scheme == "ldap" && !c.StartTLS && !(c.AllowPlainLoopback && isLoopback(u.Hostname())):
		errs.add("url", "ldap:// sends the bind password in clear: use ldaps:// or turn on startTls")
	}
	if strings.TrimSpace(c.CABundle) != "" {
		if _, err := certPool(c.CABundle); err != nil {
			errs.add("caBundle", "%v", err)
		}
	}
	if strings.TrimSpace(c.BindDN) == "" {
		errs.add("bindDn", "required: the service account's DN")
	} else if _, err := goldap.ParseDN(c.BindDN); err != nil {
		errs.add("bindDn", "not a DN: %v", err)
	}
	if c.BindPassword == "" {
		errs.add("bindPassword", "required")
	}
	if strings.TrimSpace(c.BaseDN) == "" {
		errs.add("baseDn", "required")
	} else if _, err := goldap.ParseDN(c.BaseDN); err != nil {
		errs.add("baseDn", "not a DN: %v", err)
	}
	switch c.Flavour {
	case FlavourAD, FlavourOpenLDAP:
	case "":
		errs.add("flavour", "required: %s or %s", FlavourAD, FlavourOpenLDAP)
	default:
		errs.add("flavour", "must be %s or %s, not %q", FlavourAD, FlavourOpenLDAP, c.Flavour)
	}
	switch c.Scope {
	case "", ScopeGroups, ScopeFilter:
	default:
		errs.add("scope", "must be %s or %s, not %q", ScopeGroups, ScopeFilter, c.Scope)
	}
	for name, f := range map[string]string{"userFilter": c.UserFilter, "groupFilter": c.GroupFilter} {
		if strings.TrimSpace(f) == "" {
			continue
		}
		if _, err := goldap.CompileFilter(f); err != nil {
			errs.add(name, "not an LDAP filter (RFC 4515): %v", err)
		}
	}
	for name, a := range map[string]string{"id": c.Attributes.ID, "username": c.Attributes.Username,
		"firstName": c.Attributes.FirstName, "lastName": c.Attributes.LastName, "email": c.Attributes.Email,
		"manager": c.Attributes.Manager, "member": c.Attributes.Member, "groupName": c.Attributes.GroupName,
		"dn": c.Attributes.DN} {
		if a != "" && !validAttribute(a) {
			errs.add("attributes."+name, "%q is not an attribute name", a)
		}
	}
	for k, v := range c.AttributeMap {
		if !validAttribute(strings.TrimSpace(k)) || strings.TrimSpace(v) == "" {
			errs.add("attributeMap", "entry %q -> %q: the key must be an LDAP attribute name and the value a field", k, v)
		}
	}
	if c.PageSize < 0 {
		errs.add("pageSize", "must not be negative")
	}
	// Maps above are iterated in random order: the same profile reports
	// its problems in the same order every time.
	slices.SortStableFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return errs
}

// validAttribute: an attribute description's name (RFC 4512 section 2.5):
// a keystring or a numeric OID.
func validAttribute(a string) bool {
	if a == "" || len(a) > 128 {
		return false
	}
	for i, r := range a {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9', r == '-' && i > 0, r == '.' && i > 0:
		default:
			return false
		}
	}
	return true
}

func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %w", err)
	}
	switch {
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		return nil, fmt.Errorf("must be ldap:// or ldaps://, not %q", u.Scheme)
	case u.Hostname() == "":
		return nil, fmt.Errorf("has no host")
	case u.User != nil:
		return nil, fmt.Errorf("must not carry credentials: set bindDn and bindPassword")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("must be the server only, such as ldaps://%s (the base DN is its own setting)", u.Host)
	}
	return u, nil
}

func certPool(bundle string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest := []byte(strings.ReplaceAll(strings.TrimSpace(bundle), `\n`, "\n"))
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d cannot be parsed: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no PEM certificate (-----BEGIN CERTIFICATE-----) in the CA bundle")
	}
	return pool, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
