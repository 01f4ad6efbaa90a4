package rules

import (
	"strings"
	"testing"
)

func rec() Record {
	return Record{Username: "jdoe", FirstName: "Jane", LastName: "Doe", Email: "jane@example.com"}
}

func TestInvalidNamesTheMissingField(t *testing.T) {
	cases := []struct {
		mutate func(*Record)
		want   string
	}{
		{func(r *Record) {}, ""},
		{func(r *Record) { r.Username = " " }, "missing required field username"},
		{func(r *Record) { r.FirstName = "" }, "missing required field firstName"},
		{func(r *Record) { r.LastName = "" }, "missing required field lastName"},
		{func(r *Record) { r.Email = "" }, "missing required field email"},
		{func(r *Record) { r.LastName, r.Email = "", "" }, "missing required fields lastName, email"},
		{func(r *Record) { r.Email = "not-an-email" }, `invalid email address "not-an-email"`},
		{func(r *Record) { r.Email = "Jane <jane@example.com>" }, "invalid email address"},
		{func(r *Record) { r.Email = "jane@localhost" }, "invalid email address"},
	}
	for _, c := range cases {
		r := rec()
		c.mutate(&r)
		got := Invalid(r)
		if (c.want == "") != (got == "") || !strings.HasPrefix(got, c.want) {
			t.Errorf("Invalid(%+v) = %q, want prefix %q", r, got, c.want)
		}
	}
}

func TestContentHashSeesEveryField(t *testing.T) {
	base := rec()
	base.Attributes = map[string]string{"department": "Sales"}
	h := ContentHash(base, true)
	if ContentHash(base, true) != h {
		t.Fatal("hash is not stable")
	}
	muts := []func(*Record){
		func(r *Record) { r.Username = "jdoe2" },
		func(r *Record) { r.FirstName = "J" },
		func(r *Record) { r.LastName = "D" },
		func(r *Record) { r.Email = "j@example.com" },
		func(r *Record) { r.ManagerRef = "boss" },
		func(r *Record) { r.Attributes = map[string]string{"department": "Ops"} },
		func(r *Record) { r.Attributes = map[string]string{"department": "Sales", "city": "Leeds"} },
		// Field boundaries matter: moving a character between fields is a change.
		func(r *Record) { r.FirstName, r.LastName = "JaneD", "oe" },
	}
	for i, m := range muts {
		r := base
		r.Attributes = map[string]string{"department": "Sales"}
		m(&r)
		if ContentHash(r, true) == h {
			t.Errorf("mutation %d not seen by the hash", i)
		}
	}
	withBoss := base
	withBoss.ManagerRef = "boss"
	if ContentHash(withBoss, false) != ContentHash(base, false) {
		t.Error("manager counted although the org chart is off")
	}
}

func TestGuard(t *testing.T) {
	l := Limits{MaxDisables: 500, MaxDisablePercent: 20}
	cases := []struct {
		name                      string
		disables, active, fetched int
		trips                     bool
	}{
		{"ordinary", 3, 1000, 997, false},
		{"too many in number", 501, 10000, 9499, true},
		{"exactly the limit", 500, 10000, 9500, false},
		{"too many in share", 21, 100, 79, true},
		{"20% is allowed", 20, 100, 80, false},
		{"share ignored below 100 active users", 30, 99, 69, false},
		{"empty source with users", 0, 5, 0, true},
		{"empty source, empty directory", 0, 0, 0, false},
	}
	for _, c := range cases {
		got := Guard(c.disables, c.active, c.fetched, l)
		if (got != "") != c.trips {
			t.Errorf("%s: Guard = %q, trips want %v", c.name, got, c.trips)
		}
	}
	if g := Guard(600, 10000, 9400, l); !strings.Contains(g, "600") || !strings.Contains(g, "500") {
		t.Errorf("guard message lacks the numbers: %q", g)
	}
}

func TestLicenceExceeded(t *testing.T) {
	if LicenceExceeded(10, 5, 0, 0, 0) != "" {
		t.Error("0 must mean unlimited")
	}
	if LicenceExceeded(10, 5, 0, 5, 10) != "" {
		t.Error("disables free seats: 10+5-5 fits 10")
	}
	msg := LicenceExceeded(10, 5, 1, 0, 15)
	if msg == "" || !strings.Contains(msg, "16") || !strings.Contains(msg, "15") {
		t.Errorf("want the numbers in the message, got %q", msg)
	}
}

func TestGroupFilter(t *testing.T) {
	off, _ := NewGroupFilter("off", "")
	if off.On() || off.Match("x") {
		t.Error("off matches")
	}
	all, _ := NewGroupFilter("all", "")
	if !all.On() || !all.Match("anything") {
		t.Error("all does not match")
	}
	re, err := NewGroupFilter("regex", "^Intranet")
	if err != nil || !re.Match("Intranet Editors") || re.Match("Sales Intranet") {
		t.Errorf("regex filter wrong: %v", err)
	}
	if _, err := NewGroupFilter("regex", "(("); err == nil {
		t.Error("bad pattern accepted")
	}
	if _, err := NewGroupFilter("some", ""); err == nil {
		t.Error("unknown mode accepted")
	}
}

func TestDiff(t *testing.T) {
	old := rec()
	old.Attributes = map[string]string{"department": "Sales", "city": "Leeds"}
	nw := rec()
	nw.LastName = "Smith"
	nw.Attributes = map[string]string{"department": "Ops"}
	d := Diff(old, nw)
	want := map[string]Change{
		"lastName":              {"Doe", "Smith"},
		"attributes.department": {"Sales", "Ops"},
		"attributes.city":       {"Leeds", ""},
	}
	if len(d) != len(want) {
		t.Fatalf("diff = %v", d)
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s: %v, want %v", k, d[k], v)
		}
	}
	if len(Diff(old, old)) != 0 {
		t.Error("no change must give an empty diff")
	}
}
