package okta

import (
	"fmt"
	"net/http"
	"time"
)

// The System Log (/api/v1/logs): the events a sync reads to follow what
// Okta has no delta for. A group's lastMembershipUpdated says that its
// membership changed, not who joined or left; the log's
// group.user_membership.add and .remove events say both. Events are kept
// in publication order under ids that sort the same way.
const (
	EventMembershipAdd    = "group.user_membership.add"
	EventMembershipRemove = "group.user_membership.remove"
	EventUserDeleted      = "user.lifecycle.delete.completed"
	EventGroupDeleted     = "group.lifecycle.delete"
	// A group assigned to or unassigned from an app.
	EventAppAssignmentAdd    = "group.application_assignment.add"
	EventAppAssignmentRemove = "group.application_assignment.remove"

	FamilyLogs    = "logs" // /api/v1/logs
	ScopeLogsRead = "okta.logs.read"

	LogsDefaultLimit = 100
	LogsMaxLimit     = 1000
)

type logTarget struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	AlternateID string `json:"alternateId,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

type logEvent struct {
	UUID      string      `json:"uuid"`
	Published string      `json:"published"`
	EventType string      `json:"eventType"`
	Severity  string      `json:"severity"`
	Target    []logTarget `json:"target"`
	at        time.Time
}

// logLocked appends an event; s.mu is held.
func (s *Server) logLocked(eventType string, targets ...logTarget) {
	now := s.touch()
	s.nextEvent++
	s.events = append(s.events, logEvent{UUID: fmt.Sprintf("evt%016d", s.nextEvent), Published: now.Format(timeLayout),
		EventType: eventType, Severity: "INFO", Target: targets, at: now})
}

func userTarget(u *user) logTarget {
	login, _ := u.profile["login"].(string)
	return logTarget{ID: u.id, Type: "User", AlternateID: login}
}

func (s *Server) appTarget() logTarget {
	return logTarget{ID: s.org.appID, Type: "AppInstance", DisplayName: s.org.appName}
}

func groupTarget(g *group) logTarget {
	return logTarget{ID: g.id, Type: "UserGroup", AlternateID: g.name, DisplayName: g.name}
}

// listLogs is GET /api/v1/logs with since and until (ISO 8601; since
// defaults to seven days ago, until to now), filter on eventType and
// target ids, limit and after, oldest first.
func (s *Server) listLogs(w http.ResponseWriter, r *http.Request) {
	l, ok := s.parseListing(w, r, LogsDefaultLimit, LogsMaxLimit)
	if !ok {
		return
	}
	q := r.URL.Query()
	now := s.now()
	since, until := now.Add(-7*24*time.Hour), now
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				s.writeError(w, http.StatusBadRequest, codeValidation, "Api validation failed: "+p.name, p.name+": not an ISO 8601 time")
				return
			}
			*p.t = t
		}
	}
	var match func(fieldFunc) bool
	if expr := q.Get("filter"); expr != "" {
		m, err := parseExpr(expr)
		if err != nil {
			s.writeError(w, http.StatusBadRequest, codeBadSearch, errSearchSummary, err.Error())
			return
		}
		match = m
	}
	byID := make(map[string]*logEvent, len(s.events))
	ids := make([]string, 0, len(s.events))
	for i := range s.events {
		e := &s.events[i]
		if e.at.Before(since) || !e.at.Before(until) {
			continue
		}
		byID[e.UUID] = e
		ids = append(ids, e.UUID)
	}
	out, next := page(ids, l, func(id string) bool {
		e := byID[id]
		return match == nil || match(func(name string) (string, bool) {
			switch name {
			case "eventType":
				return e.EventType, true
			case "target.id":
				for _, t := range e.Target {
					if t.ID != "" {
						return t.ID, true
					}
				}
			}
			return "", false
		})
	})
	docs := make([]logEvent, 0, len(out))
	for _, id := range out {
		docs = append(docs, *byID[id])
	}
	s.links(w, r, l, next)
	writeJSON(w, http.StatusOK, docs)
}
