// Package profile is the connection profile as admins write it (API.md,
// "Profiles"): the provider's block (registry.go), scope, group sync, attribute map,
// schedule and safety limits. It splits a profile into the part stored in
// clear and the secret fields sealed at rest, and validates it.
package profile

// Group sync modes.
const (
	GroupSyncOff   = "off"
	GroupSyncAll   = "all"
	GroupSyncRegex = "regex"
)

// Defaults of the accidental-delete guard.
const (
	DefaultMaxDisables       = 500
	DefaultMaxDisablePercent = 20
)

// Config is a profile as the API reads and writes it. Its provider's
// settings are the provider's own block (Block, registered with Register),
// whose secret fields are sealed before storage and never returned.
type Config struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	Enabled  *bool  `json:"enabled,omitempty"`
	// Block is the provider's own block (Register), in JSON the object
	// under the provider's name; nil when the profile has none.
	Block            Block             `json:"-"`
	Groups           []string          `json:"groups"`
	GroupSync        GroupSync         `json:"groupSync"`
	AttributeMap     map[string]string `json:"attributeMap"`
	PopulateOrgChart bool              `json:"populateOrgChart"`
	Schedule         Schedule          `json:"schedule"`
	Safety           Safety            `json:"safety"`

	// sent holds the secret paths present in the decoded body (see Decode
	// and MergeSecrets); nil for a Config not made by Decode.
	sent map[string]bool
	// foreign are the blocks of other registered providers the decoded
	// body carried, which Validate refuses.
	foreign []string
}

// GroupSync says which provider groups become directory groups.
type GroupSync struct {
	Mode    string `json:"mode"` // off | all | regex
	Pattern string `json:"pattern,omitempty"`
}

// Schedule is when the profile syncs on its own.
type Schedule struct {
	Frequency    string `json:"frequency"` // off | interval | daily
	EveryMinutes int    `json:"everyMinutes,omitempty"`
	Time         string `json:"time,omitempty"`     // HH:MM
	Timezone     string `json:"timezone,omitempty"` // IANA
}

// Safety holds the accidental-delete guard limits.
type Safety struct {
	MaxDisables       int `json:"maxDisables"`
	MaxDisablePercent int `json:"maxDisablePercent"`
}

// IsEnabled reports the enabled flag, true when unset.
func (c *Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }
