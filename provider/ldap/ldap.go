// Package ldap reads users and groups from Active Directory, OpenLDAP or
// 389 Directory Server as a provider.Source, through go-ldap.
//
// Every search that may return more than one entry is paged (RFC 2696,
// search.go); connections are bound with the service account's simple
// bind over LDAPS or StartTLS (conn.go) and kept in a pool across the
// fetch calls of a run, because a paged search's cookie only works on the
// connection that started it.
//
// Ids are the directory's stable ones (objectGUID rendered as a GUID
// string, entryUUID), never DNs, so that a rename or a move between OUs
// is an update. Member and manager values are DNs, resolved to those ids
// in batches with an equality filter on the entry's own DN attribute
// (distinguishedName, entryDN).
//
// The source reads its full run as its initial change round
// (provider.FullByChanges): the group graph (each group with its direct
// members, users and groups), from which the engine works out nested
// scope with cycles, then every user under the user filter. delta.go
// tells how later rounds read only the changes.
package ldap

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/provider"
)

// Source reads one directory. One Source may serve concurrent calls.
type Source struct {
	flavour        string
	scope          string
	host, addr     string
	ldaps          bool
	startTLS       bool
	tls            *tls.Config
	bindDN         string
	bindPassword   string
	baseDN         string
	userFilter     string
	groupFilter    string
	attrs          Attributes
	attrMap        map[string]string
	pageSize       int
	dialTimeout    time.Duration
	requestTimeout time.Duration
	log            *slog.Logger
	now            func() time.Time
	// key identifies the server and credentials in the connection pool;
	// fingerprint the settings a change state is valid for.
	key, fingerprint string
	dial             dialer
	dialTCP          func(ctx context.Context, network, addr string) (net.Conn, error)
}

var (
	_ provider.Source        = (*Source)(nil)
	_ provider.Warner        = (*Source)(nil)
	_ provider.FullByChanges = (*Source)(nil)
)

