package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// The middleware of the optional parts, and the long deadlines of an
// upload.

// useExtras adds the middleware of the extras; it must run before any
// route is added, since Gin applies middleware to later routes only.
func (s *server) useExtras(r *gin.Engine) {
	if s.httpMetrics != nil {
		r.Use(s.httpMetrics.observe)
	}
}

// uploadTimeout is how long a document upload (up to 100 MB) may take to
// arrive and be answered; every other request has the server's timeouts.
const uploadTimeout = 15 * time.Minute

// longBody lifts the server's read and write deadlines for this request
// to uploadTimeout, so that the server's short ReadTimeout and
// WriteTimeout, which protect everything else, do not cut a large upload.
func longBody(c *gin.Context) {
	rc := http.NewResponseController(c.Writer)
	deadline := time.Now().Add(uploadTimeout)
	// Not supported (a test recorder) means there is no deadline to lift.
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	c.Next()
}
