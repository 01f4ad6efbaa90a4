package okta

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The System Log (/api/v1/logs): the events a sync reads to follow what
// Okta has no delta for. A group's lastMembershipUpdated says that its
// membership changed, not who joined or left; the log's
// group.user_membership.add and .remove events say both.
//
// It is served as Okta's "System Log query" page describes it, which is
// what makes a client that reads it the wrong way lose events:
//
//   - An event becomes readable some time after its published time (the
//     lag, and DelayNextEvents for late ones); before that no request
//     sees it.
//   - A polling request (no until; sortOrder ASCENDING, the default)
//     returns events in the order they became readable, since filtering
//     that time, and always has a next link, even on an empty page: the
//     stream never ends.
//   - A bounded request (since and until) returns the events readable when
//     it is made whose published time is in [since, until), in published
//     order, in a finite number of pages. A late event published inside
//     a range that was already read is never seen by bounded reads.
//   - after is opaque and only comes from a next link; since and after
//     together are refused (400), as are until before since, since more
//     than 180 days ago, a filter on published and an unknown sortOrder.
//     Events older than the 90 days Okta keeps are not returned.
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

	// logRetention is how long events are returned; logMaxSince is how
	// far back a since may reach before it is refused.
	logRetention = 90 * 24 * time.Hour
	logMaxSince  = 180 * 24 * time.Hour
	// logDefaultSince is since when a request gives none: 7 days before until.
	logDefaultSince = 7 * 24 * time.Hour
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
	at        time.Time   // published
	readable  time.Time   // committed to the log: readable from then on
	seq       int         // the order events were logged in
}

// logPos is a place in the readable order: events are ordered by when
// they became readable, then by seq.
type logPos struct {
	t   time.Time
	seq int
}

func (e *logEvent) pos() logPos { return logPos{e.readable, e.seq} }

func (a logPos) cmp(b logPos) int {
	if c := a.t.Compare(b.t); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// logLocked adds an event published now; s.mu is held. The log is kept in
// readable order, so a late event goes where it becomes readable.
func (s *Server) logLocked(eventType string, targets ...logTarget) {
	now := s.touch()
	s.nextEvent++
	lag := s.logLag
	if s.lateNext > 0 {
		s.lateNext--
		lag += s.lateBy
	}
	published := now
	if s.backNext > 0 {
		s.backNext--
		published = now.Add(-s.backBy)
	}
	e := logEvent{UUID: fmt.Sprintf("evt%016d", s.nextEvent), Published: published.Format(timeLayout),
		EventType: eventType, Severity: "INFO", Target: targets, at: published, readable: now.Add(lag), seq: s.nextEvent}
	i, _ := slices.BinarySearchFunc(s.events, e.pos(), func(x logEvent, p logPos) int { return x.pos().cmp(p) })
	s.events = slices.Insert(s.events, i, e)
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

// logCursor is what an after of the System Log stands for: a polling
// position, or a bounded request's range and the last event it returned.
// It is handed out opaque, with the cursor generation (ExpireCursors).
type logCursor struct {
	polling      bool
	pos          logPos    // polling: the last place read
	since, until time.Time // bounded
	at           time.Time // bounded: the published time...
	seq          int       // ...and seq of the last event returned
	desc         bool
}

func (s *Server) encodeLogCursor(c logCursor) string {
	var v string
	if c.polling {
		v = fmt.Sprintf("%d|p|%d|%d", s.generation, c.pos.t.UnixNano(), c.pos.seq)
	} else {
		v = fmt.Sprintf("%d|b|%d|%d|%d|%d|%t", s.generation, c.since.UnixNano(), c.until.UnixNano(), c.at.UnixNano(), c.seq, c.desc)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(v))
}

func (s *Server) decodeLogCursor(v string) (logCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return logCursor{}, false
	}
	f := strings.Split(string(b), "|")
	if len(f) < 4 || f[0] != strconv.Itoa(s.generation) {
		return logCursor{}, false
	}
	n := make([]int64, 0, 4)
	for _, x := range f[2:min(len(f), 6)] {
		i, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return logCursor{}, false
		}
		n = append(n, i)
	}
	switch {
	case f[1] == "p" && len(f) == 4:
		return logCursor{polling: true, pos: logPos{time.Unix(0, n[0]).UTC(), int(n[1])}}, true
	case f[1] == "b" && len(f) == 7:
		return logCursor{since: time.Unix(0, n[0]).UTC(), until: time.Unix(0, n[1]).UTC(), at: time.Unix(0, n[2]).UTC(),
			seq: int(n[3]), desc: f[6] == "true"}, true
	}
	return logCursor{}, false
}

