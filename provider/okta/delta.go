package okta

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"

	"github.com/usersync/usersync/provider"
)

// Incremental reads (provider.DeltaSource). Okta has no delta query, so a
// round reads what changed since the state the last round handed out:
//
//   - users: /api/v1/users?filter=lastUpdated gt "<time>", which Okta
//     documents to include DEPROVISIONED users; because older pages said
//     otherwise for filtered listings, the DEPROVISIONED ones are also
//     asked for by status (lastUpdated gt "<time>" and status eq
//     "DEPROVISIONED"), so a deactivation is read under either reading;
//     and the System Log's user.lifecycle.delete.completed for deletions;
//   - groups: /api/v1/groups?filter=lastUpdated gt "<time>" for their
//     properties, and the System Log's group.user_membership.add and
//     .remove for their members (with an app, .application_assignment.add
//     and .remove for whether group sync may keep them; group.lifecycle
//     .delete for the deleted ones). A group's lastMembershipUpdated says that
//     its membership changed but not who left, and the engine needs every
//     membership that ended to know who left the scope; re-reading the
//     members of such a group would need the old member list, which only
//     the engine's snapshot has.
//
// A state (changeState, syslog.go) holds the time of the lastUpdated
// filters, taken when a round starts, deltaSkew early (a change read twice
// is applied twice to the same effect), and where the System Log stream of
// its kind resumes: the next link of the last round's final page. The log
// is read with polling requests only (syslog.go says why).

var _ provider.DeltaSource = (*Source)(nil)

const (
	deltaSkew = 2 * time.Minute
	// logRetention is how long Okta keeps System Log events: a state older
	// than that would miss memberships that ended.
	logRetention = 90 * 24 * time.Hour
	oktaTime     = "2006-01-02T15:04:05.000Z"
	// ScopeLogsRead is the scope a service app needs for incremental sync;
	// without it every run reads the org in full.
	ScopeLogsRead = "okta.logs.read"

	usersMaxLimit = 200
	logsLimit     = 1000
	idsPerFilter  = 20

	eventMembershipAdd    = "group.user_membership.add"
	eventMembershipRemove = "group.user_membership.remove"
	eventUserDeleted      = "user.lifecycle.delete.completed"
	eventGroupDeleted     = "group.lifecycle.delete"
	eventAppAssignAdd     = "group.application_assignment.add"
	eventAppAssignRemove  = "group.application_assignment.remove"

	statusDeprovisioned = "DEPROVISIONED"
)

// Phases of a round, kept in its cursor.
const (
	phaseAppGroups     = iota // app mode: the ids of the groups assigned to the app
	phaseGroups               // a page of groups: their properties
	phaseMembers              // full graph: the members of the page's groups
	phaseLog                  // delta: the System Log
	phaseUsers                // the users changed
	phaseDeprovisioned        // the users deactivated, asked for by status
)

// deltaCursor is where a round is. Until is when it started (the name of
// an older field, kept so that its JSON key stays): deltaSkew early, the
// time of the state it hands out.
type deltaCursor struct {
	Until    string   `json:"u"`
	Phase    int      `json:"p,omitempty"`
	Link     string   `json:"al,omitempty"`  // a listing's next link
	Log      string   `json:"l,omitempty"`   // the System Log: the next link to read ("" the state's position)
	Groups   []string `json:"g,omitempty"`   // full graph: the groups whose members are still to read
	NextLink string   `json:"nl,omitempty"`  // the group listing's next link after the current page
	Done     bool     `json:"d,omitempty"`   // the group listing is read
	App      []string `json:"app,omitempty"` // app mode: the assigned groups, sorted
	// After and Next held after values where older cursors now hold
	// links; a cursor with them is refused and the round starts again.
	After string `json:"a,omitempty"`
	Next  string `json:"n,omitempty"`
}

func (c deltaCursor) encode() provider.Cursor {
	b, _ := json.Marshal(c) //nolint:errchkjson // plain struct
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeDeltaCursor(c provider.Cursor) (deltaCursor, error) {
	var d deltaCursor
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		err = json.Unmarshal(b, &d)
	}
	if err == nil {
		_, err = time.Parse(time.RFC3339Nano, d.Until)
	}
	if err == nil && (d.After != "" || d.Next != "") {
		// A cursor of an older version, with an after where a link now
		// goes: it cannot be followed as a link.
		err = errors.New("cursor without links")
	}
	if err != nil {
		return d, fmt.Errorf("okta: change cursor cannot be read: %w", provider.ErrCursorExpired)
	}
	return d, nil
}

