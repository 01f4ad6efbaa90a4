package azure

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usersync/usersync/idpsim/graph"
	"github.com/usersync/usersync/internal/reqtable"
	"github.com/usersync/usersync/provider"
)

// refusing serves the simulated tenant but refuses the requests refuse
// picks, as Graph does a read the app has no permission for (403
// Authorization_RequestDenied), or the token request, as the sign-in
// endpoint does an expired client secret.
func refusing(t *testing.T, o graph.TenantOptions, refuse func(r *http.Request) bool, expired bool) *fixture {
	t.Helper()
	sim := graph.New(graph.Options{Seed: o.Seed + 100})
	ten := sim.AddTenant(o)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case expired && strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
			// The documented error answer of the token endpoint
			// (v2-oauth2-client-creds-grant-flow, "Error response").
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app are expired.","error_codes":[7000222]}`))
		case refuse != nil && refuse(r):
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}`))
		default:
			sim.ServeHTTP(w, r)
		}
	})
	srv := httptest.NewServer(reqtable.Check(t, "graph", h))
	t.Cleanup(srv.Close)
	return &fixture{sim: sim, srv: srv, ten: ten}
}

// Issue 14, item 6: Test connection reads what a sync reads and names the
// one permission that is missing; an expired client secret says so.
func TestTestConnectionNamesTheMissingPermission(t *testing.T) {
	ctx := context.Background()
	opts := graph.TenantOptions{Seed: 61, Users: 5, Groups: 2}
	path := func(suffix string) func(r *http.Request) bool {
		return func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, suffix) }
	}
	cases := []struct {
		name   string
		refuse func(r *http.Request) bool
		says   []string
	}{
		{"groups", path("/v1.0/groups"), []string{"may not read groups and their members (Authorization_RequestDenied",
			"GroupMember.Read.All", "admin consent"}},
		{"users", path("/v1.0/users"), []string{"may not read users (Authorization_RequestDenied", "User.Read.All"}},
		{"users delta", path("/v1.0/users/delta"), []string{"may not read users through the users delta function with their manager",
			"department", "manager", "User.Read.All", "User.ReadBasic.All lists users but not"}},
	}
	for _, tc := range cases {
		f := refusing(t, opts, tc.refuse, false)
		err := f.open(t, func(c *Config) { c.AttributeMap = map[string]string{"department": "department"} }).Test(ctx)
		if !errors.Is(err, provider.ErrPermission) {
			t.Errorf("%s: got %v, want a permission error", tc.name, err)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not say %q", tc.name, err, s)
			}
		}
		if got := provider.CredentialProblem(err.Error()); got != provider.PermissionMissing {
			t.Errorf("%s: credential problem %q", tc.name, got)
		}
	}

	// Every permission there: the users delta read is one a sync sends.
	f := refusing(t, opts, nil, false)
	if err := f.open(t, func(c *Config) { c.AttributeMap = map[string]string{"department": "department"} }).Test(ctx); err != nil {
		t.Fatalf("every permission granted: %v", err)
	}

	f = refusing(t, opts, nil, true)
	err := f.open(t, nil).Test(ctx)
	if !errors.Is(err, provider.ErrCredentialsExpired) || !errors.Is(err, provider.ErrAuth) {
		t.Fatalf("expired secret: %v", err)
	}
	if got := provider.CredentialProblem(err.Error()); got != provider.CredentialsExpired {
		t.Errorf("expired secret: credential problem %q (%v)", got, err)
	}
	if !strings.Contains(err.Error(), "create a new secret") {
		t.Errorf("expired secret: %v does not say what to do", err)
	}
}
