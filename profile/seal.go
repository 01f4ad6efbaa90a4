package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/usersync/usersync/secret"
)

// Secret fields are found by their `secret:"true"` tag, so a secret added to
// a provider block later is sealed, kept on PUT and redacted without any
// change here.

// secretField is one secret field of Config: its dotted JSON path (e.g.
// "csv.password") and its field index for reflect.
type secretField struct {
	path  string
	index []int
}

// secrets lists every secret field of Config, whether or not its block is
// present; secretPaths are their paths.
var (
	secrets     = typeSecrets(reflect.TypeOf(Config{}), "", nil)
	secretPaths = func() []string {
		out := make([]string, len(secrets))
		for i, f := range secrets {
			out[i] = f.path
		}
		return out
	}()
)

func typeSecrets(t reflect.Type, prefix string, index []int) []secretField {
	var out []secretField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		idx := append(append([]int(nil), index...), i)
		switch {
		case f.Tag.Get("secret") == "true" && ft.Kind() == reflect.String:
			out = append(out, secretField{path: prefix + jsonName(f), index: idx})
		case ft.Kind() == reflect.Struct:
			out = append(out, typeSecrets(ft, prefix+jsonName(f)+".", idx)...)
		}
	}
	return out
}

// SecretPaths returns the dotted paths of all secret fields, for tests and
// for code that must make sure none of them leaks.
func SecretPaths() []string { return append([]string(nil), secretPaths...) }

// secretFields calls fn with the path and settable value of every secret
// field of c whose block is present.
func secretFields(c *Config, fn func(path string, v reflect.Value)) {
	v := reflect.ValueOf(c).Elem()
	for _, f := range secrets {
		if fv, err := v.FieldByIndexErr(f.index); err == nil { // err: the block is nil
			fn(f.path, fv)
		}
	}
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
	if cp.CSV != nil {
		if base, query, has := splitQuery(cp.CSV.URL); has {
			secrets[csvURLQuery] = query
			cp.CSV.URL = base
		}
	}
	clear, err = json.Marshal(cp)
	if err != nil {
		return nil, "", fmt.Errorf("marshal profile: %w", err)
	}
	if len(secrets) == 0 {
		return clear, "", nil
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

// Open is the inverse of Seal: the stored clear JSON with its secrets put
// back. Stored JSON is read leniently: a field a newer version dropped must
// not make an old profile unreadable.
func Open(box *secret.Box, clear json.RawMessage, sealed string) (*Config, error) {
	var c Config
	if err := json.Unmarshal(clear, &c); err != nil {
		return nil, fmt.Errorf("read stored profile: %w", err)
	}
	c.csvOrgChart()
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
	if q, ok := secrets[csvURLQuery]; ok && c.CSV != nil {
		c.CSV.URL += "?" + q
	}
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
// csv.url's query is a secret too (a signed URL's ?sig=…): reads show the
// URL without it, so a URL sent without a query keeps the stored one when
// the rest of the URL is unchanged, and a URL ending in a bare "?" drops it.
func MergeSecrets(old, next *Config) FieldErrors {
	if next != nil && next.CSV != nil {
		if base, query, has := splitQuery(next.CSV.URL); has && query == "" {
			next.CSV.URL = base
		} else if !has && old != nil && old.CSV != nil && base != "" {
			if oldBase, oldQuery, oldHas := splitQuery(old.CSV.URL); oldHas && oldBase == base {
				next.CSV.URL = base + "?" + oldQuery
			}
		}
	}
	if old == nil || next == nil {
		return nil
	}
	var moved []string
	for _, c := range EndpointChanges(old, next) {
		moved = append(moved, c.Field)
	}
	guarded := map[string]bool{}
	if len(moved) > 0 {
		for _, p := range endpointSecrets[next.Provider] {
			guarded[p] = true
		}
	}
	stored := map[string]string{}
	secretFields(old, func(path string, v reflect.Value) { stored[path] = v.String() })
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
// defaultPasswordSet). csv.url is shown without its query, with
// urlQuerySet saying whether one is stored.
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
	for _, path := range secretPaths {
		segs := strings.Split(path, ".")
		obj, name := out, segs[len(segs)-1]
		for _, seg := range segs[:len(segs)-1] {
			obj, _ = obj[seg].(map[string]any)
		}
		if obj == nil {
			continue // block absent
		}
		v, _ := obj[name].(string)
		delete(obj, name)
		obj[name+"Set"] = v != ""
	}
	if obj, ok := out["csv"].(map[string]any); ok {
		raw, _ := obj["url"].(string)
		base, query, _ := splitQuery(raw)
		obj["url"] = base
		obj["urlQuerySet"] = query != ""
	}
	return out
}
