package directory

import (
	"context"
	"io"
	"time"
)

// Store is everything usersync keeps. *SQLStore implements it for both
// dialects; the conformance suite (storetest) runs against each.
type Store interface {
	// Profiles. CreateProfile also creates the profile's directory
	// (DirectoryKey must be set by the caller). Names are unique
	// case-insensitively: ErrConflict.
	CreateProfile(ctx context.Context, p *Profile) error
	GetProfile(ctx context.Context, id string) (*Profile, error)
	ListProfiles(ctx context.Context, opt ListOptions) (Page[Profile], error)
	UpdateProfile(ctx context.Context, p *Profile) error
	// DeleteProfile removes the profile; its directory and users stay
	// (disabling or removing synced users is a separate, explicit act).
	DeleteProfile(ctx context.Context, id string) error

	// Documents are stored in chunks so that a reader can start at any
	// byte offset without loading the whole file.
	CreateDocument(ctx context.Context, name, contentType string, r io.Reader, maxSize int64) (*Document, error)
	GetDocument(ctx context.Context, id string) (*Document, error)
	ListDocuments(ctx context.Context, opt ListOptions) (Page[Document], error)
	DeleteDocument(ctx context.Context, id string) error
	// OpenDocument reads a document from byte offset on.
	OpenDocument(ctx context.Context, id string, offset int64) (io.ReadCloser, error)

	// Users. CreateUser makes a local user (DirectoryKey "local" unless set);
	// a username taken case-insensitively is ErrConflict.
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context, f UserFilter, opt ListOptions) (Page[User], error)
	// SetUserStatus enables or disables a user by hand.
	SetUserStatus(ctx context.Context, id, status string, at time.Time) error
	DeleteUser(ctx context.Context, id string) error
	// SwitchDirectory moves local users, by username, to a profile's
	// directory (crud_switch.go): one result per username, in order; a
	// directory no profile owns is ErrNotFound.
	SwitchDirectory(ctx context.Context, directoryKey string, usernames []string) ([]SwitchResult, error)

	// Groups. CreateGroup makes a local group.
	CreateGroup(ctx context.Context, g *Group) error
	GetGroup(ctx context.Context, id string) (*Group, error)
	ListGroups(ctx context.Context, q string, opt ListOptions) (Page[Group], error)
	// ListGroupMembers lists a group's members, of one status when the
	// filter says so.
	ListGroupMembers(ctx context.Context, groupID string, f MemberFilter, opt ListOptions) (Page[User], error)
	AddGroupMember(ctx context.Context, groupID, userID string) error
	RemoveGroupMember(ctx context.Context, groupID, userID string) error

	// Roles; sync never touches them.
	CreateRole(ctx context.Context, r *Role) error
	ListRoles(ctx context.Context, opt ListOptions) (Page[Role], error)
	AddRoleMember(ctx context.Context, roleID, userID string) error
	RemoveRoleMember(ctx context.Context, roleID, userID string) error
	ListRoleMembers(ctx context.Context, roleID string) ([]string, error)

	// Audit log.
	AddAudit(ctx context.Context, e *AuditEntry) error
	ListAudit(ctx context.Context, f AuditFilter, opt ListOptions) (Page[AuditEntry], error)
	// LastAudit is, for each subject, its newest entry of the category and
	// action, in one query, by subject; a subject without one is not in
	// the map (a page of profiles reads each one's last Test connection).
	LastAudit(ctx context.Context, category, action string, subjects []string) (map[string]*AuditEntry, error)

	// Admin sessions: a signed-out session is revoked on every replica
	// (crud_sessions.go).
	RevokeSession(ctx context.Context, id string, until time.Time) error
	SessionRevoked(ctx context.Context, id string) (bool, error)

	// Settings: the licence limit (0 = unlimited).
	GetLicenceLimit(ctx context.Context) (int, error)
	SetLicenceLimit(ctx context.Context, limit int) error
	// CountActiveUsers counts active users of all directories (the licence).
	CountActiveUsers(ctx context.Context) (int, error)

	// Runs.
	// CreateRun inserts the run, or does nothing when a run of that id
	// exists (the API and the workflow both record a run; whoever is first wins).
	CreateRun(ctx context.Context, r *Run) error
	GetRun(ctx context.Context, id string) (*Run, error)
	ListRuns(ctx context.Context, f RunFilter, opt ListOptions) (Page[Run], error)
	// LastRun is the newest run of a profile, or ErrNotFound.
	LastRun(ctx context.Context, profileID string) (*Run, error)
	// LastRuns is LastRun for several profiles in one query, by profile
	// id; a profile without runs is not in the map.
	LastRuns(ctx context.Context, profileIDs []string) (map[string]*Run, error)
	// SetRunStatus records a status (and phase when not ""); a final status
	// also sets finished_at. errMsg replaces the stored error.
	SetRunStatus(ctx context.Context, id, status, phase, errMsg string, at time.Time) error
	ListChanges(ctx context.Context, runID, action string, opt ListOptions) (Page[Change], error)
	// LastManualSuccess is the newest succeeded, non-dry run of the profile
	// not started by its schedule and finished at or before notAfter, or
	// ErrNotFound (the daily schedule's skip rule).
	LastManualSuccess(ctx context.Context, profileID string, notAfter time.Time) (*Run, error)
	// OpenRun is the newest run of the profile not yet ended, or
	// ErrNotFound. (The newest run may be a skipped tick newer than it.)
	OpenRun(ctx context.Context, profileID string) (*Run, error)

	// Sync engine (sync.go): staging, plan and apply for one run.
	SyncEngine
	// Reverting a run (revert.go).
	RevertEngine
}
