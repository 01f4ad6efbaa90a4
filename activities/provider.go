package activities

import (
	"context"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/sources"
)

// TestConnection is "Test connection" for a profile (the API's green or red
// light): the provider's cheapest reads that prove every permission a sync
// needs, with the profile's credentials. A CSV is read and its header and
// first row checked; a remote CSV is downloaded but not stored. Warnings
// say what works but not fully (provider.Warner); the error fails the test.
func (a *Activities) TestConnection(ctx context.Context, p *directory.Profile, cfg *profile.Config) ([]string, error) {
	src, err := sources.Open(ctx, a.sourceEnv(), sources.Target{Profile: p, Config: cfg})
	if err != nil {
		return nil, err
	}
	return provider.TestWithWarnings(ctx, src.Source)
}

// ProviderGroups is one page of the profile's group picker.
func (a *Activities) ProviderGroups(ctx context.Context, p *directory.Profile, cfg *profile.Config, search, cursor string) (provider.Page[provider.Group], error) {
	src, err := sources.Open(ctx, a.sourceEnv(), sources.Target{Profile: p, Config: cfg})
	if err != nil {
		return provider.Page[provider.Group]{}, err
	}
	return src.Groups(ctx, provider.GroupQuery{Search: search}, cursor)
}
