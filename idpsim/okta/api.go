package okta

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Page sizes per endpoint: the default when no limit is given, and the cap
// Okta silently applies to a larger one.
const (
	UsersDefaultLimit       = 200
	UsersMaxLimit           = 200
	UsersQueryDefaultLimit  = 10 // with q
	GroupsDefaultLimit      = 10000
	GroupsMaxLimit          = 10000
	GroupsQueryDefaultLimit = 300 // with q
	GroupUsersDefaultLimit  = 1000
	GroupUsersMaxLimit      = 1000
	AppGroupsDefaultLimit   = 20
	AppGroupsMaxLimit       = 200
	timeLayout              = "2006-01-02T15:04:05.000Z"
	errCursorSummary        = "Api validation failed: after"
	errCursorCause          = "after: the cursor is invalid or has expired"
	errSearchSummary        = "Invalid search criteria."
	errLimitSummary         = "Api validation failed: limit"
	errNotFoundSummaryStart = "Not found: Resource not found: "
)

// api routes a GET under /api/v1 once the caller is authorized.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(parts) == 1 && parts[0] == "users":
		s.listUsers(w, r)
	case len(parts) == 2 && parts[0] == "users":
		u := s.org.lookupUser(parts[1])
		if u == nil {
			s.notFound(w, parts[1], "User")
			return
		}
		writeJSON(w, http.StatusOK, s.userDoc(u, origin(r)))
	case len(parts) == 1 && parts[0] == "groups":
		s.listGroups(w, r)
	case len(parts) == 2 && parts[0] == "groups":
		g := s.org.groups[parts[1]]
		if g == nil {
			s.notFound(w, parts[1], "UserGroup")
			return
		}
		writeJSON(w, http.StatusOK, groupDoc(g, origin(r)))
	case len(parts) == 3 && parts[0] == "groups" && parts[2] == "users":
		s.groupUsers(w, r, parts[1])
	case len(parts) == 2 && parts[0] == "apps":
		if parts[1] != s.org.appID {
			s.notFound(w, parts[1], "AppInstance")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": s.org.appID, "name": "oidc_client", "label": s.org.appName,
			"status": "ACTIVE", "signOnMode": "OPENID_CONNECT", "created": epoch.Format(timeLayout), "lastUpdated": epoch.Format(timeLayout)})
	case len(parts) == 3 && parts[0] == "apps" && parts[2] == "groups":
		s.appGroups(w, r, parts[1])
	case len(parts) == 1 && parts[0] == "logs":
		s.listLogs(w, r)
	default:
		s.notFound(w, r.URL.Path, "Resource")
	}
}

func (s *Server) notFound(w http.ResponseWriter, what, kind string) {
	s.writeError(w, http.StatusNotFound, codeNotFound, errNotFoundSummaryStart+what+" ("+kind+")")
}

// listing is the paging state of one list request.
type listing struct {
	limit int
	after string // the last id of the previous page, decoded
}

// parseListing reads limit and after; on error it has answered.
func (s *Server) parseListing(w http.ResponseWriter, r *http.Request, def, max int) (listing, bool) {
	q := r.URL.Query()
	l := listing{limit: def}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.writeError(w, http.StatusBadRequest, codeValidation, errLimitSummary, "limit: must be a number")
			return l, false
		}
		if n > 0 {
			l.limit = min(n, max)
		}
	}
	if v := q.Get("after"); v != "" {
		id, err := s.decodeCursor(v)
		if err != nil {
			s.writeError(w, http.StatusBadRequest, codeValidation, errCursorSummary, errCursorCause)
			return l, false
		}
		l.after = id
	}
	return l, true
}

// Cursors wrap the last id of a page with the cursor generation, so that
// ExpireCursors can invalidate them; clients must treat them as opaque.
func (s *Server) encodeCursor(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(s.generation) + ":" + lastID))
}

func (s *Server) decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", err
	}
	gen, id, ok := strings.Cut(string(b), ":")
	if !ok || gen != strconv.Itoa(s.generation) || id == "" {
		return "", errors.New("stale cursor")
	}
	return id, nil
}

