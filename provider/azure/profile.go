package azure

import (
	"regexp"
	"slices"
	"strings"

	"github.com/usersync/usersync/profile"
)

// Name is the provider's name in profiles ({"provider":"azure","azure":{…}}).
const Name = "azure"

func init() { profile.Register(Provider) }

// Provider is Entra ID as profiles know it: its block, its checks and its
// inputs on the admin page.
var Provider = profile.Provider{
	Name:        Name,
	DisplayName: "Entra ID",
	Description: "Azure AD, through Microsoft Graph",
	New:         func() profile.Block { return &Profile{} },
	Attributes:  Attributes,
	AttributeHelp: "Copy provider attributes into directory fields. The attribute names offered are " +
		"the Microsoft Graph user properties Entra ID has.",
	Fields: []profile.Field{
		{Name: "tenantId", Label: "Tenant id", Kind: profile.KindText},
		{Name: "clientId", Label: "Application (client) id", Kind: profile.KindText},
		{Name: "clientSecret", Label: "Client secret", Kind: profile.KindPassword},
		{Name: "cloud", Label: "Cloud", Kind: profile.KindSelect, Options: []profile.Option{
			{Value: CloudGlobal, Label: "Global"}, {Value: CloudUSGov, Label: "US Government"},
			{Value: CloudChina, Label: "China (21Vianet)"}}},
		{Name: "usernameAttribute", Label: "Username attribute", Kind: profile.KindText},
		{Name: "graphBaseUrl", Label: "Graph base URL", Kind: profile.KindText,
			Placeholder: "https://graph.microsoft.com/v1.0", Group: "Endpoint overrides (sovereign clouds, tests)"},
		{Name: "authorityUrl", Label: "Authority URL", Kind: profile.KindText,
			Placeholder: "https://login.microsoftonline.com", Group: "Endpoint overrides (sovereign clouds, tests)"},
		{Name: "includeMailEnabledSecurityGroups", Kind: profile.KindCheckbox, Section: profile.SectionDirectory,
			Label: "Include mail-enabled security groups (Exchange / Microsoft 365) in the picker and the scope"},
	},
}

// Profile is the "azure" block of a profile.
type Profile struct {
	TenantID                         string `json:"tenantId"`
	ClientID                         string `json:"clientId"`
	ClientSecret                     string `json:"clientSecret,omitempty" secret:"true" maxlen:"1024"`
	Cloud                            string `json:"cloud"`
	GraphBaseURL                     string `json:"graphBaseUrl" maxlen:"2048"`
	AuthorityURL                     string `json:"authorityUrl" maxlen:"2048"`
	IncludeMailEnabledSecurityGroups bool   `json:"includeMailEnabledSecurityGroups"`
	UsernameAttribute                string `json:"usernameAttribute"`
}

// Normalize fills the defaults.
func (p *Profile) Normalize(*profile.Config) {
	if p.UsernameAttribute == "" {
		p.UsernameAttribute = "userPrincipalName"
	}
	if p.Cloud == "" {
		p.Cloud = CloudGlobal
	}
}

// tenantID is a tenant GUID or domain; it becomes a path segment of the
// token URL, so nothing else may pass.
var tenantID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)

// Validate checks the block and that the attribute map reads Graph user
// properties.
func (p *Profile) Validate(c *profile.Config) profile.FieldErrors {
	var errs profile.FieldErrors
	switch {
	case strings.TrimSpace(p.TenantID) == "":
		errs.Add("azure.tenantId", "required")
	case !tenantID.MatchString(p.TenantID):
		errs.Add("azure.tenantId", "must be a tenant id (GUID) or domain name")
	}
	if strings.TrimSpace(p.ClientID) == "" {
		errs.Add("azure.clientId", "required")
	}
	if p.ClientSecret == "" {
		errs.Add("azure.clientSecret", "required")
	}
	switch p.Cloud {
	case CloudGlobal, CloudUSGov, CloudChina:
	default:
		errs.Add("azure.cloud", "must be one of global, usgov, china")
	}
	if p.GraphBaseURL != "" {
		profile.CheckURL(&errs, "azure.graphBaseUrl", p.GraphBaseURL)
	}
	if p.AuthorityURL != "" {
		profile.CheckURL(&errs, "azure.authorityUrl", p.AuthorityURL)
	}
	for _, k := range profile.SortedKeys(c.AttributeMap) {
		if strings.TrimSpace(k) != "" && !slices.Contains(Attributes, k) {
			errs.Add("attributeMap."+k, "unknown Azure attribute; allowed: %s", strings.Join(Attributes, ", "))
		}
	}
	return errs
}

// Endpoints are where the client secret goes: the sign-in authority and
// Graph, which the cloud and the overrides decide.
func (p *Profile) Endpoints() []profile.Endpoint {
	return []profile.Endpoint{{Field: "cloud", Value: p.Cloud}, {Field: "authorityUrl", Value: p.AuthorityURL},
		{Field: "graphBaseUrl", Value: p.GraphBaseURL}}
}

// Fingerprint is what a sync state of the tenant depends on: a change of
// any makes the next run a full one.
func (p *Profile) Fingerprint() map[string]any {
	return map[string]any{
		"azure": []any{p.TenantID, p.ClientID, p.Cloud, p.GraphBaseURL, p.AuthorityURL,
			p.IncludeMailEnabledSecurityGroups, p.UsernameAttribute},
		// The users' delta links of earlier releases asked for the manager
		// with $expand, which the delta function ignores: a state of theirs
		// would keep wrong managers until the weekly full run.
		"azureDelta": "select-manager",
	}
}

// Attributes are the Microsoft Graph user properties an attribute map
// may read from Entra ID.
var Attributes = []string{
	"aboutMe", "ageGroup", "birthday", "businessPhones", "city", "companyName",
	"consentProvidedForMinor", "country", "createdDateTime", "creationType",
	"department", "displayName", "employeeHireDate", "employeeId", "employeeType",
	"faxNumber", "givenName", "hireDate", "imAddresses", "interests", "jobTitle",
	"legalAgeGroupClassification", "mail", "mailNickname", "mobilePhone", "mySite",
	"officeLocation", "otherMails", "pastProjects", "postalCode", "preferredLanguage",
	"preferredName", "proxyAddresses", "responsibilities", "schools", "skills",
	"state", "streetAddress", "surname", "usageLocation", "userType",
}
