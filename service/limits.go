package service

import (
	"fmt"

	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/rules"
)

// Limits of the texts an input may carry, beside the rules package's
// (API.md, "Limits").
const (
	MaxIDLength     = 256 // an id: of a document, a directory key
	maxDocumentName = 255
)

// checkText adds a field error when v is not fit to store (see
// rules.TextProblem).
func checkText(errs *profile.FieldErrors, field, v string, max int) {
	if msg := rules.TextProblem(v, max, false); msg != "" {
		*errs = append(*errs, profile.FieldError{Field: field, Message: msg})
	}
}

// indexed names an element of a list field.
func indexed(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }
