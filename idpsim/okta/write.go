package okta

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// write answers the Okta management calls that change the org, so a demo
// or a script can change the simulated org with the same requests it would
// send to a real one (an SSWS token, or an access token with
// okta.users.manage / okta.groups.manage):
//
//	POST   /api/v1/users[?activate=false]          create {"profile":{…},"groupIds":[…]}
//	POST   /api/v1/users/{id}                      partial profile update {"profile":{…}} (null removes)
//	DELETE /api/v1/users/{id}                      deactivate, or delete a deactivated user
//	POST   /api/v1/users/{id}/lifecycle/{op}       activate, reactivate, deactivate, suspend, unsuspend
//	PUT    /api/v1/groups/{gid}/users/{uid}        add a member
//	DELETE /api/v1/groups/{gid}/users/{uid}        remove a member
func (s *Server) write(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/"), "/")
	var err error
	switch {
	case len(seg) == 1 && seg[0] == "users" && r.Method == http.MethodPost:
		s.createUser(w, r)
		return
	case len(seg) == 2 && seg[0] == "users" && r.Method == http.MethodPost:
		var body struct {
			Profile map[string]any `json:"profile"`
		}
		if json.NewDecoder(r.Body).Decode(&body) != nil {
			s.writeError(w, http.StatusBadRequest, codeValidation, "Api validation failed: body", "the body is not a JSON user")
			return
		}
		for k, v := range body.Profile {
			if err = s.SetProfile(seg[1], k, v); err != nil {
				break
			}
		}
		if err == nil {
			s.answerUser(w, r, seg[1])
			return
		}
	case len(seg) == 2 && seg[0] == "users" && r.Method == http.MethodDelete:
		u, ok := s.User(seg[1])
		switch {
		case !ok:
			err = ErrNoSuchUser
		case u.Status != StatusDeprovisioned:
			err = s.Deactivate(u.ID)
		default:
			err = s.DeleteUser(u.ID)
		}
		if err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	case len(seg) == 4 && seg[0] == "users" && seg[2] == "lifecycle" && r.Method == http.MethodPost:
		if err = s.lifecycle(seg[1], seg[3]); err == nil {
			writeJSON(w, http.StatusOK, map[string]any{})
			return
		}
	case len(seg) == 4 && seg[0] == "groups" && seg[2] == "users" && r.Method == http.MethodPut:
		if err = s.AddToGroup(seg[1], seg[3]); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	case len(seg) == 4 && seg[0] == "groups" && seg[2] == "users" && r.Method == http.MethodDelete:
		if err = s.RemoveFromGroup(seg[1], seg[3]); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	default:
		s.writeError(w, http.StatusMethodNotAllowed, codeMethod, "The endpoint does not support the provided HTTP method")
		return
	}
	s.writeFailure(w, err)
}

// transitionError is a lifecycle call the user's status does not allow.
type transitionError struct{ msg string }

func (e *transitionError) Error() string { return e.msg }

func (s *Server) writeFailure(w http.ResponseWriter, err error) {
	var te *transitionError
	switch {
	case errors.As(err, &te):
		s.writeError(w, http.StatusBadRequest, codeValidation, "Api validation failed: status", te.msg)
	case errors.Is(err, ErrNoSuchUser) || errors.Is(err, ErrNoSuchGroup):
		s.writeError(w, http.StatusNotFound, codeNotFound, errNotFoundSummaryStart+err.Error())
	default:
		s.writeError(w, http.StatusBadRequest, codeValidation, "Api validation failed: profile", err.Error())
	}
}

// lifecycle applies Okta's lifecycle operation op, refusing the
// transitions Okta refuses.
func (s *Server) lifecycle(id, op string) error {
	u, ok := s.User(id)
	if !ok {
		return ErrNoSuchUser
	}
	allowed := map[string][]string{
		"activate":   {StatusStaged, StatusDeprovisioned, StatusProvisioned},
		"reactivate": {StatusProvisioned, StatusDeprovisioned},
		"deactivate": {StatusActive, StatusProvisioned, StatusStaged, StatusRecovery, StatusLockedOut, StatusPasswordExpired, StatusSuspended},
		"suspend":    {StatusActive},
		"unsuspend":  {StatusSuspended},
	}
	from, known := allowed[op]
	switch {
	case !known:
		return &transitionError{"unknown lifecycle operation " + op}
	case !contains(from, u.Status):
		return &transitionError{"cannot " + op + " a user whose status is " + u.Status}
	case op == "deactivate":
		return s.Deactivate(u.ID)
	case op == "suspend":
		return s.Suspend(u.ID)
	}
	return s.SetStatus(u.ID, StatusActive)
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Profile  map[string]any `json:"profile"`
		GroupIDs []string       `json:"groupIds"`
	}
	if json.NewDecoder(r.Body).Decode(&body) != nil {
		s.writeError(w, http.StatusBadRequest, codeValidation, "Api validation failed: body", "the body is not a JSON user")
		return
	}
	status := StatusActive
	if r.URL.Query().Get("activate") == "false" {
		status = StatusStaged
	}
	id, err := s.AddUser(body.Profile, status, body.GroupIDs...)
	if err != nil {
		s.writeFailure(w, err)
		return
	}
	s.answerUser(w, r, id)
}

