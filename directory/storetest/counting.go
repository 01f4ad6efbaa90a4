package storetest

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/usersync/usersync/directory"
)

// Counting is a Store that counts the calls of each of its methods (the
// sync and revert engines' pass through uncounted), for tests that hold a
// page to a fixed number of reads however many rows it shows: a query per
// row shows as a count that grows with the rows.
type Counting struct {
	directory.Store
	mu    sync.Mutex
	calls map[string]int
}

// NewCounting counts the calls made to s.
func NewCounting(s directory.Store) *Counting { return &Counting{Store: s, calls: map[string]int{}} }

// Reset forgets the calls counted so far.
func (c *Counting) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = map[string]int{}
}

// Calls are the calls counted since the last Reset, by method name.
func (c *Counting) Calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

func (c *Counting) count(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[method]++
}

func (c *Counting) CreateProfile(ctx context.Context, p *directory.Profile) error {
	c.count("CreateProfile")
	return c.Store.CreateProfile(ctx, p)
}

func (c *Counting) GetProfile(ctx context.Context, id string) (*directory.Profile, error) {
	c.count("GetProfile")
	return c.Store.GetProfile(ctx, id)
}

func (c *Counting) ListProfiles(ctx context.Context, opt directory.ListOptions) (directory.Page[directory.Profile], error) {
	c.count("ListProfiles")
	return c.Store.ListProfiles(ctx, opt)
}

func (c *Counting) UpdateProfile(ctx context.Context, p *directory.Profile) error {
	c.count("UpdateProfile")
	return c.Store.UpdateProfile(ctx, p)
}

func (c *Counting) DeleteProfile(ctx context.Context, id string) error {
	c.count("DeleteProfile")
	return c.Store.DeleteProfile(ctx, id)
}

func (c *Counting) CreateDocument(ctx context.Context, name, contentType string, r io.Reader, maxSize int64) (*directory.Document, error) {
	c.count("CreateDocument")
	return c.Store.CreateDocument(ctx, name, contentType, r, maxSize)
}

func (c *Counting) GetDocument(ctx context.Context, id string) (*directory.Document, error) {
	c.count("GetDocument")
	return c.Store.GetDocument(ctx, id)
}

func (c *Counting) ListDocuments(ctx context.Context, opt directory.ListOptions) (directory.Page[directory.Document], error) {
	c.count("ListDocuments")
	return c.Store.ListDocuments(ctx, opt)
}

func (c *Counting) DeleteDocument(ctx context.Context, id string) error {
	c.count("DeleteDocument")
	return c.Store.DeleteDocument(ctx, id)
}

func (c *Counting) OpenDocument(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	c.count("OpenDocument")
	return c.Store.OpenDocument(ctx, id, offset)
}

func (c *Counting) CreateUser(ctx context.Context, u *directory.User) error {
	c.count("CreateUser")
	return c.Store.CreateUser(ctx, u)
}

func (c *Counting) GetUser(ctx context.Context, id string) (*directory.User, error) {
	c.count("GetUser")
	return c.Store.GetUser(ctx, id)
}

func (c *Counting) ListUsers(ctx context.Context, f directory.UserFilter, opt directory.ListOptions) (directory.Page[directory.User], error) {
	c.count("ListUsers")
	return c.Store.ListUsers(ctx, f, opt)
}

func (c *Counting) SetUserStatus(ctx context.Context, id, status string, at time.Time) error {
	c.count("SetUserStatus")
	return c.Store.SetUserStatus(ctx, id, status, at)
}

func (c *Counting) DeleteUser(ctx context.Context, id string) error {
	c.count("DeleteUser")
	return c.Store.DeleteUser(ctx, id)
}

func (c *Counting) SwitchDirectory(ctx context.Context, directoryKey string, usernames []string) ([]directory.SwitchResult, error) {
	c.count("SwitchDirectory")
	return c.Store.SwitchDirectory(ctx, directoryKey, usernames)
}

func (c *Counting) CreateGroup(ctx context.Context, g *directory.Group) error {
	c.count("CreateGroup")
	return c.Store.CreateGroup(ctx, g)
}

func (c *Counting) GetGroup(ctx context.Context, id string) (*directory.Group, error) {
	c.count("GetGroup")
	return c.Store.GetGroup(ctx, id)
}

func (c *Counting) ListGroups(ctx context.Context, q string, opt directory.ListOptions) (directory.Page[directory.Group], error) {
	c.count("ListGroups")
	return c.Store.ListGroups(ctx, q, opt)
}

func (c *Counting) ListGroupMembers(ctx context.Context, groupID string, f directory.MemberFilter, opt directory.ListOptions) (directory.Page[directory.User], error) {
	c.count("ListGroupMembers")
	return c.Store.ListGroupMembers(ctx, groupID, f, opt)
}

