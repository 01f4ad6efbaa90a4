package web

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/service"
)

// profileRow is one line of the profiles list.
type profileRow struct {
	ID, Name, Provider string
	Enabled            bool
	LastRun            *directory.Run
	NextRunAt          *time.Time
	LastTest           *service.TestRecord
}

type profilesView struct {
	Rows []profileRow
	Next string
}

func (a *admin) listProfiles(q *request) error {
	ctx := q.ctx()
	page, err := a.store.ListProfiles(ctx, directory.ListOptions{Cursor: q.r.URL.Query().Get("cursor")})
	if err != nil {
		return err
	}
	v := profilesView{Next: page.NextCursor}
	// A page of profiles costs the same few reads however long it is: the
	// views read their last runs and schedules together, and the last
	// tests come in one query.
	views, err := a.svc.ProfileViews(ctx, page.Items)
	if err != nil {
		return err
	}
	ids := make([]string, len(page.Items))
	for i := range page.Items {
		ids[i] = page.Items[i].ID
	}
	tests, err := a.svc.LastTests(ctx, ids)
	if err != nil {
		return err
	}
	for i := range page.Items {
		p := &page.Items[i]
		v.Rows = append(v.Rows, profileRow{ID: p.ID, Name: p.Name, Provider: p.Provider, Enabled: p.Enabled,
			NextRunAt: views[i].NextRunAt, LastRun: views[i].LastRun, LastTest: tests[p.ID]})
	}
	return q.render(http.StatusOK, "profiles", "Profiles", "profiles", v)
}

// editorView is the profile editor page.
type editorView struct {
	Form       *profileForm
	Provider   providerSections // the inputs of the provider's block
	Attributes []string         // the provider's attribute catalogue; nil = free text
	AttrLabel  string           // what the attribute map's left column holds
	AttrList   string           // id of the datalist of Attributes, "" for none
	AttrHelp   string
	CanTest    bool
	CanGroups  bool
	LastTest   *service.TestRecord
	LastRun    *directory.Run
	NextRunAt  *time.Time
	Picker     *groupPicker
	Preview    *patternPreview
	Zones      []string
	Action     string // the form's URL
}

// groupPicker is the Directory settings' list of provider groups.
type groupPicker struct {
	Search string
	Items  []pickGroup
	// Extra are selected group ids not on the page shown (another page,
	// another search, or gone from the provider).
	Extra []string
	Next  string
	Error string
}

type pickGroup struct {
	provider.Group
	Selected bool
}

