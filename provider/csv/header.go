package csv

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/usersync/usersync/provider"
)

// layout says which record index feeds which field. It is rebuilt from the
// header on every call, because a page is read by a fresh call that may run
// on another worker.
type layout struct {
	names []string // trimmed header names as written

	// Record indexes of the fields; -1 = no such column.
	match, first, last, email, password, manager, groups int

	attrs []attrColumn
}

type attrColumn struct {
	index int
	field string
}

// resolve checks the header against the configuration. Every configured
// column must exist: a misspelt groups or attribute column would otherwise
// silently empty those fields for every user, and a sync would then remove
// every membership or clear every attribute.
func (s *Source) resolve(header []string, line int) (*layout, error) {
	lay := &layout{
		names: make([]string, len(header)),
		match: -1, first: -1, last: -1, email: -1, password: -1, manager: -1, groups: -1,
	}
	index := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		lay.names[i] = h
		if h == "" {
			// Spreadsheets export trailing empty header cells; they name
			// nothing, so two of them are not a duplicate.
			continue
		}
		key := strings.ToLower(h)
		if j, ok := index[key]; ok {
			name := fmt.Sprintf("%q", h)
			if !plausibleColumn(h) {
				name = "name"
			}
			return nil, &provider.InvalidDataError{
				Object: fmt.Sprintf("line %d", line),
				Reason: fmt.Sprintf("duplicate column %s in header (columns %d and %d)", name, j+1, i+1),
			}
		}
		index[key] = i
	}
	find := func(col string) int {
		if i, ok := index[strings.ToLower(strings.TrimSpace(col))]; ok {
			return i
		}
		return -1
	}
	notFound := func(col, what string) error {
		return &provider.InvalidDataError{
			Object: fmt.Sprintf("line %d", line),
			Reason: fmt.Sprintf("column %q%s not found in header: %s", col, what, s.describeHeader(lay.names)),
		}
	}

	if lay.match = find(s.matchCol); lay.match < 0 {
		return nil, notFound(s.matchCol, "")
	}
	set := map[string]*int{
		FieldFirstName: &lay.first,
		FieldLastName:  &lay.last,
		FieldEmail:     &lay.email,
		FieldPassword:  &lay.password,
	}
	for _, m := range s.mapped {
		i := find(m.column)
		if i < 0 {
			return nil, notFound(m.column, " (column map)")
		}
		if p, ok := set[m.field]; ok {
			*p = i
		} else {
			lay.attrs = append(lay.attrs, attrColumn{index: i, field: m.field})
		}
	}
	for _, field := range []string{FieldFirstName, FieldLastName, FieldEmail, FieldPassword} {
		p := set[field]
		if *p >= 0 {
			continue
		}
		for _, col := range defaultColumns[field] {
			if *p = find(col); *p >= 0 {
				break
			}
		}
	}
	// A required field with no column at all would make every row invalid;
	// that is a wrong file or a wrong mapping, not bad rows.
	for _, field := range []string{FieldFirstName, FieldLastName, FieldEmail} {
		if *set[field] < 0 {
			return nil, &provider.InvalidDataError{
				Object: fmt.Sprintf("line %d", line),
				Reason: fmt.Sprintf("no column for required field %s in header (expected %s, or map a column to %s): %s",
					field, strings.Join(defaultColumns[field], " or "), field, s.describeHeader(lay.names)),
			}
		}
	}
	if lay.password < 0 && s.defaultPassword == "" {
		return nil, &provider.InvalidDataError{
			Object: fmt.Sprintf("line %d", line),
			Reason: "no password column in header and no default password: every user would be skipped",
		}
	}
	if s.managerCol != "" {
		if lay.manager = find(s.managerCol); lay.manager < 0 {
			return nil, notFound(s.managerCol, " (manager field)")
		}
	}
	if s.groupsCol != "" {
		if lay.groups = find(s.groupsCol); lay.groups < 0 {
			return nil, notFound(s.groupsCol, " (groups field)")
		}
	}
	return lay, nil
}

// describeHeader lists the header for an error message, and points at the
// delimiter when the whole header came out as one column, the usual sign
// of a ';' file read with ',' or the other way round.
func (s *Source) describeHeader(names []string) string {
	var found []string
	hidden := 0
	for _, n := range names {
		switch {
		case n == "":
		case !plausibleColumn(n):
			hidden++
		default:
			found = append(found, n)
		}
	}
	delimiterHint := ""
	if len(names) == 1 && strings.ContainsAny(names[0], ",;\t|") {
		delimiterHint = fmt.Sprintf(" (one single column: is the delimiter right? the profile uses %s)", s.delimiterName)
	}
	if len(found) == 0 {
		if hidden > 0 {
			return fmt.Sprintf("the first line has %d field(s) that do not look like column names", hidden) + delimiterHint
		}
		return "the header has no column names"
	}
	const maxListed = 30
	more := ""
	if len(found) > maxListed {
		more = fmt.Sprintf(", … (%d more)", len(found)-maxListed)
		found = found[:maxListed]
	}
	if hidden > 0 {
		more += fmt.Sprintf(" (and %d field(s) that do not look like column names)", hidden)
	}
	return "found " + strings.Join(found, ", ") + more + delimiterHint
}

// maxShownColumn is the longest header field an error message repeats.
const maxShownColumn = 64

// plausibleColumn tells whether a header field looks like a column name
// and may be repeated in an error. A file downloaded from a URL is
// whatever that server answered (a metrics page, an internal API's JSON):
// an error must say what is wrong without quoting it back.
func plausibleColumn(n string) bool {
	if utf8.RuneCountInString(n) > maxShownColumn {
		return false
	}
	for _, r := range n {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(" _-./()#&'", r)) {
			return false
		}
	}
	return !strings.HasPrefix(n, "#")
}
