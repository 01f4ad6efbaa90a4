package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
)

// Kind is what went wrong with a request, whoever made it.
type Kind int

// The kinds of Error.
const (
	// Internal is anything the caller cannot act on; its text is not
	// for the caller.
	Internal Kind = iota
	// BadRequest: the input cannot be read (a malformed cursor, a body
	// that is not a profile).
	BadRequest
	// Invalid: the input was read, and fields of it are wrong (Fields).
	Invalid
	NotFound
	// Conflict: the thing is not in a state that allows it (a run going,
	// a name taken, the licence full).
	Conflict
	TooLarge
	// Upstream: a provider or Temporal did not do its part; nothing was
	// changed, and trying again later may work.
	Upstream
)

// HTTPStatus is the status the API answers, and the admin page renders,
// for an error of this kind: the one table of them.
func (k Kind) HTTPStatus() int {
	switch k {
	case BadRequest:
		return http.StatusBadRequest
	case Invalid:
		return http.StatusUnprocessableEntity
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Upstream:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// Error is an error of the service with a message meant for the person
// who asked (a store error's text is not: it may name tables or hosts).
// Callers read it with errors.As; Describe turns any error into one.
type Error struct {
	Kind Kind
	// Code is the API's error code (API.md): "validation_failed",
	// "run_in_progress", "licence_limit_reached", …
	Code    string
	Message string
	// Fields are the wrong fields by dotted path ("csv.url").
	Fields profile.FieldErrors
	// RunID and Run are the run already going, for a refused start.
	RunID string
	Run   *directory.Run
	// RetryAfter, when set, is how long the provider asks to wait.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

// Codes a caller branches on.
const (
	// CodeNoSchedule is a reset of the last run of a profile without a
	// schedule, which the admin page explains rather than shows as an
	// error.
	CodeNoSchedule = "no_schedule"
	// CodeLicenceLimit is a user refused by the licence.
	CodeLicenceLimit = "licence_limit_reached"
	// CodeRunInProgress is a start refused because a run is going.
	CodeRunInProgress = "run_in_progress"
)

func errBadRequest(format string, args ...any) *Error {
	return &Error{Kind: BadRequest, Code: "bad_request", Message: fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) *Error {
	return &Error{Kind: NotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
}

func errConflict(format string, args ...any) *Error {
	return &Error{Kind: Conflict, Code: "conflict", Message: fmt.Sprintf(format, args...)}
}

func errTooLarge(format string, args ...any) *Error {
	return &Error{Kind: TooLarge, Code: "too_large", Message: fmt.Sprintf(format, args...)}
}

// errInvalid is a validation failure with one detail per field.
func errInvalid(fe profile.FieldErrors) *Error {
	return &Error{Kind: Invalid, Code: "validation_failed", Message: fe.Error(), Fields: fe}
}

func errInvalidField(field, format string, args ...any) *Error {
	return errInvalid(profile.FieldErrors{{Field: field, Message: fmt.Sprintf(format, args...)}})
}

// Describe is err as an Error when it has an answer of its own: an Error,
// a profile that cannot be decoded or is invalid, and the store's errors,
// whose messages are written for people ("profile 42: not found"), and a
// request body over its limit (a reader of http.MaxBytesReader). Any
// other error is nil: internal, to be logged and answered without its
// text.
func (s *Service) Describe(err error) *Error {
	var (
		e   *Error
		de  *profile.DecodeError
		fe  profile.FieldErrors
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &de):
		return errBadRequest("%s", de.Message)
	case errors.As(err, &fe):
		return errInvalid(fe)
	case errors.As(err, &mbe):
		return errTooLarge("request body larger than %d bytes", mbe.Limit)
	case errors.Is(err, directory.ErrTooLarge):
		return errTooLarge("document larger than %d bytes", s.maxDocument)
	case errors.Is(err, directory.ErrInvalidCursor):
		return errBadRequest("invalid cursor")
	case errors.Is(err, directory.ErrNotFound):
		return errNotFound("%s", err.Error())
	case errors.Is(err, directory.ErrConflict):
		return errConflict("%s", err.Error())
	}
	return nil
}

// Explain is Describe for a caller that shows every error: an internal
// one is logged here, with the request id of ctx, and explained as
// internal with that id.
func (s *Service) Explain(ctx context.Context, err error) *Error {
	if e := s.Describe(err); e != nil {
		return e
	}
	id := RequestID(ctx)
	s.log.ErrorContext(ctx, "request failed", "error", err, "requestId", id)
	return InternalError(id)
}

// InternalError is the answer to an error whose text is not for the
// caller.
func InternalError(requestID string) *Error {
	return &Error{Kind: Internal, Code: "internal", Message: "internal error (request id " + requestID + ")"}
}

// IsNotFound reports whether err means that the thing asked for does not
// exist.
func IsNotFound(err error) bool {
	var e *Error
	return errors.Is(err, directory.ErrNotFound) || (errors.As(err, &e) && e.Kind == NotFound)
}
