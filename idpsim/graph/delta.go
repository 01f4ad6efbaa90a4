package graph

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Delta queries (/users/delta, /groups/delta), as Microsoft documents
// them (docs/providers.md). A tenant numbers its changes: every change to a
// user or a group, and every membership that starts or ends, takes the next
// sequence number and is appended to a log. A round without a token lists
// every user or group (groups with all their direct members in
// members@delta); a round from a deltaLink lists what changed after the
// token's number, each object once in its latest state, deleted ones as
// {"id","@removed":{"reason"}}, and per group the net membership changes
// (ended ones with @removed). A round lists what the tenant held when it
// began; its last page carries the deltaLink of that moment, so a change
// made during the round comes again in the next one.
//
// Only what the delta functions document is honoured: $select (with
// "manager" on users and "members" on groups naming the relationships to
// track) and the $skiptoken/$deltatoken of the links handed out. Every
// other option ($expand, $top, $filter, $count, …) is ignored, as Graph
// ignores it, and pages are as large as the server decides
// (Options.DeltaPageSize), a group's members counting one entry each: a
// large group spreads over pages, its object repeated with the next part
// of its members. A user's manager appears only as manager@delta: in an
// initial round for every user that has one, in a later round only for a
// user whose manager changed (an @removed entry when it was cleared); a
// user listed without it kept its manager.
// `$deltatoken=latest` answers a deltaLink of now and nothing else (Graph's
// "sync from now"). Tokens last deltaTokenLifetime; an expired one, or one
// handed out before ExpireDeltaTokens, answers 410 Gone.

// deltaTokenLifetime is how long Graph keeps a delta token.
const deltaTokenLifetime = 7 * 24 * time.Hour

// change is one entry of a tenant's change log.
type change struct {
	seq   uint64
	group bool
	id    string
}

// memberEvent is a membership of a group starting or ending.
type memberEvent struct {
	seq    uint64
	member string
	added  bool
	group  bool // the member is a group
}

// touchUser records a change of u; the caller holds t.mu.
func (t *Tenant) touchUser(u *User) {
	t.seq++
	u.seq = t.seq
	t.log = append(t.log, change{seq: t.seq, id: u.ID})
}

// touchGroup records a change of g's properties; the caller holds t.mu.
func (t *Tenant) touchGroup(g *Group) {
	t.seq++
	g.seq = t.seq
	t.log = append(t.log, change{seq: t.seq, group: true, id: g.ID})
}

// memberChanged records a membership of g starting or ending; the caller
// holds t.mu.
func (t *Tenant) memberChanged(g *Group, member string, added bool) {
	t.seq++
	g.seq = t.seq
	_, isGroup := t.groups[member]
	g.events = append(g.events, memberEvent{seq: t.seq, member: member, added: added, group: isGroup})
	t.log = append(t.log, change{seq: t.seq, group: true, id: g.ID})
}

// gone records the deletion of an object; the caller holds t.mu.
func (t *Tenant) gone(id string, group bool) {
	t.seq++
	if t.deleted == nil {
		t.deleted = map[string]uint64{}
	}
	t.deleted[id] = t.seq
	t.log = append(t.log, change{seq: t.seq, group: group, id: id})
}

// ExpireDeltaTokens makes every delta token handed out so far answer 410
// Gone, as Graph does once it dropped a tenant's sync state.
func (s *Server) ExpireDeltaTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deltaEpoch++
}

// deltaToken is the state a delta or next link carries, opaque to clients.
type deltaToken struct {
	Init   bool     `json:"in,omitempty"` // an initial round: every object
	Since  uint64   `json:"f"`            // changes after this number
	UpTo   uint64   `json:"u"`            // the round lists the tenant as of this number
	Pos    int      `json:"p,omitempty"`  // next log (or listing) position
	Member int      `json:"m,omitempty"`  // next member of the group at Pos
	Epoch  int      `json:"e"`            // delta epoch (ExpireDeltaTokens)
	Pages  int      `json:"pe"`           // page epoch (ExpirePageTokens)
	Issued int64    `json:"i"`            // unix seconds
	Select []string `json:"s,omitempty"`
	// Manager: users carry manager@delta ($select names manager).
	Manager bool `json:"mg,omitempty"`
	// IDs: the round tracks these objects only ($filter=id eq '…' or …).
	IDs []string `json:"ids,omitempty"`
	// Emptied: this link follows an empty page served on purpose.
	Emptied bool `json:"em,omitempty"`
	// Members: groups carry members@delta ($select names members, or
	// there is no $select).
	Members bool `json:"mb,omitempty"`
}

