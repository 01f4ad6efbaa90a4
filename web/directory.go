package web

import (
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/service"
)

// directoryName names directory keys after their profiles.
type directoryName struct {
	Key, Name string
}

// directories lists "local" and every profile's directory.
func (a *admin) directories(ctx context.Context) ([]directoryName, error) {
	out := []directoryName{{Key: directory.LocalDirectory, Name: "Local accounts"}}
	opt := directory.ListOptions{Limit: 1000}
	for {
		page, err := a.store.ListProfiles(ctx, opt)
		if err != nil {
			return nil, err
		}
		for _, p := range page.Items {
			out = append(out, directoryName{Key: p.DirectoryKey, Name: p.Name})
		}
		if page.NextCursor == "" {
			return out, nil
		}
		opt.Cursor = page.NextCursor
	}
}

func nameOf(dirs []directoryName, key string) string {
	for _, d := range dirs {
		if d.Key == key {
			return d.Name
		}
	}
	return key // a deleted profile's directory keeps its users
}

type usersView struct {
	Users       []directory.User
	Next        string
	Query       string
	Status      string
	Directory   string
	Directories []directoryName
	DirName     func(key string) string
	Paged       bool // not the first page
}

func (a *admin) listUsers(q *request) error {
	ctx := q.ctx()
	v := q.r.URL.Query()
	view := usersView{Query: strings.TrimSpace(v.Get("q")), Status: v.Get("status"), Directory: v.Get("directory"),
		Paged: v.Get("cursor") != ""}
	if view.Status != "" && view.Status != directory.StatusActive && view.Status != directory.StatusDisabled {
		return errBadForm("status", "must be active or disabled")
	}
	dirs, err := a.directories(ctx)
	if err != nil {
		return err
	}
	view.Directories, view.DirName = dirs, func(k string) string { return nameOf(dirs, k) }
	page, err := a.store.ListUsers(ctx, directory.UserFilter{Status: view.Status, Directory: view.Directory, Query: view.Query},
		directory.ListOptions{Limit: 50, Cursor: v.Get("cursor")})
	if err != nil {
		return err
	}
	view.Users, view.Next = page.Items, page.NextCursor
	return q.render(http.StatusOK, "users", "Users", "users", view)
}

type userView struct {
	User       *directory.User
	Manager    *directory.User
	Directory  string
	Attributes []mapRow
	// Profiles are the directories a local user can be moved to.
	Profiles []directoryName
	// Error is why enabling the user was refused: the licence.
	Error string
}

func (a *admin) showUser(q *request) error {
	return a.renderUser(q, http.StatusOK, "")
}

// renderUser renders a user's page, with the refusal of an action when
// errMsg is set.
func (a *admin) renderUser(q *request, status int, errMsg string) error {
	ctx := q.ctx()
	u, err := a.store.GetUser(ctx, pathID(q.r))
	if err != nil {
		return err
	}
	dirs, err := a.directories(ctx)
	if err != nil {
		return err
	}
	view := userView{User: u, Directory: nameOf(dirs, u.DirectoryKey), Error: errMsg}
	if u.DirectoryKey == directory.LocalDirectory {
		view.Profiles = dirs[1:]
	}
	if u.ManagerID != nil && *u.ManagerID != "" {
		// A manager deleted since is shown by id only.
		if m, err := a.store.GetUser(ctx, *u.ManagerID); err == nil {
			view.Manager = m
		} else if !errors.Is(err, directory.ErrNotFound) {
			return err
		}
	}
	for k, val := range u.Attributes {
		view.Attributes = append(view.Attributes, mapRow{From: k, To: val})
	}
	slices.SortFunc(view.Attributes, func(x, y mapRow) int { return strings.Compare(x.From, y.From) })
	return q.render(status, "user", u.Username, "users", view)
}

// User actions of the user page: each is confirmed on a page of its own
// (a GET, so it works without JavaScript) and goes through the API's code
// (licence, audit).
const (
	userDisable = "disable"
	userEnable  = "enable"
	userDelete  = "delete"
)

