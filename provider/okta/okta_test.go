package okta

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	oktasim "github.com/usersync/usersync/idpsim/okta"
	"github.com/usersync/usersync/internal/reqtable"
	"github.com/usersync/usersync/provider"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// simOrg starts a simulated org.
func simOrg(t *testing.T, cfg oktasim.Config) (*oktasim.Server, *httptest.Server) {
	t.Helper()
	sim := oktasim.New(cfg)
	srv := httptest.NewServer(reqtable.Check(t, "okta", sim))
	t.Cleanup(srv.Close)
	return sim, srv
}

// open opens a source on the simulator with its API token; change edits
// the config first.
func open(t *testing.T, srv *httptest.Server, change func(*Config)) *Source {
	t.Helper()
	c := Config{OrgURL: srv.URL, APIToken: oktasim.DefaultAPIToken, AllowHTTPLoopback: true, Logger: quiet,
		RetryBackoff: 10 * time.Millisecond}
	if change != nil {
		change(&c)
	}
	s, err := c.Open()
	require.NoError(t, err)
	return s
}

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
	})
	return rsaKey
}

func pkcs8PEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func pkcs1PEM(key *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

// allUsers reads every page of Users.
func allUsers(t *testing.T, s *Source, groups ...string) (users []provider.User, pages int) {
	t.Helper()
	cur := ""
	for {
		p, err := s.Users(context.Background(), provider.Scope{GroupIDs: groups}, cur)
		require.NoError(t, err)
		seen := map[string]bool{}
		for _, u := range p.Items {
			assert.False(t, seen[u.ExternalID], "a page lists a user once")
			seen[u.ExternalID] = true
		}
		users = append(users, p.Items...)
		pages++
		if p.Next == "" {
			return users, pages
		}
		cur = p.Next
	}
}

// inScope is what Users must return for these groups: every member once,
// STAGED users left out.
func inScope(sim *oktasim.Server, groups ...string) map[string]oktasim.User {
	want := map[string]oktasim.User{}
	for _, g := range groups {
		for _, id := range sim.Members(g) {
			u, _ := sim.User(id)
			if u.Status != oktasim.StatusStaged {
				want[id] = u
			}
		}
	}
	return want
}

func ids[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func groupID(t *testing.T, sim *oktasim.Server, name string) string {
	t.Helper()
	g, ok := sim.GroupByName(name)
	require.True(t, ok, name)
	return g.ID
}

func TestOpenChecksTheConfiguration(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"example.okta.com", "https://example.okta.com"},
		{"example.oktapreview.com", "https://example.oktapreview.com"},
		{"example.okta-emea.com", "https://example.okta-emea.com"},
		{" https://example.okta.com/ ", "https://example.okta.com"},
		{"https://login.example.com:8443", "https://login.example.com:8443"},
	} {
		s, err := Config{OrgURL: tc.in, APIToken: "t"}.Open()
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, s.org)
		assert.Equal(t, tc.want, s.client.GetConfig().Okta.Client.OrgUrl)
		assert.False(t, s.client.GetConfig().Okta.Testing.DisableHttpsCheck, "https orgs keep the SDK's https check")
	}
	s, err := Config{OrgURL: "http://127.0.0.1:9000", APIToken: "t", AllowHTTPLoopback: true}.Open()
	require.NoError(t, err)
	assert.True(t, s.client.GetConfig().Okta.Testing.DisableHttpsCheck, "loopback http turns the https check off")

	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"path", Config{OrgURL: "https://example.okta.com/api/v1", APIToken: "t"}, "org address only"},
		{"query", Config{OrgURL: "https://example.okta.com?x=1", APIToken: "t"}, "org address only"},
		{"empty query", Config{OrgURL: "https://example.okta.com/?", APIToken: "t"}, "org address only"},
		{"fragment", Config{OrgURL: "https://example.okta.com/#a", APIToken: "t"}, "org address only"},
		{"admin console", Config{OrgURL: "example-admin.okta.com", APIToken: "t"}, "admin console"},
		{"http elsewhere", Config{OrgURL: "http://example.okta.com", APIToken: "t", AllowHTTPLoopback: true}, "must be https"},
		{"http loopback not allowed", Config{OrgURL: "http://127.0.0.1:9000", APIToken: "t"}, "must be https"},
		{"ftp", Config{OrgURL: "ftp://example.okta.com", APIToken: "t"}, "must be https"},
		{"credentials in URL", Config{OrgURL: "https://a:b@example.okta.com", APIToken: "t"}, "credentials"},
		{"no org", Config{APIToken: "t"}, "no org URL"},
		{"no credentials", Config{OrgURL: "example.okta.com"}, "no credentials"},
		{"client without key", Config{OrgURL: "example.okta.com", ClientID: "0oa1"}, "private key"},
		{"key without client", Config{OrgURL: "example.okta.com", PrivateKey: "x"}, "client id"},
		{"key not PEM", Config{OrgURL: "example.okta.com", ClientID: "0oa1", PrivateKey: "MIIEvQIBADANBg..."}, "not PEM"},
		{"key garbage in PEM", Config{OrgURL: "example.okta.com", ClientID: "0oa1",
			PrivateKey: "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"}, "cannot be parsed"},
		{"a certificate", Config{OrgURL: "example.okta.com", ClientID: "0oa1",
			PrivateKey: "-----BEGIN CERTIFICATE-----\nbm90IGEga2V5\n-----END CERTIFICATE-----\n"}, `"CERTIFICATE"`},
		{"negative page size", Config{OrgURL: "example.okta.com", APIToken: "t", PageSize: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Open()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, err = Config{OrgURL: "example.okta.com", ClientID: "0oa1", PrivateKey: pkcs8PEM(t, ec)}.Open()
	require.ErrorContains(t, err, "sign with RSA")

	// PKCS#1 and PKCS#8 both work, and so does a key pasted with literal \n.
	for _, pemKey := range []string{pkcs1PEM(testKey(t)), pkcs8PEM(t, testKey(t)),
		strings.ReplaceAll(pkcs8PEM(t, testKey(t)), "\n", `\n`)} {
		s, err := Config{OrgURL: "example.okta.com", ClientID: "0oa1", PrivateKey: pemKey, KeyID: "k1"}.Open()
		require.NoError(t, err)
		cfg := s.client.GetConfig()
		assert.Equal(t, "PrivateKey", cfg.Okta.Client.AuthorizationMode)
		assert.Equal(t, []string{ScopeUsersRead, ScopeGroupsRead, ScopeLogsRead}, cfg.Okta.Client.Scopes,
			"okta.logs.read is asked for: incremental sync reads the System Log")
		assert.NotNil(t, cfg.PrivateKeySigner)
		assert.Empty(t, cfg.Okta.Client.PrivateKey, "the key reaches the SDK only as a signer")
	}
	s, err = Config{OrgURL: "example.okta.com", ClientID: "0oa1", PrivateKey: pkcs1PEM(testKey(t)), AppID: "0oaapp"}.Open()
	require.NoError(t, err)
	assert.Equal(t, []string{ScopeUsersRead, ScopeGroupsRead, ScopeAppsRead, ScopeLogsRead}, s.client.GetConfig().Okta.Client.Scopes)
}

// TestIgnoresOktaEnvironmentAndHomeFiles: the SDK reads OKTA_* variables
// and ~/.okta/okta.yaml before the options it is given; a profile must
// reach its own org with its own token whatever the machine says.
func TestIgnoresOktaEnvironmentAndHomeFiles(t *testing.T) {
	decoy, decoySrv := simOrg(t, oktasim.Config{Seed: 1, Users: 10, APIToken: "decoy-token"})
	sim, srv := simOrg(t, oktasim.Config{Seed: 2, Users: 10})
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".okta"), 0o700))
	yaml := fmt.Sprintf("okta:\n  client:\n    orgUrl: %s\n    token: decoy-token\n    authorizationMode: SSWS\n"+
		"    cache:\n      enabled: true\n    proxy:\n      host: 127.0.0.1\n      port: 1\n    rateLimit:\n      maxRetries: 9\n"+
		"  testing:\n    disableHttpsCheck: true\n", decoySrv.URL)
	require.NoError(t, os.WriteFile(filepath.Join(home, ".okta", "okta.yaml"), []byte(yaml), 0o600))
	t.Setenv("HOME", home)
	if u, err := user.Current(); err == nil && u.HomeDir != home {
		t.Logf("the SDK finds the home directory in the passwd database (%s), not in HOME; "+
			"the field-by-field check below covers the file all the same", u.HomeDir)
	}

	// Every variable the SDK's configuration declares gets a decoy value;
	// the file fills the same fields, so checking each field after Open
	// covers both sources, and an SDK upgrade that adds a field fails here.
	s0, err := Config{OrgURL: "example.okta.com", APIToken: "t"}.Open()
	require.NoError(t, err)
	decoys := map[string]string{}
	walkConfig(reflect.ValueOf(&s0.client.GetConfig().Okta).Elem(), func(tag string, v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			decoys[tag] = "decoy"
		case reflect.Bool:
			decoys[tag] = "true"
		case reflect.Int32, reflect.Int64:
			decoys[tag] = "7"
		case reflect.Slice:
			decoys[tag] = "decoy.scope"
		default:
			t.Fatalf("%s: a %s field the test does not know", tag, v.Kind())
		}
	})
	require.GreaterOrEqual(t, len(decoys), 19)
	for k, v := range decoys {
		t.Setenv(k, v)
	}
	t.Setenv("OKTA_CLIENT_ORGURL", decoySrv.URL)
	t.Setenv("OKTA_CLIENT_TOKEN", "decoy-token")
	t.Setenv("OKTA_CLIENT_PRIVATEKEY", "/etc/passwd")

	s := open(t, srv, nil)
	cfg := s.client.GetConfig()
	walkConfig(reflect.ValueOf(&cfg.Okta).Elem(), func(tag string, v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			assert.NotContains(t, v.String(), "decoy", tag)
		case reflect.Bool:
			if tag != "OKTA_TESTING_DISABLE_HTTPS_CHECK" { // loopback http here
				assert.False(t, v.Bool(), tag)
			}
		case reflect.Int32, reflect.Int64:
			assert.NotEqual(t, int64(7), v.Int(), tag)
		case reflect.Slice:
			assert.Zero(t, v.Len(), tag)
		}
	})
	assert.Equal(t, srv.URL, cfg.Okta.Client.OrgUrl)
	assert.Equal(t, oktasim.DefaultAPIToken, cfg.Okta.Client.Token)
	assert.Equal(t, "SSWS", cfg.Okta.Client.AuthorizationMode)
	assert.False(t, cfg.Okta.Client.Cache.Enabled)
	assert.EqualValues(t, DefaultRateLimitRetries, cfg.Okta.Client.RateLimit.MaxRetries)
	assert.EqualValues(t, DefaultMaxWait/time.Second, cfg.Okta.Client.RateLimit.MaxBackoff)
	assert.Equal(t, "usersync", cfg.UserAgentExtra)
	require.NoError(t, s.Test(context.Background()))
	https, err := Config{OrgURL: "example.okta.com", APIToken: "t"}.Open()
	require.NoError(t, err)
	assert.False(t, https.client.GetConfig().Okta.Testing.DisableHttpsCheck)

	// The cache is really off: a change shows at once.
	eng := groupID(t, sim, "Engineering")
	before, _ := allUsers(t, s, eng)
	_, err = sim.AddUser(map[string]any{"login": "late@example.com", "firstName": "Late", "lastName": "Comer",
		"email": "late@example.com"}, oktasim.StatusActive, eng)
	require.NoError(t, err)
	after, _ := allUsers(t, s, eng)
	assert.Len(t, after, len(before)+1)

	// A wrong token stays wrong although the environment holds a good one.
	bad := open(t, srv, func(c *Config) { c.APIToken = "wrong" })
	require.ErrorIs(t, bad.Test(context.Background()), provider.ErrAuth)
	assert.Zero(t, decoy.Requests(oktasim.FamilyUsers)+decoy.Requests(oktasim.FamilyGroups), "the decoy org saw nothing")
}

