package profile

import (
	"fmt"
	"strings"
)

// Where a profile's secrets are sent. A secret kept by a PUT that omits it
// must never follow an address the same PUT changed: whoever may edit a
// profile could otherwise point it at a host of their own and have the
// next "Test connection" or sync hand the stored secret over.

// EndpointChange is one changed address of a profile, for the audit log.
// A CSV URL is shown without its query, which is part of the secret.
type EndpointChange struct {
	Field    string
	From, To string
}

func (c EndpointChange) String() string {
	show := func(s string) string {
		if s == "" {
			return `""`
		}
		return s
	}
	return fmt.Sprintf("%s: %s -> %s", c.Field, show(c.From), show(c.To))
}

// endpointSecrets are, per provider, the secrets sent to (or signing what
// is sent to) the provider's address. A CSV's default password is not
// among them: it never leaves usersync.
var endpointSecrets = map[string][]string{
	ProviderAzure: {"azure.clientSecret"},
	ProviderOkta:  {"okta.apiToken", "okta.privateKey"},
	ProviderCSV:   {"csv.password", csvURLQuery},
}

// csvURLQuery is the sealed query of csv.url: signed URLs carry their
// credential there (?sig=…), so it is kept, sealed and redacted like any
// other secret, though it has no field of its own.
const csvURLQuery = "csv.urlQuery"

// endpoints are the addresses of c that decide where its secrets go.
func endpoints(c *Config) map[string]string {
	out := map[string]string{}
	switch {
	case c == nil:
	case c.Provider == ProviderAzure && c.Azure != nil:
		out["azure.cloud"] = c.Azure.Cloud
		out["azure.authorityUrl"] = c.Azure.AuthorityURL
		out["azure.graphBaseUrl"] = c.Azure.GraphBaseURL
	case c.Provider == ProviderOkta && c.Okta != nil:
		out["okta.orgUrl"] = c.Okta.OrgURL
	case c.Provider == ProviderCSV && c.CSV != nil:
		if c.CSV.Source != CSVDocument {
			out["csv.url"], _, _ = splitQuery(c.CSV.URL)
		}
	}
	return out
}

// EndpointChanges lists the addresses next changes from old, in field
// order: each is worth an audit entry of its own, and each makes the
// secrets they lead to required again (MergeSecrets).
func EndpointChanges(old, next *Config) []EndpointChange {
	if old == nil || next == nil {
		return nil
	}
	a, b := endpoints(old), endpoints(next)
	var out []EndpointChange
	for _, f := range []string{"azure.cloud", "azure.authorityUrl", "azure.graphBaseUrl", "okta.orgUrl", "csv.url"} {
		from, inOld := a[f]
		to, inNext := b[f]
		if (inOld || inNext) && from != to && inNext {
			out = append(out, EndpointChange{Field: f, From: from, To: to})
		}
	}
	return out
}

// splitQuery splits a URL at its query: base is everything before the '?'
// (a fragment before it stays in base), query what follows, and has
// whether there was a '?' at all ("…?" asks to drop a stored query).
func splitQuery(raw string) (base, query string, has bool) {
	i := strings.IndexByte(raw, '?')
	if j := strings.IndexByte(raw, '#'); i < 0 || (j >= 0 && j < i) {
		return raw, "", false
	}
	return raw[:i], raw[i+1:], true
}
