package graph

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// apiError is an answer in Graph's error shape.
type apiError struct {
	status  int
	code    string
	message string
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf(format, args...)}
}

func unsupported(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "Request_UnsupportedQuery", msg}
}

// Page sizes of Graph directory lists.
const (
	defaultTop = 100
	maxTop     = 999
	// expandMaxTop is the page size a list with $expand is capped at.
	expandMaxTop = 100
)

// query is the OData part of a request.
type query struct {
	sel           []string // nil: the default properties
	top           int
	offset        int
	emptied       bool // this page token follows an injected empty page
	filter        []orClause
	search        *searchClause
	count         bool
	expandManager bool
	managerSel    []string
	advanced      bool // the request may use advanced queries
	needsAdvanced string
}

// userProperties are the user properties the simulator knows.
var userProperties = []string{"id", "accountEnabled", "userPrincipalName", "givenName", "surname", "displayName",
	"mail", "aboutMe", "ageGroup", "birthday", "businessPhones", "city", "companyName", "consentProvidedForMinor",
	"country", "createdDateTime", "creationType", "department", "employeeHireDate", "employeeId", "employeeType",
	"faxNumber", "hireDate", "imAddresses", "interests", "jobTitle", "legalAgeGroupClassification",
	"mailNickname", "mobilePhone", "mySite", "officeLocation", "otherMails", "pastProjects", "postalCode",
	"preferredLanguage", "preferredName", "proxyAddresses", "responsibilities", "schools", "skills", "state",
	"streetAddress", "usageLocation", "userType", "onPremisesSamAccountName", "onPremisesUserPrincipalName",
	"onPremisesImmutableId", "onPremisesSyncEnabled"}

