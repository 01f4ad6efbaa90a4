package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/provider"
)

// What slapd cannot answer as Active Directory does is tested on answers
// recorded in the shape Microsoft documents them:
//
//   - ranged retrieval: a group of more than MaxValRange (1500) members
//     answers member;range=0-1499, then member;range=1500-2999 to a
//     request of member;range=1500-*, and a last range ending in "*"
//     ("Attribute Range Retrieval", learn.microsoft.com/windows/win32/adsi/attribute-range-retrieval);
//   - uSNChanged: a round starts from the root DSE's highestCommittedUSN
//     and dsServiceName (with its invocationId), and the next one asks for
//     uSNChanged >= that USN + 1 on the same DC ("Polling for Changes
//     Using USNChanged" and its example code, learn.microsoft.com/windows/win32/ad/);
//   - objectGUID: 16 bytes, the first three fields little-endian
//     ([MS-ADA3] objectGUID, [MS-DTYP] 2.3.4), searched for escaped byte
//     by byte ("Searching Binary Data", learn.microsoft.com/windows/win32/adsi/searching-binary-data);
//   - userAccountControl: ADS_UF_ACCOUNTDISABLE is 0x2 ([MS-DRSR]
//     userAccountControl bits; learn.microsoft.com/windows/win32/adschema/a-useraccountcontrol).

// recordedAD answers searches as a domain controller would.
type recordedAD struct {
	t          *testing.T
	mu         sync.Mutex
	usn        int64
	dc         string
	invocation []byte
	users      map[string]map[string][]string // DN -> attributes (binary ones as strings)
	members    []string                       // of cn=big
	filters    []string
}

func (f *recordedAD) Close() error { return nil }

func (f *recordedAD) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, req.Filter)
	if req.Scope != goldap.ScopeBaseObject && goldap.FindControl(req.Controls, goldap.ControlTypePaging) == nil {
		f.t.Errorf("subtree search %s without the paged results control", req.Filter)
	}
	entry := func(dn string, attrs map[string][]string) *goldap.Entry {
		e := &goldap.Entry{DN: dn}
		for k, v := range attrs {
			a := &goldap.EntryAttribute{Name: k, Values: v}
			for _, s := range v {
				a.ByteValues = append(a.ByteValues, []byte(s))
			}
			e.Attributes = append(e.Attributes, a)
		}
		return e
	}
	res := &goldap.SearchResult{}
	switch {
	case req.BaseDN == "" && req.Scope == goldap.ScopeBaseObject:
		res.Entries = append(res.Entries, entry("", map[string][]string{
			"highestCommittedUSN": {fmt.Sprint(f.usn)}, "dsServiceName": {f.dc}}))
	case req.BaseDN == f.dc:
		res.Entries = append(res.Entries, entry(f.dc, map[string][]string{"invocationId": {string(f.invocation)}}))
	case strings.HasPrefix(req.BaseDN, "CN=big,") && req.Scope == goldap.ScopeBaseObject:
		// MaxValRange is 1500: the server decides the ranges, whatever
		// the request's upper bound.
		lo := 0
		if a := req.Attributes[0]; strings.Contains(a, ";range=") {
			if _, err := fmt.Sscanf(a[strings.Index(a, "=")+1:], "%d-*", &lo); err != nil {
				f.t.Fatalf("range request %q", a)
			}
		}
		hi := min(lo+1500, len(f.members))
		name := fmt.Sprintf("member;range=%d-%d", lo, hi-1)
		if hi == len(f.members) {
			name = fmt.Sprintf("member;range=%d-*", lo)
		}
		res.Entries = append(res.Entries, entry(req.BaseDN, map[string][]string{name: f.members[lo:hi]}))
	default:
		// A user search: the recorded users, narrowed by what the filter
		// asks of uSNChanged, distinguishedName and objectGUID.
		for dn, attrs := range f.users {
			if matchRecorded(req.Filter, dn, attrs) {
				res.Entries = append(res.Entries, entry(dn, attrs))
			}
		}
	}
	return res, nil
}

// matchRecorded evaluates the parts of a filter the source builds.
func matchRecorded(filter, dn string, attrs map[string][]string) bool {
	if i := strings.Index(filter, "(uSNChanged>="); i >= 0 {
		var min, usn int64
		fmt.Sscanf(filter[i+len("(uSNChanged>="):], "%d", &min)
		fmt.Sscanf(attrs["uSNChanged"][0], "%d", &usn)
		if usn < min {
			return false
		}
	}
	if strings.Contains(filter, "(distinguishedName=") && !strings.Contains(filter, "(distinguishedName="+goldap.EscapeFilter(dn)+")") {
		return false
	}
	if strings.Contains(filter, "(objectGUID=") {
		var esc strings.Builder
		for _, b := range []byte(attrs["objectGUID"][0]) {
			fmt.Fprintf(&esc, `\%02x`, b)
		}
		return strings.Contains(filter, "(objectGUID="+esc.String()+")")
	}
	return true
}

func recordedSource(t *testing.T, f *recordedAD) *Source {
	t.Helper()
	src := mustOpen(t, Config{URL: "ldaps://dc1.corp.example.test", BindDN: "CN=svc-usersync,OU=Service,DC=corp,DC=example,DC=test",
		BindPassword: "secret", BaseDN: "DC=corp,DC=example,DC=test", Flavour: FlavourAD})
	src.dial = func(context.Context) (connection, error) { return f, nil }
	t.Cleanup(func() { dropPool(t) })
	return src
}

