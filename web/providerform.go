package web

import (
	"html/template"
	"slices"
	"strings"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
)

// The provider's part of the profile editor is drawn from what the
// provider registered (profile.Provider.Fields): nothing here or in the
// templates names a provider.

// providerInput is one input of the provider's block, ready to draw.
type providerInput struct {
	profile.Field
	Path, ID string
	Value    string
	Checked  bool
	Error    string
	Options  []inputOption
	// Secret is set for a secret's input, which never shows its value.
	Secret *secretInput
	// QueryHelp is set for a URL whose query is a secret: whether one is
	// stored.
	QueryHelp bool
	QuerySet  bool
	Map       *mapTable
	Documents []directory.Document
	// ShowFor is the data-show-for of the input's wrapper: the field and
	// value it is shown for ("csv.source=document"), or "".
	ShowFor string
}

type inputOption struct {
	Value, Label string
	Selected     bool
}

// inputGroup is a run of inputs under one collapsed heading ("" for none).
type inputGroup struct {
	Title  string
	Open   bool
	Inputs []providerInput
}

// providerSections are the provider's inputs by section of the page.
type providerSections struct {
	Connection, Directory, Mapping []inputGroup
}

// providerInputs lays out the inputs of the form's provider block.
func providerInputs(f *profileForm, docs []directory.Document) providerSections {
	var out providerSections
	prov, ok := profile.Lookup(f.Cfg.Provider)
	if !ok || f.Cfg.Block == nil {
		return out
	}
	doc := blockFields(&f.Cfg)
	for _, fd := range prov.Fields {
		path := fd.Path(prov.Name)
		in := providerInput{Field: fd, Path: path, ID: fieldID(path), Value: fieldText(doc, fd.Name), Error: f.Errors[path]}
		if fd.ShowFor != "" {
			in.ShowFor = prov.Name + "." + fd.ShowFor
		}
		switch profile.SecretKind(path) {
		case "true", "local":
			// A PEM key has lines, which a one-line input would drop.
			in.Secret = &secretInput{Path: path, Label: fd.Label, Set: f.Set[path], Error: f.Errors[path],
				Multiline: fd.Kind == profile.KindTextarea}
			in.Value = ""
		case "query":
			in.QueryHelp, in.QuerySet = true, f.Set[path+"Query"]
		}
		switch fd.Kind {
		case profile.KindCheckbox:
			in.Checked, _ = doc[fd.Name].(bool)
		case profile.KindSelect, profile.KindRadio:
			for _, o := range fd.Options {
				in.Options = append(in.Options, inputOption{Value: o.Value, Label: o.Label,
					Selected: in.Value == o.Value || slices.Contains(o.Aliases, in.Value)})
			}
		case profile.KindMap:
			in.Map = &mapTable{Name: path, Prefix: fieldID(path), FromLabel: fd.FromLabel, ToLabel: fd.ToLabel,
				Rows: f.MapRows[path]}
		case profile.KindDocument:
			in.Documents = docs
		}
		section := &out.Connection
		switch fd.Section {
		case profile.SectionDirectory:
			section = &out.Directory
		case profile.SectionMapping:
			section = &out.Mapping
		}
		n := len(*section)
		if n == 0 || fd.Group == "" || (*section)[n-1].Title != fd.Group {
			*section = append(*section, inputGroup{Title: fd.Group})
			n++
		}
		g := &(*section)[n-1]
		g.Inputs = append(g.Inputs, in)
		if g.Title != "" && (in.Value != "" || in.Checked || in.Error != "" || (in.Secret != nil && in.Secret.Set)) {
			g.Open = true
		}
	}
	return out
}

// blockNote is what the provider's block says beside a profile field, with
// `code` shown as code.
func blockNote(c profile.Config, field string) template.HTML {
	nb, ok := c.Block.(profile.NotedBlock)
	if !ok {
		return ""
	}
	parts := strings.Split(nb.Note(field), "`")
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 1 {
			b.WriteString("<code>" + template.HTMLEscapeString(p) + "</code>")
		} else {
			b.WriteString(template.HTMLEscapeString(p))
		}
	}
	return template.HTML(b.String()) //nolint:gosec // every part is escaped above
}
