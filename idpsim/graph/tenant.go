package graph

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// GroupKind is what Entra ID calls the type of a group; it fixes
// securityEnabled, mailEnabled and groupTypes.
type GroupKind int

// Group kinds.
const (
	Security            GroupKind = iota // securityEnabled, not mail-enabled
	MailEnabledSecurity                  // securityEnabled and mailEnabled
	Microsoft365                         // groupTypes ["Unified"], mail-enabled
	Distribution                         // mail-enabled only
)

func (k GroupKind) String() string {
	return [...]string{"security", "mailEnabledSecurity", "microsoft365", "distribution"}[k]
}

// User is a user of a simulated tenant. Props holds every other Graph
// property by its name: a string, []string, bool or time.Time; a missing
// property is null on the wire.
type User struct {
	ID                string
	UserPrincipalName string
	GivenName         string
	Surname           string
	DisplayName       string
	Mail              string
	AccountEnabled    bool
	ManagerID         string
	Props             map[string]any

	seq uint64 // its last change (delta.go)
	// mgrSeq is the change that last set or cleared the manager, and
	// prevManager the manager it replaced: a delta round lists
	// manager@delta only when the manager changed within it (delta.go).
	mgrSeq      uint64
	prevManager string
}

func (u *User) clone() User {
	c := *u
	c.Props = make(map[string]any, len(u.Props))
	for k, v := range u.Props {
		if l, ok := v.([]string); ok {
			v = slices.Clone(l)
		}
		c.Props[k] = v
	}
	return c
}

// Group is a group of a simulated tenant.
type Group struct {
	ID          string
	DisplayName string
	Kind        GroupKind
	// Members are the direct members, user or group ids, in the order
	// Graph lists them.
	Members []string

	seq    uint64        // its last change, membership included (delta.go)
	events []memberEvent // memberships started and ended, in order
}

// Client is an app registration that may sign in to a tenant.
type Client struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
	// NoConsent leaves the app without admin consent: it gets tokens, and
	// Graph answers 403 Authorization_RequestDenied to everything.
	NoConsent bool `json:"noConsent,omitempty"`
}

// TenantOptions shape a generated tenant. The same options give the same
// tenant, ids included.
type TenantOptions struct {
	Seed uint64
	// ID and Domain default to values derived from the seed.
	ID     string
	Domain string
	Users  int
	// Groups is the number of security groups in the nested tree under
	// one root group ("All Staff"); Depth is the number of levels below
	// the root (default 2). Every user is a direct member of one group of
	// the deepest level, except OutOfScopeShare of them who are in none.
	Groups          int
	Depth           int
	OutOfScopeShare float64
	// DisabledShare of the users have accountEnabled false.
	DisabledShare float64
	// Managers: user i reports to user (i-1)/ManagerFanout (default 8), so
	// everyone but the first user has a manager.
	ManagerFanout int
	// MailEnabledSecurityGroups, Microsoft365Groups and DistributionGroups
	// are extra groups, each with a few members; only the first kind may
	// ever appear in a group picker.
	MailEnabledSecurityGroups int
	Microsoft365Groups        int
	DistributionGroups        int
	// Clients may sign in; default one consented client derived from the seed.
	Clients []Client
}

// Tenant is one simulated Entra ID tenant. Its methods are safe for
// concurrent use with the server answering requests.
type Tenant struct {
	ID     string
	Domain string

	mu         sync.Mutex
	rng        *rand.Rand
	clients    []Client
	users      map[string]*User
	userOrder  []string
	groups     map[string]*Group
	groupOrder []string
	trans      map[string][]string // transitive members by group, dropped on every change
	listed     map[string][]string // members a listing shows, by group, depth and type; dropped likewise

	// Change tracking for delta queries (delta.go): the last change's
	// number, the log of changes, and deleted objects by their deletion's
	// number.
	seq     uint64
	log     []change
	deleted map[string]uint64
}