func (a *admin) confirmUserAction(q *request) error {
	u, err := a.store.GetUser(q.ctx(), pathID(q.r))
	if err != nil {
		return err
	}
	dirs, err := a.directories(q.ctx())
	if err != nil {
		return err
	}
	back := "/users/" + escape(u.ID)
	synced := ""
	if u.DirectoryKey != directory.LocalDirectory {
		synced = " " + u.Username + " is synced by “" + nameOf(dirs, u.DirectoryKey) + "”: "
	}
	v := confirmView{Action: back + "/" + q.r.PathValue("action"), Back: back}
	title := ""
	switch q.r.PathValue("action") {
	case userDisable:
		title, v.Question, v.Button = "Disable user", "Disable "+u.Username+"?", "Disable "+u.Username
		v.Detail = u.Username + " is then listed in no group and counted in no group's members; its memberships and roles are kept."
		if synced != "" {
			v.Detail += synced + "its next sync enables it again while the provider has it active."
		}
	case userEnable:
		title, v.Question, v.Button, v.Safe = "Enable user", "Enable "+u.Username+"?", "Enable "+u.Username, true
		v.Detail = u.Username + " takes one seat of the licence again and is back in its groups."
		if synced != "" {
			v.Detail += synced + "its next sync sets its groups as the provider says, and disables it again if the provider has it inactive."
		}
	case userDelete:
		title, v.Question, v.Button = "Delete user", "Delete "+u.Username+"?", "Delete "+u.Username
		v.Detail = u.Username + " is removed with its memberships and roles; the users it manages lose their manager. This cannot be undone."
		if synced != "" {
			v.Detail += synced + "its next sync creates it again (as a new user) while the provider has it active; disable it instead to keep it out."
		}
	default:
		return errBadForm("action", "unknown user action %q", q.r.PathValue("action"))
	}
	return q.render(http.StatusOK, "confirm", title, "users", v)
}

// userAction disables, enables or deletes a user. The licence refusing an
// enable is shown on the user's page, with what to do about it.
func (a *admin) userAction(q *request) error {
	ctx, id := q.ctx(), pathID(q.r)
	var err error
	notice := ""
	switch q.r.PathValue("action") {
	case userDisable:
		notice = "userdisabled"
		_, err = a.svc.SetUserStatus(ctx, id, directory.StatusDisabled)
	case userEnable:
		notice = "userenabled"
		if _, err = a.svc.SetUserStatus(ctx, id, directory.StatusActive); err != nil {
			if pr := a.svc.Explain(ctx, err); pr.Code == service.CodeLicenceLimit {
				return a.renderUser(q, pr.Kind.HTTPStatus(), "Not enabled: "+pr.Message+".")
			}
		}
	case userDelete:
		if _, err = a.svc.DeleteUser(ctx, id); err == nil {
			return q.redirect(withNotice("/users", "userdeleted", ""))
		}
	default:
		return errBadForm("action", "unknown user action %q", q.r.PathValue("action"))
	}
	if err != nil {
		return err
	}
	return q.redirect(withNotice("/users/"+escape(id), notice, ""))
}

// switchDirectory moves a local user to a profile's directory (the
// migration step before that profile's first sync), through the API's
// switch-directory.
func (a *admin) switchDirectory(q *request) error {
	ctx := q.ctx()
	u, err := a.store.GetUser(ctx, pathID(q.r))
	if err != nil {
		return err
	}
	out, err := a.svc.SwitchDirectory(ctx, q.r.PostForm.Get("directoryKey"), []string{u.Username})
	if err != nil {
		return err
	}
	notice := "switched"
	if len(out.Results) != 1 || out.Results[0].Result != directory.SwitchSwitched {
		notice = "notswitched"
	}
	return q.redirect(withNotice("/users/"+escape(u.ID), notice, ""))
}

type groupsView struct {
	Groups  []directory.Group
	Next    string
	Query   string
	DirName func(key string) string
}

func (a *admin) listGroups(q *request) error {
	ctx := q.ctx()
	v := q.r.URL.Query()
	dirs, err := a.directories(ctx)
	if err != nil {
		return err
	}
	view := groupsView{Query: strings.TrimSpace(v.Get("q")), DirName: func(k string) string { return nameOf(dirs, k) }}
	page, err := a.store.ListGroups(ctx, view.Query, directory.ListOptions{Limit: 50, Cursor: v.Get("cursor")})
	if err != nil {
		return err
	}
	view.Groups, view.Next = page.Items, page.NextCursor
	return q.render(http.StatusOK, "groups", "Groups", "groups", view)
}