// walkConfig calls fn for every field of the SDK's configuration that an
// environment variable can set.
func walkConfig(v reflect.Value, fn func(tag string, v reflect.Value)) {
	for i := range v.NumField() {
		f, ft := v.Field(i), v.Type().Field(i)
		if tag := ft.Tag.Get("envconfig"); tag != "" {
			fn(tag, f)
			continue
		}
		if f.Kind() == reflect.Struct {
			walkConfig(f, fn)
		}
	}
}

func TestTestConnectionSaysWhatIsWrong(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 3, Users: 20})
	ctx := context.Background()
	require.NoError(t, open(t, srv, nil).Test(ctx))
	require.NoError(t, open(t, srv, func(c *Config) { c.AppID = sim.AppID() }).Test(ctx))

	err := open(t, srv, func(c *Config) { c.APIToken = "revoked" }).Test(ctx)
	require.ErrorIs(t, err, provider.ErrAuth)
	assert.Contains(t, err.Error(), "E0000011 Invalid token provided")
	assert.Contains(t, err.Error(), "okta.apiToken")

	sim.AddAPIToken("helpdesk", oktasim.ScopeGroupsRead)
	err = open(t, srv, func(c *Config) { c.APIToken = "helpdesk" }).Test(ctx)
	require.ErrorIs(t, err, provider.ErrPermission)
	assert.Contains(t, err.Error(), "may not read users")
	assert.Contains(t, err.Error(), "E0000006")

	err = open(t, srv, func(c *Config) { c.AppID = "0oanosuchapp" }).Test(ctx)
	require.ErrorIs(t, err, provider.ErrNotFound)
	assert.Contains(t, err.Error(), "okta.appId")

	// Nothing listens: unreachable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	err = open(t, srv, func(c *Config) { c.OrgURL = "http://" + addr }).Test(ctx)
	require.ErrorIs(t, err, provider.ErrUnreachable)
	assert.True(t, provider.Retryable(err))

	// Something answers, but it is no Okta org.
	notOkta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("limit") {
		case "1":
			if strings.HasPrefix(r.Host, "127.") {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, "<html>no such org</html>")
				return
			}
		}
		http.Redirect(w, r, "https://www.okta.com/", http.StatusFound)
	}))
	defer notOkta.Close()
	err = open(t, srv, func(c *Config) { c.OrgURL = notOkta.URL }).Test(ctx)
	require.ErrorIs(t, err, provider.ErrNotFound)
	assert.Contains(t, err.Error(), "no Okta org answers")
	redirect := strings.Replace(notOkta.URL, "127.0.0.1", "localhost", 1)
	err = open(t, srv, func(c *Config) { c.OrgURL = redirect }).Test(ctx)
	require.ErrorIs(t, err, provider.ErrNotFound)
	assert.Contains(t, err.Error(), "does not answer as an Okta org (HTTP 302")
	signIn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>Sign in</html>")
	}))
	defer signIn.Close()
	err = open(t, srv, func(c *Config) { c.OrgURL = signIn.URL }).Test(ctx)
	require.ErrorIs(t, err, provider.ErrNotFound)
	assert.Contains(t, err.Error(), "HTTP 200, text/html")
}

func TestServiceAppWithPrivateKeyJWT(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 4, Users: 60})
	key := testKey(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	sim.AddClient(oktasim.Client{ID: "0oasync", KeyID: "kid-1", PublicKey: &key.PublicKey,
		Scopes: []string{oktasim.ScopeUsersRead, oktasim.ScopeGroupsRead, oktasim.ScopeAppsRead}})
	sim.AddClient(oktasim.Client{ID: "0oanarrow", PublicKey: &key.PublicKey, Scopes: []string{oktasim.ScopeUsersRead}})
	app := func(id, pemKey string) func(*Config) {
		return func(c *Config) { c.APIToken, c.ClientID, c.PrivateKey, c.KeyID = "", id, pemKey, "kid-1" }
	}
	ctx := context.Background()

	s := open(t, srv, app("0oasync", pkcs8PEM(t, key)))
	require.NoError(t, s.Test(ctx))
	eng := groupID(t, sim, "Engineering")
	users, _ := allUsers(t, s, eng)
	assert.Len(t, users, len(inScope(sim, eng)))
	assert.Equal(t, 2, sim.Requests(oktasim.FamilyToken),
		"one access token serves every call (after okta.logs.read, not granted to this app, was refused once)")
	withApp := open(t, srv, func(c *Config) { app("0oasync", pkcs1PEM(key))(c); c.AppID = sim.AppID() })
	require.NoError(t, withApp.Test(ctx))

	err = open(t, srv, app("0oasync", pkcs1PEM(other))).Test(ctx)
	require.ErrorIs(t, err, provider.ErrAuth)
	assert.Contains(t, err.Error(), "signature is invalid")
	assert.Contains(t, err.Error(), "okta.privateKey")
	assert.NotContains(t, err.Error(), "client_assertion=", "messages never carry the signed assertion")

	err = open(t, srv, app("0oaunknown", pkcs1PEM(key))).Test(ctx)
	require.ErrorIs(t, err, provider.ErrAuth)

	err = open(t, srv, app("0oanarrow", pkcs1PEM(key))).Test(ctx)
	require.ErrorIs(t, err, provider.ErrPermission)
	assert.Contains(t, err.Error(), "invalid_scope")
	assert.Contains(t, err.Error(), "okta.groups.read")

	// The token has the scopes asked for, and the API wants another.
	err = open(t, srv, func(c *Config) { app("0oasync", pkcs1PEM(key))(c); c.Scopes = []string{ScopeUsersRead} }).Test(ctx)
	require.ErrorIs(t, err, provider.ErrPermission)
	assert.Contains(t, err.Error(), "may not read groups")

	// An app-scoped profile reads its groups through the groups API too,
	// so a token that reads the app's assignments but not groups fails.
	err = open(t, srv, func(c *Config) {
		app("0oasync", pkcs1PEM(key))(c)
		c.AppID, c.Scopes = sim.AppID(), []string{ScopeUsersRead, ScopeAppsRead}
	}).Test(ctx)
	require.ErrorIs(t, err, provider.ErrPermission)
	assert.Contains(t, err.Error(), "may not read groups")
}

