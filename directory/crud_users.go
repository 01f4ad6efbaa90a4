package directory

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

const userCols = `id, directory_key, external_id, username, first_name, last_name, email, status,
	password_hash, manager_id, attributes, created_at, updated_at, disabled_at`

// userRow carries the attributes column as the JSON text it is stored as.
type userRow struct {
	User
	AttributesJSON string `db:"attributes"`
}

func (r *userRow) user() (User, error) {
	u := r.User
	u.CreatedAt, u.UpdatedAt, u.DisabledAt = utc(u.CreatedAt), utc(u.UpdatedAt), utcPtr(u.DisabledAt)
	u.Attributes = map[string]string{}
	if r.AttributesJSON != "" {
		if err := json.Unmarshal([]byte(r.AttributesJSON), &u.Attributes); err != nil {
			return User{}, fmt.Errorf("user %s: attributes: %w", u.ID, err)
		}
	}
	return u, nil
}

func validUserStatus(st string) bool { return st == StatusActive || st == StatusDisabled }

// CreateUser inserts a user; the caller's ID, directory and status are
// kept when set.
func (s *SQLStore) CreateUser(ctx context.Context, u *User) error {
	if strings.TrimSpace(u.Username) == "" {
		return fmt.Errorf("create user: username is required")
	}
	if u.ID == "" {
		u.ID = newID()
	}
	if u.DirectoryKey == "" {
		u.DirectoryKey = LocalDirectory
	}
	if u.Status == "" {
		u.Status = StatusActive
	}
	if !validUserStatus(u.Status) {
		return fmt.Errorf("create user %q: unknown status %q", u.Username, u.Status)
	}
	if u.Attributes == nil {
		u.Attributes = map[string]string{}
	}
	attrs, err := json.Marshal(u.Attributes)
	if err != nil {
		return fmt.Errorf("create user %q: attributes: %w", u.Username, err)
	}
	now := s.Now()
	u.CreatedAt, u.UpdatedAt, u.DisabledAt = now, now, nil
	if u.Status == StatusDisabled {
		u.DisabledAt = &now
	}
	_, err = s.exec(ctx, s.db, `INSERT INTO users (`+userCols+`, username_lower)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.DirectoryKey, u.ExternalID, u.Username, u.FirstName, u.LastName, u.Email, u.Status,
		u.PasswordHash, u.ManagerID, string(attrs), u.CreatedAt, u.UpdatedAt, u.DisabledAt,
		strings.ToLower(u.Username))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("create user %q: directory %q: %w", u.Username, u.DirectoryKey, ErrNotFound)
	}
	return dbErr(fmt.Sprintf("create user %q", u.Username), err)
}

// GetUser reads a user with the names of its groups.
func (s *SQLStore) GetUser(ctx context.Context, id string) (*User, error) {
	var r userRow
	if err := s.get(ctx, s.db, &r, `SELECT `+userCols+` FROM users WHERE id = ?`, id); err != nil {
		return nil, dbErr("user "+id, err)
	}
	u, err := r.user()
	if err != nil {
		return nil, err
	}
	u.Groups = []string{}
	if err := s.sel(ctx, s.db, &u.Groups, `SELECT g.name FROM group_members m
		JOIN directory_groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.name`, id); err != nil {
		return nil, fmt.Errorf("groups of user %s: %w", id, err)
	}
	return &u, nil
}

// userQuery adds the conditions of f to w.
func userQuery(w *where, f UserFilter, prefix string) {
	if f.Status != "" {
		w.add(prefix+"status = ?", f.Status)
	}
	if f.Directory != "" {
		w.add(prefix+"directory_key = ?", f.Directory)
	}
	if f.Query != "" {
		pat := likeContains(f.Query)
		w.add(fmt.Sprintf(`(%[1]susername_lower LIKE ? ESCAPE '\' OR lower(%[1]sfirst_name) LIKE ? ESCAPE '\'
			OR lower(%[1]slast_name) LIKE ? ESCAPE '\' OR lower(%[1]semail) LIKE ? ESCAPE '\')`, prefix),
			pat, pat, pat, pat)
	}
}

