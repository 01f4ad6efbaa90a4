package okta

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"

	"github.com/usersync/usersync/provider"
)

// The System Log (/api/v1/logs) is read with polling requests only: a
// first request with since and no until, then the "next" link of each
// answer, verbatim, until a page comes back empty. Okta documents (System
// Log query, "Request types") that a bounded request (since and until) is
// filtered by published time and "may miss events that are delayed",
// while a polling request returns events in the order they were committed
// to the log and always has a next link. The link reached at the end of a
// round is where the next round resumes, so an event committed minutes
// after its published time is read by the round after it became readable,
// however late it was. Okta also says since and after are mutually
// exclusive and after is system generated: usersync never writes after
// itself, it only follows the links Okta hands out.

const logsPath = "/api/v1/logs"

// changeState is the state of one stream of changes (the users', the
// groups'): Updated is the time of its lastUpdated filters; the System
// Log is resumed at Link, or, before any link was handed out, polled from
// Since. It is encoded as base64url JSON; a bare time is an older state
// (Updated and Since both).
type changeState struct {
	Updated string `json:"t"`
	Since   string `json:"s,omitempty"`
	Link    string `json:"l,omitempty"`
}

func (c changeState) encode() string {
	b, _ := json.Marshal(c) //nolint:errchkjson // plain struct
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseState reads a saved state. Anything it cannot read, or older than
// the System Log keeps, is refused with provider.ErrStateExpired: the run
// then reads in full, which needs no state.
func parseState(state string) (changeState, error) {
	var c changeState
	if t, err := time.Parse(time.RFC3339Nano, state); err == nil {
		c = changeState{Updated: t.UTC().Format(oktaTime), Since: t.UTC().Format(oktaTime)}
	} else {
		b, err := base64.RawURLEncoding.DecodeString(state)
		if err == nil {
			err = json.Unmarshal(b, &c)
		}
		if err != nil {
			return c, fmt.Errorf("okta: %w: saved change state cannot be read", provider.ErrStateExpired)
		}
	}
	updated, err := time.Parse(time.RFC3339Nano, c.Updated)
	if err != nil {
		return c, fmt.Errorf("okta: %w: saved change state has no time", provider.ErrStateExpired)
	}
	if c.Link == "" {
		if _, err := time.Parse(time.RFC3339Nano, c.Since); err != nil {
			return c, fmt.Errorf("okta: %w: saved change state has neither a System Log link nor a time to poll it from", provider.ErrStateExpired)
		}
	}
	if timeNow().Sub(updated) > logRetention {
		return c, fmt.Errorf("okta: %w: saved change state %s is older than the System Log's retention", provider.ErrStateExpired, c.Updated)
	}
	c.Updated = updated.UTC().Format(oktaTime)
	return c, nil
}

// stateAt is the state of a stream whose round started at start: a
// round's lastUpdated filters start deltaSkew early (a change read twice
// does no harm), and its log resumes at link or, without one, is polled
// from since.
func stateAt(start, since, link string) string {
	t, _ := time.Parse(time.RFC3339Nano, start)
	updated := t.Add(-deltaSkew).UTC().Format(oktaTime)
	if link == "" && since == "" {
		since = updated
	}
	if link != "" {
		since = ""
	}
	return changeState{Updated: updated, Since: since, Link: link}.encode()
}

// nextLink is the rel="next" URL of an answer's Link headers, exactly as
// Okta wrote it. The SDK's Response.NextPage is not that: it drops the
// scheme and host and merges the request's own query into the link's, so
// a link without since would be sent with since again.
func nextLink(resp *okta.Response) string {
	if resp == nil || resp.Response == nil {
		return ""
	}
	for _, h := range resp.Header.Values("Link") {
		for h != "" {
			start := strings.IndexByte(h, '<')
			end := strings.IndexByte(h, '>')
			if start < 0 || end < start {
				break
			}
			target := h[start+1 : end]
			rest := h[end+1:]
			params := rest
			if i := strings.IndexByte(rest, '<'); i >= 0 {
				params = rest[:i]
			}
			h = rest[len(params):]
			for _, p := range strings.Split(params, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), ",")), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}

// logLink checks that a System Log link is on the org's own origin and
// path before the credentials go with it, and returns what to request
// (path and query, as given). The link comes from an answer or from a
// saved state, neither of which may send the API token or the access
// token elsewhere. A refusal is provider.ErrStateExpired: the run then
// reads in full, which needs no link.
func (s *Source) logLink(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("okta: %w: the System Log's next link cannot be read", provider.ErrStateExpired)
	}
	org, _ := url.Parse(s.org)
	if !u.IsAbs() && u.Host == "" {
		u = org.ResolveReference(u)
	}
	switch {
	case !sameOrigin(u, org):
		return "", fmt.Errorf("okta: %w: the System Log's next link points at %s, not at the org %s: refusing to send the credentials there (if the org has another domain, set okta.orgUrl to the one Okta's links use)",
			provider.ErrStateExpired, u.Scheme+"://"+u.Host, s.org)
	case u.User != nil || u.Fragment != "" || u.Path != logsPath:
		return "", fmt.Errorf("okta: %w: the System Log's next link is not a System Log query on %s", provider.ErrStateExpired, s.org)
	}
	return u.RequestURI(), nil
}

