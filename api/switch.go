package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
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
	ctx := c.Request.Context()
	var req struct {
		Usernames    []string `json:"usernames"`
		DirectoryKey string   `json:"directoryKey"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	key := strings.TrimSpace(req.DirectoryKey)
	var errs profile.FieldErrors
	switch {
	case key == "":
		errs = append(errs, profile.FieldError{Field: "directoryKey", Message: "required"})
	case key == directory.LocalDirectory:
		errs = append(errs, profile.FieldError{Field: "directoryKey",
			Message: "must be a profile's directory: switch-directory moves local users out of \"local\""})
	}
	switch {
	case len(req.Usernames) == 0:
		errs = append(errs, profile.FieldError{Field: "usernames", Message: "at least one username"})
	case len(req.Usernames) > maxSwitchUsernames:
		errs = append(errs, profile.FieldError{Field: "usernames", Message: fmt.Sprintf("at most %d per request", maxSwitchUsernames)})
	}
	for i, u := range req.Usernames {
		if strings.TrimSpace(u) == "" {
			errs = append(errs, profile.FieldError{Field: fmt.Sprintf("usernames[%d]", i), Message: "empty"})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	owner, err := s.profileOfDirectory(c, key)
	if err != nil {
		return err
	}
	results, err := s.store.SwitchDirectory(ctx, key, req.Usernames)
	if errors.Is(err, directory.ErrNotFound) { // the profile was deleted meanwhile
		return errNoDirectory()
	}
	if err != nil {
		return err
	}
	switched := 0
	for _, r := range results {
		if r.Result != directory.SwitchSwitched {
			continue
		}
		switched++
		s.audit(c, directory.AuditEntry{Category: directory.CategoryDirectory, Action: "user_directory_switched",
			Connection: owner.Name, Subject: r.Username,
			Details: fmt.Sprintf("user %s moved from %s to %s (profile %s); its next sync adopts it", r.UserID,
				directory.LocalDirectory, key, owner.Name)})
	}
	c.JSON(http.StatusOK, gin.H{"directoryKey": key, "profileId": owner.ID, "switched": switched, "results": results})
	return nil
}

func errNoDirectory() error {
	return errInvalidField("directoryKey", "no profile has this directory key")
}

// profileOfDirectory finds the profile that owns a directory key. Profiles
// are few (one per connection), so a scan is cheap and needs no store
// method of its own.
func (s *server) profileOfDirectory(c *gin.Context, key string) (*directory.Profile, error) {
	opt := directory.ListOptions{Limit: maxLimit}
	for {
		page, err := s.store.ListProfiles(c.Request.Context(), opt)
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
