package profile_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/azure"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/provider/okta"
	"github.com/usersync/usersync/secret"
)

// fuzzStored are stored profiles FuzzProfile merges each body into, with
// every secret fuzzSecret, at the default addresses.
const fuzzSecret = "stored-secret-value"

var fuzzStored = map[string]*profile.Config{
	azure.Name: {Provider: azure.Name, Block: &azure.Profile{TenantID: "t", ClientID: "c", ClientSecret: fuzzSecret, Cloud: azure.CloudGlobal}},
	okta.Name:  {Provider: okta.Name, Block: &okta.Profile{OrgURL: "https://example.okta.com", APIToken: fuzzSecret, PrivateKey: fuzzSecret}},
	csv.Name: {Provider: csv.Name, Block: &csv.Profile{Source: csv.SourceRemote, URL: "https://files.example.com/p.csv?sig=" + fuzzSecret,
		Password: fuzzSecret, DefaultPassword: fuzzSecret}},
}

// fuzzBox seals in FuzzProfile; one key for the whole run keeps it cheap.
var fuzzBox = func() *secret.Box {
	b, err := secret.NewBox(secret.GenerateKey())
	if err != nil {
		panic(err)
	}
	return b
}()

// FuzzProfile runs an arbitrary request body through what the API does
// with it: Decode, Normalize, Validate, Seal for storage, Open for a run,
// Redacted for a read. None may panic; a body Decode refuses is a
// *DecodeError (the API's 400); Normalize is stable; storage loses nothing;
// and a read shows no secret, only that it is set.
//
// The seed corpus in testdata/fuzz/FuzzProfile runs with every `go test`;
// `make fuzz` explores beyond it.
func FuzzProfile(f *testing.F) {
	for _, seed := range []string{
		`{"name":"People","provider":"csv","csv":{"source":"document","documentId":"d1","password":"pw-1","defaultPassword":"Welcome-1"}}`,
		`{"name":"Entra","provider":"azure","azure":{"tenantId":"t","clientId":"c","clientSecret":"s3cret"},"groups":["g"],"groupSync":{"mode":"regex","pattern":"^(a"}}`,
		`{"name":"Okta","provider":"okta","okta":{"orgUrl":"http://10.0.0.1","apiToken":"tok"},"schedule":{"frequency":"daily","time":"25:00","timezone":"Mars/Base"}}`,
		`{"name":"x","provider":"csv","csv":{"Password":"case"},"attributeMap":{"a":"b"},"safety":{"maxDisables":-1}}`,
		`{"name":"x","azure":{"tenantID":"typo"}}`,
		`[1,2]`,
		// Control characters and overlong text are refused, the field named.
		`{"name":"N\u0000","provider":"csv","csv":{"source":"document","documentId":"d\u0007","userMatchField":"user\tname","delimiter":"\t"},"attributeMap":{"a\u0000":"b"}}`,
		`{"name":"Okta","provider":"okta","okta":{"orgUrl":"example.okta.com","clientId":"c","privateKey":"-----BEGIN\r\nKEY\n-----END","keyId":"k\u001b"}}`,
		`{"name":"x","provider":"azure","azure":{"tenantId":"t","clientId":"` + strings.Repeat("c", 300) + `","clientSecret":"s"},"groups":["g\u0000"]}`,
		// A moved address with the secret omitted is refused.
		`{"name":"Entra","provider":"azure","azure":{"tenantId":"t","clientId":"c","authorityUrl":"https://evil.example"},"groups":["g"]}`,
		`{"name":"People","provider":"csv","csv":{"url":"https://evil.example/p.csv?"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cfg, err := profile.Decode(body)
		if err != nil {
			var de *profile.DecodeError
			if !errors.As(err, &de) || de.Message == "" {
				t.Fatalf("Decode: %T %v, want a *DecodeError with a message", err, err)
			}
			return
		}
		cfg.Normalize()
		once := mustJSON(t, cfg)
		cfg.Normalize()
		if twice := mustJSON(t, cfg); twice != once {
			t.Fatalf("Normalize is not stable:\n%s\n%s", once, twice)
		}
		errs := cfg.Validate()
		for _, fe := range errs {
			if fe.Field == "" || fe.Message == "" {
				t.Fatalf("field error without field or message: %+v", fe)
			}
		}
		if again := cfg.Validate(); !reflect.DeepEqual(errs, again) {
			t.Fatalf("Validate is not deterministic: %v then %v", errs, again)
		}
		// A valid profile holds no control character (but a PEM key's
		// line breaks and a tab delimiter) and nothing over its limit.
		if len(errs) == 0 {
			profile.EachText(cfg, func(field, v string, multiline bool) {
				for _, r := range v {
					if unicode.IsControl(r) && !(multiline && (r == '\t' || r == '\n' || r == '\r')) {
						t.Fatalf("valid profile with a control character in %s: %q", field, v)
					}
				}
			})
			for i, g := range cfg.Groups {
				if strings.ContainsFunc(g, unicode.IsControl) || len([]rune(g)) > profile.MaxGroupIDLength {
					t.Fatalf("valid profile with groups[%d] = %q", i, g)
				}
			}
		}
		// No secret stored for one address is kept for another.
		if stored := fuzzStored[cfg.Provider]; stored != nil {
			next := profile.CloneConfig(cfg)
			moved := profile.EndpointChanges(stored, next)
			refused := profile.MergeSecrets(stored, next)
			if len(moved) > 0 {
				profile.EachSecret(next, func(path, kind string, v reflect.Value) {
					if slices.Contains([]string{"true", "query"}, kind) && !profile.Sent(cfg, path) && v.String() != "" &&
						strings.Contains(v.String(), fuzzSecret) && !strings.Contains(string(body), fuzzSecret) {
						t.Fatalf("%s kept for a moved address (%v); refused %v", path, moved, refused)
					}
				})
			}
		}

		clear, sealed, err := profile.Seal(fuzzBox, cfg)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		opened, err := profile.Open(fuzzBox, clear, sealed)
		if err != nil {
			t.Fatalf("Open of what Seal made: %v", err)
		}
		if got := mustJSON(t, opened); got != once {
			t.Fatalf("Seal/Open lost something:\n got %s\nwant %s", got, once)
		}

		// What a read shows must not depend on the secrets' values: the
		// same profile with every secret replaced reads the same.
		other := profile.CloneConfig(cfg)
		profile.EachSecret(other, func(_, kind string, v reflect.Value) {
			if kind != "query" && v.String() != "" {
				v.SetString(v.String() + "-changed")
			}
			if base, q, _ := profile.SplitQuery(v.String()); kind == "query" && q != "" { // a URL's query is a secret too
				v.SetString(base + "?" + q + "-changed")
			}
		})
		if a, b := mustJSON(t, cfg.Redacted()), mustJSON(t, other.Redacted()); a != b {
			t.Fatalf("a read shows secrets:\n%s\n%s", a, b)
		}
		var stored map[string]any
		if err := json.Unmarshal(clear, &stored); err != nil {
			t.Fatalf("stored clear part is not JSON: %v", err)
		}
		withoutSecrets := profile.CloneConfig(cfg)
		profile.EachSecret(withoutSecrets, func(_, kind string, v reflect.Value) {
			if kind == "query" {
				base, _, _ := profile.SplitQuery(v.String())
				v.SetString(base)
			} else {
				v.SetString("")
			}
		})
		// Beside the settings, the clear part lists which secrets are set,
		// by path, never by value (profile.OpenRedacted reads it).
		listed, _ := stored["sealedSecrets"].([]any)
		delete(stored, "sealedSecrets")
		var want map[string]any
		if err := json.Unmarshal([]byte(mustJSON(t, withoutSecrets)), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(stored, want) {
			t.Fatalf("the clear part stores secrets:\n got %s\nwant %s", clear, mustJSON(t, withoutSecrets))
		}
		paths := map[string]bool{}
		profile.EachSecret(cfg, func(path, kind string, v reflect.Value) {
			if kind == "query" {
				if _, q, _ := profile.SplitQuery(v.String()); q != "" {
					paths[path+"Query"] = true
				}
			} else if v.String() != "" {
				paths[path] = true
			}
		})
		got := map[string]bool{}
		for _, p := range listed {
			got[p.(string)] = true
		}
		if !reflect.DeepEqual(got, paths) {
			t.Fatalf("the clear part lists %v as the secrets set, not %v", got, paths)
		}
		_, view, err := profile.OpenRedacted(nil, clear, sealed)
		if err != nil {
			t.Fatalf("open redacted without the key: %v", err)
		}
		if a, b := mustJSON(t, view), mustJSON(t, cfg.Redacted()); a != b {
			t.Fatalf("the view read without the key differs:\n%s\n%s", a, b)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}
