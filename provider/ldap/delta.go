package ldap

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/provider"
)

// Incremental reads (provider.DeltaSource). LDAP has no change log every
// server offers, so a round reads the entries changed since the state the
// last round handed out:
//
//   - Active Directory: uSNChanged >= the highestCommittedUSN the root DSE
//     gave when the last round started, plus one. USNs are numbered by
//     each domain controller, so the state names the DC (dsServiceName)
//     and its invocationId, and a round answered by another DC, or by one
//     restored from a backup (a new invocationId, or a USN lower than the
//     saved one), does not trust it ("Polling for Changes Using the
//     USNChanged Attribute", Microsoft Learn).
//   - OpenLDAP and 389: modifyTimestamp >= the time the last round started,
//     deltaSkew early; a change read twice is applied twice to the same
//     effect, and the skew absorbs a difference between the clocks of the
//     worker and the server.
//
// Neither tells which members left a group whose member attribute
// changed, and the engine needs every membership that ended: a round that
// finds a group changed refuses the state (provider.ErrStateExpired) and
// the run reads the directory in full. A deleted entry, or one moved out
// of the base DN or the filter, is not seen by a round: the next full run
// (every 7 days, or after a group change) disables it, as for the other
// sources.

var _ provider.DeltaSource = (*Source)(nil)

const (
	deltaSkew    = 5 * time.Minute
	ldapTime     = "20060102150405Z"
	stateVersion = 1
)

// errNoUSN is a server whose root DSE has no highestCommittedUSN: not an
// Active Directory domain controller, or one that hides it. Its full
// rounds hand out no state, so that every run is full.
var errNoUSN = errors.New("no highestCommittedUSN")

// changeState is a point in the directory's history.
type changeState struct {
	V           int    `json:"v"`
	Fingerprint string `json:"fp"`
	// AD: the DC and the USN.
	Server     string `json:"dc,omitempty"`
	Invocation string `json:"inv,omitempty"`
	USN        int64  `json:"usn,omitempty"`
	// OpenLDAP, 389: a generalized time.
	Time string `json:"t,omitempty"`
}

func (st changeState) encode() string {
	b, _ := json.Marshal(st) //nolint:errchkjson // plain struct
	return base64.RawURLEncoding.EncodeToString(b)
}

// roundStart is the state of now.
func (s *Source) roundStart(ctx context.Context) (changeState, error) {
	st := changeState{V: stateVersion, Fingerprint: s.fingerprint}
	if s.flavour != FlavourAD {
		st.Time = s.now().UTC().Add(-deltaSkew).Format(ldapTime)
		return st, nil
	}
	root, err := s.one(ctx, "", "(objectClass=*)", []string{"highestCommittedUSN", "dsServiceName"})
	if err != nil {
		return st, err
	}
	if root == nil {
		return st, errors.New("ldap: the root DSE cannot be read")
	}
	usn, err := strconv.ParseInt(root.GetAttributeValue("highestCommittedUSN"), 10, 64)
	if err != nil {
		return st, fmt.Errorf("ldap: the root DSE has no highestCommittedUSN, which incremental reads of Active Directory start from: %w", errNoUSN)
	}
	st.USN, st.Server = usn, root.GetAttributeValue("dsServiceName")
	if st.Server != "" {
		// The invocationId changes when the DC is restored from a backup,
		// which makes its USNs repeat.
		dsa, err := s.one(ctx, st.Server, "(objectClass=*)", []string{"invocationId"})
		if err != nil && !errors.Is(err, provider.ErrPermission) {
			return st, err
		}
		if dsa != nil {
			st.Invocation = guidString(dsa.GetRawAttributeValue("invocationId"))
		}
	}
	return st, nil
}

