package directory

import (
	"context"
	"fmt"
	"strings"
)

// CreateRole makes a role; role names are unique.
func (s *SQLStore) CreateRole(ctx context.Context, r *Role) error {
	if strings.TrimSpace(r.Name) == "" {
		return fmt.Errorf("create role: name is required")
	}
	if r.ID == "" {
		r.ID = newID()
	}
	now := s.Now()
	if _, err := s.exec(ctx, s.db, `INSERT INTO roles (id, name, created_at) VALUES (?, ?, ?)`, r.ID, r.Name, now); err != nil {
		return dbErr(fmt.Sprintf("create role %q", r.Name), err)
	}
	r.CreatedAt, r.MemberCount = now, 0
	return nil
}

// ListRoles lists roles by name with their member counts.
func (s *SQLStore) ListRoles(ctx context.Context, opt ListOptions) (Page[Role], error) {
	c, err := decodeCursor(opt.Cursor)
	if err != nil {
		return Page[Role]{}, err
	}
	limit := pageLimit(opt)
	var w where
	if c != nil {
		w.after(false, "r.name", c.S)
	}
	var rs []Role
	if err := s.sel(ctx, s.db, &rs, `SELECT r.id, r.name, r.created_at,
		(SELECT COUNT(*) FROM role_members m WHERE m.role_id = r.id) AS member_count
		FROM roles r`+w.String()+` ORDER BY r.name LIMIT ?`, append(w.args, limit+1)...); err != nil {
		return Page[Role]{}, fmt.Errorf("list roles: %w", err)
	}
	for i := range rs {
		rs[i].CreatedAt = utc(rs[i].CreatedAt)
	}
	return finishPage(rs, limit, func(r *Role) cursor { return cursor{S: r.Name} }), nil
}

// AddRoleMember gives a user a role; giving it twice is fine.
func (s *SQLStore) AddRoleMember(ctx context.Context, roleID, userID string) error {
	return s.addMember(ctx, "role", "role_members", "role_id", "roles", roleID, userID)
}

// RemoveRoleMember takes a role from a user; one without it is fine.
func (s *SQLStore) RemoveRoleMember(ctx context.Context, roleID, userID string) error {
	return s.removeMember(ctx, "role", "role_members", "role_id", "roles", roleID, userID)
}

// ListRoleMembers returns the ids of the role's users, sorted.
func (s *SQLStore) ListRoleMembers(ctx context.Context, roleID string) ([]string, error) {
	if err := s.mustExist(ctx, "role", `SELECT 1 FROM roles WHERE id = ?`, roleID); err != nil {
		return nil, err
	}
	ids := []string{}
	if err := s.sel(ctx, s.db, &ids, `SELECT user_id FROM role_members WHERE role_id = ? ORDER BY user_id`, roleID); err != nil {
		return nil, fmt.Errorf("members of role %s: %w", roleID, err)
	}
	return ids, nil
}
