package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/usersync/usersync/secret"
)

// Secret fields are found by their `secret` tag on each registered block
// type (registry.go), so a secret added to a provider's block is sealed,
// kept on PUT and redacted without any change here.

// SecretPaths returns the dotted paths of the secret fields of every
// registered provider's block ("csv.password"; a URL's query, "csv.urlQuery",
// is not among them), for tests and for code that must make sure none of
// them leaks.
func SecretPaths() []string {
	var out []string
	for _, p := range Providers() {
		for _, f := range blockFields(reflect.TypeOf(p.New())) {
			if f.secret == secretSent || f.secret == secretLocal {
				out = append(out, p.Name+"."+f.name)
			}
		}
	}
	return out
}

// secretFields calls fn with the path and settable value of every secret
// field of c's block.
func secretFields(c *Config, fn func(path string, v reflect.Value)) {
	eachField(c, func(f blockField, path string, v reflect.Value) {
		if f.secret == secretSent || f.secret == secretLocal {
			fn(path, v)
		}
	})
}

// queryFields calls fn with the path and settable value of every URL of
// c's block whose query is a secret; the query's own path is path+"Query".
func queryFields(c *Config, fn func(path string, v reflect.Value)) {
	eachField(c, func(f blockField, path string, v reflect.Value) {
		if f.secret == secretQuery {
			fn(path, v)
		}
	})
}

// SecretValues returns the values of c's secrets, URL queries included,
// for code that scrubs them from messages.
func SecretValues(c *Config) []string {
	var out []string
	eachField(c, func(f blockField, _ string, v reflect.Value) {
		switch f.secret {
		case secretSent, secretLocal:
			out = append(out, v.String())
		case secretQuery:
			if _, q, has := splitQuery(v.String()); has {
				out = append(out, q)
			}
		}
	})
	return out
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// clone returns a deep copy of c (the JSON round trip copies the blocks,
// maps and slices, which a struct copy would share).
func (c *Config) clone() *Config {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("profile: marshal config: %v", err)) // plain data, cannot fail
	}
	var out Config
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("profile: unmarshal config: %v", err))
	}
	return &out
}

// Seal splits c into the JSON stored in clear, with every secret field
// emptied (and so omitted), and the secrets themselves: a JSON object of
// path -> value sealed with box. A profile without secrets seals to "".
func Seal(box *secret.Box, c *Config) (clear json.RawMessage, sealed string, err error) {
	cp := c.clone()
	secrets := map[string]string{}
	secretFields(cp, func(path string, v reflect.Value) {
		if s := v.String(); s != "" {
			secrets[path] = s
			v.SetString("")
		}
	})
	queryFields(cp, func(path string, v reflect.Value) {
		if base, query, has := splitQuery(v.String()); has {
			secrets[path+"Query"] = query
			v.SetString(base)
		}
	})
	clear, err = json.Marshal(cp)
	if err != nil {
		return nil, "", fmt.Errorf("marshal profile: %w", err)
	}
	if len(secrets) == 0 {
		return clear, "", nil
	}
	if clear, err = withSealedList(clear, secrets); err != nil {
		return nil, "", err
	}
	if box == nil {
		return nil, "", errors.New("seal profile secrets: no secret box configured")
	}
	plain, err := json.Marshal(secrets)
	if err != nil {
		return nil, "", fmt.Errorf("marshal profile secrets: %w", err)
	}
	sealed, err = box.Seal(plain)
	if err != nil {
		return nil, "", fmt.Errorf("seal profile secrets: %w", err)
	}
	return clear, sealed, nil
}

// sealedListKey is the top-level key of the stored clear JSON under which
// Seal lists the secrets that are set (their paths, a URL's query as
// "<path>Query"; never a value), so that a read that only shows whether
// each is set (OpenRedacted) needs no key. Reading the clear JSON into a
// Config ignores it, as it ignores any field it does not know.
const sealedListKey = "sealedSecrets"

