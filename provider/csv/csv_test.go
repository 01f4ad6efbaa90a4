package csv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/usersync/usersync/provider"
)

// memDocs is an in-memory document store that reads from any offset, like
// directory.Store.OpenDocument, and records the offsets it was opened at.
type memDocs struct {
	mu    sync.Mutex
	docs  map[string][]byte
	opens []int64
}

func (m *memDocs) OpenDocument(_ context.Context, id string, offset int64) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.docs[id]
	if !ok {
		return nil, fmt.Errorf("document %q: %w", id, provider.ErrNotFound)
	}
	if offset < 0 {
		return nil, fmt.Errorf("negative offset %d", offset)
	}
	m.opens = append(m.opens, offset)
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	return io.NopCloser(bytes.NewReader(b[offset:])), nil
}

func newSource(t *testing.T, data string, cfg Config) (*Source, *memDocs) {
	t.Helper()
	docs := &memDocs{docs: map[string][]byte{"doc": []byte(data)}}
	cfg.DocumentID = "doc"
	s, err := cfg.Open(docs)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, docs
}

// allUsers follows the cursor to the end.
func allUsers(t *testing.T, s *Source) ([]provider.User, []string) {
	t.Helper()
	var users []provider.User
	var cursors []string
	c := ""
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("cursor never ends")
		}
		p, err := s.Users(context.Background(), provider.Scope{}, c)
		if err != nil {
			t.Fatalf("Users(%q): %v", c, err)
		}
		users = append(users, p.Items...)
		if p.Next == "" {
			return users, cursors
		}
		if p.Next == c {
			t.Fatalf("cursor %q does not advance", c)
		}
		cursors = append(cursors, p.Next)
		c = p.Next
	}
}

func usr(line int, name, first, last, email string) provider.User {
	return provider.User{
		ExternalID: strings.ToLower(name), Username: name, FirstName: first, LastName: last,
		Email: email, Active: true, Line: line,
	}
}

