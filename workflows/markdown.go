package workflows

import "strings"

// markdownSpecial are the characters Markdown (CommonMark, as the Temporal
// UI renders summaries and details) reads as markup; each is escaped with a
// backslash.
const markdownSpecial = "\\`*_{}[]()#+-.!|<>~&"

// md escapes text for a Markdown line: a profile is named by whoever may
// edit it, and a name like "[Sign in](https://evil.example)" or
// "<img src=…>" must show as those characters, not as a link or an image,
// in the Temporal UI. Line breaks become spaces, since a summary is one
// line and a break in details would start a new block.
func md(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case strings.ContainsRune(markdownSpecial, r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// codeSpan makes s safe inside a `code span`, where backslashes are
// literal: a backtick would end the span early and a line break the
// line, so both are dropped (ids never hold one).
func codeSpan(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '`' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
}