// from reads a saved state and checks that it can be trusted now.
func (s *Source) from(ctx context.Context, state string) (changeState, error) {
	var st changeState
	b, err := base64.RawURLEncoding.DecodeString(state)
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	switch {
	case err != nil, st.V != stateVersion:
		return st, fmt.Errorf("ldap: %w: the saved change state cannot be read", provider.ErrStateExpired)
	case st.Fingerprint != s.fingerprint:
		return st, fmt.Errorf("ldap: %w: the server, base DN, filters or attributes changed since the state was saved", provider.ErrStateExpired)
	case s.flavour == FlavourAD && st.USN <= 0, s.flavour != FlavourAD && st.Time == "":
		return st, fmt.Errorf("ldap: %w: the saved change state is of another flavour", provider.ErrStateExpired)
	}
	if s.flavour != FlavourAD {
		if _, err := time.Parse(ldapTime, st.Time); err != nil {
			return st, fmt.Errorf("ldap: %w: the saved change state's time cannot be read", provider.ErrStateExpired)
		}
		return st, nil
	}
	now, err := s.roundStart(ctx)
	if errors.Is(err, errNoUSN) {
		return st, fmt.Errorf("ldap: %w: %w", provider.ErrStateExpired, err)
	}
	if err != nil {
		return st, err
	}
	switch {
	case now.Server != st.Server:
		return st, fmt.Errorf("ldap: %w: another domain controller answered (%s, not %s) and USNs are numbered by each", provider.ErrStateExpired, now.Server, st.Server)
	case now.Invocation != st.Invocation:
		return st, fmt.Errorf("ldap: %w: domain controller %s has a new invocationId (restored from a backup?)", provider.ErrStateExpired, st.Server)
	case now.USN < st.USN:
		return st, fmt.Errorf("ldap: %w: domain controller %s's highestCommittedUSN went back from %d to %d", provider.ErrStateExpired, st.Server, st.USN, now.USN)
	}
	return st, nil
}

// changed is the filter of the entries changed since st.
func (s *Source) changed(st changeState) string {
	if s.flavour == FlavourAD {
		return "(uSNChanged>=" + strconv.FormatInt(st.USN+1, 10) + ")"
	}
	return "(modifyTimestamp>=" + st.Time + ")"
}

// LatestUserState implements provider.DeltaSource.
func (s *Source) LatestUserState(ctx context.Context) (string, error) {
	st, err := s.roundStart(ctx)
	if err != nil {
		return "", err
	}
	return st.encode(), nil
}

// roundCursor is where a round is: the state it will hand out (Start),
// the one it reads from (From, "" for a full round), and the paged search.
type roundCursor struct {
	Start string     `json:"st,omitempty"`
	From  string     `json:"fr,omitempty"`
	Phase int        `json:"ph,omitempty"`
	Page  pageCursor `json:"pg"`
}

const (
	phaseGroups = iota
	phaseFilterGroup
	phaseFilterLeft
)

// startRound reads the round's cursor, or starts one from state.
func (s *Source) startRound(ctx context.Context, state string, c provider.Cursor) (roundCursor, *changeState, error) {
	var rc roundCursor
	if c != "" {
		if err := decodeCursor(c, &rc); err != nil {
			return rc, nil, err
		}
	} else {
		rc.From = state
		st, err := s.roundStart(ctx)
		switch {
		case errors.Is(err, errNoUSN) && state == "":
			// A full round still reads everything; it hands out no state.
			s.log.Warn("ldap: every run reads the whole directory", "error", err)
		case err != nil:
			return rc, nil, err
		default:
			rc.Start = st.encode()
		}
	}
	if rc.From == "" {
		return rc, nil, nil
	}
	from, err := s.from(ctx, rc.From)
	if err != nil {
		return rc, nil, err
	}
	return rc, &from, nil
}

// UserChanges reads a page of the users under the user filter: all of
// them from state "", else those changed since.
func (s *Source) UserChanges(ctx context.Context, state string, c provider.Cursor) (provider.ChangePage[provider.UserChange], error) {
	var out provider.ChangePage[provider.UserChange]
	rc, from, err := s.startRound(ctx, state, c)
	if err != nil {
		return out, err
	}
	filter := s.userFilter
	if from != nil {
		filter = "(&" + filter + s.changed(*from) + ")"
	}
	entries, next, err := s.page(ctx, s.searchReq(filter, s.userAttributes()), s.pageSize, rc.Page)
	if err != nil {
		return out, err
	}
	users, err := s.users(ctx, entries)
	if err != nil {
		return out, err
	}
	for _, u := range users {
		out.Items = append(out.Items, provider.UserChange{User: u})
	}
	if next == nil {
		out.State = rc.Start
		return out, nil
	}
	rc.Page = *next
	out.Next = encodeRound(rc)
	return out, nil
}

// groupPage is the groups of a graph page: each carries its members.
const groupPage = 100