// ListUsers lists users by username, each with the names of its groups.
func (s *SQLStore) ListUsers(ctx context.Context, f UserFilter, opt ListOptions) (Page[User], error) {
	var w where
	userQuery(&w, f, "")
	return s.listUsers(ctx, `SELECT `+userCols+` FROM users`, &w, "username_lower", opt)
}

// listUsers pages the users query base (which selects userCols) by
// usernameCol with the conditions in w.
func (s *SQLStore) listUsers(ctx context.Context, base string, w *where, usernameCol string, opt ListOptions) (Page[User], error) {
	c, err := decodeCursor(opt.Cursor)
	if err != nil {
		return Page[User]{}, err
	}
	limit := pageLimit(opt)
	if c != nil {
		w.after(false, usernameCol, c.S)
	}
	var rows []userRow
	if err := s.sel(ctx, s.db, &rows, base+w.String()+` ORDER BY `+usernameCol+` LIMIT ?`,
		append(w.args, limit+1)...); err != nil {
		return Page[User]{}, fmt.Errorf("list users: %w", err)
	}
	us := make([]User, len(rows))
	for i := range rows {
		if us[i], err = rows[i].user(); err != nil {
			return Page[User]{}, err
		}
	}
	page := finishPage(us, limit, func(u *User) cursor { return cursor{S: strings.ToLower(u.Username)} })
	if err := s.fillGroups(ctx, page.Items); err != nil {
		return Page[User]{}, err
	}
	return page, nil
}

// fillGroups sets the group names of a page of users with one query.
func (s *SQLStore) fillGroups(ctx context.Context, us []User) error {
	if len(us) == 0 {
		return nil
	}
	idx := make(map[string]int, len(us))
	ids := make([]string, len(us))
	for i := range us {
		us[i].Groups = []string{}
		idx[us[i].ID] = i
		ids[i] = us[i].ID
	}
	q, args, err := sqlx.In(`SELECT m.user_id, g.name FROM group_members m
		JOIN directory_groups g ON g.id = m.group_id WHERE m.user_id IN (?) ORDER BY g.name`, ids)
	if err != nil {
		return fmt.Errorf("groups of users: %w", err)
	}
	var rows []struct {
		UserID string `db:"user_id"`
		Name   string `db:"name"`
	}
	if err := s.sel(ctx, s.db, &rows, q, args...); err != nil {
		return fmt.Errorf("groups of users: %w", err)
	}
	for _, r := range rows {
		u := &us[idx[r.UserID]]
		u.Groups = append(u.Groups, r.Name)
	}
	return nil
}

// SetUserStatus enables or disables a user. Disabling keeps the time of a
// first disable; enabling clears it.
func (s *SQLStore) SetUserStatus(ctx context.Context, id, status string, at time.Time) error {
	if !validUserStatus(status) {
		return fmt.Errorf("set user %s status: unknown status %q", id, status)
	}
	at = s.orNow(at)
	q := `UPDATE users SET status = 'active', updated_at = ?, disabled_at = NULL WHERE id = ?`
	args := []any{at, id}
	if status == StatusDisabled {
		q = `UPDATE users SET status = 'disabled', updated_at = ?, disabled_at = COALESCE(disabled_at, ?) WHERE id = ?`
		args = []any{at, at, id}
	}
	n, err := s.exec(ctx, s.db, q, args...)
	if err != nil {
		return fmt.Errorf("set user %s status: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteUser deletes a user; memberships go with it (cascade) and its
// reports lose their manager, which has no foreign key to do it.
func (s *SQLStore) DeleteUser(ctx context.Context, id string) error {
	now := s.Now()
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE users SET manager_id = NULL, updated_at = ? WHERE manager_id = ?`, now, id); err != nil {
			return fmt.Errorf("delete user %s: unlink reports: %w", id, err)
		}
		n, err := s.exec(ctx, tx, `DELETE FROM users WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete user %s: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("user %s: %w", id, ErrNotFound)
		}
		return nil
	})
}

// CountActiveUsers counts the active users of every directory: the number
// the licence limits.
func (s *SQLStore) CountActiveUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.get(ctx, s.db, &n, `SELECT COUNT(*) FROM users WHERE status = 'active'`); err != nil {
		return 0, fmt.Errorf("count active users: %w", err)
	}
	return n, nil
}
