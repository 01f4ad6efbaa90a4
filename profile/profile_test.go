package profile_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/azure"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/provider/okta"
	"github.com/usersync/usersync/secret"
)

func csvOf(c *profile.Config) *csv.Profile     { return c.Block.(*csv.Profile) }
func azureOf(c *profile.Config) *azure.Profile { return c.Block.(*azure.Profile) }
func oktaOf(c *profile.Config) *okta.Profile   { return c.Block.(*okta.Profile) }

const (
	azureBody = `{"name":"Contoso Entra","provider":"azure",
		"azure":{"tenantId":"0f4e2c1a-1111-2222-3333-444455556666","clientId":"app","clientSecret":"s3cret-azure"},
		"groups":["g1"],"attributeMap":{"department":"department"}}`
	oktaBody = `{"name":"Okta","provider":"okta",
		"okta":{"orgUrl":"example.okta.com","apiToken":"tok-okta","privateKey":"pk-okta","clientId":"cid"},
		"groups":["g1"],"attributeMap":{"costCenter":"costCenter","customThing":"custom"}}`
	csvBody = `{"name":"People file","provider":"csv",
		"csv":{"url":"https://files.example.com/people.csv","username":"u","password":"pw-csv","defaultPassword":"dpw-csv"},
		"attributeMap":{"any column at all":"x"}}`
)

func decode(t *testing.T, body string) *profile.Config {
	t.Helper()
	c, err := profile.Decode([]byte(body))
	require.NoError(t, err)
	c.Normalize()
	return c
}

func newBox(t *testing.T) *secret.Box {
	t.Helper()
	box, err := secret.NewBox(secret.GenerateKey())
	require.NoError(t, err)
	return box
}

func TestDecodeStrict(t *testing.T) {
	for _, tc := range []struct {
		name, body, field, msg string
	}{
		{"unknown top-level", `{"name":"x","colour":"red"}`, "colour", `unknown field "colour"`},
		{"unknown nested", `{"name":"x","azure":{"tenantID2":"t"}}`, "azure.tenantID2", `unknown field "azure.tenantID2"`},
		{"unknown in schedule", `{"schedule":{"frequency":"daily","hour":3}}`, "schedule.hour", `unknown field "schedule.hour"`},
		{"wrong type", `{"name":"x","safety":{"maxDisables":"many"}}`, "safety.maxDisables", "must be an integer"},
		{"malformed", `{"name":`, "", "malformed JSON"},
		{"syntax", `{"name" "x"}`, "", "malformed JSON at byte"},
		{"trailing data", `{"name":"x"} {}`, "", "data after the top-level value"},
		{"empty", "  ", "", "request body is empty"},
		{"not an object", `[1]`, "", "request body must be an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := profile.Decode([]byte(tc.body))
			var de *profile.DecodeError
			require.True(t, errors.As(err, &de), "error %v is not a DecodeError", err)
			assert.Equal(t, tc.field, de.Field)
			assert.Contains(t, de.Message, tc.msg)
		})
	}
}

func TestDecodeJSONOtherBodies(t *testing.T) {
	var v struct {
		DryRun bool `json:"dryRun"`
	}
	require.NoError(t, profile.DecodeJSON([]byte(`{"dryRun":true}`), &v))
	assert.True(t, v.DryRun)
	err := profile.DecodeJSON([]byte(`{"dryrun":true,"force":1}`), &v)
	require.Error(t, err)
	assert.Equal(t, `unknown field "force"`, err.Error())
}

