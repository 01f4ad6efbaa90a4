package directory

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// profileRow reads config as text: database/sql does not scan into a
// json.RawMessage from every driver.
type profileRow struct {
	ID           string    `db:"id"`
	Name         string    `db:"name"`
	Provider     string    `db:"provider"`
	Enabled      bool      `db:"enabled"`
	DirectoryKey string    `db:"directory_key"`
	Config       string    `db:"config"`
	Secrets      string    `db:"secrets"`
	CreatedAt    time.Time `db:"created_at"`
	UpdatedAt    time.Time `db:"updated_at"`
}

func (r *profileRow) profile() Profile {
	return Profile{
		ID: r.ID, Name: r.Name, Provider: r.Provider, Enabled: r.Enabled,
		DirectoryKey: r.DirectoryKey, Config: json.RawMessage(r.Config), Secrets: r.Secrets,
		CreatedAt: utc(r.CreatedAt), UpdatedAt: utc(r.UpdatedAt),
	}
}

const profileCols = `id, name, provider, enabled, directory_key, config, secrets, created_at, updated_at`

func profileConfig(p *Profile) string {
	if len(p.Config) == 0 {
		return "{}"
	}
	return string(p.Config)
}

// CreateProfile inserts the profile and its directory together, so that no
// directory exists without its profile.
func (s *SQLStore) CreateProfile(ctx context.Context, p *Profile) error {
	if p.DirectoryKey == "" {
		return fmt.Errorf("create profile %q: directory key is required", p.Name)
	}
	if strings.TrimSpace(p.Name) == "" {
		return fmt.Errorf("create profile: name is required")
	}
	if p.ID == "" {
		p.ID = newID()
	}
	now := s.Now()
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO directories (key, name, created_at) VALUES (?, ?, ?)`,
			p.DirectoryKey, p.Name, now); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO profiles (`+profileCols+`, name_lower)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.Name, p.Provider, p.Enabled, p.DirectoryKey, profileConfig(p), p.Secrets, now, now,
			strings.ToLower(p.Name))
		return err
	})
	if err != nil {
		return dbErr(fmt.Sprintf("create profile %q", p.Name), err)
	}
	p.CreatedAt, p.UpdatedAt = now, now
	return nil
}

func (s *SQLStore) GetProfile(ctx context.Context, id string) (*Profile, error) {
	var r profileRow
	if err := s.get(ctx, s.db, &r, `SELECT `+profileCols+` FROM profiles WHERE id = ?`, id); err != nil {
		return nil, dbErr("profile "+id, err)
	}
	p := r.profile()
	return &p, nil
}

// ListProfiles lists profiles by name.
func (s *SQLStore) ListProfiles(ctx context.Context, opt ListOptions) (Page[Profile], error) {
	c, err := decodeCursor(opt.Cursor)
	if err != nil {
		return Page[Profile]{}, err
	}
	limit := pageLimit(opt)
	var w where
	if c != nil {
		w.after(false, "name_lower", c.S)
	}
	var rows []profileRow
	if err := s.sel(ctx, s.db, &rows, `SELECT `+profileCols+` FROM profiles`+w.String()+
		` ORDER BY name_lower LIMIT ?`, append(w.args, limit+1)...); err != nil {
		return Page[Profile]{}, fmt.Errorf("list profiles: %w", err)
	}
	ps := make([]Profile, len(rows))
	for i := range rows {
		ps[i] = rows[i].profile()
	}
	return finishPage(ps, limit, func(p *Profile) cursor { return cursor{S: strings.ToLower(p.Name)} }), nil
}

// UpdateProfile saves name, enabled, config and secrets; the directory
// follows the name. Provider and directory key never change.
func (s *SQLStore) UpdateProfile(ctx context.Context, p *Profile) error {
	if strings.TrimSpace(p.Name) == "" {
		return fmt.Errorf("update profile %s: name is required", p.ID)
	}
	now := s.Now()
	var r profileRow
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.get(ctx, tx, &r, `UPDATE profiles
			SET name = ?, name_lower = ?, enabled = ?, config = ?, secrets = ?, updated_at = ?
			WHERE id = ? RETURNING `+profileCols,
			p.Name, strings.ToLower(p.Name), p.Enabled, profileConfig(p), p.Secrets, now, p.ID); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `UPDATE directories SET name = ? WHERE key = ?`, p.Name, r.DirectoryKey)
		return err
	})
	if err != nil {
		return dbErr(fmt.Sprintf("update profile %s", p.ID), err)
	}
	*p = r.profile()
	return nil
}

func (s *SQLStore) DeleteProfile(ctx context.Context, id string) error {
	n, err := s.exec(ctx, s.db, `DELETE FROM profiles WHERE id = ?`, id)
	if err != nil {
		return dbErr("delete profile "+id, err)
	}
	if n == 0 {
		return fmt.Errorf("profile %s: %w", id, ErrNotFound)
	}
	return nil
}