// page takes up to l.limit ids after l.after that keep accepts, and
// returns the id to continue after ("" when nothing matching is left).
func page(ids []string, l listing, keep func(string) bool) (out []string, next string) {
	start := 0
	if l.after != "" {
		i, found := slices.BinarySearch(ids, l.after)
		start = i
		if found {
			start++
		}
	}
	for _, id := range ids[start:] {
		if keep != nil && !keep(id) {
			continue
		}
		if len(out) == l.limit {
			return out, out[len(out)-1]
		}
		out = append(out, id)
	}
	return out, ""
}

// links sends rel="self" and, when there is more, rel="next" as two Link
// headers: the SDK loops on self when both share one header.
func (s *Server) links(w http.ResponseWriter, r *http.Request, l listing, next string) {
	base := origin(r) + r.URL.Path
	self := base
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	w.Header().Add("Link", "<"+self+`>; rel="self"`)
	if next == "" {
		return
	}
	q := r.URL.Query()
	q.Set("after", s.encodeCursor(next))
	q.Set("limit", strconv.Itoa(l.limit))
	w.Header().Add("Link", "<"+base+"?"+q.Encode()+`>; rel="next"`)
}

// listUsers is GET /api/v1/users with the query options Okta documents:
// filter (a few attributes, eq, and lastUpdated ranges), search (most
// attributes), q (a prefix of firstName, lastName or email, one page
// only, 10 users by default), after and limit. Without filter or search
// DEPROVISIONED users are left out. Okta documents that filter includes
// them, but older pages said otherwise; unless told (Config
// FilterIncludesDeprovisioned) the simulator takes the reading that is
// harder on a client: a filtered listing has them only when the filter
// asks for status eq "DEPROVISIONED". Other options are ignored.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix := strings.ToLower(q.Get("q"))
	def := UsersDefaultLimit
	if prefix != "" && q.Get("search") == "" && q.Get("filter") == "" {
		def = UsersQueryDefaultLimit
	}
	l, ok := s.parseListing(w, r, def, UsersMaxLimit)
	if !ok {
		return
	}
	var match func(*user) bool
	paged := true
	switch {
	case q.Get("search") != "":
		m, err := parseExpr(q.Get("search"), userSearch)
		if err != nil {
			s.writeError(w, http.StatusBadRequest, codeBadSearch, errSearchSummary, err.Error())
			return
		}
		match = func(u *user) bool { return m.match(userField(u)) }
	case q.Get("filter") != "":
		m, err := parseExpr(q.Get("filter"), userFilter)
		if err != nil {
			s.writeError(w, http.StatusBadRequest, codeBadSearch, errSearchSummary, err.Error())
			return
		}
		withDeprovisioned := s.filterDeprovisioned || m.asks("status", "eq", StatusDeprovisioned)
		match = func(u *user) bool {
			return (withDeprovisioned || u.status != StatusDeprovisioned) && m.match(userField(u))
		}
	default:
		// q does not page: one page of up to limit users.
		paged = prefix == ""
		match = func(u *user) bool {
			if u.status == StatusDeprovisioned {
				return false
			}
			if prefix == "" {
				return true
			}
			for _, k := range []string{"firstName", "lastName", "email"} {
				if v, _ := u.profile[k].(string); strings.HasPrefix(strings.ToLower(v), prefix) {
					return true
				}
			}
			return false
		}
	}
	if !paged {
		l.after = ""
	}
	ids, next := page(s.org.userIDs, l, func(id string) bool { return match(s.org.users[id]) })
	if !paged {
		next = ""
	}
	docs := make([]userDoc, 0, len(ids))
	for _, id := range ids {
		docs = append(docs, s.userDoc(s.org.users[id], origin(r)))
	}
	s.links(w, r, l, next)
	writeJSON(w, http.StatusOK, docs)
}

