// Package provider defines what every identity source (Entra ID, Okta, CSV)
// offers to a sync run: a Source read one page at a time, so that a paging
// activity can checkpoint its cursor and resume after a retry, and the typed
// errors that let Temporal tell a transient failure from a final one.
package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Cursor is an opaque position in a paged listing: "" is the first page, and
// a Page whose Next is "" is the last one.
type Cursor = string

// Page is one page of a listing.
type Page[T any] struct {
	Items []T
	Next  Cursor
}

// Source is one configured identity provider.
type Source interface {
	// Test checks credentials and reachability with the cheapest read the
	// provider allows ("Test connection").
	Test(ctx context.Context) error
	// Groups lists provider groups: the profile's group picker and group sync.
	Groups(ctx context.Context, q GroupQuery, c Cursor) (Page[Group], error)
	// Users lists the users in scope.
	Users(ctx context.Context, scope Scope, c Cursor) (Page[User], error)
	// Members lists the members of one provider group.
	Members(ctx context.Context, groupID string, c Cursor) (Page[Member], error)
}

// Warner is a Source whose "Test connection" can also say what works but
// not fully: a permission only part of a sync needs (Okta's System Log,
// without which every run reads in full). TestWarnings is Test plus those
// warnings, each a sentence naming what to grant; an error fails the test
// as Test's would.
type Warner interface {
	TestWarnings(ctx context.Context) ([]string, error)
}

// TestWithWarnings is "Test connection" of src: its warnings when it is a
// Warner, else Test's error alone.
func TestWithWarnings(ctx context.Context, src Source) ([]string, error) {
	if w, ok := src.(Warner); ok {
		return w.TestWarnings(ctx)
	}
	return nil, src.Test(ctx)
}

// GroupQuery narrows a group listing.
type GroupQuery struct {
	Search string // case-insensitive substring (or prefix, where the provider only offers that) of the name
	// ForSync asks for the groups group sync considers (after the users of
	// a run), rather than the picker's list; a provider may narrow it to
	// the groups that have users in scope.
	ForSync bool
	Scope   Scope
}

// Scope says which users a run reads.
type Scope struct {
	GroupIDs []string // provider group ids selected on the profile (Azure, Okta)
}

// User is one user as the provider describes it, already mapped.
type User struct {
	ExternalID string // immutable provider id (Graph object id, Okta id, CSV match column)
	Username   string
	FirstName  string
	LastName   string
	Email      string
	Active     bool              // provider status mapped to active/inactive
	ManagerRef string            // external id or username of the manager, "" when none
	Attributes map[string]string // directory field -> value, only mapped attributes
	Password   string            // CSV only: clear text from the file, hashed before it is stored
	Groups     []string          // names or ids of the provider groups the user is in, where the listing carries them (CSV)
	Line       int               // CSV only: 1-based line of the record, for error reports
	Invalid    string            // non-empty when the provider already knows the record is unusable (why)
	// ManagerUnchanged says the listing did not tell the manager and
	// ManagerRef means nothing: a change round that names a manager only
	// when it changed (Graph's manager@delta), or a listing that does not
	// carry it. The run keeps the manager it knew, or reads the user by id.
	ManagerUnchanged bool
}

// Group is one provider group.
type Group struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Type            string `json:"type"`
	MailEnabled     bool   `json:"mailEnabled"`
	SecurityEnabled bool   `json:"securityEnabled"`
}

// Member is one member of a provider group.
type Member struct {
	UserID string // external id of a user member
}

// Sentinel errors; providers wrap them with detail.
var (
	// ErrAuth means the credentials were refused; retrying cannot help.
	ErrAuth = errors.New("authentication failed")
	// ErrPermission means the credentials lack a consent or scope.
	ErrPermission = errors.New("permission denied")
	// ErrCredentialsExpired means the provider said the credentials have
	// lapsed (an Entra client secret past its end date); it comes with
	// ErrAuth.
	ErrCredentialsExpired = errors.New("credentials expired")
	// ErrNotFound means the addressed object or endpoint does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidData means the provider's data cannot be used as it is.
	ErrInvalidData = errors.New("invalid data")
	// ErrUnreachable means the provider could not be reached (DNS, TCP, TLS, timeout).
	ErrUnreachable = errors.New("provider unreachable")
	// ErrCursorExpired means a saved cursor is no longer accepted: the fetch
	// must start again from the first page.
	ErrCursorExpired = errors.New("cursor no longer accepted")
)

// Credential problems CredentialProblem tells apart.
const (
	CredentialsExpired = "expired"    // the provider said they lapsed: renew them
	CredentialsRefused = "refused"    // wrong, revoked or expired without saying so
	PermissionMissing  = "permission" // a consent, scope or role is missing
)

// CredentialProblem says what an error message of a provider (a failed
// Test connection, a failed run: both are kept only as text) means for
// the profile's credentials, "" when it is about something else. It reads
// the sentinels' texts, which every provider error that wraps them
// carries; the AADSTS code covers messages written before
// ErrCredentialsExpired existed.
func CredentialProblem(msg string) string {
	switch {
	case strings.Contains(msg, ErrCredentialsExpired.Error()), strings.Contains(msg, "AADSTS7000222"):
		return CredentialsExpired
	case strings.Contains(msg, ErrAuth.Error()):
		return CredentialsRefused
	case strings.Contains(msg, ErrPermission.Error()):
		return PermissionMissing
	}
	return ""
}

// ThrottledError is a 429 (or equivalent) with the wait the provider asked for.
type ThrottledError struct {
	RetryAfter time.Duration
	Message    string
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("throttled by provider, retry after %s: %s", e.RetryAfter, e.Message)
}

// InvalidDataError names the object (a CSV line, a provider object id) and
// field that make the data unusable.
type InvalidDataError struct {
	Object string // e.g. "line 12" or "user 5f0c…"
	Field  string // column or property, may be empty
	Reason string
}

func (e *InvalidDataError) Error() string {
	switch {
	case e.Object != "" && e.Field != "":
		return fmt.Sprintf("%s, %s: %s", e.Object, e.Field, e.Reason)
	case e.Object != "":
		return fmt.Sprintf("%s: %s", e.Object, e.Reason)
	case e.Field != "":
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	}
	return e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalidData) hold.
func (e *InvalidDataError) Unwrap() error { return ErrInvalidData }

// Retryable tells whether err is worth another attempt: transient transport
// failures and throttling are; refused credentials, missing permissions and
// unusable data are not.
func Retryable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrAuth), errors.Is(err, ErrPermission),
		errors.Is(err, ErrInvalidData), errors.Is(err, ErrNotFound):
		return false
	}
	return true
}
