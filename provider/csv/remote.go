package csv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync/provider"
)

// Defaults of Remote.
const (
	DefaultMaxSize = 100 << 20
	DefaultTimeout = 60 * time.Second
)

// Remote is a CSV file served over HTTPS. A run downloads it once into the
// document store and reads only that copy, so the file cannot change under
// a run that resumes.
type Remote struct {
	URL      string
	Username string // basic auth when set
	Password string
	MaxSize  int64         // bytes; default 100 MiB
	Timeout  time.Duration // whole download, headers and body; default 60s
	// Client is optional; tests inject the TLS test server's client. Its
	// redirect policy is wrapped so that a redirect cannot leave https.
	Client *http.Client
	// AllowHTTPLoopback allows plain http to 127.0.0.1, ::1 and localhost
	// (tests, a local file server); every other host needs https because
	// basic auth sends the password in clear.
	AllowHTTPLoopback bool
}

// acceptedTypes are the content types servers use for CSV files.
// Spreadsheet-minded servers send application/vnd.ms-excel, and plain file
// servers octet-stream, so only types that cannot be a CSV are refused.
var acceptedTypes = map[string]bool{
	"text/csv":                    true,
	"text/plain":                  true,
	"application/csv":             true,
	"application/vnd.ms-excel":    true,
	"application/octet-stream":    true,
	"text/comma-separated-values": true,
	"text/x-csv":                  true,
	"application/x-csv":           true,
	"text/tab-separated-values":   true,
}

var errTimeout = errors.New("download timed out")

// Download copies the file into w and returns the bytes written. On error
// w may hold part of the file: the caller discards it. Errors are typed for
// retry decisions (provider.ErrAuth, ErrNotFound, ErrUnreachable,
// *provider.InvalidDataError, *provider.ThrottledError; a 5xx is a plain,
// retryable error) and never contain the password or the URL's query.
func (r Remote) Download(ctx context.Context, w io.Writer) (int64, error) {
	u, err := r.checkURL()
	if err != nil {
		return 0, err
	}
	maxSize := r.MaxSize
	switch {
	case maxSize == 0:
		maxSize = DefaultMaxSize
	case maxSize < 0:
		return 0, fmt.Errorf("csv download: max size %d is negative", r.MaxSize)
	}
	timeout := r.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		return 0, fmt.Errorf("csv download: timeout %s is negative", r.Timeout)
	}
	where := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()

	parent := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("csv download: building request for %s: %v", where, err)
	}
	req.Header.Set("Accept", "text/csv, text/plain;q=0.9, */*;q=0.5")
	if r.Username != "" {
		req.SetBasicAuth(r.Username, r.Password)
	}
	resp, err := r.client().Do(req)
	if err != nil {
		return 0, r.transportError(parent, ctx, where, timeout, err)
	}
	defer resp.Body.Close()

	if err := r.checkStatus(resp, where); err != nil {
		return 0, err
	}
	if err := checkContentType(resp.Header.Get("Content-Type"), where); err != nil {
		return 0, err
	}
	if resp.ContentLength > maxSize {
		return 0, tooLarge(where, maxSize)
	}
	if unframed(resp) {
		return 0, &provider.InvalidDataError{Object: where, Reason: "the server sent the file without a length " +
			"(no Content-Length, not chunked), so a download cut short could not be told from the whole file: " +
			"have the server send a Content-Length"}
	}

	body := &readErr{r: resp.Body}
	br := bufio.NewReaderSize(body, 64<<10)
	head, _ := br.Peek(sniffSize)
	if len(head) == 0 && body.err != nil && body.err != io.EOF {
		return 0, r.bodyError(parent, ctx, where, timeout, body.err)
	}
	if len(head) == 0 {
		return 0, &provider.InvalidDataError{Object: where, Reason: "the server sent an empty file"}
	}
	if isHTML(head) {
		return 0, &provider.InvalidDataError{Object: where, Reason: "the server sent an HTML page, not a CSV (a login page?)"}
	}
	n, err := io.Copy(w, io.LimitReader(br, maxSize))
	if err != nil {
		if body.err != nil && body.err != io.EOF {
			return n, r.bodyError(parent, ctx, where, timeout, body.err)
		}
		return n, fmt.Errorf("csv download: storing the file: %w", err)
	}
	if n == maxSize {
		// Read one byte more to tell "exactly the limit" from "too large".
		if _, err := br.ReadByte(); err == nil {
			return n, tooLarge(where, maxSize)
		} else if err != io.EOF {
			return n, r.bodyError(parent, ctx, where, timeout, err)
		}
	}
	// A read that failed on the way (bufio's Peek hands an error over once
	// and then reads on) or a deadline that passed means the copy is cut
	// short, however cleanly the last read ended: a short file must never
	// pass for the whole one, or its missing people would be disabled.
	if body.err != nil && body.err != io.EOF {
		return n, r.bodyError(parent, ctx, where, timeout, body.err)
	}
	if err := ctx.Err(); err != nil {
		return n, r.bodyError(parent, ctx, where, timeout, err)
	}
	return n, nil
}