func (s *Server) answerUser(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.org.lookupUser(id)
	if u == nil {
		s.notFound(w, id, "User")
		return
	}
	writeJSON(w, http.StatusOK, s.userDoc(u, origin(r)))
}

// admin is the simulator's own face, outside Okta's API, for the knobs a
// real org does not have:
//
//	GET      /_sim/org             the org URL, API token, app id and groups
//	GET|PUT  /_sim/faults          {"serverErrorRate":0.1,"latency":"250ms","failNext":3,
//	                                "logLag":"5s","lateEvents":2,"lateBy":"10m"}
//	GET|PUT  /_sim/rate-limits     {"users":600,"groups":500,…} per window
//	POST     /_sim/expire-cursors  every "after" cursor handed out stops working
func (s *Server) admin(w http.ResponseWriter, r *http.Request) {
	switch path := strings.TrimPrefix(r.URL.Path, "/_sim"); {
	case path == "/org" && r.Method == http.MethodGet:
		s.mu.Lock()
		type groupInfo struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Type     string `json:"type"`
			Members  int    `json:"members"`
			Assigned bool   `json:"assignedToApp"`
		}
		groups := make([]groupInfo, 0, len(s.org.groupID))
		for _, id := range s.org.groupID {
			g := s.org.groups[id]
			_, assigned := s.org.priority[id]
			groups = append(groups, groupInfo{ID: id, Name: g.name, Type: g.typ, Members: len(g.members), Assigned: assigned})
		}
		out := map[string]any{"orgUrl": origin(r), "apiToken": s.apiToken, "appId": s.org.appID,
			"users": len(s.org.userIDs), "groups": groups}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	case path == "/faults" && (r.Method == http.MethodGet || r.Method == http.MethodPut):
		// logLag is the System Log's lag for events logged from now on;
		// lateEvents makes that many of the next events lateBy later still.
		type faults struct {
			ServerErrorRate float64 `json:"serverErrorRate"`
			Latency         string  `json:"latency"`
			FailNext        int     `json:"failNext"`
			LogLag          string  `json:"logLag"`
			LateEvents      int     `json:"lateEvents"`
			LateBy          string  `json:"lateBy"`
		}
		if r.Method == http.MethodPut {
			var in faults
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			durations := map[string]time.Duration{}
			for name, v := range map[string]string{"latency": in.Latency, "logLag": in.LogLag, "lateBy": in.LateBy} {
				if v == "" {
					continue
				}
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 {
					writeJSON(w, http.StatusBadRequest, map[string]string{"error": name + ": not a duration: " + v})
					return
				}
				durations[name] = d
			}
			s.SetServerErrorRate(in.ServerErrorRate)
			s.SetLatency(durations["latency"])
			s.FailNext(in.FailNext)
			s.SetLogLag(durations["logLag"])
			s.DelayNextEvents(in.LateEvents, durations["lateBy"])
		}
		s.mu.Lock()
		out := faults{ServerErrorRate: s.errRate, Latency: s.latency.String(), FailNext: s.failNext,
			LogLag: s.logLag.String(), LateEvents: s.lateNext, LateBy: s.lateBy.String()}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	case path == "/rate-limits" && (r.Method == http.MethodGet || r.Method == http.MethodPut):
		if r.Method == http.MethodPut {
			var in map[string]int
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			for f, n := range in {
				s.SetRateLimit(f, n)
			}
		}
		s.mu.Lock()
		out := map[string]any{"window": s.window.String(), "limits": s.limits}
		writeJSON(w, http.StatusOK, out)
		s.mu.Unlock()
	case path == "/expire-cursors" && r.Method == http.MethodPost:
		s.ExpireCursors()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such simulator endpoint"})
	}
}