func TestUsersParsing(t *testing.T) {
	dp := Config{DefaultPassword: "dflt"}
	tests := []struct {
		name string
		data string
		cfg  Config
		want []provider.User
	}{
		{
			name: "bom and crlf",
			data: "\ufeffusername,firstName,lastName,email,password\r\njdoe,John,Doe,jdoe@example.com,pw1\r\nasmith,Ann,Smith,ann@example.com,pw2\r\n",
			want: []provider.User{
				func() provider.User {
					u := usr(2, "jdoe", "John", "Doe", "jdoe@example.com")
					u.Password = "pw1"
					return u
				}(),
				func() provider.User {
					u := usr(3, "asmith", "Ann", "Smith", "ann@example.com")
					u.Password = "pw2"
					return u
				}(),
			},
		},
		{
			name: "quoted commas quotes and newlines keep line numbers",
			data: "username,firstName,lastName,email,title\n" +
				"jdoe,\"Doe, John\",Doe,jdoe@example.com,\"He said \"\"hi\"\"\"\n" +
				"multi,\"Line\nTwo\",Person,m@example.com,\"a\nb\nc\"\n" +
				"last,L,P,l@example.com,x\n",
			cfg: Config{DefaultPassword: "dflt", ColumnMap: map[string]string{"title": "jobTitle"}},
			want: []provider.User{
				func() provider.User {
					u := usr(2, "jdoe", "Doe, John", "Doe", "jdoe@example.com")
					u.Attributes = map[string]string{"jobTitle": `He said "hi"`}
					return u
				}(),
				func() provider.User {
					u := usr(3, "multi", "Line\nTwo", "Person", "m@example.com")
					u.Attributes = map[string]string{"jobTitle": "a\nb\nc"}
					return u
				}(),
				func() provider.User {
					u := usr(7, "last", "L", "P", "l@example.com")
					u.Attributes = map[string]string{"jobTitle": "x"}
					return u
				}(),
			},
		},
		{
			name: "crlf inside a quoted field",
			data: "username,firstName,lastName,email\r\na,\"x\r\ny\",L,a@example.com\r\nb,B,L,b@example.com\r\n",
			cfg:  dp,
			want: []provider.User{usr(2, "a", "x\ny", "L", "a@example.com"), usr(4, "b", "B", "L", "b@example.com")},
		},
		{
			name: "semicolon delimiter",
			data: "username;firstName;lastName;email\njdoe;Doe, John;Doe;jdoe@example.com\n",
			cfg:  Config{DefaultPassword: "dflt", Delimiter: ";"},
			want: []provider.User{usr(2, "jdoe", "Doe, John", "Doe", "jdoe@example.com")},
		},
		{
			name: "tab delimiter by name",
			data: "username\tfirstName\tlastName\temail\njdoe\tJohn; Jr\tDoe\tjdoe@example.com\n",
			cfg:  Config{DefaultPassword: "dflt", Delimiter: "tab"},
			want: []provider.User{usr(2, "jdoe", "John; Jr", "Doe", "jdoe@example.com")},
		},
		{
			name: "tab delimiter as character",
			data: "username\tfirstName\tlastName\temail\njdoe\tJohn, Jr\tDoe\tjdoe@example.com\n",
			cfg:  Config{DefaultPassword: "dflt", Delimiter: "\t"},
			want: []provider.User{usr(2, "jdoe", "John, Jr", "Doe", "jdoe@example.com")},
		},
		{
			name: "column map with attributes and an ignored column",
			data: "Login,Given,Surname,Mail,Dept,Phone,Ignored,firstName\nJDoe,John,Doe,jdoe@example.com,Sales,+44 1,zzz,WRONG\n",
			cfg: Config{DefaultPassword: "dflt", ColumnMap: map[string]string{
				"login": "username", "given": "FirstName", "Surname": "lastName", "MAIL": "email",
				"Dept": "department", "Phone": "mobile",
			}},
			want: []provider.User{func() provider.User {
				u := usr(2, "JDoe", "John", "Doe", "jdoe@example.com")
				u.Attributes = map[string]string{"department": "Sales", "mobile": "+44 1"}
				return u
			}()},
		},
		{
			name: "user match field names another column",
			data: "employee_id,first_name,last_name,Email\nE42,John,Doe,jdoe@example.com\n",
			cfg:  Config{DefaultPassword: "dflt", UserMatchField: "Employee_ID"},
			want: []provider.User{usr(2, "E42", "John", "Doe", "jdoe@example.com")},
		},
		{
			name: "trailing empty columns, short rows and blank lines",
			data: "username,firstName,lastName,email,,\njdoe,John,Doe,jdoe@example.com,,\n,,,,,\n\n   \nasmith,Ann,Smith,ann@example.com\n\n\n",
			cfg:  dp,
			want: []provider.User{usr(2, "jdoe", "John", "Doe", "jdoe@example.com"), usr(6, "asmith", "Ann", "Smith", "ann@example.com")},
		},
		{
			name: "header case and spaces, values trimmed, identity lowercase",
			data: " UserName , FIRSTNAME,last_name , EMAIL\n  JDoe ,  John , Doe ,  jdoe@example.com \n",
			cfg:  dp,
			want: []provider.User{usr(2, "JDoe", "John", "Doe", "jdoe@example.com")},
		},
		{
			name: "no final newline",
			data: "username,firstName,lastName,email\njdoe,John,Doe,jdoe@example.com",
			cfg:  dp,
			want: []provider.User{usr(2, "jdoe", "John", "Doe", "jdoe@example.com")},
		},
		{
			name: "groups and manager",
			data: "username,firstName,lastName,email,groups,boss\njdoe,John,Doe,jdoe@example.com,\"Sales; Marketing;;sales ; Ops\",ASmith\nasmith,Ann,Smith,ann@example.com,,\n",
			cfg:  Config{DefaultPassword: "dflt", GroupsField: "Groups", ManagerField: "boss"},
			want: []provider.User{
				func() provider.User {
					u := usr(2, "jdoe", "John", "Doe", "jdoe@example.com")
					u.Groups = []string{"Sales", "Marketing", "Ops"}
					u.ManagerRef = "ASmith"
					return u
				}(),
				usr(3, "asmith", "Ann", "Smith", "ann@example.com"),
			},
		},
		{
			name: "password column wins, default left to the engine",
			data: "username,firstName,lastName,email,password\na,A,L,a@example.com,secret\nb,B,L,b@example.com,\n",
			cfg:  dp,
			want: []provider.User{
				func() provider.User { u := usr(2, "a", "A", "L", "a@example.com"); u.Password = "secret"; return u }(),
				usr(3, "b", "B", "L", "b@example.com"),
			},
		},
		{
			name: "no password and no default",
			data: "username,firstName,lastName,email,password\na,A,L,a@example.com,\n",
			want: []provider.User{func() provider.User {
				u := usr(2, "a", "A", "L", "a@example.com")
				u.Invalid = "no password and no default password"
				return u
			}()},
		},
		{
			name: "missing required field names field and column",
			data: "username,firstName,surname,email\na,A,,a@example.com\nb,,,b@example.com\n",
			cfg:  Config{DefaultPassword: "dflt", ColumnMap: map[string]string{"surname": "lastName"}},
			want: []provider.User{
				func() provider.User {
					u := usr(2, "a", "A", "", "a@example.com")
					u.Invalid = `missing required field lastName (column "surname")`
					return u
				}(),
				func() provider.User {
					u := usr(3, "b", "", "", "b@example.com")
					u.Invalid = `missing required fields firstName (column "firstName"), lastName (column "surname")`
					return u
				}(),
			},
		},
		{
			name: "empty username keeps the row with a unique id",
			data: "username,firstName,lastName,email\njdoe,John,Doe,jdoe@example.com\n ,Ann,Smith,ann@example.com\n,Bob,Smith,bob@example.com\n",
			cfg:  dp,
			want: []provider.User{
				usr(2, "jdoe", "John", "Doe", "jdoe@example.com"),
				func() provider.User {
					u := usr(3, "", "Ann", "Smith", "ann@example.com")
					u.ExternalID = "line:3"
					u.Invalid = `missing required field username (column "username")`
					return u
				}(),
				func() provider.User {
					u := usr(4, "", "Bob", "Smith", "bob@example.com")
					u.ExternalID = "line:4"
					u.Invalid = `missing required field username (column "username")`
					return u
				}(),
			},
		},
		{
			name: "invalid email",
			data: "username,firstName,lastName,email,password\na,A,L,not-an-email,\nb,B,L,John <b@example.com>,x\nc,C,L,c@,x\n",
			want: []provider.User{
				func() provider.User {
					u := usr(2, "a", "A", "L", "not-an-email")
					u.Invalid = `invalid email address "not-an-email"; no password and no default password`
					return u
				}(),
				func() provider.User {
					u := usr(3, "b", "B", "L", "John <b@example.com>")
					u.Password = "x"
					u.Invalid = `invalid email address "John <b@example.com>"`
					return u
				}(),
				func() provider.User {
					u := usr(4, "c", "C", "L", "c@")
					u.Password = "x"
					u.Invalid = `invalid email address "c@"`
					return u
				}(),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSource(t, tt.data, tt.cfg)
			got, _ := allUsers(t, s)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("users differ\n got: %#v\nwant: %#v", got, tt.want)
			}
			// Paging one record at a time must not change anything.
			tt.cfg.PageSize = 1
			s1, _ := newSource(t, tt.data, tt.cfg)
			got1, _ := allUsers(t, s1)
			if !reflect.DeepEqual(got1, tt.want) {
				t.Errorf("page size 1 differs\n got: %#v\nwant: %#v", got1, tt.want)
			}
		})
	}
}

