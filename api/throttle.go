package api

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/usersync/usersync/service"
)

// The sign-in throttle is the service's, shared with the admin page's
// sign-in form (service.SignInThrottle); these names stay for callers of
// the API's options.
type SignInThrottle = service.SignInThrottle

// NewSignInThrottle is service.NewSignInThrottle.
var NewSignInThrottle = service.NewSignInThrottle

// Where an attempt came from, for the throttle's counters.
const (
	ViaAPI   = service.ViaAPI
	ViaAdmin = service.ViaAdmin
)

// ClientOf is service.ClientOf.
func ClientOf(r *http.Request) string { return service.ClientOf(r) }

// errThrottled is the 429 of a client out of sign-in attempts.
func errThrottled(wait time.Duration) *apiError {
	secs := int(math.Ceil(wait.Seconds()))
	return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_attempts",
		Message: "too many wrong tokens; try again in " + strconv.Itoa(secs) + " s", retryAfter: wait}
}
