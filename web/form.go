package web

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync/profile"
)

// The profile form uses the dotted JSON paths of profile.Config as input
// names ("csv.url", "schedule.everyMinutes"), so a profile.FieldError lands
// beside its input with no table in between.

// mapRow is one row of an attribute or column map.
type mapRow struct{ From, To string }

// profileForm is the editor's model. It never holds a secret: it is made
// from the API's redacted view of a profile, and the secrets typed into a
// posted form go to the service without being kept here.
type profileForm struct {
	ID           string
	DirectoryKey string
	New          bool
	Cfg          profile.Config // secret fields always empty
	// Set tells which secrets are stored, by path ("csv.password").
	Set        map[string]bool
	AttrRows   []mapRow
	ColumnRows []mapRow
	Errors     map[string]string
	// Unplaced are errors of fields the form has no input for.
	Unplaced []profile.FieldError
	// Typed is set when a form came back with errors after secrets were
	// typed into it: they were not kept and must be typed again.
	Typed bool
	// NextRunAt is the schedule's next run of the stored profile.
	NextRunAt *time.Time
}

// emptyRows is how many blank rows a map offers for new entries (admin.js
// adds more on demand).
const emptyRows = 3

// formFromView makes the form of a profile as the API shows it (redacted).
// Unknown keys of the view (id, lastRun, "passwordSet", …) are ignored by
// the lenient decoding, and the view carries no secret to decode.
func formFromView(view map[string]any) (*profileForm, error) {
	raw, err := json.Marshal(view)
	if err != nil {
		return nil, fmt.Errorf("profile view: %w", err)
	}
	f := &profileForm{Set: map[string]bool{}, Errors: map[string]string{}}
	if err := json.Unmarshal(raw, &f.Cfg); err != nil {
		return nil, fmt.Errorf("profile view: %w", err)
	}
	f.ID, _ = view["id"].(string)
	f.DirectoryKey, _ = view["directoryKey"].(string)
	for _, p := range profile.SecretPaths() {
		block, field, _ := strings.Cut(p, ".")
		if m, ok := view[block].(map[string]any); ok {
			if set, _ := m[field+"Set"].(bool); set {
				f.Set[p] = true
			}
		}
	}
	// The query of a signed CSV URL is a secret: the view shows the URL
	// without it, and says whether one is stored.
	if m, ok := view["csv"].(map[string]any); ok {
		if set, _ := m["urlQuerySet"].(bool); set {
			f.Set["csv.urlQuery"] = true
		}
	}
	f.fill()
	return f, nil
}

// newForm is the form of a new profile of a provider.
func newForm(provider string) *profileForm {
	t := true
	f := &profileForm{New: true, Set: map[string]bool{}, Errors: map[string]string{},
		Cfg: profile.Config{Provider: provider, Enabled: &t}}
	switch provider {
	case profile.ProviderCSV:
		f.Cfg.CSV = &profile.CSV{Source: profile.CSVDocument}
	case profile.ProviderAzure:
		f.Cfg.Azure = &profile.Azure{}
	case profile.ProviderOkta:
		f.Cfg.Okta = &profile.Okta{}
	}
	f.Cfg.Normalize() // the defaults a save would fill, shown up front
	f.fill()
	return f
}

// fill derives the map rows from the config.
func (f *profileForm) fill() {
	f.AttrRows = rowsOf(f.Cfg.AttributeMap)
	if f.Cfg.CSV != nil {
		f.ColumnRows = rowsOf(f.Cfg.CSV.ColumnMap)
	}
}

func rowsOf(m map[string]string) []mapRow {
	rows := make([]mapRow, 0, len(m)+emptyRows)
	for k, v := range m {
		rows = append(rows, mapRow{From: k, To: v})
	}
	slices.SortFunc(rows, func(a, b mapRow) int { return strings.Compare(a.From, b.From) })
	for range emptyRows {
		rows = append(rows, mapRow{})
	}
	return rows
}