// pagingFile mixes everything that moves offsets and line numbers: a BOM,
// CRLF, blank lines, rows of empty cells and quoted multi-line fields.
func pagingFile(n int) string {
	var b strings.Builder
	b.WriteString("\ufeffusername,firstName,lastName,email,notes,groups\r\n")
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "user%02d,First%d,Last%d,u%d@example.com,\"multi\r\nline, \"\"quoted\"\"\r\n\",G%d\r\n", i, i, i, i, i%3)
		case 1:
			fmt.Fprintf(&b, "\r\nuser%02d,First%d,Last%d,u%d@example.com,,\r\n,,,,,\r\n", i, i, i, i)
		case 2:
			fmt.Fprintf(&b, "user%02d,\"First\n%d\",Last%d,u%d@example.com\n", i, i, i, i)
		default:
			fmt.Fprintf(&b, "user%02d,First%d,Last%d,u%d@example.com,plain,\"G1;G2\"\r\n\r\n", i, i, i, i)
		}
	}
	return b.String()
}

func TestPagingMatchesOnePage(t *testing.T) {
	const n = 23
	data := pagingFile(n)
	big, _ := newSource(t, data, Config{DefaultPassword: "x", PageSize: 1000, GroupsField: "groups"})
	p, err := big.Users(context.Background(), provider.Scope{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Next != "" || len(p.Items) != n {
		t.Fatalf("one big page: %d users, next %q; want %d users and no next", len(p.Items), p.Next, n)
	}
	// Line numbers checked against the text itself, not against the parser.
	for i, u := range p.Items {
		name := fmt.Sprintf("user%02d", i)
		at := strings.Index(data, "\n"+name+",")
		if at < 0 {
			t.Fatalf("%s not in file", name)
		}
		if want := strings.Count(data[:at+1], "\n") + 1; u.Username != name || u.Line != want {
			t.Errorf("user %d = %s line %d, want %s line %d", i, u.Username, u.Line, name, want)
		}
		if u.Invalid != "" {
			t.Errorf("%s invalid: %s", name, u.Invalid)
		}
	}
	for _, size := range []int{1, 2, 3, 7, n, n + 1} {
		s, docs := newSource(t, data, Config{DefaultPassword: "x", PageSize: size, GroupsField: "groups"})
		got, cursors := allUsers(t, s)
		if !reflect.DeepEqual(got, p.Items) {
			t.Errorf("page size %d: users differ from one big page", size)
		}
		if want := (n - 1) / size; len(cursors) != want {
			t.Errorf("page size %d: %d cursors, want %d (no empty last page)", size, len(cursors), want)
		}
		for _, c := range cursors {
			pos, err := parseCursor(c)
			if err != nil {
				t.Fatalf("cursor %q: %v", c, err)
			}
			if data[pos.off-1] != '\n' || strings.Count(data[:pos.off], "\n")+1 != pos.line {
				t.Errorf("cursor %q is not a line start with its line number", c)
			}
		}
		// Every page after the first opens the header, then the cursor's
		// offset: no page re-parses the file from the top.
		if size == 2 && len(docs.opens) != 1+2*len(cursors) {
			t.Errorf("page size 2: %d opens for %d pages", len(docs.opens), len(cursors)+1)
		}
	}
}

func TestResumeFromCursorInTheMiddle(t *testing.T) {
	data := pagingFile(10)
	s, _ := newSource(t, data, Config{DefaultPassword: "x", PageSize: 4})
	all, cursors := allUsers(t, s)
	if len(cursors) != 2 {
		t.Fatalf("want 2 cursors, got %v", cursors)
	}
	// A fresh source (another worker after a crash) picks up at the cursor.
	fresh, docs := newSource(t, data, Config{DefaultPassword: "x", PageSize: 4})
	p, err := fresh.Users(context.Background(), provider.Scope{}, cursors[0])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Items, all[4:8]) || p.Next != cursors[1] {
		t.Fatalf("resumed page = %v next %q, want users 4-7 next %q", names(p.Items), p.Next, cursors[1])
	}
	pos, _ := parseCursor(cursors[0])
	if len(docs.opens) != 2 || docs.opens[0] != 0 || docs.opens[1] != pos.off-1 {
		t.Errorf("opens = %v, want [0 %d]", docs.opens, pos.off-1)
	}
}

func names(us []provider.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

func TestBadCursor(t *testing.T) {
	data := "username,firstName,lastName,email,groups\njdoe,John,Doe,jdoe@example.com,g\nann,Ann,Smith,ann@example.com,g\n"
	s, _ := newSource(t, data, Config{DefaultPassword: "x", GroupsField: "groups"})
	for _, c := range []string{
		"garbage",
		"o=abc;l=2",
		"o=10;l=x",
		"o=0;l=2",
		"o=45;l=1",
		"o=5;l=2",                             // inside the header
		"o=50;l=2",                            // not at a line start
		fmt.Sprintf("o=%d;l=9", len(data)+50), // past the end
	} {
		if _, err := s.Users(context.Background(), provider.Scope{}, c); !errors.Is(err, provider.ErrCursorExpired) {
			t.Errorf("Users(%q) = %v, want ErrCursorExpired", c, err)
		}
		if _, err := s.Members(context.Background(), "g", c); !errors.Is(err, provider.ErrCursorExpired) {
			t.Errorf("Members(%q) = %v, want ErrCursorExpired", c, err)
		}
	}
	if _, err := s.Groups(context.Background(), provider.GroupQuery{}, "o=1;l=2"); !errors.Is(err, provider.ErrCursorExpired) {
		t.Errorf("Groups with a users cursor = %v, want ErrCursorExpired", err)
	}
}

func TestStructuralErrors(t *testing.T) {
	std := "username,firstName,lastName,email\n"
	tests := []struct {
		name   string
		data   string
		cfg    Config
		want   []string // substrings of the error
		object string   // InvalidDataError.Object, "" = not checked
	}{
		{name: "empty", data: "", want: []string{"the file is empty"}},
		{name: "only blank lines", data: "\r\n\n  \n", want: []string{"the file is empty"}},
		{name: "bom only", data: "\ufeff", want: []string{"the file is empty"}},
		{name: "header only", data: std, want: []string{"the file has a header but no rows"}, object: "line 1"},
		{name: "header and blank lines", data: std + "\n,,,\n\n", want: []string{"the file has a header but no rows"}},
		{
			name: "missing match column", data: "a,b,c\n1,2,3\n",
			want: []string{`column "username" not found in header: found a, b, c`}, object: "line 1",
		},
		{
			name: "wrong delimiter", data: "username;firstName;lastName;email\nj;J;D;j@example.com\n",
			want: []string{`column "username" not found`, "is the delimiter right? the profile uses comma"},
		},
		{
			name: "unbalanced quote names its line",
			data: std + "a,A,L,a@example.com\nb,B,L,b@example.com\nc,\"C,L,c@example.com\nd,D,L,d@example.com\n",
			want: []string{"line 4: unbalanced quote"}, object: "line 4",
		},
		{
			name: "text after a closing quote",
			data: std + "a,A,L,a@example.com\nb,\"B\"x,L,b@example.com\n",
			want: []string{"line 3: unbalanced quote"}, object: "line 3",
		},
		{
			name: "bare quote",
			data: std + "a,A,L,a@example.com\nb,B\"ob,L,b@example.com\n",
			want: []string{"line 3", "quote inside an unquoted field"}, object: "line 3",
		},
		{
			name: "not utf-8 names line and column",
			data: std + "a,A,L,a@example.com\nb,\"multi\nline \xe9\",L,b@example.com\n",
			want: []string{"line 4, firstName: text is not UTF-8"}, object: "line 4",
		},
		{name: "not utf-8 in header", data: "username,firstN\xe4me,lastName,email\na,A,L,a@x.org\n", want: []string{"line 1", "not UTF-8"}},
		{name: "utf-16", data: "\xff\xfeu\x00s\x00", want: []string{"UTF-16"}},
		{name: "html doctype", data: "<!DOCTYPE html>\n<html><body>Sign in</body></html>\n", want: []string{"the file is an HTML page, not a CSV (a login page?)"}},
		{name: "html tag after whitespace and bom", data: "\ufeff\r\n  <HTML lang=en>\n<p>hi</p>\n", want: []string{"HTML page"}},
		{
			name: "duplicate header column", data: "username,firstName,lastName,Email,EMAIL\na,A,L,a@example.com,b@example.com\n",
			want: []string{`duplicate column "EMAIL" in header (columns 4 and 5)`}, object: "line 1",
		},
		{name: "no last name column", data: "username,firstName,email\na,A,a@example.com\n", want: []string{"no column for required field lastName", "found username, firstName, email"}},
		{
			name: "no password column and no default", data: std + "a,A,L,a@example.com\n", cfg: Config{DefaultPassword: ""},
			want: []string{"no password column in header and no default password"},
		},
		{name: "groups column missing", data: std + "a,A,L,a@example.com\n", cfg: Config{GroupsField: "groups"}, want: []string{`column "groups" (groups field) not found in header`}},
		{name: "manager column missing", data: std + "a,A,L,a@example.com\n", cfg: Config{ManagerField: "manager"}, want: []string{`column "manager" (manager field) not found`}},
		{
			name: "column map column missing", data: std + "a,A,L,a@example.com\n", cfg: Config{ColumnMap: map[string]string{"dept": "department"}},
			want: []string{`column "dept" (column map) not found`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.DefaultPassword == "" && !strings.Contains(tt.name, "no default") {
				tt.cfg.DefaultPassword = "x"
			}
			s, _ := newSource(t, tt.data, tt.cfg)
			_, verr := s.Validate(context.Background())
			_, uerr := allUsersErr(s)
			terr := s.Test(context.Background())
			// The quote and UTF-8 errors sit after the first record, where
			// Test does not look.
			late := strings.Contains(tt.name, "quote") || strings.Contains(tt.name, "not utf-8 names")
			for what, err := range map[string]error{"Validate": verr, "Users": uerr, "Test": terr} {
				if what == "Test" && late {
					continue
				}
				var ide *provider.InvalidDataError
				if !errors.As(err, &ide) || !errors.Is(err, provider.ErrInvalidData) {
					t.Errorf("%s: error %v is not an InvalidDataError", what, err)
					continue
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not say %q", what, err, w)
					}
				}
				if tt.object != "" && ide.Object != tt.object {
					t.Errorf("%s: object %q, want %q", what, ide.Object, tt.object)
				}
			}
		})
	}
}

// allUsersErr follows the cursor, small pages, until the end or an error.
func allUsersErr(s *Source) ([]provider.User, error) {
	s.pageSize = 1
	var users []provider.User
	c := ""
	for {
		p, err := s.Users(context.Background(), provider.Scope{}, c)
		if err != nil {
			return users, err
		}
		users = append(users, p.Items...)
		if p.Next == "" {
			return users, nil
		}
		c = p.Next
	}
}

func TestValidateDuplicates(t *testing.T) {
	data := "username,firstName,lastName,email\n" +
		"jdoe,John,Doe,jdoe@example.com\n" +
		"ann,\"Ann\nMarie\",Smith,ann@example.com\n" +
		"JDoe,Johnny,Doe,johnny@example.com\n" +
		"bob,Bob,,bob@example.com\n" +
		",Nobody,X,n@example.com\n" +
		",Nobody,Y,m@example.com\n" +
		"ANN,A,S,a2@example.com\n" +
		"jdoe,J,D,j3@example.com\n"
	s, _ := newSource(t, data, Config{DefaultPassword: "x"})
	rep, err := s.Validate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantDup := map[string][]int{"jdoe": {2, 5, 10}, "ann": {3, 9}}
	if rep.Rows != 8 || rep.Invalid != 3 || !reflect.DeepEqual(rep.Duplicates, wantDup) {
		t.Fatalf("report = %+v, want 8 rows, 3 invalid, duplicates %v", rep, wantDup)
	}
	wantLines := map[int]string{
		2: `duplicate username "jdoe" (lines 2, 5, 10)`, 5: `duplicate username "jdoe" (lines 2, 5, 10)`,
		10: `duplicate username "jdoe" (lines 2, 5, 10)`,
		3:  `duplicate username "ann" (lines 3, 9)`, 9: `duplicate username "ann" (lines 3, 9)`,
	}
	if got := rep.DuplicateLines(); !reflect.DeepEqual(got, wantLines) {
		t.Errorf("DuplicateLines = %v, want %v", got, wantLines)
	}
	// The lines Validate names are the lines Users reports.
	users, _ := allUsers(t, s)
	for _, u := range users {
		if _, dup := wantLines[u.Line]; dup != (u.ExternalID == "jdoe" || u.ExternalID == "ann") {
			t.Errorf("user %q on line %d disagrees with the duplicate lines", u.Username, u.Line)
		}
	}

	clean, _ := newSource(t, "username,firstName,lastName,email\na,A,L,a@example.com\nb,B,L,b@example.com\n", Config{DefaultPassword: "x"})
	rep, err = clean.Validate(context.Background())
	if err != nil || rep.Rows != 2 || len(rep.Duplicates) != 0 || len(rep.DuplicateLines()) != 0 {
		t.Errorf("clean file: %+v, %v", rep, err)
	}
}

func TestValidateFindsLateBreak(t *testing.T) {
	var b strings.Builder
	b.WriteString("username,firstName,lastName,email\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "u%d,F,L,u%d@example.com\n", i, i)
	}
	b.WriteString("late,\"F,L,late@example.com\n")
	s, _ := newSource(t, b.String(), Config{DefaultPassword: "x"})
	if err := s.Test(context.Background()); err != nil {
		t.Fatalf("Test reads only the start: %v", err)
	}
	_, err := s.Validate(context.Background())
	if !errors.Is(err, provider.ErrInvalidData) || !strings.Contains(err.Error(), "line 102: unbalanced quote") {
		t.Fatalf("Validate = %v, want the unbalanced quote on line 102", err)
	}
}

func TestTest(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"good", "username,firstName,lastName,email\na,A,L,a@example.com\n", ""},
		{"incomplete first row is not a file error", "username,firstName,lastName,email\na,,,bad\n", ""},
		{"header only", "username,firstName,lastName,email\n", "header but no rows"},
		{"broken first row", "username,firstName,lastName,email\na,\"A,L,a@example.com\n", "unbalanced quote"},
		{"missing column", "user,firstName,lastName,email\na,A,L,a@example.com\n", `column "username" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newSource(t, tt.data, Config{DefaultPassword: "x"})
			err := s.Test(context.Background())
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Test = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Test = %v, want %q", err, tt.want)
			}
		})
	}
	docs := &memDocs{docs: map[string][]byte{}}
	s, err := Config{DocumentID: "gone", DefaultPassword: "x"}.Open(docs)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Test(context.Background()); !errors.Is(err, provider.ErrNotFound) || !strings.Contains(err.Error(), `"gone"`) {
		t.Errorf("Test on a missing document = %v, want ErrNotFound naming it", err)
	}
}

const groupsFile = "username,firstName,lastName,email,groups\n" +
	"a,A,L,a@example.com,\"Sales;Marketing\"\n" +
	"b,B,L,b@example.com,sales ; Ops\n" +
	"c,C,L,c@example.com,\n" +
	",D,L,d@example.com,Sales\n" +
	"e,E,L,e@example.com,Sales Ops;Ops\n" +
	"F,F,L,f@example.com,SALES\n"

func TestGroups(t *testing.T) {
	s, _ := newSource(t, groupsFile, Config{DefaultPassword: "x", GroupsField: "groups"})
	tests := []struct {
		search string
		want   []provider.Group
	}{
		{"", []provider.Group{
			{ID: "marketing", Name: "Marketing", Type: "csv"},
			{ID: "ops", Name: "Ops", Type: "csv"},
			{ID: "sales", Name: "Sales", Type: "csv"},
			{ID: "sales ops", Name: "Sales Ops", Type: "csv"},
		}},
		{"OPS", []provider.Group{{ID: "ops", Name: "Ops", Type: "csv"}, {ID: "sales ops", Name: "Sales Ops", Type: "csv"}}},
		{"ale", []provider.Group{{ID: "sales", Name: "Sales", Type: "csv"}, {ID: "sales ops", Name: "Sales Ops", Type: "csv"}}},
		{"nothing", nil},
	}
	for _, tt := range tests {
		p, err := s.Groups(context.Background(), provider.GroupQuery{Search: tt.search}, "")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p.Items, tt.want) || p.Next != "" {
			t.Errorf("Groups(%q) = %v next %q, want %v", tt.search, p.Items, p.Next, tt.want)
		}
	}

	// Paged: three groups a page, then the rest.
	small, _ := newSource(t, groupsFile, Config{DefaultPassword: "x", GroupsField: "groups", PageSize: 3})
	var ids []string
	c := ""
	for i := 0; i < 10; i++ {
		p, err := small.Groups(context.Background(), provider.GroupQuery{}, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range p.Items {
			ids = append(ids, g.ID)
		}
		if c = p.Next; c == "" {
			break
		}
	}
	if want := []string{"marketing", "ops", "sales", "sales ops"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("paged groups = %v, want %v", ids, want)
	}

	none, _ := newSource(t, groupsFile, Config{DefaultPassword: "x"})
	if p, err := none.Groups(context.Background(), provider.GroupQuery{}, ""); err != nil || len(p.Items) != 0 {
		t.Errorf("no groups field: %v, %v", p.Items, err)
	}
}

func TestMembers(t *testing.T) {
	tests := []struct {
		group string
		want  []string
	}{
		{"sales", []string{"a", "b", "f"}},
		{"SALES", []string{"a", "b", "f"}},
		{"ops", []string{"b", "e"}},
		{"sales ops", []string{"e"}},
		{"nobody", nil},
	}
	for _, size := range []int{1, 2, 100} {
		s, _ := newSource(t, groupsFile, Config{DefaultPassword: "x", GroupsField: "groups", PageSize: size})
		for _, tt := range tests {
			var got []string
			c := ""
			for i := 0; ; i++ {
				if i > 20 {
					t.Fatal("members cursor never ends")
				}
				p, err := s.Members(context.Background(), tt.group, c)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Items) > size {
					t.Fatalf("page of %d members, page size %d", len(p.Items), size)
				}
				for _, m := range p.Items {
					got = append(got, m.UserID)
				}
				if c = p.Next; c == "" {
					break
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("page size %d: Members(%q) = %v, want %v", size, tt.group, got, tt.want)
			}
		}
	}
}

func TestOpen(t *testing.T) {
	docs := &memDocs{docs: map[string][]byte{}}
	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no document", Config{}, "no document id"},
		{"long delimiter", Config{DocumentID: "d", Delimiter: ",;"}, "one character"},
		{"quote delimiter", Config{DocumentID: "d", Delimiter: `"`}, "cannot be used"},
		{"newline delimiter", Config{DocumentID: "d", Delimiter: "\n"}, "cannot be used"},
		{"negative page size", Config{DocumentID: "d", PageSize: -1}, "negative"},
		{"empty map field", Config{DocumentID: "d", ColumnMap: map[string]string{"x": " "}}, "no field"},
		{"column twice", Config{DocumentID: "d", ColumnMap: map[string]string{"Dept": "a", "dept": "b"}}, "twice"},
		{"field twice", Config{DocumentID: "d", ColumnMap: map[string]string{"a": "email", "b": "EMAIL"}}, "both mapped"},
		{"match disagrees with map", Config{DocumentID: "d", UserMatchField: "id", ColumnMap: map[string]string{"login": "username"}}, "disagree"},
	}
	for _, tt := range bad {
		if _, err := tt.cfg.Open(docs); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Open = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := (Config{DocumentID: "d"}).Open(nil); err == nil {
		t.Error("Open(nil) accepted")
	}

	s, err := Config{DocumentID: "d", DefaultPassword: "pw"}.Open(docs)
	if err != nil {
		t.Fatal(err)
	}
	if s.comma != ',' || s.pageSize != DefaultPageSize || s.matchCol != "username" || s.DefaultPassword() != "pw" {
		t.Errorf("defaults: comma %q page %d match %q default password %q", s.comma, s.pageSize, s.matchCol, s.DefaultPassword())
	}
	for d, want := range map[string]rune{";": ';', "tab": '\t', "\t": '\t', "|": '|'} {
		s, err := Config{DocumentID: "d", Delimiter: d}.Open(docs)
		if err != nil || s.comma != want {
			t.Errorf("delimiter %q: %v %q", d, err, s.comma)
		}
	}
	// The API fills userMatchField with "username"; a mapped username
	// column still wins.
	s, err = Config{DocumentID: "d", UserMatchField: "username", ColumnMap: map[string]string{"login": "username"}}.Open(docs)
	if err != nil || s.matchCol != "login" {
		t.Errorf("mapped username column: %v, match %q", err, s.matchCol)
	}
}

func TestUsersHonoursCancel(t *testing.T) {
	s, _ := newSource(t, pagingFile(5), Config{DefaultPassword: "x"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Users(ctx, provider.Scope{}, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Users on a cancelled context = %v", err)
	}
}
