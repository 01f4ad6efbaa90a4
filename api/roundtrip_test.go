package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/provider/azure"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/provider/okta"
)

// Issue 14: a profile as GET shows it is a valid PUT body, read-only fields
// ignored, so that a script can read, edit and write it back; the secrets
// shown only as "set" are kept.
func TestProfileReadIsAValidWrite(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		bodies := map[string]string{
			"csv": `{"name":"People file","provider":"csv","csv":{"url":"https://files.example.com/people.csv?sig=S3CRET",
				"username":"svc","password":"pw-SECRET-1","defaultPassword":"dpw-SECRET-2"},"schedule":{"frequency":"interval","everyMinutes":60}}`,
			"azure": `{"name":"Entra","provider":"azure","azure":{"tenantId":"contoso.onmicrosoft.com","clientId":"11111111-2222-3333-4444-555555555555",
				"clientSecret":"cs-SECRET-3"},"groups":["g1"],"populateOrgChart":true}`,
			"okta": `{"name":"Okta","provider":"okta","okta":{"orgUrl":"example.okta.com","apiToken":"tok-SECRET-4"},"groups":["00g1"]}`,
		}
		for prov, body := range bodies {
			id := e.createProfile(body)
			read := e.do(http.MethodGet, "/api/v1/profiles/"+id, nil)
			require.Equal(t, http.StatusOK, read.Code)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(read.Body.Bytes(), &doc))
			for _, k := range []string{"id", "directoryKey", "createdAt", "updatedAt", "lastRun", "nextRunAt"} {
				assert.Contains(t, doc, k, prov)
			}
			doc["name"] = doc["name"].(string) + " (edited)"
			m := e.do(http.MethodPut, "/api/v1/profiles/"+id, doc).status(http.StatusOK)
			assert.Equal(t, doc["name"], m["name"], prov)
			assert.Equal(t, id, m["id"], prov)

			cfg := e.storedConfig(id)
			switch prov {
			case "csv":
				assert.Equal(t, "https://files.example.com/people.csv?sig=S3CRET", cfg.Block.(*csv.Profile).URL, "the URL's query is kept")
				assert.Equal(t, "pw-SECRET-1", cfg.Block.(*csv.Profile).Password)
				assert.Equal(t, "dpw-SECRET-2", cfg.Block.(*csv.Profile).DefaultPassword)
			case "azure":
				assert.Equal(t, "cs-SECRET-3", cfg.Block.(*azure.Profile).ClientSecret)
				assert.Equal(t, []string{"g1"}, cfg.Groups)
			case "okta":
				assert.Equal(t, "tok-SECRET-4", cfg.Block.(*okta.Profile).APIToken)
			}
		}
		// A field nobody knows is still refused, read-only ones aside.
		id := e.createProfile(`{"name":"Strict","provider":"csv","csv":{"url":"https://files.example.com/a.csv"}}`)
		er := e.do(http.MethodPut, "/api/v1/profiles/"+id, `{"name":"Strict","provider":"csv","createdAt":"2020-01-01T00:00:00Z",
			"csv":{"url":"https://files.example.com/a.csv","passwordSet":true,"pasword":"x"}}`).apiErr(http.StatusBadRequest, "bad_request")
		assert.Equal(t, `unknown field "csv.pasword"`, er["message"])
	})
}