// setErrors places field errors beside their inputs.
func (f *profileForm) setErrors(fe profile.FieldErrors) {
	for _, e := range fe {
		field := e.Field
		// A map entry's error goes to the map's rows ("attributeMap.dept").
		for _, m := range []string{"attributeMap", "csv.columnMap"} {
			if strings.HasPrefix(field, m+".") {
				e.Message = strings.TrimPrefix(field, m+".") + ": " + e.Message
				field = m
			}
		}
		if strings.HasPrefix(field, "groups[") {
			field = "groups"
		}
		if !formFields[field] {
			f.Unplaced = append(f.Unplaced, e)
			continue
		}
		if prev, ok := f.Errors[field]; ok {
			f.Errors[field] = prev + "; " + e.Message
		} else {
			f.Errors[field] = e.Message
		}
	}
}

// formFields are the paths that have an input (or a group of inputs) on
// the form, so that an error on any other path is still shown, at the top.
var formFields = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range []string{
		"name", "enabled", "groups", "groupSync.mode", "groupSync.pattern", "attributeMap", "populateOrgChart",
		"schedule.frequency", "schedule.everyMinutes", "schedule.time", "schedule.timezone",
		"safety.maxDisables", "safety.maxDisablePercent",
		"azure.tenantId", "azure.clientId", "azure.clientSecret", "azure.cloud", "azure.graphBaseUrl",
		"azure.authorityUrl", "azure.includeMailEnabledSecurityGroups", "azure.usernameAttribute",
		"okta.orgUrl", "okta.apiToken", "okta.clientId", "okta.privateKey", "okta.keyId", "okta.appId",
		"okta.usernameAttribute",
		"csv.source", "csv.url", "csv.username", "csv.password", "csv.documentId", "csv.userMatchField",
		"csv.managerField", "csv.defaultPassword", "csv.columnMap", "csv.delimiter", "csv.groupsField",
	} {
		m[p] = true
	}
	return m
}()

// postedProfile is a profile form as posted: the config to show again
// (without secrets) and the JSON body for the service (with them).
type postedProfile struct {
	form *profileForm
	body []byte
}

