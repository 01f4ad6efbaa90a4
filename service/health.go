package service

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/metrics"
	"github.com/usersync/usersync/provider"
)

// The health panel of a profile (GET /profiles/{id}/health and the admin
// page's Health page): what its recent runs left undone, which a run that
// "succeeded" does not say by itself. A user whose email is blanked in the
// provider is skipped on every run and stays active with its old data; a
// conflict waits for someone to move a local account; a manager that never
// resolves leaves a hole in the org chart; an expired secret fails every
// run until it is renewed. Everything here is read from the runs' ledgers
// and the last Test connection; nothing is asked of the provider.

// Bounds of the health panel.
const (
	// DefaultHealthRuns is how many of the profile's last applied runs
	// the panel reads unless asked otherwise; MaxHealthRuns the most.
	DefaultHealthRuns = 3
	MaxHealthRuns     = 20
	// healthListed is the most entries a list of the panel holds; the
	// newest run's counts give the totals.
	healthListed = 100
	// healthHistory is the most ledger entries of one kind read from each
	// older run to count how long an entry has lasted.
	healthHistory = 10000
	// healthScan is the most runs looked through to find the applied ones
	// (skipped ticks and dry runs are passed over).
	healthScan = 200
)

// Health is a profile's health panel.
type Health struct {
	ProfileID string `json:"profileId"`
	// Runs are the applied runs read (succeeded or partial, not dry runs),
	// newest first; the lists are what they left (healthList).
	Runs []RunSummary `json:"runs"`
	// Counts are the newest run's counts: the totals of the lists.
	Counts *directory.RunCounts `json:"counts"`
	// StaleUsers were skipped by the newest run: a user still in the
	// directory keeps the data it had (userStatus says whether it is
	// active with it).
	StaleUsers []HealthEntry `json:"staleUsers"`
	// Conflicts were not synced because their username is taken;
	// localAccount marks those a directory switch of the local account
	// (POST /users/switch-directory) would settle.
	Conflicts []HealthEntry `json:"conflicts"`
	// UnresolvedManagers name a manager that is not a user of the
	// profile's directory.
	UnresolvedManagers []HealthEntry `json:"unresolvedManagers"`
	// DuplicateEmails share an e-mail address with another active user (a
	// warning; never refused).
	DuplicateEmails []HealthEntry `json:"duplicateEmails"`
	// LicenceRefused were not created or re-enabled because of the
	// licence.
	LicenceRefused []HealthEntry `json:"licenceRefused"`
	Credentials    Credentials   `json:"credentials"`
}

// HealthEntry is one user of a list of the health panel.
type HealthEntry struct {
	SubjectID string `json:"subjectId"`
	Username  string `json:"username"`
	Reason    string `json:"reason"`
	// Runs is how many of the runs read, from the newest on, the entry
	// has held in a row: as many as were read means it has lasted at
	// least that long.
	Runs int `json:"runs"`
	// UserID and UserStatus are the directory user the entry is about,
	// when there is one.
	UserID     string `json:"userId,omitempty"`
	UserStatus string `json:"userStatus,omitempty"`
	// LocalAccount: a conflict with a local account of that username.
	LocalAccount bool `json:"localAccount,omitempty"`
}

// Credential states of the health panel: provider.CredentialProblem's, and
// these.
const (
	CredentialsOK      = "ok"
	CredentialsUnknown = "unknown" // never tested and no run yet
)

// Credentials says whether the profile's credentials worked the last time
// they were used: by Test connection or by a run, whichever came last.
type Credentials struct {
	// Status is ok, unknown, expired (the provider said they lapsed:
	// renew them), refused (wrong, revoked, or expired without the
	// provider saying so) or permission (a consent, scope or role is
	// missing).
	Status  string     `json:"status"`
	Message string     `json:"message,omitempty"`
	At      *time.Time `json:"at,omitempty"`
	// Source is what the status comes from: test or run (RunID).
	Source string `json:"source,omitempty"`
	RunID  string `json:"runId,omitempty"`
	// Warnings are the last Test connection's (what works but not fully).
	Warnings []string `json:"warnings"`
}