func TestUsersOfTheSelectedGroups(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 5, Users: 700})
	eng, readers := groupID(t, sim, "Engineering"), groupID(t, sim, oktasim.GroupIntranetReaders)
	attrs := map[string]string{}
	for _, a := range Attributes {
		attrs[a] = "okta_" + a
	}
	for _, a := range []string{"badgeId", "startYear", "remote", "skills", "notInAnyProfile"} {
		attrs[a] = "custom_" + a
	}
	s := open(t, srv, func(c *Config) { c.PageSize = 50; c.AttributeMap = attrs })

	// The same group twice and blanks count once.
	users, pages := allUsers(t, s, eng, readers, " ", eng)
	want := inScope(sim, eng, readers)
	got := map[string]provider.User{}
	for _, u := range users {
		got[u.ExternalID] = u
	}
	assert.Equal(t, ids(want), ids(got), "every member of either group, STAGED left out")
	assert.Greater(t, pages, 10)
	assert.Less(t, len(got), len(users), "a user in both groups may come twice across pages; the staging keeps one")

	statuses := map[string]bool{}
	noEmail := 0
	for id, w := range want {
		u := got[id]
		statuses[w.Status] = true
		active := map[string]bool{oktasim.StatusActive: true, oktasim.StatusProvisioned: true, oktasim.StatusRecovery: true,
			oktasim.StatusLockedOut: true, oktasim.StatusPasswordExpired: true}[w.Status]
		assert.Equal(t, active, u.Active, w.Status)
		assert.Equal(t, w.Login(), u.Username)
		assert.Equal(t, w.Profile["firstName"], u.FirstName)
		assert.Equal(t, w.Profile["lastName"], u.LastName)
		if e, ok := w.Profile["email"].(string); ok {
			assert.Equal(t, e, u.Email)
		} else {
			noEmail++
			assert.Empty(t, u.Email, "a user without email comes through; the engine skips it")
		}
		assert.Empty(t, u.Invalid)
		switch {
		case w.Profile["managerId"] != nil:
			assert.Equal(t, w.Profile["managerId"], u.ManagerRef, "managerId, an id or a login, as is")
		case w.Profile["manager"] != nil:
			assert.Equal(t, w.Profile["manager"], u.ManagerRef)
		default:
			assert.Empty(t, u.ManagerRef)
		}
		for a, field := range attrs {
			v, has := w.Profile[a]
			switch a {
			case "startYear":
				assert.Equal(t, fmt.Sprint(v), u.Attributes[field])
			case "remote":
				assert.Equal(t, fmt.Sprint(v), u.Attributes[field])
			case "skills":
				l := v.([]any)
				assert.Equal(t, fmt.Sprintf("%s;%s", l[0], l[1]), u.Attributes[field])
			default:
				if !has {
					v = ""
				}
				assert.Equal(t, v, u.Attributes[field], a)
			}
			assert.Contains(t, u.Attributes, field, "a mapped attribute is always present")
		}
	}
	for _, st := range []string{oktasim.StatusActive, oktasim.StatusSuspended, oktasim.StatusDeprovisioned} {
		assert.True(t, statuses[st], "the scope holds %s users", st)
	}
	assert.Positive(t, noEmail)

	// Another username attribute, and core fields from the attribute map.
	s = open(t, srv, func(c *Config) {
		c.UsernameAttribute = "employeeNumber"
		c.AttributeMap = map[string]string{"secondEmail": "email", "nickName": "firstName"}
	})
	users, _ = allUsers(t, s, eng)
	for _, u := range users {
		w := want[u.ExternalID]
		assert.Equal(t, w.Profile["employeeNumber"], u.Username)
		assert.Equal(t, w.Profile["secondEmail"], u.Email)
		assert.Equal(t, w.Profile["nickName"], u.FirstName)
	}

	// No group selected: nobody.
	p, err := s.Users(context.Background(), provider.Scope{}, "")
	require.NoError(t, err)
	assert.Empty(t, p.Items)
	assert.Empty(t, p.Next)
}