var (
	firstNames = []string{"Ada", "Alan", "Alice", "Amir", "Anna", "Ben", "Bianca", "Carlos", "Chen", "Chloe",
		"Dana", "David", "Elena", "Emeka", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan",
		"Jade", "James", "Jonas", "Julia", "Kai", "Kenji", "Lara", "Leo", "Lina", "Luca", "Maya", "Mehmet",
		"Mia", "Nadia", "Noah", "Nora", "Omar", "Olga", "Pablo", "Priya", "Quinn", "Rafael", "Rosa", "Sam",
		"Sara", "Sofia", "Tariq", "Tom", "Uma", "Victor", "Wei", "Yara", "Yusuf", "Zoe"}
	lastNames = []string{"Abbott", "Adeyemi", "Bauer", "Becker", "Brown", "Castro", "Chen", "Costa", "Dubois",
		"Eriksson", "Fischer", "Garcia", "Gonzalez", "Hansen", "Haddad", "Ivanova", "Jensen", "Johnson", "Kim",
		"Kowalski", "Larsen", "Lee", "Lopez", "Martin", "Meyer", "Moreau", "Nakamura", "Nguyen", "Novak",
		"Okafor", "Olsen", "Patel", "Petrov", "Rossi", "Schmidt", "Silva", "Singh", "Smith", "Suzuki",
		"Tanaka", "Taylor", "Umar", "Varga", "Wagner", "Wang", "Weber", "Williams", "Yilmaz", "Zhang"}
	departments = []string{"Engineering", "Sales", "Marketing", "Finance", "Legal", "Operations", "Support",
		"Research", "People", "Design", "Security", "Facilities"}
	teamWords = []string{"Platform", "Core", "Growth", "Field", "Enterprise", "Accounts", "Payroll", "Tax",
		"Contracts", "Logistics", "Tier 1", "Tier 2", "Labs", "Recruiting", "Brand", "Infra"}
	cities = []string{"London", "Paris", "Berlin", "Madrid", "Lisbon", "Dublin", "Warsaw", "Oslo", "Toronto",
		"Austin", "Seattle", "Singapore", "Sydney", "Tokyo"}
	skillWords = []string{"go", "sql", "negotiation", "design", "kubernetes", "accounting", "writing", "python"}
)

// newTenant generates a tenant from its options.
func newTenant(o TenantOptions) *Tenant {
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)) //nolint:gosec // deterministic data, not secrets
	t := &Tenant{rng: rng, users: map[string]*User{}, groups: map[string]*Group{}}
	t.ID = o.ID
	if t.ID == "" {
		t.ID = t.newID()
	}
	t.Domain = o.Domain
	if t.Domain == "" {
		t.Domain = fmt.Sprintf("sim%06x.onmicrosoft.com", rng.Uint32()&0xffffff)
	}
	t.clients = slices.Clone(o.Clients)
	if len(t.clients) == 0 {
		t.clients = []Client{{ID: t.newID(), Secret: t.newSecret()}}
	}
	if o.Depth <= 0 {
		o.Depth = 2
	}
	if o.ManagerFanout <= 0 {
		o.ManagerFanout = 8
	}

	// The security group tree: a root, then groups spread over the levels
	// round-robin, each under a random group of the level above.
	var levels [][]string
	if o.Groups > 0 {
		root := t.addGroup("All Staff", Security)
		levels = append(levels, []string{root.ID})
		for i := 1; i < o.Groups; i++ {
			lvl := 1 + (i-1)%o.Depth
			if lvl >= len(levels) {
				levels = append(levels, nil)
			}
			above := levels[lvl-1]
			parent := t.groups[above[rng.IntN(len(above))]]
			var name string
			if lvl == 1 {
				n := (i - 1) / o.Depth
				name = departments[n%len(departments)]
				if n >= len(departments) {
					name = fmt.Sprintf("%s %d", name, n/len(departments)+1)
				}
			} else {
				name = fmt.Sprintf("%s %s %d", parent.DisplayName, teamWords[rng.IntN(len(teamWords))], i)
			}
			g := t.addGroup(name, Security)
			parent.Members = append(parent.Members, g.ID)
			levels[lvl] = append(levels[lvl], g.ID)
		}
	}

	for i := 0; i < o.Users; i++ {
		first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
		u := &User{ID: t.newID(), GivenName: first, Surname: last, DisplayName: first + " " + last,
			AccountEnabled: rng.Float64() >= o.DisabledShare}
		u.UserPrincipalName = fmt.Sprintf("%s.%s.%d@%s", strings.ToLower(first), strings.ToLower(last), i, t.Domain)
		u.Mail = u.UserPrincipalName
		if i > 0 {
			u.ManagerID = t.userOrder[(i-1)/o.ManagerFanout]
		}
		u.Props = t.userProps(i, u)
		t.users[u.ID] = u
		t.userOrder = append(t.userOrder, u.ID)
		if len(levels) > 0 && rng.Float64() >= o.OutOfScopeShare {
			deepest := levels[len(levels)-1]
			g := t.groups[deepest[rng.IntN(len(deepest))]]
			g.Members = append(g.Members, u.ID)
		}
	}
	extra := func(n int, kind GroupKind, prefix string) {
		for i := 0; i < n; i++ {
			g := t.addGroup(fmt.Sprintf("%s %d", prefix, i+1), kind)
			for j := 0; j < min(25, len(t.userOrder)); j++ {
				id := t.userOrder[rng.IntN(len(t.userOrder))]
				if !slices.Contains(g.Members, id) {
					g.Members = append(g.Members, id)
				}
			}
		}
	}
	extra(o.MailEnabledSecurityGroups, MailEnabledSecurity, "Mail-enabled Security")
	extra(o.Microsoft365Groups, Microsoft365, "Microsoft 365 Team")
	extra(o.DistributionGroups, Distribution, "Distribution List")
	return t
}

