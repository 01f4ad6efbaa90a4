// Package profile is the connection profile as admins write it (API.md,
// "Profiles"): the provider blocks, scope, group sync, attribute map,
// schedule and safety limits. It splits a profile into the part stored in
// clear and the secret fields sealed at rest, and validates it.
package profile

import "strings"

// Providers.
const (
	ProviderAzure = "azure"
	ProviderOkta  = "okta"
	ProviderCSV   = "csv"
)

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

// Config is a profile as the API reads and writes it. Secret fields are
// tagged `secret:"true"`: they are sealed before storage and never returned.
type Config struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	Enabled  *bool  `json:"enabled,omitempty"`
	// Block is the provider's own block (Register), in JSON the object
	// under the provider's name; nil when the profile has none.
	Block            Block             `json:"-"`
	Azure            *Azure            `json:"azure,omitempty"`
	Okta             *Okta             `json:"okta,omitempty"`
	CSV              *CSV              `json:"csv,omitempty"`
	Groups           []string          `json:"groups"`
	GroupSync        GroupSync         `json:"groupSync"`
	AttributeMap     map[string]string `json:"attributeMap"`
	PopulateOrgChart bool              `json:"populateOrgChart"`
	Schedule         Schedule          `json:"schedule"`
	Safety           Safety            `json:"safety"`

	// sent holds the secret paths present in the decoded body (see Decode
	// and MergeSecrets); nil for a Config not made by Decode.
	sent map[string]bool
}

// Azure is the Microsoft Entra ID block.
type Azure struct {
	TenantID                         string `json:"tenantId"`
	ClientID                         string `json:"clientId"`
	ClientSecret                     string `json:"clientSecret,omitempty" secret:"true"`
	Cloud                            string `json:"cloud"`
	GraphBaseURL                     string `json:"graphBaseUrl"`
	AuthorityURL                     string `json:"authorityUrl"`
	IncludeMailEnabledSecurityGroups bool   `json:"includeMailEnabledSecurityGroups"`
	UsernameAttribute                string `json:"usernameAttribute"`
}

// Okta is the Okta block.
type Okta struct {
	OrgURL            string `json:"orgUrl"`
	APIToken          string `json:"apiToken,omitempty" secret:"true"`
	ClientID          string `json:"clientId"`
	PrivateKey        string `json:"privateKey,omitempty" secret:"true"`
	KeyID             string `json:"keyId"`
	AppID             string `json:"appId"`
	UsernameAttribute string `json:"usernameAttribute"`
}

// CSV is the CSV block.
type CSV struct {
	Source          string            `json:"source"` // remote | document
	URL             string            `json:"url"`
	Username        string            `json:"username"`
	Password        string            `json:"password,omitempty" secret:"true"`
	DocumentID      string            `json:"documentId"`
	UserMatchField  string            `json:"userMatchField"`
	ManagerField    string            `json:"managerField"`
	DefaultPassword string            `json:"defaultPassword,omitempty" secret:"true"`
	ColumnMap       map[string]string `json:"columnMap"`
	Delimiter       string            `json:"delimiter"`
	GroupsField     string            `json:"groupsField"`
}

// csvOrgChart turns the org chart on for a CSV profile that names a
// manager column: the column has no other use, and a run that read it but
// linked no manager (the org chart being off by default) would say
// "succeeded" while ignoring what the admin asked for. An admin who wants
// no managers clears the column. Applied by Normalize to what the API
// saves, and by Open to what was stored before the rule, so that the next
// run of such a profile links its managers.
func (c *Config) csvOrgChart() {
	if c.Provider == ProviderCSV && c.CSV != nil && strings.TrimSpace(c.CSV.ManagerField) != "" {
		c.PopulateOrgChart = true
	}
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