func TestNormalizeDefaults(t *testing.T) {
	c := decode(t, `{"name":"  a  ","provider":"csv","csv":{}}`)
	assert.Equal(t, "a", c.Name)
	assert.True(t, c.IsEnabled())
	require.NotNil(t, c.Enabled)
	assert.Equal(t, profile.GroupSyncOff, c.GroupSync.Mode)
	assert.Equal(t, profile.ScheduleOff, c.Schedule.Frequency)
	assert.Equal(t, profile.Safety{MaxDisables: 500, MaxDisablePercent: 20}, c.Safety)
	assert.Equal(t, csv.SourceRemote, csvOf(c).Source)
	assert.Equal(t, "username", csvOf(c).UserMatchField)
	assert.Equal(t, ",", csvOf(c).Delimiter)
	assert.NotNil(t, c.Groups)
	assert.NotNil(t, c.AttributeMap)
	c = decode(t, `{"name":"a","provider":"azure","azure":{}}`)
	assert.Equal(t, "userPrincipalName", azureOf(c).UsernameAttribute)
	assert.Equal(t, azure.CloudGlobal, azureOf(c).Cloud)
	c = decode(t, `{"name":"a","provider":"okta","okta":{"orgUrl":"acme.okta.com"}}`)
	assert.Equal(t, "login", oktaOf(c).UsernameAttribute)
	assert.Equal(t, "https://acme.okta.com", oktaOf(c).OrgURL)

	c = decode(t, `{"enabled":false,"provider":"csv","csv":{"documentId":"d1","delimiter":"tab"},"schedule":{"frequency":"daily","time":"01:00"},
		"safety":{"maxDisables":7,"maxDisablePercent":3}}`)
	assert.False(t, c.IsEnabled())
	assert.Equal(t, csv.SourceDocument, csvOf(c).Source)
	assert.Equal(t, "\t", csvOf(c).Delimiter)
	assert.Equal(t, "UTC", c.Schedule.Timezone)
	assert.Equal(t, profile.Safety{MaxDisables: 7, MaxDisablePercent: 3}, c.Safety)
}

func TestValidProfiles(t *testing.T) {
	for _, body := range []string{azureBody, oktaBody, csvBody} {
		c := decode(t, body)
		assert.Empty(t, c.Validate(), body)
	}
	// Loopback http and explicit overrides are fine.
	c := decode(t, azureBody)
	azureOf(c).GraphBaseURL = "http://127.0.0.1:8081/v1.0"
	azureOf(c).AuthorityURL = "http://localhost:8081"
	azureOf(c).Cloud = azure.CloudChina
	c.Schedule = profile.Schedule{Frequency: profile.ScheduleDaily, Time: "23:59", Timezone: "Europe/London"}
	c.GroupSync = profile.GroupSync{Mode: profile.GroupSyncRegex, Pattern: "^Intranet"}
	assert.Empty(t, c.Validate())
	c = decode(t, oktaBody)
	oktaOf(c).OrgURL = "http://[::1]:9000"
	oktaOf(c).APIToken = "" // OAuth pair instead
	c.Schedule = profile.Schedule{Frequency: profile.ScheduleInterval, EveryMinutes: 5}
	assert.Empty(t, c.Validate())
	c = decode(t, `{"name":"doc","provider":"csv","csv":{"documentId":"d1","delimiter":";"}}`)
	assert.Empty(t, c.Validate())
}

func TestValidateRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		base  string
		edit  func(c *profile.Config)
		field string
		msg   string
	}{
		{"name missing", csvBody, func(c *profile.Config) { c.Name = " " }, "name", "required"},
		{"name too long", csvBody, func(c *profile.Config) { c.Name = strings.Repeat("é", 101) }, "name", "at most 100 characters"},
		{"provider missing", csvBody, func(c *profile.Config) { c.Provider = "" }, "provider", "required"},
		{"provider unknown", csvBody, func(c *profile.Config) { c.Provider = "ldap" }, "provider", "must be one of azure, csv, okta"},
		{"provider block missing", csvBody, func(c *profile.Config) { c.Block = nil }, "csv", "provider block missing"},

		{"csv remote needs url", csvBody, func(c *profile.Config) { csvOf(c).URL = "" }, "csv.url", "required"},
		{"csv url unparsable", csvBody, func(c *profile.Config) { csvOf(c).URL = "https://exa mple.com/x" }, "csv.url", "invalid URL: invalid character"},
		{"csv url not http", csvBody, func(c *profile.Config) { csvOf(c).URL = "ftp://files.example.com/x.csv" }, "csv.url", "must be an https URL"},
		{"csv url relative", csvBody, func(c *profile.Config) { csvOf(c).URL = "people.csv" }, "csv.url", "must be an https URL"},
		{"csv url http non-loopback", csvBody, func(c *profile.Config) { csvOf(c).URL = "http://files.example.com/x.csv" }, "csv.url", "http is allowed only to a loopback host"},
		{"csv url http private ip", csvBody, func(c *profile.Config) { csvOf(c).URL = "http://10.0.0.1/x.csv" }, "csv.url", "http is allowed only to a loopback host"},
		{"csv url credentials", csvBody, func(c *profile.Config) { csvOf(c).URL = "https://u:p@files.example.com/x.csv" }, "csv.url", "must not carry credentials"},
		{"csv url no host", csvBody, func(c *profile.Config) { csvOf(c).URL = "https:///x.csv" }, "csv.url", "no host"},
		{"csv document needs id", csvBody, func(c *profile.Config) { csvOf(c).Source = csv.SourceDocument; csvOf(c).DocumentID = "" }, "csv.documentId", "required"},
		{"csv source unknown", csvBody, func(c *profile.Config) { csvOf(c).Source = "ftp" }, "csv.source", "must be remote or document"},
		{"csv delimiter", csvBody, func(c *profile.Config) { csvOf(c).Delimiter = "|" }, "csv.delimiter", "must be one of"},
		{"csv userMatchField", csvBody, func(c *profile.Config) { csvOf(c).UserMatchField = "" }, "csv.userMatchField", "required"},

		{"azure tenantId", azureBody, func(c *profile.Config) { azureOf(c).TenantID = "" }, "azure.tenantId", "required"},
		{"azure tenantId shape", azureBody, func(c *profile.Config) { azureOf(c).TenantID = "x/../y" }, "azure.tenantId", "GUID"},
		{"azure clientId", azureBody, func(c *profile.Config) { azureOf(c).ClientID = "" }, "azure.clientId", "required"},
		{"azure clientSecret", azureBody, func(c *profile.Config) { azureOf(c).ClientSecret = "" }, "azure.clientSecret", "required"},
		{"azure cloud", azureBody, func(c *profile.Config) { azureOf(c).Cloud = "moon" }, "azure.cloud", "must be one of global, usgov, china"},
		{"azure graphBaseUrl http", azureBody, func(c *profile.Config) { azureOf(c).GraphBaseURL = "http://graph.example.com" }, "azure.graphBaseUrl", "loopback"},
		{"azure authorityUrl bad", azureBody, func(c *profile.Config) { azureOf(c).AuthorityURL = "::nope" }, "azure.authorityUrl", "invalid URL"},

		{"okta orgUrl required", oktaBody, func(c *profile.Config) { oktaOf(c).OrgURL = "" }, "okta.orgUrl", "required"},
		{"okta orgUrl http", oktaBody, func(c *profile.Config) { oktaOf(c).OrgURL = "http://example.okta.com" }, "okta.orgUrl", "loopback"},
		{"okta orgUrl path", oktaBody, func(c *profile.Config) { oktaOf(c).OrgURL = "https://example.okta.com/api/v1" }, "okta.orgUrl", "org address only"},
		{"okta no credentials", oktaBody, func(c *profile.Config) { oktaOf(c).APIToken, oktaOf(c).ClientID, oktaOf(c).PrivateKey = "", "", "" }, "okta.apiToken", "apiToken, or a clientId with a privateKey"},
		{"okta privateKey without clientId", oktaBody, func(c *profile.Config) { oktaOf(c).APIToken, oktaOf(c).ClientID = "", "" }, "okta.clientId", "required with privateKey"},
		{"okta clientId without privateKey", oktaBody, func(c *profile.Config) { oktaOf(c).APIToken, oktaOf(c).PrivateKey = "", "" }, "okta.privateKey", "required with clientId"},
		{"okta usernameAttribute", oktaBody, func(c *profile.Config) { oktaOf(c).UsernameAttribute = "profile.login" }, "okta.usernameAttribute", "attribute name"},

		{"groups empty id", azureBody, func(c *profile.Config) { c.Groups = []string{"g1", ""} }, "groups[1]", "empty group id"},
		{"groupSync mode", csvBody, func(c *profile.Config) { c.GroupSync.Mode = "some" }, "groupSync.mode", "must be one of off, all, regex"},
		{"groupSync pattern required", csvBody, func(c *profile.Config) { c.GroupSync = profile.GroupSync{Mode: profile.GroupSyncRegex} }, "groupSync.pattern", "required"},
		{"groupSync bad regex", csvBody, func(c *profile.Config) {
			c.GroupSync = profile.GroupSync{Mode: profile.GroupSyncRegex, Pattern: "(Intranet"}
		}, "groupSync.pattern", "missing closing )"},
		{"groupSync perl-only regex", csvBody, func(c *profile.Config) {
			c.GroupSync = profile.GroupSync{Mode: profile.GroupSyncRegex, Pattern: "(?=x)"}
		}, "groupSync.pattern", "invalid or unsupported Perl syntax"},

		{"attributeMap azure unknown", azureBody, func(c *profile.Config) { c.AttributeMap = map[string]string{"shoeSize": "x"} }, "attributeMap.shoeSize", "allowed: aboutMe, ageGroup"},
		{"attributeMap okta not a name", oktaBody, func(c *profile.Config) { c.AttributeMap = map[string]string{"cost center": "x"} }, "attributeMap.cost center", "allowed: middleName"},
		{"attributeMap empty target", csvBody, func(c *profile.Config) { c.AttributeMap = map[string]string{"col": ""} }, "attributeMap.col", "directory field name required"},
		{"attributeMap empty key", csvBody, func(c *profile.Config) { c.AttributeMap = map[string]string{"": "x"} }, "attributeMap", "empty provider attribute name"},

		{"schedule frequency", csvBody, func(c *profile.Config) { c.Schedule.Frequency = "hourly" }, "schedule.frequency", "must be one of off, interval, daily"},
		{"schedule interval short", csvBody, func(c *profile.Config) {
			c.Schedule = profile.Schedule{Frequency: profile.ScheduleInterval, EveryMinutes: 4}
		}, "schedule.everyMinutes", "at least 5"},
		{"schedule time shape", csvBody, func(c *profile.Config) {
			c.Schedule = profile.Schedule{Frequency: profile.ScheduleDaily, Time: "9:00", Timezone: "UTC"}
		}, "schedule.time", "HH:MM"},
		{"schedule time range", csvBody, func(c *profile.Config) {
			c.Schedule = profile.Schedule{Frequency: profile.ScheduleDaily, Time: "24:00", Timezone: "UTC"}
		}, "schedule.time", "HH:MM"},
		{"schedule zone unknown", csvBody, func(c *profile.Config) {
			c.Schedule = profile.Schedule{Frequency: profile.ScheduleDaily, Time: "12:00", Timezone: "Mars/Olympus"}
		}, "schedule.timezone", "unknown time zone"},
		{"schedule zone local", csvBody, func(c *profile.Config) {
			c.Schedule = profile.Schedule{Frequency: profile.ScheduleDaily, Time: "12:00", Timezone: "Local"}
		}, "schedule.timezone", "unknown time zone"},

		{"safety maxDisables", csvBody, func(c *profile.Config) { c.Safety.MaxDisables = -1 }, "safety.maxDisables", "0 or more"},
		{"safety percent high", csvBody, func(c *profile.Config) { c.Safety.MaxDisablePercent = 101 }, "safety.maxDisablePercent", "between 0 and 100"},
		{"safety percent negative", csvBody, func(c *profile.Config) { c.Safety.MaxDisablePercent = -5 }, "safety.maxDisablePercent", "between 0 and 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := decode(t, tc.base)
			tc.edit(c)
			errs := c.Validate()
			require.Len(t, errs, 1, "errors: %v", errs)
			assert.Equal(t, tc.field, errs[0].Field)
			assert.Contains(t, errs[0].Message, tc.msg)
		})
	}
}

