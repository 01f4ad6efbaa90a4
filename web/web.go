// Package web is the admin page of usersync: server-rendered HTML on the
// API's origin (mounted by api.Options.Admin at "/"), for people who would
// rather not drive the JSON API with curl. It has no rules of its own:
// profiles, runs, the directory's hand-made changes, documents and the
// licence go through package service, the very code behind /api/v1, with
// inputs built from the forms; reads go straight to the directory.Store,
// so the page and the API cannot disagree about what a save or a sync does.
// It knows neither Gin nor the API's JSON.
//
// The page works without JavaScript; admin.js only adds conveniences (live
// run counts, group search and the pattern check without a reload). The
// admin signs in with the API token; the session is a signed cookie (see
// session.go), every form carries a CSRF token, and no secret of a profile
// is ever written into HTML: the page sees profiles only as the API shows
// them, redacted.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/rules"
	"github.com/usersync/usersync/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures the admin page.
type Options struct {
	Service *service.Service
	Store   directory.Store
	// Token is the API token, which is also the admin's password.
	Token string
	// SessionKey signs the session cookies (SessionKey derives it).
	SessionKey []byte
	Logger     *slog.Logger
	// IdleTimeout ends an unused session; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Now is the clock of the sessions; nil means time.Now (tests move it).
	Now func() time.Time
}

// providerTimeout bounds a call to a provider made while a page renders:
// a slow tenant must not hang the admin page.
const providerTimeout = 20 * time.Second

type admin struct {
	svc      *service.Service
	store    directory.Store
	token    string
	log      *slog.Logger
	sessions *sessions
	pages    map[string]*pageTemplate
}

// New returns the admin page handler.
func New(o Options) (http.Handler, error) {
	if o.Service == nil || o.Store == nil {
		return nil, errors.New("web: Options.Service and Options.Store are required")
	}
	if len(o.SessionKey) < 16 {
		return nil, errors.New("web: Options.SessionKey must be at least 16 bytes")
	}
	a := &admin{svc: o.Service, store: o.Store, token: o.Token, log: o.Logger,
		sessions: &sessions{key: o.SessionKey, idle: o.IdleTimeout, now: o.Now,
			revoked: o.Store.SessionRevoked, revoke: o.Store.RevokeSession}}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.sessions.log = a.log
	if a.sessions.idle <= 0 {
		a.sessions.idle = DefaultIdleTimeout
	}
	if a.sessions.now == nil {
		a.sessions.now = time.Now
	}
	var err error
	if a.pages, err = parsePages(); err != nil {
		return nil, err
	}
	return a.routes(), nil
}

