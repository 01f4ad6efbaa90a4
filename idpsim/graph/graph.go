package graph

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"time"
)

// serveGraph answers a Graph v1.0 request; inner is true for a request of
// a $batch.
func (s *Server) serveGraph(w http.ResponseWriter, r *http.Request, inner bool) {
	s.mu.Lock()
	s.stats.Requests++
	f := s.faults
	s.mu.Unlock()
	if !inner && f.Latency > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(f.Latency):
		}
	}

	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	tk, known := s.tokens[tok]
	expired := known && !s.now().Before(tk.expires)
	s.mu.Unlock()
	switch {
	case tok == "":
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
		return
	case !known:
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return
	case expired:
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
		return
	case tk.client.NoConsent:
		writeError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}

	if status, ok := s.nextFailure(inner); ok {
		s.fail(w, status)
		return
	}
	if s.roll(f.ThrottleShare) {
		s.mu.Lock()
		s.stats.Throttled++
		s.mu.Unlock()
		w.Header().Set("Retry-After", retryAfterValue(f.RetryAfter))
		writeError(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests. Please retry after the time in the Retry-After header.")
		return
	}
	if s.roll(f.ErrorShare) {
		s.fail(w, []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout}[len(r.URL.Path)%2])
		return
	}

	t := tk.tenant
	seg := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1.0"), "/"), "/")
	get := r.Method == http.MethodGet
	switch {
	case len(seg) == 1 && seg[0] == "$batch" && r.Method == http.MethodPost && !inner:
		s.serveBatch(w, r)
	case !get:
		writeError(w, http.StatusMethodNotAllowed, "Request_BadRequest", "The simulator serves only reads.")
	case len(seg) == 2 && (seg[0] == "users" || seg[0] == "groups") && isDelta(seg[1]):
		s.serveDelta(w, r, t, seg[0] == "groups")
	case len(seg) == 1 && seg[0] == "users":
		s.listObjects(w, r, t, userObjects, func() []string { return t.userOrder })
	case len(seg) == 2 && seg[0] == "users":
		s.getUser(w, r, t, seg[1])
	case len(seg) == 1 && seg[0] == "groups":
		s.listObjects(w, r, t, groupObjects, func() []string { return t.groupOrder })
	case len(seg) == 2 && seg[0] == "groups":
		s.getGroup(w, r, t, seg[1])
	case (len(seg) == 3 || len(seg) == 4) && seg[0] == "groups" && (seg[2] == "members" || seg[2] == "transitiveMembers"):
		s.listMembers(w, r, t, seg[1], seg[2] == "transitiveMembers", seg[3:])
	default:
		writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", seg[len(seg)-1]))
	}
}

// nextFailure pops a FailNext status for a top-level request.
func (s *Server) nextFailure(inner bool) (int, bool) {
	if inner {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failNext) == 0 {
		return 0, false
	}
	st := s.failNext[0]
	s.failNext = s.failNext[1:]
	return st, true
}

func (s *Server) fail(w http.ResponseWriter, status int) {
	s.mu.Lock()
	s.stats.Failed++
	s.mu.Unlock()
	code := "UnknownError"
	switch status {
	case http.StatusServiceUnavailable:
		code = "serviceNotAvailable"
	case http.StatusGatewayTimeout:
		code = "gatewayTimeout"
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", retryAfterValue(s.Faults().RetryAfter))
		code = "TooManyRequests"
	}
	writeError(w, status, code, http.StatusText(status))
}

// writeError answers in Graph's error shape.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"),
			"request-id": newOpaque(16), "client-request-id": newOpaque(16)},
	}})
}

func (e *apiError) write(w http.ResponseWriter) { writeError(w, e.status, e.code, e.message) }

// baseURL is the origin and version the request came to, for absolute
// nextLinks and contexts.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/v1.0"
}