type groupView struct {
	Group     *directory.Group
	Directory string
	Members   []directory.User
	Next      string
	// Status is the members shown: "" (active, as the API lists them by
	// default) or "all" (the disabled ones too).
	Status string
}

func (a *admin) showGroup(q *request) error {
	ctx := q.ctx()
	g, err := a.store.GetGroup(ctx, pathID(q.r))
	if err != nil {
		return err
	}
	dirs, err := a.directories(ctx)
	if err != nil {
		return err
	}
	v := q.r.URL.Query()
	view := groupView{Group: g, Directory: nameOf(dirs, g.DirectoryKey), Status: v.Get("status")}
	// A disabled user is in no group unless asked for, as in the API.
	f := directory.MemberFilter{Status: directory.StatusActive}
	switch view.Status {
	case "":
	case "all":
		f.Status = ""
	default:
		return errBadForm("status", "must be all or absent")
	}
	page, err := a.store.ListGroupMembers(ctx, g.ID, f, directory.ListOptions{Limit: 100, Cursor: v.Get("cursor")})
	if err != nil {
		return err
	}
	view.Members, view.Next = page.Items, page.NextCursor
	return q.render(http.StatusOK, "group", g.Name, "groups", view)
}

// auditCategories are the categories of the audit log.
var auditCategories = []string{directory.CategorySync, directory.CategorySyncConfig, directory.CategoryDirectory}

type auditView struct {
	Entries    []directory.AuditEntry
	Next       string
	Category   string
	Profile    string
	Action     string
	RunID      string
	Subject    string
	Since      string // as the datetime-local input holds it, UTC
	Categories []string
	Profiles   []directoryName
}

// sinceLayout is the value of a datetime-local input.
const sinceLayout = "2006-01-02T15:04"

func (a *admin) listAudit(q *request) error {
	ctx := q.ctx()
	v := q.r.URL.Query()
	view := auditView{Category: v.Get("category"), Profile: v.Get("profile"), Action: strings.TrimSpace(v.Get("action")),
		RunID: strings.TrimSpace(v.Get("runId")), Subject: strings.TrimSpace(v.Get("subject")), Since: v.Get("since"),
		Categories: auditCategories}
	f := directory.AuditFilter{Category: view.Category, Connection: view.Profile, ActionWord: service.AuditActionWord(view.Action),
		RunID: view.RunID, Subject: view.Subject}
	if view.Since != "" {
		t, err := time.Parse(sinceLayout, view.Since)
		if err != nil {
			return errBadForm("since", "must be a date and time such as 2024-05-01T09:00")
		}
		f.Since = t
	}
	dirs, err := a.directories(ctx)
	if err != nil {
		return err
	}
	view.Profiles = dirs[1:] // the profiles, by name
	page, err := a.store.ListAudit(ctx, f, directory.ListOptions{Limit: 100, Cursor: v.Get("cursor")})
	if err != nil {
		return err
	}
	view.Entries, view.Next = page.Items, page.NextCursor
	return q.render(http.StatusOK, "audit", "Audit log", "audit", view)
}

type licenceView struct {
	Limit  int
	Active int
	Error  string
	Value  string
}

func (a *admin) licenceView(ctx context.Context) (licenceView, error) {
	limit, err := a.store.GetLicenceLimit(ctx)
	if err != nil {
		return licenceView{}, err
	}
	active, err := a.store.CountActiveUsers(ctx)
	if err != nil {
		return licenceView{}, err
	}
	return licenceView{Limit: limit, Active: active, Value: strconv.Itoa(limit)}, nil
}

func (a *admin) showLicence(q *request) error {
	v, err := a.licenceView(q.ctx())
	if err != nil {
		return err
	}
	return q.render(http.StatusOK, "licence", "Licence", "licence", v)
}

