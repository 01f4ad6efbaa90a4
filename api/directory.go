package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/rules"
	"github.com/usersync/usersync/service"
)

// Hand-made directory changes are audited under category Directory, so the
// log tells them apart from what a sync did.
func (s *server) auditDirectory(c *gin.Context, action, subject, details string) {
	s.audit(c, directory.AuditEntry{Category: directory.CategoryDirectory, Action: action, Subject: subject, Details: details})
}

// userOut shows empty attributes and groups as {} and [] rather than null.
func userOut(u *directory.User) *directory.User {
	if u.Attributes == nil {
		u.Attributes = map[string]string{}
	}
	if u.Groups == nil {
		u.Groups = []string{}
	}
	return u
}

func (s *server) listUsers(c *gin.Context) error {
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	status, err := oneOf(c, "status", directory.StatusActive, directory.StatusDisabled)
	if err != nil {
		return err
	}
	f := directory.UserFilter{Status: status, Directory: c.Query("directory"), Query: c.Query("q")}
	page, err := s.store.ListUsers(c.Request.Context(), f, opt)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, mapPage(page, func(u *directory.User) *directory.User { return userOut(u) }))
	return nil
}

func (s *server) getUser(c *gin.Context) error {
	u, err := s.store.GetUser(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, userOut(u))
	return nil
}

// createUser makes a local user (service.CreateUser).
func (s *server) createUser(c *gin.Context) error {
	var req struct {
		Username  string `json:"username"`
		FirstName string `json:"firstName"`
		LastName  string `json:"lastName"`
		Email     string `json:"email"`
		Password  string `json:"password"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	u, err := s.svc.CreateUser(c.Request.Context(), service.UserInput(req))
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, userOut(u))
	return nil
}

// patchUser enables or disables a user by hand. A sync re-enables a user
// of its directory that is active in the provider.
func (s *server) patchUser(c *gin.Context) error {
	var req struct {
		Status string `json:"status"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	u, err := s.svc.SetUserStatus(c.Request.Context(), c.Param("id"), req.Status)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, userOut(u))
	return nil
}

func (s *server) deleteUser(c *gin.Context) error {
	if _, err := s.svc.DeleteUser(c.Request.Context(), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (s *server) listGroups(c *gin.Context) error {
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	page, err := s.store.ListGroups(c.Request.Context(), c.Query("q"), opt)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}

func (s *server) getGroup(c *gin.Context) error {
	g, err := s.store.GetGroup(c.Request.Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, g)
	return nil
}

// memberStatusAll asks a group's member listing for every member, the
// disabled ones too.
const memberStatusAll = "all"

// memberFilter is the store's filter of GET /groups/{id}/members?status=:
// active members unless the caller asks for disabled ones or all, so a
// consumer that only lists a group's members never sees a disabled user.
func memberFilter(status string) (directory.MemberFilter, error) {
	switch status {
	case "", directory.StatusActive:
		return directory.MemberFilter{Status: directory.StatusActive}, nil
	case directory.StatusDisabled:
		return directory.MemberFilter{Status: directory.StatusDisabled}, nil
	case memberStatusAll:
		return directory.MemberFilter{}, nil
	}
	return directory.MemberFilter{}, errBadRequest("status must be one of active, disabled, all")
}

func (s *server) listGroupMembers(c *gin.Context) error {
	ctx := c.Request.Context()
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	f, err := memberFilter(c.Query("status"))
	if err != nil {
		return err
	}
	if _, err := s.store.GetGroup(ctx, c.Param("id")); err != nil {
		return err
	}
	page, err := s.store.ListGroupMembers(ctx, c.Param("id"), f, opt)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, mapPage(page, func(u *directory.User) *directory.User { return userOut(u) }))
	return nil
}

// readName reads {"name": "…"}, the body of a new group or role.
func readName(c *gin.Context) (string, error) {
	var req struct {
		Name string `json:"name"`
	}
	if err := readJSON(c, &req); err != nil {
		return "", err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return "", errInvalidField("name", "required")
	}
	var errs profile.FieldErrors
	if checkText(&errs, "name", name, rules.MaxNameLength); len(errs) > 0 {
		return "", errs
	}
	return name, nil
}

func (s *server) createGroup(c *gin.Context) error {
	name, err := readName(c)
	if err != nil {
		return err
	}
	g := &directory.Group{Name: name}
	if err := s.store.CreateGroup(c.Request.Context(), g); err != nil {
		if errors.Is(err, directory.ErrConflict) {
			return errConflict("a local group named %q exists", name)
		}
		return err
	}
	s.auditDirectory(c, "group_created", g.Name, "local group "+g.ID)
	c.JSON(http.StatusCreated, g)
	return nil
}

func (s *server) addGroupMember(c *gin.Context) error {
	if err := s.store.AddGroupMember(c.Request.Context(), c.Param("id"), c.Param("userId")); err != nil {
		return err
	}
	s.auditDirectory(c, "group_member_added", c.Param("userId"), "group "+c.Param("id"))
	c.Status(http.StatusNoContent)
	return nil
}

func (s *server) removeGroupMember(c *gin.Context) error {
	if err := s.store.RemoveGroupMember(c.Request.Context(), c.Param("id"), c.Param("userId")); err != nil {
		return err
	}
	s.auditDirectory(c, "group_member_removed", c.Param("userId"), "group "+c.Param("id"))
	c.Status(http.StatusNoContent)
	return nil
}

func (s *server) listRoles(c *gin.Context) error {
	opt, err := listOptions(c)
	if err != nil {
		return err
	}
	page, err := s.store.ListRoles(c.Request.Context(), opt)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}

func (s *server) createRole(c *gin.Context) error {
	name, err := readName(c)
	if err != nil {
		return err
	}
	r := &directory.Role{Name: name}
	if err := s.store.CreateRole(c.Request.Context(), r); err != nil {
		if errors.Is(err, directory.ErrConflict) {
			return errConflict("a role named %q exists", name)
		}
		return err
	}
	s.auditDirectory(c, "role_created", r.Name, "role "+r.ID)
	c.JSON(http.StatusCreated, r)
	return nil
}

func (s *server) addRoleMember(c *gin.Context) error {
	if err := s.store.AddRoleMember(c.Request.Context(), c.Param("id"), c.Param("userId")); err != nil {
		return err
	}
	s.auditDirectory(c, "role_member_added", c.Param("userId"), "role "+c.Param("id"))
	c.Status(http.StatusNoContent)
	return nil
}

func (s *server) removeRoleMember(c *gin.Context) error {
	if err := s.store.RemoveRoleMember(c.Request.Context(), c.Param("id"), c.Param("userId")); err != nil {
		return err
	}
	s.auditDirectory(c, "role_member_removed", c.Param("userId"), "role "+c.Param("id"))
	c.Status(http.StatusNoContent)
	return nil
}