// listLogs is GET /api/v1/logs: since, until, after, filter, q, limit and
// sortOrder, as the System Log query page describes them.
func (s *Server) listLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := s.now().UTC()
	bad := func(code, summary string, causes ...string) {
		s.writeError(w, http.StatusBadRequest, code, summary, causes...)
	}
	limit := LogsDefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > LogsMaxLimit {
			bad(codeValidation, "Api validation failed: limit", "limit: must be an integer between 0 and 1000")
			return
		}
		if n > 0 {
			limit = n
		}
	}
	order := q.Get("sortOrder")
	if order != "" && order != "ASCENDING" && order != "DESCENDING" {
		bad(codeValidation, "Api validation failed: sortOrder", "sortOrder: must be ASCENDING or DESCENDING")
		return
	}
	var since, until time.Time
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &since}, {"until", &until}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			bad(codeValidation, "Api validation failed: '"+p.name+"': The date format in your query is not recognized. Please enter dates using ISO8601 string format.",
				p.name+": The date format in your query is not recognized. Please enter dates using ISO8601 string format.")
			return
		}
		*p.t = t.UTC()
	}
	after := q.Get("after")
	switch {
	case after != "" && q.Has("since"):
		bad(codeValidation, "Api validation failed: 'since' and 'after' are mutually exclusive and can't be specified simultaneously",
			"since: can't be specified with after")
		return
	case !since.IsZero() && now.Sub(since) > logMaxSince:
		bad(codeInvalidParam, "Invalid parameter: The since parameter is over 180 days prior to the current day.")
		return
	case !since.IsZero() && !until.IsZero() && until.Before(since):
		bad(codeValidation, "Api validation failed: 'until': must be later than 'since'", "until: must be later than since")
		return
	}
	var match expr
	if f := q.Get("filter"); f != "" {
		m, err := parseExpr(f, logFilter)
		if err != nil {
			bad(codeInvalidParam, "Invalid filter '"+f+"': "+err.Error())
			return
		}
		match = m.match
	}
	var keywords []string
	for _, k := range strings.Fields(strings.ToLower(q.Get("q"))) {
		if len(k) > 40 {
			bad(codeValidation, "Api validation failed: 'q': Freeform search cannot contain items longer than 40 characters. Please shorten the items in your search or use an advanced filter to query by specific fields.")
			return
		}
		keywords = append(keywords, k)
	}
	keep := func(e *logEvent) bool {
		if now.Sub(e.at) > logRetention {
			return false
		}
		if match != nil && !match(eventField(e)) {
			return false
		}
		for _, k := range keywords {
			if !strings.Contains(eventText(e), k) {
				return false
			}
		}
		return true
	}

	var cur logCursor
	if after != "" {
		var ok bool
		if cur, ok = s.decodeLogCursor(after); !ok {
			bad(codeValidation, errCursorSummary, errCursorCause)
			return
		}
	} else {
		cur.polling = until.IsZero() && order != "DESCENDING"
		if cur.polling {
			if since.IsZero() {
				since = now.Add(-logDefaultSince)
			}
			// Polling reads from since on the time events were committed.
			cur.pos = logPos{since, -1}
		} else {
			if until.IsZero() {
				until = now
			}
			if since.IsZero() {
				since = until.Add(-logDefaultSince)
			}
			cur = logCursor{since: since, until: until, desc: order == "DESCENDING"}
		}
	}

	var out []logEvent
	var next string
	if cur.polling {
		// Every event readable now, after the position, in readable order.
		start, _ := slices.BinarySearchFunc(s.events, cur.pos, func(x logEvent, p logPos) int { return x.pos().cmp(p) })
		pos := logPos{now, s.nextEvent}
		for i := start; i < len(s.events); i++ {
			e := &s.events[i]
			if e.pos().cmp(cur.pos) <= 0 {
				continue
			}
			if e.readable.After(now) {
				break
			}
			if !keep(e) {
				continue
			}
			if len(out) == limit {
				pos = out[len(out)-1].pos()
				break
			}
			out = append(out, *e)
		}
		// The position never goes back: what a page did not reach, the
		// next page reads.
		if pos.cmp(cur.pos) < 0 {
			pos = cur.pos
		}
		next = s.encodeLogCursor(logCursor{polling: true, pos: pos})
	} else {
		// Bounded: what is readable now, published in [since, until),
		// in published order, after the last event returned.
		var in []logEvent
		for i := range s.events {
			e := &s.events[i]
			if e.readable.After(now) || e.at.Before(cur.since) || !e.at.Before(cur.until) || !keep(e) {
				continue
			}
			in = append(in, *e)
		}
		byPublished := func(a, b logEvent) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		}
		slices.SortFunc(in, byPublished)
		if cur.desc {
			slices.Reverse(in)
		}
		last := logEvent{at: cur.at, seq: cur.seq}
		for _, e := range in {
			if after != "" {
				c := byPublished(e, last)
				if (!cur.desc && c <= 0) || (cur.desc && c >= 0) {
					continue
				}
			}
			if len(out) == limit {
				l := out[len(out)-1]
				c := cur
				c.at, c.seq = l.at, l.seq
				next = s.encodeLogCursor(c)
				break
			}
			out = append(out, e)
		}
	}
	s.logLinks(w, r, next)
	writeJSON(w, http.StatusOK, out)
}

// logLinks sends the self link and, when there is one, the next link: the
// request's own options with after set and since left out (since and after
// exclude each other).
func (s *Server) logLinks(w http.ResponseWriter, r *http.Request, after string) {
	base := origin(r) + r.URL.Path
	self := base
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	w.Header().Add("Link", "<"+self+`>; rel="self"`)
	if after == "" {
		return
	}
	q := r.URL.Query()
	q.Del("since")
	q.Set("after", after)
	w.Header().Add("Link", "<"+base+"?"+q.Encode()+`>; rel="next"`)
}

func eventField(e *logEvent) fieldFunc {
	return func(name string) ([]string, bool) {
		switch name {
		case "uuid":
			return one(e.UUID)
		case "eventType":
			return one(e.EventType)
		case "severity":
			return one(e.Severity)
		case "target.id", "target.type", "target.alternateId", "target.displayName":
			var out []string
			for _, t := range e.Target {
				out = append(out, map[string]string{"target.id": t.ID, "target.type": t.Type,
					"target.alternateId": t.AlternateID, "target.displayName": t.DisplayName}[name])
			}
			return out, len(out) > 0
		}
		return nil, false
	}
}

// eventText is what keywords (q) match, lowercased.
func eventText(e *logEvent) string {
	parts := []string{e.UUID, e.EventType, e.Severity}
	for _, t := range e.Target {
		parts = append(parts, t.ID, t.Type, t.AlternateID, t.DisplayName)
	}
	return strings.ToLower(strings.Join(parts, " "))
}
