package rules

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestInvalidRefusesControlCharacters is the provider half of issue 13's
// item 3: a record from Entra ID or Okta whose text holds a NUL (or any
// other control character) or is longer than its maximum is skipped with
// the field named, instead of reaching a database that refuses it.
func TestInvalidRefusesControlCharacters(t *testing.T) {
	cases := []struct {
		mutate func(*Record)
		want   string
	}{
		{func(r *Record) { r.Username = "j\x00doe" }, "username contains a control character (U+0000 at character 2)"},
		{func(r *Record) { r.FirstName = "Ja\x1bne" }, "firstName contains a control character (U+001B"},
		{func(r *Record) { r.LastName = "Doe\x01" }, "lastName contains a control character (U+0001"},
		{func(r *Record) { r.LastName = "Doe\r\nSmith" }, ""},
		{func(r *Record) { r.Username = "j\tdoe" }, "username contains a control character (U+0009"},
		{func(r *Record) { r.Email = "jane\x7f@example.com" }, "email contains a control character (U+007F"},
		{func(r *Record) { r.ManagerRef = "boss\u0085" }, "manager contains a control character (U+0085"},
		{func(r *Record) { r.Username = strings.Repeat("a", MaxUsernameLength+1) }, "username is longer than 256 characters (257)"},
		{func(r *Record) { r.Username = strings.Repeat("é", MaxUsernameLength) }, ""},
		{func(r *Record) { r.Attributes = map[string]string{"address": "1 Main St\nSpringfield\t(x)"} }, ""},
		{func(r *Record) { r.Attributes = map[string]string{"address": "a\x00b"} }, "attributes.address contains a control character (U+0000"},
		{func(r *Record) { r.Attributes = map[string]string{"de\npt": "x"} }, `attribute name "de\npt" contains a control character`},
		{func(r *Record) { r.Username = "bad\xffutf8" }, "username is not valid UTF-8"},
	}
	for _, c := range cases {
		r := rec()
		c.mutate(&r)
		got := Invalid(r)
		if (c.want == "") != (got == "") || !strings.HasPrefix(got, c.want) {
			t.Errorf("Invalid(%q) = %q, want prefix %q", r.Username, got, c.want)
		}
	}
}

func TestReplaceControlMakesStorableText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     "plain",
		"a\x00b":    "a\uFFFDb",
		"a\tb\nc":   "a\uFFFDb\uFFFDc",
		"bad\xffok": "bad\uFFFDok",
	} {
		if got := ReplaceControl(in, false); got != want {
			t.Errorf("ReplaceControl(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ReplaceControl("a\tb\nc\x00", true); got != "a\tb\nc\uFFFD" {
		t.Errorf("multiline ReplaceControl = %q", got)
	}
}

// FuzzTextProblem: whatever the input, ReplaceControl's output passes the
// control-character and UTF-8 checks, TextProblem agrees with HasControl,
// and a value TextProblem accepts is left as it is.
func FuzzTextProblem(f *testing.F) {
	for _, s := range []string{"", "jdoe", "j\x00doe", "a\tb", "line\r\nbreak", "\xff\xfe", "é\u0085", strings.Repeat("x", 300)} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, v string, multiline bool) {
		p := TextProblem(v, 0, multiline)
		if (p != "") != (!utf8.ValidString(v) || HasControl(v, multiline)) {
			t.Fatalf("TextProblem(%q) = %q disagrees with HasControl/ValidString", v, p)
		}
		r := ReplaceControl(v, multiline)
		if q := TextProblem(r, 0, multiline); q != "" {
			t.Fatalf("ReplaceControl(%q) = %q still has a problem: %s", v, r, q)
		}
		if p == "" && r != v {
			t.Fatalf("ReplaceControl changed an acceptable value %q to %q", v, r)
		}
		rec := Record{Username: v, FirstName: "a", LastName: "b", Email: "a@example.com"}
		if TextProblem(v, MaxUsernameLength, false) != "" && Invalid(rec) == "" {
			t.Fatalf("Invalid accepts username %q", v)
		}
	})
}
