package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/rules"
)

// SetUserStatus enables (directory.StatusActive) or disables a user by
// hand and audits it. A user enabled again counts against the licence as
// a new one does: beyond it, a Conflict with CodeLicenceLimit. A sync
// re-enables a user of its directory that is active in the provider.
func (s *Service) SetUserStatus(ctx context.Context, id, status string) (*directory.User, error) {
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

// DeleteUser deletes a user and audits it. It returns the user as it was.
func (s *Service) DeleteUser(ctx context.Context, id string) (*directory.User, error) {
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

// licenceAllowsOneMore refuses one more active user when the licence
// limit is reached: the rule a sync applies to the users it would create
// or re-enable holds for those made active by hand too, so that a local
// account cannot take the seat a synced joiner was refused. what says
// what was asked ("create alice"). The count and the write are not one
// transaction, so two requests at the same moment may both pass; a run
// then refuses its own creations until the total is under the limit again.
func (s *Service) licenceAllowsOneMore(ctx context.Context, what string) error {
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
	return &Error{Kind: Conflict, Code: CodeLicenceLimit,
		Message: fmt.Sprintf("cannot %s: the licence allows %d active users and %d are active; disable a user or raise the licence limit first",
			what, limit, active)}
}

// UserInput is a local user made by hand.
type UserInput struct {
	Username, FirstName, LastName, Email string
	// Password, when set, is kept only as a bcrypt hash.
	Password string
}

// CreateUser makes a local user: the fields a synced user must have are
// required here too, and the licence is checked as for a user enabled
// again. A username taken is a Conflict.
func (s *Service) CreateUser(ctx context.Context, in UserInput) (*directory.User, error) {
	in.Username, in.FirstName, in.LastName, in.Email = strings.TrimSpace(in.Username),
		strings.TrimSpace(in.FirstName), strings.TrimSpace(in.LastName), strings.TrimSpace(in.Email)
	var errs profile.FieldErrors
	for _, f := range rules.MissingFields(rules.Record{Username: in.Username, FirstName: in.FirstName,
		LastName: in.LastName, Email: in.Email}) {
		errs = append(errs, profile.FieldError{Field: f, Message: "required"})
	}
	checkText(&errs, "username", in.Username, rules.MaxUsernameLength)
	checkText(&errs, "firstName", in.FirstName, rules.MaxNameLength)
	checkText(&errs, "lastName", in.LastName, rules.MaxNameLength)
	checkText(&errs, "email", in.Email, rules.MaxEmailLength)
	if in.Email != "" && !rules.ValidEmail(in.Email) && rules.TextProblem(in.Email, rules.MaxEmailLength, false) == "" {
		errs = append(errs, profile.FieldError{Field: "email", Message: "not a valid email address"})
	}
	u := &directory.User{Username: in.Username, FirstName: in.FirstName, LastName: in.LastName,
		Email: in.Email, DirectoryKey: directory.LocalDirectory, Status: directory.StatusActive}
	if in.Password != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), bcrypt.DefaultCost)
		switch {
		case errors.Is(err, bcrypt.ErrPasswordTooLong):
			errs = append(errs, profile.FieldError{Field: "password", Message: "at most 72 bytes"})
		case err != nil:
			return nil, fmt.Errorf("hash password: %w", err)
		}
		u.PasswordHash = string(hash)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if err := s.licenceAllowsOneMore(ctx, "create "+u.Username); err != nil {
		return nil, err
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, directory.ErrConflict) {
			return nil, errConflict("username %q is taken", u.Username)
		}
		return nil, err
	}
	s.record(ctx, directory.AuditEntry{Category: directory.CategoryDirectory, Action: "user_created", Subject: u.Username,
		Details: "local user"})
	return u, nil
}