func TestStatusesAndMissingUsername(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 6, Users: 8})
	g := sim.AddGroup("Everyone in every state", "")
	for _, u := range sim.Users() {
		require.NoError(t, sim.AddToGroup(g, u.ID))
	}
	s := open(t, srv, nil)
	users, _ := allUsers(t, s, g)
	byStatus := map[string]provider.User{}
	for _, u := range users {
		w, _ := sim.User(u.ExternalID)
		byStatus[w.Status] = u
	}
	assert.Len(t, byStatus, 7, "the generated org's last 8 users hold each status; STAGED is left out")
	for st, active := range map[string]bool{oktasim.StatusActive: true, oktasim.StatusProvisioned: true,
		oktasim.StatusRecovery: true, oktasim.StatusLockedOut: true, oktasim.StatusPasswordExpired: true,
		oktasim.StatusSuspended: false, oktasim.StatusDeprovisioned: false} {
		assert.Equal(t, active, byStatus[st].Active, st)
	}
	assert.NotContains(t, byStatus, oktasim.StatusStaged)

	s = open(t, srv, func(c *Config) { c.UsernameAttribute = "noSuchAttribute" })
	users, _ = allUsers(t, s, g)
	assert.Contains(t, users[0].Invalid, "noSuchAttribute")

	m := (&Source{userAttr: "login"}).mapUser(&okta.User{Id: "00u1", Status: "SOMETHING_NEW"})
	assert.Contains(t, m.Invalid, "unknown Okta status")
}