// startRound is the cursor of a round's first page.
func startRound(c provider.Cursor, first int, now time.Time) (deltaCursor, error) {
	if c != "" {
		return decodeDeltaCursor(c)
	}
	return deltaCursor{Until: now.UTC().Truncate(time.Millisecond).Format(oktaTime), Phase: first}, nil
}

// LatestUserState implements provider.DeltaSource: now, deltaSkew early,
// for the users' lastUpdated filter and for the first polling request of
// their System Log stream.
func (s *Source) LatestUserState(context.Context) (string, error) {
	return stateAt(s.now().UTC().Format(oktaTime), "", ""), nil
}

// logsRefused is the error of a delta read when the service app may not
// read the System Log at all: without it there is no telling who left a
// group, so the state is refused and the run reads in full.
func (s *Source) logsRefused() error {
	if s.scopes == nil || !s.scopes.refused() {
		return nil
	}
	return fmt.Errorf("okta: %w: the service app is not granted %s (the token endpoint answered invalid_scope), so changes cannot be read from the System Log; incremental sync is off and the run reads the org in full",
		provider.ErrStateExpired, ScopeLogsRead)
}

// UserChanges implements provider.DeltaSource: the users whose lastUpdated
// is after the state's time (and, asked for by status, the deactivated
// ones), then the users deleted, from the System Log.
func (s *Source) UserChanges(ctx context.Context, state string, c provider.Cursor) (provider.ChangePage[provider.UserChange], error) {
	var page provider.ChangePage[provider.UserChange]
	st, err := parseState(state, s.now())
	if err != nil {
		return page, err
	}
	if err := s.logsRefused(); err != nil {
		return page, err
	}
	cur, err := startRound(c, phaseUsers, s.now())
	if err != nil {
		return page, err
	}
	switch cur.Phase {
	case phaseUsers, phaseDeprovisioned:
		filter, what := `lastUpdated gt "`+st.Updated+`"`, "list the users changed since "+st.Updated
		if cur.Phase == phaseDeprovisioned {
			filter += ` and status eq "` + statusDeprovisioned + `"`
			what = "list the users deactivated since " + st.Updated
		}
		var users []*okta.User
		next, _, err := s.listPage(ctx, "/api/v1/users", &query.Params{Filter: filter, Limit: int64(min(s.pageSize, usersMaxLimit))},
			cur.Link, &users, what, provider.ErrInvalidData)
		if err != nil {
			return page, err
		}
		for _, u := range users {
			// STAGED users are not created (see statusActive); activation
			// updates lastUpdated, so they come back then.
			if u != nil && u.Status != statusStaged {
				page.Items = append(page.Items, provider.UserChange{User: s.mapUser(u)})
			}
		}
		cur.Link = next
		switch {
		case next != "":
		case cur.Phase == phaseUsers:
			cur.Phase = phaseDeprovisioned
		default:
			cur.Phase = phaseLog
		}
	case phaseLog:
		events, done, pos, err := s.logStep(ctx, st, &cur, `eventType eq "`+eventUserDeleted+`"`)
		if err != nil {
			return page, err
		}
		for _, e := range events {
			if id := target(e, "User"); id != "" {
				page.Items = append(page.Items, provider.UserChange{User: provider.User{ExternalID: id}, Removed: true})
			}
		}
		if done {
			page.State = stateAt(cur.Until, pos.Since, pos.Link)
			return page, s.logsRefused()
		}
	default:
		return page, fmt.Errorf("okta: user change cursor in phase %d: %w", cur.Phase, provider.ErrCursorExpired)
	}
	if err := s.logsRefused(); err != nil {
		// The first request of this page asked for the access token and
		// learnt that the System Log is out of reach.
		return page, err
	}
	page.Next = cur.encode()
	return page, nil
}