func TestValidateRegexMessageIsExact(t *testing.T) {
	c := decode(t, csvBody)
	c.GroupSync = profile.GroupSync{Mode: profile.GroupSyncRegex, Pattern: "^(Intranet"}
	assert.Equal(t, profile.FieldErrors{{Field: "groupSync.pattern", Message: "missing closing )"}}, c.Validate())
	assert.Equal(t, "groupSync.pattern: missing closing )", c.Validate().Error())
}

func TestValidateReportsAllProblems(t *testing.T) {
	var c profile.Config
	errs := c.Validate()
	fields := map[string]bool{}
	for _, e := range errs {
		fields[e.Field] = true
	}
	for _, f := range []string{"name", "provider", "groupSync.mode", "schedule.frequency"} {
		assert.True(t, fields[f], "missing %s in %v", f, errs)
	}
	assert.Contains(t, errs.Error(), "name: required; ")
}

func TestSealAndOpen(t *testing.T) {
	box := newBox(t)
	for _, body := range []string{azureBody, oktaBody, csvBody} {
		c := decode(t, body)
		clear, sealed, err := profile.Seal(box, c)
		require.NoError(t, err)
		assert.NotEmpty(t, sealed)
		for _, s := range []string{"s3cret-azure", "tok-okta", "pk-okta", "pw-csv", "dpw-csv"} {
			assert.NotContains(t, string(clear), s)
			assert.NotContains(t, sealed, s)
		}
		// No secret field is stored in the clear part; it only lists, by
		// path, which secrets are set (for reads that show just that).
		var doc map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(clear, &doc))
		var block map[string]any
		require.NoError(t, json.Unmarshal(doc[c.Provider], &block))
		for _, name := range []string{"clientSecret", "apiToken", "privateKey", "password", "defaultPassword"} {
			assert.NotContains(t, block, name)
		}
		var listed []string
		require.NoError(t, json.Unmarshal(doc["sealedSecrets"], &listed))
		assert.NotEmpty(t, listed)
		for _, p := range listed {
			assert.Contains(t, profile.SecretPaths(), p)
		}
		back, err := profile.Open(box, clear, sealed)
		require.NoError(t, err)
		profile.ForgetSent(c)
		assert.Equal(t, c, back)

		_, err = profile.Open(newBox(t), clear, sealed)
		assert.ErrorContains(t, err, "cannot decrypt")
	}
}