// defaultUserProperties are what a user list returns without $select.
var defaultUserProperties = []string{"businessPhones", "displayName", "givenName", "jobTitle", "mail",
	"mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}

// perUserProperties are returned only by GET /users/{id}.
var perUserProperties = []string{"aboutMe", "birthday", "hireDate", "interests", "mySite", "pastProjects",
	"preferredName", "responsibilities", "schools", "skills"}

// collectionProperties are lists: [] when empty, never null.
var collectionProperties = []string{"businessPhones", "imAddresses", "interests", "otherMails", "pastProjects",
	"proxyAddresses", "responsibilities", "schools", "skills", "groupTypes"}

var groupProperties = []string{"id", "displayName", "description", "groupTypes", "mail", "mailEnabled",
	"mailNickname", "securityEnabled", "visibility", "createdDateTime", "proxyAddresses", "classification",
	"membershipRule", "onPremisesSyncEnabled", "securityIdentifier", "isAssignableToRole"}

var defaultGroupProperties = []string{"id", "createdDateTime", "description", "displayName", "groupTypes", "mail",
	"mailEnabled", "mailNickname", "proxyAddresses", "securityEnabled", "visibility"}

// objectType is what a listing holds.
type objectType int

const (
	userObjects objectType = iota
	groupObjects
	directoryObjects // users and groups (members)
)

func param(r *http.Request, name string) (string, bool) {
	q := r.URL.Query()
	for _, k := range []string{"$" + name, name} {
		if v, ok := q[k]; ok && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// parseQuery reads the OData options of a request on objects of typ; list
// is false for a single-object GET.
func (s *Server) parseQuery(r *http.Request, typ objectType, list bool) (query, *apiError) {
	q := query{top: defaultTop, advanced: strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual")}
	if v, ok := param(r, "select"); ok {
		known := userProperties
		typeName := "microsoft.graph.user"
		switch typ {
		case groupObjects:
			known, typeName = groupProperties, "microsoft.graph.group"
		case directoryObjects:
			known = append(slices.Clone(userProperties), groupProperties...)
			typeName = "microsoft.graph.directoryObject"
		}
		for _, p := range splitList(v) {
			if !slices.Contains(known, p) {
				return q, badRequest("Could not find a property named '%s' on type '%s'.", p, typeName)
			}
			if list && typ != groupObjects && slices.Contains(perUserProperties, p) {
				return q, &apiError{http.StatusNotImplemented, "NotImplemented",
					fmt.Sprintf("The property '%s' is returned only when a single user is read (GET /users/{id}); it cannot be selected on a list.", p)}
			}
			if !slices.Contains(q.sel, p) {
				q.sel = append(q.sel, p)
			}
		}
	}
	if v, ok := param(r, "expand"); ok {
		name, inner, _ := strings.Cut(v, "(")
		if strings.TrimSpace(name) != "manager" || typ == groupObjects {
			return q, badRequest("Parsing OData Select and Expand failed: Could not find a property named '%s' on type 'microsoft.graph.user'.", name)
		}
		q.expandManager = true
		if inner != "" {
			inner = strings.TrimSuffix(inner, ")")
			sel, ok := strings.CutPrefix(strings.TrimSpace(inner), "$select=")
			if !ok {
				return q, badRequest("Invalid expand option '%s'.", inner)
			}
			q.managerSel = splitList(sel)
		}
	}
	if !list {
		return q, nil
	}
	if v, ok := param(r, "top"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxTop {
			return q, badRequest("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", v, maxTop)
		}
		q.top = n
	}
	if v, ok := param(r, "skiptoken"); ok {
		epoch, off, emptied, err := decodeSkipToken(v)
		if err != nil {
			return q, badRequest("Invalid skip token.")
		}
		s.mu.Lock()
		cur := s.pageEpoch
		s.mu.Unlock()
		if epoch != cur {
			return q, &apiError{http.StatusBadRequest, "Directory_ExpiredPageToken",
				"The specified page token value has expired and can no longer be included in your request."}
		}
		q.offset, q.emptied = off, emptied
	}
	if v, ok := param(r, "count"); ok {
		q.count = v == "true"
		if q.count {
			q.needsAdvanced = "$count"
		}
	}
	if v, ok := param(r, "filter"); ok {
		f, adv, err := parseFilter(v)
		if err != nil {
			return q, err
		}
		q.filter = f
		if adv != "" {
			q.needsAdvanced = adv
		}
	}
	if v, ok := param(r, "search"); ok {
		sc, err := parseSearch(v)
		if err != nil {
			return q, err
		}
		q.search = sc
		q.needsAdvanced = "$search"
	}
	if q.needsAdvanced != "" && (!q.advanced || !q.count) {
		return q, unsupported(fmt.Sprintf("Request with %s only works through MSGraph with a special request header: 'ConsistencyLevel: eventual' and $count=true.", q.needsAdvanced))
	}
	return q, nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Page tokens: epoch, offset and whether an empty page was just injected,
// opaque to clients like Graph's.
func encodeSkipToken(epoch, offset int, emptied bool) string {
	f := 0
	if emptied {
		f = 1
	}
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "sim1.%d.%d.%d", epoch, offset, f))
}

func decodeSkipToken(s string) (epoch, offset int, emptied bool, err error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, 0, false, err
	}
	var f int
	if _, err := fmt.Sscanf(string(b), "sim1.%d.%d.%d", &epoch, &offset, &f); err != nil {
		return 0, 0, false, err
	}
	if offset < 0 {
		return 0, 0, false, fmt.Errorf("negative offset")
	}
	return epoch, offset, f == 1, nil
}

// A filter is clauses joined by "or", each of clauses joined by "and".
type orClause []predicate

type predicate struct {
	not  bool
	op   string // eq, ne, startsWith, endsWith, anyEq
	prop string
	val  any // string, bool or nil
}

// parseFilter reads the subset of $filter the directory supports that the
// simulator needs; adv names an advanced operator found, if any.
func parseFilter(f string) ([]orClause, string, *apiError) {
	var out []orClause
	adv := ""
	for _, alt := range splitOutsideQuotes(f, " or ") {
		var c orClause
		for _, part := range splitOutsideQuotes(alt, " and ") {
			p, a, err := parsePredicate(strings.TrimSpace(part))
			if err != nil {
				return nil, "", err
			}
			if a != "" {
				adv = a
			}
			c = append(c, p)
		}
		out = append(out, c)
	}
	return out, adv, nil
}

func parsePredicate(s string) (predicate, string, *apiError) {
	var p predicate
	adv := ""
	if rest, ok := cutPrefixFold(s, "not "); ok {
		p.not, adv, s = true, "not", strings.TrimSpace(rest)
		s = strings.TrimSuffix(strings.TrimPrefix(s, "("), ")")
	}
	for _, fn := range []string{"startsWith", "endsWith"} {
		if rest, ok := cutPrefixFold(s, fn+"("); ok && strings.HasSuffix(rest, ")") {
			prop, lit, ok := strings.Cut(strings.TrimSuffix(rest, ")"), ",")
			v, err := literal(strings.TrimSpace(lit))
			if !ok || err != nil {
				return p, "", unsupported("Unsupported Query.")
			}
			if fn == "endsWith" {
				adv = "endsWith"
			}
			p.op, p.prop, p.val = fn, strings.TrimSpace(prop), v
			return p, adv, nil
		}
	}
	if prop, rest, ok := strings.Cut(s, "/any("); ok {
		// groupTypes/any(c:c eq 'Unified')
		body := strings.TrimSuffix(rest, ")")
		v, lit, ok := strings.Cut(body, ":")
		fields := strings.Fields(lit)
		if !ok || len(fields) != 3 || fields[0] != v || fields[1] != "eq" {
			return p, "", unsupported("Unsupported Query.")
		}
		val, err := literal(fields[2])
		if err != nil {
			return p, "", unsupported("Unsupported Query.")
		}
		p.op, p.prop, p.val = "anyEq", prop, val
		return p, adv, nil
	}
	fields := strings.SplitN(s, " ", 3)
	if len(fields) != 3 || (fields[1] != "eq" && fields[1] != "ne") {
		return p, "", unsupported("Unsupported Query.")
	}
	v, err := literal(strings.TrimSpace(fields[2]))
	if err != nil {
		return p, "", unsupported("Unsupported Query.")
	}
	if fields[1] == "ne" {
		adv = "ne"
	}
	p.op, p.prop, p.val = fields[1], fields[0], v
	return p, adv, nil
}

func literal(s string) (any, error) {
	switch {
	case s == "true":
		return true, nil
	case s == "false":
		return false, nil
	case s == "null":
		return nil, nil
	case len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'':
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	}
	return nil, fmt.Errorf("bad literal %q", s)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// splitOutsideQuotes splits s on sep where sep is not inside '…'.
func splitOutsideQuotes(s, sep string) []string {
	var out []string
	in := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\'':
			in = !in
		case !in && strings.HasPrefix(strings.ToLower(s[i:]), sep):
			out = append(out, s[start:i])
			i += len(sep) - 1
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// match evaluates a filter against an object's property reader.
func match(f []orClause, get func(prop string) any) bool {
	if len(f) == 0 {
		return true
	}
	for _, c := range f {
		ok := true
		for _, p := range c {
			if p.eval(get) == p.not {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (p predicate) eval(get func(string) any) bool {
	v := get(p.prop)
	switch p.op {
	case "eq":
		return equal(v, p.val)
	case "ne":
		return !equal(v, p.val)
	case "startsWith", "endsWith":
		sv, _ := v.(string)
		want, _ := p.val.(string)
		sv, want = strings.ToLower(sv), strings.ToLower(want)
		if p.op == "startsWith" {
			return strings.HasPrefix(sv, want)
		}
		return strings.HasSuffix(sv, want)
	case "anyEq":
		l, _ := v.([]string)
		want, _ := p.val.(string)
		return slices.ContainsFunc(l, func(x string) bool { return strings.EqualFold(x, want) })
	}
	return false
}

func equal(a, b any) bool {
	if as, ok := a.(string); ok {
		bs, ok := b.(string)
		return ok && strings.EqualFold(as, bs)
	}
	return a == b
}

// searchClause is $search="property:term".
type searchClause struct {
	prop string
	term string
}

func parseSearch(v string) (*searchClause, *apiError) {
	v = strings.TrimSpace(v)
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, badRequest("Syntax error: the $search value must be in double quotes, such as \"displayName:sales\".")
	}
	prop, term, ok := strings.Cut(v[1:len(v)-1], ":")
	if !ok {
		prop, term = "displayName", prop
	}
	if prop != "displayName" && prop != "description" && prop != "mail" && prop != "userPrincipalName" {
		return nil, unsupported("Unsupported Query.")
	}
	return &searchClause{prop: prop, term: strings.ToLower(strings.TrimSpace(term))}, nil
}

// matches is Graph's tokenized search: the term starts a word of the
// value (words split at spaces, punctuation and lower-to-upper changes).
func (c *searchClause) matches(get func(string) any) bool {
	v, _ := get(c.prop).(string)
	if c.term == "" {
		return true
	}
	runes := []rune(v)
	lower := strings.ToLower(v)
	lrunes := []rune(lower)
	for i := range runes {
		start := i == 0 || (!isWord(runes[i-1]) && isWord(runes[i])) ||
			(unicode.IsLower(runes[i-1]) && unicode.IsUpper(runes[i]))
		if start && strings.HasPrefix(string(lrunes[i:]), c.term) {
			return true
		}
	}
	return false
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