// health reads the health panel of profile id from its last n applied
// runs.
func (s *Service) health(ctx context.Context, id string, n int) (*Health, error) {
	p, err := s.store.GetProfile(ctx, id)
	if err != nil {
		return nil, err
	}
	h := &Health{ProfileID: p.ID, Runs: []RunSummary{}, StaleUsers: []HealthEntry{}, Conflicts: []HealthEntry{},
		UnresolvedManagers: []HealthEntry{}, DuplicateEmails: []HealthEntry{}, LicenceRefused: []HealthEntry{}}
	applied, lastRun, err := s.recentRuns(ctx, p.ID, n)
	if err != nil {
		return nil, err
	}
	if h.Credentials, err = s.credentials(ctx, p.ID, lastRun); err != nil {
		return nil, err
	}
	if len(applied) == 0 {
		return h, nil
	}
	for _, r := range applied {
		h.Runs = append(h.Runs, SummaryOf(&r))
	}
	counts := applied[0].Counts
	h.Counts = &counts
	for _, l := range []struct {
		action string
		into   *[]HealthEntry
	}{
		{"skipped", &h.StaleUsers},
		{"conflict", &h.Conflicts},
		{"manager_unresolved", &h.UnresolvedManagers},
		{directory.LedgerDuplicateEmail, &h.DuplicateEmails},
		{directory.LedgerLicenceRefused, &h.LicenceRefused},
	} {
		if *l.into, err = s.healthList(ctx, applied, l.action); err != nil {
			return nil, err
		}
	}
	for i := range h.Conflicts {
		h.Conflicts[i].LocalAccount = strings.Contains(h.Conflicts[i].Reason, "belongs to a local account")
	}
	return h, nil
}

// recentRuns are the profile's last n applied runs, newest first, and its
// newest run that ended other than skipped (for the credentials).
func (s *Service) recentRuns(ctx context.Context, profileID string, n int) ([]directory.Run, *directory.Run, error) {
	var applied []directory.Run
	var last *directory.Run
	opt := directory.ListOptions{Limit: 50}
	for seen := 0; seen < healthScan; {
		page, err := s.store.ListRuns(ctx, directory.RunFilter{ProfileID: profileID}, opt)
		if err != nil {
			return nil, nil, err
		}
		for i := range page.Items {
			r := page.Items[i]
			seen++
			// A revert reads no provider: it says nothing of the source's
			// data or of the credentials.
			if !directory.IsFinalRunStatus(r.Status) || r.Status == directory.RunSkipped || r.Trigger == directory.TriggerRevert {
				continue
			}
			if last == nil {
				last = &r
			}
			if !r.DryRun && (r.Status == directory.RunSucceeded || r.Status == directory.RunPartial) && len(applied) < n {
				applied = append(applied, r)
			}
		}
		if (len(applied) >= n && last != nil) || page.NextCursor == "" {
			break
		}
		opt.Cursor = page.NextCursor
	}
	return applied, last, nil
}

// RunSummary is a run in a few fields: a profile's last run, a run the
// health panel read.
type RunSummary struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
}

// SummaryOf is the summary of a run.
func SummaryOf(r *directory.Run) RunSummary {
	sum := RunSummary{ID: r.ID, Status: r.Status, StartedAt: r.StartedAt.UTC()}
	if r.FinishedAt != nil {
		f := r.FinishedAt.UTC()
		sum.FinishedAt = &f
	}
	return sum
}

// judgingActions are the ledger actions that say how a run judged a user:
// a delta run that records one of them for a user has looked at it again.
var judgingActions = []string{"created", "updated", "disabled", "reenabled", "skipped", "conflict",
	directory.LedgerLicenceRefused, "manager_linked", "manager_unresolved"}

// runLedger is what one run's ledger says about the users of a list.
type runLedger struct {
	delta   bool
	entries map[string]directory.Change // the list's action, by subject
	order   []string                    // subjects of entries, in ledger order
	judged  map[string]bool             // subjects judged otherwise (delta runs only)
}