func (a *admin) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))

	mux.HandleFunc("GET /signin", a.signinPage)
	mux.HandleFunc("POST /signin", a.signin)
	// Signing out must not renew the cookie it clears.
	mux.Handle("POST /signout", a.wrap(a.signout, false, false))

	mux.Handle("GET /{$}", a.page(func(q *request) error { return q.redirect("/profiles") }))

	mux.Handle("GET /profiles", a.page(a.listProfiles))
	mux.Handle("GET /profiles/new", a.page(a.newProfile))
	mux.Handle("POST /profiles/new", a.page(a.createProfile))
	mux.Handle("GET /profiles/{id}", a.page(a.editProfile))
	mux.Handle("POST /profiles/{id}", a.page(a.saveProfile))
	mux.Handle("POST /profiles/{id}/enabled", a.page(a.setEnabled))
	mux.Handle("POST /profiles/{id}/reset-last-run", a.page(a.resetLastRun))
	mux.Handle("GET /profiles/{id}/health", a.page(a.showHealth))
	mux.Handle("GET /profiles/{id}/delete", a.page(a.confirmDeleteProfile))
	mux.Handle("POST /profiles/{id}/delete", a.page(a.deleteProfile))
	mux.Handle("GET /profiles/{id}/groups.json", a.json(a.groupsJSON))
	mux.Handle("GET /profiles/{id}/pattern.json", a.json(a.patternJSON))

	mux.Handle("GET /runs", a.page(a.listRuns))
	mux.Handle("GET /runs/{id}", a.page(a.showRun))
	mux.Handle("GET /runs/{id}/status.json", a.json(a.runStatusJSON))
	mux.Handle("POST /runs/{id}/{action}", a.page(a.steerRun))

	mux.Handle("GET /users", a.page(a.listUsers))
	mux.Handle("GET /users/{id}", a.page(a.showUser))
	mux.Handle("POST /users/{id}/switch-directory", a.page(a.switchDirectory))
	mux.Handle("GET /users/{id}/{action}", a.page(a.confirmUserAction))
	mux.Handle("POST /users/{id}/{action}", a.page(a.userAction))
	mux.Handle("GET /groups", a.page(a.listGroups))
	mux.Handle("GET /groups/{id}", a.page(a.showGroup))
	mux.Handle("GET /audit", a.page(a.listAudit))
	mux.Handle("GET /licence", a.page(a.showLicence))
	mux.Handle("POST /licence", a.page(a.setLicence))
	mux.Handle("GET /documents", a.page(a.listDocuments))
	mux.Handle("POST /documents", a.upload(a.uploadDocument))
	mux.Handle("GET /documents/{id}/delete", a.page(a.confirmDeleteDocument))
	mux.Handle("POST /documents/{id}/delete", a.page(a.deleteDocument))

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.render(w, r, nil, http.StatusNotFound, "error", "Not found", "", errorView{Message: "There is no such page."})
	})
	return securityHeaders(mux)
}

// securityHeaders keeps the pages in their own origin: scripts and styles
// only from /static (no inline script can run, so an injection that slipped
// past html/template could not either), no framing, no referrer to other
// sites, and nothing cached that was rendered for a signed-in admin.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Short: the files change with the binary and carry no version in
		// their names.
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// request is one signed-in request.
type request struct {
	w  http.ResponseWriter
	r  *http.Request
	se *session
	a  *admin
}

func (q *request) ctx() context.Context { return q.r.Context() }

// redirect answers a form post or a bare path with 303 See Other, so a
// reload never posts the form again.
func (q *request) redirect(to string) error {
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
	return nil
}

// render writes a page with the layout.
func (q *request) render(status int, name, title, nav string, data any) error {
	q.a.render(q.w, q.r, q.se, status, name, title, nav, data)
	return nil
}

// page wraps a page handler: it needs a session, and a POST needs the
// session's CSRF token and must come from this site. Errors are rendered
// as the error page with the status the API would answer.
func (a *admin) page(h func(q *request) error) http.Handler { return a.wrap(h, false, true) }

// upload is page for the one form posted as multipart: its handler checks
// the CSRF token itself, in the body's first part, so that a 100 MB body
// is not read before the check. Any other handler refuses a multipart post.
func (a *admin) upload(h func(q *request) error) http.Handler { return a.wrap(h, true, true) }

// wrap is page and upload; touch renews the session's cookie when due.
func (a *admin) wrap(h func(q *request) error, multipart, touch bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		se := a.sessions.read(r)
		if se == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			a.render(w, r, nil, http.StatusUnauthorized, "error", "Signed out", "",
				errorView{Message: "Your session has ended, so nothing was changed. Sign in and try again.", SignIn: true})
			return
		}
		q := &request{w: w, r: r, se: se, a: a}
		if msg := badParams(r); msg != "" {
			a.render(w, r, se, http.StatusBadRequest, "error", "Bad request", "", errorView{Message: msg})
			return
		}
		if r.Method == http.MethodPost && !a.checkCSRF(q, multipart) {
			a.render(w, r, se, http.StatusForbidden, "error", "Refused", "",
				errorView{Message: "The form was refused: it did not carry this session's security token, or came from another site. Reload the page and try again."})
			return
		}
		if touch {
			a.sessions.touch(w, r, se)
		}
		if err := h(q); err != nil {
			a.fail(q, err)
		}
	})
}

