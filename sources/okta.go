package sources

import (
	"context"
	"errors"

	"github.com/usersync/usersync/provider/okta"
)

func init() { Register(okta.Name, openOkta) }

// openOkta opens the Okta org of a profile. Okta users do not carry their
// groups, so group sync reads Groups and Members after the users; ids are
// Okta's and already unique as they are, so nothing is folded.
func openOkta(_ context.Context, env Env, t Target) (*Opened, error) {
	o, ok := t.Config.Block.(*okta.Profile)
	if !ok {
		return nil, errors.New("the profile has no okta block")
	}
	src, err := okta.Config{
		OrgURL: o.OrgURL, APIToken: o.APIToken,
		ClientID: o.ClientID, PrivateKey: o.PrivateKey, KeyID: o.KeyID,
		AppID: o.AppID, UsernameAttribute: o.UsernameAttribute, AttributeMap: t.Config.AttributeMap,
		PageSize: env.PageSize, AllowHTTPLoopback: env.AllowHTTPLoopback, HTTPClient: env.HTTPClient,
		Logger: env.Logger,
	}.Open()
	if err != nil {
		return nil, err
	}
	return &Opened{Source: src}, nil
}
