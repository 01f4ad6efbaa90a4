package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
)

// maxDocument is the largest document (a CSV) POST /documents accepts.
const maxDocument = 100 << 20

func (s *server) listAudit(c *gin.Context) error {
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	f := directory.AuditFilter{Category: c.Query("category"), Action: c.Query("action"),
		Connection: c.Query("profile"), RunID: c.Query("runId"), Subject: c.Query("subject")}
	if since := c.Query("since"); since != "" {
		if f.Since, err = time.Parse(time.RFC3339, since); err != nil {
			return errBadRequest("since must be an RFC 3339 time such as 2024-05-01T00:00:00Z")
		}
	}
	page, err := s.store.ListAudit(c.Request.Context(), f, opt)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}

// licenceJSON shows the limit beside what counts against it.
type licenceJSON struct {
	Limit       int `json:"limit"`
	ActiveUsers int `json:"activeUsers"`
}

func (s *server) licence(c *gin.Context, status int) error {
	ctx := c.Request.Context()
	limit, err := s.store.GetLicenceLimit(ctx)
	if err != nil {
		return err
	}
	active, err := s.store.CountActiveUsers(ctx)
	if err != nil {
		return err
	}
	c.JSON(status, licenceJSON{Limit: limit, ActiveUsers: active})
	return nil
}

func (s *server) getLicence(c *gin.Context) error { return s.licence(c, http.StatusOK) }

func (s *server) putLicence(c *gin.Context) error {
	ctx := c.Request.Context()
	var req struct {
		Limit *int `json:"limit"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	switch {
	case req.Limit == nil:
		return errInvalidField("limit", "required (0 = unlimited)")
	case *req.Limit < 0:
		return errInvalidField("limit", "must be 0 (unlimited) or more")
	}
	old, err := s.store.GetLicenceLimit(ctx)
	if err != nil {
		return err
	}
	if err := s.store.SetLicenceLimit(ctx, *req.Limit); err != nil {
		return err
	}
	s.audit(c, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: "licence_updated",
		Details: fmt.Sprintf("limit %d (was %d)", *req.Limit, old)})
	return s.licence(c, http.StatusOK)
}

// uploadDocument streams the multipart field "file" into the store, so a
// 100 MB CSV never sits in memory or in a temporary file.
func (s *server) uploadDocument(c *gin.Context) error {
	// The multipart framing around the file needs a little room.
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.maxDocument+maxJSONBody)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return errBadRequest("expected a multipart/form-data body with a file field")
	}
	for {
		part, err := mr.NextPart()
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return errBadRequest("the multipart body has no file field")
		case errors.As(err, &mbe):
			return err
		case err != nil:
			return errBadRequest("malformed multipart body: %v", err)
		}
		if part.FormName() != "file" {
			part.Close() //nolint:errcheck // skips the part
			continue
		}
		name := part.FileName()
		if name == "" {
			name = "upload.csv"
		}
		ct := part.Header.Get("Content-Type")
		if ct == "" || ct == "application/octet-stream" {
			ct = "text/csv"
		}
		d, err := s.store.CreateDocument(c.Request.Context(), name, ct, part, s.maxDocument)
		if err != nil {
			return err
		}
		s.audit(c, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: "document_uploaded",
			Subject: d.ID, Details: fmt.Sprintf("%s, %d bytes, sha256 %s", d.Name, d.Size, d.SHA256)})
		c.JSON(http.StatusCreated, gin.H{"id": d.ID, "name": d.Name, "size": d.Size, "sha256": d.SHA256})
		return nil
	}
}

func (s *server) listDocuments(c *gin.Context) error {
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	page, err := s.store.ListDocuments(c.Request.Context(), opt)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}

func (s *server) deleteDocument(c *gin.Context) error {
	ctx := c.Request.Context()
	d, err := s.store.GetDocument(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteDocument(ctx, d.ID); err != nil {
		return err
	}
	s.audit(c, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: "document_deleted",
		Subject: d.ID, Details: d.Name})
	c.Status(http.StatusNoContent)
	return nil
}