func TestGroupsForThePickerAndGroupSync(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 7, Users: 30})
	ctx := context.Background()
	all := func(s *Source, q provider.GroupQuery) []provider.Group {
		var out []provider.Group
		cur := ""
		for {
			p, err := s.Groups(ctx, q, cur)
			require.NoError(t, err)
			out = append(out, p.Items...)
			if p.Next == "" {
				return out
			}
			cur = p.Next
		}
	}
	names := func(gs []provider.Group) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.Name)
		}
		sort.Strings(out)
		return out
	}

	whole := open(t, srv, nil)
	everything := all(whole, provider.GroupQuery{})
	assert.Len(t, everything, len(sim.Groups()))
	types := map[string]string{}
	for _, g := range everything {
		types[g.Name] = g.Type
		assert.NotEmpty(t, g.ID)
	}
	assert.Equal(t, "BUILT_IN", types[oktasim.GroupEveryone])
	assert.Equal(t, "APP_GROUP", types[oktasim.GroupADDomainUsers])
	assert.Equal(t, "OKTA_GROUP", types["Engineering"])
	assert.Equal(t, names(everything), names(all(whole, provider.GroupQuery{ForSync: true})))
	assert.Equal(t, []string{oktasim.GroupADDomainUsers, oktasim.GroupADFinanceShare}, names(all(whole, provider.GroupQuery{Search: "ad:"})))

	app := open(t, srv, func(c *Config) { c.AppID = sim.AppID() })
	assigned := all(app, provider.GroupQuery{})
	var want []string
	for _, id := range sim.AppGroups() {
		for _, g := range sim.Groups() {
			if g.ID == id {
				want = append(want, g.Name)
			}
		}
	}
	sort.Strings(want)
	assert.Equal(t, want, names(assigned), "the app's groups, with names from the group details")
	assert.NotContains(t, names(assigned), oktasim.GroupEveryone)
	assert.Equal(t, want, names(all(app, provider.GroupQuery{ForSync: true})))
	assert.Equal(t, []string{oktasim.GroupIntranetEditors, oktasim.GroupIntranetReaders}, names(all(app, provider.GroupQuery{Search: "Intranet"})))

	// More assigned groups than one page holds.
	for i := range 25 {
		require.NoError(t, sim.AssignGroup(sim.AddGroup(fmt.Sprintf("Project %02d", i), "")))
	}
	p, err := app.Groups(ctx, provider.GroupQuery{}, "")
	require.NoError(t, err)
	assert.Len(t, p.Items, appGroupPageSize)
	assert.NotEmpty(t, p.Next)
	assert.Len(t, all(app, provider.GroupQuery{}), len(sim.AppGroups()))
}

