package csv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/provider"
)

const (
	remoteUser     = "sync-bot"
	remotePassword = "s3cr3t-Pa55w0rd"
	remoteBody     = "username,firstName,lastName,email\njdoe,John,Doe,jdoe@example.com\n"
)

// fileServer serves remoteBody at /people.csv behind basic auth, and odd
// answers at other paths.
func fileServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/people.csv":
			u, p, ok := r.BasicAuth()
			if !ok || u != remoteUser || p != remotePassword {
				w.Header().Set("WWW-Authenticate", `Basic realm="files"`)
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Write([]byte(remoteBody))
		case "/open.csv":
			w.Write([]byte(remoteBody)) // no content type set: sniffed as text/plain
		case "/forbidden.csv":
			http.Error(w, "no", http.StatusForbidden)
		case "/broken.csv":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/busy.csv":
			w.Header().Set("Retry-After", "7")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case "/login":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte("<!doctype html><form>password</form>"))
		case "/html-as-text.csv":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("\n<html><body>Sign in</body></html>"))
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"a":1}`))
		case "/excel.csv":
			w.Header().Set("Content-Type", "application/vnd.ms-excel")
			w.Write([]byte(remoteBody))
		case "/empty.csv":
			w.Header().Set("Content-Type", "text/csv")
		case "/big.csv":
			w.Header().Set("Content-Type", "text/csv")
			w.Write(bytes.Repeat([]byte("a,b\n"), (1<<20)/4+1)) // 1 MiB + 4 bytes, with Content-Length
		case "/big-chunked.csv":
			w.Header().Set("Content-Type", "text/csv")
			for i := 0; i < 300; i++ { // 300 KiB in flushed chunks: no Content-Length
				w.Write(bytes.Repeat([]byte("a,b\n"), 256))
				w.(http.Flusher).Flush()
			}
		case "/exact.csv":
			w.Header().Set("Content-Type", "text/csv")
			w.Write([]byte("a,b\n1,2\n")) // 8 bytes
		case "/hang":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "/slow-body.csv":
			w.Header().Set("Content-Type", "text/csv")
			w.Write([]byte("username,firstName\n"))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "/to-http":
			http.Redirect(w, r, "http://127.0.0.1:1/people.csv", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

func TestRemoteDownload(t *testing.T) {
	srv := fileServer(t)
	ok := []struct {
		name string
		r    Remote
		want string
	}{
		{"basic auth", Remote{URL: srv.URL + "/people.csv", Username: remoteUser, Password: remotePassword}, remoteBody},
		{"no content type", Remote{URL: srv.URL + "/open.csv"}, remoteBody},
		{"excel content type", Remote{URL: srv.URL + "/excel.csv"}, remoteBody},
		{"exactly the size cap", Remote{URL: srv.URL + "/exact.csv", MaxSize: 8}, "a,b\n1,2\n"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.Client = srv.Client()
			var buf bytes.Buffer
			n, err := tt.r.Download(context.Background(), &buf)
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			if buf.String() != tt.want || n != int64(len(tt.want)) {
				t.Fatalf("got %d bytes %q, want %q", n, buf.String(), tt.want)
			}
		})
	}

	bad := []struct {
		name  string
		r     Remote
		is    error  // sentinel the error must match, nil = none checked
		want  string // substring
		retry bool   // provider.Retryable
	}{
		{"wrong password", Remote{URL: srv.URL + "/people.csv", Username: remoteUser, Password: remotePassword + "x"},
			provider.ErrAuth, "the server refused the credentials (401 Unauthorized)", false},
		{"no credentials", Remote{URL: srv.URL + "/people.csv"}, provider.ErrAuth, "401 Unauthorized", false},
		{"forbidden", Remote{URL: srv.URL + "/forbidden.csv", Username: remoteUser, Password: remotePassword},
			provider.ErrAuth, "403 Forbidden", false},
		{"not found", Remote{URL: srv.URL + "/nope.csv?sig=tok3n", Username: remoteUser, Password: remotePassword},
			provider.ErrNotFound, "/nope.csv (404 Not Found)", false},
		{"server error", Remote{URL: srv.URL + "/broken.csv"}, nil, "500 Internal Server Error", true},
		{"html content type", Remote{URL: srv.URL + "/login"}, provider.ErrInvalidData, "an HTML page, not a CSV", false},
		{"html body", Remote{URL: srv.URL + "/html-as-text.csv"}, provider.ErrInvalidData, "an HTML page, not a CSV", false},
		{"json", Remote{URL: srv.URL + "/json"}, provider.ErrInvalidData, `content type "application/json"`, false},
		{"empty body", Remote{URL: srv.URL + "/empty.csv"}, provider.ErrInvalidData, "empty file", false},
		{"over the cap", Remote{URL: srv.URL + "/big.csv", MaxSize: 1 << 20}, provider.ErrInvalidData, "larger than the 1 MiB limit", false},
		{"over the cap while streaming", Remote{URL: srv.URL + "/big-chunked.csv", MaxSize: 100 << 10}, provider.ErrInvalidData, "larger than the 100 KiB limit", false},
		{"over a small cap", Remote{URL: srv.URL + "/exact.csv", MaxSize: 7}, provider.ErrInvalidData, "larger than the 7 bytes limit", false},
		{"timeout before headers", Remote{URL: srv.URL + "/hang", Timeout: 100 * time.Millisecond}, provider.ErrUnreachable, "did not answer within 100ms", true},
		// Headers must arrive within the budget even on a loaded machine; the
		// body never ends, so the budget still runs out in the body.
		{"timeout in the body", Remote{URL: srv.URL + "/slow-body.csv", Timeout: 2 * time.Second}, provider.ErrUnreachable, "did not send the whole file within 2s", true},
		{"redirect to http", Remote{URL: srv.URL + "/to-http", Username: remoteUser, Password: remotePassword}, provider.ErrInvalidData, "redirected to a non-https address", false},
		{"plain http", Remote{URL: strings.Replace(srv.URL, "https:", "http:", 1) + "/people.csv"}, provider.ErrInvalidData, `scheme "http" not allowed`, false},
		{"http to a remote host", Remote{URL: "http://files.example.com/people.csv", AllowHTTPLoopback: true}, provider.ErrInvalidData, "use https", false},
		{"credentials in the url", Remote{URL: "https://bob:" + remotePassword + "@files.example.com/x.csv"}, provider.ErrInvalidData, "credentials in the URL", false},
		{"no url", Remote{}, provider.ErrInvalidData, "no URL", false},
		{"ftp", Remote{URL: "ftp://files.example.com/x.csv"}, provider.ErrInvalidData, `scheme "ftp"`, false},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.Client = srv.Client()
			start := time.Now()
			_, err := tt.r.Download(context.Background(), &bytes.Buffer{})
			if err == nil {
				t.Fatal("Download succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if provider.Retryable(err) != tt.retry {
				t.Errorf("Retryable(%q) = %v, want %v", err, !tt.retry, tt.retry)
			}
			if strings.Contains(err.Error(), remotePassword) || strings.Contains(err.Error(), "tok3n") {
				t.Errorf("error shows a secret: %q", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestRemoteThrottled(t *testing.T) {
	srv := fileServer(t)
	_, err := Remote{URL: srv.URL + "/busy.csv", Client: srv.Client()}.Download(context.Background(), &bytes.Buffer{})
	var te *provider.ThrottledError
	if !errors.As(err, &te) || te.RetryAfter != 7*time.Second {
		t.Fatalf("Download = %v, want ThrottledError after 7s", err)
	}
}

func TestRemoteUnreachable(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	client, url := srv.Client(), srv.URL
	srv.Close() // connection refused from now on
	_, err := Remote{URL: url + "/people.csv?sig=tok3n", Client: client, Password: remotePassword, Username: "u"}.Download(context.Background(), &bytes.Buffer{})
	if !errors.Is(err, provider.ErrUnreachable) || !provider.Retryable(err) {
		t.Fatalf("Download from a closed server = %v, want ErrUnreachable", err)
	}
	if strings.Contains(err.Error(), remotePassword) || strings.Contains(err.Error(), "tok3n") {
		t.Errorf("error shows a secret: %q", err)
	}
}

func TestRemoteHTTPLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		w.Write([]byte(remoteBody))
	}))
	defer srv.Close()
	var buf bytes.Buffer
	if _, err := (Remote{URL: srv.URL + "/x.csv", AllowHTTPLoopback: true}).Download(context.Background(), &buf); err != nil || buf.String() != remoteBody {
		t.Fatalf("http loopback allowed: %v, %q", err, buf.String())
	}
	localhost := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	if _, err := (Remote{URL: localhost + "/x.csv", AllowHTTPLoopback: true}).Download(context.Background(), &bytes.Buffer{}); err != nil {
		t.Fatalf("http localhost allowed: %v", err)
	}
	if _, err := (Remote{URL: srv.URL + "/x.csv"}).Download(context.Background(), &bytes.Buffer{}); !errors.Is(err, provider.ErrInvalidData) {
		t.Fatalf("http loopback without the flag = %v, want refused", err)
	}
}

func TestRemoteCancelledIsNotUnreachable(t *testing.T) {
	srv := fileServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := Remote{URL: srv.URL + "/hang", Client: srv.Client()}.Download(ctx, &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) || errors.Is(err, provider.ErrUnreachable) {
		t.Fatalf("cancelled download = %v, want context.Canceled", err)
	}
}

// The downloaded copy is what a run reads: the two ends fit together.
func TestRemoteIntoSource(t *testing.T) {
	srv := fileServer(t)
	var buf bytes.Buffer
	if _, err := (Remote{URL: srv.URL + "/people.csv", Username: remoteUser, Password: remotePassword, Client: srv.Client()}).Download(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	s, _ := newSource(t, buf.String(), Config{DefaultPassword: "x"})
	users, _ := allUsers(t, s)
	if len(users) != 1 || users[0].ExternalID != "jdoe" {
		t.Fatalf("users = %v", users)
	}
}

// A response without a length ends where the connection ends, so a cut
// cannot be seen: it is refused rather than read as a smaller file.
func TestRemoteRefusesUnframedBody(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nConnection: close\r\n\r\n" + remoteBody)
		buf.Flush() //nolint:errcheck
	}))
	defer srv.Close()
	var out bytes.Buffer
	_, err := Remote{URL: srv.URL + "/people.csv", Client: srv.Client()}.Download(context.Background(), &out)
	if !errors.Is(err, provider.ErrInvalidData) || !strings.Contains(err.Error(), "without a length") {
		t.Fatalf("unframed body: %v", err)
	}
	// A chunked body of unknown length is framed: it is read.
	chunked := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		w.Write([]byte(remoteBody)) //nolint:errcheck
		w.(http.Flusher).Flush()    // headers go out before the end: chunked
	}))
	defer chunked.Close()
	out.Reset()
	if _, err := (Remote{URL: chunked.URL + "/people.csv", Client: chunked.Client()}).Download(context.Background(), &out); err != nil || out.String() != remoteBody {
		t.Fatalf("chunked body: %q, %v", out.String(), err)
	}
}

// stutteringBody gives a piece of a file, then a failed read, then a clean
// EOF: what a body cut by a deadline can look like to the reader after
// bufio has handed the failure over once.
type stutteringBody struct{ step int }

func (b *stutteringBody) Read(p []byte) (int, error) {
	b.step++
	switch b.step {
	case 1:
		return copy(p, "username,firstName,lastName,email\nalice,Alice,Archer,alice@example.com\n"), nil
	case 2:
		return 0, errors.New("read tcp: connection reset by peer")
	}
	return 0, io.EOF
}

func (b *stutteringBody) Close() error { return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRemoteDownloadCutShortIsAFailure(t *testing.T) {
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"text/csv"}}, ContentLength: -1, TransferEncoding: []string{"chunked"},
			Body: &stutteringBody{}, Request: r}, nil
	})}
	var buf bytes.Buffer
	_, err := Remote{URL: "https://files.example.com/people.csv", Client: client}.Download(context.Background(), &buf)
	if err == nil || !provider.Retryable(err) {
		t.Fatalf("a body cut short was accepted (or made final): err=%v, got %q", err, buf.String())
	}
}
