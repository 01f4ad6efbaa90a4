package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
)

// CanListGroups reports whether the group picker is configured
// (Options.ProviderGroups).
func (s *Service) CanListGroups() bool { return s.providerGroups != nil }

// ProviderGroups is one page of profile id's provider groups, read live
// with its stored credentials, for the picker: a provider's failure is an
// Upstream error whose message says what to fix, with the profile's
// secrets taken out.
//
// The cursor a client sees is not the provider's (a Graph cursor is a URL
// the provider would fetch, token attached): it is sealed by the server,
// bound to the profile and the search, and a cursor the server did not
// make is refused before anything is fetched.
func (s *Service) ProviderGroups(ctx context.Context, id, search, cursor string, limit int) (provider.Page[provider.Group], error) {
	if s.providerGroups == nil {
		return provider.Page[provider.Group]{}, errors.New("provider groups: no lister configured")
	}
	search = strings.TrimSpace(search)
	p, err := s.store.GetProfile(ctx, id)
	if err != nil {
		return provider.Page[provider.Group]{}, err
	}
	cfg, err := s.openProfile(p)
	if err != nil {
		return provider.Page[provider.Group]{}, err
	}
	var providerCursor string
	if cursor != "" {
		if providerCursor, err = s.cursors.open(p.ID, cursor); err != nil {
			return provider.Page[provider.Group]{}, errBadRequest("invalid cursor: %v; start again without one", err)
		}
	}
	page, err := s.providerGroups(ctx, p, cfg, search, providerCursor, limit)
	if err != nil {
		return provider.Page[provider.Group]{}, s.providerError(ctx, err, cfg)
	}
	if page.Next != "" {
		page.Next = s.cursors.seal(p.ID, page.Next)
	}
	return page, nil
}

// errProvider is the Upstream error of a provider that failed a live
// request.
func errProvider(format string, args ...any) *Error {
	return &Error{Kind: Upstream, Code: "provider_error", Message: fmt.Sprintf(format, args...)}
}

// providerError says why the provider failed, in words an admin can act
// on: refused credentials, a missing permission, an unreachable host,
// throttling. Typed provider errors carry messages written for people (the
// provider's own explanation), which are passed on with every secret of
// the profile taken out; anything else is logged and answered without its
// text, which may describe the server rather than the provider.
func (s *Service) providerError(ctx context.Context, err error, cfg *profile.Config) error {
	msg := scrubSecrets(err.Error(), cfg)
	var (
		thr    *provider.ThrottledError
		netErr net.Error
	)
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return err // the caller went away; nobody reads the answer
	case errors.As(err, &thr):
		e := errProvider("throttled: the provider asks to wait %s before the next request (%s)", thr.RetryAfter, msg)
		e.RetryAfter = thr.RetryAfter
		return e
	case errors.Is(err, provider.ErrAuth):
		return errProvider("authentication failed: the provider refused the profile's credentials (%s)", msg)
	case errors.Is(err, provider.ErrPermission):
		return errProvider("permission denied: the profile's credentials lack a permission or admin consent (%s)", msg)
	case errors.Is(err, provider.ErrUnreachable), errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr):
		return errProvider("unreachable: the provider could not be reached (%s)", msg)
	case errors.Is(err, provider.ErrCursorExpired):
		return errBadRequest("the provider no longer accepts this cursor; start again without one")
	case errors.Is(err, provider.ErrInvalidData):
		return errProvider("the provider's answer cannot be used (%s)", msg)
	case errors.Is(err, provider.ErrNotFound):
		return errProvider("not found at the provider (%s)", msg)
	case errors.Is(err, directory.ErrNotFound) && len(cfg.Documents()) > 0:
		return errInvalidField(cfg.Documents()[0].Field, "the profile's document no longer exists; upload the file again")
	}
	id := RequestID(ctx)
	s.log.ErrorContext(ctx, "provider groups failed", "error", msg, "requestId", id)
	return errProvider("the provider request failed (request id %s)", id)
}

// minSecretLen is the shortest secret value scrubSecrets replaces: a
// shorter one (a test's "x") would cut words out of every message.
const minSecretLen = 4

// scrubSecrets replaces every secret value of cfg found in msg, since a
// provider or SDK error may quote what it was sent.
func scrubSecrets(msg string, cfg *profile.Config) string {
	if cfg == nil {
		return msg
	}
	for _, sv := range profile.SecretValues(cfg) {
		if len(sv) >= minSecretLen {
			msg = strings.ReplaceAll(msg, sv, "[redacted]")
		}
	}
	return msg
}
