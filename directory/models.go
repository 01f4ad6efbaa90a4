package directory

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/usersync/usersync/syncrun"
)

// Errors the store returns; callers test them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict is a uniqueness violation: a name or username taken.
	ErrConflict = errors.New("already exists")
)

// LocalDirectory is the key of the directory of local (not synced) accounts.
const LocalDirectory = "local"

// User statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Audit categories.
const (
	CategorySync       = "UserSync"
	CategorySyncConfig = "UserSyncConfig"
	CategoryDirectory  = "Directory"
)

// Run statuses and phases: syncrun's, which the workflow code shares
// without linking the store.
const (
	RunRunning          = syncrun.RunRunning
	RunAwaitingApproval = syncrun.RunAwaitingApproval
	RunSucceeded        = syncrun.RunSucceeded
	RunFailed           = syncrun.RunFailed
	RunCancelled        = syncrun.RunCancelled
	RunBlocked          = syncrun.RunBlocked
	RunSkipped          = syncrun.RunSkipped
	RunPartial          = syncrun.RunPartial

	PhaseFetch = syncrun.PhaseFetch
	PhasePlan  = syncrun.PhasePlan
	PhaseApply = syncrun.PhaseApply
	PhaseDone  = syncrun.PhaseDone
)

// Page is one page of a listing; NextCursor is "" on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// ListOptions pages a listing. Limit 0 means 100; more than 1000 is cut to 1000.
type ListOptions struct {
	Limit  int
	Cursor string
}

// Profile is a connection profile as stored: Config holds everything but
// the secrets, Secrets the sealed secret fields (see package secret).
type Profile struct {
	ID           string          `db:"id"`
	Name         string          `db:"name"`
	Provider     string          `db:"provider"`
	Enabled      bool            `db:"enabled"`
	DirectoryKey string          `db:"directory_key"`
	Config       json.RawMessage `db:"config"`
	Secrets      string          `db:"secrets"`
	CreatedAt    time.Time       `db:"created_at"`
	UpdatedAt    time.Time       `db:"updated_at"`
}

// User is a directory user.
type User struct {
	ID           string            `db:"id" json:"id"`
	Username     string            `db:"username" json:"username"`
	FirstName    string            `db:"first_name" json:"firstName"`
	LastName     string            `db:"last_name" json:"lastName"`
	Email        string            `db:"email" json:"email"`
	Status       string            `db:"status" json:"status"`
	DirectoryKey string            `db:"directory_key" json:"directoryKey"`
	ExternalID   *string           `db:"external_id" json:"externalId"`
	ManagerID    *string           `db:"manager_id" json:"managerId"`
	Attributes   map[string]string `db:"-" json:"attributes"`
	Groups       []string          `db:"-" json:"groups"` // group names, filled by GetUser
	PasswordHash string            `db:"password_hash" json:"-"`
	CreatedAt    time.Time         `db:"created_at" json:"createdAt"`
	UpdatedAt    time.Time         `db:"updated_at" json:"updatedAt"`
	DisabledAt   *time.Time        `db:"disabled_at" json:"disabledAt"`
}

// UserFilter narrows ListUsers.
type UserFilter struct {
	Status    string // active | disabled | ""
	Directory string // directory key or ""
	Query     string // case-insensitive substring of username, names or email
}

// Group is a directory group.
type Group struct {
	ID           string  `db:"id" json:"id"`
	Name         string  `db:"name" json:"name"`
	DirectoryKey string  `db:"directory_key" json:"directoryKey"`
	ExternalID   *string `db:"external_id" json:"externalId"`
	// MemberCount counts the active members only: a disabled user is in
	// no group's count. DisabledMemberCount counts the disabled members,
	// whose memberships are kept.
	MemberCount         int       `db:"member_count" json:"memberCount"`
	DisabledMemberCount int       `db:"disabled_member_count" json:"disabledMemberCount"`
	CreatedAt           time.Time `db:"created_at" json:"createdAt"`
	UpdatedAt           time.Time `db:"updated_at" json:"updatedAt"`
}