func TestMembers(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 8, Users: 300})
	s := open(t, srv, func(c *Config) { c.PageSize = 40 })
	ctx := context.Background()
	g := groupID(t, sim, oktasim.GroupIntranetReaders)
	var got []string
	cur, pages := "", 0
	for {
		p, err := s.Members(ctx, g, cur)
		require.NoError(t, err)
		for _, m := range p.Items {
			got = append(got, m.UserID)
		}
		pages++
		if cur = p.Next; cur == "" {
			break
		}
	}
	sort.Strings(got)
	assert.Equal(t, ids(inScope(sim, g)), got)
	assert.Greater(t, pages, 2)

	_, err := s.Members(ctx, "00gnosuchgroup", "")
	require.ErrorIs(t, err, provider.ErrNotFound)
	assert.False(t, provider.Retryable(err))
}

// TestASelectedGroupThatIsNotFoundFailsTheRead: skipping a selected group
// Okta answers 404 for would take all its members out of scope, and the
// run would disable them; the read fails instead, naming the group, and
// the error is final (a retry gets the same 404).
func TestASelectedGroupThatIsNotFoundFailsTheRead(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 9, Users: 80})
	sales, legal := groupID(t, sim, "Sales"), groupID(t, sim, "Legal")
	require.NoError(t, sim.DeleteGroup(legal))
	s := open(t, srv, nil)
	ctx := context.Background()
	for _, scope := range [][]string{{legal, sales}, {sales, legal}, {sales, "00gneverexisted"}} {
		missing := scope[1]
		if scope[0] == legal {
			missing = legal
		}
		var err error
		cur := ""
		for {
			var p provider.Page[provider.User]
			p, err = s.Users(ctx, provider.Scope{GroupIDs: scope}, cur)
			if err != nil || p.Next == "" {
				break
			}
			cur = p.Next
		}
		require.Error(t, err, "a selected group that answers 404 must not pass for an empty one")
		require.ErrorIs(t, err, provider.ErrNotFound)
		assert.False(t, provider.Retryable(err))
		assert.Contains(t, err.Error(), "selected group "+missing+" was not found")
		assert.Contains(t, err.Error(), "no user was disabled")
		assert.Contains(t, err.Error(), "E0000007", "Okta's own word is kept")
	}
}

func TestCursors(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 10, Users: 200})
	s := open(t, srv, func(c *Config) { c.PageSize = 10 })
	ctx := context.Background()
	g := groupID(t, sim, oktasim.GroupIntranetReaders)
	scope := provider.Scope{GroupIDs: []string{g}}
	p, err := s.Users(ctx, scope, "")
	require.NoError(t, err)
	require.NotEmpty(t, p.Next)

	// A cursor can be replayed: the same page again.
	a, err := s.Users(ctx, scope, p.Next)
	require.NoError(t, err)
	b, err := s.Users(ctx, scope, p.Next)
	require.NoError(t, err)
	assert.Equal(t, a, b)

	_, err = s.Users(ctx, provider.Scope{GroupIDs: []string{g, groupID(t, sim, "Sales")}}, p.Next)
	require.ErrorIs(t, err, provider.ErrCursorExpired, "a cursor of another group selection")
	_, err = s.Users(ctx, scope, "not a cursor")
	require.ErrorIs(t, err, provider.ErrCursorExpired)

	sim.ExpireCursors()
	_, err = s.Users(ctx, scope, p.Next)
	require.ErrorIs(t, err, provider.ErrCursorExpired, "Okta no longer accepts the after cursor")
	_, err = s.Members(ctx, g, p.Next)
	require.ErrorIs(t, err, provider.ErrCursorExpired)
	assert.True(t, provider.Retryable(err), "the fetch restarts")
}

