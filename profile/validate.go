package profile

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// AzureAttributes are the Microsoft Graph user properties an attribute map
// may read from Entra ID.
var AzureAttributes = []string{
	"aboutMe", "ageGroup", "birthday", "businessPhones", "city", "companyName",
	"consentProvidedForMinor", "country", "createdDateTime", "creationType",
	"department", "displayName", "employeeHireDate", "employeeId", "employeeType",
	"faxNumber", "givenName", "hireDate", "imAddresses", "interests", "jobTitle",
	"legalAgeGroupClassification", "mail", "mailNickname", "mobilePhone", "mySite",
	"officeLocation", "otherMails", "pastProjects", "postalCode", "preferredLanguage",
	"preferredName", "proxyAddresses", "responsibilities", "schools", "skills",
	"state", "streetAddress", "surname", "usageLocation", "userType",
}

// OktaAttributes are the built-in Okta user profile properties an attribute
// map may read. Okta profiles also carry custom attributes, so any name
// shaped like an Okta variable name is accepted as well.
var OktaAttributes = []string{
	"middleName", "honorificPrefix", "honorificSuffix", "displayName", "nickName",
	"profileUrl", "secondEmail", "mobilePhone", "primaryPhone", "streetAddress",
	"city", "state", "zipCode", "countryCode", "postalAddress", "preferredLanguage",
	"locale", "timezone", "userType", "employeeNumber", "costCenter", "division",
	"department", "managerId", "manager", "title", "organization",
}

// Azure clouds.
const (
	CloudGlobal = "global"
	CloudUSGov  = "usgov"
	CloudChina  = "china"
)

// CSV sources.
const (
	CSVRemote   = "remote"
	CSVDocument = "document"
)

// Schedule frequencies.
const (
	ScheduleOff      = "off"
	ScheduleInterval = "interval"
	ScheduleDaily    = "daily"
)

// MinIntervalMinutes is the shortest interval schedule: a full sync more
// often than this would mostly compete with itself.
const MinIntervalMinutes = 5

// MaxNameLength is the longest profile name, in characters.
const MaxNameLength = 100

// FieldError is one invalid field: Field is its dotted JSON path
// ("csv.url", "groupSync.pattern").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FieldErrors are all the problems of a profile, reported together so an
// admin fixes a form in one pass rather than one error at a time.
type FieldErrors []FieldError

func (e FieldErrors) Error() string {
	parts := make([]string, len(e))
	for i, f := range e {
		parts[i] = f.Field + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}

func (e *FieldErrors) add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Normalize fills the defaults of everything left out, so that what is
// stored and shown is what a run will do.
func (c *Config) Normalize() {
	c.Name = strings.TrimSpace(c.Name)
	if c.Enabled == nil {
		t := true
		c.Enabled = &t
	}
	if c.Groups == nil {
		c.Groups = []string{}
	}
	if c.AttributeMap == nil {
		c.AttributeMap = map[string]string{}
	}
	if c.GroupSync.Mode == "" {
		c.GroupSync.Mode = GroupSyncOff
	}
	if c.Schedule.Frequency == "" {
		c.Schedule.Frequency = ScheduleOff
	}
	if c.Schedule.Frequency == ScheduleDaily && c.Schedule.Timezone == "" {
		c.Schedule.Timezone = "UTC"
	}
	if c.Safety.MaxDisables == 0 {
		c.Safety.MaxDisables = DefaultMaxDisables
	}
	if c.Safety.MaxDisablePercent == 0 {
		c.Safety.MaxDisablePercent = DefaultMaxDisablePercent
	}
	if a := c.Azure; a != nil {
		if a.UsernameAttribute == "" {
			a.UsernameAttribute = "userPrincipalName"
		}
		if a.Cloud == "" {
			a.Cloud = CloudGlobal
		}
	}
	if o := c.Okta; o != nil {
		if o.UsernameAttribute == "" {
			o.UsernameAttribute = "login"
		}
		// A bare domain means its HTTPS origin; stored as a URL so that
		// every reader gets one form.
		if o.OrgURL = strings.TrimSpace(o.OrgURL); o.OrgURL != "" && !strings.Contains(o.OrgURL, "://") {
			o.OrgURL = "https://" + o.OrgURL
		}
	}
	if v := c.CSV; v != nil {
		if v.Source == "" {
			if v.DocumentID != "" {
				v.Source = CSVDocument
			} else {
				v.Source = CSVRemote
			}
		}
		if v.UserMatchField == "" {
			v.UserMatchField = "username"
		}
		switch v.Delimiter {
		case "":
			v.Delimiter = ","
		case "tab":
			v.Delimiter = "\t"
		}
		if v.ColumnMap == nil {
			v.ColumnMap = map[string]string{}
		}
	}
	c.csvOrgChart()
}

var (
	hhmm = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	// oktaVariable is the shape of an Okta profile attribute variable name.
	oktaVariable = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	// tenantID is a tenant GUID or domain; it becomes a path segment of the
	// token URL, so nothing else may pass.
	tenantID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)
)

