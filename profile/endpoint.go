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

// endpoints are the addresses of c that decide where its secrets go, in
// the block's order, with their full paths; the secrets sent to them are
// those tagged secret:"true" or secret:"query" (a secret:"local" one never
// leaves usersync).
func endpoints(c *Config) []Endpoint {
	if c == nil {
		return nil
	}
	eb, ok := c.Block.(EndpointBlock)
	if !ok {
		return nil
	}
	var out []Endpoint
	for _, e := range eb.Endpoints() {
		out = append(out, Endpoint{Field: c.Provider + "." + e.Field, Value: e.Value})
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
	was := map[string]string{}
	for _, e := range endpoints(old) {
		was[e.Field] = e.Value
	}
	var out []EndpointChange
	for _, e := range endpoints(next) {
		if from := was[e.Field]; from != e.Value {
			out = append(out, EndpointChange{Field: e.Field, From: from, To: e.Value})
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

// WithoutQuery is a URL without its query, as a block's Endpoints gives a
// URL whose query is a secret.
func WithoutQuery(raw string) string {
	base, _, _ := splitQuery(raw)
	return base
}