// Open checks the configuration. It does not connect: Test does.
func (c Config) Open() (*Source, error) {
	if errs := c.Validate(); len(errs) > 0 {
		return nil, errs
	}
	u, _ := parseURL(c.URL)
	attrs, userFilter, groupFilter := Defaults(c.Flavour)
	fill := func(dst *string, v string) {
		if v = strings.TrimSpace(v); v != "" {
			*dst = v
		}
	}
	fill(&attrs.ID, c.Attributes.ID)
	fill(&attrs.Username, c.Attributes.Username)
	fill(&attrs.FirstName, c.Attributes.FirstName)
	fill(&attrs.LastName, c.Attributes.LastName)
	fill(&attrs.Email, c.Attributes.Email)
	fill(&attrs.Manager, c.Attributes.Manager)
	fill(&attrs.Member, c.Attributes.Member)
	fill(&attrs.GroupName, c.Attributes.GroupName)
	fill(&attrs.DN, c.Attributes.DN)
	fill(&userFilter, c.UserFilter)
	fill(&groupFilter, c.GroupFilter)
	s := &Source{flavour: c.Flavour, scope: c.Scope, host: u.Hostname(), ldaps: u.Scheme == "ldaps", startTLS: c.StartTLS,
		bindDN: strings.TrimSpace(c.BindDN), bindPassword: c.BindPassword, baseDN: strings.TrimSpace(c.BaseDN),
		userFilter: userFilter, groupFilter: groupFilter, attrs: attrs, attrMap: map[string]string{},
		pageSize: c.PageSize, dialTimeout: c.DialTimeout, requestTimeout: c.RequestTimeout, log: c.Logger, now: c.Now, dialTCP: c.Dial}
	if s.now == nil {
		s.now = time.Now
	}
	if s.dialTCP == nil {
		s.dialTCP = (&net.Dialer{}).DialContext
	}
	if s.scope == "" {
		s.scope = ScopeGroups
	}
	port := u.Port()
	if port == "" {
		port = "389"
		if s.ldaps {
			port = "636"
		}
	}
	s.addr = net.JoinHostPort(s.host, port)
	switch {
	case s.pageSize == 0:
		s.pageSize = DefaultPageSize
	case s.pageSize > MaxPageSize:
		s.pageSize = MaxPageSize
	}
	if s.dialTimeout <= 0 {
		s.dialTimeout = DefaultDialTimeout
	}
	if s.requestTimeout <= 0 {
		s.requestTimeout = DefaultRequestTimeout
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for k, v := range c.AttributeMap {
		s.attrMap[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	s.tls = &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
	if strings.TrimSpace(c.CABundle) != "" {
		s.tls.RootCAs, _ = certPool(c.CABundle)
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{s.addr, strconv.FormatBool(s.ldaps), strconv.FormatBool(s.startTLS),
		c.CABundle, s.bindDN, s.bindPassword}, "\x00")))
	s.key = hex.EncodeToString(sum[:])
	mapKeys := make([]string, 0, len(s.attrMap))
	for k, v := range s.attrMap {
		mapKeys = append(mapKeys, k+"="+v)
	}
	slices.Sort(mapKeys)
	fp, _ := json.Marshal([]any{s.addr, s.flavour, s.scope, s.baseDN, s.userFilter, s.groupFilter, s.attrs, mapKeys}) //nolint:errchkjson // plain values
	sum = sha256.Sum256(fp)
	s.fingerprint = hex.EncodeToString(sum[:8])
	s.dial = s.dialLDAP
	return s, nil
}

// ReadsFullByChanges implements provider.FullByChanges.
func (s *Source) ReadsFullByChanges() bool { return true }

// Test checks the connection; its warnings are logged.
func (s *Source) Test(ctx context.Context) error {
	warnings, err := s.TestWarnings(ctx)
	for _, w := range warnings {
		s.log.Warn(w, "server", s.addr)
	}
	return err
}

// TestWarnings names the first step that fails: DNS, TCP, TLS, the bind,
// the base DN, the user filter; and what works but not fully.
func (s *Source) TestWarnings(ctx context.Context) ([]string, error) {
	base, err := s.one(ctx, s.baseDN, "(objectClass=*)", []string{"1.1"})
	if err != nil {
		return nil, err
	}
	if base == nil {
		return nil, fmt.Errorf("ldap: base DN %s not found (or not visible to %s): check ldap.baseDn: %w", s.baseDN, s.bindDN, provider.ErrNotFound)
	}
	user, err := s.first(ctx, s.searchReq(s.userFilter, s.userAttributes()))
	if err != nil {
		return nil, err
	}
	if user == nil {
		return nil, fmt.Errorf("ldap: no entries under %s match the user filter %s (or %s may not read them): %w", s.baseDN, s.userFilter, s.bindDN, provider.ErrNotFound)
	}
	if len(user.GetRawAttributeValue(s.attrs.ID)) == 0 {
		return nil, fmt.Errorf("ldap: %s has no %s, the stable id (ldap.idAttribute; flavour %s): %w", user.DN, s.attrs.ID, s.flavour, provider.ErrInvalidData)
	}
	var warnings []string
	group, err := s.first(ctx, s.searchReq(s.groupFilter, []string{"1.1"}))
	if err != nil {
		return nil, err
	}
	if group == nil && s.scope == ScopeGroups {
		warnings = append(warnings, fmt.Sprintf("ldap: no group under %s matches the group filter %s: a profile scoped by groups has nothing to select", s.baseDN, s.groupFilter))
	}
	if _, err := s.roundStart(ctx); err != nil {
		warnings = append(warnings, "ldap: incremental sync is off and every run reads the whole directory: "+err.Error())
	}
	return warnings, nil
}

// userAttributes are the attributes a user read asks for.
func (s *Source) userAttributes() []string {
	a := []string{s.attrs.ID, s.attrs.Username, s.attrs.FirstName, s.attrs.LastName, s.attrs.Email, s.attrs.Manager,
		"userAccountControl", "nsAccountLock", "pwdAccountLockedTime"}
	for k := range s.attrMap {
		a = append(a, k)
	}
	slices.Sort(a)
	return slices.Compact(a)
}

// Users lists the users under the user filter; with selected groups, only
// their members at any depth.
func (s *Source) Users(ctx context.Context, scope provider.Scope, c provider.Cursor) (provider.Page[provider.User], error) {
	var out provider.Page[provider.User]
	var cur pageCursor
	if err := decodeCursor(c, &cur); err != nil {
		return out, err
	}
	var keep map[string]bool
	if ids := slices.DeleteFunc(slices.Clone(scope.GroupIDs), func(id string) bool { return id == FilterGroupID }); len(ids) > 0 {
		var err error
		if keep, err = s.expand(ctx, ids); err != nil {
			return out, err
		}
	}
	entries, next, err := s.page(ctx, s.searchReq(s.userFilter, s.userAttributes()), s.pageSize, cur)
	if err != nil {
		return out, err
	}
	if keep != nil {
		entries = slices.DeleteFunc(entries, func(e *goldap.Entry) bool { return !keep[normDN(e.DN)] })
	}
	if out.Items, err = s.users(ctx, entries); err != nil {
		return out, err
	}
	out.Next = encodeCursor(next)
	return out, nil
}

// expand is the DNs of every member, at any depth, of the groups with ids;
// a group met again (a cycle) is not read twice.
func (s *Source) expand(ctx context.Context, ids []string) (map[string]bool, error) {
	found, err := s.byIDs(ctx, s.groupFilter, ids, []string{"1.1"})
	if err != nil {
		return nil, err
	}
	seen, members := map[string]bool{}, map[string]bool{}
	var todo []string
	for _, e := range found {
		todo = append(todo, e.DN)
	}
	for len(todo) > 0 {
		dn := todo[0]
		todo = todo[1:]
		if seen[normDN(dn)] {
			continue
		}
		seen[normDN(dn)] = true
		vals, err := s.members(ctx, dn)
		if err != nil {
			return nil, err
		}
		refs, err := s.resolve(ctx, vals, false, true)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if r, ok := refs[normDN(v)]; ok && r.group {
				todo = append(todo, v)
				continue
			}
			members[normDN(v)] = true
		}
	}
	return members, nil
}

