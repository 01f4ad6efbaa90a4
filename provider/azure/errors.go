package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/usersync/usersync/provider"
)

// graphFailure is what an error answer of Graph says.
type graphFailure struct {
	status  int
	code    string
	message string
	header  http.Header
}

// asGraphFailure reads the status, code and message of an SDK error; ok is
// false for errors that never reached Graph.
func asGraphFailure(err error) (graphFailure, bool) {
	var ie *innerError
	if errors.As(err, &ie) {
		return ie.f, true
	}
	var oe *odataerrors.ODataError
	if errors.As(err, &oe) {
		f := graphFailure{status: oe.ResponseStatusCode, header: headerOf(oe.GetResponseHeaders())}
		if e := oe.GetErrorEscaped(); e != nil {
			f.code, f.message = deref(e.GetCode()), deref(e.GetMessage())
		}
		return f, true
	}
	var ae *abstractions.ApiError
	if errors.As(err, &ae) && ae.ResponseStatusCode != 0 {
		return graphFailure{status: ae.ResponseStatusCode, message: ae.Message, header: headerOf(ae.ResponseHeaders)}, true
	}
	return graphFailure{}, false
}

func headerOf(h *abstractions.ResponseHeaders) http.Header {
	out := http.Header{}
	if h == nil {
		return out
	}
	for _, k := range h.ListKeys() {
		for _, v := range h.Get(k) {
			out.Add(k, v)
		}
	}
	return out
}

func (f graphFailure) text() string {
	switch {
	case f.code != "" && f.message != "":
		return f.code + ": " + f.message
	case f.code != "":
		return f.code
	case f.message != "":
		return f.message
	}
	return http.StatusText(f.status)
}

// requestKind tells graphError what a failed request was doing.
type requestKind int

const (
	firstPage requestKind = iota // a request we built
	nextPage                     // following a nextLink from a cursor
)

// graphError types an error of a Graph call so that Temporal retries what
// is transient (5xx, network, throttling) and stops on what is not, with a
// message that says what to fix. what names the request ("members of group
// 1234"), for messages.
func (s *Source) graphError(ctx context.Context, err error, what string, kind requestKind) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// An expired client secret is told apart from a wrong one, so that the
	// health panel and the metric can say "renew it" (AADSTS7000222).
	if errors.Is(err, provider.ErrAuth) && !errors.Is(err, provider.ErrCredentialsExpired) &&
		strings.Contains(err.Error(), fmt.Sprintf("AADSTS%d", aadSecretExpired)) {
		return fmt.Errorf("%w: %w", provider.ErrCredentialsExpired, err)
	}
	// The credential and the transport already typed what they saw.
	for _, sentinel := range []error{provider.ErrAuth, provider.ErrPermission, provider.ErrUnreachable, provider.ErrInvalidData} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	var thr *provider.ThrottledError
	if errors.As(err, &thr) {
		return err
	}
	f, ok := asGraphFailure(err)
	if !ok {
		var ue *url.Error
		if errors.As(err, &ue) {
			return transportError(ctx, "Microsoft Graph", s.graphBase, err)
		}
		return fmt.Errorf("azure: %s: %w", what, err)
	}
	switch {
	case f.status == http.StatusUnauthorized:
		return fmt.Errorf("%w: Microsoft Graph refused the access token for %s (%s): check that azure.cloud and azure.graphBaseUrl match the tenant's cloud",
			provider.ErrAuth, what, f.text())
	case f.status == http.StatusForbidden:
		return fmt.Errorf("%w: the app registration may not read %s (%s): give it the Microsoft Graph application permissions User.Read.All and GroupMember.Read.All, then grant admin consent (Entra admin center > App registrations > API permissions)",
			provider.ErrPermission, what, f.text())
	case f.status == http.StatusNotFound:
		return fmt.Errorf("%w: %s (%s)", provider.ErrNotFound, what, f.text())
	case f.status == http.StatusTooManyRequests:
		return &provider.ThrottledError{RetryAfter: retryAfter(f.header, time.Second),
			Message: fmt.Sprintf("Microsoft Graph throttled %s (%s)", what, f.text())}
	case kind == nextPage && (f.status == http.StatusBadRequest || f.status == http.StatusGone):
		return fmt.Errorf("%w: Microsoft Graph no longer accepts the next page link of %s (%s)", provider.ErrCursorExpired, what, f.text())
	case f.status >= 500:
		return fmt.Errorf("azure: Microsoft Graph failed on %s: HTTP %d (%s)", what, f.status, f.text())
	case f.status >= 400:
		// Our own query refused: retrying cannot change the answer.
		return &provider.InvalidDataError{Object: "Microsoft Graph request for " + what,
			Reason: fmt.Sprintf("refused with HTTP %d (%s)", f.status, f.text())}
	}
	return fmt.Errorf("azure: %s: HTTP %d (%s)", what, f.status, f.text())
}

// The Microsoft Graph application permissions a sync needs, as Test names
// them: the least privileged that allows each read ("Permissions" on the
// pages cited in docs/providers.md).
const (
	permGroupMembers = "GroupMember.Read.All (group-list, group-delta: it reads groups and their members; Group.Read.All or Directory.Read.All also do)"
	permUsers        = "User.Read.All (user-list, user-delta; Directory.Read.All also does)"
	permUsersFull    = "User.Read.All (user-delta: User.ReadBasic.All lists users but not through the delta function, nor their manager or most properties; Directory.Read.All also does)"
)

// needsPermission restates a refused read of Test (err, as graphError
// typed it; raw, the SDK's error when there is one) as the one permission
// it needs, so that the message names exactly what to grant; any other
// error is returned as it is.
func needsPermission(err, raw error, what, permission string) error {
	if !errors.Is(err, provider.ErrPermission) {
		return err
	}
	detail := ""
	if f, ok := asGraphFailure(raw); ok {
		detail = " (" + f.text() + ")"
	}
	return fmt.Errorf("%w: the app registration may not %s%s: add the Microsoft Graph application permission %s to it, "+
		"then grant admin consent (Entra admin center > App registrations > API permissions)", provider.ErrPermission, what, detail, permission)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// innerError is the failed answer to one request of a $batch.
type innerError struct{ f graphFailure }

func (e *innerError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.f.status, e.f.text()) }

// innerFailure reads an inner answer's {"error":{"code","message"}}.
func innerFailure(status int, body map[string]any) error {
	f := graphFailure{status: status, header: http.Header{}}
	if e, ok := body["error"].(map[string]any); ok {
		f.code, _ = e["code"].(string)
		f.message, _ = e["message"].(string)
	}
	return &innerError{f: f}
}

// errEmptyAnswer is a list request answered without a body, which Graph
// never does: something between us and it did.
func errEmptyAnswer(what string) error {
	return &provider.InvalidDataError{Object: "Microsoft Graph answer to " + what, Reason: "no body"}
}
