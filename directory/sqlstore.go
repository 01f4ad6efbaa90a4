package directory

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"modernc.org/sqlite"
)

// ErrInvalidCursor is a paging cursor this store did not hand out (or one of
// another listing); the API answers it with 400.
var ErrInvalidCursor = errors.New("invalid cursor")

// SQLStore is the Store on sqlx, for both dialects.
type SQLStore struct {
	db  *DB
	d   dialect
	now func() time.Time
}

// NewSQLStore returns a store on db.
func NewSQLStore(db *DB) *SQLStore {
	return &SQLStore{db: db, d: dialectOf(db.Dialect), now: func() time.Time { return utc(time.Now()) }}
}

// DB is the database under the store.
func (s *SQLStore) DB() *DB { return s.db }

// WithClock returns a copy of the store that reads the time from now.
func (s *SQLStore) WithClock(now func() time.Time) *SQLStore {
	c := *s
	c.now = now
	return &c
}

// Now is the store's clock, in UTC and cut to microseconds: Postgres keeps
// no more, and a time must read back equal to what was written.
func (s *SQLStore) Now() time.Time { return utc(s.now()) }

// utc normalises a time for storage and for comparison after a read.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := utc(*t)
	return &u
}

// orNow is t normalised, or the store's time when t is zero.
func (s *SQLStore) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return s.Now()
	}
	return utc(t)
}

// InTx runs fn in a transaction, committed when fn returns nil and rolled
// back otherwise (also when fn panics).
func (s *SQLStore) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback() //nolint:errcheck
			panic(p)
		}
		if err != nil {
			tx.Rollback() //nolint:errcheck
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *SQLStore) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return s.InTx(ctx, fn)
}

// querier is what *sqlx.DB and *sqlx.Tx share, so a helper serves both.
type querier interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// rebind turns the '?' placeholders of q into the dialect's.
func (s *SQLStore) rebind(q string) string { return s.db.Rebind(q) }

func (s *SQLStore) get(ctx context.Context, q querier, dest any, query string, args ...any) error {
	return q.GetContext(ctx, dest, s.rebind(query), args...)
}

func (s *SQLStore) sel(ctx context.Context, q querier, dest any, query string, args ...any) error {
	return q.SelectContext(ctx, dest, s.rebind(query), args...)
}

// exec runs a statement and returns the number of rows it touched.
func (s *SQLStore) exec(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	res, err := q.ExecContext(ctx, s.rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// exists reports whether query (a SELECT 1 ...) finds a row.
func (s *SQLStore) exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var one int
	err := s.get(ctx, q, &one, query, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func newID() string { return uuid.NewString() }

// IsUniqueViolation reports whether err is a unique or primary key
// violation of either driver.
func IsUniqueViolation(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		// SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
		if c := se.Code(); c == 2067 || c == 1555 {
			return true
		}
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// IsDataError reports whether err is the database refusing a value itself
// (PostgreSQL's class 22, "data exception": a NUL or a byte sequence that
// is not UTF-8, a value too long or out of range): the same statement with
// the same data fails the same way however often it is retried.
func IsDataError(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code.Class() == "22"
	}
	// SQLite stores any text; its only data errors are SQLITE_TOOBIG (18)
	// and SQLITE_MISMATCH (20).
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == 18 || c == 20
	}
	return false
}

// isForeignKeyViolation reports whether err is a foreign key violation of
// either driver: a row refers to one that does not exist.
func isForeignKeyViolation(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == 787 { // SQLITE_CONSTRAINT_FOREIGNKEY
		return true
	}
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// dbErr maps driver errors onto the store's: no row is ErrNotFound, a
// taken unique key ErrConflict; what describes the object for the message.
func dbErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case IsUniqueViolation(err):
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// likeContains is a LIKE pattern (ESCAPE '\') matching s anywhere, in lower case.
func likeContains(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// Paging.

const (
	defaultLimit = 100
	maxLimit     = 1000
)

func pageLimit(opt ListOptions) int {
	switch {
	case opt.Limit <= 0:
		return defaultLimit
	case opt.Limit > maxLimit:
		return maxLimit
	}
	return opt.Limit
}

// cursor is the sort key of the last row of a page; each listing uses the
// fields of its own key.
type cursor struct {
	S  string    `json:"s,omitempty"`
	T  time.Time `json:"t,omitzero"`
	N  int64     `json:"n,omitempty"`
	ID string    `json:"id,omitempty"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c) //nolint:errchkjson // plain struct, cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrInvalidCursor
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, ErrInvalidCursor
	}
	c.T = utc(c.T)
	return &c, nil
}

// finishPage cuts the limit+1 rows fetched to limit and sets the cursor
// when there was one more.
func finishPage[T any](rows []T, limit int, key func(*T) cursor) Page[T] {
	p := Page[T]{Items: rows}
	if len(rows) > limit {
		p.Items = rows[:limit]
		p.NextCursor = key(&p.Items[limit-1]).encode()
	}
	if p.Items == nil {
		p.Items = []T{}
	}
	return p
}

// where collects the conditions and arguments of a listing query.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// after adds the keyset condition: rows strictly past the key (cols) =
// (vals) in the listing's order. Row values compare the same way in both
// dialects and use the index of the sort key.
func (w *where) after(desc bool, cols string, vals ...any) {
	op := ">"
	if desc {
		op = "<"
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")
	w.add("("+cols+") "+op+" ("+marks+")", vals...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