// GroupChanges implements provider.DeltaSource. From state "" it lists
// every group of the org (the scope may select a group the app is not
// assigned) with all its direct members, STAGED ones included: a STAGED
// user's activation must find it in scope. Eligible is what Groups lists:
// the app's groups with an app, else every group.
func (s *Source) GroupChanges(ctx context.Context, state string, c provider.Cursor) (provider.ChangePage[provider.GroupChange], error) {
	var page provider.ChangePage[provider.GroupChange]
	var st changeState
	delta := state != ""
	if delta {
		var err error
		if st, err = parseState(state, s.now()); err != nil {
			return page, err
		}
		if err := s.logsRefused(); err != nil {
			return page, err
		}
	}
	first := phaseGroups
	if s.appID != "" {
		first = phaseAppGroups
	}
	cur, err := startRound(c, first, s.now())
	if err != nil {
		return page, err
	}
	switch cur.Phase {
	case phaseAppGroups:
		var assigned []*okta.ApplicationGroupAssignment
		next, _, err := s.listPage(ctx, "/api/v1/apps/"+escape(s.appID)+"/groups", &query.Params{Limit: groupPageSize},
			cur.Link, &assigned, "list the groups assigned to app "+s.appID+" (okta.appId)", provider.ErrInvalidData)
		if err != nil {
			return page, err
		}
		for _, a := range assigned {
			if a != nil && a.Id != "" {
				cur.App = append(cur.App, a.Id)
			}
		}
		cur.Link = next
		if next == "" {
			slices.Sort(cur.App)
			cur.Phase = phaseGroups
		}
	case phaseGroups:
		params := &query.Params{Limit: groupPageSize}
		what := "list groups"
		if delta {
			params.Filter = `lastUpdated gt "` + st.Updated + `"`
			what = "list the groups changed since " + st.Updated
		}
		var groups []*okta.Group
		next, _, err := s.listPage(ctx, "/api/v1/groups", params, cur.NextLink, &groups, what, provider.ErrInvalidData)
		if err != nil {
			return page, err
		}
		cur.Groups = cur.Groups[:0]
		for _, g := range groups {
			if g == nil || g.Id == "" {
				continue
			}
			_, assigned := slices.BinarySearch(cur.App, g.Id)
			page.Items = append(page.Items, provider.GroupChange{Group: mapGroup(g), HasProperties: true,
				Eligible: s.appID == "" || assigned})
			cur.Groups = append(cur.Groups, g.Id)
		}
		cur.NextLink, cur.Done, cur.Link = next, next == "", ""
		switch {
		case delta && next == "":
			cur.Phase, cur.Groups = phaseLog, nil
		case delta:
			cur.Groups = nil
		case len(cur.Groups) > 0:
			cur.Phase = phaseMembers
		case next == "":
			page.State = stateAt(cur.Until, "", "")
			return page, nil
		}
	case phaseMembers:
		if len(cur.Groups) == 0 {
			return page, fmt.Errorf("okta: group graph cursor without groups: %w", provider.ErrCursorExpired)
		}
		gid := cur.Groups[0]
		users, next, err := s.groupUsers(ctx, gid, cur.Link)
		var gone *objectNotFound
		switch {
		case errors.As(err, &gone) && cur.Link == "":
			// Deleted since the group page was read: the graph records
			// the deletion, as the next page of changes would.
			page.Items = append(page.Items, provider.GroupChange{Group: provider.Group{ID: gid}, Removed: true})
		case err != nil:
			return page, err
		default:
			gc := provider.GroupChange{Group: provider.Group{ID: gid}, Members: make([]provider.MemberChange, 0, len(users))}
			for _, u := range users {
				if u != nil && u.Id != "" {
					gc.Members = append(gc.Members, provider.MemberChange{ID: u.Id})
				}
			}
			page.Items = append(page.Items, gc)
		}
		cur.Link = next
		if next == "" {
			cur.Groups = cur.Groups[1:]
		}
		switch {
		case len(cur.Groups) > 0:
		case cur.Done:
			page.State = stateAt(cur.Until, "", "")
			return page, nil
		default:
			cur.Phase, cur.Groups = phaseGroups, nil
		}
	case phaseLog:
		if !delta {
			return page, fmt.Errorf("okta: group graph cursor of a change round: %w", provider.ErrCursorExpired)
		}
		filter := `eventType eq "` + eventMembershipAdd + `" or eventType eq "` + eventMembershipRemove +
			`" or eventType eq "` + eventGroupDeleted + `"`
		if s.appID != "" {
			filter += ` or eventType eq "` + eventAppAssignAdd + `" or eventType eq "` + eventAppAssignRemove + `"`
		}
		events, done, pos, err := s.logStep(ctx, st, &cur, filter)
		if err != nil {
			return page, err
		}
		page.Items = membershipChanges(events)
		reassigned, err := s.reassignedGroups(ctx, events, cur.App)
		if err != nil {
			return page, err
		}
		page.Items = append(page.Items, reassigned...)
		if done {
			page.State = stateAt(cur.Until, pos.Since, pos.Link)
			return page, s.logsRefused()
		}
	default:
		return page, fmt.Errorf("okta: group graph cursor in phase %d: %w", cur.Phase, provider.ErrCursorExpired)
	}
	if delta {
		if err := s.logsRefused(); err != nil {
			return page, err
		}
	}
	page.Next = cur.encode()
	return page, nil
}

