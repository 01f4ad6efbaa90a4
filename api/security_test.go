package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/service"
)

// Regression tests of issue 13 (security) through the HTTP API, on both
// databases.

const azureSecProfile = `{"name":"Entra","provider":"azure",
	"azure":{"tenantId":"contoso.example","clientId":"app","clientSecret":"azure-SECRET-9"},"groups":["g1"]}`

const oktaSecProfile = `{"name":"Okta","provider":"okta",
	"okta":{"orgUrl":"example.okta.com","apiToken":"okta-SECRET-8"},"groups":["g1"]}`

// TestSecretDoesNotFollowAMovedEndpoint is item 1: a PUT that changed only
// where a secret goes, and omitted the secret, kept it, and the next test
// connection sent it to the new host. Now the PUT is a 422 naming the
// secret; with the secret sent again it saves, and the audit log records
// the address change.
func TestSecretDoesNotFollowAMovedEndpoint(t *testing.T) {
	var tested []*profile.Config
	eachDialect(t, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			name, create, put, secretField, secret, endpoint, resend string
		}{
			{"azure authority", azureSecProfile,
				`{"name":"Entra","provider":"azure","azure":{"tenantId":"contoso.example","clientId":"app","authorityUrl":"https://evil.example"},"groups":["g1"]}`,
				"azure.clientSecret", "azure-SECRET-9", "azure.authorityUrl", `"clientSecret":"azure-SECRET-9",`},
			{"azure graph", azureSecProfile,
				`{"name":"Entra","provider":"azure","azure":{"tenantId":"contoso.example","clientId":"app","graphBaseUrl":"https://evil.example/v1.0"},"groups":["g1"]}`,
				"azure.clientSecret", "azure-SECRET-9", "azure.graphBaseUrl", `"clientSecret":"azure-SECRET-9",`},
			{"azure cloud", azureSecProfile,
				`{"name":"Entra","provider":"azure","azure":{"tenantId":"contoso.example","clientId":"app","cloud":"usgov"},"groups":["g1"]}`,
				"azure.clientSecret", "azure-SECRET-9", "azure.cloud", `"clientSecret":"azure-SECRET-9",`},
			{"okta org", oktaSecProfile,
				`{"name":"Okta","provider":"okta","okta":{"orgUrl":"evil.example"},"groups":["g1"]}`,
				"okta.apiToken", "okta-SECRET-8", "okta.orgUrl", `"apiToken":"okta-SECRET-8",`},
			{"csv url", csvProfile,
				`{"name":"People file","provider":"csv","csv":{"url":"https://evil.example/people.csv","username":"svc","defaultPassword":"dpw-SECRET-2"}}`,
				"csv.password", "pw-SECRET-1", "csv.url", `"password":"pw-SECRET-1",`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := e.createProfile(tc.create)
				defer e.do(http.MethodDelete, "/api/v1/profiles/"+id, nil)
				before := e.storedConfig(id)

				er := e.do(http.MethodPut, "/api/v1/profiles/"+id, tc.put).apiErr(http.StatusUnprocessableEntity, "validation_failed")
				details := er["details"].([]any)
				require.Len(t, details, 1, "%v", details)
				d := details[0].(map[string]any)
				assert.Equal(t, tc.secretField, d["field"])
				assert.Contains(t, d["message"], tc.endpoint)
				assert.Equal(t, before, e.storedConfig(id), "a refused PUT changes nothing")

				// Test connection still goes where it went.
				n := len(tested)
				e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
				require.Len(t, tested, n+1)
				assert.Equal(t, before, tested[n])

				// Sent again, the secret goes with the new address, and the
				// move is audited on its own.
				block, _, _ := strings.Cut(tc.endpoint, ".")
				put := strings.Replace(tc.put, `"`+block+`":{`, `"`+block+`":{`+tc.resend, 1)
				e.do(http.MethodPut, "/api/v1/profiles/"+id, put).status(http.StatusOK)
				entries := e.audit(service.ActionEndpointChanged)
				require.NotEmpty(t, entries)
				assert.Equal(t, id, entries[0].Subject)
				assert.True(t, strings.HasPrefix(entries[0].Details, tc.endpoint+": "), entries[0].Details)
				assert.NotContains(t, entries[0].Details, tc.secret)
			})
		}
	}, func(o *Options) {
		o.Tester = func(_ context.Context, _ *directory.Profile, c *profile.Config) ([]string, error) {
			tested = append(tested, c)
			return nil, nil
		}
	})
}

