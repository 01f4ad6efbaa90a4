package okta

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"

	"github.com/usersync/usersync/provider"
)

// check returns nil for a call that got a 2xx answer, else the typed error
// of what went wrong. A 3xx is an error too: the SDK accepts one with an
// empty body as an empty page, but an org URL that redirects is not an Okta
// API (an unknown org redirects to a sign-in page).
func (s *Source) check(ctx context.Context, tr *trace, resp *okta.Response, err error, what, after string) error {
	if err == nil && (resp == nil || resp.Response == nil || resp.StatusCode < 300) {
		return nil
	}
	return s.fail(ctx, tr, resp, err, what, after)
}

// fail turns what an SDK call returned into the error of a Source method:
// what says what the call tried ("read users"); after is the Okta cursor
// it sent, if any, since a 400 on a cursor means the cursor is no longer
// accepted. The status comes from the SDK's response when it returns one,
// else from the call's trace. Messages never include a request URL: a
// token request's carries the signed client assertion.
func (s *Source) fail(ctx context.Context, tr *trace, resp *okta.Response, err error, what, after string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("okta: %s: %w", what, ctx.Err())
	}
	var thr *provider.ThrottledError
	if errors.As(err, &thr) {
		return fmt.Errorf("okta: %s: %w", what, thr)
	}
	a := tr.get()
	if resp != nil && resp.Response != nil {
		a.status, a.contentType = resp.StatusCode, resp.Header.Get("Content-Type")
	}
	var oe *okta.Error
	isOkta := errors.As(err, &oe)
	if a.status == 0 {
		if isOkta {
			// No API answer, yet an Okta error: the SDK failed to get an
			// access token before sending the request.
			return s.tokenError(what, oe)
		}
		return s.transportError(what, err)
	}
	detail := ""
	code := ""
	if isOkta {
		code = oe.ErrorCode
		detail = okDetail(oe)
	}
	switch st := a.status; {
	case st == http.StatusTooManyRequests:
		return fmt.Errorf("okta: %s: %w", what, &provider.ThrottledError{RetryAfter: max(a.retryAfter, time.Second),
			Message: "okta rate limit still exceeded after the SDK's retries"})
	case st == http.StatusUnauthorized && s.oauth:
		return fmt.Errorf("okta: %w: %s refused the service app's access token%s; check okta.clientId and okta.privateKey",
			provider.ErrAuth, s.org, detail)
	case st == http.StatusUnauthorized:
		return fmt.Errorf("okta: %w: %s refused the API token%s; check okta.apiToken (it may be revoked or expired)",
			provider.ErrAuth, s.org, detail)
	case st == http.StatusForbidden && s.oauth:
		return fmt.Errorf("okta: %w: the service app may not %s%s; grant it the scopes %s",
			provider.ErrPermission, what, detail, s.scopeHint)
	case st == http.StatusForbidden:
		return fmt.Errorf("okta: %w: the API token may not %s%s; its admin needs a role that reads users, groups and apps",
			provider.ErrPermission, what, detail)
	case st == http.StatusNotFound && code != "":
		return &objectNotFound{msg: fmt.Sprintf("okta: %s: %v%s", what, provider.ErrNotFound, detail)}
	case st == http.StatusNotFound:
		return fmt.Errorf("okta: %w: no Okta org answers at %s (HTTP 404); check okta.orgUrl", provider.ErrNotFound, s.org)
	case st == http.StatusBadRequest && after != "":
		return fmt.Errorf("okta: %s: %w%s", what, provider.ErrCursorExpired, detail)
	case st >= 500:
		return fmt.Errorf("okta: %s: server error, HTTP %d%s, after %d retries", what, st, detail, s.pacer.retries)
	case st < 400:
		return fmt.Errorf("okta: %w: %s does not answer as an Okta org (HTTP %d, %s); check okta.orgUrl",
			provider.ErrNotFound, s.org, st, orNone(a.contentType))
	}
	return fmt.Errorf("okta: %s: HTTP %d%s", what, a.status, detail)
}

// tokenError explains a failed access token request of a service app.
func (s *Source) tokenError(what string, oe *okta.Error) error {
	t := s.pacer.lastToken()
	desc := ""
	if d := strings.TrimSpace(oe.ErrorDescription); d != "" {
		desc = " (" + oe.ErrorMessage + ": " + d + ")"
	} else if oe.ErrorMessage != "" {
		desc = " (" + oe.ErrorMessage + ")"
	}
	switch {
	case t.status == http.StatusTooManyRequests:
		return fmt.Errorf("okta: getting an access token to %s: %w", what,
			&provider.ThrottledError{RetryAfter: max(t.retryAfter, time.Second), Message: "okta token endpoint rate limit"})
	case t.status == http.StatusNotFound || (t.status != 0 && !strings.Contains(t.contentType, "json")):
		return fmt.Errorf("okta: %w: no Okta org answers at %s (HTTP %d on /oauth2/v1/token); check okta.orgUrl",
			provider.ErrNotFound, s.org, t.status)
	case t.status >= 500:
		return fmt.Errorf("okta: getting an access token to %s: server error, HTTP %d%s", what, t.status, desc)
	}
	switch oe.ErrorMessage {
	case "invalid_client", "unauthorized_client", "invalid_grant":
		return fmt.Errorf("okta: %w: %s refused the service app%s; check okta.clientId, okta.privateKey and okta.keyId against the app's public keys",
			provider.ErrAuth, s.org, desc)
	case "invalid_scope", "access_denied":
		return fmt.Errorf("okta: %w: the service app may not get the scopes %s%s; grant them to the app (Okta API Scopes)",
			provider.ErrPermission, s.scopeHint, desc)
	}
	return fmt.Errorf("okta: getting an access token to %s: %s", what, oe.Error())
}

// transportError is a request that got no answer at all.
func (s *Source) transportError(what string, err error) error {
	var ue *url.Error
	var ne net.Error
	if !errors.As(err, &ue) && !errors.As(err, &ne) {
		return fmt.Errorf("okta: %s: %w", what, err)
	}
	cause := err
	if ue != nil {
		cause = ue.Err // the URL may hold a client assertion
	}
	var dns *net.DNSError
	hint := ""
	if errors.As(err, &dns) {
		hint = "; check okta.orgUrl"
	}
	return fmt.Errorf("okta: %w: cannot reach %s to %s: %v%s", provider.ErrUnreachable, s.org, what, cause, hint)
}

// objectNotFound is a 404 Okta answered with an error code (E0000007): the
// org is there, the object (a group, an app) is not. An org URL that
// answers 404 without one is a wrong org, which must not pass for an
// empty group.
type objectNotFound struct{ msg string }

func (e *objectNotFound) Error() string { return e.msg }
func (e *objectNotFound) Unwrap() error { return provider.ErrNotFound }

// okDetail renders Okta's error code and summary for a message.
func okDetail(oe *okta.Error) string {
	summary := strings.TrimSpace(oe.ErrorSummary)
	if summary == "" {
		summary = strings.TrimSpace(oe.ErrorDescription)
	}
	switch {
	case oe.ErrorCode != "" && summary != "":
		return " (" + oe.ErrorCode + " " + summary + ")"
	case summary != "":
		return " (" + summary + ")"
	case oe.ErrorCode != "":
		return " (" + oe.ErrorCode + ")"
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "no content type"
	}
	return s
}
