package csv

import (
	"bufio"
	"bytes"
	"context"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/usersync/usersync/provider"
)

// position is where a record starts: its byte offset in the document and
// its 1-based physical line. It is the Users and Members cursor.
type position struct {
	off  int64
	line int
}

// String encodes the cursor. The format is opaque to callers; it only has
// to survive a round trip through Temporal heartbeats.
func (p position) String() string { return fmt.Sprintf("o=%d;l=%d", p.off, p.line) }

func parseCursor(c string) (position, error) {
	var p position
	o, l, ok := strings.Cut(c, ";")
	if !ok || !strings.HasPrefix(o, "o=") || !strings.HasPrefix(l, "l=") {
		return p, fmt.Errorf("%w: csv cursor %q is not an offset cursor", provider.ErrCursorExpired, c)
	}
	off, err1 := strconv.ParseInt(o[2:], 10, 64)
	line, err2 := strconv.Atoi(l[2:])
	if err1 != nil || err2 != nil || off < 1 || line < 2 {
		return p, fmt.Errorf("%w: csv cursor %q is malformed", provider.ErrCursorExpired, c)
	}
	return position{off: off, line: line}, nil
}

// stream reads records from one opened stretch of the document and keeps
// the physical line numbers and byte offsets of the whole document, not
// of the stretch.
type stream struct {
	rc         io.ReadCloser
	cr         *stdcsv.Reader
	off0       int64    // document offset of the csv reader's offset 0
	lineBase   int      // physical line = lineBase + csv reader's line
	next       position // where the record after the last one read starts
	headerLine int
	names      []string // header names, to name the column of a bad field
}

const sniffSize = 512

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// begin opens the document, reads and checks the header, and leaves the
// stream at the cursor (or right after the header for "").
func (s *Source) begin(ctx context.Context, c provider.Cursor) (*stream, *layout, error) {
	var at position
	if c != "" {
		var err error
		if at, err = parseCursor(c); err != nil {
			return nil, nil, err
		}
	}
	st, err := s.openStart(ctx)
	if err != nil {
		return nil, nil, err
	}
	header, line, err := st.read()
	if err != nil {
		st.close()
		if err == io.EOF {
			return nil, nil, &provider.InvalidDataError{Reason: "the file is empty"}
		}
		return nil, nil, err
	}
	st.headerLine = line
	lay, err := s.resolve(header, line)
	if err != nil {
		st.close()
		return nil, nil, err
	}
	st.names = lay.names
	if c == "" {
		return st, lay, nil
	}
	headerEnd := st.next
	st.close()
	if at.off < headerEnd.off || at.line < headerEnd.line {
		return nil, nil, fmt.Errorf("%w: csv cursor %q points into the header", provider.ErrCursorExpired, c)
	}
	st, err = s.openAt(ctx, at)
	if err != nil {
		return nil, nil, err
	}
	st.headerLine = line
	st.names = lay.names
	return st, lay, nil
}

// openStart opens the document at offset 0 and refuses what is plainly not
// a CSV before the parser turns it into confusing column errors.
func (s *Source) openStart(ctx context.Context) (*stream, error) {
	rc, err := s.docs.OpenDocument(ctx, s.docID, 0)
	if err != nil {
		return nil, fmt.Errorf("opening csv document %q: %w", s.docID, err)
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	head, err := br.Peek(sniffSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		rc.Close()
		return nil, fmt.Errorf("reading csv document %q: %w", s.docID, err)
	}
	var off0 int64
	if bytes.HasPrefix(head, utf8BOM) {
		if _, err := br.Discard(len(utf8BOM)); err != nil {
			rc.Close()
			return nil, fmt.Errorf("reading csv document %q: %w", s.docID, err)
		}
		head, off0 = head[len(utf8BOM):], int64(len(utf8BOM))
	}
	if err := sniff(head); err != nil {
		rc.Close()
		return nil, err
	}
	return s.newStream(rc, br, off0, 0), nil
}

// sniff recognises an empty file, UTF-16 and HTML from the first bytes.
func sniff(head []byte) error {
	if len(bytes.TrimSpace(head)) == 0 && len(head) < sniffSize {
		return &provider.InvalidDataError{Reason: "the file is empty"}
	}
	if bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}) {
		return &provider.InvalidDataError{Object: "line 1", Reason: "the file is UTF-16, not UTF-8: save it as CSV UTF-8"}
	}
	if isHTML(head) {
		return &provider.InvalidDataError{Reason: "the file is an HTML page, not a CSV (a login page?)"}
	}
	return nil
}

func isHTML(head []byte) bool {
	h := bytes.ToLower(bytes.TrimLeft(head, " \t\r\n"))
	return bytes.HasPrefix(h, []byte("<!doctype html")) || bytes.HasPrefix(h, []byte("<html"))
}

// openAt opens the document at a cursor. It opens one byte early so that
// it can check that the cursor falls right after a line end: a cursor from
// another document or a forged one is refused instead of parsed from the
// middle of a record.
func (s *Source) openAt(ctx context.Context, at position) (*stream, error) {
	rc, err := s.docs.OpenDocument(ctx, s.docID, at.off-1)
	if err != nil {
		return nil, fmt.Errorf("opening csv document %q at offset %d: %w", s.docID, at.off-1, err)
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	b, err := br.ReadByte()
	if err != nil || b != '\n' {
		rc.Close()
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("reading csv document %q: %w", s.docID, err)
		}
		return nil, fmt.Errorf("%w: csv cursor %s does not fall on a record start", provider.ErrCursorExpired, at)
	}
	return s.newStream(rc, br, at.off, at.line-1), nil
}

func (s *Source) newStream(rc io.ReadCloser, br *bufio.Reader, off0 int64, lineBase int) *stream {
	cr := stdcsv.NewReader(br)
	cr.Comma = s.comma
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = false
	cr.ReuseRecord = true
	return &stream{rc: rc, cr: cr, off0: off0, lineBase: lineBase, next: position{off: off0, line: lineBase + 1}}
}

func (st *stream) close() { st.rc.Close() }

// read returns the next record that is not blank and its physical line.
// The record is only valid until the next call (ReuseRecord).
func (st *stream) read() ([]string, int, error) {
	for {
		rec, err := st.cr.Read()
		if err == io.EOF {
			return nil, 0, io.EOF
		}
		if err != nil {
			return nil, 0, st.parseError(err)
		}
		// The reader folds \r\n into \n, even inside quoted fields, and
		// counts lines by \n, so the last field's start line plus its own
		// line breaks is where this record ends.
		last := len(rec) - 1
		lastLine, _ := st.cr.FieldPos(last)
		st.next = position{
			off:  st.off0 + st.cr.InputOffset(),
			line: st.lineBase + lastLine + strings.Count(rec[last], "\n") + 1,
		}
		if blank(rec) {
			continue
		}
		for i, f := range rec {
			if !utf8.ValidString(f) {
				return nil, 0, st.utf8Error(rec, i)
			}
		}
		first, _ := st.cr.FieldPos(0)
		return rec, st.lineBase + first, nil
	}
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func (st *stream) utf8Error(rec []string, i int) error {
	line, _ := st.cr.FieldPos(i)
	f := rec[i]
	bad := 0
	for bad < len(f) {
		r, size := utf8.DecodeRuneInString(f[bad:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		bad += size
	}
	line += strings.Count(f[:bad], "\n")
	e := &provider.InvalidDataError{
		Object: fmt.Sprintf("line %d", st.lineBase+line),
		Reason: "text is not UTF-8: save the file as CSV UTF-8",
	}
	if i < len(st.names) && st.names[i] != "" {
		e.Field = st.names[i]
	} else {
		e.Field = fmt.Sprintf("column %d", i+1)
	}
	return e
}

// parseError turns the parser's error into one that names the physical
// line, in words an admin with a spreadsheet can act on.
func (st *stream) parseError(err error) error {
	var pe *stdcsv.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("reading csv document: %w", err)
	}
	start, line := st.lineBase+pe.StartLine, st.lineBase+pe.Line
	switch {
	case errors.Is(pe.Err, stdcsv.ErrQuote):
		return &provider.InvalidDataError{
			Object: fmt.Sprintf("line %d", start),
			Reason: fmt.Sprintf("unbalanced quote: a quoted field is not closed, or has text after its closing quote (parsing stopped at line %d, column %d)", line, pe.Column),
		}
	case errors.Is(pe.Err, stdcsv.ErrBareQuote):
		return &provider.InvalidDataError{
			Object: fmt.Sprintf("line %d", line),
			Reason: fmt.Sprintf("quote inside an unquoted field (column %d): quote the whole field and double the quote (\"\")", pe.Column),
		}
	}
	return &provider.InvalidDataError{
		Object: fmt.Sprintf("line %d", start),
		Reason: pe.Err.Error(),
	}
}
