package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/rules"
)

// maxSwitchUsernames bounds one switch-directory request, like a page.
const maxSwitchUsernames = 1000

// switchDirectory is POST /users/switch-directory: the migration step that
// hands existing local accounts to a profile, whose next sync adopts them
// by username instead of reporting them as conflicts. It answers 200 with
// one result per username (directory.SwitchResult); a directory that no
// profile owns is a 422 on directoryKey, as a body naming a missing thing
// is elsewhere (csv.documentId).
func (s *server) switchDirectory(c *gin.Context) error {
	var req struct {
		Usernames    []string `json:"usernames"`
		DirectoryKey string   `json:"directoryKey"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	out, err := s.switchUsers(c.Request.Context(), req.DirectoryKey, req.Usernames)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"directoryKey": out.DirectoryKey, "profileId": out.ProfileID, "switched": out.Switched,
		"results": out.Results})
	return nil
}

// SwitchOutcome is what a switch-directory did.
type SwitchOutcome struct {
	DirectoryKey string
	ProfileID    string
	Switched     int
	Results      []directory.SwitchResult
}

// switchUsers moves local users to a profile's directory and audits each
// move: POST /users/switch-directory and the admin's user page.
func (s *server) switchUsers(ctx context.Context, directoryKey string, usernames []string) (*SwitchOutcome, error) {
	key := strings.TrimSpace(directoryKey)
	var errs profile.FieldErrors
	checkText(&errs, "directoryKey", key, maxIDLength)
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
	case len(usernames) > maxSwitchUsernames:
		errs = append(errs, profile.FieldError{Field: "usernames", Message: fmt.Sprintf("at most %d per request", maxSwitchUsernames)})
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
func (s *server) profileOfDirectory(ctx context.Context, key string) (*directory.Profile, error) {
	opt := directory.ListOptions{Limit: maxLimit}
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