func adUser(guid []byte, sam string, uac int, usn int64, manager string) map[string][]string {
	a := map[string][]string{"objectGUID": {string(guid)}, "sAMAccountName": {sam}, "givenName": {sam}, "sn": {"X"},
		"mail": {sam + "@corp.example.test"}, "userAccountControl": {fmt.Sprint(uac)}, "uSNChanged": {fmt.Sprint(usn)}}
	if manager != "" {
		a["manager"] = []string{manager}
	}
	return a
}

func TestADRangedMemberRetrieval(t *testing.T) {
	f := &recordedAD{t: t}
	for i := range 3210 {
		f.members = append(f.members, fmt.Sprintf("CN=user%04d,OU=People,DC=corp,DC=example,DC=test", i))
	}
	src := recordedSource(t, f)
	got, err := src.members(context.Background(), "CN=big,OU=Groups,DC=corp,DC=example,DC=test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(f.members) || got[0] != f.members[0] || got[1500] != f.members[1500] || got[3209] != f.members[3209] {
		t.Fatalf("ranged retrieval read %d members, want %d in order", len(got), len(f.members))
	}
}

func TestADChangesByUSN(t *testing.T) {
	// objectGUID of {2a4e6c8b-1d3f-4a5b-8c7d-9e0f1a2b3c4d} as AD stores it.
	annGUID := []byte{0x8b, 0x6c, 0x4e, 0x2a, 0x3f, 0x1d, 0x5b, 0x4a, 0x8c, 0x7d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c, 0x4d}
	benGUID := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	annDN := "CN=Ann Ames,OU=People,DC=corp,DC=example,DC=test"
	f := &recordedAD{t: t, usn: 5000, dc: "CN=NTDS Settings,CN=DC1,CN=Servers,CN=Site,CN=Sites,CN=Configuration,DC=corp,DC=example,DC=test",
		invocation: benGUID,
		users: map[string]map[string][]string{
			annDN: adUser(annGUID, "ann", 512, 4000, ""),
			"CN=Ben Bell,OU=People,DC=corp,DC=example,DC=test": adUser(benGUID, "ben", 512, 4100, annDN),
		}}
	src := recordedSource(t, f)
	users, _, state := allUsers(t, src, "")
	m := byName(users)
	if m["ann"].ExternalID != "2a4e6c8b-1d3f-4a5b-8c7d-9e0f1a2b3c4d" {
		t.Fatalf("ann's objectGUID rendered %q", m["ann"].ExternalID)
	}
	if m["ben"].ManagerRef != m["ann"].ExternalID {
		t.Fatalf("ben's manager %q, want ann", m["ben"].ManagerRef)
	}

	// Ben is disabled (514 = NORMAL_ACCOUNT|ACCOUNTDISABLE) after the round.
	f.mu.Lock()
	f.users["CN=Ben Bell,OU=People,DC=corp,DC=example,DC=test"] = adUser(benGUID, "ben", 514, 5001, annDN)
	f.usn, f.filters = 5001, nil
	f.mu.Unlock()
	changed, _, next := allUsers(t, src, state)
	if len(changed) != 1 || changed[0].Username != "ben" || changed[0].Active {
		t.Fatalf("changes since USN 5000: %+v, want ben disabled", changed)
	}
	if !strings.Contains(strings.Join(f.filters, " "), "(uSNChanged>=5001)") {
		t.Fatalf("filters %v: want uSNChanged >= highestCommittedUSN + 1", f.filters)
	}
	if next == state {
		t.Fatal("the change round handed out the state it read from")
	}
	got, err := src.UsersByID(context.Background(), []string{m["ann"].ExternalID})
	if err != nil || len(got) != 1 || got[0].Username != "ann" {
		t.Fatalf("users by GUID: %+v, %v", got, err)
	}

	untrusted := []struct {
		name   string
		change func()
	}{
		{"another DC", func() { f.dc = strings.Replace(f.dc, "DC1", "DC2", 1) }},
		{"restored DC", func() { f.invocation = annGUID }},
		{"USN back", func() { f.usn = 10 }},
	}
	for _, tc := range untrusted {
		t.Run(tc.name, func(t *testing.T) {
			f.mu.Lock()
			dc, inv, usn := f.dc, f.invocation, f.usn
			tc.change()
			f.mu.Unlock()
			t.Cleanup(func() { f.dc, f.invocation, f.usn = dc, inv, usn })
			if _, err := src.UserChanges(context.Background(), next, ""); !errors.Is(err, provider.ErrStateExpired) {
				t.Fatalf("%s: %v, want ErrStateExpired (a full run)", tc.name, err)
			}
		})
	}
}

func TestGUIDString(t *testing.T) {
	b := []byte{0x8b, 0x6c, 0x4e, 0x2a, 0x3f, 0x1d, 0x5b, 0x4a, 0x8c, 0x7d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c, 0x4d}
	s := guidString(b)
	if s != "2a4e6c8b-1d3f-4a5b-8c7d-9e0f1a2b3c4d" {
		t.Fatalf("guidString = %s", s)
	}
	back, ok := guidBytes(strings.ToUpper(s))
	if !ok || string(back) != string(b) {
		t.Fatalf("guidBytes(%s) = %x", s, back)
	}
	if guidString(b[:15]) != "" {
		t.Fatal("a 15-byte value rendered as a GUID")
	}
}