// readProfileForm overlays a posted form on base, the stored profile's
// form (or a new one), so that a field this form does not show is kept as
// stored. Values that are not even of the right type (a number field with
// letters) are field errors here; everything else is for the service.
func readProfileForm(base *profileForm, v url.Values) (*postedProfile, profile.FieldErrors) {
	f := *base
	f.Errors, f.Unplaced = map[string]string{}, nil
	cfg := f.Cfg // shallow: the blocks and maps below are replaced, not edited
	var errs profile.FieldErrors
	num := func(path string) int {
		s := strings.TrimSpace(v.Get(path))
		if s == "" {
			return 0
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, profile.FieldError{Field: path, Message: "must be a whole number"})
		}
		return n
	}
	str := func(path string) string { return strings.TrimSpace(v.Get(path)) }
	on := func(path string) bool { return v.Get(path) == "on" }

	cfg.Name = v.Get("name")
	enabled := on("enabled")
	cfg.Enabled = &enabled
	secrets := map[string]string{}
	var cleared []string
	secret := func(path string) {
		if s := v.Get(path); s != "" {
			secrets[path] = s
		} else if on(path + ".clear") {
			cleared = append(cleared, path)
		}
	}

	switch cfg.Provider {
	case profile.ProviderAzure:
		a := profile.Azure{}
		if cfg.Azure != nil {
			a = *cfg.Azure
		}
		a.TenantID, a.ClientID, a.Cloud = str("azure.tenantId"), str("azure.clientId"), str("azure.cloud")
		a.GraphBaseURL, a.AuthorityURL = str("azure.graphBaseUrl"), str("azure.authorityUrl")
		a.UsernameAttribute = str("azure.usernameAttribute")
		a.IncludeMailEnabledSecurityGroups = on("azure.includeMailEnabledSecurityGroups")
		secret("azure.clientSecret")
		cfg.Azure = &a
	case profile.ProviderOkta:
		o := profile.Okta{}
		if cfg.Okta != nil {
			o = *cfg.Okta
		}
		o.OrgURL, o.ClientID, o.KeyID = str("okta.orgUrl"), str("okta.clientId"), str("okta.keyId")
		o.AppID, o.UsernameAttribute = str("okta.appId"), str("okta.usernameAttribute")
		secret("okta.apiToken")
		secret("okta.privateKey")
		cfg.Okta = &o
	case profile.ProviderCSV:
		c := profile.CSV{}
		if cfg.CSV != nil {
			c = *cfg.CSV
		}
		c.Source, c.URL, c.Username = str("csv.source"), str("csv.url"), str("csv.username")
		c.DocumentID, c.UserMatchField = str("csv.documentId"), str("csv.userMatchField")
		c.ManagerField, c.GroupsField = str("csv.managerField"), str("csv.groupsField")
		c.Delimiter = v.Get("csv.delimiter") // "\t" must not be trimmed away
		if c.Source == profile.CSVDocument {
			c.URL, c.Username = "", ""
		} else {
			c.DocumentID = ""
		}
		secret("csv.password")
		secret("csv.defaultPassword")
		var rows []mapRow
		c.ColumnMap, rows = readMap(v, "csv.columnMap", &errs)
		cfg.CSV = &c
		f.ColumnRows = rows
	}

	if cfg.Provider != profile.ProviderCSV {
		cfg.Groups = nil
		for _, g := range v["groups"] {
			if g = strings.TrimSpace(g); g != "" && !slices.Contains(cfg.Groups, g) {
				cfg.Groups = append(cfg.Groups, g)
			}
		}
	}
	cfg.GroupSync = profile.GroupSync{Mode: str("groupSync.mode"), Pattern: v.Get("groupSync.pattern")}
	if cfg.GroupSync.Mode != profile.GroupSyncRegex {
		cfg.GroupSync.Pattern = ""
	}
	cfg.AttributeMap, f.AttrRows = readMap(v, "attributeMap", &errs)
	cfg.PopulateOrgChart = on("populateOrgChart")

	// Only the frequency's own settings are kept, so that what is stored
	// is what the schedule does.
	cfg.Schedule = profile.Schedule{Frequency: str("schedule.frequency")}
	switch cfg.Schedule.Frequency {
	case profile.ScheduleInterval:
		cfg.Schedule.EveryMinutes = num("schedule.everyMinutes")
	case profile.ScheduleDaily:
		cfg.Schedule.Time, cfg.Schedule.Timezone = str("schedule.time"), str("schedule.timezone")
	}
	cfg.Safety = profile.Safety{MaxDisables: num("safety.maxDisables"), MaxDisablePercent: num("safety.maxDisablePercent")}

	f.Cfg = cfg
	f.Typed = len(secrets) > 0
	for _, p := range cleared {
		f.Set[p] = false
	}
	body, err := profileBody(&cfg, secrets, cleared)
	if err != nil {
		errs = append(errs, profile.FieldError{Message: err.Error()})
	}
	return &postedProfile{form: &f, body: body}, errs
}

// readMap reads the rows name.from / name.to into a map, with the rows to
// show again (blank ones added).
func readMap(v url.Values, name string, errs *profile.FieldErrors) (map[string]string, []mapRow) {
	from, to := v[name+".from"], v[name+".to"]
	m := map[string]string{}
	var rows []mapRow
	for i := range max(len(from), len(to)) {
		var r mapRow
		if i < len(from) {
			r.From = strings.TrimSpace(from[i])
		}
		if i < len(to) {
			r.To = strings.TrimSpace(to[i])
		}
		if r.From == "" && r.To == "" {
			continue
		}
		rows = append(rows, r)
		if _, dup := m[r.From]; dup {
			*errs = append(*errs, profile.FieldError{Field: name + "." + r.From, Message: "mapped twice"})
			continue
		}
		m[r.From] = r.To
	}
	for range emptyRows {
		rows = append(rows, mapRow{})
	}
	return m, rows
}

// profileBody is the JSON the API would receive for this form: the config,
// the secrets typed (a secret left blank is omitted, so the stored one is
// kept) and "" for each secret to clear.
func profileBody(cfg *profile.Config, secrets map[string]string, cleared []string) ([]byte, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	put := func(path, val string) {
		block, field, _ := strings.Cut(path, ".")
		if m, ok := doc[block].(map[string]any); ok {
			m[field] = val
		}
	}
	for p, s := range secrets {
		put(p, s)
	}
	for _, p := range cleared {
		put(p, "")
	}
	return json.Marshal(doc)
}
