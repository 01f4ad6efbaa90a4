package okta

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"
)

// Paged listings follow Okta's next links as Okta wrote them. Okta's API
// reference says to follow the Link header "instead of constructing your
// own URLs as query parameters or cursor formats may change without
// notice", and of some listings that the next link is "an opaque value
// (follow it, don't parse it)"; the System Log's after is "system
// generated". So a listing's first page is asked for with its documented
// options, and every later page at the next link of the page before, kept
// in the cursor. The SDK's own paging (Response.NextPage, Next) does not
// do that: it drops the link's scheme and host and merges the first
// request's query into the link's.

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

// ownLink checks that a next link is on the org's own origin and at the
// listing's path before the credentials go with it, and returns what to
// request (path and query, as given). A link comes from an answer, a
// cursor or a saved state, none of which may send the API token or the
// access token elsewhere.
func (s *Source) ownLink(link, path string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", errors.New("the next link cannot be read")
	}
	org, _ := url.Parse(s.org)
	if !u.IsAbs() && u.Host == "" {
		u = org.ResolveReference(u)
	}
	switch {
	case !sameOrigin(u, org):
		return "", fmt.Errorf("the next link points at %s, not at the org %s: refusing to send the credentials there (if the org has another domain, set okta.orgUrl to the one Okta's links use)",
			u.Scheme+"://"+u.Host, s.org)
	case u.User != nil || u.Fragment != "" || u.EscapedPath() != path:
		return "", fmt.Errorf("the next link is not a page of %s on %s", path, s.org)
	}
	return u.RequestURI(), nil
}

// listPage reads one page of the listing at path: the first (link "")
// with params, a later one at link. out is a pointer to the slice the
// page decodes into. next is the page's next link, checked (a link that
// may not be followed must not end up in a cursor or a state either);
// refuse is the error a link off the org's origin or path is wrapped in.
// status is the answer's HTTP status, 0 without one.
func (s *Source) listPage(ctx context.Context, path string, params *query.Params, link string, out any, what string, refuse error) (next string, status int, err error) {
	target := path + params.String()
	if link != "" {
		if target, err = s.ownLink(link, path); err != nil {
			return "", 0, fmt.Errorf("okta: %s: %w: %w", what, refuse, err)
		}
	}
	tctx, tr := withTrace(ctx)
	var resp *okta.Response
	// The request executor adds the org URL (the link's origin, checked
	// above), the SSWS or bearer authorization and the pacer transport.
	re := s.client.CloneRequestExecutor()
	req, err := re.WithAccept("application/json").NewRequest(http.MethodGet, target, nil)
	if err == nil {
		resp, err = re.Do(tctx, req, out)
	}
	status = tr.get().status
	if resp != nil && resp.Response != nil {
		status = resp.StatusCode
	}
	if err := s.check(tctx, tr, resp, err, what, link); err != nil {
		return "", status, err
	}
	if next = nextLink(resp); next != "" {
		if _, err := s.ownLink(next, path); err != nil {
			return "", status, fmt.Errorf("okta: %s: %w: %w", what, refuse, err)
		}
	}
	return next, status, nil
}

// escape is an id as a path segment.
func escape(id string) string { return url.PathEscape(id) }

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