// A read that shows a profile needs no key for a profile Seal listed the
// secrets of, and shows the same as one opened with it; a profile stored
// without the list (by an earlier version) is opened.
func TestOpenRedacted(t *testing.T) {
	box := newBox(t)
	for _, body := range []string{azureBody, oktaBody, csvBody} {
		c := decode(t, body)
		clear, sealed, err := profile.Seal(box, c)
		require.NoError(t, err)
		opened, err := profile.Open(box, clear, sealed)
		require.NoError(t, err)
		cfg, view, err := profile.OpenRedacted(nil, clear, sealed)
		require.NoError(t, err, "no key needed")
		assert.Equal(t, opened.Redacted(), view)
		for _, v := range profile.SecretValues(cfg) {
			assert.Empty(t, v, "the settings come without their secrets")
		}
		assert.Equal(t, opened.Schedule, cfg.Schedule)

		var doc map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(clear, &doc))
		delete(doc, "sealedSecrets")
		old, err := json.Marshal(doc)
		require.NoError(t, err)
		_, _, err = profile.OpenRedacted(nil, old, sealed)
		assert.ErrorContains(t, err, "no secret box", "without the list, the secrets are opened")
		_, view, err = profile.OpenRedacted(box, old, sealed)
		require.NoError(t, err)
		assert.Equal(t, opened.Redacted(), view)
	}
}

func TestSealWithoutSecrets(t *testing.T) {
	c := decode(t, `{"name":"doc","provider":"csv","csv":{"documentId":"d1"}}`)
	clear, sealed, err := profile.Seal(nil, c)
	require.NoError(t, err)
	assert.Empty(t, sealed)
	back, err := profile.Open(nil, clear, sealed)
	require.NoError(t, err)
	assert.Equal(t, "d1", csvOf(back).DocumentID)

	_, _, err = profile.Seal(nil, decode(t, csvBody))
	assert.ErrorContains(t, err, "no secret box")
}

func TestSealDoesNotChangeInput(t *testing.T) {
	c := decode(t, csvBody)
	_, _, err := profile.Seal(newBox(t), c)
	require.NoError(t, err)
	assert.Equal(t, "pw-csv", csvOf(c).Password)
}

