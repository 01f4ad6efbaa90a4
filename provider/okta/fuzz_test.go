package okta

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"

	"github.com/usersync/usersync/provider"
)

// FuzzUserPage decodes arbitrary bytes as the SDK decodes a page of users
// and maps every user with every catalogue attribute (and a custom one)
// mapped: profile values of any JSON type, nulls and unknown statuses must
// map or be marked invalid, never panic.
func FuzzUserPage(f *testing.F) {
	for _, seed := range []string{
		`[{"id":"00u1","status":"ACTIVE","profile":{"login":"a@example.com","firstName":"A","lastName":"B",` +
			`"email":"a@example.com","managerId":"00u2","costCenter":12.5,"badges":["x","y"],"nested":{"k":1},"flag":true}}]`,
		`[]`, `[null]`, `[{"status":null,"profile":null}]`, `[{"id":"x","status":"SOMETHING_NEW","profile":{"login":7}}]`,
		`{"not":"a list"}`, `not json`,
	} {
		f.Add([]byte(seed))
	}
	attrs := map[string]string{"badges": "badges", "nested": "nested", "flag": "flag"}
	for _, a := range Attributes {
		attrs[a] = "x_" + a
	}
	src, err := Config{OrgURL: "https://example.okta.com", APIToken: "t", AttributeMap: attrs}.Open()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var users []*okta.User
		if json.Unmarshal(body, &users) != nil {
			return
		}
		for _, u := range users {
			if u == nil {
				continue
			}
			got := src.mapUser(u)
			if got.ExternalID != u.Id {
				t.Fatalf("external id %q, want %q", got.ExternalID, u.Id)
			}
			if _, known := statusActive[u.Status]; !known && got.Invalid == "" {
				t.Fatalf("unknown status %q mapped without a reason", u.Status)
			}
		}
	})
}

// FuzzCursors: cursors, states and next links come back from outside (the
// run row, Okta's Link header); anything must decode or fail typed, never
// panic, and a link is only ever followed on the org's own origin.
func FuzzCursors(f *testing.F) {
	for _, seed := range []string{"", "e30", "eyJnIjotMX0", "not base64!", "\x00",
		"https://example.okta.com/api/v1/groups/00g1/users?after=00u9&limit=200", "://bad",
		"2026-03-01T12:00:00.000Z", "eyJ0IjoiMjAyNi0wMy0wMVQxMjowMDowMC4wMDBaIiwibCI6Imh0dHBzOi8vZXZpbC5leGFtcGxlL2FwaS92MS9sb2dzIn0",
		"https://example.okta.com/api/v1/logs?after=1&filter=x", "//evil.example/api/v1/logs", "/api/v1/logs?after=2",
		"https://example.okta.com:443/api/v1/logs", "https://EXAMPLE.okta.com/api/v1/logs", "https://example.okta.com.evil/api/v1/logs"} {
		f.Add(seed)
	}
	src, err := Config{OrgURL: "https://example.okta.com", APIToken: "t"}.Open()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := parseState(s, time.Now()); err != nil && !errors.Is(err, provider.ErrStateExpired) {
			t.Fatalf("state %q: untyped error %v", s, err)
		}
		if target, err := src.ownLink(s, logsPath); err == nil {
			if !strings.HasPrefix(target, logsPath) {
				t.Fatalf("link %q followed to %q", s, target)
			}
			u, _ := url.Parse(s)
			if u.Host != "" && !strings.EqualFold(u.Hostname(), "example.okta.com") {
				t.Fatalf("link %q to another host accepted", s)
			}
		}
		nextLink(&okta.Response{Response: &http.Response{Header: http.Header{"Link": {s}}}})
		if _, err := decodePosition(s); err != nil && !errors.Is(err, provider.ErrCursorExpired) {
			t.Fatalf("position %q: untyped error %v", s, err)
		}
		if _, err := decodeDeltaCursor(s); err != nil && !errors.Is(err, provider.ErrCursorExpired) {
			t.Fatalf("delta cursor %q: untyped error %v", s, err)
		}
	})
}
