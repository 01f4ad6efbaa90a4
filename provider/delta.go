package provider

import (
	"context"
	"errors"
)

// DeltaSource is a Source that can tell what changed since a state it
// handed out (Graph's delta links), so that a run reads the changes rather
// than the whole directory. States are opaque strings; a run saves the ones
// it read up to when it succeeds, and the next run starts from them.
//
// The groups are read as a graph: every group with its direct members,
// users and groups alike, so that who is in scope (a member, at any depth,
// of a selected group) and in which kept groups follow from the changes
// to direct memberships.
type DeltaSource interface {
	Source
	// LatestUserState is a state of now, without reading anybody: a full
	// run takes it before it reads the users of its scope, so that the
	// next run reads every change made since.
	LatestUserState(ctx context.Context) (string, error)
	// UserChanges reads a page of the users changed since state: each in
	// its current form, or Removed when deleted.
	UserChanges(ctx context.Context, state string, c Cursor) (ChangePage[UserChange], error)
	// GroupChanges reads a page of the group graph: from state "" every
	// group with all its direct members, else the groups changed since
	// state with the memberships that started or ended.
	GroupChanges(ctx context.Context, state string, c Cursor) (ChangePage[GroupChange], error)
	// UsersByID reads users by id (those a change moved into the scope);
	// a user that no longer exists is left out.
	UsersByID(ctx context.Context, ids []string) ([]User, error)
}

// FullByChanges is a DeltaSource whose full read is its initial change
// round: UserChanges from state "" lists every user of the source, with
// what a later round tracks (Graph documents the manager only on its delta
// function), and hands out the state of that round's end. A full run of
// such a source reads the group graph first, then that round, keeping the
// users the graph puts in scope; Users is not used.
type FullByChanges interface {
	DeltaSource
	// ReadsFullByChanges is a marker: it returns true.
	ReadsFullByChanges() bool
}

// ChangePage is one page of changes; the last page (Next "") carries the
// state to read the next changes from.
type ChangePage[T any] struct {
	Items []T
	Next  Cursor
	State string
}

// UserChange is a changed user, or one that was deleted.
type UserChange struct {
	User    User
	Removed bool
}

// GroupChange is a group of the graph (in a page of changes: a changed
// one). HasProperties is false on the later parts of a group whose members
// spread over pages, which repeat only its id.
type GroupChange struct {
	Group         Group
	HasProperties bool
	// Eligible says group sync may keep the group (its kind), before the
	// profile's filter.
	Eligible bool
	Removed  bool
	Members  []MemberChange
}

// MemberChange is a direct membership that exists (or, in a page of
// changes, started), or ended (Removed).
type MemberChange struct {
	ID      string
	IsGroup bool
	Removed bool
}

// ErrStateExpired means the provider no longer accepts a saved change
// state (expired, or its sync state was reset): a full run must read the
// source again.
var ErrStateExpired = errors.New("saved change state no longer accepted")