func TestSecretPaths(t *testing.T) {
	assert.ElementsMatch(t, []string{"azure.clientSecret", "okta.apiToken", "okta.privateKey", "csv.password", "csv.defaultPassword"}, profile.SecretPaths())
}

func TestMergeSecrets(t *testing.T) {
	old := decode(t, csvBody)

	// Omitted, address unchanged: kept.
	next := decode(t, `{"name":"People file","provider":"csv","csv":{"url":"https://files.example.com/people.csv"}}`)
	assert.Empty(t, profile.MergeSecrets(old, next))
	assert.Equal(t, "pw-csv", csvOf(next).Password)
	assert.Equal(t, "dpw-csv", csvOf(next).DefaultPassword)
	assert.Equal(t, "https://files.example.com/people.csv", csvOf(next).URL)

	// Sent: replaced; sent empty: cleared.
	next = decode(t, `{"name":"People file","provider":"csv","csv":{"url":"https://x.example.com/a.csv","password":"new","defaultPassword":""}}`)
	assert.Empty(t, profile.MergeSecrets(old, next))
	assert.Equal(t, "new", csvOf(next).Password)
	assert.Empty(t, csvOf(next).DefaultPassword)

	// Another provider's block does not inherit anything.
	next = decode(t, `{"name":"x","provider":"okta","okta":{"orgUrl":"a.okta.com"}}`)
	profile.MergeSecrets(old, next)
	assert.Empty(t, oktaOf(next).APIToken)

	// A nil old profile is a no-op.
	assert.Empty(t, profile.MergeSecrets(nil, next))
}

// A Config built by hand (the admin page's form) says which secrets were
// typed with SetSecret, as a body says it by carrying them: the same merge
// follows, and the copy it was set on is the only one holding them.
func TestSetSecret(t *testing.T) {
	old := decode(t, csvBody)
	form := &profile.Config{Name: "People file", Provider: "csv",
		Block: &csv.Profile{URL: "https://files.example.com/people.csv"}}

	next := form.Clone()
	assert.Empty(t, profile.MergeSecrets(old, next))
	assert.Equal(t, "pw-csv", csvOf(next).Password, "not set: kept")

	next = form.Clone()
	require.True(t, next.SetSecret("csv.password", "new"))
	require.True(t, next.SetSecret("csv.defaultPassword", ""))
	assert.False(t, next.SetSecret("csv.url", "https://elsewhere.example.com"), "not a secret")
	assert.False(t, next.SetSecret("okta.apiToken", "x"), "another provider's")
	assert.Empty(t, profile.MergeSecrets(old, next))
	assert.Equal(t, "new", csvOf(next).Password)
	assert.Empty(t, csvOf(next).DefaultPassword, "set empty: cleared")
	assert.Equal(t, "https://files.example.com/people.csv", csvOf(next).URL)
	assert.Empty(t, csvOf(form).Password, "the clone, not the form, holds the secret")
}

