package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/provider/azure"
	"github.com/usersync/usersync/service"
)

const azureProfile = `{"name":"Contoso","provider":"azure",
	"azure":{"tenantId":"contoso.onmicrosoft.com","clientId":"app-1","clientSecret":"azure-SECRET-3"}}`

// pickerCall is what the fake group picker was asked.
type pickerCall struct {
	provider, secret, search, cursor string
	limit                            int
}

func TestProviderGroups(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []pickerCall
		fail  error
	)
	e := newEnv(t, func(o *Options) {
		o.ProviderGroups = func(_ context.Context, p *directory.Profile, cfg *profile.Config, search, cursor string, limit int) (provider.Page[provider.Group], error) {
			mu.Lock()
			defer mu.Unlock()
			secret := ""
			if a, ok := cfg.Block.(*azure.Profile); ok {
				secret = a.ClientSecret
			}
			calls = append(calls, pickerCall{p.Provider, secret, search, cursor, limit})
			if fail != nil {
				return provider.Page[provider.Group]{}, fail
			}
			if cursor == "" {
				return provider.Page[provider.Group]{Items: []provider.Group{
					{ID: "g1", Name: "Intranet Editors", Type: "security", SecurityEnabled: true},
					{ID: "g2", Name: "Intranet Mail", Type: "mailEnabledSecurity", MailEnabled: true, SecurityEnabled: true},
				}, Next: "page-2"}, nil
			}
			return provider.Page[provider.Group]{}, nil
		}
	})
	id := e.createProfile(azureProfile)
	base := "/api/v1/profiles/" + id + "/provider-groups"

	m := e.do(http.MethodGet, base+"?search=+Intranet+", nil).status(http.StatusOK)
	next, _ := m["nextCursor"].(string)
	assert.NotContains(t, next, "page-2", "the provider's cursor is sealed")
	require.Len(t, m["items"], 2)
	assert.Equal(t, map[string]any{"id": "g2", "name": "Intranet Mail", "type": "mailEnabledSecurity",
		"mailEnabled": true, "securityEnabled": true}, m["items"].([]any)[1])
	e.do(http.MethodGet, base+"?cursor=page-2", nil).apiErr(http.StatusBadRequest, "bad_request")
	m = e.do(http.MethodGet, base+"?cursor="+next+"&limit=5000", nil).status(http.StatusOK)
	assert.Equal(t, []any{}, m["items"], "an empty page is [], not null")
	assert.NotContains(t, m, "nextCursor")
	assert.Equal(t, []pickerCall{
		{"azure", "azure-SECRET-3", "Intranet", "", defaultPickerLimit},
		{"azure", "azure-SECRET-3", "", "page-2", maxLimit},
	}, calls, "the picker reads with the stored secret; the limit defaults to 100 and is cut to 1000")

	e.do(http.MethodGet, base+"?limit=0", nil).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodGet, "/api/v1/profiles/nope/provider-groups", nil).apiErr(http.StatusNotFound, "not_found")
	e.doWith(http.MethodGet, base, nil, nil).apiErr(http.StatusUnauthorized, "unauthorized")

	// Provider failures: 502 provider_error saying why, without the secret.
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		err      error
		status   int
		code     string
		contains string
	}{
		{fmt.Errorf("token endpoint: AADSTS7000215 invalid client secret azure-SECRET-3: %w", provider.ErrAuth),
			http.StatusBadGateway, "provider_error", "authentication failed"},
		{fmt.Errorf("Authorization_RequestDenied: %w", provider.ErrPermission), http.StatusBadGateway, "provider_error", "permission denied"},
		{fmt.Errorf("graph.microsoft.com: %w", provider.ErrUnreachable), http.StatusBadGateway, "provider_error", "unreachable"},
		{fmt.Errorf("list groups: %w", opErr), http.StatusBadGateway, "provider_error", "unreachable"},
		{fmt.Errorf("list groups: %w", context.DeadlineExceeded), http.StatusBadGateway, "provider_error", "unreachable"},
		{&provider.ThrottledError{RetryAfter: 2500 * time.Millisecond, Message: "TooManyRequests"}, http.StatusBadGateway, "provider_error", "throttled"},
		{fmt.Errorf("skiptoken: %w", provider.ErrCursorExpired), http.StatusBadRequest, "bad_request", "cursor"},
		{&provider.InvalidDataError{Object: "group 7", Reason: "no displayName"}, http.StatusBadGateway, "provider_error", "group 7"},
		{errors.New(`pq: relation "sync_secret_table" does not exist`), http.StatusBadGateway, "provider_error", "request id"},
	} {
		fail = tc.err
		r := e.do(http.MethodGet, base, nil)
		er := r.apiErr(tc.status, tc.code)
		assert.Contains(t, er["message"], tc.contains, tc.err.Error())
		assert.NotContains(t, r.Body.String(), "azure-SECRET-3")
		assert.NotContains(t, r.Body.String(), "sync_secret_table", "an unknown error's text stays in the log")
		if _, ok := tc.err.(*provider.ThrottledError); ok {
			assert.Equal(t, "3", r.Header().Get("Retry-After"), "rounded up to whole seconds")
		}
	}
	assert.Contains(t, e.logs.String(), "sync_secret_table")
	assert.NotContains(t, e.logs.String(), "azure-SECRET-3")

	// A CSV profile whose document is gone: the profile needs fixing.
	doc := e.upload("file", "people.csv", "username,firstName,lastName,email\n").status(http.StatusCreated)["id"].(string)
	csvID := e.createProfile(`{"name":"Doc","provider":"csv","csv":{"documentId":"` + doc + `"}}`)
	e.do(http.MethodDelete, "/api/v1/documents/"+doc, nil).status(http.StatusNoContent)
	fail = fmt.Errorf("csv document %s: %w", doc, directory.ErrNotFound)
	er := e.do(http.MethodGet, "/api/v1/profiles/"+csvID+"/provider-groups", nil).apiErr(http.StatusUnprocessableEntity, "validation_failed")
	assert.Equal(t, "csv.documentId", er["details"].([]any)[0].(map[string]any)["field"])
}

