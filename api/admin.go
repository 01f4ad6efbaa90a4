package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/rules"
)

// maxDocument is the largest document (a CSV) POST /documents accepts.
const maxDocument = 100 << 20

func (s *server) listAudit(c *gin.Context) error {
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	f := directory.AuditFilter{Category: c.Query("category"), ActionWord: AuditActionWord(c.Query("action")),
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

// AuditActionWord reads an action filter as people type it, in the form
// the admin page shows actions ("member added", "Member-Added") or as
// stored ("member_added"): the store then matches the actions that are it
// or end in it ("created" finds user_created and profile_created).
func AuditActionWord(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r == ' ' || r == '-' || r == '_' || r == '\t'
	}), "_")
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
	if req.Limit == nil {
		return errInvalidField("limit", "required (0 = unlimited)")
	}
	if err := s.setLicence(ctx, *req.Limit); err != nil {
		return err
	}
	return s.licence(c, http.StatusOK)
}

// setLicence sets the licence limit and audits the change.
func (s *server) setLicence(ctx context.Context, limit int) error {
	if limit < 0 {
		return errInvalidField("limit", "must be 0 (unlimited) or more")
	}
	old, err := s.store.GetLicenceLimit(ctx)
	if err != nil {
		return err
	}
	if err := s.store.SetLicenceLimit(ctx, limit); err != nil {
		return err
	}
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: "licence_updated",
		Details: fmt.Sprintf("limit %d (was %d)", limit, old)})
	return nil
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
		d, err := s.saveDocument(c.Request.Context(), name, part.Header.Get("Content-Type"), part)
		if err != nil {
			return err
		}
		c.JSON(http.StatusCreated, gin.H{"id": d.ID, "name": d.Name, "size": d.Size, "sha256": d.SHA256})
		return nil
	}
}

// saveDocument stores an uploaded file of at most maxDocument bytes and
// audits it.
func (s *server) saveDocument(ctx context.Context, name, contentType string, r io.Reader) (*directory.Document, error) {
	if msg := rules.TextProblem(name, maxDocumentName, false); msg != "" {
		return nil, errInvalidField("file", "file name %s", msg)
	}
	if contentType == "" || contentType == "application/octet-stream" {
		contentType = "text/csv"
	}
	d, err := s.store.CreateDocument(ctx, name, contentType, r, s.maxDocument)
	if err != nil {
		return nil, err
	}
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: "document_uploaded",
		Subject: d.ID, Details: fmt.Sprintf("%s, %d bytes, sha256 %s", d.Name, d.Size, d.SHA256)})
	return d, nil
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
	if err := s.removeDocument(c.Request.Context(), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// removeDocument deletes a document and audits it.
func (s *server) removeDocument(ctx context.Context, id string) error {
	d, err := s.store.GetDocument(ctx, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteDocument(ctx, d.ID); err != nil {
		return err
	}
	s.record(ctx, directory.AuditEntry{Category: directory.CategorySyncConfig, Action: "document_deleted",
		Subject: d.ID, Details: d.Name})
	return nil
}