// userProps fills the rest of the catalogue, some of it left null as real
// tenants do.
func (t *Tenant) userProps(i int, u *User) map[string]any {
	rng := t.rng
	dept := departments[rng.IntN(len(departments))]
	p := map[string]any{
		"department":        dept,
		"jobTitle":          dept + " " + []string{"Associate", "Specialist", "Lead", "Manager"}[rng.IntN(4)],
		"city":              cities[rng.IntN(len(cities))],
		"country":           "Simland",
		"companyName":       "Simulated Ltd",
		"employeeId":        fmt.Sprintf("E%06d", i),
		"employeeType":      "Employee",
		"mailNickname":      strings.SplitN(u.UserPrincipalName, "@", 2)[0],
		"usageLocation":     "GB",
		"userType":          "Member",
		"preferredLanguage": "en-GB",
		"creationType":      nil,
		"createdDateTime":   time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour),
		"businessPhones":    []string{fmt.Sprintf("+44 20 7946 %04d", i%10000)},
		"proxyAddresses":    []string{"SMTP:" + u.UserPrincipalName},
		"otherMails":        []string{},
		"imAddresses":       []string{},
		"officeLocation":    fmt.Sprintf("Building %d", 1+rng.IntN(9)),
		"skills":            pick(rng, skillWords, 2),
		"interests":         []string{},
		"schools":           []string{},
		"pastProjects":      []string{},
		"responsibilities":  []string{},
		"hireDate":          time.Date(2015+rng.IntN(10), time.Month(1+rng.IntN(12)), 1, 0, 0, 0, 0, time.UTC),
		"employeeHireDate":  time.Date(2015+rng.IntN(10), time.Month(1+rng.IntN(12)), 1, 0, 0, 0, 0, time.UTC),
		"preferredName":     u.GivenName,
		"aboutMe":           nil,
		"mySite":            nil,
		"birthday":          nil,
	}
	if rng.IntN(3) == 0 {
		p["mobilePhone"] = fmt.Sprintf("+44 7700 9%05d", i%100000)
	}
	for k, v := range p {
		if v == nil {
			delete(p, k)
		}
	}
	return p
}

// newID makes an object id shaped like Graph's (a version 4 GUID).
func (t *Tenant) newID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(t.rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newSecret makes a client secret shaped like Entra's (40 characters with a "~").
func (t *Tenant) newSecret() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
	b := make([]byte, 40)
	for i := range b {
		b[i] = alphabet[t.rng.IntN(len(alphabet))]
	}
	b[3] = '~'
	return string(b)
}

func (t *Tenant) addGroup(name string, kind GroupKind) *Group {
	g := &Group{ID: t.newID(), DisplayName: name, Kind: kind}
	t.groups[g.ID] = g
	t.groupOrder = append(t.groupOrder, g.ID)
	return g
}

// changed drops what was derived from the data.
func (t *Tenant) changed() { t.trans, t.listed = nil, nil }

// Errors of the mutation API.
var (
	ErrNoSuchUser  = errors.New("no such user")
	ErrNoSuchGroup = errors.New("no such group")
)

// Clients are the app registrations that may sign in.
func (t *Tenant) Clients() []Client {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.clients)
}

