package rules

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Maximum lengths, in characters, of the text a user carries into the
// directory, wherever it comes from (a provider, a CSV row, the API). They
// are generous for real names and small enough that one record cannot fill
// a page of the admin page or a database row with junk.
const (
	MaxUsernameLength       = 256
	MaxNameLength           = 256 // first name, last name, group and role names
	MaxEmailLength          = 254 // RFC 5321's limit on a forward path
	MaxManagerRefLength     = 1024
	MaxAttributeNameLength  = 128
	MaxAttributeValueLength = 4096
)

// TextProblem says what makes v unfit to be stored as text, or "" when
// nothing does: a control character (PostgreSQL refuses NUL outright, and
// the others are never part of a name; multiline lets tab, LF and CR
// through, for free-text attributes such as a postal address), bytes that
// are not UTF-8, or more than max characters (max <= 0: no limit).
func TextProblem(v string, max int, multiline bool) string {
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	if i, r, ok := firstControl(v, multiline); ok {
		return fmt.Sprintf("contains a control character (%U at character %d)", r, i+1)
	}
	if max > 0 {
		if n := utf8.RuneCountInString(v); n > max {
			return fmt.Sprintf("is longer than %d characters (%d)", max, n)
		}
	}
	return ""
}

// HasControl reports whether v holds a control character TextProblem
// refuses (with the same multiline exception).
func HasControl(v string, multiline bool) bool {
	_, _, ok := firstControl(v, multiline)
	return ok
}

func firstControl(v string, multiline bool) (int, rune, bool) {
	i := 0
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\t' || r == '\n' || r == '\r')) {
			return i, r, true
		}
		i++
	}
	return 0, 0, false
}

// ReplaceControl replaces every control character TextProblem refuses, and
// every byte that is not UTF-8, with U+FFFD, so that a record already known
// to be unusable can still be recorded (and reported) without the database
// refusing it.
func ReplaceControl(v string, multiline bool) string {
	if utf8.ValidString(v) && !HasControl(v, multiline) {
		return v
	}
	v = strings.ToValidUTF8(v, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !(multiline && (r == '\t' || r == '\n' || r == '\r')) {
			return unicode.ReplacementChar
		}
		return r
	}, v)
}

// textProblems checks the text fields of a record: the named field and
// what is wrong with it, in a fixed order, "" when all are fine.
func textProblems(r Record) string {
	var out []string
	// Names may hold tab and line breaks (a CSV cell spanning lines); the
	// identifiers may not.
	for _, f := range []struct {
		name, v   string
		max       int
		multiline bool
	}{
		{"username", r.Username, MaxUsernameLength, false},
		{"firstName", r.FirstName, MaxNameLength, true},
		{"lastName", r.LastName, MaxNameLength, true},
		{"email", r.Email, MaxEmailLength, false},
		{"manager", r.ManagerRef, MaxManagerRefLength, false},
	} {
		if p := TextProblem(f.v, f.max, f.multiline); p != "" {
			out = append(out, f.name+" "+p)
		}
	}
	keys := make([]string, 0, len(r.Attributes))
	for k := range r.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p := TextProblem(k, MaxAttributeNameLength, false); p != "" {
			out = append(out, fmt.Sprintf("attribute name %q %s", k, p))
			continue
		}
		if p := TextProblem(r.Attributes[k], MaxAttributeValueLength, true); p != "" {
			out = append(out, "attributes."+k+" "+p)
		}
	}
	return strings.Join(out, "; ")
}
