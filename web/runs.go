package web

import (
	"net/http"
	"slices"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/service"
)

// Filters the runs and ledger pages offer.
var (
	runStatuses = []string{directory.RunRunning, directory.RunAwaitingApproval, directory.RunSucceeded,
		directory.RunFailed, directory.RunCancelled, directory.RunBlocked, directory.RunSkipped, directory.RunPartial}
	ledgerActions = []string{"created", "updated", "disabled", "reenabled", "skipped", "conflict",
		"group_created", "member_added", "member_removed", "manager_linked", "manager_unresolved",
		directory.LedgerLicenceRefused, directory.LedgerDuplicateEmail}
)

type runsView struct {
	Runs      []directory.Run
	Next      string
	ProfileID string
	Profile   *directory.Profile
	Status    string
	Statuses  []string
	Profiles  []directory.Profile
}

func (a *admin) listRuns(q *request) error {
	ctx := q.ctx()
	v := q.r.URL.Query()
	view := runsView{ProfileID: v.Get("profile"), Status: v.Get("status"), Statuses: runStatuses}
	if view.Status != "" && !slices.Contains(runStatuses, view.Status) {
		return errBadForm("status", "unknown run status")
	}
	page, err := a.svc.Runs(ctx, directory.RunFilter{ProfileID: view.ProfileID, Status: view.Status},
		directory.ListOptions{Limit: 50, Cursor: v.Get("cursor")})
	if err != nil {
		return err
	}
	view.Runs, view.Next = page.Items, page.NextCursor
	profiles, err := a.store.ListProfiles(ctx, directory.ListOptions{Limit: 1000})
	if err != nil {
		return err
	}
	view.Profiles = profiles.Items
	for i := range view.Profiles {
		if view.Profiles[i].ID == view.ProfileID {
			view.Profile = &view.Profiles[i]
		}
	}
	return q.render(http.StatusOK, "runs", "Runs", "runs", view)
}

// runView is the run page.
type runView struct {
	Run         *directory.Run
	TemporalURL string
	Counts      []countItem
	Changes     []directory.Change
	Next        string
	Action      string
	Actions     []string
	// Live is set while the run may still change (polled and refreshed).
	Live bool
	// Skipped are the first users the run skipped, with the reason; the
	// ledger filtered on "skipped" has them all.
	Skipped     []directory.Change
	MoreSkipped bool
}

// skippedShown is how many skipped users the run page lists above the
// ledger.
const skippedShown = 20

// RefreshSeconds reloads a live run page without JavaScript.
func (v runView) RefreshSeconds() int {
	if v.Live {
		return 3
	}
	return 0
}

// countItem is one count of a run, labelled; Key matches the JSON field
// admin.js updates.
type countItem struct {
	Key, Label string
	N          int
}

// counts are every count of the run, as the API shows them: the users it
// judged (each in exactly one of the counts from Created to Inactive, the
// departed among the disabled), then groups, memberships, managers and
// warnings.
func counts(c directory.RunCounts) []countItem {
	return []countItem{
		{"fetched", "Fetched", c.Fetched}, {"restated", "Restated from the last run", c.Restated},
		{"created", "Created", c.Created}, {"updated", "Updated", c.Updated},
		{"unchanged", "Unchanged", c.Unchanged}, {"disabled", "Disabled", c.Disabled},
		{"departed", "of which left the source", c.Departed},
		{"reenabled", "Re-enabled", c.Reenabled}, {"skipped", "Skipped", c.Skipped},
		{"conflicts", "Conflicts", c.Conflicts}, {"licenceRefused", "Refused by the licence", c.LicenceRefused},
		{"inactive", "Inactive, not synced", c.Inactive},
		{"groupsCreated", "Groups created", c.GroupsCreated},
		{"membershipsAdded", "Memberships added", c.MembershipsAdded},
		{"membershipsRemoved", "Memberships removed", c.MembershipsRemoved},
		{"managersLinked", "Managers linked", c.ManagersLinked},
		{"managersUnresolved", "Managers unresolved", c.ManagersUnresolved},
		{"duplicateEmails", "Shared e-mail addresses", c.DuplicateEmails},
	}
}

func (a *admin) showRun(q *request) error {
	ctx := q.ctx()
	run, err := a.svc.Run(ctx, pathID(q.r))
	if err != nil {
		return err
	}
	v := q.r.URL.Query()
	view := runView{Run: run, TemporalURL: a.svc.UIURL(run), Counts: counts(run.Counts),
		Action: v.Get("action"), Actions: ledgerActions, Live: !directory.IsFinalRunStatus(run.Status)}
	if view.Action != "" && !slices.Contains(ledgerActions, view.Action) {
		return errBadForm("action", "unknown ledger action")
	}
	page, err := a.store.ListChanges(ctx, run.ID, view.Action, directory.ListOptions{Limit: 100, Cursor: v.Get("cursor")})
	if err != nil {
		return err
	}
	view.Changes, view.Next = page.Items, page.NextCursor
	// Skipped users stay as they were (a blanked email keeps the old one),
	// so they are listed apart, where they cannot be missed among the
	// changes.
	if view.Action == "" && v.Get("cursor") == "" {
		sk, err := a.store.ListChanges(ctx, run.ID, "skipped", directory.ListOptions{Limit: skippedShown})
		if err != nil {
			return err
		}
		view.Skipped, view.MoreSkipped = sk.Items, sk.NextCursor != ""
	}
	return q.render(http.StatusOK, "run", "Run of "+run.ProfileName, "runs", view)
}

// runStatus is what admin.js polls while a run page is open.
type runStatus struct {
	Status     string              `json:"status"`
	Phase      string              `json:"phase"`
	Counts     directory.RunCounts `json:"counts"`
	Error      string              `json:"error"`
	Final      bool                `json:"final"`
	FinishedAt *time.Time          `json:"finishedAt"`
}

func (a *admin) runStatusJSON(q *request) (any, error) {
	run, err := a.svc.Run(q.ctx(), pathID(q.r))
	if err != nil {
		return nil, err
	}
	return runStatus{Status: run.Status, Phase: run.Phase, Counts: run.Counts, Error: run.Error,
		Final: directory.IsFinalRunStatus(run.Status), FinishedAt: run.FinishedAt}, nil
}

// steerRun is the run page's approve, cancel and retry buttons.
func (a *admin) steerRun(q *request) error {
	ctx, id := q.ctx(), pathID(q.r)
	var (
		run *directory.Run
		err error
	)
	switch action := q.r.PathValue("action"); action {
	case "approve":
		run, err = a.svc.ApproveRun(ctx, id)
	case "cancel":
		run, err = a.svc.CancelRun(ctx, id)
	case "retry":
		run, err = a.svc.RetryRun(ctx, id)
	case "preview":
		// A dry run of the revert: its page lists what the revert would
		// change and asks for the confirmation.
		run, err = a.svc.RevertRun(ctx, id, service.RevertInput{DryRun: true})
	case "revert":
		run, err = a.svc.RevertRun(ctx, id, service.RevertInput{PauseSchedule: q.r.PostFormValue("pauseSchedule") == "on"})
	default:
		return errBadForm("action", "unknown run action %q", action)
	}
	if err != nil {
		return err
	}
	return q.redirect(withNotice("/runs/"+escape(run.ID), q.r.PathValue("action"), ""))
}
