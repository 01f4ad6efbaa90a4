package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/usersync/usersync/service"
)

const (
	requestIDHeader = "X-Request-Id"
	requestIDKey    = "requestId"
)

// clientRequestID is what a caller's X-Request-Id may be: anything else is
// replaced, so a header cannot forge or break log lines.
var clientRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID takes the caller's X-Request-Id or makes one, and echoes it, so
// a client's report and the server log name the same request.
func (s *server) requestID(c *gin.Context) {
	id := c.GetHeader(requestIDHeader)
	if !clientRequestID.MatchString(id) {
		id = uuid.NewString()
	}
	c.Set(requestIDKey, id)
	// Also in the request's context, for code below the handlers (and the
	// admin page) that logs with a context only.
	c.Request = c.Request.WithContext(service.WithRequestID(c.Request.Context(), id))
	c.Header(requestIDHeader, id)
	c.Next()
}

func requestIDOf(c *gin.Context) string { return c.GetString(requestIDKey) }

// logRequests logs one line per request. Never the headers (Authorization)
// nor the body (profiles carry secrets), nor the query (it may carry
// search terms about people): method, path, status, duration, request id.
func (s *server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	status := c.Writer.Status()
	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	s.log.Log(c.Request.Context(), level, "http request",
		"method", c.Request.Method, "path", c.Request.URL.Path, "status", status,
		"duration", time.Since(start), "requestId", requestIDOf(c))
}

// recover turns a panic in a handler into a logged 500 in the usual shape.
func (s *server) recover(c *gin.Context) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			panic(p) // the client is gone; net/http handles this one
		}
		s.log.Error("panic in handler", "panic", p, "stack", string(debug.Stack()),
			"method", c.Request.Method, "path", c.Request.URL.Path, "requestId", requestIDOf(c))
		if !c.Writer.Written() {
			c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": &apiError{
				Code: "internal", Message: "internal error (request id " + requestIDOf(c) + ")"}})
		} else {
			c.Abort()
		}
	}()
	c.Next()
}

// auth checks the bearer token. Both sides are hashed first so the
// comparison takes the same time whatever the length of the guess.
//
// A wrong token counts against the client's and everybody's sign-in
// attempts (SignInThrottle); a client out of attempts gets 429 without its
// token being looked at. A request without a token guesses nothing and
// is not counted.
func (s *server) auth(c *gin.Context) {
	scheme, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	token = strings.TrimSpace(token)
	presented := strings.EqualFold(scheme, "Bearer") && token != ""
	if presented {
		if ok, wait := s.svc.SignInThrottle().Allow(ClientOf(c.Request), ViaAPI); !ok {
			s.fail(c, errThrottled(wait))
			return
		}
	}
	if s.token == "" || !presented || !tokenEqual(token, s.token) {
		if presented {
			s.svc.SignInThrottle().Fail(ClientOf(c.Request), ViaAPI)
		}
		c.Header("WWW-Authenticate", `Bearer realm="usersync"`)
		s.fail(c, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
			Message: "missing or invalid bearer token"})
		return
	}
	c.Next()
}

func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
