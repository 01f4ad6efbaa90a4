package api

import (
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/rules"
)

// Limits of what a request may carry in its path and query (API.md,
// "Limits"). Every text is also refused when it holds a control character
// or bytes that are not UTF-8: PostgreSQL refuses a NUL outright, which
// answered 500 for what is the client's mistake.
const (
	maxIDLength     = 256  // a path id, or an id in the query
	maxQueryText    = 256  // q, search and other query values
	maxCursorLength = 4096 // paging cursors (the picker's are sealed envelopes)
)

// checkParams answers 400, naming the parameter, for a path or query
// value that is not text the store can take or is longer than its limit.
func (s *server) checkParams(c *gin.Context) {
	for _, p := range c.Params {
		if msg := rules.TextProblem(p.Value, maxIDLength, false); msg != "" {
			s.fail(c, errBadRequest("path parameter %s %s", p.Key, msg))
			return
		}
	}
	for key, values := range c.Request.URL.Query() {
		if !utf8.ValidString(key) || strings.ContainsFunc(key, isControl) {
			s.fail(c, errBadRequest("a query parameter name is not printable text"))
			return
		}
		max := maxQueryText
		if key == "cursor" {
			max = maxCursorLength
		}
		for _, v := range values {
			if msg := rules.TextProblem(v, max, false); msg != "" {
				s.fail(c, errBadRequest("query parameter %s %s", key, msg))
				return
			}
		}
	}
	c.Next()
}

func isControl(r rune) bool { return rules.HasControl(string(r), false) }

// checkText adds a field error when v is not fit to store (see
// rules.TextProblem).
func checkText(errs *profile.FieldErrors, field, v string, max int) {
	if msg := rules.TextProblem(v, max, false); msg != "" {
		*errs = append(*errs, profile.FieldError{Field: field, Message: msg})
	}
}
