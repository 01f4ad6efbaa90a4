package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

// DecodeError is a request body that cannot be read as what it should be:
// malformed JSON, a value of the wrong type, or a field nobody knows. Field
// is the dotted path of the offending field when there is one. The API
// answers it with 400; unlike validation it says nothing about the values.
type DecodeError struct {
	Field   string
	Message string
}

func (e *DecodeError) Error() string { return e.Message }

// Decode reads a profile from a request body strictly: an unknown field is an
// error naming it (with its full path, e.g. "azure.tenantID"), so that a
// misspelt option is refused instead of silently ignored. Decode records
// which secret fields the body carried, so that MergeSecrets can tell an
// omitted secret (keep the stored one) from one sent empty (clear it).
//
// The fields a read adds (id, times, lastRun, "<secret>Set", …) are
// ignored, so that a script can GET a profile, change it and PUT it back.
func Decode(body []byte) (*Config, error) {
	body = withoutReadOnly(body)
	var c Config
	if err := decodeStrict(body, &c); err != nil {
		return nil, err
	}
	c.sent = sentSecrets(body)
	return &c, nil
}

// readOnlyFields are the top-level fields a read of a profile adds to it
// (API.md, "Profiles").
var readOnlyFields = []string{"id", "directoryKey", "createdAt", "updatedAt", "lastRun", "nextRunAt"}

// withoutReadOnly drops from a body the fields a read of a profile adds:
// the read-only fields, each secret's "<field>Set" and each secret URL
// query's "<field>QuerySet" (csv.urlQuerySet).
// A secret shown as set is kept by being absent, as on any PUT. A body
// without them, or one that is no JSON object, is returned as it is, for
// the strict decoding to judge.
func withoutReadOnly(body []byte) []byte {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return body
	}
	changed := false
	for _, k := range readOnlyFields {
		if _, ok := top[k]; ok {
			delete(top, k)
			changed = true
		}
	}
	markers := map[string][]string{}
	for _, p := range Providers() {
		for _, f := range blockFields(reflect.TypeOf(p.New())) {
			switch f.secret {
			case secretSent, secretLocal:
				markers[p.Name] = append(markers[p.Name], f.name+"Set")
			case secretQuery:
				markers[p.Name] = append(markers[p.Name], f.name+"QuerySet")
			}
		}
	}
	for block, names := range markers {
		raw, ok := top[block]
		if !ok {
			continue
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			continue
		}
		dropped := false
		for _, n := range names {
			if _, ok := obj[n]; ok {
				delete(obj, n)
				dropped = true
			}
		}
		if dropped {
			b, err := json.Marshal(obj)
			if err != nil {
				return body
			}
			top[block], changed = b, true
		}
	}
	if !changed {
		return body
	}
	out, err := json.Marshal(top)
	if err != nil {
		return body
	}
	return out
}

// DecodeJSON is the strict decoding Decode uses, offered for the API's other
// request bodies so that every body reports its errors alike: one JSON value,
// no unknown fields, errors as *DecodeError.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &DecodeError{Message: "request body is empty"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, body, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &DecodeError{Message: "malformed JSON: data after the top-level value"}
	}
	return nil
}

// decodeError turns an encoding/json error into a DecodeError that a client
// can act on.
func decodeError(err error, body []byte, t reflect.Type) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json names only the last key; find the whole path.
		path := unknownPath(body, t, "")
		if path == "" {
			path = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		}
		return &DecodeError{Field: path, Message: fmt.Sprintf("unknown field %q", path)}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &DecodeError{Message: fmt.Sprintf("request body must be %s, not %s", jsonKind(typ.Type), typ.Value)}
		}
		return &DecodeError{Field: typ.Field, Message: fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)}
	case errors.As(err, &syn):
		return &DecodeError{Message: fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &DecodeError{Message: "malformed JSON: unexpected end of input"}
	}
	return &DecodeError{Message: "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
}

// jsonKind names the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}

// unknownPath returns the dotted path of the first (in key order) field of
// data that type t does not have, or "" when there is none.
func unknownPath(data []byte, t reflect.Type, prefix string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return ""
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := lookupFold(fields, k)
			if !ok {
				return prefix + k
			}
			if p := unknownPath(obj[k], f.Type, prefix+k+"."); p != "" {
				return p
			}
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return ""
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p := unknownPath(obj[k], t.Elem(), prefix+k+"."); p != "" {
				return p
			}
		}
	case reflect.Slice, reflect.Array:
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) != nil {
			return ""
		}
		base := strings.TrimSuffix(prefix, ".")
		for i, el := range arr {
			if p := unknownPath(el, t.Elem(), fmt.Sprintf("%s[%d].", base, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

// jsonFields maps the JSON names of struct type t to its fields, with the
// fields of embedded structs promoted as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// lookupFold finds a field by JSON name, exact match first, then ignoring
// case, which is how encoding/json matches keys.
func lookupFold(fields map[string]reflect.StructField, key string) (reflect.StructField, bool) {
	if f, ok := fields[key]; ok {
		return f, true
	}
	for name, f := range fields {
		if strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// sentSecrets reports which secret paths appear as keys in a profile body.
func sentSecrets(body []byte) map[string]bool {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	sent := map[string]bool{}
	for _, path := range SecretPaths() {
		obj, segs := doc, strings.Split(path, ".")
		for i, seg := range segs {
			raw, ok := getFold(obj, seg)
			if !ok {
				break
			}
			if i == len(segs)-1 {
				sent[path] = true
				break
			}
			obj = nil
			if json.Unmarshal(raw, &obj) != nil {
				break
			}
		}
	}
	return sent
}

func getFold(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}
