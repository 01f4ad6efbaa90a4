package azure

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
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

// LatestUserState implements provider.DeltaSource ($deltatoken=latest:
// Graph's "sync from now" for directory objects).
func (s *Source) LatestUserState(ctx context.Context) (string, error) {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	ri, err := s.userDeltaRequest(ctx, "")
	if err != nil {
		return "", err
	}
	u, err := ri.GetUri()
	if err != nil {
		return "", fmt.Errorf("azure: users delta: %w", err)
	}
	sep := "?"
	if u.RawQuery != "" {
		sep = "&"
	}
	resp, err := s.client.Users().Delta().WithUrl(u.String()+sep+"$deltatoken=latest").GetAsDeltaGetResponse(ctx, nil)
	if err != nil {
		return "", s.graphError(ctx, err, "users (delta)", firstPage)
	}
	if resp == nil || deref(resp.GetOdataDeltaLink()) == "" {
		return "", errEmptyAnswer("users (delta, latest)")
	}
	return *resp.GetOdataDeltaLink(), nil
}

func (s *Source) userDeltaRequest(ctx context.Context, link string) (*abstractions.RequestInformation, error) {
	b := s.client.Users().Delta()
	if link != "" {
		return b.WithUrl(link).ToGetRequestInformation(ctx, nil)
	}
	top := s.pageSize
	return b.ToGetRequestInformation(ctx, &graphusers.DeltaRequestBuilderGetRequestConfiguration{
		QueryParameters: &graphusers.DeltaRequestBuilderGetQueryParameters{Select: s.listSelect, Expand: managerExpand, Top: &top}})
}

// UserChanges implements provider.DeltaSource. Changes are few, so the
// SDK's parsing is used as it is.
func (s *Source) UserChanges(ctx context.Context, state string, c provider.Cursor) (provider.ChangePage[provider.UserChange], error) {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	link, kind := state, firstPage
	if c != "" {
		link, kind = c, nextPage
	}
	b := s.client.Users().Delta()
	var (
		resp graphusers.DeltaGetResponseable
		err  error
	)
	if link == "" {
		top := s.pageSize
		resp, err = b.GetAsDeltaGetResponse(ctx, &graphusers.DeltaRequestBuilderGetRequestConfiguration{
			QueryParameters: &graphusers.DeltaRequestBuilderGetQueryParameters{Select: s.listSelect, Expand: managerExpand, Top: &top}})
	} else {
		resp, err = b.WithUrl(link).GetAsDeltaGetResponse(ctx, nil)
	}
	if err != nil {
		return provider.ChangePage[provider.UserChange]{}, s.stateError(ctx, err, "users (delta)", kind)
	}
	if resp == nil {
		return provider.ChangePage[provider.UserChange]{}, errEmptyAnswer("users (delta)")
	}
	var present []models.Userable
	var removed []string
	for _, u := range resp.GetValue() {
		if _, gone := u.GetAdditionalData()["@removed"]; gone {
			if id := deref(u.GetId()); id != "" {
				removed = append(removed, id)
			}
			continue
		}
		present = append(present, u)
	}
	users := s.mapUsers(present)
	if len(s.perUserAttrs) > 0 && len(users) > 0 {
		if err := s.fillPerUser(ctx, users); err != nil {
			return provider.ChangePage[provider.UserChange]{}, err
		}
	}
	page := provider.ChangePage[provider.UserChange]{Next: deref(resp.GetOdataNextLink()), State: deref(resp.GetOdataDeltaLink())}
	for _, u := range users {
		page.Items = append(page.Items, provider.UserChange{User: u})
	}
	for _, id := range removed {
		page.Items = append(page.Items, provider.UserChange{User: provider.User{ExternalID: id}, Removed: true})
	}
	if page.Next == "" && page.State == "" {
		return page, errEmptyAnswer("users (delta): a last page without a deltaLink")
	}
	return page, nil
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
		top := s.pageSize
		ri, err = b.ToGetRequestInformation(ctx, &groups.DeltaRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.DeltaRequestBuilderGetQueryParameters{Select: deltaGroupSelect, Top: &top}})
	} else {
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

// UsersByID implements provider.DeltaSource: one GET per user, 20 to a
// $batch, with what a user page and the per-user reads select.
func (s *Source) UsersByID(ctx context.Context, ids []string) ([]provider.User, error) {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	sel := slices.Clone(s.listSelect)
	sel = append(sel, s.perUserSelect...)
	var out []provider.User
	for start := 0; start < len(ids); start += maxBatch {
		chunk := ids[start:min(start+maxBatch, len(ids))]
		found, err := s.usersBatch(ctx, chunk, sel)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}

func (s *Source) usersBatch(ctx context.Context, ids, sel []string) ([]provider.User, error) {
	pending := slices.Clone(ids)
	var got []models.Userable
	for attempt := 0; len(pending) > 0; attempt++ {
		batch := msgraphcore.NewBatchRequest(s.adapter)
		step := make(map[string]string, len(pending))
		for _, id := range pending {
			ri, err := s.client.Users().ByUserId(id).ToGetRequestInformation(ctx, &graphusers.UserItemRequestBuilderGetRequestConfiguration{
				QueryParameters: &graphusers.UserItemRequestBuilderGetQueryParameters{Select: sel, Expand: managerExpand}})
			if err != nil {
				return nil, fmt.Errorf("azure: build user request: %w", err)
			}
			item, err := batch.AddBatchRequestStep(*ri)
			if err != nil {
				return nil, fmt.Errorf("azure: build $batch: %w", err)
			}
			step[deref(item.GetId())] = id
		}
		resp, err := batch.Send(ctx, s.adapter)
		if err != nil {
			return nil, s.graphError(ctx, err, "users by id ($batch)", firstPage)
		}
		var retry []string
		var wait = s.retry.BaseDelay
		answered := map[string]bool{}
		for _, item := range resp.GetResponses() {
			sid := deref(item.GetId())
			id, ok := step[sid]
			if !ok {
				continue
			}
			answered[sid] = true
			status := int(deref(item.GetStatus()))
			switch {
			case status >= 200 && status < 300:
				u, err := msgraphcore.GetBatchResponseById[models.Userable](resp, sid, models.CreateUserFromDiscriminatorValue)
				if err != nil {
					return nil, &provider.InvalidDataError{Object: "user " + id, Reason: "unreadable: " + err.Error()}
				}
				got = append(got, u)
			case status == http.StatusNotFound:
				// Deleted since the change was read: the next run sees it go.
			case retryableStatus(status):
				retry = append(retry, id)
				wait = max(wait, retryAfter(itemHeader(item.GetHeaders()), s.retry.BaseDelay))
			default:
				return nil, s.graphError(ctx, innerFailure(status, item.GetBody()), "user "+id, firstPage)
			}
		}
		for sid, id := range step {
			if !answered[sid] {
				retry = append(retry, id)
			}
		}
		if len(retry) == 0 {
			break
		}
		if attempt >= s.retry.MaxRetries || !budgetOf(ctx, s.retry).take(wait) {
			return nil, &provider.ThrottledError{RetryAfter: wait,
				Message: fmt.Sprintf("Microsoft Graph kept throttling the reads of %d users", len(retry))}
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		pending = retry
	}
	users := s.mapUsers(got)
	byID := make(map[string]models.Userable, len(got))
	for _, u := range got {
		byID[deref(u.GetId())] = u
	}
	for i := range users {
		for _, a := range s.perUserAttrs {
			if v, ok := a.get(byID[users[i].ExternalID]); ok {
				users[i].Attributes[a.field] = v
			}
		}
	}
	return users, nil
}
