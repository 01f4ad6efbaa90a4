// Package csv reads a people directory from a CSV file (RFC 4180, optional
// UTF-8 BOM, header row, delimiter "," ";" or tab) as a provider.Source.
//
// A run never reads the file from where it lives: a remote file is first
// copied into the document store (Remote.Download), and every page is read
// from that copy through a DocumentReader. That is what lets a run resume
// after a crash on exactly the bytes it started with, and lets a page start
// at a byte offset instead of re-parsing the file from the top: a Users
// cursor is the byte offset and line number of the next record, and memory
// stays proportional to a page, not to the file.
//
// Two kinds of problems are kept apart, because a run treats them
// differently. A broken structure (empty file, no data rows, an HTML page,
// a missing or duplicate header column, an unbalanced quote, bytes that are
// not UTF-8) makes the whole file unusable: it comes back as a
// *provider.InvalidDataError and the run must change nothing. A row that is
// merely incomplete (no last name, a bad email) comes back as a User whose
// Invalid field says why, so the run skips and reports that row alone.
// Duplicate usernames need the whole file, so only Validate finds them.
package csv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/rules"
)

// DocumentReader reads a stored document from a byte offset (implemented by
// directory.Store.OpenDocument). Reading from an offset at or past the end
// must give an empty reader or an error.
type DocumentReader interface {
	OpenDocument(ctx context.Context, id string, offset int64) (io.ReadCloser, error)
}

// DefaultPageSize is the number of records per page when Config.PageSize is 0.
const DefaultPageSize = 500

// Directory fields a column can fill; any other ColumnMap target is an
// attribute (User.Attributes).
const (
	FieldUsername  = "username"
	FieldFirstName = "firstName"
	FieldLastName  = "lastName"
	FieldEmail     = "email"
	FieldPassword  = "password"
)

var coreFields = []string{FieldUsername, FieldFirstName, FieldLastName, FieldEmail, FieldPassword}

// defaultColumns are the header names recognised for a field that the
// ColumnMap does not cover. Matching ignores case, so "firstname" also
// covers "FirstName" and "FIRSTNAME".
var defaultColumns = map[string][]string{
	FieldFirstName: {"firstName", "first_name"},
	FieldLastName:  {"lastName", "last_name"},
	FieldEmail:     {"email"},
	FieldPassword:  {"password"},
}

// Config is the CSV block of a profile, minus where the file comes from: a
// run reads only a stored document (see Remote for the download).
type Config struct {
	// DocumentID is the stored document the run reads.
	DocumentID string
	// UserMatchField is the column that gives both the username and the
	// identity. Default "username"; when it is left at that default and the
	// ColumnMap maps a column to the username field, that column is used.
	UserMatchField string
	// ManagerField is the column with the manager's username; "" = none.
	ManagerField string
	// DefaultPassword is given to users whose row has no password; the
	// engine applies it (see Source.DefaultPassword).
	DefaultPassword string
	// ColumnMap maps a CSV column to a directory field: username,
	// firstName, lastName, email, password, or any attribute name.
	ColumnMap map[string]string
	// Delimiter is "," (default), ";", "\t" (or "tab"), or any other
	// single character.
	Delimiter string
	// GroupsField is an optional column of group names separated by ';'.
	GroupsField string
	// PageSize is the number of records per page, default 500.
	PageSize int
}

// Source reads users and groups from one stored CSV document. It holds no
// state between calls, so one Source may serve concurrent calls.
type Source struct {
	docs            DocumentReader
	docID           string
	comma           rune
	delimiterName   string
	pageSize        int
	defaultPassword string
	matchCol        string // as configured, for messages and matching
	managerCol      string
	groupsCol       string
	mapped          []mapping // ColumnMap, normalised, in a fixed order
}

type mapping struct {
	column string // as configured
	field  string // canonical for core fields, as configured for attributes
}

var _ provider.Source = (*Source)(nil)

