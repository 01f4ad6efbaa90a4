package directory

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// groupSelect reads groups with their member counts and sort key; groups
// sort by lower(name) then id, since names repeat across directories. A
// disabled member keeps its membership row (so that enabling it again
// brings its groups back until the next sync says otherwise) but counts
// apart: a disabled user is in no group's member count.
const groupSelect = `SELECT g.id, g.name, g.directory_key, g.external_id, g.created_at, g.updated_at,
	(SELECT COUNT(*) FROM group_members m JOIN users u ON u.id = m.user_id
	  WHERE m.group_id = g.id AND u.status = 'active') AS member_count,
	(SELECT COUNT(*) FROM group_members m JOIN users u ON u.id = m.user_id
	  WHERE m.group_id = g.id AND u.status <> 'active') AS disabled_member_count,
	lower(g.name) AS sort_key
	FROM directory_groups g`

type groupRow struct {
	Group
	SortKey string `db:"sort_key"`
}

func (r *groupRow) group() Group {
	g := r.Group
	g.CreatedAt, g.UpdatedAt = utc(g.CreatedAt), utc(g.UpdatedAt)
	return g
}

// CreateGroup makes a local group. Local group names are unique
// case-insensitively: two local groups of one name could not be told apart.
func (s *SQLStore) CreateGroup(ctx context.Context, g *Group) error {
	if strings.TrimSpace(g.Name) == "" {
		return fmt.Errorf("create group: name is required")
	}
	if g.ID == "" {
		g.ID = newID()
	}
	now := s.Now()
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		taken, err := s.exists(ctx, tx, `SELECT 1 FROM directory_groups WHERE directory_key = ? AND lower(name) = lower(?)`,
			LocalDirectory, g.Name)
		if err != nil {
			return err
		}
		if taken {
			return ErrConflict
		}
		_, err = s.exec(ctx, tx, `INSERT INTO directory_groups (id, directory_key, external_id, name, created_at, updated_at)
			VALUES (?, ?, NULL, ?, ?, ?)`, g.ID, LocalDirectory, g.Name, now, now)
		return err
	})
	if err != nil {
		return dbErr(fmt.Sprintf("create group %q", g.Name), err)
	}
	g.DirectoryKey, g.ExternalID, g.MemberCount, g.DisabledMemberCount, g.CreatedAt, g.UpdatedAt = LocalDirectory, nil, 0, 0, now, now
	return nil
}

func (s *SQLStore) GetGroup(ctx context.Context, id string) (*Group, error) {
	var r groupRow
	if err := s.get(ctx, s.db, &r, groupSelect+` WHERE g.id = ?`, id); err != nil {
		return nil, dbErr("group "+id, err)
	}
	g := r.group()
	return &g, nil
}

// ListGroups lists groups by name; q matches a part of the name, in any case.
func (s *SQLStore) ListGroups(ctx context.Context, q string, opt ListOptions) (Page[Group], error) {
	c, err := decodeCursor(opt.Cursor)
	if err != nil {
		return Page[Group]{}, err
	}
	limit := pageLimit(opt)
	var w where
	if q != "" {
		w.add(`lower(g.name) LIKE ? ESCAPE '\'`, likeContains(q))
	}
	if c != nil {
		w.after(false, "lower(g.name), g.id", c.S, c.ID)
	}
	var rows []groupRow
	if err := s.sel(ctx, s.db, &rows, groupSelect+w.String()+` ORDER BY lower(g.name), g.id LIMIT ?`,
		append(w.args, limit+1)...); err != nil {
		return Page[Group]{}, fmt.Errorf("list groups: %w", err)
	}
	rp := finishPage(rows, limit, func(r *groupRow) cursor { return cursor{S: r.SortKey, ID: r.ID} })
	p := Page[Group]{Items: make([]Group, len(rp.Items)), NextCursor: rp.NextCursor}
	for i := range rp.Items {
		p.Items[i] = rp.Items[i].group()
	}
	return p, nil
}

// ListGroupMembers lists the members of a group by username, those of
// f.Status only when it is set.
func (s *SQLStore) ListGroupMembers(ctx context.Context, groupID string, f MemberFilter, opt ListOptions) (Page[User], error) {
	if f.Status != "" && !validUserStatus(f.Status) {
		return Page[User]{}, fmt.Errorf("list members of group %s: unknown status %q", groupID, f.Status)
	}
	if err := s.mustExist(ctx, "group", `SELECT 1 FROM directory_groups WHERE id = ?`, groupID); err != nil {
		return Page[User]{}, err
	}
	var w where
	w.add("m.group_id = ?", groupID)
	if f.Status != "" {
		w.add("u.status = ?", f.Status)
	}
	return s.listUsers(ctx, `SELECT `+prefixCols("u.", userCols)+` FROM users u JOIN group_members m ON m.user_id = u.id`,
		&w, "u.username_lower", opt)
}

// AddGroupMember adds a user to a group; a member already in it is fine.
func (s *SQLStore) AddGroupMember(ctx context.Context, groupID, userID string) error {
	return s.addMember(ctx, "group", "group_members", "group_id", "directory_groups", groupID, userID)
}

// RemoveGroupMember removes a user from a group; one not in it is fine.
func (s *SQLStore) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	return s.removeMember(ctx, "group", "group_members", "group_id", "directory_groups", groupID, userID)
}

// addMember inserts (owner, user) into a membership table. The insert
// selects both rows, so a missing one inserts nothing and is then named.
func (s *SQLStore) addMember(ctx context.Context, kind, table, ownerCol, ownerTable, ownerID, userID string) error {
	n, err := s.exec(ctx, s.db, `INSERT INTO `+table+` (`+ownerCol+`, user_id, created_at)
		SELECT o.id, u.id, ? FROM `+ownerTable+` o, users u WHERE o.id = ? AND u.id = ?
		ON CONFLICT DO NOTHING`, s.Now(), ownerID, userID)
	if err != nil {
		return fmt.Errorf("add user %s to %s %s: %w", userID, kind, ownerID, err)
	}
	if n > 0 {
		return nil
	}
	return s.bothExist(ctx, kind, ownerTable, ownerID, userID)
}

func (s *SQLStore) removeMember(ctx context.Context, kind, table, ownerCol, ownerTable, ownerID, userID string) error {
	n, err := s.exec(ctx, s.db, `DELETE FROM `+table+` WHERE `+ownerCol+` = ? AND user_id = ?`, ownerID, userID)
	if err != nil {
		return fmt.Errorf("remove user %s from %s %s: %w", userID, kind, ownerID, err)
	}
	if n > 0 {
		return nil
	}
	return s.bothExist(ctx, kind, ownerTable, ownerID, userID)
}

// bothExist is ErrNotFound naming the owner (group, role) or user missing.
func (s *SQLStore) bothExist(ctx context.Context, kind, ownerTable, ownerID, userID string) error {
	if err := s.mustExist(ctx, kind, `SELECT 1 FROM `+ownerTable+` WHERE id = ?`, ownerID); err != nil {
		return err
	}
	return s.mustExist(ctx, "user", `SELECT 1 FROM users WHERE id = ?`, userID)
}

func (s *SQLStore) mustExist(ctx context.Context, kind, query, id string) error {
	ok, err := s.exists(ctx, s.db, query, id)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, id, err)
	}
	if !ok {
		return fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
	}
	return nil
}

// prefixCols qualifies a comma-separated column list with a table alias.
func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