// TestSignedCSVURLIsSecret is item 7: the query of csv.url (?sig=…) was
// shown by reads, the admin page and the audit log, and stored in clear.
func TestSignedCSVURLIsSecret(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		const sig = "sig=SIGNED-URL-SECRET&se=2030-01-01"
		body := strings.Replace(csvProfile, "people.csv", "people.csv?"+sig, 1)
		r := e.do(http.MethodPost, "/api/v1/profiles", body)
		m := r.status(http.StatusCreated)
		id := m["id"].(string)
		assert.NotContains(t, r.Body.String(), "SIGNED-URL-SECRET")
		block := m["csv"].(map[string]any)
		assert.Equal(t, "https://files.example.com/people.csv", block["url"])
		assert.Equal(t, true, block["urlQuerySet"])

		// Not in the database in clear, but given to a run.
		p, err := e.store.GetProfile(context.Background(), id)
		require.NoError(t, err)
		assert.NotContains(t, string(p.Config), "SIGNED-URL-SECRET")
		assert.Equal(t, "https://files.example.com/people.csv?"+sig, e.storedConfig(id).Block.(*csv.Profile).URL)

		// A read sent back as it is keeps the query.
		r = e.do(http.MethodGet, "/api/v1/profiles/"+id, nil)
		assert.NotContains(t, r.Body.String(), "SIGNED-URL-SECRET")
		e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"People file","provider":"csv",
			"csv":{"url":"https://files.example.com/people.csv","username":"svc"}}`).status(http.StatusOK)
		assert.Equal(t, "https://files.example.com/people.csv?"+sig, e.storedConfig(id).Block.(*csv.Profile).URL)
		// A new signature replaces it.
		e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"People file","provider":"csv",
			"csv":{"url":"https://files.example.com/people.csv?sig=NEW-SIGNATURE","username":"svc"}}`).status(http.StatusOK)
		assert.Equal(t, "https://files.example.com/people.csv?sig=NEW-SIGNATURE", e.storedConfig(id).Block.(*csv.Profile).URL)

		page, err := e.store.ListAudit(context.Background(), directory.AuditFilter{}, directory.ListOptions{})
		require.NoError(t, err)
		for _, a := range page.Items {
			assert.NotContains(t, a.Details, "SIGNED-URL-SECRET")
			assert.NotContains(t, a.Details, "NEW-SIGNATURE")
		}
		r = e.do(http.MethodGet, "/api/v1/profiles", nil)
		assert.NotContains(t, r.Body.String(), "NEW-SIGNATURE")
	})
}

// TestWrongTokensAreThrottled is item 4 on the API: wrong bearer tokens
// were answered as fast as they came. After a client's allowance they are
// refused unchecked (429, Retry-After), and /metrics counts both.
func TestWrongTokensAreThrottled(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Metrics = prometheus.NewRegistry() })
	bad := map[string]string{"Authorization": "Bearer wrong-token"}
	codes := map[int]int{}
	for range 30 {
		r := e.doWith(http.MethodGet, "/api/v1/profiles", nil, bad)
		codes[r.Code]++
		if r.Code == http.StatusTooManyRequests {
			r.apiErr(http.StatusTooManyRequests, "too_many_attempts")
			assert.NotEmpty(t, r.Header().Get("Retry-After"))
		}
	}
	assert.Equal(t, map[int]int{http.StatusUnauthorized: 10, http.StatusTooManyRequests: 20}, codes)
	// Throttled, the right token is refused too; a request without one is
	// not a guess and is answered as before.
	e.do(http.MethodGet, "/api/v1/profiles", nil).apiErr(http.StatusTooManyRequests, "too_many_attempts")
	e.doWith(http.MethodGet, "/api/v1/profiles", nil, nil).apiErr(http.StatusUnauthorized, "unauthorized")

	m := e.doWith(http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, m.Code)
	assert.Contains(t, m.Body.String(), `usersync_signin_failures_total{via="api"} 10`)
	assert.Contains(t, m.Body.String(), `usersync_signin_throttled_total{via="api"} 21`)

}

// TestPickerCursorIsOpaque is item 2: ?cursor= was handed to the provider
// as it came, and Graph's provider fetched it as a URL (with the token
// when the host looked like Graph's). Cursors are now sealed by the
// server: one it did not make, or made for another profile, or too old,
// is a 400 and the provider is never asked.
func TestPickerCursorIsOpaque(t *testing.T) {
	var seen []string
	eachDialect(t, func(t *testing.T, e *env) {
		seen = nil
		id := e.createProfile(azureSecProfile)
		other := e.createProfile(strings.Replace(azureSecProfile, `"Entra"`, `"Entra 2"`, 1))
		base := "/api/v1/profiles/" + id + "/provider-groups"
		for _, forged := range []string{"https://evil.example/v1.0/groups?$skiptoken=x", "http://169.254.169.254/latest/meta-data",
			"page-2", "e30.AAAA", "a.b.c", "\x00", strings.Repeat("A", 4000)} {
			e.do(http.MethodGet, base+"?cursor="+url.QueryEscape(forged), nil).apiErr(http.StatusBadRequest, "bad_request")
		}
		assert.Empty(t, seen, "the provider was given a forged cursor")

		m := e.do(http.MethodGet, base, nil).status(http.StatusOK)
		next := m["nextCursor"].(string)
		assert.NotContains(t, next, "graph.example")
		e.do(http.MethodGet, base+"?cursor="+url.QueryEscape(next), nil).status(http.StatusOK)
		assert.Equal(t, []string{"", "https://graph.example/v1.0/groups?$skiptoken=2"}, seen)

		// Not for another profile, and not for ever.
		e.do(http.MethodGet, "/api/v1/profiles/"+other+"/provider-groups?cursor="+url.QueryEscape(next), nil).
			apiErr(http.StatusBadRequest, "bad_request")
		e.srv.svc.SetNow(func() time.Time { return time.Now().Add(time.Hour + 2*time.Minute) }) // past the cursors' hour
		er := e.do(http.MethodGet, base+"?cursor="+url.QueryEscape(next), nil).apiErr(http.StatusBadRequest, "bad_request")
		assert.Contains(t, er["message"], "expired")
		assert.Len(t, seen, 2)
	}, func(o *Options) {
		o.ProviderGroups = func(_ context.Context, _ *directory.Profile, _ *profile.Config, _, cursor string, _ int) (provider.Page[provider.Group], error) {
			seen = append(seen, cursor)
			if cursor == "" {
				return provider.Page[provider.Group]{Items: []provider.Group{{ID: "g1", Name: "One"}},
					Next: "https://graph.example/v1.0/groups?$skiptoken=2"}, nil
			}
			return provider.Page[provider.Group]{}, nil
		}
	})
}

