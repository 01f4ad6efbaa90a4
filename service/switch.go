package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/rules"
)

// MaxSwitchUsernames bounds one switch-directory request, like a page.
const MaxSwitchUsernames = 1000

// SwitchOutcome is what a switch-directory did.
type SwitchOutcome struct {
	DirectoryKey string
	ProfileID    string
	Switched     int
	Results      []directory.SwitchResult
}

// SwitchDirectory moves local users, by username, to a profile's
// directory, whose next sync adopts them by username instead of reporting
// them as conflicts: one result per username, each move audited. A
// directory no profile owns is Invalid on directoryKey.
func (s *Service) SwitchDirectory(ctx context.Context, directoryKey string, usernames []string) (*SwitchOutcome, error) {
	key := strings.TrimSpace(directoryKey)
	var errs profile.FieldErrors
	checkText(&errs, "directoryKey", key, MaxIDLength)
	for i, u := range usernames {
		checkText(&errs, indexed("usernames", i), u, rules.MaxUsernameLength)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	switch {
	case key == "":
		errs = append(errs, profile.FieldError{Field: "directoryKey", Message: "required"})
	case key == directory.LocalDirectory:
		errs = append(errs, profile.FieldError{Field: "directoryKey",
			Message: "must be a profile's directory: switch-directory moves local users out of \"local\""})
	}
	switch {
	case len(usernames) == 0:
		errs = append(errs, profile.FieldError{Field: "usernames", Message: "at least one username"})
	case len(usernames) > MaxSwitchUsernames:
		errs = append(errs, profile.FieldError{Field: "usernames", Message: fmt.Sprintf("at most %d per request", MaxSwitchUsernames)})
	}
	for i, u := range usernames {
		if strings.TrimSpace(u) == "" {
			errs = append(errs, profile.FieldError{Field: fmt.Sprintf("usernames[%d]", i), Message: "empty"})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	owner, err := s.profileOfDirectory(ctx, key)
	if err != nil {
		return nil, err
	}
	results, err := s.store.SwitchDirectory(ctx, key, usernames)
	if errors.Is(err, directory.ErrNotFound) { // the profile was deleted meanwhile
		return nil, errNoDirectory()
	}
	if err != nil {
		return nil, err
	}
	switched := 0
	for _, r := range results {
		if r.Result != directory.SwitchSwitched {
			continue
		}
		switched++
		s.record(ctx, directory.AuditEntry{Category: directory.CategoryDirectory, Action: "user_directory_switched",
			Connection: owner.Name, Subject: r.Username,
			Details: fmt.Sprintf("user %s moved from %s to %s (profile %s); its next sync adopts it", r.UserID,
				directory.LocalDirectory, key, owner.Name)})
	}
	return &SwitchOutcome{DirectoryKey: key, ProfileID: owner.ID, Switched: switched, Results: results}, nil
}

func errNoDirectory() error {
	return errInvalidField("directoryKey", "no profile has this directory key")
}

// profileOfDirectory finds the profile that owns a directory key. Profiles
// are few (one per connection), so a scan is cheap and needs no store
// method of its own.
func (s *Service) profileOfDirectory(ctx context.Context, key string) (*directory.Profile, error) {
	opt := directory.ListOptions{Limit: 1000}
	for {
		page, err := s.store.ListProfiles(ctx, opt)
		if err != nil {
			return nil, err
		}
		for i := range page.Items {
			if page.Items[i].DirectoryKey == key {
				return &page.Items[i], nil
			}
		}
		if page.NextCursor == "" {
			return nil, errNoDirectory()
		}
		opt.Cursor = page.NextCursor
	}
}
