package azure

import (
	"testing"
)

// FuzzDecodeUsers feeds arbitrary bytes to the lean decoder of Graph user
// pages and maps what it accepts with every catalogue attribute mapped: a
// page must come back as users or as an error, never as a panic, whatever
// types and nulls Graph (or a proxy in the way) sends.
func FuzzDecodeUsers(f *testing.F) {
	for _, seed := range []string{
		`{"@odata.context":"x","value":[]}`,
		`{"@odata.nextLink":"https://graph.microsoft.com/v1.0/users?$skiptoken=x","value":[{"id":"1",` +
			`"userPrincipalName":"a@example.com","givenName":null,"surname":"S","mail":"a@example.com","accountEnabled":true,` +
			`"manager":{"id":"2"},"businessPhones":["1","2"],"department":null,"otherMails":[],"employeeHireDate":"2020-01-02T00:00:00Z"}]}`,
		`{"value":[{"id":"1","accountEnabled":null,"otherMails":null,"manager":null,"businessPhones":[null]}]}`,
		`{"value":[{"id":1,"accountEnabled":"yes"}]}`,
		`{"value":null}`, `{"value":[null]}`, `[]`, `not json`, ``,
	} {
		f.Add([]byte(seed))
	}
	attrs := map[string]string{}
	for _, a := range Attributes {
		attrs[a] = "x_" + a
	}
	src, err := Config{TenantID: "00000000-0000-0000-0000-000000000001", ClientID: "c", ClientSecret: "s",
		AttributeMap: attrs}.Open()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		next, users, err := decodeUsers(body)
		if err != nil {
			if next != "" || users != nil {
				t.Fatalf("an error came with a page: next %q, %d users", next, len(users))
			}
			return
		}
		for _, u := range users {
			if u == nil {
				t.Fatal("a nil user in a decoded page")
			}
		}
		if mapped := src.mapUsers(users); len(mapped) > len(users) {
			t.Fatalf("%d users mapped from %d", len(mapped), len(users))
		}
	})
}

// FuzzUsersCursor: a cursor is opaque to callers, and anything handed back
// must decode or fail, never panic.
func FuzzUsersCursor(f *testing.F) {
	for _, seed := range []string{"", "{}", `{"g":1,"n":"https://graph.microsoft.com/v1.0/x"}`, "not json", "\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, c string) {
		decodeUsersCursor(c) //nolint:errcheck // only a panic fails
	})
}