// TestMergeSecretsRefusesToMoveASecret is issue 13's item 1: a PUT that
// changes only where a secret is sent, and omits the secret, kept the
// stored one, and the next test or sync sent it to the new host. Now the
// secret must be sent again, and the error names it.
func TestMergeSecretsRefusesToMoveASecret(t *testing.T) {
	for _, tc := range []struct {
		name, old, next, field, changed string
	}{
		{"csv url host", csvBody,
			`{"name":"People file","provider":"csv","csv":{"url":"https://evil.example/people.csv","username":"u"}}`,
			"csv.password", "csv.url"},
		{"csv url path", csvBody,
			`{"name":"People file","provider":"csv","csv":{"url":"https://files.example.com/other.csv","username":"u"}}`,
			"csv.password", "csv.url"},
		{"azure authority", azureBody,
			`{"name":"Contoso Entra","provider":"azure","azure":{"tenantId":"t","clientId":"app","authorityUrl":"https://evil.example"}}`,
			"azure.clientSecret", "azure.authorityUrl"},
		{"azure graph", azureBody,
			`{"name":"Contoso Entra","provider":"azure","azure":{"tenantId":"t","clientId":"app","graphBaseUrl":"https://evil.example/v1.0"}}`,
			"azure.clientSecret", "azure.graphBaseUrl"},
		{"azure cloud", azureBody,
			`{"name":"Contoso Entra","provider":"azure","azure":{"tenantId":"t","clientId":"app","cloud":"china"}}`,
			"azure.clientSecret", "azure.cloud"},
		{"okta org", oktaBody,
			`{"name":"Okta","provider":"okta","okta":{"orgUrl":"evil.example","clientId":"cid"}}`,
			"okta.apiToken", "okta.orgUrl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, next := decode(t, tc.old), decode(t, tc.next)
			errs := profile.MergeSecrets(old, next)
			require.NotEmpty(t, errs)
			assert.Equal(t, tc.field, errs[0].Field)
			assert.Contains(t, errs[0].Message, tc.changed)
			ch := profile.EndpointChanges(old, next)
			require.Len(t, ch, 1)
			assert.Equal(t, tc.changed, ch[0].Field)
		})
	}
	// Okta: every stored secret of the block is asked for.
	errs := profile.MergeSecrets(decode(t, oktaBody), decode(t, `{"name":"Okta","provider":"okta","okta":{"orgUrl":"evil.example","clientId":"cid"}}`))
	assert.Len(t, errs, 2)
	// The secret sent with the new address is fine, and a default password
	// (never sent anywhere) is kept.
	next := decode(t, `{"name":"People file","provider":"csv","csv":{"url":"https://new.example/p.csv","password":"again"}}`)
	assert.Empty(t, profile.MergeSecrets(decode(t, csvBody), next))
	assert.Equal(t, "again", csvOf(next).Password)
	assert.Equal(t, "dpw-csv", csvOf(next).DefaultPassword)
}

// TestCSVURLQueryIsSecret is issue 13's item 7: a signed URL's query is a
// credential. It is sealed, redacted on reads, kept by a PUT that sends the
// URL back as a read showed it, and never stored in clear.
func TestCSVURLQueryIsSecret(t *testing.T) {
	box := newBox(t)
	c := decode(t, `{"name":"Signed","provider":"csv","csv":{"url":"https://files.example.com/p.csv?sig=SIG-SECRET&se=2030"}}`)
	clear, sealed, err := profile.Seal(box, c)
	require.NoError(t, err)
	assert.NotContains(t, string(clear), "SIG-SECRET")
	assert.NotContains(t, string(clear), "?")
	assert.NotEmpty(t, sealed)
	back, err := profile.Open(box, clear, sealed)
	require.NoError(t, err)
	assert.Equal(t, "https://files.example.com/p.csv?sig=SIG-SECRET&se=2030", csvOf(back).URL)

	r := back.Redacted()
	b, _ := json.Marshal(r)
	assert.NotContains(t, string(b), "SIG-SECRET")
	block := r["csv"].(map[string]any)
	assert.Equal(t, "https://files.example.com/p.csv", block["url"])
	assert.Equal(t, true, block["urlQuerySet"])

	// The URL as a read shows it keeps the stored query.
	next := decode(t, `{"name":"Signed","provider":"csv","csv":{"url":"https://files.example.com/p.csv"}}`)
	assert.Empty(t, profile.MergeSecrets(back, next))
	assert.Equal(t, csvOf(back).URL, csvOf(next).URL)
	// A new query replaces it; a bare "?" drops it.
	next = decode(t, `{"name":"Signed","provider":"csv","csv":{"url":"https://files.example.com/p.csv?sig=NEW"}}`)
	profile.MergeSecrets(back, next)
	assert.Equal(t, "https://files.example.com/p.csv?sig=NEW", csvOf(next).URL)
	next = decode(t, `{"name":"Signed","provider":"csv","csv":{"url":"https://files.example.com/p.csv?"}}`)
	profile.MergeSecrets(back, next)
	assert.Equal(t, "https://files.example.com/p.csv", csvOf(next).URL)
	// Another address does not inherit the query.
	next = decode(t, `{"name":"Signed","provider":"csv","csv":{"url":"https://evil.example/p.csv"}}`)
	profile.MergeSecrets(back, next)
	assert.Equal(t, "https://evil.example/p.csv", csvOf(next).URL)
}