// Validate reports every invalid field of a (normalized) profile, or nil.
// Secrets are part of it, so a PUT validates after MergeSecrets.
func (c *Config) Validate() FieldErrors {
	var errs FieldErrors
	switch n := utf8.RuneCountInString(strings.TrimSpace(c.Name)); {
	case n == 0:
		errs.add("name", "required")
	case n > MaxNameLength:
		errs.add("name", "at most %d characters", MaxNameLength)
	}

	blocks := map[string]bool{ProviderAzure: c.Azure != nil, ProviderOkta: c.Okta != nil, ProviderCSV: c.CSV != nil}
	switch c.Provider {
	case ProviderAzure, ProviderOkta, ProviderCSV:
		if !blocks[c.Provider] {
			errs.add(c.Provider, "provider block missing")
		}
		for _, p := range []string{ProviderAzure, ProviderOkta, ProviderCSV} {
			if p != c.Provider && blocks[p] {
				errs.add(p, "block of another provider")
			}
		}
	case "":
		errs.add("provider", "required")
	default:
		errs.add("provider", "must be one of azure, okta, csv")
	}
	switch {
	case c.Provider == ProviderAzure && c.Azure != nil:
		c.Azure.validate(&errs)
	case c.Provider == ProviderOkta && c.Okta != nil:
		c.Okta.validate(&errs)
	case c.Provider == ProviderCSV && c.CSV != nil:
		c.CSV.validate(&errs)
	}

	for i, g := range c.Groups {
		if strings.TrimSpace(g) == "" {
			errs.add(fmt.Sprintf("groups[%d]", i), "empty group id")
		}
	}
	c.validateText(&errs)
	c.validateGroupSync(&errs)
	c.validateAttributeMap(&errs)
	c.Schedule.validate(&errs)
	if c.Safety.MaxDisables < 0 {
		errs.add("safety.maxDisables", "must be 0 or more")
	}
	if c.Safety.MaxDisablePercent < 0 || c.Safety.MaxDisablePercent > 100 {
		errs.add("safety.maxDisablePercent", "must be between 0 and 100")
	}
	return errs
}

func (a *Azure) validate(errs *FieldErrors) {
	switch {
	case strings.TrimSpace(a.TenantID) == "":
		errs.add("azure.tenantId", "required")
	case !tenantID.MatchString(a.TenantID):
		errs.add("azure.tenantId", "must be a tenant id (GUID) or domain name")
	}
	if strings.TrimSpace(a.ClientID) == "" {
		errs.add("azure.clientId", "required")
	}
	if a.ClientSecret == "" {
		errs.add("azure.clientSecret", "required")
	}
	switch a.Cloud {
	case CloudGlobal, CloudUSGov, CloudChina:
	default:
		errs.add("azure.cloud", "must be one of global, usgov, china")
	}
	if a.GraphBaseURL != "" {
		checkURL(errs, "azure.graphBaseUrl", a.GraphBaseURL)
	}
	if a.AuthorityURL != "" {
		checkURL(errs, "azure.authorityUrl", a.AuthorityURL)
	}
}

