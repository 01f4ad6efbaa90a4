// Package service is what usersync does, without HTTP: profiles, runs,
// the directory's hand-made changes, documents and the licence, with typed
// inputs and typed errors. The JSON API (package api) decodes a request
// into these inputs and turns the errors into answers; the admin page
// (package web) builds the same inputs from its forms and renders the same
// errors. A profile saved, a run started or a document uploaded through
// either is validated, sealed, audited and handed to the Runner by this
// code, so the two cannot drift apart. Plain reads (users, groups, runs,
// audit) need no rules and go straight to the directory.Store.
package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/secret"
)

// Runner starts and steers sync runs; runs.Client implements it. A
// Runner that also implements Scheduler gets each profile a Temporal
// schedule, one that implements Reconciler keeps run reads in step with
// workflows ended in the Temporal UI (schedules.go), and one that
// implements Reverter can revert a run.
type Runner interface {
	// Start starts a run of the profile and records it in the store. When
	// a run of it is already going, the error satisfies
	// errors.As(err, new(RunInProgress)).
	Start(ctx context.Context, p *directory.Profile, trigger string, dryRun bool) (*directory.Run, error)
	Cancel(ctx context.Context, run *directory.Run) error
	Approve(ctx context.Context, run *directory.Run) error
	// UIURL is the run's page in the Temporal Web UI.
	UIURL(run *directory.Run) string
}

// RunInProgress is what the error of Runner.Start implements when a run of
// the profile is already going: an interface rather than a type, so that
// this package need not import the workflow package that defines the error.
type RunInProgress interface {
	error
	RunningRunID() string
}

// TesterFunc is "Test connection" of a profile: an error fails it; the
// warnings say what works but not fully, each naming what to grant.
type TesterFunc func(ctx context.Context, p *directory.Profile, c *profile.Config) (warnings []string, err error)

// ProviderGroupsFunc lists one page of a profile's provider groups (the
// picker): search narrows by name, cursor is the provider's ("" = first
// page) and limit the page size asked for (providers may cap it).
type ProviderGroupsFunc func(ctx context.Context, p *directory.Profile, cfg *profile.Config,
	search, cursor string, limit int) (provider.Page[provider.Group], error)

// Progress is the live state of a running run, as the workflow's progress
// query answers it.
type Progress struct {
	Phase  string
	Counts directory.RunCounts
}

// ProgressFunc asks a running run's workflow for its progress.
type ProgressFunc func(ctx context.Context, run *directory.Run) (Progress, error)

// Trigger values a run records.
const (
	TriggerManual = "manual"
	TriggerRetry  = "retry"
)

// Options configures the service.
type Options struct {
	Store  directory.Store
	Runner Runner
	Box    *secret.Box // seals profile secrets
	Logger *slog.Logger
	// Tester runs "Test connection"; nil leaves it out (CanTest).
	Tester TesterFunc
	// ProviderGroups lists a profile's provider groups for the picker;
	// nil leaves it out (CanListGroups).
	ProviderGroups ProviderGroupsFunc
	// Progress asks a running run's workflow for its live phase and
	// counts; nil shows the stored ones.
	Progress ProgressFunc
	// Metrics, when set, receives the credential metric (health.go) and
	// the sign-in throttle's counters.
	Metrics *prometheus.Registry
	// SignIns throttles wrong tokens; nil makes one, counted on Metrics.
	// The API and the admin page share the service's.
	SignIns *SignInThrottle
}

// Service runs the use cases. It holds no state of its own beyond the
// sign-in throttle, so one Service serves the API and the admin page.
type Service struct {
	store          directory.Store
	runner         Runner
	box            *secret.Box
	log            *slog.Logger
	tester         TesterFunc
	providerGroups ProviderGroupsFunc
	progress       ProgressFunc
	signIns        *SignInThrottle
	// cursors seals the group picker's cursors (cursor.go).
	cursors *pickerCursors

	maxDocument int64 // MaxDocument, lowered by tests
}

// New returns the service of these options.
func New(o Options) *Service {
	if o.Store == nil {
		panic("service: Options.Store is required")
	}
	s := &Service{store: o.Store, runner: o.Runner, box: o.Box, log: o.Logger, tester: o.Tester,
		providerGroups: o.ProviderGroups, progress: o.Progress, maxDocument: MaxDocument}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.cursors = newPickerCursors(o.Box)
	if o.Metrics != nil {
		registerCredentialMetric(o.Metrics, s)
	}
	if s.signIns = o.SignIns; s.signIns == nil {
		var reg prometheus.Registerer
		if o.Metrics != nil {
			reg = o.Metrics
		}
		s.signIns = NewSignInThrottle(reg)
	}
	return s
}

// Store is the store the service writes to, for the plain reads its
// callers make themselves.
func (s *Service) Store() directory.Store { return s.store }

// SignInThrottle is the throttle of wrong tokens, shared by the API's
// bearer tokens and the admin page's sign-in form.
func (s *Service) SignInThrottle() *SignInThrottle { return s.signIns }

// SetMaxDocument lowers the largest document accepted; for tests.
func (s *Service) SetMaxDocument(n int64) { s.maxDocument = n }

// MaxDocumentSize is the largest document UploadDocument accepts, in bytes.
func (s *Service) MaxDocumentSize() int64 { return s.maxDocument }

// record writes an audit entry. The change it describes is already made,
// so a failure to record is logged rather than turned into an error.
func (s *Service) record(ctx context.Context, e directory.AuditEntry) {
	if err := s.store.AddAudit(ctx, &e); err != nil {
		s.log.ErrorContext(ctx, "write audit entry", "error", err, "action", e.Action, "requestId", RequestID(ctx))
	}
}

// Record writes an audit entry for a change a caller made to the store
// itself (the API's group and role memberships).
func (s *Service) Record(ctx context.Context, e directory.AuditEntry) { s.record(ctx, e) }

// UIURL is the run's page in the Temporal Web UI, "" without a runner.
func (s *Service) UIURL(run *directory.Run) string {
	if s.runner == nil {
		return ""
	}
	return s.runner.UIURL(run)
}

type requestIDKey struct{}

// WithRequestID is ctx carrying the id of the request it serves, which
// the service's log lines and internal errors name.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the request id of ctx, "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// SetNow sets the clock of the picker's cursors; for tests.
func (s *Service) SetNow(now func() time.Time) { s.cursors.now = now }
