package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/service"
)

// readProfile decodes a profile body strictly (an unknown field is a 400
// naming it); the service judges the rest.
func readProfile(c *gin.Context) (*profile.Config, error) {
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	return profile.Decode(body)
}

// profileJSON is a profile as API.md shows it: redacted, with its
// identity, times, last run and next run.
func profileJSON(v *service.ProfileView) map[string]any {
	out := v.Config
	p := v.Profile
	out["id"] = p.ID
	out["directoryKey"] = p.DirectoryKey
	out["createdAt"] = p.CreatedAt.UTC()
	out["updatedAt"] = p.UpdatedAt.UTC()
	out["lastRun"] = nil
	out["nextRunAt"] = nil
	if v.NextRunAt != nil {
		out["nextRunAt"] = v.NextRunAt.UTC()
	}
	if v.LastRun != nil {
		out["lastRun"] = service.SummaryOf(v.LastRun)
	}
	return out
}

// answerProfile answers with the view of p.
func (s *server) answerProfile(c *gin.Context, status int, p *directory.Profile) error {
	v, err := s.svc.ProfileView(c.Request.Context(), p)
	if err != nil {
		return err
	}
	c.JSON(status, profileJSON(v))
	return nil
}

func (s *server) createProfile(c *gin.Context) error {
	cfg, err := readProfile(c)
	if err != nil {
		return err
	}
	p, err := s.svc.CreateProfile(c.Request.Context(), cfg)
	if err != nil {
		return err
	}
	return s.answerProfile(c, http.StatusCreated, p)
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
	views, err := s.svc.ProfileViews(ctx, page.Items)
	if err != nil {
		return err
	}
	items := make([]map[string]any, len(views))
	for i := range views {
		items[i] = profileJSON(&views[i])
	}
	c.JSON(http.StatusOK, directory.Page[map[string]any]{Items: items, NextCursor: page.NextCursor})
	return nil
}

func (s *server) getProfile(c *gin.Context) error {
	p, err := s.store.GetProfile(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return s.answerProfile(c, http.StatusOK, p)
}

func (s *server) updateProfile(c *gin.Context) error {
	cfg, err := readProfile(c)
	if err != nil {
		return err
	}
	p, err := s.svc.UpdateProfile(c.Request.Context(), c.Param("id"), cfg)
	if err != nil {
		return err
	}
	return s.answerProfile(c, http.StatusOK, p)
}

func (s *server) deleteProfile(c *gin.Context) error {
	if err := s.svc.DeleteProfile(c.Request.Context(), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (s *server) syncProfile(c *gin.Context) error {
	var req struct {
		DryRun bool `json:"dryRun"`
	}
	if err := readOptionalJSON(c, &req); err != nil {
		return err
	}
	run, err := s.svc.Sync(c.Request.Context(), c.Param("id"), req.DryRun)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, s.runJSON(run))
	return nil
}

func (s *server) testProfile(c *gin.Context) error {
	res, err := s.svc.TestConnection(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, res)
	return nil
}

// resetLastRun is POST /profiles/{id}/reset-last-run (service.ResetLastRun):
// 202 with the profile.
func (s *server) resetLastRun(c *gin.Context) error {
	p, err := s.svc.ResetLastRun(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return s.answerProfile(c, http.StatusAccepted, p)
}

// audit records an entry of a change the handler made to the store itself.
func (s *server) audit(c *gin.Context, e directory.AuditEntry) { s.svc.Record(c.Request.Context(), e) }