func (d deltaToken) encode() string {
	b, _ := json.Marshal(d) //nolint:errchkjson // plain struct
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeDeltaToken(s string) (deltaToken, error) {
	var d deltaToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &d)
	}
	return d, err
}

// isDelta tells whether a path segment is the delta function, in the
// forms Graph accepts (the SDK sends "delta()").
func isDelta(seg string) bool {
	switch seg {
	case "delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()":
		return true
	}
	return false
}

// serveDelta answers /users/delta and /groups/delta.
func (s *Server) serveDelta(w http.ResponseWriter, r *http.Request, t *Tenant, groups bool) {
	typ, name := userObjects, "users"
	if groups {
		typ, name = groupObjects, "groups"
	}
	s.mu.Lock()
	epoch, pages, now := s.deltaEpoch, s.pageEpoch, s.now()
	s.mu.Unlock()
	var tok deltaToken
	switch {
	case r.URL.Query().Has("$skiptoken"), r.URL.Query().Has("$deltatoken") && r.URL.Query().Get("$deltatoken") != "latest":
		raw, isNext := r.URL.Query().Get("$skiptoken"), true
		if raw == "" {
			raw, isNext = r.URL.Query().Get("$deltatoken"), false
		}
		d, err := decodeDeltaToken(raw)
		switch {
		case err != nil:
			writeError(w, http.StatusBadRequest, "Request_BadRequest", "Invalid delta or skip token.")
			return
		case d.Epoch != epoch:
			// Graph's "restart with a full synchronization": 410 Gone with
			// a Location of the initial request.
			w.Header().Set("Location", baseURL(r)+"/"+name+"/delta?$deltatoken=")
			writeError(w, http.StatusGone, "syncStateNotFound",
				"The sync state generation is not found. Delete the sync state and start a new sync from scratch.")
			return
		case now.Sub(time.Unix(d.Issued, 0)) > deltaTokenLifetime:
			// An expired token is documented only as "a 40X-series error
			// with error codes such as syncStateNotFound": not a 410.
			writeError(w, http.StatusBadRequest, "syncStateNotFound", "The delta token has expired: a full synchronization is required.")
			return
		case isNext && d.Pages != pages:
			writeError(w, http.StatusBadRequest, "Directory_ExpiredPageToken",
				"The specified page token value has expired and can no longer be included in your request.")
			return
		}
		tok = d
		if !isNext {
			// A new round from a deltaLink: what changed since it.
			t.mu.Lock()
			tok.Init, tok.Since, tok.UpTo, tok.Pos, tok.Member = false, d.UpTo, t.seq, 0, 0
			t.mu.Unlock()
			tok.Issued = now.Unix()
		}
	default:
		// manager and members are relationships, not properties: naming
		// them in $select asks for manager@delta and members@delta.
		// Nothing but $select shapes a round.
		members, manager := groups, false
		var sel []string
		if v, ok := param(r, "select"); ok {
			members = false
			for _, p := range splitList(v) {
				switch {
				case p == "members" && groups:
					members = true
				case p == "manager" && !groups:
					manager = true
				default:
					sel = append(sel, p)
				}
			}
		}
		var ids []string
		if f, ok := param(r, "filter"); ok {
			var apiErr *apiError
			if ids, apiErr = idFilter(f); apiErr != nil {
				apiErr.write(w)
				return
			}
		}
		pr := r.Clone(r.Context())
		pr.URL.RawQuery = ""
		if sel != nil {
			pr.URL.RawQuery = url.Values{"$select": {strings.Join(sel, ",")}}.Encode()
		}
		q, apiErr := s.parseQuery(pr, typ, true)
		if apiErr != nil {
			apiErr.write(w)
			return
		}
		t.mu.Lock()
		tok = deltaToken{Init: true, UpTo: t.seq, Epoch: epoch, Pages: pages, Issued: now.Unix(), Select: q.sel,
			Manager: manager, Members: members, IDs: ids}
		t.mu.Unlock()
		if r.URL.Query().Get("$deltatoken") == "latest" {
			var b bytes.Buffer
			b.WriteString(`{"@odata.context":`)
			writeValue(&b, baseURL(r)+"/$metadata#"+name)
			b.WriteString(`,"@odata.deltaLink":`)
			writeValue(&b, deltaLinkOf(r, name, tok))
			b.WriteString(`,"value":[]}`)
			writeRaw(w, b.Bytes())
			return
		}
	}
	// "A page can be empty and still have a nextLink": at most one empty
	// page in a row, so a round always ends.
	if !tok.Emptied && s.roll(s.Faults().EmptyPageShare) {
		e := tok
		e.Emptied = true
		var b bytes.Buffer
		b.WriteString(`{"@odata.context":`)
		writeValue(&b, baseURL(r)+"/$metadata#"+name)
		b.WriteString(`,"value":[],"@odata.nextLink":`)
		writeValue(&b, baseURL(r)+"/"+name+"/delta?$skiptoken="+e.encode())
		b.WriteByte('}')
		writeRaw(w, b.Bytes())
		return
	}
	tok.Emptied = false
	q := query{sel: tok.Select, top: s.deltaPageSize()}
	var b bytes.Buffer
	b.WriteString(`{"@odata.context":`)
	writeValue(&b, baseURL(r)+"/$metadata#"+name)
	b.WriteString(`,"value":[`)
	t.mu.Lock()
	next, done := t.writeDeltaPage(&b, tok, q, groups)
	t.mu.Unlock()
	b.WriteByte(']')
	if done {
		b.WriteString(`,"@odata.deltaLink":`)
		writeValue(&b, deltaLinkOf(r, name, tok))
	} else {
		b.WriteString(`,"@odata.nextLink":`)
		writeValue(&b, baseURL(r)+"/"+name+"/delta?$skiptoken="+next.encode())
	}
	b.WriteByte('}')
	writeRaw(w, b.Bytes())
}