func TestProviderGroupsNotConfigured(t *testing.T) {
	e := newEnv(t)
	id := e.createProfile(azureProfile)
	e.do(http.MethodGet, "/api/v1/profiles/"+id+"/provider-groups", nil).apiErr(http.StatusNotFound, "not_found")
}

func TestLiveProgress(t *testing.T) {
	var (
		asked atomic.Int32
		fail  atomic.Bool
	)
	e := newEnv(t, func(o *Options) {
		o.Progress = func(_ context.Context, r *directory.Run) (Progress, error) {
			asked.Add(1)
			if fail.Load() {
				return Progress{}, errors.New("query failed: workflow not found")
			}
			return Progress{Phase: directory.PhasePlan, Counts: directory.RunCounts{Fetched: 1200, Created: 0}}, nil
		}
	})
	_, running := e.startRun("one")
	_, ended := e.startRun("two")
	e.setRunStatus(ended, directory.RunSucceeded)

	run := e.do(http.MethodGet, "/api/v1/runs/"+running, nil).status(http.StatusOK)
	assert.Equal(t, "plan", run["phase"])
	assert.Equal(t, 1200.0, run["counts"].(map[string]any)["fetched"])
	assert.Equal(t, int32(1), asked.Load())

	list := e.do(http.MethodGet, "/api/v1/runs", nil).status(http.StatusOK)
	byID := map[string]map[string]any{}
	for _, it := range list["items"].([]any) {
		byID[it.(map[string]any)["id"].(string)] = it.(map[string]any)
	}
	assert.Equal(t, 1200.0, byID[running]["counts"].(map[string]any)["fetched"])
	assert.Equal(t, 0.0, byID[ended]["counts"].(map[string]any)["fetched"], "an ended run shows what it recorded")
	assert.Equal(t, int32(2), asked.Load(), "only the running run is queried")

	// The query fails: the stored row shows.
	fail.Store(true)
	run = e.do(http.MethodGet, "/api/v1/runs/"+running, nil).status(http.StatusOK)
	assert.Equal(t, "fetch", run["phase"])
	assert.Equal(t, 0.0, run["counts"].(map[string]any)["fetched"])
}

