package api

import (
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowBody sends its chunks with a pause before each.
type slowBody struct {
	chunks [][]byte
	pause  time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(b.chunks) == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.pause)
	n := copy(p, b.chunks[0])
	b.chunks[0] = b.chunks[0][n:]
	if len(b.chunks[0]) == 0 {
		b.chunks = b.chunks[1:]
	}
	return n, nil
}

// A server's short ReadTimeout protects every request, but a document
// upload may take longer: longBody lifts the deadline for that route only.
func TestUploadOutlivesReadTimeout(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewUnstartedServer(e.h)
	srv.Config.ReadTimeout = 400 * time.Millisecond
	srv.Start()
	defer srv.Close()

	var form strings.Builder
	mw := multipart.NewWriter(&form)
	fw, err := mw.CreateFormFile("file", "people.csv")
	require.NoError(t, err)
	io.WriteString(fw, "username,firstName,lastName,email\n"+strings.Repeat("ann,Ann,Lee,ann@example.com\n", 50))
	require.NoError(t, mw.Close())
	raw := []byte(form.String())
	var chunks [][]byte
	for i := 0; i < len(raw); i += len(raw)/6 + 1 {
		chunks = append(chunks, raw[i:min(i+len(raw)/6+1, len(raw))])
	}
	// Six pauses of 250 ms: well past the 400 ms ReadTimeout in total.
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/documents", &slowBody{chunks: chunks, pause: 250 * time.Millisecond})
	require.NoError(t, err)
	req.ContentLength = int64(len(raw))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)

	// The same pace on a JSON endpoint is cut by the ReadTimeout.
	req, err = http.NewRequest(http.MethodPost, srv.URL+"/api/v1/roles",
		&slowBody{chunks: [][]byte{[]byte(`{"na`), []byte(`me":`), []byte(`"slow`), []byte(`"}`)}, pause: 250 * time.Millisecond})
	require.NoError(t, err)
	req.ContentLength = int64(len(`{"name":"slow"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err = srv.Client().Do(req)
	if err == nil {
		defer resp.Body.Close()
		assert.NotEqual(t, http.StatusCreated, resp.StatusCode)
	}
}
