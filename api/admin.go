package api

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/service"
)

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

// AuditActionWord is service.AuditActionWord.
func AuditActionWord(s string) string { return service.AuditActionWord(s) }

func (s *server) licence(c *gin.Context, status int) error {
	l, err := s.svc.Licence(c.Request.Context())
	if err != nil {
		return err
	}
	c.JSON(status, l)
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
	if err := s.svc.SetLicenceLimit(ctx, *req.Limit); err != nil {
		return err
	}
	return s.licence(c, http.StatusOK)
}

// uploadDocument streams the multipart field "file" into the store, so a
// 100 MB CSV never sits in memory or in a temporary file.
func (s *server) uploadDocument(c *gin.Context) error {
	// The multipart framing around the file needs a little room.
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.svc.MaxDocumentSize()+maxJSONBody)
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
		d, err := s.svc.UploadDocument(c.Request.Context(), name, part.Header.Get("Content-Type"), part)
		if err != nil {
			return err
		}
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
	if err := s.svc.DeleteDocument(c.Request.Context(), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