// Open checks the configuration and returns a Source. It does not read the
// document: Test does.
func (c Config) Open(docs DocumentReader) (*Source, error) {
	if docs == nil {
		return nil, errors.New("csv: no document reader")
	}
	s := &Source{
		docs:            docs,
		docID:           strings.TrimSpace(c.DocumentID),
		pageSize:        c.PageSize,
		defaultPassword: c.DefaultPassword,
		managerCol:      strings.TrimSpace(c.ManagerField),
		groupsCol:       strings.TrimSpace(c.GroupsField),
	}
	if s.docID == "" {
		return nil, errors.New("csv: no document id: upload a file or download the remote one first")
	}
	var err error
	if s.comma, s.delimiterName, err = parseDelimiter(c.Delimiter); err != nil {
		return nil, err
	}
	switch {
	case s.pageSize == 0:
		s.pageSize = DefaultPageSize
	case s.pageSize < 0:
		return nil, fmt.Errorf("csv: page size %d is negative", c.PageSize)
	}

	// Normalise the column map so that "FirstName" and "firstname" as a
	// target both mean the core field, and so that a column named twice
	// (in any case) is caught here rather than silently overwritten.
	seenCol := map[string]string{}
	seenField := map[string]string{}
	userCol := ""
	for col, field := range c.ColumnMap {
		col, field = strings.TrimSpace(col), strings.TrimSpace(field)
		if col == "" {
			return nil, fmt.Errorf("csv: column map has an empty column name (for field %q)", field)
		}
		if field == "" {
			return nil, fmt.Errorf("csv: column map gives no field for column %q", col)
		}
		field = canonicalField(field)
		if prev, ok := seenCol[strings.ToLower(col)]; ok {
			return nil, fmt.Errorf("csv: column map names column %q twice (%q and %q)", col, prev, col)
		}
		seenCol[strings.ToLower(col)] = col
		if prev, ok := seenField[strings.ToLower(field)]; ok {
			return nil, fmt.Errorf("csv: columns %q and %q are both mapped to field %q", prev, col, field)
		}
		seenField[strings.ToLower(field)] = col
		if field == FieldUsername {
			userCol = col
			continue // it becomes the match column below
		}
		s.mapped = append(s.mapped, mapping{column: col, field: field})
	}
	sortMappings(s.mapped)

	match := strings.TrimSpace(c.UserMatchField)
	switch {
	case userCol == "":
		if match == "" {
			match = FieldUsername
		}
	case match == "" || strings.EqualFold(match, FieldUsername):
		// The API fills userMatchField with its default, so "username"
		// here does not mean the admin disagrees with the column map.
		match = userCol
	case !strings.EqualFold(match, userCol):
		return nil, fmt.Errorf("csv: user match field %q and column map entry %q -> username disagree: the match column is the username", match, userCol)
	}
	s.matchCol = match
	return s, nil
}

func parseDelimiter(d string) (rune, string, error) {
	switch d {
	case "", ",":
		return ',', "comma", nil
	case ";":
		return ';', "semicolon", nil
	case "\t", "tab", "TAB", "Tab", `\t`:
		return '\t', "tab", nil
	}
	r, size := utf8.DecodeRuneInString(d)
	if size != len(d) {
		return 0, "", fmt.Errorf("csv: delimiter %q must be one character", d)
	}
	if r == utf8.RuneError || r == '"' || r == '\r' || r == '\n' || r == 0 {
		return 0, "", fmt.Errorf("csv: delimiter %q cannot be used", d)
	}
	return r, fmt.Sprintf("%q", d), nil
}

func canonicalField(f string) string {
	for _, c := range coreFields {
		if strings.EqualFold(f, c) {
			return c
		}
	}
	return f
}

func sortMappings(m []mapping) {
	// Insertion sort: the map is small, and a fixed order keeps error
	// messages and attribute order stable across runs.
	for i := 1; i < len(m); i++ {
		for j := i; j > 0 && strings.ToLower(m[j].column) < strings.ToLower(m[j-1].column); j-- {
			m[j], m[j-1] = m[j-1], m[j]
		}
	}
}

// DefaultPassword is the profile's default password. Users leaves
// User.Password empty for a row without one, so that the clear default is
// applied (and hashed) in one place, by the engine.
func (s *Source) DefaultPassword() string { return s.defaultPassword }

// Test opens the document and reads its header and first record, so that
// "Test connection" catches a wrong file, a wrong delimiter or a missing
// column before a run does. A row that is only incomplete does not fail it.
func (s *Source) Test(ctx context.Context) error {
	st, _, err := s.begin(ctx, "")
	if err != nil {
		return err
	}
	defer st.close()
	if _, _, err := st.read(); err != nil {
		if err == io.EOF {
			return errNoRows(st.headerLine)
		}
		return err
	}
	return nil
}

// Users returns the next page of rows, every one of them: rows that cannot
// be used carry the reason in User.Invalid. The scope is ignored: every row
// of a CSV file is in scope.
func (s *Source) Users(ctx context.Context, _ provider.Scope, c provider.Cursor) (provider.Page[provider.User], error) {
	var page provider.Page[provider.User]
	st, lay, err := s.begin(ctx, c)
	if err != nil {
		return page, err
	}
	defer st.close()
	for len(page.Items) < s.pageSize {
		if err := ctx.Err(); err != nil {
			return provider.Page[provider.User]{}, err
		}
		rec, line, err := st.read()
		if err == io.EOF {
			if c == "" && len(page.Items) == 0 {
				// Without this a run would see an empty directory and
				// treat everyone as departed.
				return page, errNoRows(st.headerLine)
			}
			return page, nil
		}
		if err != nil {
			return provider.Page[provider.User]{}, err
		}
		page.Items = append(page.Items, s.user(lay, rec, line))
	}
	// Peek one record so that the last page says it is the last one,
	// instead of costing the caller one more (empty) call. A broken next
	// record fails this page already: the run fails on it either way.
	after := st.next
	if _, _, err := st.read(); err == io.EOF {
		return page, nil
	} else if err != nil {
		return provider.Page[provider.User]{}, err
	}
	page.Next = after.String()
	return page, nil
}

