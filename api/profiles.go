package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
)

// Audit actions of profile changes.
const (
	actionProfileCreated = "profile_created"
	actionProfileUpdated = "profile_updated"
	actionProfileDeleted = "profile_deleted"
)

// readProfile decodes, normalizes and checks a profile body; old is the
// stored profile on a PUT (its secrets fill those the body omits), nil on
// a POST.
func (s *server) readProfile(c *gin.Context, old *profile.Config) (*profile.Config, error) {
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	cfg, err := profile.Decode(body)
	if err != nil {
		return nil, err
	}
	cfg.Normalize()
	profile.MergeSecrets(old, cfg)
	errs := cfg.Validate()
	if old != nil && cfg.Provider != old.Provider {
		// Users are matched on the provider's ids within the profile's
		// directory: another provider would disable all of them.
		errs = append(errs, profile.FieldError{Field: "provider",
			Message: "cannot change the provider of a profile; create a new profile instead"})
	}
	if v := cfg.CSV; v != nil && cfg.Provider == profile.ProviderCSV && v.Source == profile.CSVDocument && v.DocumentID != "" {
		if _, err := s.store.GetDocument(c.Request.Context(), v.DocumentID); errors.Is(err, directory.ErrNotFound) {
			errs = append(errs, profile.FieldError{Field: "csv.documentId", Message: "no such document"})
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
	cfg, err := s.openProfile(p)
	if err != nil {
		return nil, err
	}
	v := cfg.Redacted()
	v["id"] = p.ID
	v["directoryKey"] = p.DirectoryKey
	v["createdAt"] = p.CreatedAt.UTC()
	v["updatedAt"] = p.UpdatedAt.UTC()
	v["lastRun"] = nil
	v["nextRunAt"] = nil // filled once schedules are wired
	last, err := s.store.LastRun(ctx, p.ID)
	switch {
	case err == nil:
		sum := runSummary{ID: last.ID, Status: last.Status, StartedAt: last.StartedAt.UTC()}
		if last.FinishedAt != nil {
			f := last.FinishedAt.UTC()
			sum.FinishedAt = &f
		}
		v["lastRun"] = sum
	case !errors.Is(err, directory.ErrNotFound):
		return nil, err
	}
	return v, nil
}

func (s *server) sealInto(p *directory.Profile, cfg *profile.Config) error {
	clear, sealed, err := profile.Seal(s.box, cfg)
	if err != nil {
		return err
	}
	p.Name, p.Provider, p.Enabled, p.Config, p.Secrets = cfg.Name, cfg.Provider, cfg.IsEnabled(), clear, sealed
	return nil
}

// nameTaken is the 422 of a profile name in use (names are unique
// case-insensitively).
func nameTaken(err error) error {
	if errors.Is(err, directory.ErrConflict) {
		return errInvalidField("name", "a profile with this name exists")
	}
	return err
}

func (s *server) createProfile(c *gin.Context) error {
	ctx := c.Request.Context()
	cfg, err := s.readProfile(c, nil)
	if err != nil {
		return err
	}
	key, err := newDirectoryKey()
	if err != nil {
		return err
	}
	p := &directory.Profile{DirectoryKey: key}
	if err := s.sealInto(p, cfg); err != nil {
		return err
	}
	if err := s.store.CreateProfile(ctx, p); err != nil {
		return nameTaken(err)
	}
	details, _ := json.Marshal(cfg.Redacted())
	s.audit(c, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: actionProfileCreated,
		Connection: p.Name, Subject: p.ID, Details: string(details)})
	v, err := s.profileView(ctx, p)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, v)
	return nil
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
	out := directory.Page[map[string]any]{Items: make([]map[string]any, len(page.Items)), NextCursor: page.NextCursor}
	for i := range page.Items {
		if out.Items[i], err = s.profileView(ctx, &page.Items[i]); err != nil {
			return err
		}
	}
	c.JSON(http.StatusOK, out)
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
	p, err := s.store.GetProfile(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	old, err := s.openProfile(p)
	if err != nil {
		return err
	}
	cfg, err := s.readProfile(c, old)
	if err != nil {
		return err
	}
	if err := s.sealInto(p, cfg); err != nil {
		return err
	}
	if err := s.store.UpdateProfile(ctx, p); err != nil {
		return nameTaken(err)
	}
	details := "no field changed"
	if changed := changedFields(old, cfg); len(changed) > 0 {
		details = "changed: " + strings.Join(changed, ", ")
	}
	s.audit(c, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: actionProfileUpdated,
		Connection: p.Name, Subject: p.ID, Details: details})
	v, err := s.profileView(ctx, p)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

func (s *server) deleteProfile(c *gin.Context) error {
	ctx := c.Request.Context()
	p, err := s.store.GetProfile(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	// A run reads its profile until it ends; deleting under it would fail
	// the run halfway through its apply.
	if last, err := s.store.LastRun(ctx, p.ID); err == nil && !directory.IsFinalRunStatus(last.Status) {
		return &apiError{Status: http.StatusConflict, Code: "run_in_progress", RunID: last.ID,
			Message: "a run of this profile is in progress; cancel it first"}
	} else if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return err
	}
	if err := s.store.DeleteProfile(ctx, p.ID); err != nil {
		return err
	}
	s.audit(c, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: actionProfileDeleted,
		Connection: p.Name, Subject: p.ID,
		Details: fmt.Sprintf("provider %s, directory %s (its users stay)", p.Provider, p.DirectoryKey)})
	c.Status(http.StatusNoContent)
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
	p, err := s.store.GetProfile(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	if !p.Enabled {
		return errInvalidField("enabled", "the profile is disabled; enable it to sync")
	}
	return s.startRun(c, p, TriggerManual, req.DryRun)
}

// startRun starts a run and answers 202 with it, or 409 with the run that
// is already going.
func (s *server) startRun(c *gin.Context, p *directory.Profile, trigger string, dryRun bool) error {
	ctx := c.Request.Context()
	if s.runner == nil {
		return errors.New("start run: no runner configured")
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
		return e
	}
	if err != nil {
		return fmt.Errorf("start run of profile %s: %w", p.ID, err)
	}
	// The stored row is the run as everyone else will read it (its start
	// time is the store's).
	if stored, err := s.store.GetRun(ctx, run.ID); err == nil {
		run = stored
	}
	c.JSON(http.StatusAccepted, s.runJSON(run))
	return nil
}

func (s *server) testProfile(c *gin.Context) error {
	ctx := c.Request.Context()
	p, err := s.store.GetProfile(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	cfg, err := s.openProfile(p)
	if err != nil {
		return err
	}
	start := time.Now()
	terr := s.tester(ctx, p, cfg)
	res := gin.H{"ok": terr == nil, "message": "connection works", "latencyMs": time.Since(start).Milliseconds()}
	if terr != nil {
		res["message"] = terr.Error()
	}
	c.JSON(http.StatusOK, res)
	return nil
}

// audit records an entry. The change it describes is already made, so a
// failure to record is logged rather than turned into an error answer.
func (s *server) audit(c *gin.Context, e directory.AuditEntry) {
	if err := s.store.AddAudit(c.Request.Context(), &e); err != nil {
		s.log.Error("write audit entry", "error", err, "action", e.Action, "requestId", requestIDOf(c))
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
