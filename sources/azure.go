package sources

import (
	"context"
	"errors"

	"github.com/usersync/usersync/provider/azure"
)

func init() { Register(azure.Name, openAzure) }

// openAzure opens the Entra ID tenant of a profile. Its groups and
// memberships come from the group graph (a DeltaSource); object ids are
// GUIDs Graph already writes in one case, so nothing is folded.
func openAzure(_ context.Context, env Env, t Target) (*Opened, error) {
	a, ok := t.Config.Block.(*azure.Profile)
	if !ok {
		return nil, errors.New("the profile has no azure block")
	}
	src, err := azure.Config{
		TenantID: a.TenantID, ClientID: a.ClientID, ClientSecret: a.ClientSecret,
		Cloud: a.Cloud, GraphBaseURL: a.GraphBaseURL, AuthorityURL: a.AuthorityURL,
		IncludeMailEnabledSecurityGroups: a.IncludeMailEnabledSecurityGroups,
		UsernameAttribute:                a.UsernameAttribute, AttributeMap: t.Config.AttributeMap,
		PageSize: env.PageSize, AllowHTTPLoopback: env.AllowHTTPLoopback, HTTPClient: env.HTTPClient,
		Logger: env.Logger,
	}.Open()
	if err != nil {
		return nil, err
	}
	return &Opened{Source: src}, nil
}
