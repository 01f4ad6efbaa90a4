package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/rules"
)

// Audit actions of profile changes.
const (
	actionProfileCreated = "profile_created"
	actionProfileUpdated = "profile_updated"
	actionProfileDeleted = "profile_deleted"
	// actionConnectionTested records each "Test connection" with its
	// outcome as JSON details (TestResult).
	actionConnectionTested = "connection_tested"
	// actionEndpointChanged records each changed address a profile's
	// secrets go to, beside the profile_updated entry, so that a review of
	// the log finds a profile pointed elsewhere without reading every diff.
	actionEndpointChanged = "profile_endpoint_changed"
)

// readProfile decodes, normalizes and checks a profile body; old is the
// stored profile on a PUT (its secrets fill those the body omits), nil on
// a POST.
func (s *server) readProfile(ctx context.Context, body []byte, old *profile.Config) (*profile.Config, error) {
	cfg, err := profile.Decode(body)
	if err != nil {
		return nil, err
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
		if rules.TextProblem(d.Value, maxIDLength, false) != "" {
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
func (s *server) openProfile(p *directory.Profile) (*profile.Config, error) {
	cfg, err := profile.Open(s.box, p.Config, p.Secrets)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", p.ID, err)
	}
	return cfg, nil
}

// profileView is a profile as reads show it: redacted, with its identity,
// times and last run.
func (s *server) profileView(ctx context.Context, p *directory.Profile) (map[string]any, error) {
	views, _, err := s.profileViews(ctx, []directory.Profile{*p})
	if err != nil {
		return nil, err
	}
	return views[0], nil
}

// profileViews is profileView for a page of profiles without a round trip
// per profile: their last runs come in one query, and their schedules'
// next run times are read side by side under one deadline, so a page of
// fifty profiles waits for Temporal once, not fifty times in a row.
// It also hands back the last runs it read, by profile id.
func (s *server) profileViews(ctx context.Context, ps []directory.Profile) ([]map[string]any, map[string]*directory.Run, error) {
	cfgs := make([]*profile.Config, len(ps))
	ids := make([]string, len(ps))
	for i := range ps {
		cfg, err := s.openProfile(&ps[i])
		if err != nil {
			return nil, nil, err
		}
		cfgs[i], ids[i] = cfg, ps[i].ID
	}
	lasts, err := s.store.LastRuns(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	nexts := s.nextRunTimes(ctx, ps, cfgs)
	out := make([]map[string]any, len(ps))
	for i := range ps {
		p := &ps[i]
		v := cfgs[i].Redacted()
		v["id"] = p.ID
		v["directoryKey"] = p.DirectoryKey
		v["createdAt"] = p.CreatedAt.UTC()
		v["updatedAt"] = p.UpdatedAt.UTC()
		v["lastRun"] = nil
		v["nextRunAt"] = nil
		if nexts[i] != nil {
			v["nextRunAt"] = nexts[i].UTC()
		}
		if last := lasts[p.ID]; last != nil {
			sum := runSummary{ID: last.ID, Status: last.Status, StartedAt: last.StartedAt.UTC()}
			if last.FinishedAt != nil {
				f := last.FinishedAt.UTC()
				sum.FinishedAt = &f
			}
			v["lastRun"] = sum
		}
		out[i] = v
	}
	return out, lasts, nil
}

func (s *server) sealInto(p *directory.Profile, cfg *profile.Config) error {
	clear, sealed, err := profile.Seal(s.box, cfg)
	if err != nil {
		return err
	}
	p.Name, p.Provider, p.Enabled, p.Config, p.Secrets = cfg.Name, cfg.Provider, cfg.IsEnabled(), clear, sealed
	return nil
}

// nameTaken is the 409 of a profile name in use (names are unique
// case-insensitively): a conflict with another profile, as issue 3 asks,
// rather than API.md's 422, which the OpenAPI document notes. The detail
// still names the field, so a form can point at it.
func nameTaken(err error) error {
	if errors.Is(err, directory.ErrConflict) {
		const msg = "a profile with this name exists"
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: "name: " + msg,
			Details: profile.FieldErrors{{Field: "name", Message: msg}}}
	}
	return err
}

func (s *server) createProfile(c *gin.Context) error {
	ctx := c.Request.Context()
	body, err := readBody(c)
	if err != nil {
		return err
	}
	p, err := s.addProfile(ctx, body)
	if err != nil {
		return err
	}
	v, err := s.profileView(ctx, p)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, v)
	return nil
}

// addProfile creates a profile from a request body: POST /profiles and
// the admin page's "new profile" (Service.CreateProfile).
func (s *server) addProfile(ctx context.Context, body []byte) (*directory.Profile, error) {
	cfg, err := s.readProfile(ctx, body, nil)
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
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: actionProfileCreated,
		Connection: p.Name, Subject: p.ID, Details: string(details)})
	return p, nil
}