// healthList is the list of action: the users it holds for now, each
// with the number of runs in a row, from the newest on, it has held.
//
// A full run judges every user, so an entry it does not repeat has been
// settled. A delta run judges only what changed (a user skipped for a
// blanked email is not read again until its record changes), so an entry
// of an older run still holds through the delta runs after it unless one
// of them judged that user otherwise; the entries of the newest full run
// and of the delta runs since are the list. (Shared e-mail addresses are
// looked for in the whole directory by every run, as a full run would.)
func (s *Service) healthList(ctx context.Context, runs []directory.Run, action string) ([]HealthEntry, error) {
	ledgers := make([]runLedger, len(runs))
	for i := range runs {
		l, err := s.runLedger(ctx, &runs[i], action)
		if err != nil {
			return nil, err
		}
		ledgers[i] = l
	}
	out := []HealthEntry{}
	seen := map[string]bool{}
	// Candidates: the newest run's entries, then, while the runs are
	// delta runs, the older ones no newer run judged again.
	for i, l := range ledgers {
		for _, subj := range l.order {
			if seen[subj] || len(out) >= healthListed || judgedSince(ledgers[:i], subj) {
				continue
			}
			seen[subj] = true
			ch := l.entries[subj]
			out = append(out, HealthEntry{SubjectID: subj, Username: ch.Username, Reason: ch.Reason})
		}
		if !l.delta {
			break
		}
	}
	for i := range out {
		// It has held from the oldest run that lists it, with no run
		// between that settled it, to the newest.
		for j, l := range ledgers {
			_, listed := l.entries[out[i].SubjectID]
			if !listed && (!l.delta || l.judged[out[i].SubjectID]) {
				break
			}
			if listed {
				out[i].Runs = j + 1
			}
		}
		u, err := s.store.GetUser(ctx, out[i].SubjectID)
		switch {
		case err == nil:
			out[i].UserID, out[i].UserStatus = u.ID, u.Status
		case !errors.Is(err, directory.ErrNotFound):
			return nil, err
		}
	}
	return out, nil
}

// judgedSince reports whether one of the newer runs judged the subject.
func judgedSince(newer []runLedger, subj string) bool {
	for _, l := range newer {
		if _, ok := l.entries[subj]; ok || l.judged[subj] {
			return true
		}
	}
	return false
}

// runLedger reads what a run's ledger says for the list of action (at
// most healthHistory entries of each kind).
func (s *Service) runLedger(ctx context.Context, run *directory.Run, action string) (runLedger, error) {
	l := runLedger{entries: map[string]directory.Change{}, judged: map[string]bool{}}
	l.delta = run.Mode == directory.ModeDelta && action != directory.LedgerDuplicateEmail
	err := s.eachChange(ctx, run.ID, action, func(ch directory.Change) {
		if _, ok := l.entries[ch.SubjectID]; !ok {
			l.entries[ch.SubjectID] = ch
			l.order = append(l.order, ch.SubjectID)
		}
	})
	if err != nil || !l.delta {
		return l, err
	}
	for _, a := range judgingActions {
		if a == action {
			continue
		}
		if err := s.eachChange(ctx, run.ID, a, func(ch directory.Change) { l.judged[ch.SubjectID] = true }); err != nil {
			return l, err
		}
	}
	return l, nil
}

// eachChange calls f with a run's ledger entries of action, at most
// healthHistory of them.
func (s *Service) eachChange(ctx context.Context, runID, action string, f func(directory.Change)) error {
	opt := directory.ListOptions{Limit: 1000}
	for n := 0; n < healthHistory; {
		page, err := s.store.ListChanges(ctx, runID, action, opt)
		if err != nil {
			return err
		}
		for _, ch := range page.Items {
			f(ch)
		}
		n += len(page.Items)
		if page.NextCursor == "" {
			return nil
		}
		opt.Cursor = page.NextCursor
	}
	return nil
}