// user maps one record; it never fails, it says in Invalid why a row
// cannot be used.
func (s *Source) user(lay *layout, rec []string, line int) provider.User {
	get := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	u := provider.User{
		Username:   get(lay.match),
		FirstName:  get(lay.first),
		LastName:   get(lay.last),
		Email:      get(lay.email),
		Password:   get(lay.password),
		ManagerRef: get(lay.manager),
		Active:     true,
		Line:       line,
	}
	// Text the directory cannot hold makes the row unusable, and is
	// replaced before the row goes anywhere: a NUL in a username reached
	// PostgreSQL's staging table, which refused it on every retry and left
	// the run (and every later one) stuck.
	var reasons []string
	checkText := func(v *string, field string, index, max int, multiline bool) {
		if p := rules.TextProblem(*v, max, multiline); p != "" {
			reasons = append(reasons, fmt.Sprintf("line %d: %s (column %q) %s", line, field, lay.names[index], p))
			*v = rules.ReplaceControl(*v, multiline)
		}
	}
	checkText(&u.Username, FieldUsername, lay.match, rules.MaxUsernameLength, false)
	// A quoted cell may span lines, and spreadsheets make such names.
	checkText(&u.FirstName, FieldFirstName, lay.first, rules.MaxNameLength, true)
	checkText(&u.LastName, FieldLastName, lay.last, rules.MaxNameLength, true)
	checkText(&u.Email, FieldEmail, lay.email, rules.MaxEmailLength, false)
	checkText(&u.ManagerRef, "manager", lay.manager, rules.MaxManagerRefLength, false)

	u.ExternalID = strings.ToLower(u.Username)
	if u.ExternalID == "" {
		u.ExternalID = fmt.Sprintf("line:%d", line)
	}
	if lay.groups >= 0 {
		for _, g := range splitGroups(get(lay.groups)) {
			// A bad name is left out rather than replaced: it would become
			// a directory group of its own.
			if p := rules.TextProblem(g, rules.MaxNameLength, false); p != "" {
				reasons = append(reasons, fmt.Sprintf("line %d: group name (column %q) %s", line, lay.names[lay.groups], p))
				continue
			}
			u.Groups = append(u.Groups, g)
		}
	}
	if len(lay.attrs) > 0 {
		u.Attributes = make(map[string]string, len(lay.attrs))
		for _, a := range lay.attrs {
			v := get(a.index)
			checkText(&v, a.field, a.index, rules.MaxAttributeValueLength, true)
			u.Attributes[a.field] = v
		}
	}

	var missing []string
	for _, f := range []struct {
		name, value string
		index       int
	}{
		{FieldUsername, u.Username, lay.match},
		{FieldFirstName, u.FirstName, lay.first},
		{FieldLastName, u.LastName, lay.last},
		{FieldEmail, u.Email, lay.email},
	} {
		if f.value == "" {
			missing = append(missing, fmt.Sprintf("%s (column %q)", f.name, lay.names[f.index]))
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		reasons = append(reasons, "missing required field "+missing[0])
	default:
		reasons = append(reasons, "missing required fields "+strings.Join(missing, ", "))
	}
	if u.Email != "" && !validEmail(u.Email) {
		reasons = append(reasons, fmt.Sprintf("invalid email address %q", u.Email))
	}
	if u.Password == "" && s.defaultPassword == "" {
		reasons = append(reasons, "no password and no default password")
	}
	u.Invalid = strings.Join(reasons, "; ")
	return u
}

// validEmail accepts a bare address only: a display name or angle brackets
// in an email column is a data error, not something to guess around.
func validEmail(v string) bool {
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v {
		return false
	}
	at := strings.LastIndexByte(v, '@')
	return at > 0 && at < len(v)-1
}

// splitGroups splits a groups cell on ';', dropping empties and repeats
// (case-insensitively: group ids are the lowercase names).
func splitGroups(cell string) []string {
	if cell == "" {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, g := range strings.Split(cell, ";") {
		g = strings.TrimSpace(g)
		if g == "" || seen[strings.ToLower(g)] {
			continue
		}
		seen[strings.ToLower(g)] = true
		out = append(out, g)
	}
	return out
}

func errNoRows(headerLine int) error {
	return &provider.InvalidDataError{
		Object: fmt.Sprintf("line %d", headerLine),
		Reason: "the file has a header but no rows",
	}
}