// withSealedList adds to clear the list of the secrets a read shows as
// set: those with a value (a URL's query only when it is not empty).
func withSealedList(clear json.RawMessage, secrets map[string]string) (json.RawMessage, error) {
	list := []string{}
	for path, v := range secrets {
		if v != "" {
			list = append(list, path)
		}
	}
	slices.Sort(list)
	raw, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("marshal profile: %w", err)
	}
	// clear is a Config's JSON object: the list goes last, before its
	// closing brace, so the settings keep their order.
	trimmed := bytes.TrimRight(clear, " \n")
	if len(trimmed) < 2 || trimmed[len(trimmed)-1] != '}' {
		return nil, errors.New("marshal profile: not a JSON object")
	}
	out := append(append([]byte(nil), trimmed[:len(trimmed)-1]...), []byte(`,"`+sealedListKey+`":`)...)
	out = append(append(out, raw...), '}')
	return out, nil
}

// OpenRedacted is Open for a read that shows the profile (Redacted): the
// settings without their secrets, and the view. The secrets are not
// opened when the stored profile lists which are set, as Seal writes it,
// so a page of profiles decrypts nothing; a profile stored before Seal
// wrote the list (or by a version that drops it) is opened with box.
func OpenRedacted(box *secret.Box, clear json.RawMessage, sealed string) (*Config, map[string]any, error) {
	var c Config
	if err := json.Unmarshal(clear, &c); err != nil {
		return nil, nil, fmt.Errorf("read stored profile: %w", err)
	}
	if c.Block != nil {
		c.Block.Normalize(&c)
	}
	var stored struct {
		Sealed *[]string `json:"sealedSecrets"`
	}
	if err := json.Unmarshal(clear, &stored); err != nil {
		return nil, nil, fmt.Errorf("read stored profile: %w", err)
	}
	if sealed == "" {
		return &c, c.Redacted(), nil
	}
	if stored.Sealed == nil {
		full, err := Open(box, clear, sealed)
		if err != nil {
			return nil, nil, err
		}
		return &c, full.Redacted(), nil
	}
	// Redacted shows of a secret only whether it is set: a stand-in value
	// shows the same.
	const standIn = "set"
	set := map[string]bool{}
	for _, p := range *stored.Sealed {
		set[p] = true
	}
	shown := c.clone()
	secretFields(shown, func(path string, v reflect.Value) {
		if set[path] {
			v.SetString(standIn)
		}
	})
	queryFields(shown, func(path string, v reflect.Value) {
		if set[path+"Query"] {
			v.SetString(v.String() + "?" + standIn)
		}
	})
	return &c, shown.Redacted(), nil
}

// Open is the inverse of Seal: the stored clear JSON with its secrets put
// back. Stored JSON is read leniently: a field a newer version dropped must
// not make an old profile unreadable.
func Open(box *secret.Box, clear json.RawMessage, sealed string) (*Config, error) {
	var c Config
	if err := json.Unmarshal(clear, &c); err != nil {
		return nil, fmt.Errorf("read stored profile: %w", err)
	}
	if c.Block != nil {
		c.Block.Normalize(&c) // a rule added since the profile was stored holds for it too
	}
	if sealed == "" {
		return &c, nil
	}
	if box == nil {
		return nil, errors.New("open profile secrets: no secret box configured")
	}
	plain, err := box.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("open profile secrets: %w", err)
	}
	var secrets map[string]string
	if err := json.Unmarshal(plain, &secrets); err != nil {
		return nil, fmt.Errorf("read profile secrets: %w", err)
	}
	secretFields(&c, func(path string, v reflect.Value) {
		if s, ok := secrets[path]; ok {
			v.SetString(s)
		}
	})
	queryFields(&c, func(path string, v reflect.Value) {
		if q, ok := secrets[path+"Query"]; ok {
			v.SetString(v.String() + "?" + q)
		}
	})
	return &c, nil
}