// GroupChanges reads a page of the group graph: from state "" every group
// with its direct members (and, scoped by the filter, the group of every
// user under it); else it checks that no group changed since (see the
// package's incremental reads) and, scoped by the filter, reads who came
// under it or left.
func (s *Source) GroupChanges(ctx context.Context, state string, c provider.Cursor) (provider.ChangePage[provider.GroupChange], error) {
	var out provider.ChangePage[provider.GroupChange]
	rc, from, err := s.startRound(ctx, state, c)
	if err != nil {
		return out, err
	}
	if from != nil && rc.Phase == phaseGroups {
		changed, err := s.first(ctx, s.searchReq("(&"+s.groupFilter+s.changed(*from)+")", []string{"1.1"}))
		if err != nil {
			return out, err
		}
		if changed != nil {
			return out, fmt.Errorf("ldap: %w: group %s changed since the last run, and LDAP does not tell which members left: this run reads the directory in full",
				provider.ErrStateExpired, changed.DN)
		}
		rc.Phase = phaseFilterGroup
	}
	var next *pageCursor
	switch rc.Phase {
	case phaseGroups:
		var entries []*goldap.Entry
		entries, next, err = s.page(ctx, s.searchReq(s.groupFilter, []string{s.attrs.ID, s.attrs.GroupName}), min(s.pageSize, groupPage), rc.Page)
		if err != nil {
			return out, err
		}
		for _, e := range entries {
			g, ok := s.group(e)
			if !ok {
				continue
			}
			gc, err := s.graphGroup(ctx, e.DN, g)
			if err != nil {
				return out, err
			}
			out.Items = append(out.Items, gc)
		}
	case phaseFilterGroup, phaseFilterLeft:
		if s.scope != ScopeFilter {
			break
		}
		filter := s.userFilter
		if from != nil {
			filter = "(&" + filter + s.changed(*from) + ")"
			if rc.Phase == phaseFilterLeft {
				filter = "(&(!" + s.userFilter + ")" + s.changed(*from) + ")"
			}
		}
		var entries []*goldap.Entry
		entries, next, err = s.page(ctx, s.searchReq(filter, []string{s.attrs.ID}), s.pageSize, rc.Page)
		if err != nil {
			return out, err
		}
		gc := provider.GroupChange{Group: s.filterGroup(), HasProperties: rc.Page.N == 0 && rc.Phase == phaseFilterGroup}
		for _, e := range entries {
			if id := s.id(e); id != "" {
				gc.Members = append(gc.Members, provider.MemberChange{ID: id, Removed: rc.Phase == phaseFilterLeft})
			}
		}
		out.Items = append(out.Items, gc)
	}
	if next != nil {
		rc.Page = *next
		out.Next = encodeRound(rc)
		return out, nil
	}
	// The phase is done: the next one, if any.
	switch {
	case rc.Phase == phaseGroups && s.scope == ScopeFilter, rc.Phase == phaseFilterGroup && s.scope == ScopeFilter && from != nil:
		rc.Phase++
		rc.Page = pageCursor{}
		out.Next = encodeRound(rc)
		return out, nil
	}
	out.State = rc.Start
	return out, nil
}

// graphGroup is a group of the graph with its direct members, users and
// groups; a member DN that is neither under the base and filters is left
// out (a computer, a contact, a foreign security principal).
func (s *Source) graphGroup(ctx context.Context, dn string, g provider.Group) (provider.GroupChange, error) {
	gc := provider.GroupChange{Group: g, HasProperties: true, Eligible: true}
	vals, err := s.members(ctx, dn)
	if err != nil {
		return gc, err
	}
	refs, err := s.resolve(ctx, vals, true, true)
	if err != nil {
		return gc, err
	}
	seen := map[string]bool{}
	for _, v := range vals {
		r, ok := refs[normDN(v)]
		if !ok || seen[r.id] {
			continue
		}
		seen[r.id] = true
		gc.Members = append(gc.Members, provider.MemberChange{ID: r.id, IsGroup: r.group})
	}
	return gc, nil
}

func encodeRound(rc roundCursor) provider.Cursor {
	b, _ := json.Marshal(rc) //nolint:errchkjson // plain struct
	return base64.RawURLEncoding.EncodeToString(b)
}

// UsersByID reads users by id; those gone are left out.
func (s *Source) UsersByID(ctx context.Context, ids []string) ([]provider.User, error) {
	entries, err := s.byIDs(ctx, s.userFilter, ids, s.userAttributes())
	if err != nil {
		return nil, err
	}
	return s.users(ctx, entries)
}