// checkCSRF compares the form's token with the session's; for the
// upload (multipart), only the origin is checked here.
func (a *admin) checkCSRF(q *request, multipart bool) bool {
	if !sameOrigin(q.r) {
		return false
	}
	if isMultipart := strings.HasPrefix(q.r.Header.Get("Content-Type"), "multipart/form-data"); multipart || isMultipart {
		// ParseForm does not read a multipart body, so a token in one
		// would go unseen: only the upload may take one, and checks it.
		return multipart && isMultipart
	}
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, maxFormBody)
	if err := q.r.ParseForm(); err != nil {
		return false
	}
	return tokenEqual(q.r.PostForm.Get("csrf"), q.se.CSRF)
}

// maxFormBody caps a form post (a profile form is a few kilobytes).
const maxFormBody = 1 << 20

// json wraps a JSON endpoint of the pages' script: a session is needed,
// and a failure is {"error": "..."} with the API's status.
func (a *admin) json(h func(q *request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		se := a.sessions.read(r)
		if se == nil {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "signed out"})
			return
		}
		if msg := badParams(r); msg != "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
			return
		}
		q := &request{w: w, r: r, se: se, a: a}
		v, err := h(q)
		if err != nil {
			p := a.svc.Explain(r.Context(), err)
			writeJSON(w, p.Kind.HTTPStatus(), map[string]string{"error": p.Message})
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// fail renders the error page of an error a handler returned.
func (a *admin) fail(q *request, err error) {
	p := a.svc.Explain(q.ctx(), err)
	title := http.StatusText(p.Kind.HTTPStatus())
	if title == "" {
		title = "Error"
	}
	msg := p.Message
	for _, f := range p.Fields {
		msg = f.Message
		if f.Field != "" {
			msg = f.Field + ": " + f.Message
		}
	}
	a.render(q.w, q.r, q.se, p.Kind.HTTPStatus(), "error", title, "", errorView{Message: msg, RunID: p.RunID})
}

type errorView struct {
	Message string
	RunID   string
	SignIn  bool
}

// signinPage shows the sign-in form, or goes on when signed in already.
func (a *admin) signinPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if a.sessions.read(r) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	a.render(w, r, nil, http.StatusOK, "signin", "Sign in", "",
		signinView{CSRF: a.sessions.signinToken(w, r), Next: next})
}

type signinView struct {
	CSRF  string
	Next  string
	Error string
}

// signin checks the API token and starts a session.
func (a *admin) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	_ = r.ParseForm() // a malformed body fails the checks below
	next := localPath(r.PostForm.Get("next"))
	st := a.sessions.readSignin(r)
	if st == nil || !sameOrigin(r) || !tokenEqual(r.PostForm.Get("csrf"), st.CSRF) {
		a.render(w, r, nil, http.StatusForbidden, "signin", "Sign in", "", signinView{
			CSRF: a.sessions.signinToken(w, r), Next: next,
			Error: "The sign-in form expired or came from another site. Try again."})
		return
	}
	// Wrong tokens are throttled with the API's bearer tokens: it is the
	// same secret, guessed through either door.
	throttle, client := a.svc.SignInThrottle(), service.ClientOf(r)
	if ok, wait := throttle.Allow(client, service.ViaAdmin); !ok {
		a.log.WarnContext(r.Context(), "admin sign-in throttled", "retryAfter", wait.String())
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		a.render(w, r, nil, http.StatusTooManyRequests, "signin", "Sign in", "", signinView{
			CSRF: st.CSRF, Next: next,
			Error: fmt.Sprintf("Too many wrong tokens. Wait %d seconds and try again.", int(math.Ceil(wait.Seconds())))})
		return
	}
	if a.token == "" || !tokenEqual(strings.TrimSpace(r.PostForm.Get("token")), a.token) {
		throttle.Fail(client, service.ViaAdmin)
		a.log.WarnContext(r.Context(), "admin sign-in refused: wrong token")
		a.render(w, r, nil, http.StatusUnauthorized, "signin", "Sign in", "", signinView{
			CSRF: st.CSRF, Next: next, Error: "That is not the API token."})
		return
	}
	a.sessions.start(w, r)
	http.SetCookie(w, a.sessions.cookie(r, signinCookie, "", -1))
	a.log.InfoContext(r.Context(), "admin signed in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (a *admin) signout(q *request) error {
	if err := a.sessions.end(q.w, q.r, q.se); err != nil {
		return err
	}
	a.log.InfoContext(q.ctx(), "admin signed out")
	return q.redirect("/signin")
}

