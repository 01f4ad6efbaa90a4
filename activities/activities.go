// Package activities implements the steps of a sync run as Temporal
// activities: methods on one struct that holds the dependencies. Each is
// idempotent: the work of a step and the progress it records commit in one
// transaction (see directory.SyncEngine), so a retry after a crash resumes
// where the last commit left off and replays nothing twice. Fetch and Apply
// each work a bounded stretch and return, so the workflow sees live counts
// and its history stays small.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/secret"
)

// Deps are the dependencies of the activities.
type Deps struct {
	Store  directory.Store
	Box    *secret.Box
	Logger *slog.Logger
	// PageDelay slows every fetched page and applied batch down: fault
	// injection for the crash-and-resume tests, zero in production.
	PageDelay time.Duration
	// HTTPClient downloads remote CSV files; nil means a default client.
	HTTPClient *http.Client
	// Dial opens providers' raw connections (LDAP) under the process's
	// outbound policy, as HTTPClient does for HTTP; nil: net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// AllowHTTPLoopback lets remote CSV URLs use plain http to loopback hosts (tests).
	AllowHTTPLoopback bool
	// Budget bounds the work of one Fetch or Apply call (default 20 s).
	Budget time.Duration
	// PageSize is the provider page size where the provider lets us choose.
	PageSize int
	// BatchSize is the number of objects per apply transaction (default
	// 5000: each transaction also writes a ledger and an audit row per
	// change, and fewer, larger ones apply a large tenant markedly faster).
	BatchSize int
	// StageEntries is how many entries of a provider's change listing one
	// staging transaction takes, over as many of its pages as hold them
	// (default StageEntries).
	StageEntries int
	// BcryptCost hashes CSV passwords (default bcrypt.DefaultCost).
	BcryptCost int
	// Now is the steps' clock (work budgets, the provider's retry budget,
	// the full-run interval); nil is time.Now.
	Now func() time.Time
}

// Activities are the steps of a sync run.
type Activities struct {
	Deps
}

// New returns the activities with defaults filled in.
func New(d Deps) *Activities {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Budget <= 0 {
		d.Budget = 20 * time.Second
	}
	if d.BatchSize <= 0 {
		d.BatchSize = 5000
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Activities{Deps: d}
}

// now reads the clock; an Activities not made by New has time.Now.
func (a *Activities) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

// Error types the workflow does not retry (workflows' NonRetryableErrorTypes).
const (
	ErrTypeInvalidData = "InvalidData"
	ErrTypeAuth        = "Auth"
	ErrTypePermission  = "Permission"
	ErrTypeLicence     = "Licence"
	ErrTypeConfig      = "Config"
	ErrTypeThrottled   = "Throttled"
	// ErrTypeProviderUnavailable is a provider that kept failing for the
	// whole retry budget; it is final (see giveUp).
	ErrTypeProviderUnavailable = "ProviderUnavailable"
)

// classify turns a provider or store error into what Temporal needs to
// decide on a retry: a final error is non-retryable with a message that
// says what to fix, a 429 waits what the provider asked for, anything else
// (network, database) is retried as it is.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var thr *provider.ThrottledError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &thr):
		return temporal.NewApplicationErrorWithOptions(err.Error(), ErrTypeThrottled,
			temporal.ApplicationErrorOptions{NextRetryDelay: thr.RetryAfter, Cause: err})
	case errors.Is(err, provider.ErrAuth):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeAuth, err)
	case errors.Is(err, provider.ErrPermission):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypePermission, err)
	case errors.Is(err, provider.ErrInvalidData):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidData, err)
	case errors.Is(err, provider.ErrNotFound), errors.Is(err, directory.ErrNotFound):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeConfig, err)
	case directory.IsDataError(err):
		// The database refuses a value the source sent (a NUL, bytes that
		// are not UTF-8): retrying the same data fails the same way, and a
		// step retried for ever holds the profile's runs for ever.
		return temporal.NewNonRetryableApplicationError(
			"the database refused data of this run (fix it at the source): "+err.Error(), ErrTypeInvalidData, err)
	}
	return err
}

// providerError marks an error of the provider itself (a download, a page
// request), as opposed to one of the database: only those count against a
// step's provider retry budget.
type providerError struct{ err error }

func (e providerError) Error() string { return e.err.Error() }
func (e providerError) Unwrap() error { return e.err }

