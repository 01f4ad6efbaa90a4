package ldap

import (
	"context"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// batch is how many DNs or ids one search resolves: a filter of a few
// kilobytes, well inside AD's MaxReceiveBuffer (10 MB) and slapd's
// sockbuf_max_incoming_auth (4 MB).
const batch = 100

// binaryID tells whether the id attribute is a binary GUID: AD's
// objectGUID and ms-DS-ConsistencyGuid (the anchor Entra Connect uses).
func (s *Source) binaryID() bool {
	a := strings.ToLower(s.attrs.ID)
	return a == "objectguid" || a == "ms-ds-consistencyguid"
}

// id is the entry's stable id as a string: a binary GUID in its usual
// form, any other value (entryUUID, nsUniqueId) lower-cased when it is a
// UUID so that it compares as the engine stores it.
func (s *Source) id(e *goldap.Entry) string {
	if s.binaryID() {
		return guidString(e.GetRawAttributeValue(s.attrs.ID))
	}
	v := strings.TrimSpace(e.GetAttributeValue(s.attrs.ID))
	if isUUID(v) {
		return strings.ToLower(v)
	}
	return v
}

// guidString renders the 16 bytes of an objectGUID as Windows does: the
// first three fields little-endian, the last two as stored
// ("{b2a2a3e6-…}" without the braces).
func guidString(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%x",
		b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10:])
}

// guidBytes is the inverse of guidString.
func guidBytes(s string) ([]byte, bool) {
	if !isUUID(s) {
		return nil, false
	}
	h, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil {
		return nil, false
	}
	return []byte{h[3], h[2], h[1], h[0], h[5], h[4], h[7], h[6], h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]}, true
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isUUID(s string) bool { return uuidRE.MatchString(s) }

// idFilter is an equality assertion on the id attribute: a binary GUID
// escaped byte by byte (RFC 4515 section 3), as AD documents for
// objectGUID.
func (s *Source) idFilter(id string) string {
	if s.binaryID() {
		b, ok := guidBytes(id)
		if !ok {
			return ""
		}
		var sb strings.Builder
		for _, c := range b {
			fmt.Fprintf(&sb, `\%02x`, c)
		}
		return "(" + s.attrs.ID + "=" + sb.String() + ")"
	}
	return "(" + s.attrs.ID + "=" + goldap.EscapeFilter(id) + ")"
}

// byIDs finds the entries under filter with the given ids.
func (s *Source) byIDs(ctx context.Context, filter string, ids []string, attrs []string) ([]*goldap.Entry, error) {
	var out []*goldap.Entry
	for start := 0; start < len(ids); start += batch {
		var or strings.Builder
		for _, id := range ids[start:min(start+batch, len(ids))] {
			or.WriteString(s.idFilter(id))
		}
		if or.Len() == 0 {
			continue
		}
		found, err := s.all(ctx, s.searchReq("(&"+filter+"(|"+or.String()+"))", append([]string{s.attrs.ID}, attrs...)))
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}

// ref is what a DN resolved to.
type ref struct {
	id    string
	group bool
}

// resolve maps DNs (normalised, normDN) to the ids of the users and/or
// groups they name under the base DN. A DN that names neither (outside
// the base, not matching the filters, gone) is absent.
func (s *Source) resolve(ctx context.Context, dns []string, users, groups bool) (map[string]ref, error) {
	out := map[string]ref{}
	seen := map[string]bool{}
	var uniq []string
	for _, dn := range dns {
		if n := normDN(dn); !seen[n] {
			seen[n] = true
			uniq = append(uniq, dn)
		}
	}
	for start := 0; start < len(uniq); start += batch {
		var or strings.Builder
		for _, dn := range uniq[start:min(start+batch, len(uniq))] {
			or.WriteString("(" + s.attrs.DN + "=" + goldap.EscapeFilter(dn) + ")")
		}
		kinds := []struct {
			on     bool
			filter string
			group  bool
		}{{users, s.userFilter, false}, {groups, s.groupFilter, true}}
		for _, k := range kinds {
			if !k.on {
				continue
			}
			found, err := s.all(ctx, s.searchReq("(&"+k.filter+"(|"+or.String()+"))", []string{s.attrs.ID}))
			if err != nil {
				return nil, err
			}
			for _, e := range found {
				if id := s.id(e); id != "" {
					out[normDN(e.DN)] = ref{id: id, group: k.group}
				}
			}
		}
	}
	return out, nil
}

// normDN is a DN in one spelling: parsed (escapes undone, spaces around
// separators dropped) and lower-cased, since the attribute types and the
// values of the naming attributes usersync meets compare without case.
func normDN(dn string) string {
	if d, err := goldap.ParseDN(dn); err == nil {
		return strings.ToLower(d.String())
	}
	return strings.ToLower(strings.TrimSpace(dn))
}

// members reads the member DNs of the group at dn. Active Directory
// returns at most MaxValRange values (1500) of a multi-valued attribute
// per read, as member;range=0-1499, and the rest on request of
// member;range=1500-* until a range ends in "*" ("Attribute Range
// Retrieval", and MaxValRange in "View and set LDAP policy in Active
// Directory by using Ntdsutil.exe", Microsoft Learn); other servers return
// all values as
// plain member. uniqueMember values may end in an optional "#'…'B" uid
// (RFC 4517 section 3.3.21), which is cut off.
func (s *Source) members(ctx context.Context, dn string) ([]string, error) {
	attr := s.attrs.Member
	e, err := s.one(ctx, dn, "(objectClass=*)", []string{attr})
	if err != nil || e == nil {
		return nil, err
	}
	var out []string
	for guard := 0; ; guard++ {
		vals, next, done := rangedValues(e, attr)
		out = append(out, vals...)
		if done {
			break
		}
		if guard > 100000 {
			return nil, fmt.Errorf("ldap: ranged retrieval of %s of %s does not end", attr, dn)
		}
		if e, err = s.one(ctx, dn, "(objectClass=*)", []string{fmt.Sprintf("%s;range=%d-*", attr, next)}); err != nil {
			return nil, err
		}
		if e == nil {
			return nil, fmt.Errorf("ldap: group %s went away while its members were read", dn)
		}
	}
	for i, v := range out {
		out[i] = cutUID(v)
	}
	return out, nil
}

var rangeRE = regexp.MustCompile(`(?i);range=(\d+)-(\d+|\*)$`)

// rangedValues reads attr from e, plain or ranged. done says there is no
// more; otherwise next is the first value to ask for.
func rangedValues(e *goldap.Entry, attr string) (vals []string, next int, done bool) {
	for _, a := range e.Attributes {
		name := a.Name
		if strings.EqualFold(name, attr) {
			return a.Values, 0, true
		}
		if len(name) <= len(attr) || !strings.EqualFold(name[:len(attr)], attr) {
			continue
		}
		m := rangeRE.FindStringSubmatch(name[len(attr):])
		if m == nil {
			continue
		}
		if m[2] == "*" {
			return a.Values, 0, true
		}
		hi, err := strconv.Atoi(m[2])
		if err != nil {
			return a.Values, 0, true
		}
		return a.Values, hi + 1, false
	}
	return nil, 0, true
}

// cutUID drops the optional uid of a nameAndOptionalUID value.
func cutUID(v string) string {
	if i := strings.LastIndex(v, "#'"); i > 0 && strings.HasSuffix(v, "'B") {
		return v[:i]
	}
	return v
}
