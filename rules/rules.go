// Package rules holds the sync rules of DESIGN.md that need no database:
// which records are usable, when the accidental-delete guard and the licence
// stop a run, which provider groups are synced, what changed in a user. They
// are pure functions so that each rule has a test of its own; the
// set-based SQL in package directory does the rest.
package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"regexp"
	"sort"
	"strings"
)

// Record is the part of a provider user the rules look at.
type Record struct {
	Username   string
	FirstName  string
	LastName   string
	Email      string
	ManagerRef string
	Attributes map[string]string
}

// MissingFields names the required fields a record lacks, in a fixed order.
func MissingFields(r Record) []string {
	var out []string
	for _, f := range []struct{ name, v string }{
		{"username", r.Username}, {"firstName", r.FirstName}, {"lastName", r.LastName}, {"email", r.Email},
	} {
		if strings.TrimSpace(f.v) == "" {
			out = append(out, f.name)
		}
	}
	return out
}

// ValidEmail accepts a bare address (no display name, no angle brackets)
// with a dot in its domain.
func ValidEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndex(s, "@")
	return at > 0 && strings.Contains(s[at+1:], ".") && !strings.HasSuffix(s, ".")
}

// Invalid says why a record cannot be synced, or "" when it can: text
// the directory cannot hold (a control character, a value longer than its
// maximum; see TextProblem), then the required fields (username, first
// name, last name, valid email). The stager calls it for every record of
// every provider, so a bad record is skipped with its reason rather than
// failing the run.
func Invalid(r Record) string {
	if p := textProblems(r); p != "" {
		return p
	}
	if m := MissingFields(r); len(m) > 0 {
		if len(m) == 1 {
			return "missing required field " + m[0]
		}
		return "missing required fields " + strings.Join(m, ", ")
	}
	if !ValidEmail(r.Email) {
		return fmt.Sprintf("invalid email address %q", r.Email)
	}
	return ""
}

// ContentHash fingerprints what sync writes of a user, so that an unchanged
// user is recognised without comparing every field and is not written. The
// manager reference counts only when the org chart is populated.
func ContentHash(r Record, withManager bool) string {
	h := sha256.New()
	field := func(s string) {
		fmt.Fprintf(h, "%d:%s|", len(s), s)
	}
	field(r.Username)
	field(r.FirstName)
	field(r.LastName)
	field(r.Email)
	if withManager {
		field(r.ManagerRef)
	} else {
		field("")
	}
	keys := make([]string, 0, len(r.Attributes))
	for k := range r.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field(k)
		field(r.Attributes[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Limits are the accidental-delete guard's thresholds.
type Limits struct {
	MaxDisables       int // more disables than this trips the guard
	MaxDisablePercent int // more than this share of active users trips it...
	// ...once the directory has at least this many active users.
	PercentFloor int
}

// DefaultPercentFloor is the directory size below which the percentage
// limit does not apply: disabling 3 of 10 users is ordinary churn.
const DefaultPercentFloor = 100

// Guard returns why a run must wait for approval, or "" when it may apply:
// too many disables in number or in share of the directory's active users,
// or a source that returned nobody while the directory has users.
func Guard(disables, activeInDirectory, fetched int, l Limits) string {
	if l.PercentFloor == 0 {
		l.PercentFloor = DefaultPercentFloor
	}
	switch {
	case fetched == 0 && activeInDirectory > 0:
		return fmt.Sprintf("the source returned no users while the directory has %d active users", activeInDirectory)
	case disables > l.MaxDisables:
		return fmt.Sprintf("the run would disable %d users, more than the limit of %d", disables, l.MaxDisables)
	case activeInDirectory >= l.PercentFloor && disables*100 > l.MaxDisablePercent*activeInDirectory:
		return fmt.Sprintf("the run would disable %d of %d active users (%.1f%%), more than the limit of %d%%",
			disables, activeInDirectory, float64(disables)*100/float64(activeInDirectory), l.MaxDisablePercent)
	}
	return ""
}

// LicenceExceeded returns why a run would break the licence, or "" when it
// fits: disabled users do not count, so what matters is the number of active
// users once the plan is applied. A limit of 0 means unlimited.
func LicenceExceeded(activeNow, creates, reenables, disables, limit int) string {
	if limit <= 0 {
		return ""
	}
	after := activeNow + creates + reenables - disables
	if after <= limit {
		return ""
	}
	return fmt.Sprintf("licence limit exceeded: the run would leave %d active users (now %d, +%d created, +%d re-enabled, -%d disabled), the licence allows %d",
		after, activeNow, creates, reenables, disables, limit)
}

// GroupFilter decides which provider groups become directory groups.
type GroupFilter struct {
	mode string
	re   *regexp.Regexp
}

// NewGroupFilter compiles a group sync mode: "off", "all" or "regex" with an
// RE2 pattern matched against the group name.
func NewGroupFilter(mode, pattern string) (*GroupFilter, error) {
	switch mode {
	case "", "off":
		return &GroupFilter{mode: "off"}, nil
	case "all":
		return &GroupFilter{mode: "all"}, nil
	case "regex":
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, fmt.Errorf("group sync pattern: %w", err)
		}
		return &GroupFilter{mode: "regex", re: re}, nil
	}
	return nil, fmt.Errorf("unknown group sync mode %q", mode)
}

// On tells whether group sync is on: with it off memberships are left alone.
func (f *GroupFilter) On() bool { return f.mode != "off" }

// Match tells whether a group of this name is synced.
func (f *GroupFilter) Match(name string) bool {
	switch f.mode {
	case "all":
		return true
	case "regex":
		return f.re.MatchString(name)
	}
	return false
}

// Change is one field that differs.
type Change struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Diff lists the fields that differ between what the directory holds and
// what the provider says, keyed by the API's field names (attributes by
// their own name). It is what the ledger records for an update.
func Diff(old, new Record) map[string]Change {
	out := map[string]Change{}
	add := func(k, a, b string) {
		if a != b {
			out[k] = Change{From: a, To: b}
		}
	}
	add("username", old.Username, new.Username)
	add("firstName", old.FirstName, new.FirstName)
	add("lastName", old.LastName, new.LastName)
	add("email", old.Email, new.Email)
	for k, v := range new.Attributes {
		add("attributes."+k, old.Attributes[k], v)
	}
	for k, v := range old.Attributes {
		if _, ok := new.Attributes[k]; !ok {
			add("attributes."+k, v, "")
		}
	}
	return out
}
