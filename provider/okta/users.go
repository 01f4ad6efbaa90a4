package okta

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"

	"github.com/usersync/usersync/provider"
)

// Okta user statuses and what they mean to a sync. STAGED users have never
// been activated (no password, not yet meant to exist), so they are left
// out rather than created; SUSPENDED and DEPROVISIONED users come back
// inactive so that the engine disables them.
var statusActive = map[string]bool{
	"ACTIVE": true, "PROVISIONED": true, "RECOVERY": true, "LOCKED_OUT": true, "PASSWORD_EXPIRED": true,
	"SUSPENDED": false, "DEPROVISIONED": false,
}

const statusStaged = "STAGED"

// position is a decoded cursor: the index of the scope group being read
// and the next link of its member listing. Scope is a hash of the scope's
// group ids, so a cursor saved before the profile's groups changed is
// refused rather than read against another list. After is the after
// value older cursors carried instead of a link: such a cursor is
// refused, and the fetch starts again.
type position struct {
	Group int    `json:"g,omitempty"`
	After string `json:"a,omitempty"`
	Link  string `json:"l,omitempty"`
	Scope uint32 `json:"s,omitempty"`
}

func (p position) encode() string {
	b, _ := json.Marshal(p) //nolint:errchkjson // plain struct
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePosition(c provider.Cursor) (position, error) {
	var p position
	if c == "" {
		return p, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil || p.Group < 0 || p.After != "" {
		return p, fmt.Errorf("okta: cursor cannot be read: %w", provider.ErrCursorExpired)
	}
	return p, nil
}

// scopeGroups is the scope's group ids, trimmed and without repeats, in
// the profile's order.
func scopeGroups(scope provider.Scope) ([]string, uint32) {
	seen := map[string]bool{}
	var out []string
	h := fnv.New32a()
	for _, g := range scope.GroupIDs {
		g = strings.TrimSpace(g)
		if g == "" || seen[g] {
			continue
		}
		seen[g] = true
		out = append(out, g)
		h.Write([]byte(g)) //nolint:errcheck // hash writes do not fail
		h.Write([]byte{0}) //nolint:errcheck
	}
	return out, h.Sum32()
}

// Users reads one page of the members of the scope's groups. A user in two
// selected groups is returned once per page; across pages the run's
// staging keeps the first record of an id, so the set a fetch ends with has
// each user once. A selected group Okta answers 404 for fails the read:
// skipping it would take all its members out of scope and disable them,
// and a 404 does not tell a deleted group from one these credentials may
// not see (an admin role limited to some groups).
func (s *Source) Users(ctx context.Context, scope provider.Scope, c provider.Cursor) (provider.Page[provider.User], error) {
	groups, hash := scopeGroups(scope)
	pos, err := decodePosition(c)
	if err != nil {
		return provider.Page[provider.User]{}, err
	}
	if c != "" && (pos.Scope != hash || pos.Group >= len(groups)) {
		return provider.Page[provider.User]{}, fmt.Errorf("okta: cursor of another group selection: %w", provider.ErrCursorExpired)
	}
	if pos.Group >= len(groups) {
		return provider.Page[provider.User]{}, nil
	}
	gid := groups[pos.Group]
	users, next, err := s.groupUsers(ctx, gid, pos.Link)
	var gone *objectNotFound
	if errors.As(err, &gone) {
		return provider.Page[provider.User]{}, fmt.Errorf("okta: selected group %s was not found (deleted, or not visible to these credentials): no user was disabled; remove it from the profile or check the app's access: %w",
			gid, err)
	}
	if err != nil {
		return provider.Page[provider.User]{}, err
	}
	page := provider.Page[provider.User]{Items: make([]provider.User, 0, len(users))}
	seen := make(map[string]bool, len(users))
	for _, u := range users {
		if u == nil || u.Status == statusStaged || seen[u.Id] {
			continue
		}
		seen[u.Id] = true
		page.Items = append(page.Items, s.mapUser(u))
	}
	switch {
	case next != "":
		page.Next = position{Group: pos.Group, Link: next, Scope: hash}.encode()
	case pos.Group+1 < len(groups):
		page.Next = position{Group: pos.Group + 1, Scope: hash}.encode()
	}
	return page, nil
}

// Members reads one page of a group's members. STAGED users are left out,
// as they are from Users.
func (s *Source) Members(ctx context.Context, groupID string, c provider.Cursor) (provider.Page[provider.Member], error) {
	pos, err := decodePosition(c)
	if err != nil {
		return provider.Page[provider.Member]{}, err
	}
	users, next, err := s.groupUsers(ctx, groupID, pos.Link)
	if err != nil {
		return provider.Page[provider.Member]{}, err
	}
	page := provider.Page[provider.Member]{Items: make([]provider.Member, 0, len(users))}
	for _, u := range users {
		if u != nil && u.Status != statusStaged {
			page.Items = append(page.Items, provider.Member{UserID: u.Id})
		}
	}
	if next != "" {
		page.Next = position{Link: next}.encode()
	}
	return page, nil
}

// groupUsers reads one page of /api/v1/groups/{id}/users: the first, or
// the one at link.
func (s *Source) groupUsers(ctx context.Context, groupID, link string) ([]*okta.User, string, error) {
	var users []*okta.User
	next, _, err := s.listPage(ctx, "/api/v1/groups/"+escape(groupID)+"/users", &query.Params{Limit: int64(s.pageSize)},
		link, &users, "list the members of group "+groupID, provider.ErrInvalidData)
	return users, next, err
}

// mapUser turns an Okta user into a provider user.
func (s *Source) mapUser(u *okta.User) provider.User {
	var p okta.UserProfile
	if u.Profile != nil {
		p = *u.Profile
	}
	str := func(k string) string { return attrString(p[k]) }
	out := provider.User{ExternalID: u.Id, Username: str(s.userAttr), FirstName: str("firstName"),
		LastName: str("lastName"), Email: str("email"), ManagerRef: str("managerId")}
	if out.ManagerRef == "" {
		out.ManagerRef = str("manager")
	}
	active, known := statusActive[u.Status]
	out.Active = active
	if !known {
		// A status this code does not know: neither create nor disable on
		// a guess; the run skips the user and says why.
		out.Invalid = fmt.Sprintf("unknown Okta status %q", u.Status)
	}
	for attr, field := range s.attrs {
		v := str(attr)
		switch field {
		case "username":
			out.Username = v
		case "firstName":
			out.FirstName = v
		case "lastName":
			out.LastName = v
		case "email":
			out.Email = v
		default:
			if out.Attributes == nil {
				out.Attributes = make(map[string]string, len(s.attrs))
			}
			// Mapped but empty is kept as "": the directory then clears
			// a value removed in Okta.
			out.Attributes[field] = v
		}
	}
	if out.Username == "" && out.Invalid == "" {
		out.Invalid = fmt.Sprintf("missing required field username (Okta profile attribute %s is empty)", s.userAttr)
	}
	return out
}

// attrString renders a profile value as the directory stores it: numbers
// without exponent, booleans as true/false, arrays (custom string arrays)
// joined by ";", objects as JSON.
func attrString(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(t)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(t)
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			if s := attrString(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ";")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
