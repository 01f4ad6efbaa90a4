package okta

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"

	"github.com/usersync/usersync/provider"
)

// Groups lists the groups assigned to the configured app, or every group
// of the org without one; the picker and group sync see the same set.
// Search is Okta's q: a case-insensitive prefix of the name.
func (s *Source) Groups(ctx context.Context, q provider.GroupQuery, c provider.Cursor) (provider.Page[provider.Group], error) {
	pos, err := decodePosition(c)
	if err != nil {
		return provider.Page[provider.Group]{}, err
	}
	search := strings.TrimSpace(q.Search)
	if s.appID != "" {
		return s.appGroups(ctx, search, pos.Link)
	}
	// With q Okta does not page ("paging and searching are mutually
	// exclusive"): a search is one page, which is what a picker shows.
	var groups []*okta.Group
	next, _, err := s.listPage(ctx, "/api/v1/groups", &query.Params{Q: search, Limit: groupPageSize}, pos.Link,
		&groups, "list groups", provider.ErrInvalidData)
	if err != nil {
		return provider.Page[provider.Group]{}, err
	}
	page := provider.Page[provider.Group]{Items: make([]provider.Group, 0, len(groups))}
	for _, g := range groups {
		if g != nil {
			page.Items = append(page.Items, mapGroup(g))
		}
	}
	return withNext(page, next), nil
}

// appGroups lists the app's group assignments, then reads each group for
// its name and type, which an assignment does not carry. A group deleted
// between the two reads is left out.
func (s *Source) appGroups(ctx context.Context, search, link string) (provider.Page[provider.Group], error) {
	var assigned []*okta.ApplicationGroupAssignment
	next, _, err := s.listPage(ctx, "/api/v1/apps/"+escape(s.appID)+"/groups", &query.Params{Q: search, Limit: appGroupPageSize},
		link, &assigned, "list the groups assigned to app "+s.appID+" (okta.appId)", provider.ErrInvalidData)
	if err != nil {
		return provider.Page[provider.Group]{}, err
	}
	page := provider.Page[provider.Group]{Items: make([]provider.Group, 0, len(assigned))}
	for _, a := range assigned {
		if a == nil || a.Id == "" {
			continue
		}
		gctx, gtr := withTrace(ctx)
		g, gresp, err := s.client.Group.GetGroup(gctx, url.PathEscape(a.Id))
		err = s.check(gctx, gtr, gresp, err, "read group "+a.Id, "")
		var gone *objectNotFound
		switch {
		case errors.As(err, &gone):
			s.log.Debug("okta: an assigned group vanished while listing", "org", s.org, "group", a.Id)
			continue
		case err != nil:
			return provider.Page[provider.Group]{}, err
		}
		page.Items = append(page.Items, mapGroup(g))
	}
	return withNext(page, next), nil
}

func withNext(page provider.Page[provider.Group], next string) provider.Page[provider.Group] {
	if next != "" {
		page.Next = position{Link: next}.encode()
	}
	return page
}

func mapGroup(g *okta.Group) provider.Group {
	out := provider.Group{ID: g.Id, Type: g.Type}
	if g.Profile != nil {
		out.Name = g.Profile.Name
	}
	return out
}
