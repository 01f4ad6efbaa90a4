// Package reqtable holds the providers to the requests that
// docs/providers.md allows: the table there lists every request usersync
// sends to Microsoft Graph and Okta with the documentation page that allows
// it, and a Recorder in front of a simulator records what the providers
// actually send, so that a test fails on a request nobody has cited.
package reqtable

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// NotableHeaders are the request headers a row must name when a request
// carries them: they change what the service answers.
var NotableHeaders = []string{"ConsistencyLevel", "Prefer"}

// Row is one allowed request.
type Row struct {
	Provider string   // graph | okta
	Method   string   // GET, POST
	Path     []string // segments; "{…}" matches any one segment
	Options  []string // query option names
	Headers  []string // notable headers it may carry
	Doc      string   // the documentation page
	Line     int
}

// Table is the rows of docs/providers.md.
type Table struct{ Rows []Row }

// Load reads the rows of the Markdown file at path: every table row whose
// first cell is "graph" or "okta", with the cells provider, method, path,
// query options, headers, documentation, idpsim.
func Load(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("request table: %w", err)
	}
	defer f.Close()
	t := &Table{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(strings.ReplaceAll(cells[i], "`", ""))
		}
		if len(cells) < 6 || (cells[0] != "graph" && cells[0] != "okta") {
			continue
		}
		r := Row{Provider: cells[0], Method: strings.ToUpper(cells[1]), Path: segments(cells[2]),
			Options: names(cells[3]), Headers: names(cells[4]), Doc: cells[5], Line: n}
		if !strings.HasPrefix(r.Doc, "https://") {
			return nil, fmt.Errorf("request table: %s:%d: the documentation cell must be an https link, not %q", path, n, r.Doc)
		}
		t.Rows = append(t.Rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("request table: %w", err)
	}
	if len(t.Rows) == 0 {
		return nil, fmt.Errorf("request table: %s has no graph or okta rows", path)
	}
	return t, nil
}

// LoadRepo reads docs/providers.md of the module the working directory is
// in (tests run in their package's folder).
func LoadRepo() (*Table, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("request table: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return Load(filepath.Join(dir, "docs", "providers.md"))
		}
		up := filepath.Dir(dir)
		if up == dir {
			return nil, errors.New("request table: no go.mod above the working directory")
		}
		dir = up
	}
}

func segments(p string) []string {
	p, _, _ = strings.Cut(p, "?")
	return strings.Split(strings.Trim(p, "/"), "/")
}

// names splits "a, b (from next link), c" into a, b, c; "—", "-" and ""
// are none.
func names(cell string) []string {
	var out []string
	for _, p := range strings.Split(cell, ",") {
		p, _, _ = strings.Cut(strings.TrimSpace(p), " ")
		if p != "" && p != "—" && p != "-" {
			out = append(out, p)
		}
	}
	return out
}

// Request is what a provider sent, as the table speaks of it.
type Request struct {
	Provider string
	Method   string
	Path     string
	Options  []string
	Headers  []string
}

func (r Request) String() string {
	return fmt.Sprintf("%s %s %s options=%v headers=%v", r.Provider, r.Method, r.Path, r.Options, r.Headers)
}

// Allowed returns the row that allows r, or false.
func (t *Table) Allowed(r Request) (Row, bool) {
	segs := segments(r.Path)
	for _, row := range t.Rows {
		if row.Provider != r.Provider || row.Method != r.Method || len(row.Path) != len(segs) {
			continue
		}
		ok := true
		for i, s := range row.Path {
			if !(strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}")) && s != segs[i] {
				ok = false
				break
			}
		}
		for _, o := range r.Options {
			ok = ok && slices.Contains(row.Options, o)
		}
		for _, h := range r.Headers {
			ok = ok && slices.ContainsFunc(row.Headers, func(x string) bool { return strings.EqualFold(x, h) })
		}
		if ok {
			return row, true
		}
	}
	return Row{}, false
}

// Recorder records the requests that reach a simulator.
type Recorder struct {
	mu   sync.Mutex
	seen map[string]Request
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{seen: map[string]Request{}} }

// Wrap records every request to h as provider's; the requests inside a
// Graph $batch are recorded one by one.
func (rec *Recorder) Wrap(provider string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim") {
			h.ServeHTTP(w, r)
			return
		}
		rec.add(requestOf(provider, r.Method, r.URL, r.Header))
		if provider == "graph" && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/$batch") {
			body, err := io.ReadAll(r.Body)
			if err == nil {
				r.Body = io.NopCloser(bytes.NewReader(body))
				rec.addBatch(body, r.Header.Get("Content-Encoding"))
			}
		}
		h.ServeHTTP(w, r)
	})
}

// addBatch records the inner requests of a $batch body: their URLs are
// relative to the version segment.
func (rec *Recorder) addBatch(body []byte, encoding string) {
	if strings.EqualFold(encoding, "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return
		}
		if body, err = io.ReadAll(zr); err != nil {
			return
		}
	}
	var in struct {
		Requests []struct {
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"requests"`
	}
	if json.Unmarshal(body, &in) != nil {
		return
	}
	for _, item := range in.Requests {
		u, err := url.Parse("/v1.0/" + strings.TrimPrefix(item.URL, "/"))
		if err != nil {
			continue
		}
		h := http.Header{}
		for k, v := range item.Headers {
			h.Set(k, v)
		}
		rec.add(requestOf("graph", item.Method, u, h))
	}
}

func requestOf(provider, method string, u *url.URL, h http.Header) Request {
	r := Request{Provider: provider, Method: strings.ToUpper(method), Path: u.Path}
	for k := range u.Query() {
		r.Options = append(r.Options, k)
	}
	sort.Strings(r.Options)
	for _, n := range NotableHeaders {
		if h.Get(n) != "" {
			r.Headers = append(r.Headers, n)
		}
	}
	return r
}

func (rec *Recorder) add(r Request) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.seen[r.String()] = r
}

// Requests returns what was recorded, once each.
func (rec *Recorder) Requests() []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make([]Request, 0, len(rec.seen))
	for _, r := range rec.seen {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Unlisted returns the recorded requests that no row of t allows.
func (rec *Recorder) Unlisted(t *Table) []Request {
	var out []Request
	for _, r := range rec.Requests() {
		if _, ok := t.Allowed(r); !ok {
			out = append(out, r)
		}
	}
	return out
}

// TB is the part of testing.TB a check needs.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}

// Check records the requests to h as provider's for the rest of the test
// and, when it ends, fails it for every request docs/providers.md does not
// list. It returns the handler to serve.
func Check(t TB, provider string, h http.Handler) http.Handler {
	t.Helper()
	table, err := LoadRepo()
	if err != nil {
		t.Errorf("%v", err)
		return h
	}
	rec := NewRecorder()
	t.Cleanup(func() {
		for _, r := range rec.Unlisted(table) {
			t.Errorf("request not in docs/providers.md (add its row and the page that allows it): %s", r)
		}
	})
	return rec.Wrap(provider, h)
}