func (s *server) listProfiles(c *gin.Context) error {
	ctx := c.Request.Context()
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	page, err := s.store.ListProfiles(ctx, opt)
	if err != nil {
		return err
	}
	items, _, err := s.profileViews(ctx, page.Items)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, directory.Page[map[string]any]{Items: items, NextCursor: page.NextCursor})
	return nil
}

func (s *server) getProfile(c *gin.Context) error {
	ctx := c.Request.Context()
	p, err := s.store.GetProfile(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	v, err := s.profileView(ctx, p)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

func (s *server) updateProfile(c *gin.Context) error {
	ctx := c.Request.Context()
	body, err := readBody(c)
	if err != nil {
		return err
	}
	p, err := s.saveProfile(ctx, c.Param("id"), body)
	if err != nil {
		return err
	}
	v, err := s.profileView(ctx, p)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

// saveProfile replaces profile id with a request body: PUT /profiles/{id}
// and the admin page's "Save" (Service.UpdateProfile).
func (s *server) saveProfile(ctx context.Context, id string, body []byte) (*directory.Profile, error) {
	p, err := s.store.GetProfile(ctx, id)
	if err != nil {
		return nil, err
	}
	prev := *p // to put back if Temporal refuses the schedule
	old, err := s.openProfile(p)
	if err != nil {
		return nil, err
	}
	cfg, err := s.readProfile(ctx, body, old)
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
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: actionProfileUpdated,
		Connection: p.Name, Subject: p.ID, Details: details})
	for _, ch := range profile.EndpointChanges(old, cfg) {
		s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: actionEndpointChanged,
			Connection: p.Name, Subject: p.ID, Details: ch.String()})
	}
	return p, nil
}

func (s *server) deleteProfile(c *gin.Context) error {
	if err := s.removeProfile(c.Request.Context(), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// removeProfile deletes a profile that has no run going.
func (s *server) removeProfile(ctx context.Context, id string) error {
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
			return &apiError{Status: http.StatusConflict, Code: "run_in_progress", RunID: open.ID,
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
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: actionProfileDeleted,
		Connection: p.Name, Subject: p.ID,
		Details: fmt.Sprintf("provider %s, directory %s (its users stay)", p.Provider, p.DirectoryKey)})
	return nil
}

func (s *server) syncProfile(c *gin.Context) error {
	ctx := c.Request.Context()
	var req struct {
		DryRun bool `json:"dryRun"`
	}
	if err := readOptionalJSON(c, &req); err != nil {
		return err
	}
	run, err := s.syncNow(ctx, c.Param("id"), req.DryRun)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, s.runJSON(run))
	return nil
}

// syncNow starts a manual run of an enabled profile: POST
// /profiles/{id}/sync and the admin page's "Save and sync".
func (s *server) syncNow(ctx context.Context, id string, dryRun bool) (*directory.Run, error) {
	p, err := s.store.GetProfile(ctx, id)
	if err != nil {
		return nil, err
	}
	if !p.Enabled {
		return nil, errInvalidField("enabled", "the profile is disabled; enable it to sync")
	}
	return s.startRun(ctx, p, TriggerManual, dryRun)
}

// startRun starts a run and returns it as stored, or a 409 error with the
// run that is already going.
func (s *server) startRun(ctx context.Context, p *directory.Profile, trigger string, dryRun bool) (*directory.Run, error) {
	if s.runner == nil {
		return nil, errors.New("start run: no runner configured")
	}
	run, err := s.runner.Start(ctx, p, trigger, dryRun)
	var busy RunInProgress
	if errors.As(err, &busy) {
		e := &apiError{Status: http.StatusConflict, Code: "run_in_progress", RunID: busy.RunningRunID(),
			Message: "a run of this profile is in progress"}
		if r, gerr := s.store.GetRun(ctx, busy.RunningRunID()); gerr == nil {
			j := s.runJSON(r)
			e.run = &j
		}
		return nil, e
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

func (s *server) testProfile(c *gin.Context) error {
	res, err := s.testConnection(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, res)
	return nil
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

// testConnection tests the stored profile and records the outcome in the
// audit log, where the admin page reads the last one back for its light:
// the log is shared by every API replica and survives a restart.
func (s *server) testConnection(ctx context.Context, id string) (TestResult, error) {
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
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: actionConnectionTested,
		Connection: p.Name, Subject: p.ID, Details: string(details)})
	return res, nil
}

// audit records an entry. The change it describes is already made, so a
// failure to record is logged rather than turned into an error answer.
func (s *server) audit(c *gin.Context, e directory.AuditEntry) { s.record(c.Request.Context(), e) }

// record is audit for code that has a context rather than a request.
func (s *server) record(ctx context.Context, e directory.AuditEntry) {
	if err := s.store.AddAudit(ctx, &e); err != nil {
		s.log.Error("write audit entry", "error", err, "action", e.Action, "requestId", requestIDFrom(ctx))
	}
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