// listObjects serves /users and /groups.
func (s *Server) listObjects(w http.ResponseWriter, r *http.Request, t *Tenant, typ objectType, ids func() []string) {
	q, apiErr := s.parseQuery(r, typ, true)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	name := "users"
	if typ == groupObjects {
		name = "groups"
	}
	if q.expandManager {
		// $expand on directory objects caps a page at expandMaxTop.
		q.top = min(q.top, expandMaxTop)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s.writePage(w, r, t, q, ids(), typ, baseURL(r)+"/$metadata#"+name)
}

// listMembers serves /groups/{id}/members and /transitiveMembers, with an
// optional type cast segment.
func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, t *Tenant, gid string, transitive bool, cast []string) {
	typ := directoryObjects
	context := "directoryObjects"
	if len(cast) == 1 {
		switch cast[0] {
		case "microsoft.graph.user", "graph.user":
			typ, context = userObjects, "users"
		case "microsoft.graph.group", "graph.group":
			typ, context = groupObjects, "groups"
		default:
			writeError(w, http.StatusBadRequest, "Request_UnsupportedQuery", fmt.Sprintf("The type cast '%s' is not supported.", cast[0]))
			return
		}
	}
	q, apiErr := s.parseQuery(r, typ, true)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	// $expand is not among the member listings' documented options:
	// Graph ignores it, and so do we.
	q.expandManager, q.managerSel = false, nil
	if transitive && len(cast) == 1 && (!q.advanced || !q.count) {
		// The OData cast on transitiveMembers is documented as an
		// advanced query; read strictly, it needs both.
		unsupported("Request with an OData cast on transitiveMembers only works through MSGraph with a special request header: 'ConsistencyLevel: eventual' and $count=true.").write(w)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[gid]
	if g == nil {
		writeError(w, http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", gid))
		return
	}
	members := g.Members
	if transitive {
		members = t.transitive(gid)
	}
	// Every page of a listing filters the same members: at a million
	// users, once per listing rather than once per page.
	key := fmt.Sprintf("%s|%t|%d", gid, transitive, typ)
	ids, cached := t.listed[key]
	if !cached {
		for _, id := range members {
			_, isUser := t.users[id]
			_, isGroup := t.groups[id]
			if (typ == userObjects && isUser) || (typ == groupObjects && isGroup) || (typ == directoryObjects && (isUser || isGroup)) {
				ids = append(ids, id)
			}
		}
		if t.listed == nil {
			t.listed = map[string][]string{}
		}
		t.listed[key] = ids
	}
	s.writePage(w, r, t, q, ids, typ, baseURL(r)+"/$metadata#"+context)
}

// writePage filters ids, cuts the page the query asks for and writes it;
// the caller holds t.mu.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, t *Tenant, q query, ids []string, typ objectType, context string) {
	if len(q.filter) > 0 || q.search != nil {
		kept := make([]string, 0, len(ids))
		for _, id := range ids {
			get := t.getter(id)
			if match(q.filter, get) && (q.search == nil || q.search.matches(get)) {
				kept = append(kept, id)
			}
		}
		ids = kept
	}
	end := min(q.offset+q.top, len(ids))
	start := min(q.offset, end)
	more := end < len(ids)

	var b bytes.Buffer
	b.WriteString(`{"@odata.context":`)
	writeValue(&b, context)
	if q.count {
		fmt.Fprintf(&b, `,"@odata.count":%d`, len(ids))
	}
	nextOffset := end
	empty := more && !q.emptied && s.roll(s.Faults().EmptyPageShare)
	if empty {
		start, end, nextOffset = 0, 0, q.offset
	}
	if more {
		b.WriteString(`,"@odata.nextLink":`)
		writeValue(&b, nextLink(r, s.epoch(), nextOffset, empty))
	}
	b.WriteString(`,"value":[`)
	for i, id := range ids[start:end] {
		if i > 0 {
			b.WriteByte(',')
		}
		t.writeObject(&b, id, q, typ == directoryObjects)
	}
	b.WriteString("]}")

	s.mu.Lock()
	corrupt := s.corrupt > 0
	if corrupt {
		s.corrupt--
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	out := b.Bytes()
	if corrupt {
		out = out[:len(out)/2]
	}
	_, _ = w.Write(out)
}

func (s *Server) epoch() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pageEpoch
}

// nextLink is the request's own URL with a new $skiptoken, absolute.
func nextLink(r *http.Request, epoch, offset int, emptied bool) string {
	var parts []string
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if kv == "" {
			continue
		}
		if dk, err := url.QueryUnescape(k); err == nil && (dk == "$skiptoken" || dk == "skiptoken") {
			continue
		}
		parts = append(parts, kv)
	}
	parts = append(parts, "$skiptoken="+encodeSkipToken(epoch, offset, emptied))
	return baseURL(r) + strings.TrimPrefix(r.URL.Path, "/v1.0") + "?" + strings.Join(parts, "&")
}