// Client is the first app registration, the one `usersync idpsim` prints.
func (t *Tenant) Client() Client { return t.Clients()[0] }

// AddClient registers another app (say, one without consent).
func (t *Tenant) AddClient(c Client) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clients = append(t.clients, c)
}

func (t *Tenant) client(id string) (Client, bool) {
	for _, c := range t.clients {
		if strings.EqualFold(c.ID, id) {
			return c, true
		}
	}
	return Client{}, false
}

// NewUser adds a user (a joiner) as a direct member of groups and returns
// its id; u.ID is ignored.
func (t *Tenant) NewUser(u User, groups ...string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, g := range groups {
		if t.groups[g] == nil {
			return "", fmt.Errorf("%w: %s", ErrNoSuchGroup, g)
		}
	}
	c := u.clone()
	c.ID = t.newID()
	c.mgrSeq, c.prevManager = 0, ""
	t.users[c.ID] = &c
	t.userOrder = append(t.userOrder, c.ID)
	t.touchUser(&c)
	if c.ManagerID != "" {
		c.mgrSeq = c.seq
	}
	for _, g := range groups {
		t.groups[g].Members = append(t.groups[g].Members, c.ID)
		t.memberChanged(t.groups[g], c.ID, true)
	}
	t.changed()
	return c.ID, nil
}

// DeleteUser removes a user (a leaver): from every group, and as manager.
func (t *Tenant) DeleteUser(id string) error { return t.DeleteUsers(id) }

// DeleteUsers removes users (leavers) in one pass over the tenant, which
// a million-user tenant needs: one at a time, each would scan every
// group and every user. Nothing is removed if one id is unknown.
func (t *Tenant) DeleteUsers(ids ...string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	gone := make(map[string]bool, len(ids))
	for _, id := range ids {
		if t.users[id] == nil {
			return fmt.Errorf("%w: %s", ErrNoSuchUser, id)
		}
		gone[id] = true
	}
	for id := range gone {
		delete(t.users, id)
	}
	t.userOrder = slices.DeleteFunc(t.userOrder, func(x string) bool { return gone[x] })
	for _, gid := range t.groupOrder {
		g := t.groups[gid]
		var left []string
		g.Members = slices.DeleteFunc(g.Members, func(x string) bool {
			if gone[x] {
				left = append(left, x)
				return true
			}
			return false
		})
		for _, id := range left {
			t.memberChanged(g, id, false)
		}
	}
	for _, uid := range t.userOrder {
		if u := t.users[uid]; gone[u.ManagerID] {
			u.prevManager, u.ManagerID = u.ManagerID, ""
			t.touchUser(u)
			u.mgrSeq = u.seq
		}
	}
	for _, id := range ids {
		t.gone(id, false)
	}
	t.changed()
	return nil
}

// UpdateUser changes a user in place; the id cannot change.
func (t *Tenant) UpdateUser(id string, f func(u *User)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.users[id]
	if u == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, id)
	}
	before := u.ManagerID
	f(u)
	u.ID = id
	t.touchUser(u)
	if u.ManagerID != before {
		u.mgrSeq, u.prevManager = u.seq, before
	}
	t.changed()
	return nil
}

// SetEnabled sets accountEnabled.
func (t *Tenant) SetEnabled(id string, enabled bool) error {
	return t.UpdateUser(id, func(u *User) { u.AccountEnabled = enabled })
}

// SetManager sets a user's manager ("" for none).
func (t *Tenant) SetManager(id, managerID string) error {
	t.mu.Lock()
	ok := managerID == "" || t.users[managerID] != nil
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, managerID)
	}
	return t.UpdateUser(id, func(u *User) { u.ManagerID = managerID })
}

// RenameUPN changes a user's userPrincipalName (and mail, as a rename in
// Entra usually does).
func (t *Tenant) RenameUPN(id, upn string) error {
	return t.UpdateUser(id, func(u *User) { u.UserPrincipalName, u.Mail = upn, upn })
}

// RenameGroup changes a group's displayName.
func (t *Tenant) RenameGroup(id, name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[id]
	if g == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchGroup, id)
	}
	g.DisplayName = name
	t.touchGroup(g)
	t.changed()
	return nil
}

