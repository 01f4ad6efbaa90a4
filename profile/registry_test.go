package profile_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/profile"
)

// fakeBlock is the block of a provider only this test registers: nothing
// in profile knows it, yet it is decoded, validated, sealed and redacted.
type fakeBlock struct {
	Host   string `json:"host" maxlen:"40"`
	Token  string `json:"token,omitempty" secret:"true"`
	Salt   string `json:"salt,omitempty" secret:"local"`
	Region string `json:"region"`
}

func (b *fakeBlock) Normalize(*profile.Config) {
	if b.Region == "" {
		b.Region = "eu"
	}
}

func (b *fakeBlock) Validate(*profile.Config) profile.FieldErrors {
	var errs profile.FieldErrors
	if b.Host == "" {
		errs.Add("fake.host", "required")
	} else {
		profile.CheckURL(&errs, "fake.host", b.Host)
	}
	if b.Token == "" {
		errs.Add("fake.token", "required")
	}
	return errs
}

func (b *fakeBlock) Endpoints() []profile.Endpoint {
	return []profile.Endpoint{{Field: "host", Value: b.Host}}
}

func registerFake(t *testing.T) {
	t.Helper()
	profile.Register(profile.Provider{Name: "fake", DisplayName: "Fake", New: func() profile.Block { return &fakeBlock{} }})
	t.Cleanup(func() { profile.Unregister("fake") })
}

func TestRegistryUnknownProviderIsRefusedByName(t *testing.T) {
	c := decode(t, `{"name":"x","provider":"nope","nope":{"anything":1}}`)
	errs := c.Validate()
	require.NotEmpty(t, errs)
	assert.Equal(t, "provider", errs[0].Field)
	assert.Equal(t, "must be one of azure, csv, okta", errs[0].Message)

	// A block of no provider at all is an unknown field, named.
	_, err := profile.Decode([]byte(`{"name":"x","provider":"csv","nope":{}}`))
	var de *profile.DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "nope", de.Field)
}

func TestRegistryFakeProvider(t *testing.T) {
	registerFake(t)
	assert.Contains(t, profile.ProviderNames(), "fake")
	p, ok := profile.Lookup("fake")
	require.True(t, ok)
	assert.Equal(t, "Fake", p.DisplayName)
	assert.Contains(t, profile.SecretPaths(), "fake.token")
	assert.Contains(t, profile.SecretPaths(), "fake.salt")

	// Decoded strictly, with the full path of a misspelt field.
	_, err := profile.Decode([]byte(`{"name":"x","provider":"fake","fake":{"hots":"h"}}`))
	var de *profile.DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "fake.hots", de.Field)
	assert.Equal(t, `unknown field "fake.hots"`, de.Message)

	// Normalized and validated by the block, the text limit by its tag.
	c := decode(t, `{"name":"x","provider":"fake","fake":{"host":"http://example.com/`+strings.Repeat("a", 40)+`"}}`)
	assert.Equal(t, "eu", c.Block.(*fakeBlock).Region)
	errs := c.Validate()
	fields := map[string]string{}
	for _, e := range errs {
		fields[e.Field] += e.Message + "; "
	}
	assert.Contains(t, fields["fake.host"], "loopback")
	assert.Contains(t, fields["fake.host"], "at most 40 characters")
	assert.Equal(t, "required; ", fields["fake.token"])

	// Sealed, opened, redacted; the API shape is {"provider":"fake","fake":{…}}.
	c = decode(t, `{"name":"x","provider":"fake","fake":{"host":"https://a.example","token":"TOKEN-1","salt":"SALT-1"}}`)
	assert.Empty(t, c.Validate())
	box := newBox(t)
	clear, sealed, err := profile.Seal(box, c)
	require.NoError(t, err)
	assert.NotContains(t, string(clear), "TOKEN-1")
	assert.NotContains(t, string(clear), "SALT-1")
	assert.Contains(t, string(clear), `"fake":{"host":"https://a.example","region":"eu"}`)
	back, err := profile.Open(box, clear, sealed)
	require.NoError(t, err)
	assert.Equal(t, "TOKEN-1", back.Block.(*fakeBlock).Token)
	r, err := json.Marshal(back.Redacted())
	require.NoError(t, err)
	assert.Contains(t, string(r), `"tokenSet":true`)
	assert.NotContains(t, string(r), "TOKEN-1")

	// A PUT that omits the secrets keeps them; one that moves the host
	// keeps the local secret only, and asks for the token again.
	next := decode(t, `{"name":"x","provider":"fake","fake":{"host":"https://a.example","tokenSet":true}}`)
	assert.Empty(t, profile.MergeSecrets(back, next))
	assert.Equal(t, "TOKEN-1", next.Block.(*fakeBlock).Token)
	next = decode(t, `{"name":"x","provider":"fake","fake":{"host":"https://evil.example"}}`)
	moved := profile.MergeSecrets(back, next)
	require.Len(t, moved, 1)
	assert.Equal(t, "fake.token", moved[0].Field)
	assert.Contains(t, moved[0].Message, "fake.host")
	assert.Empty(t, next.Block.(*fakeBlock).Token)
	assert.Equal(t, "SALT-1", next.Block.(*fakeBlock).Salt)
}

func TestRegisterRefusesClashes(t *testing.T) {
	registerFake(t)
	assert.Panics(t, func() {
		profile.Register(profile.Provider{Name: "fake", New: func() profile.Block { return &fakeBlock{} }})
	})
	assert.Panics(t, func() {
		profile.Register(profile.Provider{Name: "schedule", New: func() profile.Block { return &fakeBlock{} }})
	})
	assert.Panics(t, func() { profile.Register(profile.Provider{Name: "nonew"}) })
}