// TestLimitsAndNULs is item 8 (and item 3's API half): a NUL in a query
// parameter, cursor or id answered 500 on PostgreSQL; a 10,000-character
// username was accepted. Now each is a 400 or 422 naming the field, on
// both databases.
func TestLimitsAndNULs(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		for _, path := range []string{
			"/api/v1/users?q=a%00b", "/api/v1/users?directory=%00", "/api/v1/users?cursor=%00",
			"/api/v1/users/a%00b", "/api/v1/groups?q=%00", "/api/v1/groups/x%00/members",
			"/api/v1/runs?profileId=%00", "/api/v1/runs/%00", "/api/v1/runs/x/changes?cursor=%00",
			"/api/v1/audit?subject=%00", "/api/v1/audit?since=%00", "/api/v1/profiles/%00",
			"/api/v1/users?q=%FF", "/api/v1/users?q=" + strings.Repeat("a", 300),
			"/api/v1/users/" + strings.Repeat("a", 300),
		} {
			er := e.do(http.MethodGet, path, nil).apiErr(http.StatusBadRequest, "bad_request")
			assert.Regexp(t, `^(path|query) parameter \w+ `, er["message"], path)
		}
		long := strings.Repeat("u", 10000)
		for _, tc := range []struct{ body, field string }{
			{`{"username":"` + long + `","firstName":"A","lastName":"B","email":"a@example.com"}`, "username"},
			{`{"username":"j\u0000doe","firstName":"A","lastName":"B","email":"a@example.com"}`, "username"},
			{`{"username":"jdoe","firstName":"A\u001b[31m","lastName":"B","email":"a@example.com"}`, "firstName"},
			{`{"username":"jdoe","firstName":"A","lastName":"B","email":"a\u0000@example.com"}`, "email"},
		} {
			er := e.do(http.MethodPost, "/api/v1/users", tc.body).apiErr(http.StatusUnprocessableEntity, "validation_failed")
			assert.Equal(t, tc.field, er["details"].([]any)[0].(map[string]any)["field"], tc.body)
		}
		for _, p := range []string{"/api/v1/groups", "/api/v1/roles"} {
			e.do(http.MethodPost, p, `{"name":"a\u0000b"}`).apiErr(http.StatusUnprocessableEntity, "validation_failed")
			e.do(http.MethodPost, p, `{"name":"`+long+`"}`).apiErr(http.StatusUnprocessableEntity, "validation_failed")
		}
		er := e.do(http.MethodPost, "/api/v1/users/switch-directory", `{"usernames":["a\u0000"],"directoryKey":"p-x"}`).
			apiErr(http.StatusUnprocessableEntity, "validation_failed")
		assert.Equal(t, "usernames[0]", er["details"].([]any)[0].(map[string]any)["field"])
		er = e.do(http.MethodPost, "/api/v1/profiles", `{"name":"N","provider":"csv","csv":{"source":"document","documentId":"d\u0000"}}`).
			apiErr(http.StatusUnprocessableEntity, "validation_failed")
		assert.Contains(t, er["message"], "csv.documentId: must not contain control characters")
		er = e.do(http.MethodPost, "/api/v1/profiles", `{"name":"N","provider":"azure","azure":{"tenantId":"t","clientId":"`+
			strings.Repeat("c", 300)+`","clientSecret":"s"},"groups":["g"]}`).apiErr(http.StatusUnprocessableEntity, "validation_failed")
		assert.Contains(t, er["message"], "azure.clientId: at most 256 characters")

		// Nothing of the above reached the directory, and ordinary text still works.
		e.do(http.MethodPost, "/api/v1/users", `{"username":"zoë","firstName":"Zoë","lastName":"O'Brien","email":"zoe@example.com"}`).
			status(http.StatusCreated)
		m := e.do(http.MethodGet, "/api/v1/users?q=zo%C3%AB", nil).status(http.StatusOK)
		assert.Len(t, m["items"], 1)
	})
}
