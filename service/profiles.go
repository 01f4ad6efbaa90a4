package service

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/rules"
)

// Audit actions of profile changes.
const (
	ActionProfileCreated = "profile_created"
	ActionProfileUpdated = "profile_updated"
	ActionProfileDeleted = "profile_deleted"
	// ActionConnectionTested records each "Test connection" with its
	// outcome as JSON details (TestResult).
	ActionConnectionTested = "connection_tested"
	// ActionEndpointChanged records each changed address a profile's
	// secrets go to, beside the profile_updated entry, so that a review of
	// the log finds a profile pointed elsewhere without reading every diff.
	ActionEndpointChanged = "profile_endpoint_changed"
)

// checkProfile normalizes and checks a profile as given; old is the
// stored profile on an update (its secrets fill those cfg does not carry),
// nil on a creation.
func (s *Service) checkProfile(ctx context.Context, cfg, old *profile.Config) (*profile.Config, error) {
	if cfg == nil {
		return nil, errBadRequest("no profile given")
	}
	cfg.Normalize()
	// A secret omitted from a body that moves its address is asked for
	// again rather than kept (MergeSecrets says which).
	moved := profile.MergeSecrets(old, cfg)
	errs := cfg.Validate()
	for _, m := range moved {
		// "required again" says more than Validate's "required".
		errs = slices.DeleteFunc(errs, func(e profile.FieldError) bool { return e.Field == m.Field })
	}
	errs = append(errs, moved...)
	if old != nil && cfg.Provider != old.Provider {
		// Users are matched on the provider's ids within the profile's
		// directory: another provider would disable all of them.
		errs = append(errs, profile.FieldError{Field: "provider",
			Message: "cannot change the provider of a profile; create a new profile instead"})
	}
	// An id Validate refused (a NUL) is not looked up: the database would
	// refuse it too, as a server error.
	for _, d := range cfg.Documents() {
		if rules.TextProblem(d.Value, MaxIDLength, false) != "" {
			continue
		}
		if _, err := s.store.GetDocument(ctx, d.Value); errors.Is(err, directory.ErrNotFound) {
			errs = append(errs, profile.FieldError{Field: d.Field, Message: "no such document"})
		} else if err != nil {
			return nil, err
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// openProfile reads the stored profile with its secrets.
func (s *Service) openProfile(p *directory.Profile) (*profile.Config, error) {
	cfg, err := profile.Open(s.box, p.Config, p.Secrets)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", p.ID, err)
	}
	return cfg, nil
}

// ProfileView is a profile as reads show it.
type ProfileView struct {
	Profile *directory.Profile
	// Config is the profile's settings redacted (profile.Config.Redacted):
	// every secret only as "<field>Set".
	Config map[string]any
	// LastRun is the profile's newest run, nil before its first.
	LastRun *directory.Run
	// NextRunAt is its schedule's next run, nil without one (or when
	// Temporal could not say in time).
	NextRunAt *time.Time
}

// ProfileView is the view of one stored profile.
func (s *Service) ProfileView(ctx context.Context, p *directory.Profile) (*ProfileView, error) {
	views, err := s.ProfileViews(ctx, []directory.Profile{*p})
	if err != nil {
		return nil, err
	}
	return &views[0], nil
}

// ProfileViews is ProfileView for a page of profiles without a round trip
// per profile: their last runs come in one query, their secrets are not
// decrypted, and their schedules' next run times are read side by side
// under one deadline, so a page of fifty profiles waits for Temporal
// once, not fifty times in a row.
func (s *Service) ProfileViews(ctx context.Context, ps []directory.Profile) ([]ProfileView, error) {
	cfgs := make([]*profile.Config, len(ps))
	shown := make([]map[string]any, len(ps))
	ids := make([]string, len(ps))
	for i := range ps {
		// A view shows of each secret only whether it is set, which the
		// stored profile says without its key: nothing is decrypted.
		cfg, view, err := profile.OpenRedacted(s.box, ps[i].Config, ps[i].Secrets)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", ps[i].ID, err)
		}
		cfgs[i], shown[i], ids[i] = cfg, view, ps[i].ID
	}
	lasts, err := s.store.LastRuns(ctx, ids)
	if err != nil {
		return nil, err
	}
	nexts := s.nextRunTimes(ctx, ps, cfgs)
	out := make([]ProfileView, len(ps))
	for i := range ps {
		out[i] = ProfileView{Profile: &ps[i], Config: shown[i], LastRun: lasts[ps[i].ID], NextRunAt: nexts[i]}
	}
	return out, nil
}

func (s *Service) sealInto(p *directory.Profile, cfg *profile.Config) error {
	clear, sealed, err := profile.Seal(s.box, cfg)
	if err != nil {
		return err
	}
	p.Name, p.Provider, p.Enabled, p.Config, p.Secrets = cfg.Name, cfg.Provider, cfg.IsEnabled(), clear, sealed
	return nil
}

// nameTaken is the Conflict (409) of a profile name in use (names are unique
// case-insensitively): a conflict with another profile, as issue 3 asks,
// rather than API.md's 422, which the OpenAPI document notes. The detail
// still names the field, so a form can point at it.
func nameTaken(err error) error {
	if errors.Is(err, directory.ErrConflict) {
		const msg = "a profile with this name exists"
		return &Error{Kind: Conflict, Code: "conflict", Message: "name: " + msg,
			Fields: profile.FieldErrors{{Field: "name", Message: msg}}}
	}
	return err
}

// CreateProfile creates a profile: a new directory key, sealed secrets,
// a schedule, an audit entry. It takes cfg over (it fills its defaults);
// a caller that shows cfg again passes a Clone. Invalid settings are
// profile.FieldErrors; a name in use is a Conflict naming the field.
func (s *Service) CreateProfile(ctx context.Context, cfg *profile.Config) (*directory.Profile, error) {
	cfg, err := s.checkProfile(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	key, err := newDirectoryKey()
	if err != nil {
		return nil, err
	}
	p := &directory.Profile{DirectoryKey: key}
	if err := s.sealInto(p, cfg); err != nil {
		return nil, err
	}
	if err := s.store.CreateProfile(ctx, p); err != nil {
		return nil, nameTaken(err)
	}
	if err := s.scheduleCreated(ctx, p); err != nil {
		return nil, err
	}
	details, _ := json.Marshal(cfg.Redacted())
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: ActionProfileCreated,
		Connection: p.Name, Subject: p.ID, Details: string(details)})
	return p, nil
}

