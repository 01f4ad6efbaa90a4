package okta

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds the reads and changes tests make between syncs. Each
// change stamps lastUpdated (and statusChanged or lastMembershipUpdated)
// as Okta does, so incremental readers would see it too.

// Users returns a copy of every user, sorted by id.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.org.userIDs))
	for _, id := range s.org.userIDs {
		out = append(out, s.org.users[id].copy())
	}
	return out
}

// User returns a copy of one user, by id or login.
func (s *Server) User(idOrLogin string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.org.lookupUser(idOrLogin)
	if u == nil {
		return User{}, false
	}
	return u.copy(), true
}

// Groups returns every group, sorted by id.
func (s *Server) Groups() []Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Group, 0, len(s.org.groupID))
	for _, id := range s.org.groupID {
		out = append(out, s.org.groups[id].copy())
	}
	return out
}

// GroupByName returns the group of that name.
func (s *Server) GroupByName(name string) (Group, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.org.groupID {
		if g := s.org.groups[id]; g.name == name {
			return g.copy(), true
		}
	}
	return Group{}, false
}

// Members returns the ids of a group's members, sorted.
func (s *Server) Members(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.org.groups[groupID]; g != nil {
		return append([]string{}, g.members...)
	}
	return nil
}

// AppGroups returns the ids of the groups assigned to the app, sorted.
func (s *Server) AppGroups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.org.appGroups...)
}

// Errors of the mutation methods.
var (
	ErrNoSuchUser  = errors.New("okta sim: no such user")
	ErrNoSuchGroup = errors.New("okta sim: no such group")
)

func (s *Server) touch() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func (s *Server) user(id string) (*user, error) {
	u := s.org.lookupUser(id)
	if u == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchUser, id)
	}
	return u, nil
}

func (s *Server) group(id string) (*group, error) {
	g := s.org.groups[id]
	if g == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchGroup, id)
	}
	return g, nil
}

