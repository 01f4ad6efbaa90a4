package service

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/rules"
)

// MaxDocument is the largest document (a CSV) an upload may be, in bytes.
const MaxDocument = 100 << 20

// AuditActionWord reads an action filter as people type it, in the form
// the admin page shows actions ("member added", "Member-Added") or as
// stored ("member_added"): the store then matches the actions that are it
// or end in it ("created" finds user_created and profile_created).
func AuditActionWord(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r == ' ' || r == '-' || r == '_' || r == '\t'
	}), "_")
}

// Licence is the licence limit beside what counts against it.
type Licence struct {
	Limit       int `json:"limit"` // 0 = unlimited
	ActiveUsers int `json:"activeUsers"`
}

// Licence reads the limit and the active users.
func (s *Service) Licence(ctx context.Context) (Licence, error) {
	limit, err := s.store.GetLicenceLimit(ctx)
	if err != nil {
		return Licence{}, err
	}
	active, err := s.store.CountActiveUsers(ctx)
	if err != nil {
		return Licence{}, err
	}
	return Licence{Limit: limit, ActiveUsers: active}, nil
}

// SetLicenceLimit sets the licence limit (0 = unlimited) and audits the
// change.
func (s *Service) SetLicenceLimit(ctx context.Context, limit int) error {
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

// UploadDocument stores a file (a CSV) of at most MaxDocumentSize bytes,
// streamed from r, and audits it; a larger one is TooLarge.
func (s *Service) UploadDocument(ctx context.Context, name, contentType string, r io.Reader) (*directory.Document, error) {
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

// DeleteDocument deletes a document and audits it.
func (s *Service) DeleteDocument(ctx context.Context, id string) error {
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
