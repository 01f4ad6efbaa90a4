package web

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/service"
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
	Set      map[string]bool
	AttrRows []mapRow
	// MapRows are the rows of the provider's map fields, by path
	// ("csv.columnMap").
	MapRows map[string][]mapRow
	Errors  map[string]string
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

// formFromView makes the form of a profile as reads show it (redacted).
// The view's "passwordSet" and the like are ignored by the lenient
// decoding, and the view carries no secret to decode.
func formFromView(pv *service.ProfileView) (*profileForm, error) {
	view := pv.Config
	raw, err := json.Marshal(view)
	if err != nil {
		return nil, fmt.Errorf("profile view: %w", err)
	}
	f := &profileForm{Set: map[string]bool{}, Errors: map[string]string{}}
	if err := json.Unmarshal(raw, &f.Cfg); err != nil {
		return nil, fmt.Errorf("profile view: %w", err)
	}
	f.ID, f.DirectoryKey, f.NextRunAt = pv.Profile.ID, pv.Profile.DirectoryKey, pv.NextRunAt
	block, _ := view[f.Cfg.Provider].(map[string]any)
	if prov, ok := profile.Lookup(f.Cfg.Provider); ok && block != nil {
		for _, fd := range prov.Fields {
			path := fd.Path(prov.Name)
			marker := fd.Name + "Set"
			if profile.SecretKind(path) == "query" {
				// The query of a signed URL is a secret: the view shows the
				// URL without it, and says whether one is stored.
				path, marker = path+"Query", fd.Name+"QuerySet"
			}
			if set, _ := block[marker].(bool); set {
				f.Set[path] = true
			}
		}
	}
	f.fill()
	return f, nil
}

// newForm is the form of a new profile of a registered provider: its
// block with the defaults a save would fill, and each choice among
// options of its own (a CSV's source) at the first.
func newForm(prov *profile.Provider) *profileForm {
	t := true
	f := &profileForm{New: true, Set: map[string]bool{}, Errors: map[string]string{},
		Cfg: profile.Config{Provider: prov.Name, Enabled: &t}}
	doc := map[string]any{}
	for _, fd := range prov.Fields {
		if fd.Kind == profile.KindRadio && len(fd.Options) > 0 {
			doc[fd.Name] = fd.Options[0].Value
		}
	}
	f.Cfg.Block = blockOf(prov, doc)
	f.Cfg.Normalize() // the defaults a save would fill, shown up front
	f.fill()
	return f
}

// blockOf makes a provider's block from its JSON fields; the form's values
// are all strings, booleans and maps, which a block decodes alike.
func blockOf(prov *profile.Provider, doc map[string]any) profile.Block {
	blk := prov.New()
	if b, err := json.Marshal(doc); err == nil {
		_ = json.Unmarshal(b, blk) // a value of the wrong type is left empty, for Validate to name
	}
	return blk
}