// listGroups is GET /api/v1/groups with filter (id, type, lastUpdated,
// lastMembershipUpdated), search, q (a prefix of the name: Okta does not
// page a query, 300 groups by default), after and limit.
func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prefix := strings.ToLower(q.Get("q"))
	def := GroupsDefaultLimit
	if prefix != "" {
		def = GroupsQueryDefaultLimit
	}
	l, ok := s.parseListing(w, r, def, GroupsMaxLimit)
	if !ok {
		return
	}
	var match expr
	for _, p := range []struct {
		name string
		d    dialect
	}{{"search", groupSearch}, {"filter", groupFilter}} {
		if v := q.Get(p.name); v != "" {
			m, err := parseExpr(v, p.d)
			if err != nil {
				s.writeError(w, http.StatusBadRequest, codeBadSearch, errSearchSummary, err.Error())
				return
			}
			match = m.match
			break
		}
	}
	if prefix != "" {
		l.after = ""
	}
	ids, next := page(s.org.groupID, l, func(id string) bool {
		g := s.org.groups[id]
		if !strings.HasPrefix(strings.ToLower(g.name), prefix) {
			return false
		}
		return match == nil || match(groupField(g))
	})
	if prefix != "" {
		next = ""
	}
	docs := make([]groupJSON, 0, len(ids))
	for _, id := range ids {
		docs = append(docs, groupDoc(s.org.groups[id], origin(r)))
	}
	s.links(w, r, l, next)
	writeJSON(w, http.StatusOK, docs)
}

func (s *Server) groupUsers(w http.ResponseWriter, r *http.Request, gid string) {
	g := s.org.groups[gid]
	if g == nil {
		s.notFound(w, gid, "UserGroup")
		return
	}
	l, ok := s.parseListing(w, r, GroupUsersDefaultLimit, GroupUsersMaxLimit)
	if !ok {
		return
	}
	ids, next := page(g.members, l, nil)
	docs := make([]userDoc, 0, len(ids))
	for _, id := range ids {
		docs = append(docs, s.userDoc(s.org.users[id], origin(r)))
	}
	s.links(w, r, l, next)
	writeJSON(w, http.StatusOK, docs)
}

func (s *Server) appGroups(w http.ResponseWriter, r *http.Request, appID string) {
	if appID != s.org.appID {
		s.notFound(w, appID, "AppInstance")
		return
	}
	l, ok := s.parseListing(w, r, AppGroupsDefaultLimit, AppGroupsMaxLimit)
	if !ok {
		return
	}
	prefix := strings.ToLower(r.URL.Query().Get("q"))
	ids, next := page(s.org.appGroups, l, func(id string) bool {
		g := s.org.groups[id]
		return g != nil && strings.HasPrefix(strings.ToLower(g.name), prefix)
	})
	base := origin(r)
	docs := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		g := s.org.groups[id]
		docs = append(docs, map[string]any{"id": id, "lastUpdated": g.lastUpdated.Format(timeLayout),
			"priority": s.org.priority[id], "profile": map[string]any{},
			"_links": map[string]any{
				"app":   map[string]string{"href": base + "/api/v1/apps/" + appID},
				"self":  map[string]string{"href": base + "/api/v1/apps/" + appID + "/groups/" + id},
				"group": map[string]string{"href": base + "/api/v1/groups/" + id},
			}})
	}
	s.links(w, r, l, next)
	writeJSON(w, http.StatusOK, docs)
}

// userDoc is a user as /api/v1/users renders it.
type userDoc struct {
	ID              string            `json:"id"`
	Status          string            `json:"status"`
	Created         string            `json:"created"`
	Activated       *string           `json:"activated"`
	StatusChanged   *string           `json:"statusChanged"`
	LastLogin       *string           `json:"lastLogin"`
	LastUpdated     string            `json:"lastUpdated"`
	PasswordChanged *string           `json:"passwordChanged"`
	Type            map[string]string `json:"type"`
	Profile         map[string]any    `json:"profile"`
	Credentials     map[string]any    `json:"credentials"`
	Links           map[string]any    `json:"_links"`
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(timeLayout)
	return &s
}