// credentials is what the newest of the last Test connection and the last
// ended run says about the profile's credentials.
func (s *Service) credentials(ctx context.Context, profileID string, lastRun *directory.Run) (Credentials, error) {
	c := Credentials{Status: CredentialsUnknown, Warnings: []string{}}
	test, err := s.LastTest(ctx, profileID)
	if err != nil {
		return c, err
	}
	if test != nil {
		at := test.At.UTC()
		c.Status, c.At, c.Source, c.Message = CredentialsOK, &at, "test", test.Message
		if test.Warnings != nil {
			c.Warnings = test.Warnings
		}
		if !test.OK {
			c.Status = credentialStatus(test.Message)
		}
	}
	if lastRun != nil && lastRun.FinishedAt != nil && (c.At == nil || lastRun.FinishedAt.After(*c.At)) {
		at := lastRun.FinishedAt.UTC()
		c.Status, c.At, c.Source, c.RunID, c.Message = CredentialsOK, &at, "run", lastRun.ID, ""
		if lastRun.Status == directory.RunFailed {
			c.Status, c.Message = credentialStatus(lastRun.Error), lastRun.Error
		}
	}
	return c, nil
}

// credentialStatus is the credential state of a failure's message: ok
// when the failure is about something else (an unreachable host, a file
// that does not parse).
func credentialStatus(msg string) string {
	if p := provider.CredentialProblem(msg); p != "" {
		return p
	}
	return CredentialsOK
}

// credentialCollector is the metric of the profiles' credentials, read
// from the store at each scrape so that every API replica reports the
// same: usersync_profile_credentials_problem{profile,provider,problem} is
// 1 for the problem a profile's credentials have now (the newest of its
// last Test connection and its last run), 0 for the others. Entra ID and
// Okta do not say in advance when a secret or token will lapse; the first
// refusal they give is the warning, and an alert on this metric turns it
// into one before the next scheduled run fails too.
type credentialCollector struct {
	s    *Service
	desc *prometheus.Desc
}

func newCredentialCollector(s *Service) *credentialCollector {
	return &credentialCollector{s: s, desc: prometheus.NewDesc(metrics.Namespace+"_profile_credentials_problem",
		"1 when a profile's credentials have this problem now (expired: renew them; refused: wrong or revoked; "+
			"permission: a consent, scope or role is missing), from its last Test connection or run, whichever is newer.",
		[]string{"profile", "provider", "problem"}, nil)}
}

// credentialScrapeTimeout bounds the store reads of one scrape.
const credentialScrapeTimeout = 10 * time.Second

func (c *credentialCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *credentialCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), credentialScrapeTimeout)
	defer cancel()
	opt := directory.ListOptions{Limit: 1000}
	for {
		page, err := c.s.store.ListProfiles(ctx, opt)
		if err != nil {
			c.s.log.Warn("credential metric: list profiles", "error", err)
			return
		}
		for i := range page.Items {
			p := &page.Items[i]
			_, last, err := c.s.recentRuns(ctx, p.ID, 0)
			if err != nil {
				c.s.log.Warn("credential metric: runs of a profile", "profileId", p.ID, "error", err)
				continue
			}
			cred, err := c.s.credentials(ctx, p.ID, last)
			if err != nil {
				c.s.log.Warn("credential metric: last test of a profile", "profileId", p.ID, "error", err)
				continue
			}
			for _, problem := range []string{provider.CredentialsExpired, provider.CredentialsRefused, provider.PermissionMissing} {
				v := 0.0
				if cred.Status == problem {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, p.Name, p.Provider, problem)
			}
		}
		if page.NextCursor == "" {
			return
		}
		opt.Cursor = page.NextCursor
	}
}

// Health is the profile's health panel from its last runs applied runs
// (0 means DefaultHealthRuns; more than MaxHealthRuns reads that many).
func (s *Service) Health(ctx context.Context, profileID string, runs int) (*Health, error) {
	if runs <= 0 {
		runs = DefaultHealthRuns
	}
	return s.health(ctx, profileID, min(runs, MaxHealthRuns))
}

// registerCredentialMetric puts the credential metric on reg; a second
// service of the same registry finds it there.
func registerCredentialMetric(reg *prometheus.Registry, s *Service) {
	metrics.Register(reg, newCredentialCollector(s))
}
