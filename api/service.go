package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
)

// Service is what the API does, without HTTP: the admin page (package web)
// calls it, so that a profile saved, a run started or a document uploaded
// there is decoded, validated, sealed, audited and handed to the Runner by
// the very code the JSON API runs, not by a copy that drifts from it.
// Plain reads (users, groups, runs, audit) need no rules and go straight to
// the directory.Store.
//
// Errors are the API's: Explain turns one into what the API would answer.
type Service struct{ s *server }

// NewService returns the service of the API with these options (Admin is
// not used). It holds no state, so it may live beside the handler New
// returns for the same options.
func NewService(o Options) *Service { return &Service{s: newServer(o)} }

// CreateProfile creates a profile from a JSON body as POST /profiles takes
// it: a new directory key, sealed secrets, an audit entry.
func (v *Service) CreateProfile(ctx context.Context, body []byte) (*directory.Profile, error) {
	return v.s.addProfile(ctx, body)
}

// UpdateProfile replaces a profile with a JSON body as PUT /profiles/{id}
// takes it: a secret the body omits keeps its stored value.
func (v *Service) UpdateProfile(ctx context.Context, id string, body []byte) (*directory.Profile, error) {
	return v.s.saveProfile(ctx, id, body)
}

// DeleteProfile deletes a profile that has no run going.
func (v *Service) DeleteProfile(ctx context.Context, id string) error {
	return v.s.removeProfile(ctx, id)
}

// ProfileView is the profile as GET /profiles/{id} shows it: redacted
// (secrets only as "<field>Set"), with id, directoryKey, times, lastRun and
// nextRunAt.
func (v *Service) ProfileView(ctx context.Context, p *directory.Profile) (map[string]any, error) {
	return v.s.profileView(ctx, p)
}

// ProfileViews is ProfileView for a page of profiles, as GET /profiles
// lists them: one query for their last runs (handed back too, by profile
// id), their schedules read side by side.
func (v *Service) ProfileViews(ctx context.Context, ps []directory.Profile) ([]map[string]any, map[string]*directory.Run, error) {
	return v.s.profileViews(ctx, ps)
}

// OpenProfile is the stored profile with its secrets, for a call to its
// provider (the admin page's group picker); never for display.
func (v *Service) OpenProfile(p *directory.Profile) (*profile.Config, error) {
	return v.s.openProfile(p)
}

// CanListGroups reports whether the group picker is configured
// (Options.ProviderGroups).
func (v *Service) CanListGroups() bool { return v.s.extras.providerGroups != nil }

// ProviderGroups is one page of profile id's provider groups, read live
// with its stored credentials, as GET /profiles/{id}/provider-groups: a
// provider's failure is a 502 whose message says what to fix, with the
// profile's secrets taken out.
func (v *Service) ProviderGroups(ctx context.Context, id, search, cursor string, limit int) (provider.Page[provider.Group], error) {
	s := v.s
	if s.extras.providerGroups == nil {
		return provider.Page[provider.Group]{}, errors.New("provider groups: no lister configured")
	}
	return s.providerGroups(ctx, id, search, cursor, limit)
}

// CanTest reports whether "Test connection" is configured (Options.Tester).
func (v *Service) CanTest() bool { return v.s.tester != nil }

// TestConnection tests the stored profile, as POST /profiles/{id}/test,
// and records the outcome in the audit log.
func (v *Service) TestConnection(ctx context.Context, id string) (TestResult, error) {
	return v.s.testConnection(ctx, id)
}

// TestRecord is a past "Test connection".
type TestRecord struct {
	TestResult
	At time.Time
}

// LastTest is the newest recorded "Test connection" of the profile, nil
// when it was never tested.
func (v *Service) LastTest(ctx context.Context, profileID string) (*TestRecord, error) {
	page, err := v.s.store.ListAudit(ctx, directory.AuditFilter{Category: directory.CategorySyncConfig,
		Action: actionConnectionTested, Subject: profileID}, directory.ListOptions{Limit: 1})
	if err != nil || len(page.Items) == 0 {
		return nil, err
	}
	e := page.Items[0]
	rec := &TestRecord{At: e.At}
	if err := json.Unmarshal([]byte(e.Details), &rec.TestResult); err != nil {
		// The entry is ours; unreadable means it was written by a version
		// with another shape, which is no reason to fail a page.
		return nil, nil
	}
	return rec, nil
}

// Health is the profile's health panel from its last runs applied runs
// (0 means DefaultHealthRuns), as GET /profiles/{id}/health.
func (v *Service) Health(ctx context.Context, profileID string, runs int) (*Health, error) {
	if runs <= 0 {
		runs = DefaultHealthRuns
	}
	return v.s.health(ctx, profileID, min(runs, MaxHealthRuns))
}

// Sync starts a manual run of an enabled profile, as POST
// /profiles/{id}/sync. A run already going is a 409 whose Problem names it.
func (v *Service) Sync(ctx context.Context, profileID string, dryRun bool) (*directory.Run, error) {
	return v.s.syncNow(ctx, profileID, dryRun)
}