// MergeSecrets fills the secrets that next does not carry from old, the
// stored profile: a PUT that omits a secret keeps it, because reads never
// return secrets and a client cannot send back what it never saw. A secret
// sent explicitly empty (a body decoded by Decode with "password": "") is
// cleared instead.
//
// A secret is never kept for an address next changes (EndpointChanges):
// it would go to the new host with the next test or sync. Such a secret is
// left empty and reported as a field error that asks for it again.
//
// A URL's query tagged secret:"query" (csv.url: a signed URL's ?sig=…) is
// a secret too: reads show the URL without it, so a URL sent without a
// query keeps the stored one when the rest of the URL is unchanged, and a
// URL ending in a bare "?" drops it.
func MergeSecrets(old, next *Config) FieldErrors {
	storedURL := map[string]string{}
	if old != nil && next != nil && old.Provider == next.Provider {
		queryFields(old, func(path string, v reflect.Value) { storedURL[path] = v.String() })
	}
	queryFields(next, func(path string, v reflect.Value) {
		if base, query, has := splitQuery(v.String()); has && query == "" {
			v.SetString(base)
		} else if !has && base != "" {
			if oldBase, oldQuery, oldHas := splitQuery(storedURL[path]); oldHas && oldBase == base {
				v.SetString(base + "?" + oldQuery)
			}
		}
	})
	if old == nil || next == nil {
		return nil
	}
	var moved []string
	for _, c := range EndpointChanges(old, next) {
		moved = append(moved, c.Field)
	}
	guarded := map[string]bool{}
	if len(moved) > 0 {
		eachField(next, func(f blockField, path string, _ reflect.Value) {
			if f.secret == secretSent {
				guarded[path] = true
			}
		})
	}
	stored := map[string]string{}
	if old.Provider == next.Provider {
		secretFields(old, func(path string, v reflect.Value) { stored[path] = v.String() })
	}
	var errs FieldErrors
	secretFields(next, func(path string, v reflect.Value) {
		if v.String() != "" || next.sent[path] || stored[path] == "" {
			return
		}
		if guarded[path] {
			errs.add(path, "required again: %s changed, and a stored secret is never sent to a new address", strings.Join(moved, ", "))
			return
		}
		v.SetString(stored[path])
	})
	return errs
}

// Redacted is the profile as reads show it: every secret field is absent,
// and its block says instead whether it is set, as "<field>Set": true
// (clientSecretSet, apiTokenSet, privateKeySet, passwordSet,
// defaultPasswordSet). A URL whose query is secret (csv.url) is shown
// without it, with "<field>QuerySet" (urlQuerySet) saying whether one is
// stored.
func (c *Config) Redacted() map[string]any {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("profile: marshal config: %v", err)) // plain data, cannot fail
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		panic(fmt.Sprintf("profile: unmarshal config: %v", err))
	}
	at := func(path string) (map[string]any, string) {
		segs := strings.Split(path, ".")
		obj := out
		for _, seg := range segs[:len(segs)-1] {
			obj, _ = obj[seg].(map[string]any)
		}
		return obj, segs[len(segs)-1]
	}
	secretFields(c, func(path string, _ reflect.Value) {
		if obj, name := at(path); obj != nil {
			v, _ := obj[name].(string)
			delete(obj, name)
			obj[name+"Set"] = v != ""
		}
	})
	queryFields(c, func(path string, _ reflect.Value) {
		if obj, name := at(path); obj != nil {
			raw, _ := obj[name].(string)
			base, query, _ := splitQuery(raw)
			obj[name] = base
			obj[name+"QuerySet"] = query != ""
		}
	})
	return out
}

// SetSecret sets the secret field at path ("csv.password") of c's block
// to value, as a body carrying it would: "" clears the stored secret,
// where a secret never set keeps it (MergeSecrets). It is how a caller
// that builds a Config itself, rather than decoding a body (the admin
// page's form), says which secrets were typed. It reports whether c's
// block has such a secret.
func (c *Config) SetSecret(path, value string) bool {
	found := false
	secretFields(c, func(p string, v reflect.Value) {
		if p == path {
			v.SetString(value)
			if c.sent == nil {
				c.sent = map[string]bool{}
			}
			c.sent[path] = true
			found = true
		}
	})
	return found
}

// Clone is a deep copy of c, for a caller that hands a Config to code
// that fills it (Normalize, MergeSecrets) and keeps its own.
func (c *Config) Clone() *Config { return c.clone() }