// getUser serves GET /users/{id or userPrincipalName}.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request, t *Tenant, ref string) {
	q, apiErr := s.parseQuery(r, userObjects, false)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	id := ref
	if t.users[id] == nil {
		id = ""
		for _, u := range t.users {
			if strings.EqualFold(u.UserPrincipalName, ref) {
				id = u.ID
				break
			}
		}
	}
	if id == "" {
		writeError(w, http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", ref))
		return
	}
	var b bytes.Buffer
	b.WriteString(`{"@odata.context":`)
	writeValue(&b, baseURL(r)+"/$metadata#users/$entity")
	b.WriteByte(',')
	t.writeFields(&b, id, q, false)
	b.WriteByte('}')
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// getGroup serves GET /groups/{id}.
func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, t *Tenant, id string) {
	q, apiErr := s.parseQuery(r, groupObjects, false)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.groups[id] == nil {
		writeError(w, http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
		return
	}
	var b bytes.Buffer
	b.WriteString(`{"@odata.context":`)
	writeValue(&b, baseURL(r)+"/$metadata#groups/$entity")
	b.WriteByte(',')
	t.writeFields(&b, id, q, false)
	b.WriteByte('}')
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// writeObject writes one user or group as a JSON object.
func (t *Tenant) writeObject(b *bytes.Buffer, id string, q query, withType bool) {
	b.WriteByte('{')
	t.writeFields(b, id, q, withType)
	b.WriteByte('}')
}

// writeFields writes the selected properties of an object (the default
// ones without $select), null when unset; the caller holds t.mu.
func (t *Tenant) writeFields(b *bytes.Buffer, id string, q query, withType bool) {
	get := t.getter(id)
	_, isUser := t.users[id]
	sel := q.sel
	typeName := "#microsoft.graph.group"
	if isUser {
		typeName = "#microsoft.graph.user"
		if sel == nil {
			sel = defaultUserProperties
		}
	} else if sel == nil {
		sel = defaultGroupProperties
	}
	first := true
	field := func(name string, v any) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeValue(b, name)
		b.WriteByte(':')
		writeValue(b, v)
	}
	if withType {
		field("@odata.type", typeName)
	}
	known := groupProperties
	if isUser {
		known = userProperties
	}
	for _, p := range sel {
		if !slices.Contains(known, p) {
			continue // a directoryObject select naming the other type's properties
		}
		v := get(p)
		if v == nil && slices.Contains(collectionProperties, p) {
			v = []string{}
		}
		field(p, v)
	}
	if q.expandManager && isUser {
		if m := t.users[t.users[id].ManagerID]; m != nil {
			if !first {
				b.WriteByte(',')
			}
			b.WriteString(`"manager":{`)
			t.writeFields(b, m.ID, query{sel: q.managerSel}, true)
			b.WriteByte('}')
		}
	}
}

// getter reads a property of a user or group as Graph shows it: a string,
// []string, bool, time.Time, or nil when unset; the caller holds t.mu.
func (t *Tenant) getter(id string) func(string) any {
	if u := t.users[id]; u != nil {
		return func(p string) any {
			switch p {
			case "id":
				return u.ID
			case "userPrincipalName":
				return nonEmpty(u.UserPrincipalName)
			case "givenName":
				return nonEmpty(u.GivenName)
			case "surname":
				return nonEmpty(u.Surname)
			case "displayName":
				return nonEmpty(u.DisplayName)
			case "mail":
				return nonEmpty(u.Mail)
			case "accountEnabled":
				return u.AccountEnabled
			}
			return u.Props[p]
		}
	}
	g := t.groups[id]
	if g == nil {
		return func(string) any { return nil }
	}
	return func(p string) any {
		switch p {
		case "id":
			return g.ID
		case "displayName":
			return g.DisplayName
		case "securityEnabled":
			return g.Kind == Security || g.Kind == MailEnabledSecurity
		case "mailEnabled":
			return g.Kind != Security
		case "groupTypes":
			if g.Kind == Microsoft365 {
				return []string{"Unified"}
			}
			return []string{}
		case "mail", "mailNickname", "proxyAddresses":
			if g.Kind == Security {
				if p == "proxyAddresses" {
					return []string{}
				}
				return nil
			}
			nick := "g" + strings.ReplaceAll(g.ID[:8], "-", "")
			switch p {
			case "mail":
				return nick + "@" + t.Domain
			case "proxyAddresses":
				return []string{"SMTP:" + nick + "@" + t.Domain}
			}
			return nick
		case "visibility":
			if g.Kind == Microsoft365 {
				return "Private"
			}
			return nil
		}
		return nil
	}
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// writeValue writes v as JSON; times as Graph's UTC timestamps.
func writeValue(b *bytes.Buffer, v any) {
	if tm, ok := v.(time.Time); ok {
		v = tm.UTC().Format("2006-01-02T15:04:05Z")
	}
	enc, err := json.Marshal(v)
	if err != nil {
		enc = []byte("null")
	}
	b.Write(enc)
}

// maxBatchRequests is Graph's limit of requests in one $batch.
const maxBatchRequests = 20

// serveBatch answers POST /$batch by running each request through the
// same handler (faults included, so an inner request can be throttled).
func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Batches++
	s.mu.Unlock()
	var body io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", "Invalid gzip body.")
			return
		}
		defer zr.Close()
		body = zr
	}
	var in struct {
		Requests []struct {
			ID      string            `json:"id"`
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"requests"`
	}
	if err := json.NewDecoder(io.LimitReader(body, 4<<20)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "Invalid batch payload format.")
		return
	}
	switch {
	case len(in.Requests) == 0:
		writeError(w, http.StatusBadRequest, "BadRequest", "Invalid batch payload format: no requests.")
		return
	case len(in.Requests) > maxBatchRequests:
		writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The number of requests in a batch exceeds the limit of %d.", maxBatchRequests))
		return
	}
	type answer struct {
		ID      string            `json:"id"`
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body,omitempty"`
	}
	out := struct {
		Responses []answer `json:"responses"`
	}{}
	seen := map[string]bool{}
	for _, item := range in.Requests {
		if item.ID == "" || seen[item.ID] {
			writeError(w, http.StatusBadRequest, "BadRequest", "Every request of a batch needs a unique id.")
			return
		}
		seen[item.ID] = true
		u := item.URL
		if !strings.HasPrefix(u, "/") {
			u = "/" + u
		}
		req, err := http.NewRequestWithContext(r.Context(), item.Method, "/v1.0"+u, nil)
		if err != nil {
			out.Responses = append(out.Responses, answer{ID: item.ID, Status: http.StatusBadRequest,
				Headers: map[string]string{"Content-Type": "application/json"}})
			continue
		}
		req.Host, req.TLS = r.Host, r.TLS
		for k, v := range item.Headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", r.Header.Get("Authorization"))
		rec := httptest.NewRecorder()
		s.serveGraph(rec, req, true)
		a := answer{ID: item.ID, Status: rec.Code, Headers: map[string]string{}}
		for k := range rec.Header() {
			a.Headers[k] = rec.Header().Get(k)
		}
		if rec.Body.Len() > 0 {
			a.Body = rec.Body.Bytes()
		}
		out.Responses = append(out.Responses, a)
	}
	writeJSON(w, http.StatusOK, out)
}
