package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// plainConfig is Config without its JSON methods, for them to call.
type plainConfig Config

// MarshalJSON writes the profile with its block under the provider's name,
// the shape API.md documents ({"provider":"azure","azure":{…}}).
func (c Config) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(plainConfig(c))
	if err != nil || c.Block == nil || c.Provider == "" {
		return b, err
	}
	blk, err := json.Marshal(c.Block)
	if err != nil {
		return nil, fmt.Errorf("marshal %s block: %w", c.Provider, err)
	}
	key, err := json.Marshal(c.Provider)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+len(key)+len(blk)+2)
	out = append(out, b[:len(b)-1]...) // without the closing brace
	out = append(out, ',')
	out = append(out, key...)
	out = append(out, ':')
	out = append(out, blk...)
	return append(out, '}'), nil
}

// UnmarshalJSON reads a profile leniently, as stored profiles and the
// API's views are read: unknown fields are ignored, and the block is
// decoded into the type its provider registered. A block of a provider
// this build does not know is dropped. Request bodies go through Decode,
// which is strict.
func (c *Config) UnmarshalJSON(b []byte) error {
	var p plainConfig
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return err
	}
	*c = Config(p)
	c.Block = nil
	prov, ok := Lookup(c.Provider)
	if !ok {
		return nil
	}
	raw, ok := getFold(top, c.Provider)
	if !ok || isNull(raw) {
		return nil
	}
	blk := prov.New()
	if err := json.Unmarshal(raw, blk); err != nil {
		return err
	}
	c.Block = blk
	return nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// decodeStrict is Decode's reading of a body: the profile's own fields and
// each registered provider's block, every one strictly, with the full
// path of a field that is wrong. The block of the profile's provider
// becomes Block; another registered provider's is kept by name only, for
// Validate to refuse. The block of an unregistered provider named by the
// profile is left for Validate, which names "provider".
func decodeStrict(body []byte, c *Config) error {
	var top map[string]json.RawMessage
	if err := DecodeJSON(body, &top); err != nil {
		return err
	}
	var name string
	if raw, ok := getFold(top, "provider"); ok {
		_ = json.Unmarshal(raw, &name) // a wrong type is reported below
	}
	blocks := map[string]json.RawMessage{}
	for k, raw := range top {
		key := k
		if _, ok := Lookup(key); !ok {
			key = foldProvider(k)
		}
		if prov, ok := Lookup(key); ok {
			blocks[prov.Name] = raw
			delete(top, k)
		} else if name != "" && strings.EqualFold(k, name) {
			delete(top, k)
		}
	}
	rest, err := json.Marshal(top)
	if err != nil {
		return &DecodeError{Message: "malformed JSON: " + err.Error()}
	}
	var p plainConfig
	if err := DecodeJSON(rest, &p); err != nil {
		return err
	}
	*c = Config(p)
	for _, prov := range Providers() {
		raw, ok := blocks[prov.Name]
		if !ok || isNull(raw) {
			continue
		}
		blk := prov.New()
		if err := decodeInto(raw, blk, prov.Name+"."); err != nil {
			return err
		}
		if prov.Name == c.Provider {
			c.Block = blk
		} else {
			c.foreign = append(c.foreign, prov.Name)
		}
	}
	return nil
}

// foldProvider is the registered name k matches ignoring case, as
// encoding/json matches keys, or "".
func foldProvider(k string) string {
	for _, n := range ProviderNames() {
		if strings.EqualFold(n, k) {
			return n
		}
	}
	return ""
}

// decodeInto decodes one block strictly, its error paths under prefix.
func decodeInto(raw json.RawMessage, v any, prefix string) error {
	err := DecodeJSON(raw, v)
	de, ok := err.(*DecodeError)
	if !ok {
		return err
	}
	block := strings.TrimSuffix(prefix, ".")
	switch {
	case de.Field != "":
		full := prefix + de.Field
		de.Message = strings.Replace(de.Message, strconv.Quote(de.Field), strconv.Quote(full), 1)
		de.Field = full
	case strings.HasPrefix(de.Message, "request body must be "):
		de.Field = block
		de.Message = fmt.Sprintf("field %q must be %s", block, strings.TrimPrefix(de.Message, "request body must be "))
	}
	return de
}

// Secret kinds, the values of the `secret` struct tag.
const (
	secretSent  = "true"
	secretLocal = "local"
	secretQuery = "query"
)

// blockField is one string field of a block type, as its struct tags
// describe it.
type blockField struct {
	name      string // JSON name
	index     []int
	secret    string // "", secretSent, secretLocal or secretQuery
	maxLen    int    // 0: the default
	multiline bool
}

// blockFields lists the tagged fields of a block type (a pointer to a
// struct), nested structs included with dotted names.
func blockFields(t reflect.Type) []blockField {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return structFields(t, "", nil)
}

func structFields(t reflect.Type, prefix string, index []int) []blockField {
	var out []blockField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("json") == "-" {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct:
			out = append(out, structFields(ft, prefix+jsonName(f)+".", idx)...)
		case reflect.String:
			bf := blockField{name: prefix + jsonName(f), index: idx, secret: f.Tag.Get("secret"),
				multiline: f.Tag.Get("multiline") == "true"}
			if n, err := strconv.Atoi(f.Tag.Get("maxlen")); err == nil {
				bf.maxLen = n
			}
			out = append(out, bf)
		}
	}
	return out
}

// SecretKind says what kind of secret the field at path is: "" for none,
// "true" (sent to the provider), "local" (never sent) or "query" (a URL
// whose query is secret). The admin page asks it to show a field.
func SecretKind(path string) string {
	name, field, ok := strings.Cut(path, ".")
	if !ok {
		return ""
	}
	prov, ok := Lookup(name)
	if !ok {
		return ""
	}
	for _, f := range blockFields(reflect.TypeOf(prov.New())) {
		if f.name == field {
			return f.secret
		}
	}
	return ""
}

// blockValue is the settable struct value of a block, or an invalid value
// for nil.
func blockValue(b Block) reflect.Value {
	v := reflect.ValueOf(b)
	for v.IsValid() && v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

// eachField calls fn with every tagged string field of c's block, its
// full path and settable value.
func eachField(c *Config, fn func(f blockField, path string, v reflect.Value)) {
	if c == nil || c.Block == nil {
		return
	}
	v := blockValue(c.Block)
	if !v.IsValid() || v.Kind() != reflect.Struct {
		return
	}
	for _, f := range blockFields(reflect.TypeOf(c.Block)) {
		fv, err := v.FieldByIndexErr(f.index)
		if err != nil { // a nil nested struct
			continue
		}
		fn(f, c.Provider+"."+f.name, fv)
	}
}
