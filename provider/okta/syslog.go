package okta

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
func parseState(state string, now time.Time) (changeState, error) {
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
	if now.Sub(updated) > logRetention {
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

// logPage is one answer of the System Log.
type logPage struct {
	events []*okta.LogEvent
	next   string // the rel="next" link, verbatim
}

// readLog reads one page of the System Log: at link, or, when link is "",
// the first page of a polling request from since (no until, ascending).
func (s *Source) readLog(ctx context.Context, link, since, filter string) (logPage, error) {
	what := "read the System Log since " + since
	if link != "" {
		what = "read the System Log at its next link"
	}
	var events []*okta.LogEvent
	next, status, err := s.listPage(ctx, logsPath, &query.Params{Since: since, Filter: filter, SortOrder: "ASCENDING",
		Limit: int64(s.logLimit)}, link, &events, what, provider.ErrStateExpired)
	switch {
	case err == nil:
	case errors.Is(err, provider.ErrPermission):
		return logPage{}, fmt.Errorf("okta: %w: incremental sync reads the System Log (scope %s): %w", provider.ErrStateExpired, ScopeLogsRead, err)
	case status == http.StatusBadRequest:
		return logPage{}, &badRequest{err}
	default:
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