// SetStatus moves a user to any status, as the lifecycle operations below
// do; it exists for states Okta reaches on its own (LOCKED_OUT after failed
// sign-ins, PASSWORD_EXPIRED by policy).
func (s *Server) SetStatus(id, status string) error {
	if !contains(Statuses, status) {
		return fmt.Errorf("okta sim: unknown status %q", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.user(id)
	if err != nil {
		return err
	}
	now := s.touch()
	if u.activated.IsZero() && status != StatusStaged {
		u.activated = now
	}
	u.status, u.statusChanged, u.lastUpdated = status, now, now
	return nil
}

// Deactivate deprovisions a user (Okta's lifecycle/deactivate).
func (s *Server) Deactivate(id string) error { return s.SetStatus(id, StatusDeprovisioned) }

// Suspend suspends a user (lifecycle/suspend).
func (s *Server) Suspend(id string) error { return s.SetStatus(id, StatusSuspended) }

// Unsuspend returns a suspended user to ACTIVE (lifecycle/unsuspend).
func (s *Server) Unsuspend(id string) error { return s.SetStatus(id, StatusActive) }

// Activate activates a STAGED or DEPROVISIONED user (lifecycle/activate).
func (s *Server) Activate(id string) error { return s.SetStatus(id, StatusActive) }

// Reactivate returns a deprovisioned or suspended user to ACTIVE, whichever
// lifecycle call Okta would need for it (activate or unsuspend).
func (s *Server) Reactivate(id string) error { return s.SetStatus(id, StatusActive) }

// SetProfile sets one profile attribute; nil removes it.
func (s *Server) SetProfile(id, attr string, value any) error {
	if attr == "login" {
		v, _ := value.(string)
		return s.RenameLogin(id, v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.user(id)
	if err != nil {
		return err
	}
	if value == nil {
		delete(u.profile, attr)
	} else {
		u.profile[attr] = value
	}
	u.lastUpdated = s.touch()
	return nil
}

// RenameLogin changes a user's login (its id stays).
func (s *Server) RenameLogin(id, login string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.user(id)
	if err != nil {
		return err
	}
	if login == "" {
		return fmt.Errorf("okta sim: empty login")
	}
	if other := s.org.logins[strings.ToLower(login)]; other != "" && other != u.id {
		return fmt.Errorf("okta sim: login %q is taken", login)
	}
	old, _ := u.profile["login"].(string)
	delete(s.org.logins, strings.ToLower(old))
	s.org.logins[strings.ToLower(login)] = u.id
	u.profile["login"] = login
	u.lastUpdated = s.touch()
	return nil
}

// SetManager points a user's manager at another user: by id in managerId
// (form "id"), by login in managerId (form "login"), or by login in
// manager alone (form "manager"); an empty manager removes both.
func (s *Server) SetManager(id, managerIDOrLogin, form string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.user(id)
	if err != nil {
		return err
	}
	delete(u.profile, "managerId")
	delete(u.profile, "manager")
	if managerIDOrLogin != "" {
		m, err := s.user(managerIDOrLogin)
		if err != nil {
			return err
		}
		switch form {
		case "id":
			u.profile["managerId"] = m.id
		case "login":
			u.profile["managerId"] = m.profile["login"]
		case "manager":
			u.profile["manager"] = m.profile["login"]
		default:
			return fmt.Errorf("okta sim: manager form %q is not id, login or manager", form)
		}
	}
	u.lastUpdated = s.touch()
	return nil
}

// AddToGroup makes a user a member of a group.
func (s *Server) AddToGroup(groupID, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.group(groupID)
	if err != nil {
		return err
	}
	u, err := s.user(userID)
	if err != nil {
		return err
	}
	var added bool
	if g.members, added = insertSorted(g.members, u.id); added {
		g.lastMembershipUpdated = s.touch()
		s.logLocked(EventMembershipAdd, userTarget(u), groupTarget(g))
	}
	return nil
}

// RemoveFromGroup ends a user's membership of a group.
func (s *Server) RemoveFromGroup(groupID, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.group(groupID)
	if err != nil {
		return err
	}
	u, err := s.user(userID)
	if err != nil {
		return err
	}
	var removed bool
	if g.members, removed = removeSorted(g.members, u.id); removed {
		g.lastMembershipUpdated = s.touch()
		s.logLocked(EventMembershipRemove, userTarget(u), groupTarget(g))
	}
	return nil
}

// MoveUser moves a user from one group to another.
func (s *Server) MoveUser(userID, fromGroup, toGroup string) error {
	if err := s.RemoveFromGroup(fromGroup, userID); err != nil {
		return err
	}
	return s.AddToGroup(toGroup, userID)
}

// AddUser creates a user with the given profile (login, firstName,
// lastName, email...) and status, in the given groups and in Everyone; it
// returns the new id.
func (s *Server) AddUser(profile map[string]any, status string, groupIDs ...string) (string, error) {
	if !contains(Statuses, status) {
		return "", fmt.Errorf("okta sim: unknown status %q", status)
	}
	login, _ := profile["login"].(string)
	if login == "" {
		return "", fmt.Errorf("okta sim: a user needs a login")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.org.logins[strings.ToLower(login)] != "" {
		return "", fmt.Errorf("okta sim: login %q is taken", login)
	}
	for _, gid := range groupIDs {
		if _, err := s.group(gid); err != nil {
			return "", err
		}
	}
	now := s.touch()
	p := make(map[string]any, len(profile))
	for k, v := range profile {
		p[k] = v
	}
	u := &user{id: s.org.freshUserID(s.rng), status: status, created: now, statusChanged: now, lastUpdated: now, profile: p}
	if status != StatusStaged {
		u.activated = now
	}
	s.org.users[u.id] = u
	s.org.logins[strings.ToLower(login)] = u.id
	s.org.userIDs, _ = insertSorted(s.org.userIDs, u.id)
	for _, gid := range s.org.groupID {
		g := s.org.groups[gid]
		if g.typ == GroupBuiltIn || contains(groupIDs, gid) {
			g.members, _ = insertSorted(g.members, u.id)
			g.lastMembershipUpdated = now
			s.logLocked(EventMembershipAdd, userTarget(u), groupTarget(g))
		}
	}
	return u.id, nil
}

// DeleteUser removes a user for good, and from every group.
func (s *Server) DeleteUser(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.user(id)
	if err != nil {
		return err
	}
	delete(s.org.users, u.id)
	login, _ := u.profile["login"].(string)
	delete(s.org.logins, strings.ToLower(login))
	s.org.userIDs, _ = removeSorted(s.org.userIDs, u.id)
	// Okta logs the deletion, not the memberships it ends, and the
	// groups' lastMembershipUpdated does not move.
	for _, g := range s.org.groups {
		g.members, _ = removeSorted(g.members, u.id)
	}
	s.logLocked(EventUserDeleted, userTarget(u))
	return nil
}

// AddGroup creates an OKTA_GROUP and returns its id.
func (s *Server) AddGroup(name, description string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.touch()
	g := &group{id: s.org.freshGroupID(s.rng), typ: GroupOkta, name: name, description: description,
		created: now, lastUpdated: now, lastMembershipUpdated: now}
	s.org.groups[g.id] = g
	s.org.groupID, _ = insertSorted(s.org.groupID, g.id)
	return g.id
}

// DeleteGroup removes a group and its app assignment.
func (s *Server) DeleteGroup(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.group(id)
	if err != nil {
		return err
	}
	s.logLocked(EventGroupDeleted, groupTarget(g))
	delete(s.org.groups, id)
	s.org.groupID, _ = removeSorted(s.org.groupID, id)
	s.org.appGroups, _ = removeSorted(s.org.appGroups, id)
	delete(s.org.priority, id)
	return nil
}

// AssignGroup assigns a group to the app.
func (s *Server) AssignGroup(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.group(id)
	if err != nil {
		return err
	}
	var added bool
	if s.org.appGroups, added = insertSorted(s.org.appGroups, id); added {
		s.org.priority[id] = len(s.org.appGroups) - 1
		s.logLocked(EventAppAssignmentAdd, s.appTarget(), groupTarget(g))
	}
	return nil
}

// UnassignGroup removes a group's assignment to the app.
func (s *Server) UnassignGroup(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var removed bool
	if s.org.appGroups, removed = removeSorted(s.org.appGroups, id); removed {
		t := logTarget{ID: id, Type: "UserGroup"}
		if g := s.org.groups[id]; g != nil {
			t = groupTarget(g)
		}
		s.logLocked(EventAppAssignmentRemove, s.appTarget(), t)
	}
	delete(s.org.priority, id)
}

// GroupsOf returns the ids of the groups a user is in, sorted.
func (s *Server) GroupsOf(userID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range s.org.groupID {
		g := s.org.groups[id]
		if _, found := slices.BinarySearch(g.members, userID); found {
			out = append(out, id)
		}
	}
	return out
}
