package csv

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/rules"
)

// FuzzUsers feeds arbitrary bytes to the reader as an uploaded file. A file
// is either read completely (every record a User, invalid rows saying why)
// or refused with a typed *provider.InvalidDataError: never a panic, never
// an untyped error, never a cursor that loops. Validate and the paged Users
// walk must agree, since the engine trusts Validate before it stages pages.
//
// The seed corpus in testdata/fuzz/FuzzUsers runs with every `go test`;
// `make fuzz` explores beyond it.
func FuzzUsers(f *testing.F) {
	for _, seed := range []string{
		"username,firstName,lastName,email,manager,groups,dept\nada,Ada,Lovelace,ada@example.com,,Eng;All,R&D\n",
		"\xef\xbb\xbfusername;firstName;lastName;email\r\nbob;Bob;B;bob@example.com\r\n\r\n",
		"username,firstName,lastName,email\n\"multi\nline\",A,B,\"a@example.com\"\n",
		"username,firstName\nx,\"unterminated\n",
		"<html><body>login</body></html>",
		// Control characters and overlong values: the row is skipped with
		// the column named, and nothing unstorable is handed on.
		"username,firstName,lastName,email,manager,groups,dept\nj\x00doe,J\x1bane,Doe,j@example.com,b\x00ss,Eng\x00;All,\"a\nb\"\n",
		"username,firstName,lastName,email\n" + strings.Repeat("u", 300) + ",A,B,a@example.com\n",
	} {
		f.Add([]byte(seed), uint8(0), uint8(2), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, delim, pageSize uint8, defaultPassword bool) {
		cfg := Config{
			ManagerField: "manager",
			GroupsField:  "groups",
			ColumnMap:    map[string]string{"dept": "department"},
			Delimiter:    []string{",", ";", "\t"}[int(delim)%3],
			PageSize:     int(pageSize%7) + 1,
		}
		if defaultPassword {
			cfg.DefaultPassword = "Welcome-1"
		}
		ctx := context.Background()
		docs := &memDocs{docs: map[string][]byte{"doc": data}}
		cfg.DocumentID = "doc"
		src, err := cfg.Open(docs)
		if err != nil {
			t.Fatalf("Open: %v", err) // the configuration is fixed and valid
		}

		testErr := src.Test(ctx)
		checkTyped(t, "Test", testErr)
		rep, valErr := src.Validate(ctx)
		checkTyped(t, "Validate", valErr)
		if valErr == nil && testErr != nil {
			t.Fatalf("Validate accepts the file but Test refuses it: %v", testErr)
		}

		var users []provider.User
		var walkErr error
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > len(data)+2 {
				t.Fatalf("Users never ends: %d pages for %d bytes", pages, len(data))
			}
			p, err := src.Users(ctx, provider.Scope{}, cursor)
			if err != nil {
				walkErr = err
				break
			}
			if len(p.Items) > cfg.PageSize {
				t.Fatalf("page of %d users, page size %d", len(p.Items), cfg.PageSize)
			}
			users = append(users, p.Items...)
			if p.Next == "" {
				break
			}
			if p.Next == cursor {
				t.Fatalf("cursor %q does not advance", cursor)
			}
			cursor = p.Next
		}
		checkTyped(t, "Users", walkErr)
		if (valErr == nil) != (walkErr == nil) {
			t.Fatalf("Validate and Users disagree: Validate %v, Users %v", valErr, walkErr)
		}
		if valErr != nil {
			return
		}

		if len(users) != rep.Rows {
			t.Fatalf("Users gave %d users, Validate counted %d rows", len(users), rep.Rows)
		}
		invalid, prevLine := 0, 1
		for _, u := range users {
			if u.Line <= prevLine {
				t.Fatalf("user lines not increasing: %d after %d", u.Line, prevLine)
			}
			prevLine = u.Line
			if u.ExternalID == "" {
				t.Fatalf("line %d: empty external id", u.Line)
			}
			for _, s := range []string{u.ExternalID, u.Username, u.FirstName, u.LastName, u.Email, u.ManagerRef, u.Password, u.Invalid} {
				if !utf8.ValidString(s) {
					t.Fatalf("line %d: %q is not UTF-8", u.Line, s)
				}
			}
			// What is staged must be storable whatever the row held: a
			// NUL reaching PostgreSQL wedged the run (issue 13).
			for _, s := range append([]string{u.ExternalID, u.Username, u.FirstName, u.LastName, u.Email, u.ManagerRef}, u.Groups...) {
				if rules.HasControl(s, false) {
					t.Fatalf("line %d: %q holds a control character", u.Line, s)
				}
			}
			for k, v := range u.Attributes {
				if rules.HasControl(k, false) || rules.HasControl(v, true) {
					t.Fatalf("line %d: attribute %q=%q holds a control character", u.Line, k, v)
				}
			}
			if u.Invalid == "" && rules.Invalid(rules.Record{Username: u.Username, FirstName: u.FirstName,
				LastName: u.LastName, Email: u.Email, ManagerRef: u.ManagerRef, Attributes: u.Attributes}) != "" &&
				rules.MissingFields(rules.Record{Username: u.Username, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email}) == nil &&
				rules.ValidEmail(u.Email) {
				t.Fatalf("line %d: a row the rules refuse is not marked invalid", u.Line)
			}
			if u.Invalid != "" {
				invalid++
			}
		}
		if invalid != rep.Invalid {
			t.Fatalf("%d users marked invalid, Validate counted %d", invalid, rep.Invalid)
		}
		for _, reason := range rep.DuplicateLines() {
			if reason == "" {
				t.Fatal("duplicate without a reason")
			}
		}

		// The group listing reads the same file: it must not fail where
		// Validate succeeded, and its cursor must end too.
		gcur := ""
		for pages := 0; ; pages++ {
			if pages > len(data)+2 {
				t.Fatal("Groups never ends")
			}
			p, err := src.Groups(ctx, provider.GroupQuery{}, gcur)
			if err != nil {
				t.Fatalf("Groups on a valid file: %v", err)
			}
			if p.Next == "" {
				break
			}
			gcur = p.Next
		}
	})
}

// checkTyped fails unless err is nil or says why the data is unusable.
func checkTyped(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ide *provider.InvalidDataError
	if !errors.As(err, &ide) || !errors.Is(err, provider.ErrInvalidData) {
		t.Fatalf("%s: untyped error %T: %v", what, err, err)
	}
	if ide.Reason == "" {
		t.Fatalf("%s: InvalidDataError without a reason: %+v", what, ide)
	}
}
