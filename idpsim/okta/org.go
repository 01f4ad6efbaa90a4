package okta

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"
)

// User statuses, as Okta spells them.
const (
	StatusActive          = "ACTIVE"
	StatusProvisioned     = "PROVISIONED"
	StatusStaged          = "STAGED"
	StatusRecovery        = "RECOVERY"
	StatusLockedOut       = "LOCKED_OUT"
	StatusPasswordExpired = "PASSWORD_EXPIRED"
	StatusSuspended       = "SUSPENDED"
	StatusDeprovisioned   = "DEPROVISIONED"
)

// Statuses lists every user status.
var Statuses = []string{StatusActive, StatusProvisioned, StatusStaged, StatusRecovery, StatusLockedOut,
	StatusPasswordExpired, StatusSuspended, StatusDeprovisioned}

// Group types.
const (
	GroupOkta    = "OKTA_GROUP"
	GroupApp     = "APP_GROUP"
	GroupBuiltIn = "BUILT_IN"
)

// Departments are the OKTA_GROUPs every user is in exactly one of.
var Departments = []string{"Engineering", "Sales", "Marketing", "Finance", "Support", "Operations", "Legal", "People"}

// Names of the other generated groups.
const (
	GroupEveryone        = "Everyone"
	GroupIntranetEditors = "Intranet Editors"
	GroupIntranetReaders = "Intranet Readers"
	GroupVPN             = "VPN Users"
	GroupContractors     = "Contractors"
	GroupADDomainUsers   = "AD: Domain Users"
	GroupADFinanceShare  = "AD: Finance Share"
	GroupWorkdayManagers = "Workday: Managers"
)

// User is a copy of one simulated user.
type User struct {
	ID          string
	Status      string
	LastUpdated time.Time
	Profile     map[string]any
}

// Login is the user's profile.login.
func (u User) Login() string { s, _ := u.Profile["login"].(string); return s }

// Group is a copy of one simulated group.
type Group struct {
	ID          string
	Name        string
	Type        string
	Description string
}

type user struct {
	id              string
	status          string
	created         time.Time
	activated       time.Time // zero for STAGED users never activated
	statusChanged   time.Time
	lastUpdated     time.Time
	passwordChanged time.Time
	lastLogin       time.Time
	profile         map[string]any
}

type group struct {
	id                    string
	typ                   string
	name                  string
	description           string
	created               time.Time
	lastUpdated           time.Time
	lastMembershipUpdated time.Time
	extra                 map[string]any // APP_GROUP profile properties beyond name and description
	members               []string       // sorted user ids
}

// org is the simulated tenant: users, groups and the usersync app, with
// every listing kept sorted by id because Okta pages by id ("after" is the
// last id of the previous page, wrapped in an opaque cursor here).
type org struct {
	users   map[string]*user
	userIDs []string
	logins  map[string]string // lowercased login -> id
	groups  map[string]*group
	groupID []string
	appID   string
	appName string
	// appGroups holds the groups assigned to the app, sorted by id, with
	// each assignment's priority.
	appGroups []string
	priority  map[string]int
	userType  string
}

var (
	firstNames = []string{"Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
		"Kemi", "Liam", "Maya", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
		"Wen", "Ximena", "Yusuf", "Zoe", "Amir", "Bea", "Carlos", "Dana", "Emil", "Fatima"}
	lastNames = []string{"Archer", "Baker", "Cole", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito",
		"Jensen", "Khan", "Lopez", "Meyer", "Novak", "Okafor", "Patel", "Quist", "Rossi", "Silva", "Tanaka",
		"Ueda", "Varga", "Weber", "Xu", "Young", "Zhang", "Abbott", "Brandt", "Costa", "Dubois"}
	cities = []struct{ city, state, country, zip, tz, locale string }{
		{"London", "", "GB", "EC1A 1BB", "Europe/London", "en_GB"},
		{"Berlin", "BE", "DE", "10115", "Europe/Berlin", "de_DE"},
		{"Austin", "TX", "US", "73301", "America/Chicago", "en_US"},
		{"Toronto", "ON", "CA", "M5H 2N2", "America/Toronto", "en_CA"},
		{"Sydney", "NSW", "AU", "2000", "Australia/Sydney", "en_AU"},
	}
	titles = []string{"Engineer", "Senior Engineer", "Analyst", "Manager", "Specialist", "Director", "Associate"}
	skills = []string{"go", "sql", "sales", "design", "finance", "support", "legal", "hiring"}
)

// epoch is when the generated org was created; generated timestamps are
// offsets from it, so the same seed gives byte-identical responses.
var epoch = time.Date(2024, 1, 2, 9, 0, 0, 0, time.UTC)

