package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/profile"
)

// apiError is an error with its answer: status, code and a message meant
// for the client. Anything else a handler returns is an internal error,
// logged and answered without detail.
type apiError struct {
	Status  int                  `json:"-"`
	Code    string               `json:"code"`
	Message string               `json:"message"`
	Details []profile.FieldError `json:"details,omitempty"`
	RunID   string               `json:"runId,omitempty"` // run_in_progress: the running run
	run     *runJSON             // run_in_progress: shown beside the error
	// retryAfter, when set, is sent as Retry-After (a throttled provider).
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.Message }

func errBadRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
}

func errConflict(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf(format, args...)}
}

// errInvalidField is a 422 on one field.
func errInvalidField(field, format string, args ...any) *apiError {
	fe := profile.FieldErrors{{Field: field, Message: fmt.Sprintf(format, args...)}}
	return &apiError{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Message: fe.Error(), Details: fe}
}

// fail answers err and ends the request.
func (s *server) fail(c *gin.Context, err error) {
	e := s.classify(c, err)
	body := gin.H{"error": e}
	if e.run != nil {
		body["run"] = e.run
	}
	if e.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	}
	c.AbortWithStatusJSON(e.Status, body)
}

// classify maps an error onto its answer. Store errors carry messages the
// store wrote for people ("profile 42: not found"), so those are passed on;
// an unknown error is logged with the request id and answered as internal,
// since its text may name tables, hosts or files.
func (s *server) classify(c *gin.Context, err error) *apiError {
	if e := s.known(err); e != nil {
		return e
	}
	s.log.Error("request failed", "error", err, "method", c.Request.Method, "path", c.Request.URL.Path,
		"requestId", requestIDOf(c))
	return errInternal(requestIDOf(c))
}

// errInternal answers an error whose text is not for the client.
func errInternal(requestID string) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: "internal",
		Message: "internal error (request id " + requestID + ")"}
}

// known maps the errors that have an answer of their own; nil for any
// other. The service's errors (service.Describe) get the status of their
// kind (service.Kind.HTTPStatus): this is the one place an error becomes
// an answer.
func (s *server) known(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	e := s.svc.Describe(err)
	if e == nil {
		return nil
	}
	out := &apiError{Status: e.Kind.HTTPStatus(), Code: e.Code, Message: e.Message, Details: e.Fields, RunID: e.RunID,
		retryAfter: e.RetryAfter}
	if e.Run != nil {
		j := s.runJSON(e.Run)
		out.run = &j
	}
	return out
}
