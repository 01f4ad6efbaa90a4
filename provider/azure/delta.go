package azure

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	graphusers "github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/usersync/usersync/provider"
)

// Delta queries (PROVIDERS.md): /users/delta and /groups/delta. A state is
// Graph's deltaLink, followed verbatim like a nextLink; a cursor is the
// nextLink within a round. The users' round selects what a user page
// selects (and the manager), so a changed user maps as a listed one does;
// the groups' round selects the properties that decide a group's kind and
// its members, which come as members@delta.

var _ provider.DeltaSource = (*Source)(nil)

var graphErrors = abstractions.ErrorMappings{"XXX": odataerrors.CreateODataErrorFromDiscriminatorValue}

// deltaGroupSelect is what a groups round reads.
var deltaGroupSelect = []string{"id", "displayName", "groupTypes", "mailEnabled", "securityEnabled", "members"}

// stateError turns Graph's refusal of a delta token (410 Gone,
// syncStateNotFound, resyncRequired) into provider.ErrStateExpired.
func (s *Source) stateError(ctx context.Context, err error, what string, kind requestKind) error {
	if f, ok := asGraphFailure(err); ok {
		code := strings.ToLower(f.code)
		if f.status == http.StatusGone || code == "syncstatenotfound" || code == "resyncrequired" {
			return fmt.Errorf("%w: Microsoft Graph refused the delta token of %s (%s)", provider.ErrStateExpired, what, f.text())
		}
	}
	return s.graphError(ctx, err, what, kind)
}

// ReadsFullByChanges implements provider.FullByChanges: Graph documents a
// user's manager only on the users delta function ($select=manager), so a
// full run reads the users as that function's initial round.
func (s *Source) ReadsFullByChanges() bool { return true }

// userDeltaSelect is what a users round tracks: what a user page maps, and
// the manager relationship (manager@delta).
func (s *Source) userDeltaSelect() []string {
	return append(slices.Clone(s.listSelect), "manager")
}

// LatestUserState implements provider.DeltaSource ($deltatoken=latest:
// Graph's "sync from now" for directory objects). The round it starts
// selects what UserChanges selects.
func (s *Source) LatestUserState(ctx context.Context) (string, error) {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	ri, err := s.client.Users().Delta().ToGetRequestInformation(ctx, &graphusers.DeltaRequestBuilderGetRequestConfiguration{
		QueryParameters: &graphusers.DeltaRequestBuilderGetQueryParameters{Select: s.userDeltaSelect()}})
	if err != nil {
		return "", fmt.Errorf("azure: users delta: %w", err)
	}
	u, err := ri.GetUri()
	if err != nil {
		return "", fmt.Errorf("azure: users delta: %w", err)
	}
	documentedDelta(u)
	q := u.Query()
	q.Set("$deltatoken", "latest")
	u.RawQuery = q.Encode()
	page, err := s.userDeltaPage(ctx, u.String(), firstPage)
	if err != nil {
		return "", err
	}
	if page.Delta == "" {
		return "", errEmptyAnswer("users (delta, latest)")
	}
	return page.Delta, nil
}

// userDeltaJSON is a user of a users round: its properties, or its id and
// @removed; manager@delta lists the manager (an @removed entry for one that
// was unset) in an initial round, and in a later one only when it changed.
type userDeltaJSON struct {
	leanUser
	Removed *struct {
		Reason string `json:"reason"`
	} `json:"@removed"`
	ManagerDelta *[]struct {
		ID      string           `json:"id"`
		Removed *json.RawMessage `json:"@removed"`
	} `json:"manager@delta"`
}

type userDeltaPage struct {
	Next  string          `json:"@odata.nextLink"`
	Delta string          `json:"@odata.deltaLink"`
	Value []userDeltaJSON `json:"value"`
}

// userDeltaPage reads one page of a users round from link (a request of
// the round's first page, a nextLink or a deltaLink), through the SDK's
// adapter and decoded by encoding/json (lean.go): an initial round lists
// the whole tenant.
func (s *Source) userDeltaPage(ctx context.Context, link string, kind requestKind) (*userDeltaPage, error) {
	if err := s.onGraph(link, provider.ErrStateExpired); err != nil {
		return nil, err
	}
	ri, err := s.client.Users().Delta().WithUrl(link).ToGetRequestInformation(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("azure: users delta: %w", err)
	}
	raw, err := s.adapter.SendPrimitive(ctx, ri, "[]byte", graphErrors)
	if err != nil {
		return nil, s.stateError(ctx, err, "users (delta)", kind)
	}
	body, _ := raw.([]byte)
	if len(body) == 0 {
		return nil, errEmptyAnswer("users (delta)")
	}
	var page userDeltaPage
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, &provider.InvalidDataError{Object: "Microsoft Graph answer to users (delta)", Reason: err.Error()}
	}
	if page.Next == "" && page.Delta == "" {
		return nil, errEmptyAnswer("users (delta): a last page without a deltaLink")
	}
	return &page, nil
}

// firstUserDeltaLink is the request that starts a users round: $select
// only ($expand and $top are not supported by the delta function), and an
// id filter when the round reads given users.
func (s *Source) firstUserDeltaLink(ctx context.Context, filter string) (string, error) {
	qp := &graphusers.DeltaRequestBuilderGetQueryParameters{Select: s.userDeltaSelect()}
	if filter != "" {
		qp.Filter = &filter
	}
	ri, err := s.client.Users().Delta().ToGetRequestInformation(ctx, &graphusers.DeltaRequestBuilderGetRequestConfiguration{QueryParameters: qp})
	if err != nil {
		return "", fmt.Errorf("azure: users delta: %w", err)
	}
	u, err := ri.GetUri()
	if err != nil {
		return "", fmt.Errorf("azure: users delta: %w", err)
	}
	documentedDelta(u)
	return u.String(), nil
}

// documentedDelta spells the delta function as its documentation does
// (GET /users/delta, /groups/delta); the SDK writes it delta().
func documentedDelta(u *url.URL) {
	if p, ok := strings.CutSuffix(u.Path, "/delta()"); ok {
		u.Path = p + "/delta"
		u.RawPath = ""
	}
}

// UserChanges implements provider.DeltaSource. From state "" it reads the
// initial round (every user of the tenant, each with manager@delta when it
// has a manager); from a deltaLink the users changed since, where a user
// without manager@delta kept its manager (ManagerUnchanged).
func (s *Source) UserChanges(ctx context.Context, state string, c provider.Cursor) (provider.ChangePage[provider.UserChange], error) {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	initial := state == ""
	link, kind := state, firstPage
	switch {
	case c != "":
		link, kind = c, nextPage
	case initial:
		var err error
		if link, err = s.firstUserDeltaLink(ctx, ""); err != nil {
			return provider.ChangePage[provider.UserChange]{}, err
		}
	}
	resp, err := s.userDeltaPage(ctx, link, kind)
	if err != nil {
		return provider.ChangePage[provider.UserChange]{}, err
	}
	users, removed := s.mapDeltaUsers(resp.Value, initial)
	if len(s.perUserAttrs) > 0 && len(users) > 0 {
		if err := s.fillPerUser(ctx, users); err != nil {
			return provider.ChangePage[provider.UserChange]{}, err
		}
	}
	page := provider.ChangePage[provider.UserChange]{Next: resp.Next, State: resp.Delta}
	for _, u := range users {
		page.Items = append(page.Items, provider.UserChange{User: u})
	}
	for _, id := range removed {
		page.Items = append(page.Items, provider.UserChange{User: provider.User{ExternalID: id}, Removed: true})
	}
	return page, nil
}

// mapDeltaUsers maps the users of a users round and lists the removed
// ones. In an initial round a user without manager@delta has no manager;
// in a later one it kept the manager it had.
func (s *Source) mapDeltaUsers(in []userDeltaJSON, initial bool) ([]provider.User, []string) {
	var removed []string
	present := make([]models.Userable, 0, len(in))
	for i := range in {
		if in[i].Removed != nil {
			if in[i].ID != "" {
				removed = append(removed, in[i].ID)
			}
			continue
		}
		present = append(present, in[i].model())
	}
	users := s.mapUsers(present)
	byID := make(map[string]*userDeltaJSON, len(in))
	for i := range in {
		byID[in[i].ID] = &in[i]
	}
	for i := range users {
		d := byID[users[i].ExternalID]
		switch {
		case d.ManagerDelta != nil:
			// The entry that is not @removed is the manager now; only
			// removed entries mean it was unset.
			users[i].ManagerRef = ""
			for _, m := range *d.ManagerDelta {
				if m.Removed == nil && m.ID != "" {
					users[i].ManagerRef = m.ID
				}
			}
		case !initial:
			users[i].ManagerUnchanged = true
		}
	}
	return users, removed
}

// groupDeltaJSON is a group of a groups round. Decoded with encoding/json
// from the bytes the SDK's request adapter returns (its authentication,
// retry and error mapping still apply): the SDK would parse members@delta,
// which its model does not know, into untyped maps, slowly, and an initial
// round lists every membership of the tenant.
type groupDeltaJSON struct {
	ID              string   `json:"id"`
	DisplayName     *string  `json:"displayName"`
	SecurityEnabled *bool    `json:"securityEnabled"`
	MailEnabled     *bool    `json:"mailEnabled"`
	GroupTypes      []string `json:"groupTypes"`
	Removed         *struct {
		Reason string `json:"reason"`
	} `json:"@removed"`
	Members []struct {
		Type    string           `json:"@odata.type"`
		ID      string           `json:"id"`
		Removed *json.RawMessage `json:"@removed"`
	} `json:"members@delta"`
}

