package profile

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// The provider registry. A provider owns its block of a profile the way a
// dex connector owns its config: one typed struct, stored under the
// provider's name ({"provider":"azure","azure":{…}}), with its defaults,
// its validation, its secrets and its admin-page inputs, registered once.
// Nothing in profile, the API or the admin page names a provider, so a new
// provider is its own package plus one registration line:
//
//	// provider/ldap/profile.go
//	func init() { profile.Register(Provider) }
//
//	var Provider = profile.Provider{
//		Name: "ldap", DisplayName: "LDAP", Description: "any LDAPv3 directory",
//		New:    func() profile.Block { return &Profile{} },
//		Fields: []profile.Field{{Name: "url", Label: "Server URL", Kind: profile.KindText}, …},
//	}
//
//	// Profile is the "ldap" block of a profile.
//	type Profile struct {
//		URL          string `json:"url" maxlen:"2048"`
//		BindPassword string `json:"bindPassword,omitempty" secret:"true"`
//	}
//	func (p *Profile) Normalize(c *profile.Config)            { … }
//	func (p *Profile) Validate(c *profile.Config) profile.FieldErrors { … }
//
// and, for runs, its opener in sources/<name>.go (sources.Register).
//
// Struct tags on the block's string fields say what the generic code does
// with them:
//
//	secret:"true"   sealed at rest, never returned (a read says
//	                "<field>Set"), kept by a PUT that omits it, and asked
//	                for again when an address of the block changes
//	                (Endpoints), since it is sent to that address
//	secret:"local"  as "true", but never sent anywhere (a default password
//	                given to users), so an address change keeps it
//	secret:"query"  the field is a URL whose query is a secret (a signed
//	                URL's ?sig=…): sealed as "<field>Query", shown without
//	                it, with "<field>QuerySet"
//	maxlen:"2048"   its longest value in characters (DefaultMaxText
//	                otherwise); a map[string]string field's keys and
//	                values have maxMapTextLength and MaxMapEntries
//	multiline:"true" it may hold tabs and line breaks (a PEM key)

// Provider is what one provider registers.
type Provider struct {
	// Name is the profile's "provider" value and the JSON key of its
	// block: a lowercase word, fixed once profiles are stored.
	Name string
	// DisplayName names the provider on the admin page ("Entra ID").
	DisplayName string
	// Description says, where a new profile's provider is chosen, what
	// the provider reads ("through Microsoft Graph").
	Description string
	// New returns an empty block to decode into: a pointer to the
	// provider's struct, whose JSON is the block.
	New func() Block
	// Fields are the block's inputs on the admin page, in page order.
	Fields []Field
	// Attributes are the provider attribute names the admin page offers
	// for the attribute map; nil offers none (free text). The block's
	// Validate decides what is allowed.
	Attributes []string
	// AttributeLabel heads the attribute map's provider column on the
	// admin page ("CSV column"); "" is "Provider attribute".
	AttributeLabel string
	// AttributeHelp says above the attribute map what its provider
	// column holds.
	AttributeHelp string
	// WholeSource says a profile reads everything the source has rather
	// than the members of the groups it selects: no group picker, and a
	// run without a group selected is not skipped (a CSV file).
	WholeSource bool
}

// Block is a provider's block of a profile, a pointer to its struct.
type Block interface {
	// Normalize fills the defaults of what the admin left out, so that
	// what is stored and shown is what a run does. It may also set the
	// profile-wide settings the block implies (c is the whole profile).
	// It is applied to every profile the API saves and, so that a rule
	// added later holds for profiles stored before it, to every stored
	// profile opened.
	Normalize(c *Config)
	// Validate reports every invalid field of the (normalized) block,
	// secrets included, with its full path ("azure.tenantId"); the
	// profile's other settings (the attribute map's provider names, for
	// instance) are the provider's to judge too, with their own paths.
	// Text limits and control characters are checked for every block by
	// profile itself (the struct tags above).
	Validate(c *Config) FieldErrors
}

// EndpointBlock is a block with addresses that decide where its secrets
// go. A PUT that changes one of them does not keep a stored secret:
// whoever may edit a profile could otherwise point it at a host of their
// own and have the next test or sync hand the secret over.
type EndpointBlock interface {
	Block
	// Endpoints are the block's addresses in use, in a fixed order, as
	// (field name within the block, value); a URL without its query.
	Endpoints() []Endpoint
}

// Endpoint is one address of a block.
type Endpoint struct{ Field, Value string }

// CopiedBlock is a block whose runs read a copy of the source of their
// own, made as the run starts so that a resumed run reads the same bytes,
// and removed when it ends (a remote file).
type CopiedBlock interface {
	Block
	// RunsReadACopy says whether the profile's runs read such a copy.
	RunsReadACopy() bool
}

// RunsReadACopy says whether the runs of c read a copy of their own.
func (c *Config) RunsReadACopy() bool {
	cb, ok := c.Block.(CopiedBlock)
	return ok && cb.RunsReadACopy()
}

// NotedBlock is a block that explains on the admin page a profile-wide
// setting it decides (a CSV's manager column turns the org chart on).
type NotedBlock interface {
	Block
	// Note is the note beside the profile field named ("populateOrgChart"),
	// or ""; text between backquotes is shown as code.
	Note(field string) string
}

// FieldKind is how the admin page shows a field.
type FieldKind string