// deltaLinkOf is the deltaLink a round ends with: the next round lists the
// changes after the round's start.
func deltaLinkOf(r *http.Request, name string, tok deltaToken) string {
	d := tok
	d.Init, d.Since, d.Pos, d.Member = false, 0, 0, 0
	return baseURL(r) + "/" + name + "/delta?$deltatoken=" + d.encode()
}

func writeRaw(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeDeltaPage writes the entries of one page from tok's position and
// returns where the next page starts, or done; the caller holds t.mu.
func (t *Tenant) writeDeltaPage(b *bytes.Buffer, tok deltaToken, q query, groups bool) (deltaToken, bool) {
	budget := q.top
	n := 0
	sep := func() {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
	}
	initial := tok.Init
	for budget > 0 {
		var id string
		if initial {
			order := t.userOrder
			if groups {
				order = t.groupOrder
			}
			if tok.IDs != nil {
				order = tok.IDs
			}
			if tok.Pos >= len(order) {
				return tok, true
			}
			id = order[tok.Pos]
		} else {
			if tok.Pos >= len(t.log) {
				return tok, true
			}
			c := t.log[tok.Pos]
			if c.seq > tok.UpTo {
				return tok, true
			}
			if c.seq <= tok.Since || c.group != groups || !t.latest(c) || (tok.IDs != nil && !slices.Contains(tok.IDs, c.id)) {
				tok.Pos++
				continue
			}
			id = c.id
		}
		if initial && tok.IDs != nil && ((groups && t.groups[id] == nil) || (!groups && t.users[id] == nil)) {
			tok.Pos++
			continue
		}
		if !groups {
			sep()
			if u := t.users[id]; u != nil {
				b.WriteByte('{')
				t.writeFields(b, id, q, true)
				if tok.Manager {
					t.writeManagerDelta(b, u, tok, initial)
				}
				b.WriteByte('}')
			} else {
				fmt.Fprintf(b, `{"@odata.type":"#microsoft.graph.user","id":%q,"@removed":{"reason":"changed"}}`, id)
			}
			budget--
			tok.Pos++
			continue
		}
		g := t.groups[id]
		if g == nil {
			sep()
			fmt.Fprintf(b, `{"@odata.type":"#microsoft.graph.group","id":%q,"@removed":{"reason":"deleted"}}`, id)
			budget--
			tok.Pos++
			continue
		}
		var members []memberEntry
		if tok.Members {
			members = t.memberDelta(g, tok.Since, tok.UpTo, initial)
		}
		// At least one member a page, whatever $top: a round must end.
		take := min(len(members)-tok.Member, max(budget-1, 1))
		sep()
		b.WriteByte('{')
		t.writeFields(b, id, q, true)
		if tok.Members {
			b.WriteString(`,"members@delta":[`)
		}
		for i, m := range members[tok.Member : tok.Member+take] {
			if i > 0 {
				b.WriteByte(',')
			}
			typ := "#microsoft.graph.user"
			if m.group {
				typ = "#microsoft.graph.group"
			}
			fmt.Fprintf(b, `{"@odata.type":%q,"id":%q`, typ, m.member)
			if !m.added {
				b.WriteString(`,"@removed":{"reason":"deleted"}`)
			}
			b.WriteByte('}')
		}
		if tok.Members {
			b.WriteByte(']')
		}
		b.WriteByte('}')
		budget -= 1 + take
		tok.Member += take
		if tok.Member >= len(members) {
			tok.Pos, tok.Member = tok.Pos+1, 0
		}
	}
	return tok, false
}

// maxDeltaIDs is how many objects one id-filtered round may track (the
// delta pages say 50).
const maxDeltaIDs = 50

// idFilter reads the one $filter the delta functions support: id eq '…',
// joined by or.
func idFilter(f string) ([]string, *apiError) {
	clauses, _, apiErr := parseFilter(f)
	if apiErr != nil {
		return nil, apiErr
	}
	var ids []string
	for _, c := range clauses {
		if len(c) != 1 || c[0].op != "eq" || c[0].not || !strings.EqualFold(c[0].prop, "id") {
			return nil, unsupported("The only supported $filter on a delta function is id eq '{value}'.")
		}
		id, _ := c[0].val.(string)
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) > maxDeltaIDs {
		return nil, badRequest("A delta query tracks at most %d objects by id.", maxDeltaIDs)
	}
	return ids, nil
}

// writeManagerDelta writes manager@delta for u when the round tracks it:
// in an initial round when u has a manager, in a later one only when the
// manager changed within the round's changes; the caller holds t.mu.
func (t *Tenant) writeManagerDelta(b *bytes.Buffer, u *User, tok deltaToken, initial bool) {
	switch {
	case initial && u.ManagerID == "":
		return
	case !initial && (u.mgrSeq <= tok.Since || u.mgrSeq > tok.UpTo):
		return
	}
	if u.ManagerID != "" {
		fmt.Fprintf(b, `,"manager@delta":[{"@odata.type":"#microsoft.graph.user","id":%q}]`, u.ManagerID)
		return
	}
	fmt.Fprintf(b, `,"manager@delta":[{"@odata.type":"#microsoft.graph.user","id":%q,"@removed":{"reason":"deleted"}}]`, u.prevManager)
}

// latest tells whether c is the newest change of its object, deleted or
// not: a round lists each object once, in its latest state.
func (t *Tenant) latest(c change) bool {
	if seq, ok := t.deleted[c.id]; ok {
		return seq == c.seq
	}
	if c.group {
		g := t.groups[c.id]
		return g != nil && g.seq == c.seq
	}
	u := t.users[c.id]
	return u != nil && u.seq == c.seq
}

// memberEntry is one element of members@delta.
type memberEntry struct {
	member string
	added  bool
	group  bool
}

// memberDelta is what members@delta lists for g: every direct member in an
// initial round, else the net changes in (since, upTo].
func (t *Tenant) memberDelta(g *Group, since, upTo uint64, initial bool) []memberEntry {
	if initial {
		out := make([]memberEntry, 0, len(g.Members))
		for _, m := range g.Members {
			_, isGroup := t.groups[m]
			out = append(out, memberEntry{member: m, added: true, group: isGroup})
		}
		return out
	}
	last := map[string]int{}
	var out []memberEntry
	for _, ev := range g.events {
		if ev.seq <= since || ev.seq > upTo {
			continue
		}
		if i, ok := last[ev.member]; ok {
			out[i].added = ev.added
			continue
		}
		last[ev.member] = len(out)
		out = append(out, memberEntry{member: ev.member, added: ev.added, group: ev.group})
	}
	return out
}