// Groups lists groups: the picker (matching q.Search in their name) and
// group sync. A profile scoped by the user filter also sees the group of
// every user under it, which it selects.
func (s *Source) Groups(ctx context.Context, q provider.GroupQuery, c provider.Cursor) (provider.Page[provider.Group], error) {
	var out provider.Page[provider.Group]
	var cur pageCursor
	if err := decodeCursor(c, &cur); err != nil {
		return out, err
	}
	search := strings.TrimSpace(q.Search)
	if c == "" && s.scope == ScopeFilter && strings.Contains(strings.ToLower(filterGroupName), strings.ToLower(search)) {
		out.Items = append(out.Items, s.filterGroup())
	}
	filter := s.groupFilter
	if search != "" {
		filter = "(&" + filter + "(" + s.attrs.GroupName + "=*" + goldap.EscapeFilter(search) + "*))"
	}
	entries, next, err := s.page(ctx, s.searchReq(filter, []string{s.attrs.ID, s.attrs.GroupName, "description"}), s.pageSize, cur)
	if err != nil {
		return out, err
	}
	for _, e := range entries {
		g, ok := s.group(e)
		if ok {
			out.Items = append(out.Items, g)
		}
	}
	out.Next = encodeCursor(next)
	return out, nil
}

const filterGroupName = "All users under the user filter"

func (s *Source) filterGroup() provider.Group {
	return provider.Group{ID: FilterGroupID, Name: filterGroupName, Type: "filter", SecurityEnabled: true}
}

func (s *Source) group(e *goldap.Entry) (provider.Group, bool) {
	id := s.id(e)
	if id == "" {
		s.log.Warn("ldap: group without its id attribute is left out", "dn", e.DN, "attribute", s.attrs.ID)
		return provider.Group{}, false
	}
	name := e.GetAttributeValue(s.attrs.GroupName)
	if name == "" {
		name = e.DN
	}
	return provider.Group{ID: id, Name: name, Type: "group", SecurityEnabled: true}, true
}