func (o *Okta) validate(errs *FieldErrors) {
	if o.OrgURL == "" {
		errs.add("okta.orgUrl", "required")
	} else if u := checkURL(errs, "okta.orgUrl", o.OrgURL); u != nil {
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			errs.add("okta.orgUrl", "must be the org address only, such as https://example.okta.com")
		}
	}
	if o.APIToken == "" {
		switch {
		case o.ClientID == "" && o.PrivateKey == "":
			errs.add("okta.apiToken", "an apiToken, or a clientId with a privateKey, is required")
		case o.ClientID == "":
			errs.add("okta.clientId", "required with privateKey")
		case o.PrivateKey == "":
			errs.add("okta.privateKey", "required with clientId")
		}
	}
	if !oktaVariable.MatchString(o.UsernameAttribute) {
		errs.add("okta.usernameAttribute", "must be an Okta profile attribute name")
	}
}

func (v *CSV) validate(errs *FieldErrors) {
	switch v.Source {
	case CSVRemote:
		if v.URL == "" {
			errs.add("csv.url", "required when source is remote")
		} else {
			checkURL(errs, "csv.url", v.URL)
		}
	case CSVDocument:
		if v.DocumentID == "" {
			errs.add("csv.documentId", "required when source is document")
		}
	default:
		errs.add("csv.source", "must be remote or document")
	}
	switch v.Delimiter {
	case ",", ";", "\t", "tab":
	default:
		errs.add("csv.delimiter", `must be one of ",", ";", tab`)
	}
	if strings.TrimSpace(v.UserMatchField) == "" {
		errs.add("csv.userMatchField", "required")
	}
}

func (c *Config) validateGroupSync(errs *FieldErrors) {
	switch c.GroupSync.Mode {
	case GroupSyncOff, GroupSyncAll:
	case GroupSyncRegex:
		if c.GroupSync.Pattern == "" {
			errs.add("groupSync.pattern", "required when mode is regex")
		} else if _, err := regexp.Compile(c.GroupSync.Pattern); err != nil {
			msg := err.Error()
			var se *syntax.Error
			if errors.As(err, &se) {
				msg = string(se.Code)
			}
			errs.add("groupSync.pattern", "%s", msg)
		}
	default:
		errs.add("groupSync.mode", "must be one of off, all, regex")
	}
}

func (c *Config) validateAttributeMap(errs *FieldErrors) {
	keys := make([]string, 0, len(c.AttributeMap))
	for k := range c.AttributeMap {
		keys = append(keys, k)
	}
	sort.Strings(keys) // stable error order
	for _, k := range keys {
		field := "attributeMap." + k
		if strings.TrimSpace(k) == "" {
			errs.add("attributeMap", "empty provider attribute name")
			continue
		}
		if strings.TrimSpace(c.AttributeMap[k]) == "" {
			errs.add(field, "directory field name required")
		}
		switch c.Provider {
		case ProviderAzure:
			if !slices.Contains(AzureAttributes, k) {
				errs.add(field, "unknown Azure attribute; allowed: %s", strings.Join(AzureAttributes, ", "))
			}
		case ProviderOkta:
			if !slices.Contains(OktaAttributes, k) && !oktaVariable.MatchString(k) {
				errs.add(field, "unknown Okta attribute; allowed: %s, or a custom attribute name (a letter, then letters, digits or _)", strings.Join(OktaAttributes, ", "))
			}
		}
	}
}

func (s Schedule) validate(errs *FieldErrors) {
	switch s.Frequency {
	case ScheduleOff:
	case ScheduleInterval:
		if s.EveryMinutes < MinIntervalMinutes {
			errs.add("schedule.everyMinutes", "must be at least %d", MinIntervalMinutes)
		}
	case ScheduleDaily:
		if !hhmm.MatchString(s.Time) {
			errs.add("schedule.time", "must be HH:MM between 00:00 and 23:59")
		}
		// "Local" would mean the server's zone, which an admin cannot see.
		if _, err := time.LoadLocation(s.Timezone); err != nil || s.Timezone == "Local" {
			errs.add("schedule.timezone", "unknown time zone %q (use an IANA name such as Europe/London)", s.Timezone)
		}
	default:
		errs.add("schedule.frequency", "must be one of off, interval, daily")
	}
}