// okta ids are 20 characters: a 3-character prefix by kind and 17 base62.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func newID(rng *rand.Rand, prefix string) string {
	b := make([]byte, 0, 20)
	b = append(b, prefix...)
	for len(b) < 20 {
		b = append(b, base62[rng.IntN(len(base62))])
	}
	return string(b)
}

// generate builds the org of a seed. The last len(Statuses) users take
// each status in turn so that even a tiny org has every status (the last
// ones, because they manage nobody); the others follow a realistic mix. User i reports to a user before it:
// managerId holds the manager's id for i%3 == 0 and the manager's login for
// i%3 == 1, and for i%3 == 2 only "manager" holds the login. User i with
// i%500 == 9 has no email.
func generate(seed int64, n int, domain string) *org {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	o := &org{users: map[string]*user{}, logins: map[string]string{}, groups: map[string]*group{},
		priority: map[string]int{}, appName: "usersync", userType: newID(rng, "oty")}
	o.appID = newID(rng, "0oa")

	mk := func(typ, name, desc string) *group {
		g := &group{id: o.freshGroupID(rng), typ: typ, name: name, description: desc,
			created: epoch, lastUpdated: epoch, lastMembershipUpdated: epoch}
		if typ == GroupApp {
			sam := strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(name, "AD: "), "Workday: "), " ", "")
			g.extra = map[string]any{"samAccountName": sam, "dn": "CN=" + sam + ",OU=Groups,DC=corp,DC=example,DC=com",
				"windowsDomainQualifiedName": "CORP\\" + sam, "groupType": "Security", "groupScope": "Global"}
		}
		o.groups[g.id] = g
		return g
	}
	everyone := mk(GroupBuiltIn, GroupEveryone, "All users in your organization")
	depts := make([]*group, len(Departments))
	for i, d := range Departments {
		depts[i] = mk(GroupOkta, d, d+" department")
	}
	editors := mk(GroupOkta, GroupIntranetEditors, "May edit intranet pages")
	readers := mk(GroupOkta, GroupIntranetReaders, "May read the intranet")
	vpn := mk(GroupOkta, GroupVPN, "Remote access")
	contractors := mk(GroupOkta, GroupContractors, "External staff")
	adUsers := mk(GroupApp, GroupADDomainUsers, "Imported from Active Directory")
	adFinance := mk(GroupApp, GroupADFinanceShare, "Imported from Active Directory")
	managers := mk(GroupApp, GroupWorkdayManagers, "Imported from Workday")
	for id := range o.groups {
		o.groupID = append(o.groupID, id)
	}
	sort.Strings(o.groupID)

	mix := []struct {
		status string
		weight int
	}{{StatusActive, 78}, {StatusProvisioned, 3}, {StatusStaged, 3}, {StatusRecovery, 2}, {StatusLockedOut, 2},
		{StatusPasswordExpired, 2}, {StatusSuspended, 5}, {StatusDeprovisioned, 5}}
	members := map[*group][]string{}
	ids := make([]string, n)
	logins := make([]string, n)
	hasReports := make([]bool, n)
	seen := map[string]int{} // login local part -> users named so far
	mgrOf := make([]int, n)
	for i := range n {
		mgrOf[i] = -1
		if i > 0 {
			mgrOf[i] = rng.IntN(min(i, 1+i/8))
			hasReports[mgrOf[i]] = true
		}
	}
	for i := range n {
		status := ""
		if k := i - (n - len(mix)); k >= 0 {
			status = mix[k].status
		} else {
			w := rng.IntN(100)
			for _, m := range mix {
				if w < m.weight {
					status = m.status
					break
				}
				w -= m.weight
			}
		}
		first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
		local := strings.ToLower(first + "." + last)
		login := local + "@" + domain
		if n := seen[local]; n > 0 {
			login = fmt.Sprintf("%s%d@%s", local, n+1, domain)
		}
		seen[local]++
		id := o.freshUserID(rng)
		ids[i], logins[i] = id, login
		dept := rng.IntN(len(Departments))
		city := cities[rng.IntN(len(cities))]
		created := epoch.Add(time.Duration(i) * time.Minute)
		contractor := rng.IntN(10) == 0
		userType := "Employee"
		if contractor {
			userType = "Contractor"
		}
		p := map[string]any{
			"login": login, "firstName": first, "lastName": last, "email": login,
			"middleName": string(firstNames[rng.IntN(len(firstNames))][0]), "honorificPrefix": []string{"Mx.", "Ms.", "Mr.", "Dr."}[rng.IntN(4)],
			"honorificSuffix": "", "displayName": first + " " + last, "nickName": first,
			"profileUrl": "https://intranet." + domain + "/people/" + local, "secondEmail": local + "@personal.example.org",
			"mobilePhone": fmt.Sprintf("+1-555-%04d", rng.IntN(10000)), "primaryPhone": fmt.Sprintf("+1-555-%04d", rng.IntN(10000)),
			"streetAddress": fmt.Sprintf("%d High Street", 1+rng.IntN(200)), "city": city.city, "state": city.state,
			"zipCode": city.zip, "countryCode": city.country, "postalAddress": fmt.Sprintf("%d High Street, %s", 1+rng.IntN(200), city.city),
			"preferredLanguage": city.locale[:2], "locale": city.locale, "timezone": city.tz, "userType": userType,
			"employeeNumber": fmt.Sprintf("E%06d", i+1), "costCenter": fmt.Sprintf("CC-%03d", 100+dept*10+rng.IntN(10)),
			"division": []string{"Product", "Go-to-market", "Corporate"}[dept%3], "department": Departments[dept],
			"title": titles[rng.IntN(len(titles))], "organization": "Example Corp",
			// Custom attributes of the org's user type.
			"badgeId":   fmt.Sprintf("B-%05d", rng.IntN(100000)),
			"startYear": 2010 + rng.IntN(15),
			"remote":    rng.IntN(3) == 0,
			"skills":    []any{skills[rng.IntN(len(skills))], skills[rng.IntN(len(skills))]},
		}
		if i%500 == 9 {
			delete(p, "email")
		}
		if m := mgrOf[i]; m >= 0 {
			switch i % 3 {
			case 0:
				p["managerId"] = ids[m]
			case 1:
				p["managerId"] = logins[m]
			case 2:
				p["manager"] = logins[m]
			}
		}
		u := &user{id: id, status: status, created: created, statusChanged: created, lastUpdated: created, profile: p}
		if status != StatusStaged {
			u.activated = created.Add(time.Hour)
			u.statusChanged = u.activated
			u.lastUpdated = u.activated
			u.passwordChanged = u.activated
		}
		if status == StatusActive {
			u.lastLogin = created.Add(24 * time.Hour)
		}
		o.users[id] = u
		o.logins[strings.ToLower(login)] = id

		members[everyone] = append(members[everyone], id)
		members[depts[dept]] = append(members[depts[dept]], id)
		if rng.IntN(20) == 0 {
			members[editors] = append(members[editors], id)
		}
		if rng.IntN(10) < 6 {
			members[readers] = append(members[readers], id)
		}
		if rng.IntN(10) < 3 {
			members[vpn] = append(members[vpn], id)
		}
		if contractor {
			members[contractors] = append(members[contractors], id)
		}
		if rng.IntN(10) < 9 {
			members[adUsers] = append(members[adUsers], id)
		}
		if Departments[dept] == "Finance" {
			members[adFinance] = append(members[adFinance], id)
		}
		if hasReports[i] {
			members[managers] = append(members[managers], id)
		}
	}
	for g, m := range members {
		sort.Strings(m)
		g.members = m
	}
	for id := range o.users {
		o.userIDs = append(o.userIDs, id)
	}
	sort.Strings(o.userIDs)

	assigned := append([]*group{editors, readers, contractors, adUsers, managers}, depts...)
	for i, g := range assigned {
		o.appGroups = append(o.appGroups, g.id)
		o.priority[g.id] = i
	}
	sort.Strings(o.appGroups)
	return o
}