// ResetLastRun makes the profile's schedule run now and the daily rule
// ignore the manual runs so far, as POST /profiles/{id}/reset-last-run. A
// profile without a schedule is a 409 whose Problem.Code is
// CodeNoSchedule; a disabled one a 422.
func (v *Service) ResetLastRun(ctx context.Context, profileID string) (*directory.Profile, error) {
	return v.s.resetLast(ctx, profileID)
}

// Run is the run as GET /runs/{id} shows it: brought in line with its
// workflow when that ended outside usersync (in the Temporal UI), with
// live counts while it runs.
func (v *Service) Run(ctx context.Context, id string) (*directory.Run, error) {
	run, err := v.s.store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	run = v.s.reconciled(ctx, run)
	v.s.withProgress(ctx, run)
	return run, nil
}

// Runs is a page of runs as GET /runs shows them.
func (v *Service) Runs(ctx context.Context, f directory.RunFilter, opt directory.ListOptions) (directory.Page[directory.Run], error) {
	page, err := v.s.store.ListRuns(ctx, f, opt)
	if err != nil {
		return page, err
	}
	for i := range page.Items {
		page.Items[i] = *v.s.reconciled(ctx, &page.Items[i])
	}
	v.s.withProgressPage(ctx, page.Items)
	return page, nil
}

// ApproveRun lets a run held by the accidental-delete guard apply.
func (v *Service) ApproveRun(ctx context.Context, id string) (*directory.Run, error) {
	return v.s.approve(ctx, id)
}

// CancelRun stops a run that has not ended.
func (v *Service) CancelRun(ctx context.Context, id string) (*directory.Run, error) {
	return v.s.cancel(ctx, id)
}

// RetryRun starts a new run of the run's profile.
func (v *Service) RetryRun(ctx context.Context, id string) (*directory.Run, error) {
	return v.s.retry(ctx, id)
}

// TemporalURL is the run's page in the Temporal Web UI, "" without one.
func (v *Service) TemporalURL(run *directory.Run) string {
	if v.s.runner == nil {
		return ""
	}
	return v.s.runner.UIURL(run)
}

// MaxDocument is the largest document UploadDocument accepts, in bytes.
func (v *Service) MaxDocument() int64 { return v.s.maxDocument }

// UploadDocument stores a file (a CSV) in the document store, as POST
// /documents; over MaxDocument bytes is an error that Explain calls 413.
func (v *Service) UploadDocument(ctx context.Context, name, contentType string, r io.Reader) (*directory.Document, error) {
	return v.s.saveDocument(ctx, name, contentType, r)
}

// DeleteDocument deletes a document, as DELETE /documents/{id}.
func (v *Service) DeleteDocument(ctx context.Context, id string) error {
	return v.s.removeDocument(ctx, id)
}

// SetLicenceLimit sets the licence limit (0 = unlimited), as PUT
// /settings/licence.
func (v *Service) SetLicenceLimit(ctx context.Context, limit int) error {
	return v.s.setLicence(ctx, limit)
}

// SetUserStatus enables or disables a user by hand, as PATCH /users/{id}:
// enabling a disabled user beyond the licence limit is a 409
// licence_limit_reached whose message says so.
func (v *Service) SetUserStatus(ctx context.Context, id, status string) (*directory.User, error) {
	return v.s.setUserStatus(ctx, id, status)
}

// DeleteUser deletes a user, as DELETE /users/{id}, and returns it as it
// was.
func (v *Service) DeleteUser(ctx context.Context, id string) (*directory.User, error) {
	return v.s.removeUser(ctx, id)
}

// SwitchDirectory moves local users, by username, to a profile's
// directory, as POST /users/switch-directory: one result per username,
// each move audited.
func (v *Service) SwitchDirectory(ctx context.Context, directoryKey string, usernames []string) (*SwitchOutcome, error) {
	return v.s.switchUsers(ctx, directoryKey, usernames)
}

// Problem is an error as the API would answer it.
type Problem struct {
	Status  int
	Code    string
	Message string
	// Fields are the invalid fields by dotted path ("csv.url").
	Fields profile.FieldErrors
	// RunID is the run already going, for a refused start (409).
	RunID string
}

// Explain maps an error of a Service method (or of the store) onto its
// Problem. An error the API would not show a client is logged here, with
// the request id of ctx, and explained as internal.
func (v *Service) Explain(ctx context.Context, err error) Problem {
	e := v.s.known(err)
	if e == nil {
		id := requestIDFrom(ctx)
		v.s.log.ErrorContext(ctx, "admin request failed", "error", err, "requestId", id)
		e = errInternal(id)
	}
	return Problem{Status: e.Status, Code: e.Code, Message: e.Message, Fields: e.Details, RunID: e.RunID}
}

// IsNotFound reports whether err means that the thing asked for does not
// exist (a 404).
func IsNotFound(err error) bool {
	var ae *apiError
	return errors.Is(err, directory.ErrNotFound) || (errors.As(err, &ae) && ae.Status == http.StatusNotFound)
}

// SignInThrottle is the throttle of wrong tokens the API uses, for the
// admin page's sign-in form.
func (v *Service) SignInThrottle() *SignInThrottle { return v.s.signIns }
