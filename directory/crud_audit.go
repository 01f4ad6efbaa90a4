package directory

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// AddAudit appends an entry; At defaults to now. e.ID is set.
func (s *SQLStore) AddAudit(ctx context.Context, e *AuditEntry) error {
	if e.Category == "" || e.Action == "" {
		return fmt.Errorf("add audit: category and action are required")
	}
	e.At = s.orNow(e.At)
	if err := s.get(ctx, s.db, &e.ID, `INSERT INTO audit_log (at, category, action, connection, run_id, subject, details)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		e.At, e.Category, e.Action, e.Connection, e.RunID, e.Subject, e.Details); err != nil {
		return fmt.Errorf("add audit %s/%s: %w", e.Category, e.Action, err)
	}
	return nil
}

// ListAudit lists entries newest first.
func (s *SQLStore) ListAudit(ctx context.Context, f AuditFilter, opt ListOptions) (Page[AuditEntry], error) {
	c, err := decodeCursor(opt.Cursor)
	if err != nil {
		return Page[AuditEntry]{}, err
	}
	limit := pageLimit(opt)
	var w where
	for _, eq := range []struct{ col, v string }{
		{"category", f.Category}, {"action", f.Action}, {"connection", f.Connection},
		{"run_id", f.RunID}, {"subject", f.Subject},
	} {
		if eq.v != "" {
			w.add(eq.col+" = ?", eq.v)
		}
	}
	if f.ActionWord != "" {
		r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
		w.add(`(action = ? OR action LIKE ? ESCAPE '\')`, f.ActionWord, `%\_`+r.Replace(f.ActionWord))
	}
	if !f.Since.IsZero() {
		w.add("at >= ?", utc(f.Since))
	}
	if c != nil {
		w.after(true, "at, id", c.T, c.N)
	}
	var es []AuditEntry
	if err := s.sel(ctx, s.db, &es, `SELECT id, at, category, action, connection, run_id, subject, details
		FROM audit_log`+w.String()+` ORDER BY at DESC, id DESC LIMIT ?`, append(w.args, limit+1)...); err != nil {
		return Page[AuditEntry]{}, fmt.Errorf("list audit: %w", err)
	}
	for i := range es {
		es[i].At = utc(es[i].At)
	}
	return finishPage(es, limit, func(e *AuditEntry) cursor { return cursor{T: e.At, N: e.ID} }), nil
}

// LastAudit implements Store: the newest entry is the one no other entry
// of the subject, category and action follows (at, then id).
func (s *SQLStore) LastAudit(ctx context.Context, category, action string, subjects []string) (map[string]*AuditEntry, error) {
	out := map[string]*AuditEntry{}
	if len(subjects) == 0 {
		return out, nil
	}
	q, args, err := sqlx.In(`SELECT id, at, category, action, connection, run_id, subject, details
FROM audit_log a WHERE a.category = ? AND a.action = ? AND a.subject IN (?)
  AND NOT EXISTS (SELECT 1 FROM audit_log o WHERE o.category = a.category AND o.action = a.action
                  AND o.subject = a.subject AND (o.at > a.at OR (o.at = a.at AND o.id > a.id)))`, category, action, subjects)
	if err != nil {
		return nil, fmt.Errorf("last audit entries: %w", err)
	}
	var es []AuditEntry
	if err := s.sel(ctx, s.db, &es, q, args...); err != nil {
		return nil, fmt.Errorf("last audit entries: %w", err)
	}
	for i := range es {
		es[i].At = utc(es[i].At)
		out[es[i].Subject] = &es[i]
	}
	return out, nil
}

const licenceLimitKey = "licence_limit"

// GetLicenceLimit is the licence limit; 0 (unlimited) until one is set.
func (s *SQLStore) GetLicenceLimit(ctx context.Context) (int, error) {
	var vs []string
	if err := s.sel(ctx, s.db, &vs, `SELECT value FROM settings WHERE key = ?`, licenceLimitKey); err != nil {
		return 0, fmt.Errorf("get licence limit: %w", err)
	}
	if len(vs) == 0 {
		return 0, nil
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil {
		return 0, fmt.Errorf("licence limit %q: %w", vs[0], err)
	}
	return n, nil
}

func (s *SQLStore) SetLicenceLimit(ctx context.Context, limit int) error {
	if limit < 0 {
		return fmt.Errorf("set licence limit: %d is negative", limit)
	}
	if _, err := s.exec(ctx, s.db, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, licenceLimitKey, strconv.Itoa(limit)); err != nil {
		return fmt.Errorf("set licence limit: %w", err)
	}
	return nil
}