func TestRedacted(t *testing.T) {
	c := decode(t, csvBody)
	r := c.Redacted()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	for _, s := range []string{"pw-csv", "dpw-csv", `"password"`, `"defaultPassword"`} {
		assert.NotContains(t, string(b), s)
	}
	block := r["csv"].(map[string]any)
	assert.Equal(t, true, block["passwordSet"])
	assert.Equal(t, true, block["defaultPasswordSet"])
	assert.Equal(t, "u", block["username"])
	assert.Equal(t, json.Number("500"), r["safety"].(map[string]any)["maxDisables"])

	o := decode(t, oktaBody)
	oktaOf(o).PrivateKey = ""
	r = o.Redacted()
	b, _ = json.Marshal(r)
	assert.NotContains(t, string(b), "tok-okta")
	block = r["okta"].(map[string]any)
	assert.Equal(t, true, block["apiTokenSet"])
	assert.Equal(t, false, block["privateKeySet"])
	_, hasAzure := r["azure"]
	assert.False(t, hasAzure)

	a := decode(t, azureBody)
	r = a.Redacted()
	b, _ = json.Marshal(r)
	assert.NotContains(t, string(b), "s3cret-azure")
	assert.Equal(t, true, r["azure"].(map[string]any)["clientSecretSet"])
	assert.Equal(t, "s3cret-azure", azureOf(a).ClientSecret, "Redacted must not change the profile")
}

// Issue 14, item 3: a CSV manager column turns the org chart on, for a
// profile saved now (Normalize) and one stored before the rule (Open).
func TestCSVManagerFieldTurnsTheOrgChartOn(t *testing.T) {
	c := profile.Config{Name: "p", Provider: csv.Name, Block: &csv.Profile{URL: "https://x.example/p.csv", ManagerField: "manager"}}
	c.Normalize()
	assert.True(t, c.PopulateOrgChart)
	c = profile.Config{Name: "p", Provider: csv.Name, Block: &csv.Profile{URL: "https://x.example/p.csv", ManagerField: "  "}}
	c.Normalize()
	assert.False(t, c.PopulateOrgChart, "a blank column is no column")
	c = profile.Config{Name: "p", Provider: azure.Name, Block: &azure.Profile{}}
	c.Normalize()
	assert.False(t, c.PopulateOrgChart, "only a CSV profile's column counts")

	stored, err := profile.Open(nil, []byte(`{"name":"p","provider":"csv","csv":{"managerField":"boss"},"populateOrgChart":false}`), "")
	require.NoError(t, err)
	assert.True(t, stored.PopulateOrgChart)
}

// A body with the block of another provider than its own is refused, the
// other block named.
func TestValidateRefusesAnotherProvidersBlock(t *testing.T) {
	c := decode(t, `{"name":"x","provider":"csv","csv":{"documentId":"d1"},"okta":{"orgUrl":"a.okta.com"}}`)
	errs := c.Validate()
	require.Len(t, errs, 1, "errors: %v", errs)
	assert.Equal(t, profile.FieldError{Field: "okta", Message: "block of another provider"}, errs[0])
	// Its fields are read strictly all the same.
	_, err := profile.Decode([]byte(`{"name":"x","provider":"csv","okta":{"orgURL2":"a"}}`))
	var de *profile.DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "okta.orgURL2", de.Field)
}

// A remote CSV's runs read a copy of their own, which the run's end
// removes; an uploaded document is read as it is and never removed.
func TestCSVRunsReadACopyOfARemoteFile(t *testing.T) {
	assert.True(t, decode(t, csvBody).RunsReadACopy())
	assert.False(t, decode(t, `{"name":"doc","provider":"csv","csv":{"documentId":"d1"}}`).RunsReadACopy())
	assert.False(t, decode(t, azureBody).RunsReadACopy())
	stored, err := profile.Open(nil, []byte(`{"name":"p","provider":"csv","csv":{"source":"remote","url":"https://x.example/p.csv"}}`), "")
	require.NoError(t, err)
	assert.True(t, stored.RunsReadACopy(), "read from the clear part alone")
}