// MemberFilter narrows ListGroupMembers.
type MemberFilter struct {
	Status string // active | disabled | "" (every member)
}

// Role is a role; sync never touches roles or their members.
type Role struct {
	ID          string    `db:"id" json:"id"`
	Name        string    `db:"name" json:"name"`
	MemberCount int       `db:"member_count" json:"memberCount"`
	CreatedAt   time.Time `db:"created_at" json:"createdAt"`
}

// RunCounts are the counts of a run (syncrun.RunCounts).
type RunCounts = syncrun.RunCounts

// Run is one sync run.
type Run struct {
	ID               string     `db:"id"`
	ProfileID        string     `db:"profile_id"`
	ProfileName      string     `db:"profile_name"`
	Provider         string     `db:"provider"`
	DirectoryKey     string     `db:"directory_key"`
	Trigger          string     `db:"trigger"`
	DryRun           bool       `db:"dry_run"`
	Status           string     `db:"status"`
	Phase            string     `db:"phase"`
	Error            string     `db:"error"`
	WorkflowID       string     `db:"workflow_id"`
	TemporalRunID    string     `db:"temporal_run_id"`
	StartedAt        time.Time  `db:"started_at"`
	FinishedAt       *time.Time `db:"finished_at"`
	SourceDocumentID string     `db:"source_document_id"`
	FetchCursor      string     `db:"fetch_cursor"`
	FetchDone        bool       `db:"fetch_done"`
	ApplyStep        string     `db:"apply_step"`
	ApplyCursor      string     `db:"apply_cursor"`
	CountsJSON       string     `db:"counts"`
	Counts           RunCounts  `db:"-"`
	// Mode is how the run read its source (ModeFull, ModeDelta), "" until
	// it decided; GetRun and ListRuns fill it.
	Mode string `db:"sync_mode"`
	// RevertOf is the run a revert run (trigger "revert") reverts.
	RevertOf string `db:"revert_of"`
}

// RunFilter narrows ListRuns.
type RunFilter struct {
	ProfileID string
	Status    string
}

// AuditEntry is one line of the audit log. It never carries a secret.
type AuditEntry struct {
	ID         int64     `db:"id" json:"id"`
	At         time.Time `db:"at" json:"at"`
	Category   string    `db:"category" json:"category"`
	Action     string    `db:"action" json:"action"`
	Connection string    `db:"connection" json:"connection"`
	RunID      string    `db:"run_id" json:"runId"`
	Subject    string    `db:"subject" json:"subject"`
	Details    string    `db:"details" json:"details"`
}

// AuditFilter narrows ListAudit; empty fields match all.
type AuditFilter struct {
	Category string
	Action   string
	// ActionWord matches an action that is, or ends in, the word:
	// "created" finds user_created and profile_created, "member_added"
	// finds group_member_added too. (The filter people type.)
	ActionWord string
	Connection string // profile name
	RunID      string
	Subject    string
	Since      time.Time
}

// FieldChange is one changed field in a ledger entry.
type FieldChange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Change is one entry of the per-object change ledger of a run.
type Change struct {
	ID          int64                  `db:"id" json:"-"`
	RunID       string                 `db:"run_id" json:"-"`
	SubjectType string                 `db:"subject_type" json:"subjectType"`
	SubjectID   string                 `db:"subject_id" json:"subjectId"`
	Username    string                 `db:"username" json:"username"`
	Action      string                 `db:"action" json:"action"`
	Reason      string                 `db:"reason" json:"reason"`
	ChangesJSON string                 `db:"changes" json:"-"`
	Changes     map[string]FieldChange `db:"-" json:"changes"`
	At          time.Time              `db:"at" json:"at"`
}

// Document is a stored file (a CSV a profile reads).
type Document struct {
	ID          string    `db:"id" json:"id"`
	Name        string    `db:"name" json:"name"`
	Size        int64     `db:"size" json:"size"`
	SHA256      string    `db:"sha256" json:"sha256"`
	ContentType string    `db:"content_type" json:"contentType"`
	CreatedAt   time.Time `db:"created_at" json:"createdAt"`
}
