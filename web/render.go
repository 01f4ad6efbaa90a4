package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/usersync/usersync/directory"
)

// pageTemplate is one page: the layout and partials with the page's
// "content" (each page its own set, so that every page can define
// "content" without clashing).
type pageTemplate struct{ t *template.Template }

// pageData is what the layout renders; Data is the page's own.
type pageData struct {
	Title     string
	Nav       string
	CSRF      string
	SignedIn  bool
	Notice    string
	NoticeRun string
	// Refresh, when > 0, reloads the page every so many seconds for
	// browsers without JavaScript (a running run).
	Refresh int
	Data    any
}

// refresher is a page's Data that asks for a reload without JavaScript.
type refresher interface{ RefreshSeconds() int }

func parsePages() (map[string]*pageTemplate, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("parse admin layout: %w", err)
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("list admin templates: %w", err)
	}
	pages := map[string]*pageTemplate{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone admin layout: %w", err)
		}
		if t, err = t.ParseFS(templateFS, f); err != nil {
			return nil, fmt.Errorf("parse admin template %s: %w", f, err)
		}
		pages[name] = &pageTemplate{t: t}
	}
	return pages, nil
}

// render writes a whole page. It renders into a buffer first, so that a
// template error becomes a clean 500 rather than half a page.
func (a *admin) render(w http.ResponseWriter, r *http.Request, se *session, status int, name, title, nav string, data any) {
	pd := pageData{Title: title, Nav: nav, Data: data}
	if se != nil {
		pd.CSRF, pd.SignedIn = se.CSRF, true
	}
	if r.Method == http.MethodGet {
		v := r.URL.Query()
		pd.Notice, pd.NoticeRun = notices[v.Get("notice")], v.Get("run")
	}
	if rf, ok := data.(refresher); ok {
		pd.Refresh = rf.RefreshSeconds()
	}
	var buf bytes.Buffer
	p, ok := a.pages[name]
	if !ok {
		a.log.ErrorContext(r.Context(), "admin page missing", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := p.t.ExecuteTemplate(&buf, "layout", pd); err != nil {
		a.log.ErrorContext(r.Context(), "render admin page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var funcs = template.FuncMap{
	"fmtTime":   fmtTime,
	"statusCls": statusClass,
	"runFinal":  directory.IsFinalRunStatus,
	"join":      strings.Join,
	"pathEsc":   url.PathEscape,
	"link":      link,
	"bytes":     humanBytes,
	"has":       func(list []string, v string) bool { return slices.Contains(list, v) },
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"fieldID":      fieldID,
	"label":        func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"inc":          func(i int) int { return i + 1 },
	"providerName": providerName,
	"groupKind":    groupKind,
	// headOf is the first n of a list; minus the rest's length.
	"headOf": func(list []string, n int) []string { return list[:min(n, len(list))] },
	"minus":  func(a, b int) int { return a - b },
	// atSplit cuts an address before its @, where a line may break.
	"atSplit": func(email string) []string {
		if i := strings.LastIndexByte(email, '@'); i > 0 {
			return []string{email[:i], email[i:]}
		}
		return []string{email, ""}
	},
	"navItem": func(current, key, href, label string) navItem {
		return navItem{Href: href, Label: label, Current: current == key}
	},
	"fe": func(errs map[string]string, path string) fieldErr { return fieldErr{Errors: errs, Path: path} },
	"aria": func(errs map[string]string, path string) template.HTMLAttr {
		if _, ok := errs[path]; !ok {
			return ""
		}
		// fieldID makes ids of letters, digits and "-" only.
		return template.HTMLAttr(` aria-invalid="true" aria-describedby="` + fieldID(path) + `-error"`)
	},
	"pinputs": func(groups []inputGroup) struct{ Groups []inputGroup } {
		return struct{ Groups []inputGroup }{groups}
	},
	"errOf": func(in providerInput) map[string]string {
		if in.Error == "" {
			return nil
		}
		return map[string]string{in.Path: in.Error}
	},
	"blockNote": blockNote,
	"mapTable": func(name, prefix, fromLabel, toLabel string, rows []mapRow, list string) mapTable {
		return mapTable{Name: name, Prefix: prefix, FromLabel: fromLabel, ToLabel: toLabel, Rows: rows, List: list}
	},
}

type navItem struct {
	Href, Label string
	Current     bool
}

// fieldErr is the argument of the "fielderr" template.
type fieldErr struct {
	Errors map[string]string
	Path   string
}

// secretInput is the argument of the "secret" template: whether a value
// is stored, never the value.
type secretInput struct {
	Path, Label string
	Set         bool
	Error       string
	Multiline   bool // a textarea, still never filled in
}

// mapTable is the argument of the "maprows" template.
type mapTable struct {
	Name, Prefix       string
	FromLabel, ToLabel string
	Rows               []mapRow
	List               string // id of the datalist of names offered, "" for none
}

// fmtTime shows a time in UTC, to the second; nil and zero as "—".
func fmtTime(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return "—"
		}
		t = *x
	case string:
		p, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return x
		}
		t = p
	default:
		return "—"
	}
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// statusClass is the badge style of a run or user status.
func statusClass(status string) string {
	switch status {
	case directory.RunSucceeded, directory.StatusActive, "ok":
		return "ok"
	case directory.RunFailed, directory.RunBlocked, "fail":
		return "fail"
	case directory.RunRunning:
		return "run"
	case directory.RunAwaitingApproval, directory.RunPartial:
		return "warn"
	}
	return "muted"
}

// link builds path?k=v&… with the non-empty pairs, for filters and paging.
func link(p string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return p
	}
	return p + "?" + v.Encode()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// fieldID is the id of the input of a profile field path ("csv.url" →
// "f-csv-url"), which the error summary links to.
func fieldID(path string) string {
	r := strings.NewReplacer(".", "-", "[", "-", "]", "")
	return "f-" + r.Replace(path)
}
