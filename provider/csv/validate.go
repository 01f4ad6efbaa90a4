package csv

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/rules"
)

// Report is what Validate learnt from a full pass over the file.
type Report struct {
	// Rows is the number of data records (blank lines and rows of empty
	// cells are not records).
	Rows int
	// Invalid is the number of rows Users marks Invalid (missing field,
	// bad email, no password), duplicates not included.
	Invalid int
	// Duplicates maps each username (lowercase: usernames are unique
	// case-insensitively) found on more than one row to those rows' lines,
	// in file order.
	Duplicates map[string][]int
}

// DuplicateLines gives, for every row whose username is also on another
// row, the reason to record against that row, e.g.
// `duplicate username "jdoe" (lines 3, 9)`. Users does not see duplicates
// (it keeps no memory of earlier pages), so the engine applies this to the
// staged rows by User.Line: every row of a duplicated username is skipped,
// because the file does not say which one is right.
func (r *Report) DuplicateLines() map[int]string {
	out := map[int]string{}
	for name, lines := range r.Duplicates {
		ls := make([]string, len(lines))
		for i, l := range lines {
			ls[i] = strconv.Itoa(l)
		}
		reason := fmt.Sprintf("duplicate username %q (lines %s)", name, strings.Join(ls, ", "))
		for _, l := range lines {
			out[l] = reason
		}
	}
	return out
}

// Validate reads the whole file once, before a run applies anything. A
// broken structure anywhere in the file is returned as the error (a
// *provider.InvalidDataError naming the line), so a file that breaks on
// its last line changes nothing rather than half a directory. Memory grows
// only with the set of usernames.
func (s *Source) Validate(ctx context.Context) (*Report, error) {
	st, lay, err := s.begin(ctx, "")
	if err != nil {
		return nil, err
	}
	defer st.close()
	rep := &Report{Duplicates: map[string][]int{}}
	first := map[string]int{} // username -> line of its first row
	for {
		if rep.Rows%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, line, err := st.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		rep.Rows++
		u := s.user(lay, rec, line)
		if u.Invalid != "" {
			rep.Invalid++
		}
		if u.Username == "" {
			continue
		}
		key := u.ExternalID
		if l, ok := first[key]; ok {
			if len(rep.Duplicates[key]) == 0 {
				rep.Duplicates[key] = []int{l}
			}
			rep.Duplicates[key] = append(rep.Duplicates[key], line)
			continue
		}
		first[key] = line
	}
	if rep.Rows == 0 {
		return nil, errNoRows(st.headerLine)
	}
	return rep, nil
}

// Groups lists the distinct group names of the groups column, for the
// group picker. It reads the whole file on every call (the distinct names
// are few, the file is not kept); the cursor is the last id returned.
func (s *Source) Groups(ctx context.Context, q provider.GroupQuery, c provider.Cursor) (provider.Page[provider.Group], error) {
	var page provider.Page[provider.Group]
	after := ""
	if c != "" {
		var ok bool
		if after, ok = strings.CutPrefix(c, "g="); !ok || after == "" {
			return page, fmt.Errorf("%w: csv group cursor %q is malformed", provider.ErrCursorExpired, c)
		}
	}
	if s.groupsCol == "" {
		return page, nil
	}
	st, lay, err := s.begin(ctx, "")
	if err != nil {
		return page, err
	}
	defer st.close()
	search := strings.ToLower(strings.TrimSpace(q.Search))
	names := map[string]string{} // id -> first spelling seen
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return page, err
			}
		}
		rec, _, err := st.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return page, err
		}
		if lay.groups >= len(rec) {
			continue
		}
		for _, g := range splitGroups(strings.TrimSpace(rec[lay.groups])) {
			id := strings.ToLower(g)
			if _, ok := names[id]; ok || id <= after || !strings.Contains(id, search) ||
				rules.TextProblem(g, rules.MaxNameLength, false) != "" {
				continue
			}
			names[id] = g
		}
	}
	ids := make([]string, 0, len(names))
	for id := range names {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) > s.pageSize {
		ids = ids[:s.pageSize]
		page.Next = "g=" + ids[len(ids)-1]
	}
	for _, id := range ids {
		page.Items = append(page.Items, provider.Group{ID: id, Name: names[id], Type: "csv"})
	}
	return page, nil
}

// Members lists the users whose groups cell names groupID (the group's id,
// its lowercase name). A page holds at most PageSize members but may scan
// far to fill; the cursor is a record position, as for Users. A full page
// may be followed by an empty last one.
func (s *Source) Members(ctx context.Context, groupID string, c provider.Cursor) (provider.Page[provider.Member], error) {
	var page provider.Page[provider.Member]
	want := strings.ToLower(strings.TrimSpace(groupID))
	if s.groupsCol == "" || want == "" {
		if c != "" {
			if _, err := parseCursor(c); err != nil {
				return page, err
			}
		}
		return page, nil
	}
	st, lay, err := s.begin(ctx, c)
	if err != nil {
		return page, err
	}
	defer st.close()
	for n := 0; len(page.Items) < s.pageSize; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return provider.Page[provider.Member]{}, err
			}
		}
		rec, _, err := st.read()
		if err == io.EOF {
			return page, nil
		}
		if err != nil {
			return provider.Page[provider.Member]{}, err
		}
		if lay.groups >= len(rec) || lay.match >= len(rec) {
			continue
		}
		user := strings.ToLower(strings.TrimSpace(rec[lay.match]))
		if user == "" || rules.TextProblem(user, rules.MaxUsernameLength, false) != "" {
			continue // not a user: Users reports the row as invalid
		}
		for _, g := range splitGroups(strings.TrimSpace(rec[lay.groups])) {
			if strings.ToLower(g) == want {
				page.Items = append(page.Items, provider.Member{UserID: user})
				break
			}
		}
	}
	page.Next = st.next.String()
	return page, nil
}