func (a *admin) setLicence(q *request) error {
	ctx := q.ctx()
	raw := strings.TrimSpace(q.r.PostForm.Get("limit"))
	n, perr := strconv.Atoi(raw)
	err := perr
	if perr == nil {
		err = a.svc.SetLicenceLimit(ctx, n)
	}
	if err == nil {
		return q.redirect(withNotice("/licence", "licence", ""))
	}
	v, verr := a.licenceView(ctx)
	if verr != nil {
		return verr
	}
	v.Value = raw
	if perr != nil {
		v.Error = "must be a whole number (0 = unlimited)"
	} else {
		pr := a.svc.Explain(ctx, err)
		if pr.Kind.HTTPStatus() != http.StatusUnprocessableEntity {
			return err
		}
		v.Error = pr.Message
		if len(pr.Fields) > 0 {
			v.Error = pr.Fields[0].Message
		}
	}
	return q.render(http.StatusUnprocessableEntity, "licence", "Licence", "licence", v)
}

type documentsView struct {
	Documents []directory.Document
	Next      string
	MaxSize   int64
	Error     string
}

func (a *admin) documentsView(ctx context.Context, cursor string) (documentsView, error) {
	page, err := a.store.ListDocuments(ctx, directory.ListOptions{Limit: 100, Cursor: cursor})
	if err != nil {
		return documentsView{}, err
	}
	return documentsView{Documents: page.Items, Next: page.NextCursor, MaxSize: a.svc.MaxDocumentSize()}, nil
}

func (a *admin) listDocuments(q *request) error {
	v, err := a.documentsView(q.ctx(), q.r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	return q.render(http.StatusOK, "documents", "Documents", "documents", v)
}

// uploadDocument streams the form's file into the document store. The
// CSRF token is the form's first part (the hidden input comes before the
// file input, and browsers send parts in order), so it is checked before
// any of the file is read.
func (a *admin) uploadDocument(q *request) error {
	ctx := q.ctx()
	fail := func(status int, msg string) error {
		v, err := a.documentsView(ctx, "")
		if err != nil {
			return err
		}
		v.Error = msg
		return q.render(status, "documents", "Documents", "documents", v)
	}
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, a.svc.MaxDocumentSize()+maxFormBody)
	mr, err := q.r.MultipartReader()
	if err != nil {
		return fail(http.StatusBadRequest, "The upload was not a file form.")
	}
	csrfOK := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return fail(http.StatusBadRequest, "Choose a file to upload.")
		}
		if err != nil {
			return fail(http.StatusBadRequest, "The upload was cut short or malformed.")
		}
		switch part.FormName() {
		case "csrf":
			tok, _ := io.ReadAll(io.LimitReader(part, 256))
			csrfOK = tokenEqual(string(tok), q.se.CSRF)
		case "file":
			if !csrfOK {
				a.render(q.w, q.r, q.se, http.StatusForbidden, "error", "Refused", "",
					errorView{Message: "The upload was refused: it did not carry this session's security token. Reload the page and try again."})
				return nil
			}
			return a.storeUpload(q, part, fail)
		}
		_ = part.Close()
	}
}

func (a *admin) storeUpload(q *request, part *multipart.Part, fail func(int, string) error) error {
	name := part.FileName()
	if name == "" {
		return fail(http.StatusBadRequest, "Choose a file to upload.")
	}
	d, err := a.svc.UploadDocument(q.ctx(), name, part.Header.Get("Content-Type"), part)
	if err != nil {
		if a.svc.Explain(q.ctx(), err).Kind == service.TooLarge {
			return fail(http.StatusRequestEntityTooLarge, "The file is larger than "+humanBytes(a.svc.MaxDocumentSize())+".")
		}
		return err
	}
	return q.redirect(withNotice("/documents", "uploaded", "") + "#doc-" + d.ID)
}

func (a *admin) confirmDeleteDocument(q *request) error {
	d, err := a.store.GetDocument(q.ctx(), pathID(q.r))
	if err != nil {
		return err
	}
	return q.render(http.StatusOK, "confirm", "Delete document", "documents", confirmView{
		Question: "Delete the document “" + d.Name + "”?",
		Detail:   "A CSV profile that reads this document cannot sync until it is given another one.",
		Action:   "/documents/" + escape(d.ID) + "/delete", Button: "Delete document", Back: "/documents"})
}

func (a *admin) deleteDocument(q *request) error {
	if err := a.svc.DeleteDocument(q.ctx(), pathID(q.r)); err != nil {
		return err
	}
	return q.redirect(withNotice("/documents", "docdeleted", ""))
}
