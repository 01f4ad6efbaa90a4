package okta

import (
	"regexp"
	"slices"
	"strings"

	"github.com/usersync/usersync/profile"
)

// Name is the provider's name in profiles ({"provider":"okta","okta":{…}}).
const Name = "okta"

func init() { profile.Register(Provider) }

const oauthGroup = "OAuth service app instead of an API token"

// Provider is Okta as profiles know it: its block, its checks and its
// inputs on the admin page.
var Provider = profile.Provider{
	Name:        Name,
	DisplayName: "Okta",
	Description: "an Okta org, through its Management API",
	New:         func() profile.Block { return &Profile{} },
	Attributes:  Attributes,
	AttributeHelp: "Copy provider attributes into directory fields. The attribute names offered are those " +
		"Okta has; an Okta custom attribute may be typed too.",
	Fields: []profile.Field{
		{Name: "orgUrl", Label: "Org URL", Kind: profile.KindText, Placeholder: "https://example.okta.com"},
		{Name: "apiToken", Label: "API token", Kind: profile.KindPassword},
		{Name: "clientId", Label: "Client id", Kind: profile.KindText, Group: oauthGroup},
		{Name: "privateKey", Label: "Private key (PEM)", Kind: profile.KindTextarea, Group: oauthGroup},
		{Name: "keyId", Label: "Key id", Kind: profile.KindText, Group: oauthGroup},
		{Name: "appId", Label: "usersync app id (its assigned groups fill the picker; blank lists all groups)", Kind: profile.KindText},
		{Name: "usernameAttribute", Label: "Username attribute", Kind: profile.KindText},
	},
}

// Profile is the "okta" block of a profile.
type Profile struct {
	OrgURL            string `json:"orgUrl" maxlen:"2048"`
	APIToken          string `json:"apiToken,omitempty" secret:"true" maxlen:"1024"`
	ClientID          string `json:"clientId"`
	PrivateKey        string `json:"privateKey,omitempty" secret:"true" maxlen:"16384" multiline:"true"`
	KeyID             string `json:"keyId"`
	AppID             string `json:"appId"`
	UsernameAttribute string `json:"usernameAttribute"`
}

// Normalize fills the defaults. A bare domain means its HTTPS origin;
// stored as a URL so that every reader gets one form.
func (p *Profile) Normalize(*profile.Config) {
	if p.UsernameAttribute == "" {
		p.UsernameAttribute = "login"
	}
	if p.OrgURL = strings.TrimSpace(p.OrgURL); p.OrgURL != "" && !strings.Contains(p.OrgURL, "://") {
		p.OrgURL = "https://" + p.OrgURL
	}
}

// oktaVariable is the shape of an Okta profile attribute variable name.
var oktaVariable = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// Validate checks the block and that the attribute map reads Okta profile
// attributes (built-in, or custom ones by their shape).
func (p *Profile) Validate(c *profile.Config) profile.FieldErrors {
	var errs profile.FieldErrors
	if p.OrgURL == "" {
		errs.Add("okta.orgUrl", "required")
	} else if u := profile.CheckURL(&errs, "okta.orgUrl", p.OrgURL); u != nil {
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			errs.Add("okta.orgUrl", "must be the org address only, such as https://example.okta.com")
		}
	}
	if p.APIToken == "" {
		switch {
		case p.ClientID == "" && p.PrivateKey == "":
			errs.Add("okta.apiToken", "an apiToken, or a clientId with a privateKey, is required")
		case p.ClientID == "":
			errs.Add("okta.clientId", "required with privateKey")
		case p.PrivateKey == "":
			errs.Add("okta.privateKey", "required with clientId")
		}
	}
	if !oktaVariable.MatchString(p.UsernameAttribute) {
		errs.Add("okta.usernameAttribute", "must be an Okta profile attribute name")
	}
	for _, k := range profile.SortedKeys(c.AttributeMap) {
		if strings.TrimSpace(k) != "" && !slices.Contains(Attributes, k) && !oktaVariable.MatchString(k) {
			errs.Add("attributeMap."+k, "unknown Okta attribute; allowed: %s, or a custom attribute name (a letter, then letters, digits or _)",
				strings.Join(Attributes, ", "))
		}
	}
	return errs
}

// Endpoints are where the token or the signed assertion goes.
func (p *Profile) Endpoints() []profile.Endpoint {
	return []profile.Endpoint{{Field: "orgUrl", Value: p.OrgURL}}
}

// Fingerprint is what a sync state of the org depends on: a change of any
// makes the next run a full one.
func (p *Profile) Fingerprint() map[string]any {
	return map[string]any{"okta": []any{p.OrgURL, p.AppID, p.UsernameAttribute}}
}

// Attributes are the built-in Okta user profile properties an attribute
// map may read. Okta profiles also carry custom attributes, so any name
// shaped like an Okta variable name is accepted as well.
var Attributes = []string{
	"middleName", "honorificPrefix", "honorificSuffix", "displayName", "nickName",
	"profileUrl", "secondEmail", "mobilePhone", "primaryPhone", "streetAddress",
	"city", "state", "zipCode", "countryCode", "postalAddress", "preferredLanguage",
	"locale", "timezone", "userType", "employeeNumber", "costCenter", "division",
	"department", "managerId", "manager", "title", "organization",
}
