package directory

// SyncEngine is the set-based part of a run: staging, plan and apply.
// (Implemented in this file; signatures filled in by the sync work.)
type SyncEngine interface{}