// giveUp ends the retries of a step whose provider keeps failing: once the
// step has been failing on the provider for longer than budget, counted from
// its first attempt, the retryable error becomes a final one that names the
// provider's error. Every Fetch call is a new step, so a fetch that makes
// progress starts its count afresh; a step failing on anything else (the
// database) keeps retrying as before. err is the classified error.
func giveUp(ctx context.Context, now time.Time, budget time.Duration, err error) error {
	var pe providerError
	if err == nil || ctx.Err() != nil || !errors.As(err, &pe) || !activity.IsActivity(ctx) {
		return err
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		return err
	}
	if budget <= 0 {
		budget = DefaultProviderRetryBudget
	}
	info := activity.GetInfo(ctx)
	failing := now.Sub(info.ScheduledTime)
	if failing < budget {
		return err
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("the provider kept failing: gave up after %d attempts over %s (retry budget %s): %v",
			info.Attempt, failing.Round(time.Second), budget, pe.err),
		ErrTypeProviderUnavailable, err)
}

func configError(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrTypeConfig, nil)
}

// runContext is what every step loads: the run, its profile and its
// decrypted configuration.
type runContext struct {
	run     *directory.Run
	profile *directory.Profile
	cfg     *profile.Config
}

func (a *Activities) load(ctx context.Context, runID string) (*runContext, error) {
	run, err := a.Store.GetRun(ctx, runID)
	if err != nil {
		return nil, classify(fmt.Errorf("load run: %w", err))
	}
	p, err := a.Store.GetProfile(ctx, run.ProfileID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, configError("profile %s of run %s no longer exists", run.ProfileID, runID)
	}
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	cfg, err := profile.Open(a.Box, p.Config, p.Secrets)
	if err != nil {
		return nil, configError("profile %q: %v", p.Name, err)
	}
	return &runContext{run: run, profile: p, cfg: cfg}, nil
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// heartbeat records progress where Temporal can see it and lets a
// cancellation reach the activity; outside an activity (plain calls in
// tests) it does nothing.
func heartbeat(ctx context.Context, details ...any) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, details...)
	}
}

// keepAliveEvery is how often keepAlive heartbeats at most; a step given
// a shorter heartbeat timeout heartbeats four times within it instead, so
// that a test (or an operator) may shorten the timeout without a matching
// knob here.
const keepAliveEvery = 2 * time.Second

// keepAliveInterval is how often keepAlive heartbeats in this activity.
func keepAliveInterval(ctx context.Context) time.Duration {
	every := keepAliveEvery
	if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 && hb/4 < every {
		every = hb / 4
	}
	return every
}

// keepAlive runs work and heartbeats details meanwhile. One step of a
// large run can be a single statement over millions of rows (deriving the
// memberships of a million users, working out what apply must change),
// and an attempt that does not heartbeat through it is declared dead by
// Temporal, which then starts a second attempt beside the first: the
// same work twice, the second waiting on the first's locks.
func keepAlive(ctx context.Context, work func() error, details ...any) error {
	if !activity.IsActivity(ctx) {
		return work()
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(keepAliveInterval(ctx))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, details...)
			}
		}
	}()
	err := work()
	close(stop)
	<-stopped
	return err
}

// workerStopping tells whether the worker is shutting down: Fetch and
// Apply then end their stretch at the last commit, and the workflow's next
// call finds another worker (or this one, restarted) at once instead of
// waiting out a heartbeat timeout.
func workerStopping(ctx context.Context) bool {
	if !activity.IsActivity(ctx) {
		return false
	}
	select {
	case <-activity.GetWorkerStopChannel(ctx):
		return true
	default:
		return false
	}
}

// SetStatus implements the activity of that name.
func (a *Activities) SetStatus(ctx context.Context, in SetStatusInput) error {
	if err := a.Store.SetRunStatus(ctx, in.RunID, in.Status, in.Phase, in.Message, time.Now()); err != nil {
		return fmt.Errorf("set status: %w", err)
	}
	if in.Status == directory.RunAwaitingApproval {
		rc, err := a.load(ctx, in.RunID)
		if err != nil {
			return err
		}
		return a.audit(ctx, rc, "run_awaiting_approval", in.Message)
	}
	return nil
}

func (a *Activities) audit(ctx context.Context, rc *runContext, action, details string) error {
	err := a.Store.AddAudit(ctx, &directory.AuditEntry{Category: directory.CategorySync, Action: action,
		Connection: rc.profile.Name, RunID: rc.run.ID, Subject: rc.profile.Name, Details: details})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}
