package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/provider"
)

// Every search that may return more than one entry asks for pages with
// the Simple Paged Results control (RFC 2696), so that no server size
// limit has to be raised for a large directory: slapd's size.prtotal and
// AD's MaxPageSize bound a page, not the whole.

// pageCursor is where a paged search stands. Sess names the pooled
// connection that holds the server's cookie; when that connection is gone
// (another worker, a restart, the idle timeout) the search is run again
// and the N entries already delivered are skipped, provided the N-th is
// still Last: otherwise the order moved under the run and the fetch must
// start again (provider.ErrCursorExpired), rather than skip someone.
type pageCursor struct {
	Sess   string `json:"s,omitempty"`
	Cookie []byte `json:"c,omitempty"`
	N      int    `json:"n,omitempty"`
	Last   string `json:"l,omitempty"`
}

// onePage sends req with the paging control and cookie. A server may
// refuse a page larger than it allows (slapd's size.pr answers
// adminLimitExceeded) where AD shortens it: the size is halved until it
// is accepted.
func onePage(c connection, req goldap.SearchRequest, size int, cookie []byte) ([]*goldap.Entry, []byte, error) {
	base := req.Controls
	var (
		res *goldap.SearchResult
		err error
	)
	for {
		ctl := goldap.NewControlPaging(uint32(size))
		ctl.SetCookie(cookie)
		req.Controls = append(append([]goldap.Control(nil), base...), ctl)
		res, err = c.Search(&req)
		if size > 1 && goldap.IsErrorWithCode(err, goldap.LDAPResultAdminLimitExceeded) {
			size /= 2
			continue
		}
		break
	}
	if err != nil {
		return nil, nil, err
	}
	var next []byte
	if p, ok := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging); ok {
		next = p.Cookie
	}
	return res.Entries, next, nil
}

// page reads the page of req after cur; next is nil after the last page.
func (s *Source) page(ctx context.Context, req goldap.SearchRequest, size int, cur pageCursor) ([]*goldap.Entry, *pageCursor, error) {
	if cur.Sess != "" && len(cur.Cookie) > 0 {
		if c := conns.takePaging(s.key+"/"+cur.Sess, cur.Cookie); c != nil {
			var (
				entries []*goldap.Entry
				cookie  []byte
			)
			err := run(ctx, c, func() (err error) {
				entries, cookie, err = onePage(c, req, size, cur.Cookie)
				return err
			})
			if err == nil {
				return s.afterPage(c, cur.Sess, entries, cookie), cur.next(entries, cookie, cur.Sess), nil
			}
			_ = c.Close()
			if ctx.Err() != nil {
				return nil, nil, err
			}
			s.log.Info("ldap: paged search lost its connection, reading it again up to where it was", "delivered", cur.N, "error", err)
		}
	}
	c, err := s.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	var (
		entries []*goldap.Entry
		cookie  []byte
	)
	skip := cur.N
	err = run(ctx, c, func() error {
		for {
			var err error
			entries, cookie, err = onePage(c, req, size, cookie)
			if err != nil {
				return s.searchError(req, err)
			}
			if skip == 0 {
				return nil
			}
			if skip > len(entries) {
				skip -= len(entries)
				if len(cookie) == 0 {
					return fmt.Errorf("ldap: the search of %s now has fewer entries than were already read: %w", req.BaseDN, provider.ErrCursorExpired)
				}
				continue
			}
			if !strings.EqualFold(entries[skip-1].DN, cur.Last) {
				return fmt.Errorf("ldap: the search of %s no longer lists its entries in the order of the first reading: %w", req.BaseDN, provider.ErrCursorExpired)
			}
			entries, skip = entries[skip:], 0
			if len(entries) > 0 || len(cookie) == 0 {
				return nil
			}
		}
	})
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	sess := newSessionID()
	return s.afterPage(c, sess, entries, cookie), cur.next(entries, cookie, sess), nil
}

// afterPage keeps the connection where the next page will look for it.
func (s *Source) afterPage(c connection, sess string, entries []*goldap.Entry, cookie []byte) []*goldap.Entry {
	if len(cookie) == 0 {
		s.put(c)
	} else {
		conns.putPaging(s.key+"/"+sess, c, cookie)
	}
	return entries
}

func (cur pageCursor) next(entries []*goldap.Entry, cookie []byte, sess string) *pageCursor {
	if len(cookie) == 0 {
		return nil
	}
	n := pageCursor{Sess: sess, Cookie: cookie, N: cur.N + len(entries), Last: cur.Last}
	if len(entries) > 0 {
		n.Last = entries[len(entries)-1].DN
	}
	return &n
}

// first reads the first entry of req, if any, and abandons the rest of
// the paged search by closing its connection (RFC 2696 section 3 lets a
// client abandon a paged search; closing also frees the server's state).
func (s *Source) first(ctx context.Context, req goldap.SearchRequest) (*goldap.Entry, error) {
	c, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	var (
		entries []*goldap.Entry
		cookie  []byte
	)
	err = run(ctx, c, func() (err error) {
		entries, cookie, err = onePage(c, req, 1, nil)
		return err
	})
	if err != nil || len(cookie) > 0 {
		_ = c.Close()
	} else {
		s.put(c)
	}
	if err != nil {
		return nil, s.searchError(req, err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	return entries[0], nil
}

// all reads every page of req on one connection: for searches whose
// result is bounded by the request (a batch of DNs or ids).
func (s *Source) all(ctx context.Context, req goldap.SearchRequest) ([]*goldap.Entry, error) {
	var out []*goldap.Entry
	err := s.do(ctx, func(c connection) error {
		var cookie []byte
		for {
			entries, next, err := onePage(c, req, s.pageSize, cookie)
			if err != nil {
				return s.searchError(req, err)
			}
			out = append(out, entries...)
			if len(next) == 0 {
				return nil
			}
			cookie = next
		}
	})
	return out, err
}

// one reads a single entry by a base search (the root DSE, a group's
// members): no paging, as it returns one entry at most. A missing entry
// is nil.
func (s *Source) one(ctx context.Context, dn, filter string, attrs []string, controls ...goldap.Control) (*goldap.Entry, error) {
	req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, filter, attrs, controls)
	var e *goldap.Entry
	err := s.do(ctx, func(c connection) error {
		res, err := c.Search(req)
		if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			return nil
		}
		if err != nil {
			return s.searchError(*req, err)
		}
		if len(res.Entries) > 0 {
			e = res.Entries[0]
		}
		return nil
	})
	return e, err
}

func (s *Source) searchError(req goldap.SearchRequest, err error) error {
	var le *goldap.Error
	if errors.As(err, &le) && le.ResultCode == goldap.LDAPResultSizeLimitExceeded {
		return fmt.Errorf("ldap: search of %s exceeded the server's size limit although it asked for pages (RFC 2696): "+
			"the server does not page for this account (slapd: size.prtotal; AD: MaxPageSize): %w", req.BaseDN, err)
	}
	if errors.As(err, &le) && le.ResultCode == goldap.LDAPResultNoSuchObject {
		return fmt.Errorf("ldap: %s does not exist on the server (ldap.baseDn): %w", req.BaseDN, s.opError(err))
	}
	return fmt.Errorf("ldap: search %s under %s: %w", req.Filter, req.BaseDN, s.opError(err))
}

// searchReq is a subtree search under the base DN.
func (s *Source) searchReq(filter string, attrs []string) goldap.SearchRequest {
	return *goldap.NewSearchRequest(s.baseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0,
		int(s.requestTimeout.Seconds()), false, filter, attrs, nil)
}
