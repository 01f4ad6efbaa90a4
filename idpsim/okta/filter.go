package okta

import (
	"fmt"
	"strings"
)

// Okta's filter and search expressions (developer.okta.com/docs/api/#filter):
// terms `attr op "value"` (or `attr pr`), joined by "and" (binding first)
// and "or", grouped with parentheses. Each endpoint documents which
// attributes and operators its filter takes; a dialect holds that, and an
// expression outside it is refused with 400, as Okta refuses what it does
// not support, rather than answered with a guess.

// fieldFunc reads one attribute of an object for an expression: every
// value it has (a System Log event has several target ids); ok is false
// when the object has no such attribute.
type fieldFunc func(name string) (values []string, ok bool)

func one(v string) ([]string, bool) { return []string{v}, true }

// dialect is what one endpoint's parameter accepts.
type dialect struct {
	// ops lists, per attribute, the operators it takes; "*" is any
	// attribute not listed, absent when only the listed ones are allowed.
	ops map[string][]string
	// caseInsensitive: string values compare without case (search).
	caseInsensitive bool
	// not: the not operator is allowed.
	not bool
}

var (
	timeOps = []string{"eq", "gt", "ge", "lt", "le"}
	// /api/v1/users?filter: status, lastUpdated, id, profile.login,
	// profile.email, profile.firstName, profile.lastName; eq only, but
	// lastUpdated also takes gt, ge, lt and le; and, or; no not.
	userFilter = dialect{ops: map[string][]string{
		"status": {"eq"}, "lastUpdated": timeOps, "id": {"eq"}, "profile.login": {"eq"},
		"profile.email": {"eq"}, "profile.firstName": {"eq"}, "profile.lastName": {"eq"},
	}}
	// /api/v1/users?search: most properties; sw, eq and co (co only on
	// four profile attributes); dates compare; values without case.
	userSearch = dialect{ops: map[string][]string{
		"*": {"eq", "sw", "gt", "ge", "lt", "le", "pr"}, "profile.firstName": {"eq", "sw", "co", "pr"},
		"profile.lastName": {"eq", "sw", "co", "pr"}, "profile.email": {"eq", "sw", "co", "pr"},
		"profile.login": {"eq", "sw", "co", "pr"},
	}, caseInsensitive: true}
	// /api/v1/groups?filter: id, type, lastUpdated, lastMembershipUpdated.
	groupFilter = dialect{ops: map[string][]string{
		"id": {"eq"}, "type": {"eq"}, "lastUpdated": timeOps, "lastMembershipUpdated": timeOps,
	}}
	// /api/v1/groups?search: every property; sw, eq, co (co on name and
	// description), dates compare.
	groupSearch = dialect{ops: map[string][]string{
		"*": {"eq", "sw", "gt", "ge", "lt", "le", "pr"}, "profile.name": {"eq", "sw", "co", "pr"},
		"profile.description": {"eq", "sw", "co", "pr"},
	}, caseInsensitive: true}
	// /api/v1/logs?filter: every operator but published, which the
	// System Log refuses in a filter.
	logFilter = dialect{ops: map[string][]string{
		"*": {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"}, "published": {},
	}, not: true}
)

// expr is a compiled expression.
type expr func(fieldFunc) bool

type term struct{ attr, op, val string }

// terms lists every term of an expression, for a caller that must know
// what it asks for (status eq "DEPROVISIONED").
type parsed struct {
	match expr
	terms []term
}

// parseExpr compiles s in dialect d.
func parseExpr(s string, d dialect) (parsed, error) {
	p := &exprParser{toks: tokenize(s), d: d}
	if p.toks == nil {
		return parsed{}, fmt.Errorf("cannot parse %q", s)
	}
	m, err := p.or()
	if err != nil {
		return parsed{}, err
	}
	if p.pos != len(p.toks) {
		return parsed{}, fmt.Errorf("unexpected %q in %q", p.toks[p.pos], s)
	}
	return parsed{match: m, terms: p.terms}, nil
}

// tokenize splits an expression into words, quoted strings (kept with
// their quotes) and parentheses; nil when a quote is not closed.
func tokenize(s string) []string {
	toks := []string{}
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil
			}
			toks = append(toks, s[i:j+1])
			i = j + 1
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '(' && s[j] != ')' && s[j] != '"' {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

type exprParser struct {
	toks  []string
	pos   int
	d     dialect
	terms []term
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *exprParser) or() (expr, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "or") {
		p.pos++
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(f fieldFunc) bool { return l(f) || right(f) }
	}
	return left, nil
}

func (p *exprParser) and() (expr, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for strings.EqualFold(p.peek(), "and") {
		p.pos++
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(f fieldFunc) bool { return l(f) && right(f) }
	}
	return left, nil
}

func (p *exprParser) unary() (expr, error) {
	switch t := p.peek(); {
	case t == "(":
		p.pos++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return e, nil
	case strings.EqualFold(t, "not"):
		if !p.d.not {
			return nil, fmt.Errorf("the not operator is not supported")
		}
		p.pos++
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(f fieldFunc) bool { return !e(f) }, nil
	case t == "" || t == ")":
		return nil, fmt.Errorf("missing expression")
	}
	return p.term()
}

func (p *exprParser) term() (expr, error) {
	attr := p.toks[p.pos]
	p.pos++
	op := strings.ToLower(p.peek())
	p.pos++
	allowed, listed := p.d.ops[attr]
	if !listed {
		if allowed, listed = p.d.ops["*"]; !listed {
			return nil, fmt.Errorf("the attribute %s is not supported", attr)
		}
	}
	known := false
	for _, o := range allowed {
		known = known || o == op
	}
	if !known {
		return nil, fmt.Errorf("the operator %q is not supported for %s", op, attr)
	}
	t := term{attr: attr, op: op}
	if op != "pr" {
		v := p.peek()
		if len(v) < 2 || v[0] != '"' {
			return nil, fmt.Errorf("%s %s needs a quoted value", attr, op)
		}
		p.pos++
		t.val = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
	}
	p.terms = append(p.terms, t)
	fold := p.d.caseInsensitive
	return func(get fieldFunc) bool {
		vals, ok := get(t.attr)
		if t.op == "pr" {
			return ok && len(vals) > 0 && vals[0] != ""
		}
		if !ok {
			return t.op == "ne"
		}
		for _, v := range vals {
			if compare(v, t.op, t.val, fold) {
				return t.op != "ne"
			}
		}
		return t.op == "ne"
	}, nil
}

// compare applies op; times compare as their fixed-width text, which
// orders them correctly. ne matches when no value equals.
func compare(v, op, want string, fold bool) bool {
	if fold {
		v, want = strings.ToLower(v), strings.ToLower(want)
	}
	switch op {
	case "eq", "ne":
		return v == want
	case "sw":
		return strings.HasPrefix(strings.ToLower(v), strings.ToLower(want))
	case "ew":
		return strings.HasSuffix(strings.ToLower(v), strings.ToLower(want))
	case "co":
		return strings.Contains(strings.ToLower(v), strings.ToLower(want))
	case "gt":
		return v > want
	case "ge":
		return v >= want
	case "lt":
		return v < want
	case "le":
		return v <= want
	}
	return false
}

// asks tells whether an expression names attr op val in one of its terms.
func (p parsed) asks(attr, op, val string) bool {
	for _, t := range p.terms {
		if t.attr == attr && t.op == op && t.val == val {
			return true
		}
	}
	return false
}
