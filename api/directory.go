package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/rules"
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

// createUser makes a local user: the fields a synced user must have are
// required here too, and a password is kept only as a bcrypt hash.
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
	req.Username, req.FirstName, req.LastName, req.Email = strings.TrimSpace(req.Username),
		strings.TrimSpace(req.FirstName), strings.TrimSpace(req.LastName), strings.TrimSpace(req.Email)
	var errs profile.FieldErrors
	for _, f := range rules.MissingFields(rules.Record{Username: req.Username, FirstName: req.FirstName,
		LastName: req.LastName, Email: req.Email}) {
		errs = append(errs, profile.FieldError{Field: f, Message: "required"})
	}
	checkText(&errs, "username", req.Username, rules.MaxUsernameLength)
	checkText(&errs, "firstName", req.FirstName, rules.MaxNameLength)
	checkText(&errs, "lastName", req.LastName, rules.MaxNameLength)
	checkText(&errs, "email", req.Email, rules.MaxEmailLength)
	if req.Email != "" && !rules.ValidEmail(req.Email) && rules.TextProblem(req.Email, rules.MaxEmailLength, false) == "" {
		errs = append(errs, profile.FieldError{Field: "email", Message: "not a valid email address"})
	}
	u := &directory.User{Username: req.Username, FirstName: req.FirstName, LastName: req.LastName,
		Email: req.Email, DirectoryKey: directory.LocalDirectory, Status: directory.StatusActive}
	if req.Password != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), bcrypt.DefaultCost)
		switch {
		case errors.Is(err, bcrypt.ErrPasswordTooLong):
			errs = append(errs, profile.FieldError{Field: "password", Message: "at most 72 bytes"})
		case err != nil:
			return fmt.Errorf("hash password: %w", err)
		}
		u.PasswordHash = string(hash)
	}
	if len(errs) > 0 {
		return errs
	}
	if err := s.licenceAllowsOneMore(c.Request.Context(), "create "+u.Username); err != nil {
		return err
	}
	if err := s.store.CreateUser(c.Request.Context(), u); err != nil {
		if errors.Is(err, directory.ErrConflict) {
			return errConflict("username %q is taken", u.Username)
		}
		return err
	}
	s.auditDirectory(c, "user_created", u.Username, "local user")
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
	u, err := s.setUserStatus(c.Request.Context(), c.Param("id"), req.Status)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, userOut(u))
	return nil
}

// setUserStatus enables or disables a user by hand and audits it: PATCH
// /users/{id} and the admin page's buttons (Service.SetUserStatus). A user
// enabled again counts against the licence as a new one does.
func (s *server) setUserStatus(ctx context.Context, id, status string) (*directory.User, error) {
	if status != directory.StatusActive && status != directory.StatusDisabled {
		return nil, errInvalidField("status", "must be active or disabled")
	}
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if status == directory.StatusActive && u.Status != directory.StatusActive {
		if err := s.licenceAllowsOneMore(ctx, "enable "+u.Username); err != nil {
			return nil, err
		}
	}
	if err := s.store.SetUserStatus(ctx, u.ID, status, time.Now()); err != nil {
		return nil, err
	}
	if u, err = s.store.GetUser(ctx, u.ID); err != nil {
		return nil, err
	}
	action := "user_enabled"
	if status == directory.StatusDisabled {
		action = "user_disabled"
	}
	s.record(ctx, directory.AuditEntry{Category: directory.CategoryDirectory, Action: action, Subject: u.Username, Details: "by hand"})
	return u, nil
}

func (s *server) deleteUser(c *gin.Context) error {
	if _, err := s.removeUser(c.Request.Context(), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// removeUser deletes a user and audits it: DELETE /users/{id} and the
// admin page (Service.DeleteUser). It returns the user as it was.
func (s *server) removeUser(ctx context.Context, id string) (*directory.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteUser(ctx, u.ID); err != nil {
		return nil, err
	}
	s.record(ctx, directory.AuditEntry{Category: directory.CategoryDirectory, Action: "user_deleted", Subject: u.Username,
		Details: "directory " + u.DirectoryKey})
	return u, nil
}

// CodeLicenceLimit is the code of a user refused by the licence.
const CodeLicenceLimit = "licence_limit_reached"

// licenceAllowsOneMore refuses one more active user when the licence
// limit is reached: the rule a sync applies to the users it would create
// or re-enable holds for those made active by hand too, so that a local
// account cannot take the seat a synced joiner was refused. what says
// what was asked ("create alice"). The count and the write are not one
// transaction, so two requests at the same moment may both pass; a run
// then refuses its own creations until the total is under the limit again.
func (s *server) licenceAllowsOneMore(ctx context.Context, what string) error {
	limit, err := s.store.GetLicenceLimit(ctx)
	if err != nil || limit <= 0 {
		return err
	}
	active, err := s.store.CountActiveUsers(ctx)
	if err != nil {
		return err
	}
	if active < limit {
		return nil
	}
	return &apiError{Status: http.StatusConflict, Code: CodeLicenceLimit,
		Message: fmt.Sprintf("cannot %s: the licence allows %d active users and %d are active; disable a user or raise the licence limit first",
			what, limit, active)}
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
