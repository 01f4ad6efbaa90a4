package ldap

import (
	"context"
	"fmt"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/provider"
)

// ownStatePager is a directory whose paged search goes on from the
// connection's own position, whatever cookie it is sent: RFC 2696 makes
// the cookie opaque and leaves an old one's meaning to the server.
type ownStatePager struct {
	entries []*goldap.Entry
	pos     int
	answers int
}

func (p *ownStatePager) Close() error { return nil }

func (p *ownStatePager) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	ctl, ok := goldap.FindControl(req.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
	if !ok || req.Scope == goldap.ScopeBaseObject {
		return &goldap.SearchResult{}, nil
	}
	end := min(p.pos+int(ctl.PagingSize), len(p.entries))
	res := &goldap.SearchResult{Entries: p.entries[p.pos:end]}
	p.pos = end
	next := goldap.NewControlPaging(ctl.PagingSize)
	if end < len(p.entries) {
		p.answers++
		next.SetCookie([]byte(fmt.Sprint("cookie-", p.answers)))
	}
	res.Controls = append(res.Controls, next)
	return res, nil
}

// A page read and not committed (the fetch's read-ahead dropped at the
// end of a call, a failed write) moved the server past the cursor the run
// holds: asked for that cursor again, the source reads the page after it,
// not the one after the page it dropped.
func TestPagedSearchResumesAtTheCursorAfterAPageWasReadAndDropped(t *testing.T) {
	var entries []*goldap.Entry
	for i := range 7 {
		sam := fmt.Sprintf("user%d", i)
		e := &goldap.Entry{DN: fmt.Sprintf("CN=%s,OU=People,DC=corp,DC=example,DC=test", sam)}
		for k, v := range adUser([]byte(fmt.Sprintf("guid-%010d", i)), sam, 512, int64(100+i), "") {
			a := &goldap.EntryAttribute{Name: k, Values: v}
			for _, s := range v {
				a.ByteValues = append(a.ByteValues, []byte(s))
			}
			e.Attributes = append(e.Attributes, a)
		}
		entries = append(entries, e)
	}
	src := mustOpen(t, Config{URL: "ldaps://dc1.corp.example.test", BindDN: "CN=svc-usersync,OU=Service,DC=corp,DC=example,DC=test",
		BindPassword: "secret", BaseDN: "DC=corp,DC=example,DC=test", Flavour: FlavourAD, PageSize: 2})
	dials := 0
	src.dial = func(context.Context) (connection, error) {
		dials++
		return &ownStatePager{entries: entries}, nil
	}
	t.Cleanup(func() { dropPool(t) })
	ctx := context.Background()
	names := func(p provider.Page[provider.User]) []string {
		var out []string
		for _, u := range p.Items {
			out = append(out, u.Username)
		}
		return out
	}

	first, err := src.Users(ctx, provider.Scope{}, "")
	if err != nil || first.Next == "" {
		t.Fatalf("first page: %v, next %q", err, first.Next)
	}
	second, err := src.Users(ctx, provider.Scope{}, first.Next)
	if err != nil {
		t.Fatal(err)
	}
	again, err := src.Users(ctx, provider.Scope{}, first.Next)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names(again)) != fmt.Sprint(names(second)) {
		t.Fatalf("the page after the cursor read again: %v, want %v (a page skipped)", names(again), names(second))
	}
	// The committed path still reuses the connection: reading on from the
	// page just read needs no new search.
	before := dials
	if _, err := src.Users(ctx, provider.Scope{}, again.Next); err != nil {
		t.Fatal(err)
	}
	if dials != before {
		t.Errorf("reading on from the last page dialled again (%d dials, was %d)", dials, before)
	}
}
