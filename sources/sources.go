// Package sources opens the provider.Source of a profile. Each provider
// has one file here with its opener, registered in the table below, so that
// activities (fetch, test connection, the group picker) never switch on the
// provider themselves and a new provider touches nothing else.
package sources

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
)

// Env is what openers may use.
type Env struct {
	Store directory.Store // documents (CSV)
	// HTTPClient is used for provider calls where the SDK accepts one; nil
	// means the SDK's or net/http's default.
	HTTPClient *http.Client
	// Dial opens the raw connections of providers that do not speak HTTP
	// (LDAP), under the same outbound policy as HTTPClient; nil means a
	// plain net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// AllowHTTPLoopback lets provider URLs use plain http to loopback hosts
	// (simulators, tests). Validation already refuses http elsewhere.
	AllowHTTPLoopback bool
	PageSize          int
	Logger            *slog.Logger
}

// Opened is a source with what a run must know about it beyond the
// interface.
type Opened struct {
	provider.Source
	// Validate, when set, checks the whole source before a fetch stages
	// anything and returns, per CSV line, why a row is unusable
	// (duplicates need the whole file).
	Validate func(ctx context.Context) (map[int]string, error)
	// DefaultPassword is given to users without a password (CSV).
	DefaultPassword string
	// Passwords says the source carries passwords to hash (CSV).
	Passwords bool
	// FoldIDs lowercases external ids and manager references: the CSV's
	// identity is the username, unique case-insensitively.
	FoldIDs bool
	// UserGroups says User.Groups carries each user's group names (CSV);
	// otherwise group sync reads Groups and Members after the users.
	UserGroups bool
}

// Target says what the source is opened for.
type Target struct {
	Profile *directory.Profile
	Config  *profile.Config
	// DocumentID is the CSV document a run reads (its snapshot); "" for
	// test connection and the picker, which read the profile's own source.
	DocumentID string
}

// Opener opens one provider's source.
type Opener func(ctx context.Context, env Env, t Target) (*Opened, error)

// openers maps provider names to openers.
var openers = map[string]Opener{}

// Register adds an opener: each provider file registers its own in init,
// and tests may register a fake provider under a name of their own.
func Register(name string, o Opener) { openers[name] = o }

// ErrUnsupported is a profile of a provider this build cannot open.
var ErrUnsupported = fmt.Errorf("provider not supported")

// Open opens the source of a profile.
func Open(ctx context.Context, env Env, t Target) (*Opened, error) {
	o, ok := openers[t.Profile.Provider]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupported, t.Profile.Provider)
	}
	return o(ctx, env, t)
}

// Snapshotter makes the copy of a profile's source that one run reads
// (profile.CopiedBlock: a resumed run reads the same bytes) and returns its
// document id. A failure of the provider itself (a download) is a
// *ProviderError, which a run retries under its provider budget.
type Snapshotter func(ctx context.Context, env Env, t Target, runID string) (string, error)

var snapshotters = map[string]Snapshotter{}

// RegisterSnapshot adds the snapshotter of a provider whose runs read a
// copy of their own.
func RegisterSnapshot(name string, s Snapshotter) { snapshotters[name] = s }

// SnapshotterOf is the provider's snapshotter, or nil when its runs read
// the provider itself.
func SnapshotterOf(name string) Snapshotter { return snapshotters[name] }

// ProviderError is a failure of the provider rather than of usersync's own
// store or of the profile.
type ProviderError struct{ Err error }

func (e *ProviderError) Error() string { return e.Err.Error() }
func (e *ProviderError) Unwrap() error { return e.Err }