// Members lists the user members (direct) of one group.
func (s *Source) Members(ctx context.Context, groupID string, c provider.Cursor) (provider.Page[provider.Member], error) {
	var out provider.Page[provider.Member]
	if groupID == FilterGroupID {
		var cur pageCursor
		if err := decodeCursor(c, &cur); err != nil {
			return out, err
		}
		entries, next, err := s.page(ctx, s.searchReq(s.userFilter, []string{s.attrs.ID}), s.pageSize, cur)
		if err != nil {
			return out, err
		}
		for _, e := range entries {
			if id := s.id(e); id != "" {
				out.Items = append(out.Items, provider.Member{UserID: id})
			}
		}
		out.Next = encodeCursor(next)
		return out, nil
	}
	found, err := s.byIDs(ctx, s.groupFilter, []string{groupID}, []string{"1.1"})
	if err != nil {
		return out, err
	}
	if len(found) == 0 {
		return out, fmt.Errorf("ldap: group %s not found under %s: %w", groupID, s.baseDN, provider.ErrNotFound)
	}
	vals, err := s.members(ctx, found[0].DN)
	if err != nil {
		return out, err
	}
	refs, err := s.resolve(ctx, vals, true, false)
	if err != nil {
		return out, err
	}
	for _, v := range vals {
		if r, ok := refs[normDN(v)]; ok && !r.group {
			out.Items = append(out.Items, provider.Member{UserID: r.id})
		}
	}
	return out, nil
}

// users maps a page of user entries, their managers resolved to ids.
func (s *Source) users(ctx context.Context, entries []*goldap.Entry) ([]provider.User, error) {
	local := map[string]string{}
	var remote []string
	for _, e := range entries {
		local[normDN(e.DN)] = s.id(e)
	}
	for _, e := range entries {
		if m := e.GetAttributeValue(s.attrs.Manager); m != "" {
			if _, ok := local[normDN(m)]; !ok {
				remote = append(remote, m)
			}
		}
	}
	refs, err := s.resolve(ctx, remote, true, false)
	if err != nil {
		return nil, err
	}
	out := make([]provider.User, 0, len(entries))
	for _, e := range entries {
		u := s.user(e)
		if m := e.GetAttributeValue(s.attrs.Manager); m != "" {
			if id, ok := local[normDN(m)]; ok {
				u.ManagerRef = id
			} else if r, ok := refs[normDN(m)]; ok && !r.group {
				u.ManagerRef = r.id
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// user maps one entry, manager aside.
func (s *Source) user(e *goldap.Entry) provider.User {
	u := provider.User{ExternalID: s.id(e), Username: e.GetAttributeValue(s.attrs.Username),
		FirstName: e.GetAttributeValue(s.attrs.FirstName), LastName: e.GetAttributeValue(s.attrs.LastName),
		Email: e.GetAttributeValue(s.attrs.Email), Active: active(e)}
	if u.ExternalID == "" {
		u.ExternalID = e.DN
		u.Invalid = "the entry has no " + s.attrs.ID + " (its stable id)"
	}
	for attr, field := range s.attrMap {
		v := e.GetAttributeValue(attr)
		switch field {
		case "firstName":
			u.FirstName = v
		case "lastName":
			u.LastName = v
		case "email":
			u.Email = v
		case "username":
			u.Username = v
		default:
			if u.Attributes == nil {
				u.Attributes = map[string]string{}
			}
			u.Attributes[field] = v
		}
	}
	return u
}

// active reads the disabled flags of each flavour: AD's userAccountControl
// ACCOUNTDISABLE bit (0x2), 389's nsAccountLock, and the password policy
// overlay's pwdAccountLockedTime (OpenLDAP).
func active(e *goldap.Entry) bool {
	if v := e.GetAttributeValue("userAccountControl"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n&uacAccountDisable != 0 {
			return false
		}
	}
	if strings.EqualFold(e.GetAttributeValue("nsAccountLock"), "true") {
		return false
	}
	return e.GetAttributeValue("pwdAccountLockedTime") == ""
}

// uacAccountDisable is userAccountControl's ACCOUNTDISABLE flag.
const uacAccountDisable = 0x2

func encodeCursor(c *pageCursor) provider.Cursor {
	if c == nil {
		return ""
	}
	b, _ := json.Marshal(c) //nolint:errchkjson // plain struct
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(c provider.Cursor, v any) error {
	if c == "" {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return fmt.Errorf("ldap: cursor cannot be read: %w", provider.ErrCursorExpired)
	}
	return nil
}
