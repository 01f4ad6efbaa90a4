package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAudit(t *testing.T) {
	e := newEnv(t)
	id := e.createProfile(csvProfile)
	e.createProfile(`{"name":"Other","provider":"csv","csv":{"url":"https://x.example.com/a.csv"}}`)
	e.do(http.MethodPut, "/api/v1/settings/licence", `{"limit":10}`).status(http.StatusOK)

	m := e.do(http.MethodGet, "/api/v1/audit?category=UserSyncConfig&action=profile_created", nil).status(http.StatusOK)
	assert.Len(t, m["items"], 2)
	m = e.do(http.MethodGet, "/api/v1/audit?profile=People%20file", nil).status(http.StatusOK)
	require.Len(t, m["items"], 1)
	entry := m["items"].([]any)[0].(map[string]any)
	assert.Equal(t, id, entry["subject"])
	assertNoSecrets(t, entry["details"].(string))
	m = e.do(http.MethodGet, "/api/v1/audit?subject="+id, nil).status(http.StatusOK)
	assert.Len(t, m["items"], 1)
	m = e.do(http.MethodGet, "/api/v1/audit?limit=2", nil).status(http.StatusOK)
	assert.Len(t, m["items"], 2)
	assert.NotEmpty(t, m["nextCursor"])
	m = e.do(http.MethodGet, "/api/v1/audit?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil).status(http.StatusOK)
	assert.Empty(t, m["items"])
	m = e.do(http.MethodGet, "/api/v1/audit?since=2000-01-01T00:00:00Z&runId=none", nil).status(http.StatusOK)
	assert.Empty(t, m["items"])
	e.do(http.MethodGet, "/api/v1/audit?since=yesterday", nil).apiErr(http.StatusBadRequest, "bad_request")
}

func TestLicence(t *testing.T) {
	e := newEnv(t)
	m := e.do(http.MethodGet, "/api/v1/settings/licence", nil).status(http.StatusOK)
	assert.Equal(t, map[string]any{"limit": float64(0), "activeUsers": float64(0)}, m)
	e.createUser("gina")
	m = e.do(http.MethodPut, "/api/v1/settings/licence", `{"limit":5000}`).status(http.StatusOK)
	assert.Equal(t, map[string]any{"limit": float64(5000), "activeUsers": float64(1)}, m)
	assert.Equal(t, float64(5000), e.do(http.MethodGet, "/api/v1/settings/licence", nil).status(http.StatusOK)["limit"])

	er := e.do(http.MethodPut, "/api/v1/settings/licence", `{"limit":-1}`).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Equal(t, "limit", er["details"].([]any)[0].(map[string]any)["field"])
	e.do(http.MethodPut, "/api/v1/settings/licence", `{}`).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	e.do(http.MethodPut, "/api/v1/settings/licence", `{"limit":"many"}`).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodPut, "/api/v1/settings/licence", `{"limit":1,"max":2}`).apiErr(http.StatusBadRequest, "bad_request")
	audit := e.audit("licence_updated")
	require.Len(t, audit, 1)
	assert.Equal(t, "limit 5000 (was 0)", audit[0].Details)
}

// upload posts content as the multipart field.
func (e *env) upload(field, name, content string) response {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	require.NoError(e.t, mw.WriteField("note", "ignored"))
	fw, err := mw.CreateFormFile(field, name)
	require.NoError(e.t, err)
	_, err = fw.Write([]byte(content))
	require.NoError(e.t, err)
	require.NoError(e.t, mw.Close())
	req := httptest.NewRequest(http.MethodPost, "/api/v1/documents", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return response{ResponseRecorder: rec, t: e.t}
}

func TestDocuments(t *testing.T) {
	e := newEnv(t)
	content := "username,firstName,lastName,email\nann,Ann,Lee,ann@example.com\n"
	m := e.upload("file", "people.csv", content).status(http.StatusCreated)
	sum := sha256.Sum256([]byte(content))
	assert.Equal(t, "people.csv", m["name"])
	assert.Equal(t, float64(len(content)), m["size"])
	assert.Equal(t, hex.EncodeToString(sum[:]), m["sha256"])
	assert.Len(t, m, 4)
	id := m["id"].(string)

	// A CSV profile may now read it.
	e.createProfile(`{"name":"From a document","provider":"csv","csv":{"documentId":"` + id + `"}}`)

	list := e.do(http.MethodGet, "/api/v1/documents", nil).status(http.StatusOK)
	require.Len(t, list["items"], 1)
	assert.Equal(t, id, list["items"].([]any)[0].(map[string]any)["id"])

	e.upload("attachment", "people.csv", content).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodPost, "/api/v1/documents", `{"file":"x"}`).apiErr(http.StatusBadRequest, "bad_request")

	e.do(http.MethodDelete, "/api/v1/documents/"+id, nil).status(http.StatusNoContent)
	e.do(http.MethodDelete, "/api/v1/documents/"+id, nil).apiErr(http.StatusNotFound, "not_found")
	assert.Len(t, e.audit("document_uploaded"), 1)
	assert.Len(t, e.audit("document_deleted"), 1)
}

func TestDocumentTooLarge(t *testing.T) {
	e := newEnv(t)
	e.srv.svc.SetMaxDocument(1000)
	e.upload("file", "big.csv", strings.Repeat("a,b\n", 300)).apiErr(http.StatusRequestEntityTooLarge, "too_large")
	// Past the body limit itself (file limit + multipart room).
	e.upload("file", "huge.csv", strings.Repeat("a,b\n", (maxJSONBody+2000)/4)).apiErr(http.StatusRequestEntityTooLarge, "too_large")
	list := e.do(http.MethodGet, "/api/v1/documents", nil).status(http.StatusOK)
	assert.Empty(t, list["items"], "a refused upload leaves nothing")
}
