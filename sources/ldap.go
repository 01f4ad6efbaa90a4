package sources

import (
	"context"
	"errors"

	"github.com/usersync/usersync/provider/ldap"
)

func init() { Register(ldap.Name, openLDAP) }

// openLDAP opens the directory of an LDAP profile. Its groups and
// memberships come from the group graph (a DeltaSource); ids are GUIDs
// and entryUUIDs already in one case, so nothing is folded.
func openLDAP(_ context.Context, env Env, t Target) (*Opened, error) {
	b, ok := t.Config.Block.(*ldap.Profile)
	if !ok {
		return nil, errors.New("the profile has no ldap block")
	}
	cfg := b.Config(t.Config.AttributeMap)
	cfg.PageSize, cfg.AllowPlainLoopback, cfg.Logger, cfg.Dial = env.PageSize, env.AllowHTTPLoopback, env.Logger, env.Dial
	src, err := cfg.Open()
	if err != nil {
		return nil, err
	}
	return &Opened{Source: src}, nil
}
