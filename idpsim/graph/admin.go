package graph

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// serveAdmin is the HTTP face of the mutation API, for demos and scripts
// (tests use the Go methods):
//
//	GET    /_sim/tenants                                  tenants with their credentials
//	POST   /_sim/tenants/{t}/users                        add a user {"userPrincipalName",…,"groups":[…]}
//	PATCH  /_sim/tenants/{t}/users/{id}                   change {"accountEnabled","userPrincipalName","managerId",…}
//	DELETE /_sim/tenants/{t}/users/{id}                   delete a user
//	PATCH  /_sim/tenants/{t}/groups/{id}                  rename {"displayName"}
//	PUT    /_sim/tenants/{t}/groups/{id}/members/{member} add a member
//	DELETE /_sim/tenants/{t}/groups/{id}/members/{member} remove a member
//	GET|PUT /_sim/faults                                  the fault knobs
//	POST   /_sim/expire-page-tokens                       expire every nextLink handed out
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/_sim"), "/"), "/")
	switch {
	case len(seg) == 1 && seg[0] == "tenants" && r.Method == http.MethodGet:
		s.adminTenants(w)
	case len(seg) == 1 && seg[0] == "faults":
		s.adminFaults(w, r)
	case len(seg) == 1 && seg[0] == "expire-page-tokens" && r.Method == http.MethodPost:
		s.ExpirePageTokens()
		w.WriteHeader(http.StatusNoContent)
	case len(seg) >= 4 && seg[0] == "tenants":
		t, ok := s.Tenant(seg[1])
		if !ok {
			adminError(w, http.StatusNotFound, "no such tenant "+seg[1])
			return
		}
		s.adminTenant(w, r, t, seg[2:])
	case len(seg) == 3 && seg[0] == "tenants" && seg[2] == "users" && r.Method == http.MethodPost:
		t, ok := s.Tenant(seg[1])
		if !ok {
			adminError(w, http.StatusNotFound, "no such tenant "+seg[1])
			return
		}
		adminAddUser(w, r, t)
	default:
		adminError(w, http.StatusNotFound, "no such admin endpoint")
	}
}

// TenantInfo is what GET /_sim/tenants shows of a tenant.
type TenantInfo struct {
	ID      string   `json:"id"`
	Domain  string   `json:"domain"`
	Clients []Client `json:"clients"`
	Users   int      `json:"users"`
	Groups  int      `json:"groups"`
}

func (s *Server) adminTenants(w http.ResponseWriter) {
	var out []TenantInfo
	for _, t := range s.Tenants() {
		t.mu.Lock()
		out = append(out, TenantInfo{ID: t.ID, Domain: t.Domain, Clients: append([]Client(nil), t.clients...),
			Users: len(t.users), Groups: len(t.groups)})
		t.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, out)
}

// faultsJSON spells durations as Go strings ("250ms") for humans.
type faultsJSON struct {
	ThrottleShare  float64 `json:"throttleShare"`
	RetryAfter     string  `json:"retryAfter"`
	ErrorShare     float64 `json:"errorShare"`
	Latency        string  `json:"latency"`
	EmptyPageShare float64 `json:"emptyPageShare"`
}

func (s *Server) adminFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		var in faultsJSON
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		f := Faults{ThrottleShare: in.ThrottleShare, ErrorShare: in.ErrorShare, EmptyPageShare: in.EmptyPageShare}
		for _, d := range []struct {
			s   string
			dst *time.Duration
		}{{in.RetryAfter, &f.RetryAfter}, {in.Latency, &f.Latency}} {
			if d.s == "" {
				continue
			}
			v, err := time.ParseDuration(d.s)
			if err != nil {
				adminError(w, http.StatusBadRequest, err.Error())
				return
			}
			*d.dst = v
		}
		s.SetFaults(f)
	default:
		adminError(w, http.StatusMethodNotAllowed, "GET or PUT")
		return
	}
	f := s.Faults()
	writeJSON(w, http.StatusOK, faultsJSON{ThrottleShare: f.ThrottleShare, RetryAfter: f.RetryAfter.String(),
		ErrorShare: f.ErrorShare, Latency: f.Latency.String(), EmptyPageShare: f.EmptyPageShare})
}

// userPatch is a user as the admin API reads it; absent fields stay as
// they are.
type userPatch struct {
	UserPrincipalName *string        `json:"userPrincipalName"`
	GivenName         *string        `json:"givenName"`
	Surname           *string        `json:"surname"`
	DisplayName       *string        `json:"displayName"`
	Mail              *string        `json:"mail"`
	AccountEnabled    *bool          `json:"accountEnabled"`
	ManagerID         *string        `json:"managerId"`
	Props             map[string]any `json:"props"`
	Groups            []string       `json:"groups"` // POST only
}

func (p userPatch) apply(u *User) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&u.UserPrincipalName, p.UserPrincipalName)
	set(&u.GivenName, p.GivenName)
	set(&u.Surname, p.Surname)
	set(&u.DisplayName, p.DisplayName)
	set(&u.Mail, p.Mail)
	set(&u.ManagerID, p.ManagerID)
	if p.AccountEnabled != nil {
		u.AccountEnabled = *p.AccountEnabled
	}
	if u.Props == nil {
		u.Props = map[string]any{}
	}
	for k, v := range p.Props {
		if l, ok := v.([]any); ok {
			ss := make([]string, 0, len(l))
			for _, x := range l {
				if s, ok := x.(string); ok {
					ss = append(ss, s)
				}
			}
			v = ss
		}
		if v == nil {
			delete(u.Props, k)
			continue
		}
		u.Props[k] = v
	}
}

func adminAddUser(w http.ResponseWriter, r *http.Request, t *Tenant) {
	var p userPatch
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	u := User{AccountEnabled: true}
	p.apply(&u)
	id, err := t.NewUser(u, p.Groups...)
	if err != nil {
		adminFailure(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

func (s *Server) adminTenant(w http.ResponseWriter, r *http.Request, t *Tenant, seg []string) {
	var err error
	switch {
	case len(seg) == 2 && seg[0] == "users" && r.Method == http.MethodPatch:
		var p userPatch
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		if p.ManagerID != nil && *p.ManagerID != "" {
			if _, ok := t.User(*p.ManagerID); !ok {
				adminFailure(w, ErrNoSuchUser)
				return
			}
		}
		err = t.UpdateUser(seg[1], p.apply)
	case len(seg) == 2 && seg[0] == "users" && r.Method == http.MethodDelete:
		err = t.DeleteUser(seg[1])
	case len(seg) == 2 && seg[0] == "groups" && r.Method == http.MethodPatch:
		var p struct {
			DisplayName string `json:"displayName"`
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.DisplayName == "" {
			adminError(w, http.StatusBadRequest, "body must be {\"displayName\": \"…\"}")
			return
		}
		err = t.RenameGroup(seg[1], p.DisplayName)
	case len(seg) == 4 && seg[0] == "groups" && seg[2] == "members" && r.Method == http.MethodPut:
		err = t.AddMember(seg[1], seg[3])
	case len(seg) == 4 && seg[0] == "groups" && seg[2] == "members" && r.Method == http.MethodDelete:
		err = t.RemoveMember(seg[1], seg[3])
	default:
		adminError(w, http.StatusNotFound, "no such admin endpoint")
		return
	}
	if err != nil {
		adminFailure(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func adminFailure(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrNoSuchUser) || errors.Is(err, ErrNoSuchGroup) {
		status = http.StatusNotFound
	}
	adminError(w, status, err.Error())
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