func (c *Counting) AddGroupMember(ctx context.Context, groupID, userID string) error {
	c.count("AddGroupMember")
	return c.Store.AddGroupMember(ctx, groupID, userID)
}

func (c *Counting) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	c.count("RemoveGroupMember")
	return c.Store.RemoveGroupMember(ctx, groupID, userID)
}

func (c *Counting) CreateRole(ctx context.Context, r *directory.Role) error {
	c.count("CreateRole")
	return c.Store.CreateRole(ctx, r)
}

func (c *Counting) ListRoles(ctx context.Context, opt directory.ListOptions) (directory.Page[directory.Role], error) {
	c.count("ListRoles")
	return c.Store.ListRoles(ctx, opt)
}

func (c *Counting) AddRoleMember(ctx context.Context, roleID, userID string) error {
	c.count("AddRoleMember")
	return c.Store.AddRoleMember(ctx, roleID, userID)
}

func (c *Counting) RemoveRoleMember(ctx context.Context, roleID, userID string) error {
	c.count("RemoveRoleMember")
	return c.Store.RemoveRoleMember(ctx, roleID, userID)
}

func (c *Counting) ListRoleMembers(ctx context.Context, roleID string) ([]string, error) {
	c.count("ListRoleMembers")
	return c.Store.ListRoleMembers(ctx, roleID)
}

func (c *Counting) AddAudit(ctx context.Context, e *directory.AuditEntry) error {
	c.count("AddAudit")
	return c.Store.AddAudit(ctx, e)
}

func (c *Counting) ListAudit(ctx context.Context, f directory.AuditFilter, opt directory.ListOptions) (directory.Page[directory.AuditEntry], error) {
	c.count("ListAudit")
	return c.Store.ListAudit(ctx, f, opt)
}

func (c *Counting) LastAudit(ctx context.Context, category, action string, subjects []string) (map[string]*directory.AuditEntry, error) {
	c.count("LastAudit")
	return c.Store.LastAudit(ctx, category, action, subjects)
}

func (c *Counting) RevokeSession(ctx context.Context, id string, until time.Time) error {
	c.count("RevokeSession")
	return c.Store.RevokeSession(ctx, id, until)
}

func (c *Counting) SessionRevoked(ctx context.Context, id string) (bool, error) {
	c.count("SessionRevoked")
	return c.Store.SessionRevoked(ctx, id)
}

func (c *Counting) GetLicenceLimit(ctx context.Context) (int, error) {
	c.count("GetLicenceLimit")
	return c.Store.GetLicenceLimit(ctx)
}

func (c *Counting) SetLicenceLimit(ctx context.Context, limit int) error {
	c.count("SetLicenceLimit")
	return c.Store.SetLicenceLimit(ctx, limit)
}

func (c *Counting) CountActiveUsers(ctx context.Context) (int, error) {
	c.count("CountActiveUsers")
	return c.Store.CountActiveUsers(ctx)
}

func (c *Counting) CreateRun(ctx context.Context, r *directory.Run) error {
	c.count("CreateRun")
	return c.Store.CreateRun(ctx, r)
}

func (c *Counting) GetRun(ctx context.Context, id string) (*directory.Run, error) {
	c.count("GetRun")
	return c.Store.GetRun(ctx, id)
}

func (c *Counting) ListRuns(ctx context.Context, f directory.RunFilter, opt directory.ListOptions) (directory.Page[directory.Run], error) {
	c.count("ListRuns")
	return c.Store.ListRuns(ctx, f, opt)
}

func (c *Counting) LastRun(ctx context.Context, profileID string) (*directory.Run, error) {
	c.count("LastRun")
	return c.Store.LastRun(ctx, profileID)
}

func (c *Counting) LastRuns(ctx context.Context, profileIDs []string) (map[string]*directory.Run, error) {
	c.count("LastRuns")
	return c.Store.LastRuns(ctx, profileIDs)
}

func (c *Counting) SetRunStatus(ctx context.Context, id, status, phase, errMsg string, at time.Time) error {
	c.count("SetRunStatus")
	return c.Store.SetRunStatus(ctx, id, status, phase, errMsg, at)
}

func (c *Counting) ListChanges(ctx context.Context, runID, action string, opt directory.ListOptions) (directory.Page[directory.Change], error) {
	c.count("ListChanges")
	return c.Store.ListChanges(ctx, runID, action, opt)
}

func (c *Counting) LastManualSuccess(ctx context.Context, profileID string, notAfter time.Time) (*directory.Run, error) {
	c.count("LastManualSuccess")
	return c.Store.LastManualSuccess(ctx, profileID, notAfter)
}

func (c *Counting) OpenRun(ctx context.Context, profileID string) (*directory.Run, error) {
	c.count("OpenRun")
	return c.Store.OpenRun(ctx, profileID)
}