func (s *Server) userDoc(u *user, base string) userDoc {
	creds := map[string]any{"provider": map[string]string{"type": "OKTA", "name": "OKTA"}}
	if u.status != StatusStaged {
		creds["password"] = map[string]any{}
	}
	if e, _ := u.profile["email"].(string); e != "" {
		creds["emails"] = []map[string]string{{"value": e, "status": "VERIFIED", "type": "PRIMARY"}}
	}
	return userDoc{ID: u.id, Status: u.status, Created: u.created.UTC().Format(timeLayout),
		Activated: optTime(u.activated), StatusChanged: optTime(u.statusChanged), LastLogin: optTime(u.lastLogin),
		LastUpdated: u.lastUpdated.UTC().Format(timeLayout), PasswordChanged: optTime(u.passwordChanged),
		Type: map[string]string{"id": s.org.userType}, Profile: u.profile, Credentials: creds,
		Links: map[string]any{"self": map[string]string{"href": base + "/api/v1/users/" + u.id}}}
}

// groupJSON is a group as /api/v1/groups renders it.
type groupJSON struct {
	ID                    string         `json:"id"`
	Created               string         `json:"created"`
	LastUpdated           string         `json:"lastUpdated"`
	LastMembershipUpdated string         `json:"lastMembershipUpdated"`
	ObjectClass           []string       `json:"objectClass"`
	Type                  string         `json:"type"`
	Profile               map[string]any `json:"profile"`
	Links                 map[string]any `json:"_links"`
}

func groupDoc(g *group, base string) groupJSON {
	class := "okta:user_group"
	if g.typ == GroupApp {
		class = "okta:windows_security_principal"
	}
	p := map[string]any{"name": g.name, "description": g.description}
	for k, v := range g.extra {
		p[k] = v
	}
	return groupJSON{ID: g.id, Created: g.created.UTC().Format(timeLayout), LastUpdated: g.lastUpdated.UTC().Format(timeLayout),
		LastMembershipUpdated: g.lastMembershipUpdated.UTC().Format(timeLayout), ObjectClass: []string{class}, Type: g.typ,
		Profile: p, Links: map[string]any{
			"self":  map[string]string{"href": base + "/api/v1/groups/" + g.id},
			"users": map[string]string{"href": base + "/api/v1/groups/" + g.id + "/users"},
		}}
}

func userField(u *user) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "id":
			return one(u.id)
		case "status":
			return one(u.status)
		case "created":
			return one(u.created.UTC().Format(timeLayout))
		case "activated":
			if u.activated.IsZero() {
				return nil, false
			}
			return one(u.activated.UTC().Format(timeLayout))
		case "statusChanged":
			return one(u.statusChanged.UTC().Format(timeLayout))
		case "lastUpdated":
			return one(u.lastUpdated.UTC().Format(timeLayout))
		}
		if k, ok := strings.CutPrefix(name, "profile."); ok {
			switch v := u.profile[k].(type) {
			case nil:
				return nil, false
			case []any:
				out := make([]string, 0, len(v))
				for _, e := range v {
					out = append(out, fmt.Sprint(e))
				}
				return out, true
			default:
				return one(fmt.Sprint(v))
			}
		}
		return nil, false
	}
}

func groupField(g *group) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "id":
			return one(g.id)
		case "type":
			return one(g.typ)
		case "created":
			return one(g.created.UTC().Format(timeLayout))
		case "lastUpdated":
			return one(g.lastUpdated.UTC().Format(timeLayout))
		case "lastMembershipUpdated":
			return one(g.lastMembershipUpdated.UTC().Format(timeLayout))
		case "profile.name":
			return one(g.name)
		case "profile.description":
			return one(g.description)
		}
		if k, ok := strings.CutPrefix(name, "profile."); ok {
			if v, has := g.extra[k]; has && v != nil {
				return one(fmt.Sprint(v))
			}
		}
		return nil, false
	}
}