// TestASmallRateBudgetSlowsTheSyncDown: the budget allows a few requests
// per two-second window, and reading the scope takes many more. The pacer
// waits for each reset before the budget runs out, so Okta answers no 429
// and the result is the exact set.
func TestASmallRateBudgetSlowsTheSyncDown(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 11, Users: 240, Window: 2 * time.Second,
		RateLimits: map[string]int{oktasim.FamilyGroups: 4}})
	s := open(t, srv, func(c *Config) { c.PageSize = 25 })
	g := groupID(t, sim, oktasim.GroupEveryone)
	start := time.Now()
	users, pages := allUsers(t, s, g)
	got := map[string]bool{}
	for _, u := range users {
		got[u.ExternalID] = true
	}
	assert.Equal(t, ids(inScope(sim, g)), ids(got))
	assert.GreaterOrEqual(t, pages, 10)
	assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "%d requests on a budget of 4 per window wait for resets", pages)
	assert.Zero(t, sim.Throttled(oktasim.FamilyGroups), "the pacer slows down before Okta has to refuse")
}

// TestA429IsRetriedAfterTheReset: another client of the org spent the
// budget; the SDK waits for the reset and the call succeeds.
func TestA429IsRetriedAfterTheReset(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 12, Users: 30, Window: 2 * time.Second,
		RateLimits: map[string]int{oktasim.FamilyGroups: 3}})
	g := groupID(t, sim, "Engineering")
	other := open(t, srv, nil)
	for range 3 {
		_, _, err := other.client.Group.ListGroups(context.Background(), nil)
		require.NoError(t, err)
	}
	s := open(t, srv, nil)
	users, _ := allUsers(t, s, g)
	assert.Len(t, users, len(inScope(sim, g)))
	assert.Positive(t, sim.Throttled(oktasim.FamilyGroups))
}

func TestAFinal429IsAThrottledError(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 13, Users: 10, Window: 2 * time.Second})
	sim.SetRateLimit(oktasim.FamilyUsers, 0)
	ctx := context.Background()

	// The SDK retries once after the reset, is refused again, gives up.
	s := open(t, srv, func(c *Config) { c.RateLimitRetries = 1 })
	start := time.Now()
	err := s.Test(ctx)
	var thr *provider.ThrottledError
	require.ErrorAs(t, err, &thr)
	assert.Positive(t, thr.RetryAfter)
	assert.LessOrEqual(t, thr.RetryAfter, 3*time.Second)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "the SDK waited for a reset first")
	assert.GreaterOrEqual(t, sim.Throttled(oktasim.FamilyUsers), 2)

	// A reset further away than a call may wait: no waiting at all.
	slow, slowSrv := simOrg(t, oktasim.Config{Seed: 13, Users: 10, Window: time.Hour})
	slow.SetRateLimit(oktasim.FamilyUsers, 0)
	start = time.Now()
	err = open(t, slowSrv, func(c *Config) { c.MaxWait = time.Second }).Test(ctx)
	require.ErrorAs(t, err, &thr)
	assert.Greater(t, thr.RetryAfter, time.Second)
	assert.LessOrEqual(t, thr.RetryAfter, time.Hour+time.Second)
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, 1, slow.Throttled(oktasim.FamilyUsers))
	assert.True(t, errors.As(err, &thr) && provider.Retryable(err))
}

func TestA500StormThenRecovery(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 14, Users: 50})
	s := open(t, srv, nil)
	g := groupID(t, sim, "Engineering")
	sim.FailNext(2)
	users, _ := allUsers(t, s, g)
	assert.Len(t, users, len(inScope(sim, g)), "a short burst of 500s is retried away")

	sim.FailNext(DefaultServerErrorRetries + 1)
	_, err := s.Users(context.Background(), provider.Scope{GroupIDs: []string{g}}, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 500")
	assert.Contains(t, err.Error(), "E0000009")
	assert.True(t, provider.Retryable(err))
	assert.False(t, errors.Is(err, provider.ErrAuth) || errors.Is(err, provider.ErrNotFound))

	users, _ = allUsers(t, s, g)
	assert.Len(t, users, len(inScope(sim, g)), "once Okta recovers the same call works")

	sim.SetServerErrorRate(0.3)
	users, _ = allUsers(t, open(t, srv, func(c *Config) { c.PageSize = 5; c.ServerErrorRetries = 8 }), g)
	assert.Len(t, users, len(inScope(sim, g)), "a 30% error rate is ridden out")
}

func TestCancelledWhileWaiting(t *testing.T) {
	sim, srv := simOrg(t, oktasim.Config{Seed: 15, Users: 10, Latency: 5 * time.Second})
	s := open(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Users(ctx, provider.Scope{GroupIDs: []string{groupID(t, sim, "Sales")}}, "")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
}
