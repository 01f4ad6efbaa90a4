package csv

import (
	"strings"

	"github.com/usersync/usersync/profile"
)

// Name is the provider's name in profiles ({"provider":"csv","csv":{…}}).
const Name = "csv"

func init() { profile.Register(Provider) }

// Where a profile's file comes from.
const (
	SourceRemote   = "remote"
	SourceDocument = "document"
)

// Provider is a CSV file as profiles know it: its block, its checks and
// its inputs on the admin page. A profile reads the whole file: it selects
// no groups.
var Provider = profile.Provider{
	Name:           Name,
	DisplayName:    "CSV",
	Description:    "a CSV file, uploaded, or downloaded over HTTPS",
	New:            func() profile.Block { return &Profile{} },
	WholeSource:    true,
	AttributeLabel: "CSV column",
	AttributeHelp:  "Copy CSV columns into directory attributes: type the column name as it appears in the header row.",
	Fields: []profile.Field{
		{Name: "source", Label: "Where the file comes from", Kind: profile.KindRadio, Options: []profile.Option{
			{Value: SourceDocument, Label: "An uploaded document"},
			{Value: SourceRemote, Label: "A file downloaded over HTTPS at every run"}}},
		{Name: "documentId", Label: "Document", Kind: profile.KindDocument, ShowFor: "source=" + SourceDocument},
		{Name: "url", Label: "File URL", Kind: profile.KindText, ShowFor: "source=" + SourceRemote,
			Placeholder: "https://files.example.com/people.csv",
			Help:        "The query of the URL (a signature such as ?sig=…) is kept secret and not shown once saved."},
		{Name: "username", Label: "Basic auth username", Kind: profile.KindText, ShowFor: "source=" + SourceRemote},
		{Name: "password", Label: "Basic auth password", Kind: profile.KindPassword, ShowFor: "source=" + SourceRemote},
		{Name: "userMatchField", Label: "Username column (also the identity of a row)", Kind: profile.KindText},
		{Name: "managerField", Kind: profile.KindText,
			Label: "Manager column (the manager's username; blank = none; setting it turns the org chart on)"},
		{Name: "groupsField", Label: "Groups column (group names separated by “;”; blank = none)", Kind: profile.KindText},
		{Name: "delimiter", Label: "Delimiter", Kind: profile.KindSelect, Options: []profile.Option{
			{Value: ",", Label: "comma (,)"}, {Value: ";", Label: "semicolon (;)"},
			{Value: "tab", Label: "tab", Aliases: []string{"\t"}}}},
		{Name: "defaultPassword", Label: "Default password (for rows without a password column)", Kind: profile.KindPassword},
		{Name: "columnMap", Label: "Column map", Kind: profile.KindMap, Section: profile.SectionMapping,
			FromLabel: "CSV column", ToLabel: "Directory field",
			Help: "Maps a CSV column to any directory field, including username, firstName, lastName, email and " +
				"password, when the header does not use those names. Where both maps name a column, this one wins."},
	},
}

// Profile is the "csv" block of a profile. The URL's query is a secret:
// signed URLs carry their credential there (?sig=…).
type Profile struct {
	Source          string            `json:"source"` // remote | document
	URL             string            `json:"url" secret:"query" maxlen:"2048"`
	Username        string            `json:"username"`
	Password        string            `json:"password,omitempty" secret:"true" maxlen:"1024"`
	DocumentID      string            `json:"documentId"`
	UserMatchField  string            `json:"userMatchField"`
	ManagerField    string            `json:"managerField"`
	DefaultPassword string            `json:"defaultPassword,omitempty" secret:"local" maxlen:"1024"`
	ColumnMap       map[string]string `json:"columnMap"`
	Delimiter       string            `json:"delimiter" multiline:"true"`
	GroupsField     string            `json:"groupsField"`
}

// Normalize fills the defaults, and turns the org chart on for a profile
// that names a manager column: the column has no other use, and a run that
// read it but linked no manager (the org chart being off by default) would
// say "succeeded" while ignoring what the admin asked for. An admin who
// wants no managers clears the column. Opening a stored profile applies it
// too, so that a profile stored before the rule links its managers.
func (p *Profile) Normalize(c *profile.Config) {
	if p.Source == "" {
		if p.DocumentID != "" {
			p.Source = SourceDocument
		} else {
			p.Source = SourceRemote
		}
	}
	if p.UserMatchField == "" {
		p.UserMatchField = "username"
	}
	switch p.Delimiter {
	case "":
		p.Delimiter = ","
	case "tab":
		p.Delimiter = "\t"
	}
	if p.ColumnMap == nil {
		p.ColumnMap = map[string]string{}
	}
	if strings.TrimSpace(p.ManagerField) != "" {
		c.PopulateOrgChart = true
	}
}

// Validate checks the block.
func (p *Profile) Validate(*profile.Config) profile.FieldErrors {
	var errs profile.FieldErrors
	switch p.Source {
	case SourceRemote:
		if p.URL == "" {
			errs.Add("csv.url", "required when source is remote")
		} else {
			profile.CheckURL(&errs, "csv.url", p.URL)
		}
	case SourceDocument:
		if p.DocumentID == "" {
			errs.Add("csv.documentId", "required when source is document")
		}
	default:
		errs.Add("csv.source", "must be remote or document")
	}
	switch p.Delimiter {
	case ",", ";", "\t", "tab":
	default:
		errs.Add("csv.delimiter", `must be one of ",", ";", tab`)
	}
	if strings.TrimSpace(p.UserMatchField) == "" {
		errs.Add("csv.userMatchField", "required")
	}
	return errs
}

// Endpoints is the remote file's address, without its query (a secret of
// its own); a document has none.
func (p *Profile) Endpoints() []profile.Endpoint {
	if p.Source == SourceDocument {
		return nil
	}
	return []profile.Endpoint{{Field: "url", Value: profile.WithoutQuery(p.URL)}}
}

// Note explains the org chart setting the manager column decides.
func (p *Profile) Note(field string) string {
	if field != "populateOrgChart" {
		return ""
	}
	if p.ManagerField != "" {
		return "On, because the manager column `" + p.ManagerField + "` is set: a CSV profile with a manager " +
			"column always sets managers. Clear the column (Connection) to turn it off."
	}
	return "A CSV profile needs a manager column (Connection) for this; setting one turns it on."
}

// RunsReadACopy says a remote file is copied for each run, which reads the
// copy; an uploaded document is read as it is.
func (p *Profile) RunsReadACopy() bool { return p.Source != SourceDocument }