// UpdateProfile replaces profile id with cfg, which it takes over as
// CreateProfile does. A secret cfg does not carry (not set by a decoded
// body, nor by SetSecret) keeps its stored value, unless its address
// changed.
func (s *Service) UpdateProfile(ctx context.Context, id string, cfg *profile.Config) (*directory.Profile, error) {
	p, err := s.store.GetProfile(ctx, id)
	if err != nil {
		return nil, err
	}
	prev := *p // to put back if Temporal refuses the schedule
	old, err := s.openProfile(p)
	if err != nil {
		return nil, err
	}
	cfg, err = s.checkProfile(ctx, cfg, old)
	if err != nil {
		return nil, err
	}
	if err := s.sealInto(p, cfg); err != nil {
		return nil, err
	}
	if err := s.store.UpdateProfile(ctx, p); err != nil {
		return nil, nameTaken(err)
	}
	if err := s.scheduleSaved(ctx, p, &prev); err != nil {
		return nil, err
	}
	details := "no field changed"
	if changed := changedFields(old, cfg); len(changed) > 0 {
		details = "changed: " + strings.Join(changed, ", ")
	}
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: ActionProfileUpdated,
		Connection: p.Name, Subject: p.ID, Details: details})
	for _, ch := range profile.EndpointChanges(old, cfg) {
		s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: ActionEndpointChanged,
			Connection: p.Name, Subject: p.ID, Details: ch.String()})
	}
	return p, nil
}

// DeleteProfile deletes a profile that has no run going, and its
// schedule; its users stay in the directory.
func (s *Service) DeleteProfile(ctx context.Context, id string) error {
	p, err := s.store.GetProfile(ctx, id)
	if err != nil {
		return err
	}
	// A run reads its profile until it ends; deleting under it would fail
	// the run halfway through its apply.
	// OpenRun, not LastRun: ticks skipped meanwhile are newer. A run ended
	// in the Temporal UI is accounted for first.
	if open, err := s.store.OpenRun(ctx, p.ID); err == nil {
		if open = s.reconciled(ctx, open); !directory.IsFinalRunStatus(open.Status) {
			return &Error{Kind: Conflict, Code: CodeRunInProgress, RunID: open.ID,
				Message: "a run of this profile is in progress; cancel it first"}
		}
	} else if !errors.Is(err, directory.ErrNotFound) {
		return err
	}
	if err := s.unschedule(ctx, p); err != nil {
		return err
	}
	if err := s.store.DeleteProfile(ctx, p.ID); err != nil {
		s.reschedule(ctx, p)
		return err
	}
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: ActionProfileDeleted,
		Connection: p.Name, Subject: p.ID,
		Details: fmt.Sprintf("provider %s, directory %s (its users stay)", p.Provider, p.DirectoryKey)})
	return nil
}

// Sync starts a manual run of an enabled profile. A run already going is
// a Conflict (CodeRunInProgress) that names it.
func (s *Service) Sync(ctx context.Context, id string, dryRun bool) (*directory.Run, error) {
	p, err := s.store.GetProfile(ctx, id)
	if err != nil {
		return nil, err
	}
	if !p.Enabled {
		return nil, errInvalidField("enabled", "the profile is disabled; enable it to sync")
	}
	return s.startRun(ctx, p, TriggerManual, dryRun)
}

