package azure

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	graphusers "github.com/microsoftgraph/msgraph-sdk-go/users"
	"golang.org/x/sync/errgroup"

	"github.com/usersync/usersync/provider"
)

// usersCursor is where a Users listing stands: the selected group being
// read and Graph's nextLink inside it ("" = its first page).
type usersCursor struct {
	Group string `json:"g"`
	Next  string `json:"n,omitempty"`
}

func (c usersCursor) encode() string {
	b, _ := json.Marshal(c) //nolint:errchkjson // two strings
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeUsersCursor(s string) (usersCursor, error) {
	var c usersCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Group == "" {
		return c, fmt.Errorf("%w: unreadable users cursor", provider.ErrCursorExpired)
	}
	return c, nil
}

// selectedGroups is the scope without blanks and repeats, in profile order.
func selectedGroups(scope provider.Scope) []string {
	out := make([]string, 0, len(scope.GroupIDs))
	for _, g := range scope.GroupIDs {
		if g = strings.TrimSpace(g); g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// advancedQuery is what the OData cast on transitiveMembers is documented
// to need: ConsistencyLevel: eventual and $count=true. Sent on every page,
// nextLinks included, since the SDK's iterator drops initial headers.
func advancedQuery(ri *abstractions.RequestInformation) {
	ri.Headers.TryAdd("ConsistencyLevel", "eventual")
}

// Users returns one page of the transitive user members of the selected
// groups, group after group, without their managers (ManagerUnchanged):
// a sync does not read users here but through the users delta round
// (delta.go), which is where Graph documents the manager. A user in several
// selected groups comes once per group; the engine keeps the first. A
// selected group that no longer exists is an error naming it: skipping it
// would take its members out of scope.
func (s *Source) Users(ctx context.Context, scope provider.Scope, c provider.Cursor) (provider.Page[provider.User], error) {
	ctx = withWaitBudget(ctx, s.retry.MaxWait)
	sel := selectedGroups(scope)
	idx, cur := 0, usersCursor{}
	if c != "" {
		var err error
		if cur, err = decodeUsersCursor(c); err != nil {
			return provider.Page[provider.User]{}, err
		}
		if idx = slices.Index(sel, cur.Group); idx < 0 {
			return provider.Page[provider.User]{}, fmt.Errorf("%w: group %s is no longer selected on the profile", provider.ErrCursorExpired, cur.Group)
		}
	}
	if idx >= len(sel) {
		return provider.Page[provider.User]{}, nil
	}
	gid := sel[idx]
	b := s.client.Groups().ByGroupId(gid).TransitiveMembers().GraphUser()
	var (
		ri  *abstractions.RequestInformation
		err error
	)
	kind := firstPage
	if cur.Next != "" {
		kind = nextPage
		if err := s.onGraph(cur.Next, provider.ErrCursorExpired); err != nil {
			return provider.Page[provider.User]{}, err
		}
		ri, err = b.WithUrl(cur.Next).ToGetRequestInformation(ctx, nil)
	} else {
		ri, err = b.WithUrl(s.castURL(gid, s.listSelect)).ToGetRequestInformation(ctx, nil)
	}
	if err != nil {
		return provider.Page[provider.User]{}, fmt.Errorf("azure: the members of group %s: %w", gid, err)
	}
	advancedQuery(ri)
	// The lean path (lean.go): bytes through the SDK's adapter, decoded by
	// encoding/json.
	raw, err := s.adapter.SendPrimitive(ctx, ri, "[]byte", graphErrors)
	if err != nil {
		if f, ok := asGraphFailure(err); ok && f.status == http.StatusNotFound && f.code == "Request_ResourceNotFound" {
			return provider.Page[provider.User]{}, selectedGroupMissing(gid, f)
		}
		return provider.Page[provider.User]{}, s.graphError(ctx, err, "the members of group "+gid, kind)
	}
	body, _ := raw.([]byte)
	if len(body) == 0 {
		return provider.Page[provider.User]{}, errEmptyAnswer("the members of group " + gid)
	}
	nextLink, page, err := decodeUsers(body)
	if err != nil {
		return provider.Page[provider.User]{}, &provider.InvalidDataError{Object: "Microsoft Graph answer to the members of group " + gid,
			Reason: err.Error()}
	}
	users := s.mapUsers(page)
	for i := range users {
		users[i].ManagerUnchanged = true
	}
	if len(s.perUserAttrs) > 0 && len(users) > 0 {
		if err := s.fillPerUser(ctx, users); err != nil {
			return provider.Page[provider.User]{}, err
		}
	}
	var next string
	switch {
	case nextLink != "":
		next = usersCursor{Group: gid, Next: nextLink}.encode()
	case idx+1 < len(sel):
		next = usersCursor{Group: sel[idx+1]}.encode()
	}
	return provider.Page[provider.User]{Items: users, Next: next}, nil
}

// castURL is the first page of a group's transitive user members, spelled
// as the documentation spells the cast (the SDK writes graph.user), with
// the advanced query's $count.
func (s *Source) castURL(gid string, sel []string) string {
	q := url.Values{"$select": {strings.Join(sel, ",")}, "$top": {strconv.Itoa(int(s.pageSize))}, "$count": {"true"}}
	return s.graphBase + "/groups/" + url.PathEscape(gid) + "/transitiveMembers/microsoft.graph.user?" + q.Encode()
}

// selectedGroupMissing is a selected group Graph answers 404 for: deleted,
// or hidden from the app. Its members cannot be read, and reading the
// scope without them would disable them all.
func selectedGroupMissing(gid string, f graphFailure) error {
	return fmt.Errorf("azure: selected group %s was not found in Entra ID (deleted, or not readable by this app): %w; "+
		"nobody was disabled: remove the group from the profile or restore it (%s)", gid, provider.ErrNotFound, f.text())
}

// mapUsers turns a Graph page into provider users, once each.
func (s *Source) mapUsers(in []models.Userable) []provider.User {
	out := make([]provider.User, 0, len(in))
	seen := make(map[string]bool, len(in))
	username := getters[s.usernameAttr]
	for _, u := range in {
		id := deref(u.GetId())
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		pu := provider.User{ExternalID: id, FirstName: deref(u.GetGivenName()), LastName: deref(u.GetSurname()),
			Email: deref(u.GetMail()),
			// Graph leaves accountEnabled null only for an app limited to
			// User.ReadBasic.All; disabling everyone on that would be the
			// worst reading of an unknown.
			Active: u.GetAccountEnabled() == nil || *u.GetAccountEnabled()}
		pu.Username, _ = username(u)
		if len(s.listAttrs)+len(s.perUserAttrs) > 0 {
			pu.Attributes = make(map[string]string, len(s.listAttrs)+len(s.perUserAttrs))
			for _, a := range s.listAttrs {
				if v, ok := a.get(u); ok {
					pu.Attributes[a.field] = v
				}
			}
		}
		out = append(out, pu)
	}
	return out
}

// maxBatch is Graph's limit of requests in one $batch.
const maxBatch = 20

// fillPerUser reads the mapped per-user-only properties of users with
// $batch, 20 users a request, perUserBatches requests at a time. An inner
// 429 or 5xx is retried after its Retry-After within the request budget
// (shared by the batches); a user deleted since the page was read (404)
// keeps no per-user attributes and leaves with the next run.
func (s *Source) fillPerUser(ctx context.Context, users []provider.User) error {
	sel := append([]string{"id"}, s.perUserSelect...)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(perUserBatches)
	for start := 0; start < len(users); start += maxBatch {
		pending := make([]int, 0, maxBatch)
		for i := start; i < min(start+maxBatch, len(users)); i++ {
			pending = append(pending, i)
		}
		// Each batch fills its own users: no two write the same one.
		g.Go(func() error { return s.fillBatch(ctx, users, pending, sel) })
	}
	return g.Wait()
}

// perUserBatches is how many $batch requests of per-user reads are in
// flight at once. Graph's identity and access limit for an application
// and tenant is 3,500 to 8,000 resource units per 10 seconds by tenant
// size, a GET of a user costing 1 ("Microsoft Graph service-specific
// throttling limits"): four batches of 20 at Graph's usual answer times
// stay well under the smallest, and a 429 is still honoured item by item.
const perUserBatches = 4

// The SDK creates its error-mapping registry on first use, reading the
// singleton before taking its lock, so the first concurrent $batch sends
// race on it (the race detector sees it). Creating it here, before any
// request, leaves the batches only reads of it.
func init() { msgraphcore.GetErrorFactoryFromRegistry("") }

func (s *Source) fillBatch(ctx context.Context, users []provider.User, pending []int, sel []string) error {
	for attempt := 0; len(pending) > 0; attempt++ {
		retry, wait, err := s.batchOnce(ctx, users, pending, sel)
		if err != nil {
			return err
		}
		if len(retry) == 0 {
			return nil
		}
		if attempt >= s.retry.MaxRetries || !budgetOf(ctx, s.retry).take(wait) {
			return &provider.ThrottledError{RetryAfter: wait,
				Message: fmt.Sprintf("Microsoft Graph kept throttling the per-user reads of %d users", len(retry))}
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		pending = retry
	}
	return nil
}

// batchOnce sends one $batch for users[pending] and fills what came back;
// it returns the users to ask again and how long to wait first.
func (s *Source) batchOnce(ctx context.Context, users []provider.User, pending []int, sel []string) ([]int, time.Duration, error) {
	batch := msgraphcore.NewBatchRequest(s.adapter)
	step := make(map[string]int, len(pending))
	for _, i := range pending {
		ri, err := s.client.Users().ByUserId(users[i].ExternalID).ToGetRequestInformation(ctx,
			&graphusers.UserItemRequestBuilderGetRequestConfiguration{
				QueryParameters: &graphusers.UserItemRequestBuilderGetQueryParameters{Select: sel}})
		if err != nil {
			return nil, 0, fmt.Errorf("azure: build per-user request: %w", err)
		}
		item, err := batch.AddBatchRequestStep(*ri)
		if err != nil {
			return nil, 0, fmt.Errorf("azure: build $batch: %w", err)
		}
		step[deref(item.GetId())] = i
	}
	resp, err := batch.Send(ctx, s.adapter)
	if err != nil {
		return nil, 0, s.graphError(ctx, err, "per-user properties ($batch)", firstPage)
	}
	var retry []int
	var wait time.Duration
	answered := make(map[string]bool, len(step))
	for _, item := range resp.GetResponses() {
		id := deref(item.GetId())
		i, ok := step[id]
		if !ok {
			continue
		}
		answered[id] = true
		status := int(deref(item.GetStatus()))
		switch {
		case status >= 200 && status < 300:
			u, err := msgraphcore.GetBatchResponseById[models.Userable](resp, id, models.CreateUserFromDiscriminatorValue)
			if err != nil {
				return nil, 0, &provider.InvalidDataError{Object: "user " + users[i].ExternalID, Reason: "unreadable per-user properties: " + err.Error()}
			}
			for _, a := range s.perUserAttrs {
				if v, ok := a.get(u); ok {
					users[i].Attributes[a.field] = v
				}
			}
		case status == http.StatusNotFound:
		case retryableStatus(status):
			retry = append(retry, i)
			d := retryAfter(itemHeader(item.GetHeaders()), s.retry.BaseDelay)
			wait = max(wait, d)
		default:
			f := innerFailure(status, item.GetBody())
			return nil, 0, s.graphError(ctx, f, "the per-user properties of user "+users[i].ExternalID, firstPage)
		}
	}
	for id, i := range step {
		if !answered[id] {
			retry = append(retry, i) // a batch answer missing a step: ask again
		}
	}
	slices.Sort(retry)
	if len(retry) > 0 && wait == 0 {
		wait = s.retry.BaseDelay
	}
	return retry, wait, nil
}

func itemHeader(h msgraphcore.RequestHeader) http.Header {
	out := http.Header{}
	for k, v := range h {
		out.Set(k, v)
	}
	return out
}