// checkURL adds an error when raw is not an absolute https URL (http only to
// a loopback host, for tests and local simulators) and returns the parsed
// URL when it is fine.
func checkURL(errs *FieldErrors, field, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the wrapper repeats the URL, which may hold credentials
		}
		errs.add(field, "invalid URL: %v", err)
		return nil
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		errs.add(field, "must be an https URL")
	case u.Hostname() == "":
		errs.add(field, "URL has no host")
	case u.User != nil:
		errs.add(field, "URL must not carry credentials (use the username and password fields)")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		errs.add(field, "http is allowed only to a loopback host (127.0.0.1, ::1, localhost); use https")
	default:
		return u
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Maximum lengths of profile text, in characters (API.md, "Limits"). A
// field not listed here has DefaultMaxText.
const (
	DefaultMaxText   = 256
	MaxURLLength     = 2048
	MaxSecretLength  = 1024
	MaxPrivateKey    = 16384
	MaxPatternLength = 1000
	MaxGroups        = 1000
	MaxMapEntries    = 200
	maxMapTextLength = 256
	maxGroupIDLength = 256
)

// textLimits are the fields whose maximum is not DefaultMaxText.
var textLimits = map[string]int{
	"name":               MaxNameLength,
	"azure.graphBaseUrl": MaxURLLength, "azure.authorityUrl": MaxURLLength,
	"okta.orgUrl": MaxURLLength, "csv.url": MaxURLLength,
	"azure.clientSecret": MaxSecretLength, "okta.apiToken": MaxSecretLength,
	"csv.password": MaxSecretLength, "csv.defaultPassword": MaxSecretLength,
	"okta.privateKey":   MaxPrivateKey,
	"groupSync.pattern": MaxPatternLength,
}

// multilineFields may hold line breaks (a PEM key) or are a tab
// (the CSV delimiter).
var multilineFields = map[string]bool{"okta.privateKey": true, "csv.delimiter": true}

// validateText refuses control characters and overlong values in every
// text of the profile, naming the field: they end up in provider requests,
// the audit log and the admin page.
func (c *Config) validateText(errs *FieldErrors) {
	check := func(field, v string, max int) {
		if !utf8.ValidString(v) {
			errs.add(field, "is not valid UTF-8")
			return
		}
		for i, r := range []rune(v) {
			if unicode.IsControl(r) && !(multilineFields[field] && (r == '\t' || r == '\n' || r == '\r')) {
				errs.add(field, "must not contain control characters (%U at character %d)", r, i+1)
				return
			}
		}
		if field == "name" {
			return // Validate says "at most 100 characters" already
		}
		if n := utf8.RuneCountInString(v); n > max {
			errs.add(field, "at most %d characters (got %d)", max, n)
		}
	}
	walkText(reflect.ValueOf(c).Elem(), "", func(field, v string) {
		max, ok := textLimits[field]
		if !ok {
			max = DefaultMaxText
		}
		check(field, v, max)
	})
	if len(c.Groups) > MaxGroups {
		errs.add("groups", "at most %d groups", MaxGroups)
	}
	for i, g := range c.Groups {
		check(fmt.Sprintf("groups[%d]", i), g, maxGroupIDLength)
	}
	for _, m := range []struct {
		field string
		v     map[string]string
	}{{"attributeMap", c.AttributeMap}, {"csv.columnMap", c.columnMap()}} {
		if len(m.v) > MaxMapEntries {
			errs.add(m.field, "at most %d entries", MaxMapEntries)
		}
		keys := make([]string, 0, len(m.v))
		for k := range m.v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			field := m.field + "." + strings.ToValidUTF8(k, "\uFFFD")
			check(field, k, maxMapTextLength)
			check(field, m.v[k], maxMapTextLength)
		}
	}
}

func (c *Config) columnMap() map[string]string {
	if c.CSV == nil {
		return nil
	}
	return c.CSV.ColumnMap
}

// walkText calls fn with the dotted JSON path and value of every string
// field of v (a struct), through nested structs and pointers to them.
func walkText(v reflect.Value, prefix string, fn func(field, v string)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		}
		switch fv.Kind() {
		case reflect.String:
			fn(prefix+name, fv.String())
		case reflect.Struct:
			walkText(fv, prefix+name+".", fn)
		}
	}
}