// Field kinds.
const (
	KindText     FieldKind = "text"
	KindPassword FieldKind = "password" // a secret (tagged secret:"…"): never shown, kept when left blank
	KindTextarea FieldKind = "textarea" // of a secret, a multi-line secret (a PEM key)
	KindSelect   FieldKind = "select"   // one of Options
	KindRadio    FieldKind = "radio"    // one of Options, all in view
	KindCheckbox FieldKind = "checkbox" // a bool field
	KindDocument FieldKind = "document" // the id of an uploaded document, chosen from a list
	KindMap      FieldKind = "map"      // a map[string]string, as rows of two inputs
)

// Field is one input of a provider's block on the admin page.
type Field struct {
	// Name is the field's JSON name in the block ("tenantId"); the
	// input's name and the path of its errors is "<provider>.<name>".
	Name  string
	Label string
	Kind  FieldKind
	// Help is shown under the input.
	Help        string
	Placeholder string
	Options     []Option
	// Group gathers consecutive fields under a collapsed heading, open
	// when one of them has a value or an error.
	Group string
	// ShowFor shows the field only while another field of the block has
	// a value ("source=document"); a hidden field that is not a secret
	// is saved empty, so that what is stored is what is in use.
	ShowFor string
	// Section puts the field in another section of the page than the
	// connection: SectionDirectory or SectionMapping.
	Section string
	// FromLabel and ToLabel head a map's two columns.
	FromLabel, ToLabel string
}

// Sections of the admin page a field may go to.
const (
	SectionConnection = ""
	SectionDirectory  = "directory"
	SectionMapping    = "mapping"
)

// Option is one choice of a select or radio field.
type Option struct {
	Value, Label string
	// Aliases are other stored values that mean this choice (the
	// delimiter "tab" is stored as a tab character).
	Aliases []string
}

// Path is the field's dotted path in the profile, for provider p.
func (f Field) Path(p string) string { return p + "." + f.Name }

// Shown reports whether the field is in use for a block whose values are
// given by get (a field's name to its value), following ShowFor.
func (f Field) Shown(get func(name string) string) bool {
	if f.ShowFor == "" {
		return true
	}
	name, want, _ := strings.Cut(f.ShowFor, "=")
	return get(name) == want
}

var (
	registryMu sync.RWMutex
	registry   = map[string]*Provider{}
	order      []string
)

// Register adds a provider, from its package's init (and from a test, a
// fake one of its own). It panics on a name registered twice or a
// registration without a name or a block factory: both are programming
// errors a test run shows at once.
func Register(p Provider) {
	if p.Name == "" || p.New == nil {
		panic("profile: Register needs a Name and New")
	}
	if p.Name != strings.ToLower(p.Name) || strings.ContainsAny(p.Name, ". ") {
		panic(fmt.Sprintf("profile: provider name %q must be a lowercase word", p.Name))
	}
	if p.DisplayName == "" {
		p.DisplayName = p.Name
	}
	if p.AttributeLabel == "" {
		p.AttributeLabel = "Provider attribute"
	}
	p.Fields = slices.Clone(p.Fields)
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[p.Name]; dup {
		panic(fmt.Sprintf("profile: provider %q registered twice", p.Name))
	}
	if reserved[p.Name] {
		panic(fmt.Sprintf("profile: provider name %q is a profile field", p.Name))
	}
	registry[p.Name] = &p
	order = append(order, p.Name)
}

// Unregister removes a provider a test registered, so that a test can
// register the same fake provider again.
func Unregister(name string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	delete(registry, name)
	order = slices.DeleteFunc(order, func(n string) bool { return n == name })
}

// Lookup returns a registered provider.
func Lookup(name string) (*Provider, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	p, ok := registry[name]
	return p, ok
}

// Providers returns the registered providers in registration order.
func Providers() []*Provider {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]*Provider, len(order))
	for i, n := range order {
		out[i] = registry[n]
	}
	return out
}

// ProviderNames returns the registered providers' names, sorted, as the
// API's messages list them.
func ProviderNames() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := slices.Clone(order)
	slices.Sort(out)
	return out
}

// reserved are the profile's own top-level JSON names, which no block
// may take.
var reserved = map[string]bool{
	"id": true, "directoryKey": true, "createdAt": true, "updatedAt": true, "lastRun": true, "nextRunAt": true,
	"name": true, "provider": true, "enabled": true, "groups": true, "groupSync": true, "attributeMap": true,
	"populateOrgChart": true, "schedule": true, "safety": true,
}

// SortedKeys returns the keys of m in order, for errors in a stable order.
func SortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Add appends a field error; providers' Validate methods use it.
func (e *FieldErrors) Add(field, format string, args ...any) { e.add(field, format, args...) }

// CheckURL adds an error on field when raw is not an absolute https URL
// (http only to a loopback host, for tests and local simulators), and
// returns the parsed URL when it is fine: the rule every provider address
// follows.
func CheckURL(errs *FieldErrors, field, raw string) *url.URL { return checkURL(errs, field, raw) }

// Documents are the uploaded documents c's block reads: the value of
// every KindDocument field in use (ShowFor), by full path, for the API to
// check that they exist.
func (c *Config) Documents() []Endpoint {
	prov, ok := Lookup(c.Provider)
	if !ok || c.Block == nil {
		return nil
	}
	values := map[string]string{}
	eachField(c, func(f blockField, _ string, v reflect.Value) { values[f.name] = v.String() })
	var out []Endpoint
	for _, f := range prov.Fields {
		if f.Kind == KindDocument && values[f.Name] != "" && f.Shown(func(n string) string { return values[n] }) {
			out = append(out, Endpoint{Field: f.Path(c.Provider), Value: values[f.Name]})
		}
	}
	return out
}