func (r Remote) checkURL() (*url.URL, error) {
	raw := strings.TrimSpace(r.URL)
	if raw == "" {
		return nil, &provider.InvalidDataError{Field: "url", Reason: "no URL set"}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		// url.Parse's error repeats the URL, which may carry a secret.
		return nil, &provider.InvalidDataError{Field: "url", Reason: "not an absolute URL"}
	}
	if u.User != nil {
		return nil, &provider.InvalidDataError{Field: "url", Reason: "credentials in the URL: set username and password instead"}
	}
	if !r.schemeAllowed(u) {
		return nil, &provider.InvalidDataError{Field: "url", Reason: fmt.Sprintf("scheme %q not allowed: use https (http only for loopback hosts)", u.Scheme)}
	}
	return u, nil
}

func (r Remote) schemeAllowed(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		return r.AllowHTTPLoopback && isLoopback(u.Hostname())
	}
	return false
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// client copies the configured client so that its redirect policy can be
// tightened without touching a client the caller shares.
func (r Remote) client() *http.Client {
	c := http.Client{}
	if r.Client != nil {
		c = *r.Client
	}
	inner := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if !r.schemeAllowed(req.URL) {
			return &provider.InvalidDataError{
				Object: (&url.URL{Scheme: req.URL.Scheme, Host: req.URL.Host, Path: req.URL.Path}).String(),
				Reason: "the server redirected to a non-https address",
			}
		}
		if inner != nil {
			return inner(req, via)
		}
		return nil
	}
	return &c
}

func (r Remote) transportError(parent, ctx context.Context, where string, timeout time.Duration, err error) error {
	var ide *provider.InvalidDataError
	if errors.As(err, &ide) {
		return ide // our own redirect refusal
	}
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("csv download from %s: %w", where, perr)
	}
	if context.Cause(ctx) == errTimeout {
		return fmt.Errorf("%w: %s did not answer within %s", provider.ErrUnreachable, where, timeout)
	}
	// url.Error repeats the full URL; keep only the cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%w: %s: %v", provider.ErrUnreachable, where, err)
}

func (r Remote) bodyError(parent, ctx context.Context, where string, timeout time.Duration, err error) error {
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("csv download from %s: %w", where, perr)
	}
	if context.Cause(ctx) == errTimeout {
		return fmt.Errorf("%w: %s did not send the whole file within %s", provider.ErrUnreachable, where, timeout)
	}
	return fmt.Errorf("%w: reading the file from %s: %v", provider.ErrUnreachable, where, err)
}

func (r Remote) checkStatus(resp *http.Response, where string) error {
	code := resp.StatusCode
	status := fmt.Sprintf("%d %s", code, http.StatusText(code))
	switch {
	case code >= 200 && code < 300:
		if code == http.StatusNoContent {
			return &provider.InvalidDataError{Object: where, Reason: "the server sent an empty file (204 No Content)"}
		}
		return nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusProxyAuthRequired:
		if r.Username == "" && code == http.StatusUnauthorized {
			return fmt.Errorf("%w: %s asks for credentials and none are set (%s)", provider.ErrAuth, where, status)
		}
		return fmt.Errorf("%w: the server refused the credentials (%s)", provider.ErrAuth, status)
	case code == http.StatusNotFound || code == http.StatusGone:
		return fmt.Errorf("%w: no file at %s (%s)", provider.ErrNotFound, where, status)
	case code == http.StatusTooManyRequests:
		return &provider.ThrottledError{RetryAfter: retryAfter(resp.Header.Get("Retry-After")), Message: where + " (" + status + ")"}
	case code >= 500:
		return fmt.Errorf("csv download: the server of %s failed (%s), try again later", where, status)
	}
	return fmt.Errorf("csv download: the server of %s answered %s", where, status)
}

func retryAfter(v string) time.Duration {
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 30 * time.Second
}

func checkContentType(ct, where string) error {
	if strings.TrimSpace(ct) == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, _, _ = strings.Cut(ct, ";")
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch {
	case acceptedTypes[mt]:
		return nil
	case mt == "text/html" || mt == "application/xhtml+xml":
		return &provider.InvalidDataError{Object: where, Reason: "the server sent an HTML page, not a CSV (a login page?)"}
	}
	return &provider.InvalidDataError{Object: where, Reason: fmt.Sprintf("the server sent content type %q, not a CSV", mt)}
}

func tooLarge(where string, maxSize int64) error {
	return &provider.InvalidDataError{Object: where, Reason: "the file is larger than the " + formatSize(maxSize) + " limit"}
}

func formatSize(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// unframed reports a body that simply ends where the connection ends
// (HTTP/1.x with neither Content-Length nor chunked encoding). Such a body
// cut short at a line end reads as a whole, smaller CSV, and the users in
// the missing part would be disabled; with a length or chunks, a cut is a
// read error instead. A body the transport decompressed is safe either way:
// gzip's trailer catches a cut.
func unframed(resp *http.Response) bool {
	return resp.ProtoMajor == 1 && resp.ContentLength < 0 && len(resp.TransferEncoding) == 0 && !resp.Uncompressed
}

// readErr remembers the body's read error, so that a failed copy can be
// blamed on the network or on the writer correctly.
type readErr struct {
	r   io.Reader
	err error
}

// Read keeps the first error: a read after a failed one may well end in a
// plain EOF, which must not hide the failure.
func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && (e.err == nil || e.err == io.EOF) {
		e.err = err
	}
	return n, err
}