func (o *org) freshUserID(rng *rand.Rand) string {
	for {
		if id := newID(rng, "00u"); o.users[id] == nil {
			return id
		}
	}
}

func (o *org) freshGroupID(rng *rand.Rand) string {
	for {
		if id := newID(rng, "00g"); o.groups[id] == nil {
			return id
		}
	}
}

// lookupUser finds a user by id or, as Okta's /users/{id} does, by login.
func (o *org) lookupUser(idOrLogin string) *user {
	if u := o.users[idOrLogin]; u != nil {
		return u
	}
	return o.users[o.logins[strings.ToLower(idOrLogin)]]
}

func (u *user) copy() User {
	p := make(map[string]any, len(u.profile))
	for k, v := range u.profile {
		if a, ok := v.([]any); ok {
			v = slices.Clone(a)
		}
		p[k] = v
	}
	return User{ID: u.id, Status: u.status, LastUpdated: u.lastUpdated, Profile: p}
}

func (g *group) copy() Group {
	return Group{ID: g.id, Name: g.name, Type: g.typ, Description: g.description}
}

// insertSorted adds s to the sorted slice when missing.
func insertSorted(list []string, s string) ([]string, bool) {
	i, found := slices.BinarySearch(list, s)
	if found {
		return list, false
	}
	return slices.Insert(list, i, s), true
}

// removeSorted removes s from the sorted slice when present.
func removeSorted(list []string, s string) ([]string, bool) {
	i, found := slices.BinarySearch(list, s)
	if !found {
		return list, false
	}
	return slices.Delete(list, i, i+1), true
}
