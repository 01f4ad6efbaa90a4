package directory

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Outcomes of SwitchDirectory for one username. Usernames are unique
// across the whole directory, so the user a username names is the only
// one that can hold it: "taken by someone else" is SwitchNotLocal, with
// the directory that holds it.
const (
	// SwitchSwitched: a local user now belongs to the target directory;
	// the profile's next sync adopts it (it has no external id yet, and
	// the plan matches it by username).
	SwitchSwitched = "switched"
	// SwitchNotFound: no user has the username.
	SwitchNotFound = "not_found"
	// SwitchNotLocal: the user belongs to another profile's directory;
	// only local accounts can be switched.
	SwitchNotLocal = "not_local"
	// SwitchAlreadyThere: the user is in the target directory already
	// (a repeated request, or the username twice in one request).
	SwitchAlreadyThere = "already_in_directory"
)

// SwitchResult is what SwitchDirectory did with one username.
type SwitchResult struct {
	Username string `json:"username"` // as asked
	Result   string `json:"result"`
	UserID   string `json:"userId,omitempty"`
	// DirectoryKey is the user's directory after the call.
	DirectoryKey string `json:"directoryKey,omitempty"`
}

// SwitchDirectory moves local users, named by username (case-insensitive),
// into the directory of a profile: the migration step before a profile
// takes over accounts that already exist. It answers one result per
// username, in order, and changes nothing else about the users (status,
// groups, roles, manager). A directory key that no profile owns, or
// "local", is ErrNotFound.
func (s *SQLStore) SwitchDirectory(ctx context.Context, directoryKey string, usernames []string) ([]SwitchResult, error) {
	out := make([]SwitchResult, 0, len(usernames))
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		out = out[:0]
		ok, err := s.exists(ctx, tx, `SELECT 1 FROM profiles WHERE directory_key = ?`, directoryKey)
		if err != nil {
			return fmt.Errorf("switch directory: %w", err)
		}
		if !ok || directoryKey == LocalDirectory {
			return fmt.Errorf("directory %q: no profile has it: %w", directoryKey, ErrNotFound)
		}
		now := s.Now()
		for _, name := range usernames {
			res := SwitchResult{Username: name}
			var u struct {
				ID           string `db:"id"`
				DirectoryKey string `db:"directory_key"`
			}
			err := s.get(ctx, tx, &u, `SELECT id, directory_key FROM users WHERE username_lower = ?`,
				strings.ToLower(strings.TrimSpace(name)))
			switch err := dbErr("user "+name, err); {
			case errors.Is(err, ErrNotFound):
				res.Result = SwitchNotFound
			case err != nil:
				return fmt.Errorf("switch directory: %w", err)
			case u.DirectoryKey == directoryKey:
				res.Result, res.UserID, res.DirectoryKey = SwitchAlreadyThere, u.ID, u.DirectoryKey
			case u.DirectoryKey != LocalDirectory:
				res.Result, res.UserID, res.DirectoryKey = SwitchNotLocal, u.ID, u.DirectoryKey
			default:
				if _, err := s.exec(ctx, tx, `UPDATE users SET directory_key = ?, updated_at = ?
					WHERE id = ? AND directory_key = ?`, directoryKey, now, u.ID, LocalDirectory); err != nil {
					return fmt.Errorf("switch user %s: %w", u.ID, err)
				}
				res.Result, res.UserID, res.DirectoryKey = SwitchSwitched, u.ID, directoryKey
			}
			out = append(out, res)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