// notices are the messages a redirect after a form asks the next page to
// show (?notice=saved): a fixed table, so a link cannot make the page say
// anything else.
var notices = map[string]string{
	"created":     "Profile created.",
	"saved":       "Profile saved.",
	"sync":        "Profile saved and a sync started.",
	"synced":      "Sync started.",
	"busy":        "A run of this profile is already going; no new run was started.",
	"tested":      "Profile saved and connection tested.",
	"enabled":     "Profile enabled.",
	"disabled":    "Profile disabled.",
	"deleted":     "Profile deleted. The users it synced stay in the directory.",
	"approve":     "Run approved: it goes on and applies its changes.",
	"cancel":      "Cancel requested: the run stops after its current step.",
	"retry":       "A new run started.",
	"preview":     "Preview of the revert: nothing is changed yet. Check the changes below, then confirm.",
	"revert":      "The revert started: it puts back what the run changed, as a run of its own.",
	"uploaded":    "Document uploaded.",
	"docdeleted":  "Document deleted.",
	"licence":     "Licence limit saved.",
	"switched":    "User moved: the profile's next sync adopts it by username.",
	"notswitched": "The user was not moved: only a local account can be moved to a profile's directory.",
	"notsaved":    "Not saved: the profile has errors, shown beside their fields.",
	"userdisabled": "User disabled: it is in no group until it is enabled again. A sync enables a synced user " +
		"again while the provider has it active.",
	"userenabled": "User enabled.",
	"userdeleted": "User deleted. A synced user still active in the provider is created again by the next sync.",
	"reset": "Last run time reset: the schedule runs now (a run already going makes it a skipped run), and the " +
		"daily rule ignores the manual runs before this.",
	"noschedule": "Nothing was reset: this profile has no schedule (Schedule: off), so there is no last run time " +
		"to reset and nothing runs by itself. Save and sync starts a run now; or choose a schedule below and save.",
	"resetdisabled": "Nothing was reset: the profile is disabled and its schedule paused. Enable it first.",
}

// withNotice adds ?notice= (and the run to link) to a path.
func withNotice(path, notice, runID string) string {
	v := url.Values{"notice": {notice}}
	if runID != "" {
		v.Set("run", runID)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	frag := ""
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path, frag = path[:i], path[i:]
	}
	return path + sep + v.Encode() + frag
}

func pathID(r *http.Request) string { return r.PathValue("id") }

func escape(s string) string { return url.PathEscape(s) }

// errBadForm is a form value the page itself never sends (a hand-made
// post): refused as a field error, as the API refuses a bad value.
func errBadForm(field, format string, args ...any) error {
	return profile.FieldErrors{{Field: field, Message: fmt.Sprintf(format, args...)}}
}

// badParams says what is wrong with a path id or query value the store
// could not take (a NUL, bytes that are not UTF-8, an overlong value),
// "" when nothing is: PostgreSQL refuses a NUL as a server error.
func badParams(r *http.Request) string {
	if id := r.PathValue("id"); id != "" {
		if msg := rules.TextProblem(id, 256, false); msg != "" {
			return "The address is not valid: its id " + msg + "."
		}
	}
	for key, values := range r.URL.Query() {
		for _, v := range values {
			if msg := rules.TextProblem(v, 4096, false); msg != "" {
				return fmt.Sprintf("The address is not valid: %s %s.", strings.ToValidUTF8(key, "?"), msg)
			}
		}
	}
	return ""
}
