package azure

import (
	"context"
	"slices"
	"strings"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	graphusers "github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/usersync/usersync/provider"
)

// Group types a Group carries.
const (
	TypeSecurity            = "security"
	TypeMailEnabledSecurity = "mailEnabledSecurity"
)

// groupFilter asks Graph for security groups, and mail-enabled ones only
// when the profile says so. Microsoft 365 groups are always mail-enabled,
// so the first filter excludes them and distribution groups alike; the
// second lets security-enabled Microsoft 365 groups through, which the
// listing drops itself (excluding them on the server would be an advanced
// query).
func (s *Source) groupFilter() string {
	if s.includeMailEnabled {
		return "securityEnabled eq true"
	}
	return "securityEnabled eq true and mailEnabled eq false"
}

var groupSelect = []string{"id", "displayName", "groupTypes", "mailEnabled", "securityEnabled"}

// Groups lists the groups a profile may select and group sync considers:
// security groups, plus mail-enabled security groups when the profile
// includes them; never Microsoft 365 or distribution groups. A search
// matches the start of any word of the name ($search, which needs the
// ConsistencyLevel header on every page, nextLinks included). The cursor
// is Graph's nextLink; the query must be the same on every page.
func (s *Source) Groups(ctx context.Context, q provider.GroupQuery, c provider.Cursor) (provider.Page[provider.Group], error) {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	search := searchTerm(q.Search)
	var headers *abstractions.RequestHeaders
	if search != "" {
		headers = abstractions.NewRequestHeaders()
		headers.Add("ConsistencyLevel", "eventual")
	}
	var (
		resp models.GroupCollectionResponseable
		err  error
	)
	kind := firstPage
	if c != "" {
		kind = nextPage
		if err := s.onGraph(c, provider.ErrCursorExpired); err != nil {
			return provider.Page[provider.Group]{}, err
		}
		resp, err = s.client.Groups().WithUrl(c).Get(ctx, &groups.GroupsRequestBuilderGetRequestConfiguration{Headers: headers})
	} else {
		filter, top := s.groupFilter(), s.pageSize
		qp := &groups.GroupsRequestBuilderGetQueryParameters{Filter: &filter, Select: groupSelect, Top: &top}
		if search != "" {
			quoted, count := `"displayName:`+search+`"`, true
			qp.Search, qp.Count = &quoted, &count
		}
		resp, err = s.client.Groups().Get(ctx, &groups.GroupsRequestBuilderGetRequestConfiguration{Headers: headers, QueryParameters: qp})
	}
	if err != nil {
		return provider.Page[provider.Group]{}, s.graphError(ctx, err, "groups", kind)
	}
	if resp == nil {
		return provider.Page[provider.Group]{}, errEmptyAnswer("groups")
	}
	page := provider.Page[provider.Group]{Next: deref(resp.GetOdataNextLink())}
	for _, g := range resp.GetValue() {
		mail, sec := deref(g.GetMailEnabled()), deref(g.GetSecurityEnabled())
		switch {
		case !sec, slices.Contains(g.GetGroupTypes(), "Unified"), mail && !s.includeMailEnabled:
			continue
		}
		typ := TypeSecurity
		if mail {
			typ = TypeMailEnabledSecurity
		}
		page.Items = append(page.Items, provider.Group{ID: deref(g.GetId()), Name: deref(g.GetDisplayName()),
			Type: typ, MailEnabled: mail, SecurityEnabled: sec})
	}
	return page, nil
}

// searchTerm keeps a search inside $search's quotes: a quote or backslash
// would end or escape them.
func searchTerm(s string) string {
	return strings.TrimSpace(strings.NewReplacer(`"`, "", `\`, "").Replace(s))
}

// Members lists the transitive user members of a group. The OData cast is
// an advanced query (ConsistencyLevel: eventual and $count=true), the
// header sent again on every nextLink. The cursor is Graph's nextLink.
func (s *Source) Members(ctx context.Context, groupID string, c provider.Cursor) (provider.Page[provider.Member], error) {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	b := s.client.Groups().ByGroupId(groupID).TransitiveMembers().GraphUser()
	headers := abstractions.NewRequestHeaders()
	headers.Add("ConsistencyLevel", "eventual")
	var (
		resp models.UserCollectionResponseable
		err  error
	)
	kind := firstPage
	if c != "" {
		kind = nextPage
		if err := s.onGraph(c, provider.ErrCursorExpired); err != nil {
			return provider.Page[provider.Member]{}, err
		}
		resp, err = b.WithUrl(c).Get(ctx, &groups.ItemTransitiveMembersGraphUserRequestBuilderGetRequestConfiguration{Headers: headers})
	} else {
		resp, err = b.WithUrl(s.castURL(groupID, []string{"id"})).Get(ctx,
			&groups.ItemTransitiveMembersGraphUserRequestBuilderGetRequestConfiguration{Headers: headers})
	}
	if err != nil {
		return provider.Page[provider.Member]{}, s.graphError(ctx, err, "the members of group "+groupID, kind)
	}
	if resp == nil {
		return provider.Page[provider.Member]{}, errEmptyAnswer("the members of group " + groupID)
	}
	page := provider.Page[provider.Member]{Next: deref(resp.GetOdataNextLink()), Items: make([]provider.Member, 0, len(resp.GetValue()))}
	for _, u := range resp.GetValue() {
		if id := deref(u.GetId()); id != "" {
			page.Items = append(page.Items, provider.Member{UserID: id})
		}
	}
	return page, nil
}

// Test signs in and reads what a sync reads, one object each, so that a
// missing permission is named before a run fails on it: one group (the
// groups and their members: GroupMember.Read.All), one user (User.Read.All),
// and that user again as a sync reads it, through the users delta function
// with its manager and every mapped property (the delta function, the
// manager and most properties need User.Read.All; User.ReadBasic.All lists
// users but is not enough), per-user properties by $batch when mapped.
// Every request is one a sync sends (docs/providers.md).
func (s *Source) Test(ctx context.Context) error {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	if _, err := s.cred.GetToken(ctx, tokenOptions(s.scopes)); err != nil {
		return s.graphError(ctx, err, "sign-in", firstPage)
	}
	top := int32(1)
	filter := s.groupFilter()
	if _, err := s.client.Groups().Get(ctx, &groups.GroupsRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.GroupsRequestBuilderGetQueryParameters{Filter: &filter, Select: []string{"id"}, Top: &top}}); err != nil {
		return needsPermission(s.graphError(ctx, err, "groups", firstPage), err, "read groups and their members", permGroupMembers)
	}
	users, err := s.client.Users().Get(ctx, &graphusers.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &graphusers.UsersRequestBuilderGetQueryParameters{Select: []string{"id"}, Top: &top}})
	if err != nil {
		return needsPermission(s.graphError(ctx, err, "users", firstPage), err, "read users", permUsers)
	}
	if users == nil || len(users.GetValue()) == 0 {
		return nil // an empty tenant: nothing more to read
	}
	id := deref(users.GetValue()[0].GetId())
	if !guidPattern.MatchString(id) {
		return nil
	}
	if _, err := s.UsersByID(ctx, []string{id}); err != nil {
		return needsPermission(err, nil, "read users through the users delta function with their manager and the mapped properties ("+
			strings.Join(append(s.userDeltaSelect(), s.perUserSelect...), ", ")+")", permUsersFull)
	}
	return nil
}