// startRun starts a run and returns it as stored, or a Conflict with the
// run that is already going.
func (s *Service) startRun(ctx context.Context, p *directory.Profile, trigger string, dryRun bool) (*directory.Run, error) {
	if s.runner == nil {
		return nil, errors.New("start run: no runner configured")
	}
	run, err := s.runner.Start(ctx, p, trigger, dryRun)
	var busy RunInProgress
	if errors.As(err, &busy) {
		return nil, s.runInProgress(ctx, busy.RunningRunID(), "a run of this profile is in progress")
	}
	if err != nil {
		return nil, fmt.Errorf("start run of profile %s: %w", p.ID, err)
	}
	// The stored row is the run as everyone else will read it (its start
	// time is the store's).
	if stored, err := s.store.GetRun(ctx, run.ID); err == nil {
		run = stored
	}
	return run, nil
}

// TestResult is the answer of "Test connection": the light and why, and
// what works but not fully (a permission only part of a sync needs), each
// warning naming what to grant. A test with warnings is still green.
type TestResult struct {
	OK        bool     `json:"ok"`
	Message   string   `json:"message"`
	LatencyMs int64    `json:"latencyMs"`
	Warnings  []string `json:"warnings"`
}

// CanTest reports whether "Test connection" is configured (Options.Tester).
func (s *Service) CanTest() bool { return s.tester != nil }

// TestConnection tests the stored profile and records the outcome in the
// audit log, where the admin page reads the last one back for its light:
// the log is shared by every API replica and survives a restart.
func (s *Service) TestConnection(ctx context.Context, id string) (TestResult, error) {
	if s.tester == nil {
		return TestResult{}, errors.New("test connection: no tester configured")
	}
	p, err := s.store.GetProfile(ctx, id)
	if err != nil {
		return TestResult{}, err
	}
	cfg, err := s.openProfile(p)
	if err != nil {
		return TestResult{}, err
	}
	start := time.Now()
	warnings, terr := s.tester(ctx, p, cfg)
	res := TestResult{OK: terr == nil, Message: "connection works", LatencyMs: time.Since(start).Milliseconds(),
		Warnings: []string{}}
	switch {
	case terr != nil:
		res.Message = terr.Error()
	case len(warnings) == 1:
		res.Message, res.Warnings = "connection works, with a warning", warnings
	case len(warnings) > 1:
		res.Message, res.Warnings = fmt.Sprintf("connection works, with %d warnings", len(warnings)), warnings
	}
	for _, w := range res.Warnings {
		s.log.WarnContext(ctx, "test connection warning", "profileId", p.ID, "warning", w)
	}
	details, _ := json.Marshal(res)
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: ActionConnectionTested,
		Connection: p.Name, Subject: p.ID, Details: string(details)})
	return res, nil
}

// changedFields lists the dotted paths whose values differ between two
// profiles. Secrets are compared too, but only their names are returned.
func changedFields(old, next *profile.Config) []string {
	a, b := flatten(old), flatten(next)
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// flatten maps every leaf of c's JSON (arrays count as leaves) to its
// encoded value.
func flatten(c *profile.Config) map[string]string {
	raw, _ := json.Marshal(c)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && prefix != "attributeMap" && !strings.HasSuffix(prefix, "columnMap") {
			for k, x := range m {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
			return
		}
		b, _ := json.Marshal(v)
		out[prefix] = string(b)
	}
	walk("", doc)
	return out
}

// newDirectoryKey makes the key of a profile's directory: "p-" and ten
// random lower-case letters or digits.
func newDirectoryKey() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte("p-0123456789")
	for i := 2; i < len(b); i++ {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("directory key: %w", err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b), nil
}

// runInProgress is the Conflict of a start refused because run runID is
// going, with that run as it is stored.
func (s *Service) runInProgress(ctx context.Context, runID, msg string) *Error {
	e := &Error{Kind: Conflict, Code: CodeRunInProgress, RunID: runID, Message: msg}
	if r, err := s.store.GetRun(ctx, runID); err == nil {
		e.Run = r
	}
	return e
}

// TestRecord is a past "Test connection".
type TestRecord struct {
	TestResult
	At time.Time
}

// LastTest is the newest recorded "Test connection" of the profile, nil
// when it was never tested.
func (s *Service) LastTest(ctx context.Context, profileID string) (*TestRecord, error) {
	tests, err := s.LastTests(ctx, []string{profileID})
	if err != nil {
		return nil, err
	}
	return tests[profileID], nil
}

// LastTests is LastTest for a page of profiles, in one query, by profile
// id; a profile never tested has no entry.
func (s *Service) LastTests(ctx context.Context, profileIDs []string) (map[string]*TestRecord, error) {
	entries, err := s.store.LastAudit(ctx, directory.CategorySyncConfig, ActionConnectionTested, profileIDs)
	if err != nil {
		return nil, err
	}
	out := map[string]*TestRecord{}
	for id, e := range entries {
		rec := &TestRecord{At: e.At}
		// The entry is ours; unreadable means it was written by a version
		// with another shape, which is no reason to fail a page.
		if json.Unmarshal([]byte(e.Details), &rec.TestResult) == nil {
			out[id] = rec
		}
	}
	return out, nil
}