// blockFields is the profile's block as JSON fields, secrets left out
// (they are empty in a form).
func blockFields(c *profile.Config) map[string]any {
	out := map[string]any{}
	if c.Block == nil {
		return out
	}
	if b, err := json.Marshal(c.Block); err == nil {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

// fieldText is a block field's value as an input shows it.
func fieldText(doc map[string]any, name string) string {
	switch v := doc[name].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// fill derives the map rows from the config.
func (f *profileForm) fill() {
	f.AttrRows = rowsOf(f.Cfg.AttributeMap)
	f.MapRows = map[string][]mapRow{}
	prov, ok := profile.Lookup(f.Cfg.Provider)
	if !ok {
		return
	}
	doc := blockFields(&f.Cfg)
	for _, fd := range prov.Fields {
		if fd.Kind != profile.KindMap {
			continue
		}
		m := map[string]string{}
		if raw, ok := doc[fd.Name].(map[string]any); ok {
			for k, v := range raw {
				m[k] = fmt.Sprint(v)
			}
		}
		f.MapRows[fd.Path(prov.Name)] = rowsOf(m)
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
	prov, _ := profile.Lookup(f.Cfg.Provider)
	maps := []string{"attributeMap"}
	placed := func(string) bool { return false }
	if prov != nil {
		for _, fd := range prov.Fields {
			if fd.Kind == profile.KindMap {
				maps = append(maps, fd.Path(prov.Name))
			}
		}
		placed = func(path string) bool {
			return slices.ContainsFunc(prov.Fields, func(fd profile.Field) bool { return fd.Path(prov.Name) == path })
		}
	}
	for _, e := range fe {
		field := e.Field
		// A map entry's error goes to the map's rows ("attributeMap.dept").
		for _, m := range maps {
			if strings.HasPrefix(field, m+".") {
				e.Message = strings.TrimPrefix(field, m+".") + ": " + e.Message
				field = m
			}
		}
		if strings.HasPrefix(field, "groups[") {
			field = "groups"
		}
		if !formFields[field] && !placed(field) {
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

// formFields are the profile's own paths that have an input (or a group
// of inputs) on the form, so that an error on any other path (nor a
// field of the provider's) is still shown, at the top.
var formFields = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range []string{
		"name", "enabled", "groups", "groupSync.mode", "groupSync.pattern", "attributeMap", "populateOrgChart",
		"schedule.frequency", "schedule.everyMinutes", "schedule.time", "schedule.timezone",
		"safety.maxDisables", "safety.maxDisablePercent",
	} {
		m[p] = true
	}
	return m
}()

// postedProfile is a profile form as posted: the config to show again
// (without secrets) and the profile for the service (with them).
type postedProfile struct {
	form  *profileForm
	input *profile.Config
}

// readProfileForm overlays a posted form on base, the stored profile's
// form (or a new one), so that a field this form does not show is kept as
// stored. Values that are not even of the right type (a number field with
// letters) are field errors here; everything else is for the service.
func readProfileForm(base *profileForm, v url.Values) (*postedProfile, profile.FieldErrors) {
	f := *base
	f.Errors, f.Unplaced = map[string]string{}, nil
	f.MapRows = maps.Clone(base.MapRows)
	cfg := f.Cfg // shallow: the block and maps below are replaced, not edited
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

	prov, known := profile.Lookup(cfg.Provider)
	if known {
		doc := blockFields(&cfg)
		for _, fd := range prov.Fields {
			path := fd.Path(prov.Name)
			if isSecret(path) {
				secret(path)
				continue
			}
			switch fd.Kind {
			case profile.KindCheckbox:
				doc[fd.Name] = on(path)
			case profile.KindMap:
				m, rows := readMap(v, path, &errs)
				doc[fd.Name] = m
				f.MapRows[path] = rows
			case profile.KindSelect, profile.KindRadio:
				doc[fd.Name] = v.Get(path) // a tab delimiter must not be trimmed away
			default:
				doc[fd.Name] = str(path)
			}
		}
		// What a choice hides is not in use: stored empty, so that what is
		// stored is what a run does. Secrets stay, for a switch back.
		for _, fd := range prov.Fields {
			if fd.Kind == profile.KindText || fd.Kind == profile.KindDocument || fd.Kind == profile.KindTextarea {
				if !isSecret(fd.Path(prov.Name)) && !fd.Shown(func(n string) string { return fieldText(doc, n) }) {
					doc[fd.Name] = ""
				}
			}
		}
		cfg.Block = blockOf(prov, doc)
	}

	if !known || !prov.WholeSource {
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
	return &postedProfile{form: &f, input: profileInput(&cfg, secrets, cleared)}, errs
}

// isSecret reports whether a block field is a secret with an input of its
// own (a URL whose query is secret is an ordinary input).
func isSecret(path string) bool {
	k := profile.SecretKind(path)
	return k != "" && k != "query"
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

// profileInput is the profile the service receives for this form: a copy
// of the form's config (which never holds a secret) with the secrets
// typed, and "" for each secret to clear; a secret left blank is not set,
// so the stored one is kept.
func profileInput(cfg *profile.Config, secrets map[string]string, cleared []string) *profile.Config {
	in := cfg.Clone()
	for p, s := range secrets {
		in.SetSecret(p, s)
	}
	for _, p := range cleared {
		in.SetSecret(p, "")
	}
	return in
}