// membershipChanges folds a page of log events into group changes: the
// last event of a membership is its state.
func membershipChanges(events []*okta.LogEvent) []provider.GroupChange {
	var out []provider.GroupChange
	at := map[string]int{}
	member := map[[2]string]int{}
	for _, e := range events {
		gid := target(e, "UserGroup")
		if gid == "" {
			continue
		}
		if e.EventType == eventGroupDeleted {
			out = append(out, provider.GroupChange{Group: provider.Group{ID: gid}, Removed: true})
			continue
		}
		uid := target(e, "User")
		if uid == "" {
			continue
		}
		i, ok := at[gid]
		if !ok {
			i = len(out)
			at[gid] = i
			out = append(out, provider.GroupChange{Group: provider.Group{ID: gid}})
		}
		removed := e.EventType == eventMembershipRemove
		if j, ok := member[[2]string{gid, uid}]; ok {
			out[i].Members[j].Removed = removed
			continue
		}
		member[[2]string{gid, uid}] = len(out[i].Members)
		out[i].Members = append(out[i].Members, provider.MemberChange{ID: uid, Removed: removed})
	}
	return out
}

// reassignedGroups reads the groups assigned to or unassigned from the
// app in events: whether group sync may keep them changed, and nothing
// else about them did. Eligible is what the assignments are now (app).
func (s *Source) reassignedGroups(ctx context.Context, events []*okta.LogEvent, app []string) ([]provider.GroupChange, error) {
	var out []provider.GroupChange
	seen := map[string]bool{}
	for _, e := range events {
		if e == nil || (e.EventType != eventAppAssignAdd && e.EventType != eventAppAssignRemove) || target(e, "AppInstance") != s.appID {
			continue
		}
		gid := target(e, "UserGroup")
		if gid == "" || seen[gid] {
			continue
		}
		seen[gid] = true
		gctx, tr := withTrace(ctx)
		g, resp, err := s.client.Group.GetGroup(gctx, url.PathEscape(gid))
		err = s.check(gctx, tr, resp, err, "read group "+gid, "")
		var gone *objectNotFound
		switch {
		case errors.As(err, &gone):
			continue // its deletion is in the log too
		case err != nil:
			return nil, err
		}
		_, assigned := slices.BinarySearch(app, gid)
		out = append(out, provider.GroupChange{Group: mapGroup(g), HasProperties: true, Eligible: assigned})
	}
	return out, nil
}

func target(e *okta.LogEvent, typ string) string {
	if e == nil {
		return ""
	}
	for _, t := range e.Target {
		if t != nil && t.Type == typ {
			return t.Id
		}
	}
	return ""
}

// UsersByID implements provider.DeltaSource: idsPerFilter users to a
// filtered listing; STAGED users are left out as Users leaves them. Okta
// documents that a filtered listing includes DEPROVISIONED users, but
// older pages said a listing leaves them out; the ids a listing did not
// return are asked for again with status eq "DEPROVISIONED", so a
// deactivated user moved into the scope is read under either reading.
func (s *Source) UsersByID(ctx context.Context, ids []string) ([]provider.User, error) {
	var out []provider.User
	for start := 0; start < len(ids); start += idsPerFilter {
		chunk := ids[start:min(start+idsPerFilter, len(ids))]
		seen := map[string]bool{}
		users, err := s.usersWhere(ctx, idTerms(chunk), "read users by id")
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			seen[u.Id] = true
		}
		var missing []string
		for _, id := range chunk {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			more, err := s.usersWhere(ctx, `status eq "`+statusDeprovisioned+`" and (`+idTerms(missing)+`)`, "read deactivated users by id")
			if err != nil {
				return nil, err
			}
			for _, u := range more {
				if !seen[u.Id] {
					seen[u.Id] = true
					users = append(users, u)
				}
			}
		}
		for _, u := range users {
			if u.Status != statusStaged {
				out = append(out, s.mapUser(u))
			}
		}
	}
	return out, nil
}

// idTerms is a filter matching any of ids.
func idTerms(ids []string) string {
	terms := make([]string, 0, len(ids))
	for _, id := range ids {
		terms = append(terms, `id eq "`+strings.ReplaceAll(id, `"`, ``)+`"`)
	}
	return strings.Join(terms, " or ")
}

// usersWhere reads every page of /api/v1/users?filter=filter.
func (s *Source) usersWhere(ctx context.Context, filter, what string) ([]*okta.User, error) {
	var out []*okta.User
	link := ""
	for {
		var users []*okta.User
		next, _, err := s.listPage(ctx, "/api/v1/users", &query.Params{Filter: filter, Limit: usersMaxLimit}, link, &users, what,
			provider.ErrInvalidData)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if u != nil && u.Id != "" {
				out = append(out, u)
			}
		}
		if next == "" {
			return out, nil
		}
		link = next
	}
}