func TestSwitchDirectory(t *testing.T) {
	e := newEnv(t)
	id := e.createProfile(csvProfile)
	key := e.do(http.MethodGet, "/api/v1/profiles/"+id, nil).status(http.StatusOK)["directoryKey"].(string)
	ann := e.createUser("ann")
	bob := e.createUser("bob")
	ext := "okta-9"
	synced := &directory.User{Username: "carl", FirstName: "C", LastName: "L", Email: "carl@example.com",
		DirectoryKey: key, ExternalID: &ext}
	require.NoError(t, e.store.CreateUser(context.Background(), synced))
	other := e.createProfile(`{"name":"Other","provider":"csv","csv":{"url":"https://x.example.com/a.csv"}}`)
	otherKey := e.do(http.MethodGet, "/api/v1/profiles/"+other, nil).status(http.StatusOK)["directoryKey"].(string)

	m := e.do(http.MethodPost, "/api/v1/users/switch-directory", map[string]any{
		"usernames": []string{"Ann", "nobody", "carl", "ann", "bob"}, "directoryKey": otherKey}).status(http.StatusOK)
	assert.Equal(t, otherKey, m["directoryKey"])
	assert.Equal(t, other, m["profileId"])
	assert.Equal(t, 2.0, m["switched"])
	assert.Equal(t, []any{
		map[string]any{"username": "Ann", "result": "switched", "userId": ann, "directoryKey": otherKey},
		map[string]any{"username": "nobody", "result": "not_found"},
		map[string]any{"username": "carl", "result": "not_local", "userId": synced.ID, "directoryKey": key},
		map[string]any{"username": "ann", "result": "already_in_directory", "userId": ann, "directoryKey": otherKey},
		map[string]any{"username": "bob", "result": "switched", "userId": bob, "directoryKey": otherKey},
	}, m["results"])
	assert.Equal(t, otherKey, e.do(http.MethodGet, "/api/v1/users/"+ann, nil).status(http.StatusOK)["directoryKey"])

	audit := e.audit("user_directory_switched")
	require.Len(t, audit, 2)
	for _, a := range audit {
		assert.Equal(t, directory.CategoryDirectory, a.Category)
		assert.Equal(t, "Other", a.Connection)
		assert.Contains(t, a.Details, "local to "+otherKey)
	}

	path := "/api/v1/users/switch-directory"
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"usernames": []string{"dave"}, "directoryKey": "p-doesnotexist"}, "directoryKey"},
		{map[string]any{"usernames": []string{"dave"}, "directoryKey": "local"}, "directoryKey"},
		{map[string]any{"usernames": []string{"dave"}}, "directoryKey"},
		{map[string]any{"usernames": []string{}, "directoryKey": otherKey}, "usernames"},
		{map[string]any{"usernames": []string{"dave", " "}, "directoryKey": otherKey}, "usernames[1]"},
		{map[string]any{"usernames": make([]string, service.MaxSwitchUsernames+1), "directoryKey": otherKey}, "usernames"},
	} {
		er := e.do(http.MethodPost, path, tc.body).apiErr(http.StatusUnprocessableEntity, "validation_failed")
		fields := []string{}
		for _, d := range er["details"].([]any) {
			fields = append(fields, d.(map[string]any)["field"].(string))
		}
		assert.Contains(t, fields, tc.field, "%v", tc.body)
	}
	e.do(http.MethodPost, path, `{"usernames":["dave"],"directoryKey":"`+otherKey+`","force":true}`).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodPost, path, `{"usernames":"dave","directoryKey":"`+otherKey+`"}`).apiErr(http.StatusBadRequest, "bad_request")
	e.do(http.MethodPost, path, `{"usernames":[`).apiErr(http.StatusBadRequest, "bad_request")
	e.doWith(http.MethodPost, path, `{}`, nil).apiErr(http.StatusUnauthorized, "unauthorized")
	assert.Len(t, e.audit("user_directory_switched"), 2, "refused requests switch nobody")
}

func TestMetricsEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(o *Options) { o.Metrics = reg })
	id := e.createProfile(csvProfile)
	e.do(http.MethodGet, "/api/v1/profiles/"+id, nil).status(http.StatusOK)
	e.do(http.MethodGet, "/api/v1/profiles/nope", nil).apiErr(http.StatusNotFound, "not_found")
	e.do(http.MethodGet, "/api/v1/no-such-thing", nil).apiErr(http.StatusNotFound, "not_found")
	e.doWith("BREW", "/api/v1/profiles", nil, nil)

	for _, path := range []string{"/metrics", "/api/v1/metrics"} {
		r := e.doWith(http.MethodGet, path, nil, nil) // no token
		require.Equal(t, http.StatusOK, r.Code, path)
		assert.Contains(t, r.Header().Get("Content-Type"), "text/plain")
		body := r.Body.String()
		for _, want := range []string{
			`usersync_http_requests_total{code="201",method="POST",route="/api/v1/profiles"} 1`,
			`usersync_http_requests_total{code="200",method="GET",route="/api/v1/profiles/:id"} 1`,
			`usersync_http_requests_total{code="404",method="GET",route="/api/v1/profiles/:id"} 1`,
			`usersync_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
			`method="OTHER"`,
			`usersync_http_request_duration_seconds_count{method="POST",route="/api/v1/profiles"} 1`,
		} {
			assert.Contains(t, body, want, path)
		}
		assert.NotContains(t, body, id, "ids never become label values")
	}
}

func TestMetricsAbsentWithoutRegistry(t *testing.T) {
	e := newEnv(t)
	e.doWith(http.MethodGet, "/metrics", nil, nil).apiErr(http.StatusNotFound, "not_found")
}

// The issue 3 list of bad input, each answered with its status and the
// error shape.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	id := e.createProfile(csvProfile)
	withSchedule := func(s string) string {
		return `{"name":"S","provider":"csv","csv":{"url":"https://x.example.com/a.csv"},"schedule":` + s + `}`
	}
	fieldOf := func(er map[string]any) string { return er["details"].([]any)[0].(map[string]any)["field"].(string) }
	post := func(body any) response { return e.do(http.MethodPost, "/api/v1/profiles", body) }

	t.Run("malformed JSON", func(t *testing.T) {
		post(`{"name":"x",`).apiErr(http.StatusBadRequest, "bad_request")
		e.do(http.MethodPost, "/api/v1/users", `[1,2`).apiErr(http.StatusBadRequest, "bad_request")
	})
	t.Run("wrong types", func(t *testing.T) {
		er := post(`{"name":5,"provider":"csv","csv":{"url":"https://x.example.com/a.csv"}}`).apiErr(http.StatusBadRequest, "bad_request")
		assert.Contains(t, er["message"], "name")
		post(withSchedule(`{"frequency":"interval","everyMinutes":"60"}`)).apiErr(http.StatusBadRequest, "bad_request")
		e.do(http.MethodPut, "/api/v1/settings/licence", `{"limit":"many"}`).apiErr(http.StatusBadRequest, "bad_request")
	})
	t.Run("unknown fields", func(t *testing.T) {
		er := post(`{"name":"x","provider":"csv","csv":{"url":"https://x.example.com/a.csv"},"colour":"red"}`).apiErr(http.StatusBadRequest, "bad_request")
		assert.Contains(t, er["message"], "colour")
		e.do(http.MethodPatch, "/api/v1/users/whoever", `{"status":"disabled","admin":true}`).apiErr(http.StatusBadRequest, "bad_request")
	})
	t.Run("5 MB JSON body", func(t *testing.T) {
		big := `{"name":"` + strings.Repeat("x", 5<<20) + `"}`
		post(big).apiErr(http.StatusRequestEntityTooLarge, "too_large")
		e.do(http.MethodPut, "/api/v1/profiles/"+id, big).apiErr(http.StatusRequestEntityTooLarge, "too_large")
		e.do(http.MethodPost, "/api/v1/users/switch-directory", big).apiErr(http.StatusRequestEntityTooLarge, "too_large")
	})
	t.Run("missing or wrong token", func(t *testing.T) {
		e.doWith(http.MethodGet, "/api/v1/profiles", nil, nil).apiErr(http.StatusUnauthorized, "unauthorized")
		e.doWith(http.MethodGet, "/api/v1/profiles", nil, map[string]string{"Authorization": "Bearer nope"}).
			apiErr(http.StatusUnauthorized, "unauthorized")
	})
	t.Run("schedule time 25:00", func(t *testing.T) {
		er := post(withSchedule(`{"frequency":"daily","time":"25:00","timezone":"Europe/London"}`)).apiErr(http.StatusUnprocessableEntity, "validation_failed")
		assert.Equal(t, "schedule.time", fieldOf(er))
	})
	t.Run("zone Mars/Base", func(t *testing.T) {
		er := post(withSchedule(`{"frequency":"daily","time":"12:00","timezone":"Mars/Base"}`)).apiErr(http.StatusUnprocessableEntity, "validation_failed")
		assert.Equal(t, "schedule.timezone", fieldOf(er))
	})
	t.Run("everyMinutes 0", func(t *testing.T) {
		er := post(withSchedule(`{"frequency":"interval","everyMinutes":0}`)).apiErr(http.StatusUnprocessableEntity, "validation_failed")
		assert.Equal(t, "schedule.everyMinutes", fieldOf(er))
	})
	t.Run("invalid regex", func(t *testing.T) {
		er := post(`{"name":"R","provider":"csv","csv":{"url":"https://x.example.com/a.csv"},"groupSync":{"mode":"regex","pattern":"[a-"}}`).
			apiErr(http.StatusUnprocessableEntity, "validation_failed")
		assert.Equal(t, "groupSync.pattern", fieldOf(er))
	})
	t.Run("profile name taken", func(t *testing.T) {
		er := post(strings.Replace(csvProfile, "People file", "people FILE", 1)).apiErr(http.StatusConflict, "conflict")
		assert.Equal(t, "name", fieldOf(er))
	})
	t.Run("id that does not exist", func(t *testing.T) {
		for _, p := range []string{"/api/v1/profiles/nope", "/api/v1/runs/nope", "/api/v1/users/nope", "/api/v1/groups/nope",
			"/api/v1/runs/nope/changes", "/api/v1/groups/nope/members"} {
			e.do(http.MethodGet, p, nil).apiErr(http.StatusNotFound, "not_found")
		}
		e.do(http.MethodDelete, "/api/v1/documents/nope", nil).apiErr(http.StatusNotFound, "not_found")
	})
	t.Run("switch to a directory that does not exist", func(t *testing.T) {
		er := e.do(http.MethodPost, "/api/v1/users/switch-directory", map[string]any{"usernames": []string{"x"}, "directoryKey": "p-nothere00"}).
			apiErr(http.StatusUnprocessableEntity, "validation_failed")
		assert.Equal(t, "directoryKey", fieldOf(er))
	})
}

// No log line carries the token (right or wrong), a profile secret, or a
// query string (search terms are about people).
func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		// A provider that quotes what it was sent, in an error that is
		// not a typed provider error (so it is logged, not answered).
		o.ProviderGroups = func(_ context.Context, _ *directory.Profile, cfg *profile.Config, _, _ string, _ int) (provider.Page[provider.Group], error) {
			return provider.Page[provider.Group]{}, fmt.Errorf("server said: bad secret %s for app: %w", cfg.Block.(*azure.Profile).ClientSecret, errors.New("boom"))
		}
		o.Metrics = prometheus.NewRegistry()
	})
	id := e.createProfile(azureProfile)
	e.do(http.MethodPut, "/api/v1/profiles/"+id, strings.Replace(azureProfile, "azure-SECRET-3", "azure-SECRET-NEW", 1)).status(http.StatusOK)
	e.do(http.MethodGet, "/api/v1/profiles/"+id+"/provider-groups?search=jane.doe", nil).apiErr(http.StatusBadGateway, "provider_error")
	e.doWith(http.MethodGet, "/api/v1/users?q=jane.doe", nil, map[string]string{"Authorization": "Bearer wrong-token-SECRET-5"}).
		apiErr(http.StatusUnauthorized, "unauthorized")
	e.doWith(http.MethodGet, "/api/v1/users?access_token="+testToken, nil, nil).apiErr(http.StatusUnauthorized, "unauthorized")
	e.do(http.MethodPost, "/api/v1/users", map[string]any{"username": "u", "firstName": "U", "lastName": "V",
		"email": "u@example.com", "password": "pw-SECRET-1"}).status(http.StatusCreated)
	e.doWith(http.MethodGet, "/metrics", nil, nil)

	logs := e.logs.String()
	require.NotEmpty(t, logs)
	for _, s := range []string{testToken, "wrong-token-SECRET-5", "azure-SECRET-3", "azure-SECRET-NEW", "pw-SECRET-1", "jane.doe"} {
		assert.NotContains(t, logs, s)
	}
	assert.Contains(t, logs, "[redacted]", "the provider error is logged, scrubbed")
}