// GroupChanges implements provider.DeltaSource.
func (s *Source) GroupChanges(ctx context.Context, state string, c provider.Cursor) (provider.ChangePage[provider.GroupChange], error) {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	link, kind := state, firstPage
	if c != "" {
		link, kind = c, nextPage
	}
	b := s.client.Groups().Delta()
	var (
		ri  *abstractions.RequestInformation
		err error
	)
	if link == "" {
		// $select only: the delta function does not support $top.
		ri, err = b.ToGetRequestInformation(ctx, &groups.DeltaRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.DeltaRequestBuilderGetQueryParameters{Select: deltaGroupSelect}})
		if err == nil {
			var u *url.URL
			if u, err = ri.GetUri(); err == nil {
				documentedDelta(u)
				ri, err = b.WithUrl(u.String()).ToGetRequestInformation(ctx, nil)
			}
		}
	} else {
		if err := s.onGraph(link, provider.ErrStateExpired); err != nil {
			return provider.ChangePage[provider.GroupChange]{}, err
		}
		ri, err = b.WithUrl(link).ToGetRequestInformation(ctx, nil)
	}
	if err != nil {
		return provider.ChangePage[provider.GroupChange]{}, fmt.Errorf("azure: groups delta: %w", err)
	}
	raw, err := s.adapter.SendPrimitive(ctx, ri, "[]byte", graphErrors)
	if err != nil {
		return provider.ChangePage[provider.GroupChange]{}, s.stateError(ctx, err, "groups (delta)", kind)
	}
	body, _ := raw.([]byte)
	if len(body) == 0 {
		return provider.ChangePage[provider.GroupChange]{}, errEmptyAnswer("groups (delta)")
	}
	var resp struct {
		Next  string           `json:"@odata.nextLink"`
		Delta string           `json:"@odata.deltaLink"`
		Value []groupDeltaJSON `json:"value"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return provider.ChangePage[provider.GroupChange]{}, &provider.InvalidDataError{Object: "Microsoft Graph answer to groups (delta)", Reason: err.Error()}
	}
	page := provider.ChangePage[provider.GroupChange]{Next: resp.Next, State: resp.Delta}
	if page.Next == "" && page.State == "" {
		return page, errEmptyAnswer("groups (delta): a last page without a deltaLink")
	}
	for _, g := range resp.Value {
		if g.ID == "" {
			continue
		}
		gc := provider.GroupChange{Group: provider.Group{ID: g.ID}, Removed: g.Removed != nil, HasProperties: g.DisplayName != nil}
		if gc.HasProperties {
			mail, sec := deref(g.MailEnabled), deref(g.SecurityEnabled)
			gc.Group.Name, gc.Group.MailEnabled, gc.Group.SecurityEnabled = *g.DisplayName, mail, sec
			gc.Group.Type = TypeSecurity
			if mail {
				gc.Group.Type = TypeMailEnabledSecurity
			}
			// The picker's rule (Groups): security groups, mail-enabled
			// ones only when the profile includes them, never Microsoft 365.
			gc.Eligible = sec && !slices.Contains(g.GroupTypes, "Unified") && (!mail || s.includeMailEnabled)
		}
		for _, m := range g.Members {
			isUser, isGroup := m.Type == "#microsoft.graph.user", m.Type == "#microsoft.graph.group"
			if m.ID == "" || (!isUser && !isGroup) {
				continue // devices, contacts, service principals: not people
			}
			gc.Members = append(gc.Members, provider.MemberChange{ID: m.ID, IsGroup: isGroup, Removed: m.Removed != nil})
		}
		page.Items = append(page.Items, gc)
	}
	return page, nil
}

// idsPerFilter is how many ids one id-filtered users round names. The
// delta pages disagree on the limit (50 objects, or the URL's length) and
// the query limitations cap an "in" list at 15 expressions: 15 is within
// every reading.
const idsPerFilter = 15

// UsersByID implements provider.DeltaSource: an initial users round
// filtered by id ($filter=id eq '…' or …, the one filter the delta function
// documents), which lists the users as a full round does, managers
// included; per-user properties come from $batch as for any page.
func (s *Source) UsersByID(ctx context.Context, ids []string) ([]provider.User, error) {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	var out []provider.User
	for start := 0; start < len(ids); start += idsPerFilter {
		chunk := ids[start:min(start+idsPerFilter, len(ids))]
		terms := make([]string, 0, len(chunk))
		for _, id := range chunk {
			if !guidPattern.MatchString(id) {
				return nil, &provider.InvalidDataError{Object: "user " + id, Reason: "not an Entra ID object id"}
			}
			terms = append(terms, "id eq '"+id+"'")
		}
		link, err := s.firstUserDeltaLink(ctx, strings.Join(terms, " or "))
		if err != nil {
			return nil, err
		}
		for kind := firstPage; ; kind = nextPage {
			page, err := s.userDeltaPage(ctx, link, kind)
			if err != nil {
				return nil, err
			}
			users, _ := s.mapDeltaUsers(page.Value, true)
			if len(s.perUserAttrs) > 0 && len(users) > 0 {
				if err := s.fillPerUser(ctx, users); err != nil {
					return nil, err
				}
			}
			out = append(out, users...)
			if page.Next == "" {
				break
			}
			link = page.Next
		}
	}
	return out, nil
}

// guidPattern is an object id: it goes into a filter literal, so nothing
// else may pass.
var guidPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