// zones offered for a daily schedule; any IANA name may be typed.
var zones = []string{"UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Rome",
	"Europe/Amsterdam", "Europe/Stockholm", "Europe/Warsaw", "Europe/Athens", "America/New_York",
	"America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo", "America/Toronto",
	"Asia/Dubai", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland"}

func (a *admin) newProfile(q *request) error {
	prov, ok := profile.Lookup(q.r.URL.Query().Get("provider"))
	if !ok {
		return q.render(http.StatusOK, "choose", "New profile", "profiles", profile.Providers())
	}
	return a.showEditor(q, http.StatusOK, newForm(prov), nil)
}

// showEditor renders the editor of form; preview is the pattern check the
// admin asked for, if any.
func (a *admin) showEditor(q *request, status int, form *profileForm, preview *patternPreview) error {
	ctx := q.ctx()
	v := editorView{Form: form, CanTest: a.svc.CanTest(), CanGroups: a.svc.CanListGroups(), Preview: preview, Zones: zones,
		Action: "/profiles/new"}
	prov, known := profile.Lookup(form.Cfg.Provider)
	v.AttrLabel = "Provider attribute"
	var docs []directory.Document
	if known {
		v.AttrLabel, v.AttrHelp, v.Attributes = prov.AttributeLabel, prov.AttributeHelp, prov.Attributes
		if slices.ContainsFunc(prov.Fields, func(f profile.Field) bool { return f.Kind == profile.KindDocument }) {
			page, err := a.store.ListDocuments(ctx, directory.ListOptions{Limit: 1000})
			if err != nil {
				return err
			}
			docs = page.Items
		}
	}
	if len(v.Attributes) > 0 {
		v.AttrList = "attr-list"
	}
	v.Provider = providerInputs(form, docs)
	wholeSource := known && prov.WholeSource
	title := "New " + providerName(form.Cfg.Provider) + " profile"
	if !form.New {
		title = form.Cfg.Name
		v.Action = "/profiles/" + escape(form.ID)
		var err error
		if v.LastTest, err = a.svc.LastTest(ctx, form.ID); err != nil {
			return err
		}
		if v.LastRun, err = a.store.LastRun(ctx, form.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
			return err
		}
		v.NextRunAt = form.NextRunAt
		if !wholeSource && v.CanGroups {
			qv := q.r.URL.Query()
			v.Picker = a.pickGroups(ctx, form, qv.Get("groupSearch"), qv.Get("groupCursor"))
		}
	}
	if v.Picker == nil && !wholeSource {
		v.Picker = &groupPicker{Extra: form.Cfg.Groups}
	}
	return q.render(status, "profile", title, "profiles", v)
}

func providerName(p string) string {
	if prov, ok := profile.Lookup(p); ok {
		return prov.DisplayName
	}
	return p
}

// pickGroups loads one page of the stored profile's provider groups. A
// provider that fails leaves the picker with its message and the groups
// already selected, so the rest of the page still works.
func (a *admin) pickGroups(ctx context.Context, form *profileForm, search, cursor string) *groupPicker {
	gp := &groupPicker{Search: search}
	page, err := a.providerGroups(ctx, form.ID, search, cursor, pickerPage)
	if err != nil {
		gp.Error = a.svc.Explain(ctx, err).Message
		gp.Extra = form.Cfg.Groups
		return gp
	}
	gp.Next = page.Next
	shown := map[string]bool{}
	for _, g := range page.Items {
		gp.Items = append(gp.Items, pickGroup{Group: g, Selected: slices.Contains(form.Cfg.Groups, g.ID)})
		shown[g.ID] = true
	}
	for _, id := range form.Cfg.Groups {
		if !shown[id] {
			gp.Extra = append(gp.Extra, id)
		}
	}
	return gp
}

// Page sizes asked of the provider: the picker shows a screenful, the
// pattern check reads as much as a page may hold.
const (
	pickerPage  = 100
	previewPage = 1000
)

// providerGroups is a page of a stored profile's provider groups, through
// the API's picker (its own credentials, its error messages), bounded in
// time so that a slow tenant cannot hang the page.
func (a *admin) providerGroups(ctx context.Context, id, search, cursor string, limit int) (provider.Page[provider.Group], error) {
	ctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	return a.svc.ProviderGroups(ctx, id, search, cursor, limit)
}

func (a *admin) editProfile(q *request) error {
	p, err := a.store.GetProfile(q.ctx(), pathID(q.r))
	if err != nil {
		return err
	}
	form, err := a.storedForm(q.ctx(), p)
	if err != nil {
		return err
	}
	return a.showEditor(q, http.StatusOK, form, nil)
}

func (a *admin) storedForm(ctx context.Context, p *directory.Profile) (*profileForm, error) {
	view, err := a.svc.ProfileView(ctx, p)
	if err != nil {
		return nil, err
	}
	return formFromView(view)
}

// Buttons of the editor's form (name "action").
const (
	actSave    = "save"
	actSync    = "sync"
	actTest    = "test"
	actPreview = "preview"
)

func (a *admin) createProfile(q *request) error {
	prov, ok := profile.Lookup(q.r.PostForm.Get("provider"))
	if !ok {
		return errBadForm("provider", "must be one of %s", strings.Join(profile.ProviderNames(), ", "))
	}
	return a.submitProfile(q, newForm(prov))
}

func (a *admin) saveProfile(q *request) error {
	p, err := a.store.GetProfile(q.ctx(), pathID(q.r))
	if err != nil {
		return err
	}
	base, err := a.storedForm(q.ctx(), p)
	if err != nil {
		return err
	}
	return a.submitProfile(q, base)
}

// submitProfile handles the editor's buttons: save, save and sync, save
// and test, or check the group pattern (which saves nothing).
func (a *admin) submitProfile(q *request, base *profileForm) error {
	ctx := q.ctx()
	action := q.r.PostForm.Get("action")
	posted, errs := readProfileForm(base, q.r.PostForm)
	form := posted.form
	if action == actPreview {
		pv := a.previewPattern(ctx, form.ID, form.Cfg.GroupSync.Pattern)
		return a.showEditor(q, http.StatusOK, form, pv)
	}
	if len(errs) > 0 {
		form.setErrors(errs)
		return a.showEditor(q, http.StatusUnprocessableEntity, form, nil)
	}
	var p *directory.Profile
	var err error
	if form.New {
		p, err = a.svc.CreateProfile(ctx, posted.input)
	} else {
		p, err = a.svc.UpdateProfile(ctx, form.ID, posted.input)
	}
	if err != nil {
		// Anything the API would answer with field details (422, or the
		// 409 of a name taken) or a body it could not read goes back to
		// the form; the rest is the error page.
		pr := a.svc.Explain(ctx, err)
		if len(pr.Fields) > 0 || pr.Kind.HTTPStatus() == http.StatusUnprocessableEntity || pr.Kind.HTTPStatus() == http.StatusBadRequest {
			if len(pr.Fields) > 0 {
				form.setErrors(pr.Fields)
			} else {
				form.Unplaced = append(form.Unplaced, profile.FieldError{Message: pr.Message})
			}
			return a.showEditor(q, pr.Kind.HTTPStatus(), form, nil)
		}
		return err
	}
	to := "/profiles/" + escape(p.ID)
	switch action {
	case actTest:
		if _, err := a.svc.TestConnection(ctx, p.ID); err != nil {
			return err
		}
		return q.redirect(withNotice(to, "tested", "") + "#connection")
	case actSync:
		run, err := a.svc.Sync(ctx, p.ID, false)
		if err != nil {
			pr := a.svc.Explain(ctx, err)
			if pr.RunID != "" {
				return q.redirect(withNotice(to, "busy", pr.RunID))
			}
			return err
		}
		return q.redirect(withNotice(to, "sync", run.ID))
	}
	if form.New {
		return q.redirect(withNotice(to, "created", ""))
	}
	return q.redirect(withNotice(to, "saved", ""))
}

// setEnabled enables or disables a profile: a save of the stored profile
// with only that changed, so that the schedule and the audit follow as on
// any save.
func (a *admin) setEnabled(q *request) error {
	ctx := q.ctx()
	p, err := a.store.GetProfile(ctx, pathID(q.r))
	if err != nil {
		return err
	}
	form, err := a.storedForm(ctx, p)
	if err != nil {
		return err
	}
	enabled := q.r.PostForm.Get("enabled") == "true"
	form.Cfg.Enabled = &enabled
	if _, err := a.svc.UpdateProfile(ctx, p.ID, profileInput(&form.Cfg, nil, nil)); err != nil {
		return err
	}
	notice := "disabled"
	if enabled {
		notice = "enabled"
	}
	return q.redirect(withNotice(localPath(q.r.PostForm.Get("back")), notice, ""))
}

// healthView is a profile's health page.
type healthView struct {
	Profile *directory.Profile
	Health  *service.Health
	Runs    int // how many applied runs were asked for
	// Lists are the health panel's lists, titled, in the page's order.
	Lists []healthList
}

type healthList struct {
	ID, Title, Hint string
	Entries         []service.HealthEntry
	Total           int // the newest run's count
}

// showHealth is the health panel of a profile, as GET
// /profiles/{id}/health shows it.
func (a *admin) showHealth(q *request) error {
	ctx := q.ctx()
	p, err := a.store.GetProfile(ctx, pathID(q.r))
	if err != nil {
		return err
	}
	n := service.DefaultHealthRuns
	if v := q.r.URL.Query().Get("runs"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > service.MaxHealthRuns {
			return errBadForm("runs", "must be a whole number from 1 to %d", service.MaxHealthRuns)
		}
	}
	h, err := a.svc.Health(ctx, p.ID, n)
	if err != nil {
		return err
	}
	var c directory.RunCounts
	if h.Counts != nil {
		c = *h.Counts
	}
	v := healthView{Profile: p, Health: h, Runs: n, Lists: []healthList{
		{"stale", "Skipped users", "Skipped for the reason given: the provider's record is incomplete or invalid. " +
			"A user already in the directory keeps the data it had, and stays active, until the record is fixed.",
			h.StaleUsers, c.Skipped},
		{"conflicts", "Conflicts", "Not synced because the username is taken. A local account of that username " +
			"waits for a directory switch (Move to a profile's directory, on its user page).", h.Conflicts, c.Conflicts},
		{"managers", "Managers that do not resolve", "The manager the provider names is not a user of this " +
			"profile's directory (out of scope, skipped, or in another directory).", h.UnresolvedManagers, c.ManagersUnresolved},
		{"duplicates", "Shared e-mail addresses", "Active users whose e-mail address another active user has " +
			"too: a warning, never refused.", h.DuplicateEmails, c.DuplicateEmails},
		{"licence", "Refused by the licence", "Not created or enabled again because the licence is full.",
			h.LicenceRefused, c.LicenceRefused},
	}}
	return q.render(http.StatusOK, "health", "Health of "+p.Name, "profiles", v)
}

// resetLastRun is the editor's "Reset last run": the schedule runs now. A
// profile without a schedule, or a disabled one, gets a notice that says
// why nothing was reset and what to do instead, not an error page.
func (a *admin) resetLastRun(q *request) error {
	ctx, id := q.ctx(), pathID(q.r)
	to := "/profiles/" + escape(id)
	if _, err := a.svc.ResetLastRun(ctx, id); err != nil {
		switch pr := a.svc.Explain(ctx, err); {
		case pr.Code == service.CodeNoSchedule:
			return q.redirect(withNotice(to, "noschedule", "") + "#directory")
		case pr.Kind.HTTPStatus() == http.StatusUnprocessableEntity:
			return q.redirect(withNotice(to, "resetdisabled", "") + "#directory")
		}
		return err
	}
	return q.redirect(withNotice(to, "reset", "") + "#directory")
}

// confirmView is the confirmation step of a destructive action.
type confirmView struct {
	Question string
	Detail   string
	Action   string
	Button   string
	Back     string
	// Safe draws the button as a plain one: the action takes nothing away.
	Safe bool
}

func (a *admin) confirmDeleteProfile(q *request) error {
	p, err := a.store.GetProfile(q.ctx(), pathID(q.r))
	if err != nil {
		return err
	}
	return q.render(http.StatusOK, "confirm", "Delete profile", "profiles", confirmView{
		Question: "Delete the profile “" + p.Name + "”?",
		Detail: "Its schedule stops and it can no longer sync. The users and groups it synced stay in the " +
			"directory (directory " + p.DirectoryKey + "); its runs and audit entries stay too.",
		Action: "/profiles/" + escape(p.ID) + "/delete", Button: "Delete profile", Back: "/profiles/" + escape(p.ID)})
}

func (a *admin) deleteProfile(q *request) error {
	if err := a.svc.DeleteProfile(q.ctx(), pathID(q.r)); err != nil {
		return err
	}
	return q.redirect(withNotice("/profiles", "deleted", ""))
}

// pickedGroup is a group of the picker as admin.js shows it: the
// provider's fields and the label the page gives its kind.
type pickedGroup struct {
	provider.Group
	Label string `json:"label"`
}

// groupsJSON is a page of the group picker for admin.js.
func (a *admin) groupsJSON(q *request) (any, error) {
	v := q.r.URL.Query()
	page, err := a.providerGroups(q.ctx(), pathID(q.r), v.Get("search"), v.Get("cursor"), pickerPage)
	if err != nil {
		return nil, err
	}
	items := make([]pickedGroup, 0, len(page.Items))
	for _, g := range page.Items {
		items = append(items, pickedGroup{Group: g, Label: groupKind(g)})
	}
	return map[string]any{"items": items, "next": page.Next}, nil
}

// groupKind names a provider group's kind for people: its type says it
// already (an Entra security group is security-enabled by definition), so
// the flags are not repeated after it.
func groupKind(g provider.Group) string {
	switch g.Type {
	case azureSecurity:
		return "security group"
	case azureMailEnabledSecurity:
		return "mail-enabled security group"
	case "OKTA_GROUP":
		return "Okta group"
	case "APP_GROUP":
		return "app group (imported from an app)"
	case "BUILT_IN":
		return "built-in group"
	}
	kind := g.Type
	if g.MailEnabled {
		kind += " · mail-enabled"
	}
	return strings.TrimPrefix(kind, " · ")
}

// The Entra group types of the picker (provider/azure's Type* values,
// kept here so the admin page does not link the Graph SDK).
const (
	azureSecurity            = "security"
	azureMailEnabledSecurity = "mailEnabledSecurity"
)

// patternPreview is the group-sync pattern checked against the provider's
// group names.
type patternPreview struct {
	Pattern   string   `json:"pattern"`
	Error     string   `json:"error,omitempty"`
	Matches   []string `json:"matches"`
	Matched   int      `json:"matched"`
	Total     int      `json:"total"`
	Truncated bool     `json:"truncated"` // more groups than were checked
}

// Bounds of the pattern check: it reads at most previewGroups groups and
// lists at most previewMatches of the names that match.
const (
	previewGroups  = 2000
	previewMatches = 50
)

func (a *admin) patternJSON(q *request) (any, error) {
	return a.previewPattern(q.ctx(), pathID(q.r), q.r.URL.Query().Get("pattern")), nil
}

// previewPattern compiles the pattern as the sync does (Go RE2) and runs
// it over the names of the profile's provider groups.
func (a *admin) previewPattern(ctx context.Context, id, pattern string) *patternPreview {
	pv := &patternPreview{Pattern: pattern, Matches: []string{}}
	re, err := regexp.Compile(pattern)
	if err != nil {
		pv.Error = "the pattern does not compile: " + err.Error()
		return pv
	}
	if id == "" {
		pv.Error = "save the profile first: the check reads the groups with the saved connection"
		return pv
	}
	cursor := ""
	for {
		page, err := a.providerGroups(ctx, id, "", cursor, previewPage)
		if err != nil {
			pv.Error = "could not read the provider's groups: " + a.svc.Explain(ctx, err).Message
			return pv
		}
		for _, g := range page.Items {
			pv.Total++
			if re.MatchString(g.Name) {
				pv.Matched++
				if len(pv.Matches) < previewMatches {
					pv.Matches = append(pv.Matches, g.Name)
				}
			}
		}
		if cursor = page.Next; cursor == "" {
			return pv
		}
		if pv.Total >= previewGroups {
			pv.Truncated = true
			return pv
		}
	}
}
