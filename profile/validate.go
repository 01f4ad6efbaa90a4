package profile

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
	if c.Block != nil {
		c.Block.Normalize(c)
	}
}

var hhmm = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

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

	prov, known := Lookup(c.Provider)
	switch {
	case c.Provider == "":
		errs.add("provider", "required")
	case !known:
		errs.add("provider", "must be one of %s", strings.Join(ProviderNames(), ", "))
	case c.Block == nil:
		errs.add(c.Provider, "provider block missing")
	}
	for _, p := range c.foreign {
		if known {
			errs.add(p, "block of another provider")
		}
	}
	if known && c.Block != nil {
		if reflect.TypeOf(c.Block) != reflect.TypeOf(prov.New()) { // a Config built in Go with the wrong block
			errs.add(c.Provider, "block of another provider")
		} else {
			errs = append(errs, c.Block.Validate(c)...)
		}
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

// textLimits are the profile's own fields whose maximum is not
// DefaultMaxText; a block's are its `maxlen` tags.
var textLimits = map[string]int{"name": MaxNameLength, "groupSync.pattern": MaxPatternLength}

// validateText refuses control characters and overlong values in every
// text of the profile, naming the field: they end up in provider requests,
// the audit log and the admin page.
func (c *Config) validateText(errs *FieldErrors) {
	check := func(field, v string, max int, multiline bool) {
		if !utf8.ValidString(v) {
			errs.add(field, "is not valid UTF-8")
			return
		}
		for i, r := range []rune(v) {
			if unicode.IsControl(r) && !(multiline && (r == '\t' || r == '\n' || r == '\r')) {
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
		check(field, v, max, false)
	})
	eachField(c, func(f blockField, path string, v reflect.Value) {
		max := f.maxLen
		if max == 0 {
			max = DefaultMaxText
		}
		check(path, v.String(), max, f.multiline)
	})
	if len(c.Groups) > MaxGroups {
		errs.add("groups", "at most %d groups", MaxGroups)
	}
	for i, g := range c.Groups {
		check(fmt.Sprintf("groups[%d]", i), g, maxGroupIDLength, false)
	}
	maps := []struct {
		field string
		v     map[string]string
	}{{"attributeMap", c.AttributeMap}}
	if v := blockValue(c.Block); v.IsValid() && v.Kind() == reflect.Struct {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if m, ok := v.Field(i).Interface().(map[string]string); ok && f.IsExported() {
				maps = append(maps, struct {
					field string
					v     map[string]string
				}{c.Provider + "." + jsonName(f), m})
			}
		}
	}
	for _, m := range maps {
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
			check(field, k, maxMapTextLength, false)
			check(field, m.v[k], maxMapTextLength, false)
		}
	}
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
