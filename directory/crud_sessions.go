package directory

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Admin sessions are signed cookies any API replica can read; only their
// revocation needs shared state, kept in the settings table so that a
// sign-out on one replica ends the session on all of them.

const revokedSessionPrefix = "revoked_session:"

// expiryText writes a time so that text order is time order (the settings
// value is TEXT on both dialects).
func expiryText(t time.Time) string { return fmt.Sprintf("%020d", t.Unix()) }

// RevokeSession records that the admin session id ended (signed out)
// before its cookie expires, until when the record is kept. Records of
// sessions past their expiry are removed on the way.
func (s *SQLStore) RevokeSession(ctx context.Context, id string, until time.Time) error {
	if id == "" {
		return fmt.Errorf("revoke session: no session id")
	}
	return s.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM settings WHERE key LIKE ? AND value < ?`,
			revokedSessionPrefix+"%", expiryText(s.Now())); err != nil {
			return fmt.Errorf("revoke session: forget expired ones: %w", err)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO settings (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, revokedSessionPrefix+id, expiryText(until)); err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
		return nil
	})
}

// SessionRevoked reports whether RevokeSession recorded the session id.
func (s *SQLStore) SessionRevoked(ctx context.Context, id string) (bool, error) {
	ok, err := s.exists(ctx, s.db, `SELECT 1 FROM settings WHERE key = ?`, revokedSessionPrefix+id)
	if err != nil {
		return false, fmt.Errorf("session revoked: %w", err)
	}
	return ok, nil
}
