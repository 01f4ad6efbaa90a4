// Package syncrun is what a sync run's workflows and its activities share:
// the names of the steps, their inputs and results, and the run's
// statuses, phases and counts. It imports only the standard library, so
// the workflow code that uses it links no store, SQL driver or provider,
// and workflowcheck (make lint) has only deterministic code to read.
//
// directory and activities re-export these under their old names.
package syncrun

// Run statuses.
const (
	RunRunning          = "running"
	RunAwaitingApproval = "awaiting_approval"
	RunSucceeded        = "succeeded"
	RunFailed           = "failed"
	RunCancelled        = "cancelled"
	RunBlocked          = "blocked"
	RunSkipped          = "skipped"
	// RunPartial: the run applied everything but what the licence
	// refused (users it did not create or re-enable, each in the ledger).
	RunPartial = "partial"
)

// Run phases.
const (
	PhaseFetch = "fetch"
	PhasePlan  = "plan"
	PhaseApply = "apply"
	PhaseDone  = "done"
)

// TriggerSchedule is the trigger of a run a profile's schedule started
// (directory.TriggerSchedule).
const TriggerSchedule = "schedule"

// FrequencyDaily is the daily schedule frequency (profile.ScheduleDaily),
// which the scheduled tick's daily rule looks for.
const FrequencyDaily = "daily"

// RunCounts are the counts of a run; every field is exact after a crash and
// a resume because each is advanced in the transaction that does the work.
type RunCounts struct {
	Fetched   int `json:"fetched"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Disabled  int `json:"disabled"`
	Reenabled int `json:"reenabled"`
	Skipped   int `json:"skipped"`
	Conflicts int `json:"conflicts"`
	// LicenceRefused are users the run would have created or re-enabled
	// beyond the licence: not created, left disabled.
	LicenceRefused int `json:"licenceRefused"`
	// Inactive are users inactive in the provider that the directory has
	// not active: not created, or left disabled (an active one is
	// disabled, and counted in Disabled).
	Inactive int `json:"inactive"`
	// Departed are the users of Disabled that are no longer in the source
	// at all (not fetched: the others of Disabled are inactive in it).
	Departed int `json:"departed"`
	// Restated are users a delta run judged again from its snapshot
	// without fetching them (a change elsewhere could change their
	// outcome); 0 in a full run. With them every user lands in exactly
	// one count: for a run that applied, fetched + restated = created +
	// updated + unchanged + reenabled + skipped + conflicts +
	// licenceRefused + inactive + (disabled - departed).
	Restated int `json:"restated"`
	// DuplicateEmails are active users of the directory sharing their
	// e-mail address with another active user: a warning (at most 1000).
	DuplicateEmails    int `json:"duplicateEmails"`
	GroupsCreated      int `json:"groupsCreated"`
	MembershipsAdded   int `json:"membershipsAdded"`
	MembershipsRemoved int `json:"membershipsRemoved"`
	ManagersLinked     int `json:"managersLinked"`
	ManagersUnresolved int `json:"managersUnresolved"`
}
