package directory

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/jmoiron/sqlx"
)

// ErrTooLarge is a document over the size limit; nothing of it is stored.
var ErrTooLarge = errors.New("document too large")

// chunkSize is the size of every chunk but the last, so the chunk holding a
// byte offset is found by division.
const chunkSize = 1 << 20

const documentCols = `id, name, size, sha256, content_type, created_at`

// CreateDocument stores r in chunks within one transaction, so a failed or
// refused upload leaves nothing behind. maxSize <= 0 means no limit.
func (s *SQLStore) CreateDocument(ctx context.Context, name, contentType string, r io.Reader, maxSize int64) (*Document, error) {
	if contentType == "" {
		contentType = "text/csv"
	}
	d := &Document{ID: newID(), Name: name, ContentType: contentType, CreatedAt: s.Now()}
	h := sha256.New()
	buf := make([]byte, chunkSize)
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The row goes first for the chunks' foreign key; size and hash
		// are known only at the end.
		if _, err := s.exec(ctx, tx, `INSERT INTO documents (`+documentCols+`) VALUES (?, ?, 0, '', ?, ?)`,
			d.ID, d.Name, d.ContentType, d.CreatedAt); err != nil {
			return err
		}
		for seq := 0; ; seq++ {
			n, rerr := io.ReadFull(r, buf)
			if n > 0 {
				d.Size += int64(n)
				if maxSize > 0 && d.Size > maxSize {
					return fmt.Errorf("document %q: over %d bytes: %w", name, maxSize, ErrTooLarge)
				}
				h.Write(buf[:n])
				if _, err := s.exec(ctx, tx, `INSERT INTO document_chunks (document_id, seq, data) VALUES (?, ?, ?)`,
					d.ID, seq, buf[:n]); err != nil {
					return err
				}
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("read document %q: %w", name, rerr)
			}
		}
		d.SHA256 = hex.EncodeToString(h.Sum(nil))
		_, err := s.exec(ctx, tx, `UPDATE documents SET size = ?, sha256 = ? WHERE id = ?`, d.Size, d.SHA256, d.ID)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, dbErr(fmt.Sprintf("create document %q", name), err)
	}
	return d, nil
}

func (s *SQLStore) GetDocument(ctx context.Context, id string) (*Document, error) {
	var d Document
	if err := s.get(ctx, s.db, &d, `SELECT `+documentCols+` FROM documents WHERE id = ?`, id); err != nil {
		return nil, dbErr("document "+id, err)
	}
	d.CreatedAt = utc(d.CreatedAt)
	return &d, nil
}

// ListDocuments lists documents newest first.
func (s *SQLStore) ListDocuments(ctx context.Context, opt ListOptions) (Page[Document], error) {
	c, err := decodeCursor(opt.Cursor)
	if err != nil {
		return Page[Document]{}, err
	}
	limit := pageLimit(opt)
	var w where
	if c != nil {
		w.after(true, "created_at, id", c.T, c.ID)
	}
	var ds []Document
	if err := s.sel(ctx, s.db, &ds, `SELECT `+documentCols+` FROM documents`+w.String()+
		` ORDER BY created_at DESC, id DESC LIMIT ?`, append(w.args, limit+1)...); err != nil {
		return Page[Document]{}, fmt.Errorf("list documents: %w", err)
	}
	for i := range ds {
		ds[i].CreatedAt = utc(ds[i].CreatedAt)
	}
	return finishPage(ds, limit, func(d *Document) cursor { return cursor{T: d.CreatedAt, ID: d.ID} }), nil
}

func (s *SQLStore) DeleteDocument(ctx context.Context, id string) error {
	n, err := s.exec(ctx, s.db, `DELETE FROM documents WHERE id = ?`, id)
	if err != nil {
		return dbErr("delete document "+id, err)
	}
	if n == 0 {
		return fmt.Errorf("document %s: %w", id, ErrNotFound)
	}
	return nil
}

// OpenDocument returns a reader from byte offset on that loads one chunk at
// a time, so a 100 MB file costs one chunk of memory.
func (s *SQLStore) OpenDocument(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("open document %s: negative offset %d", id, offset)
	}
	d, err := s.GetDocument(ctx, id)
	if err != nil {
		return nil, err
	}
	if offset >= d.Size {
		return io.NopCloser(eofReader{}), nil
	}
	return &chunkReader{ctx: ctx, s: s, id: id, seq: int(offset / chunkSize), skip: int(offset % chunkSize),
		left: d.Size - offset}, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

type chunkReader struct {
	ctx  context.Context
	s    *SQLStore
	id   string
	seq  int    // next chunk to load
	skip int    // bytes to drop from the next chunk loaded
	buf  []byte // rest of the current chunk
	left int64  // bytes not yet returned
	done bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.done {
			return 0, errors.New("read document: reader closed")
		}
		if r.left <= 0 {
			return 0, io.EOF
		}
		var data []byte
		err := r.s.get(r.ctx, r.s.db, &data, `SELECT data FROM document_chunks WHERE document_id = ? AND seq = ?`, r.id, r.seq)
		if errors.Is(err, sql.ErrNoRows) {
			// A document deleted while read must not pass for a shorter
			// one: a CSV cut short would make its missing users departed.
			return 0, fmt.Errorf("read document %s: chunk %d is gone with %d bytes unread: %w",
				r.id, r.seq, r.left, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, fmt.Errorf("read document %s chunk %d: %w", r.id, r.seq, err)
		}
		r.seq++
		if r.skip > len(data) {
			r.skip = len(data)
		}
		r.buf, r.skip = data[r.skip:], 0
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.left -= int64(n)
	return n, nil
}

func (r *chunkReader) Close() error {
	r.done, r.buf = true, nil
	return nil
}