// sameOrigin compares scheme and host, the port made explicit.
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "http") {
			return "80"
		}
		return "443"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// logPage is one answer of the System Log.
type logPage struct {
	events []*okta.LogEvent
	next   string // the rel="next" link, verbatim
}

// readLog reads one page of the System Log: at link, or, when link is "",
// the first page of a polling request from since (no until, ascending).
func (s *Source) readLog(ctx context.Context, link, since, filter string) (logPage, error) {
	tctx, tr := withTrace(ctx)
	var (
		events []*okta.LogEvent
		resp   *okta.Response
		err    error
	)
	if link == "" {
		events, resp, err = s.client.LogEvent.GetLogs(tctx, &query.Params{Since: since, Filter: filter,
			SortOrder: "ASCENDING", Limit: int64(s.logLimit)})
	} else {
		var target string
		if target, err = s.logLink(link); err != nil {
			return logPage{}, err
		}
		// The request executor adds the org URL (checked equal above), the
		// SSWS or bearer authorization and our pacer transport; the path
		// and query go as Okta wrote them.
		re := s.client.CloneRequestExecutor()
		req, rerr := re.WithAccept("application/json").NewRequest("GET", target, nil)
		if rerr != nil {
			err = rerr
		} else {
			resp, err = re.Do(tctx, req, &events)
		}
	}
	what := "read the System Log since " + since
	if link != "" {
		what = "read the System Log at its next link"
	}
	if err := s.check(tctx, tr, resp, err, what, link); err != nil {
		status := tr.get().status
		if resp != nil && resp.Response != nil {
			status = resp.StatusCode
		}
		switch {
		case errors.Is(err, provider.ErrPermission):
			return logPage{}, fmt.Errorf("okta: %w: incremental sync reads the System Log (scope %s): %w", provider.ErrStateExpired, ScopeLogsRead, err)
		case status == http.StatusBadRequest:
			return logPage{}, &badRequest{err}
		}
		return logPage{}, err
	}
	// Okta orders a polling answer by when events were committed, which
	// may differ from when they happened; within a page, the order of
	// published is the better word on a membership that changed twice.
	slices.SortStableFunc(events, func(a, b *okta.LogEvent) int {
		if a == nil || b == nil || a.Published == nil || b.Published == nil {
			return 0
		}
		return a.Published.Compare(*b.Published)
	})
	next := nextLink(resp)
	if next != "" {
		// Checked now rather than when it is followed: a link that may
		// not be followed must not end up in a saved state either.
		if _, err := s.logLink(next); err != nil {
			return logPage{}, err
		}
	}
	return logPage{events: events, next: next}, nil
}

// logStep reads the next page of a round's System Log stream: from the
// cursor's link, else from the saved state. done says the round's log is
// read (an empty page, as Okta's polling contract says), and pos is then
// where the next round resumes.
func (s *Source) logStep(ctx context.Context, st changeState, cur *deltaCursor, filter string) (events []*okta.LogEvent, done bool, pos changeState, err error) {
	link, fromState := cur.Log, false
	if link == "" {
		link, fromState = st.Link, true
	}
	page, err := s.readLog(ctx, link, st.Since, filter)
	if err != nil {
		if fromState && (errors.Is(err, provider.ErrCursorExpired) || isBadRequest(err)) {
			// Okta no longer accepts where the last round stopped (or the
			// since of a first round): only a full run can start afresh.
			return nil, false, pos, fmt.Errorf("okta: %w: the System Log refused the saved position: %w", provider.ErrStateExpired, err)
		}
		return nil, false, pos, err
	}
	switch {
	case len(page.events) == 0 || page.next == "":
		// The end of what is readable now. Without a next link (Okta
		// promises one on every polling answer), the page just read is
		// where to resume: reading it again does no harm.
		pos = changeState{Link: page.next}
		if pos.Link == "" {
			pos.Link = link
		}
		if pos.Link == "" {
			pos.Since = st.Since
		}
		return page.events, true, pos, nil
	}
	cur.Log = page.next
	return page.events, false, pos, nil
}

// badRequest is a System Log request Okta answered 400: a position or a
// since it no longer accepts.
type badRequest struct{ err error }

func (e *badRequest) Error() string { return e.err.Error() }
func (e *badRequest) Unwrap() error { return e.err }

func isBadRequest(err error) bool {
	var b *badRequest
	return errors.As(err, &b)
}