// AddMember makes a user or group a direct member of a group.
func (t *Tenant) AddMember(groupID, memberID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[groupID]
	switch {
	case g == nil:
		return fmt.Errorf("%w: %s", ErrNoSuchGroup, groupID)
	case t.users[memberID] == nil && t.groups[memberID] == nil:
		return fmt.Errorf("%w: %s", ErrNoSuchUser, memberID)
	}
	if !slices.Contains(g.Members, memberID) {
		g.Members = append(g.Members, memberID)
		t.memberChanged(g, memberID, true)
	}
	t.changed()
	return nil
}

// RemoveMember removes a direct member of a group.
func (t *Tenant) RemoveMember(groupID, memberID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[groupID]
	if g == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchGroup, groupID)
	}
	if slices.Contains(g.Members, memberID) {
		g.Members = slices.DeleteFunc(g.Members, func(x string) bool { return x == memberID })
		t.memberChanged(g, memberID, false)
	}
	t.changed()
	return nil
}

// MoveUser moves a user's direct membership from one group to another.
func (t *Tenant) MoveUser(id, from, to string) error {
	if err := t.AddMember(to, id); err != nil {
		return err
	}
	return t.RemoveMember(from, id)
}

// DeleteGroup removes a group (and its nesting under others).
func (t *Tenant) DeleteGroup(id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.groups[id] == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchGroup, id)
	}
	for _, gid := range t.groupOrder {
		g := t.groups[gid]
		if slices.Contains(g.Members, id) {
			g.Members = slices.DeleteFunc(g.Members, func(x string) bool { return x == id })
			t.memberChanged(g, id, false)
		}
	}
	delete(t.groups, id)
	t.groupOrder = slices.DeleteFunc(t.groupOrder, func(x string) bool { return x == id })
	t.gone(id, true)
	t.changed()
	return nil
}

// User returns a copy of a user.
func (t *Tenant) User(id string) (User, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.users[id]
	if u == nil {
		return User{}, false
	}
	return u.clone(), true
}

// Users returns copies of every user, in listing order.
func (t *Tenant) Users() []User {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]User, 0, len(t.userOrder))
	for _, id := range t.userOrder {
		out = append(out, t.users[id].clone())
	}
	return out
}

// Groups returns copies of every group, in listing order.
func (t *Tenant) Groups() []Group {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Group, 0, len(t.groupOrder))
	for _, id := range t.groupOrder {
		g := *t.groups[id]
		g.Members = slices.Clone(g.Members)
		out = append(out, g)
	}
	return out
}

// Group returns a copy of a group.
func (t *Tenant) Group(id string) (Group, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.groups[id]
	if g == nil {
		return Group{}, false
	}
	c := *g
	c.Members = slices.Clone(g.Members)
	return c, true
}

// GroupByName finds a group by its displayName.
func (t *Tenant) GroupByName(name string) (Group, bool) {
	t.mu.Lock()
	id := ""
	for _, gid := range t.groupOrder {
		if t.groups[gid].DisplayName == name {
			id = gid
			break
		}
	}
	t.mu.Unlock()
	if id == "" {
		return Group{}, false
	}
	return t.Group(id)
}

// TransitiveUsers are the ids of the users in a group, directly or through
// nested groups, once each.
func (t *Tenant) TransitiveUsers(groupID string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, id := range t.transitive(groupID) {
		if t.users[id] != nil {
			out = append(out, id)
		}
	}
	return out
}

// transitive lists a group's members, nested groups expanded depth first,
// each once; the caller holds t.mu.
func (t *Tenant) transitive(groupID string) []string {
	if ids, ok := t.trans[groupID]; ok {
		return ids
	}
	seen := map[string]bool{groupID: true}
	out := []string{}
	var walk func(g *Group)
	walk = func(g *Group) {
		for _, m := range g.Members {
			if seen[m] {
				continue
			}
			seen[m] = true
			out = append(out, m)
			if sub := t.groups[m]; sub != nil {
				walk(sub)
			}
		}
	}
	if g := t.groups[groupID]; g != nil {
		walk(g)
	}
	if t.trans == nil {
		t.trans = map[string][]string{}
	}
	t.trans[groupID] = out
	return out
}

// pick returns n distinct words.
func pick(rng *rand.Rand, words []string, n int) []string {
	out := make([]string, 0, n)
	for _, i := range rng.Perm(len(words))[:min(n, len(words))] {
		out = append(out, words[i])
	}
	return out
}
