package profile

import "reflect"

// The profile tests are an external package (profile_test), so that they
// can use the real providers, which import profile; these give them the
// internals they check.

const MaxGroupIDLength = maxGroupIDLength

// CloneConfig is a deep copy of c that keeps which secrets its body sent.
func CloneConfig(c *Config) *Config {
	out := c.clone()
	out.sent = c.sent
	return out
}

// ForgetSent makes c compare equal to a Config not made by Decode.
func ForgetSent(c *Config) { c.sent = nil }

// Sent reports whether the body c was decoded from carried the secret.
func Sent(c *Config, path string) bool { return c.sent[path] }

// EachSecret calls fn with every secret field of c's block: its path, its
// kind ("true", "local" or "query") and its settable value.
func EachSecret(c *Config, fn func(path, kind string, v reflect.Value)) {
	eachField(c, func(f blockField, path string, v reflect.Value) {
		if f.secret != "" {
			fn(path, f.secret, v)
		}
	})
}

// EachText calls fn with every text of c, the profile's own and its
// block's, and whether it may hold line breaks.
func EachText(c *Config, fn func(field, v string, multiline bool)) {
	walkText(reflect.ValueOf(c).Elem(), "", func(field, v string) { fn(field, v, false) })
	eachField(c, func(f blockField, path string, v reflect.Value) { fn(path, v.String(), f.multiline) })
}

// SplitQuery is splitQuery.
func SplitQuery(raw string) (base, query string, has bool) { return splitQuery(raw) }
