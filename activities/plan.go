package activities

import (
	"context"
	"fmt"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/rules"
)

// Plan compares the fetched users with the directory under the licence
// (which refuses only creations and re-enables beyond it: offboarding
// never waits for it), then applies the rule that may hold a run before it
// writes anything: the accidental-delete guard (a hold for approval).
func (a *Activities) Plan(ctx context.Context, in PlanInput) (PlanResult, error) {
	rc, err := a.load(ctx, in.RunID)
	if err != nil {
		return PlanResult{}, err
	}
	// One transaction over the whole run (the plan is fixed as a whole,
	// so it cannot be cut into stretches like Apply): it grows with the
	// tenant, and heartbeats keep a long one from being taken for dead.
	limit, err := a.Store.GetLicenceLimit(ctx)
	if err != nil {
		return PlanResult{}, fmt.Errorf("read licence: %w", err)
	}
	var out *directory.PlanOutcome
	err = keepAlive(ctx, func() (err error) {
		out, err = a.Store.Plan(ctx, rc.run.ID, directory.PlanInput{DirectoryKey: rc.run.DirectoryKey, DryRun: rc.run.DryRun,
			LicenceLimit: limit})
		return err
	}, "planning")
	if err != nil {
		return PlanResult{}, err
	}
	c := out.Counts
	// The guard's "no users at all" looks at the whole source: a delta
	// run fetches only what changed, often nothing.
	guard := rules.Guard(c.Disabled, out.ActiveInDirectory, out.SourceUsers, rules.Limits{
		MaxDisables: rc.cfg.Safety.MaxDisables, MaxDisablePercent: rc.cfg.Safety.MaxDisablePercent})
	return PlanResult{Counts: c, Guard: guard}, nil
}

// Apply executes batches of the plan until it is complete or the call's
// budget is spent. Each batch commits with its progress and counts.
func (a *Activities) Apply(ctx context.Context, in ApplyInput) (ApplyResult, error) {
	rc, err := a.load(ctx, in.RunID)
	if err != nil {
		return ApplyResult{}, err
	}
	groups, err := rules.NewGroupFilter(rc.cfg.GroupSync.Mode, rc.cfg.GroupSync.Pattern)
	if err != nil {
		return ApplyResult{}, configError("profile %q: %v", rc.profile.Name, err)
	}
	ai := directory.ApplyInput{DirectoryKey: rc.run.DirectoryKey, Connection: rc.profile.Name,
		GroupSync: groups.On(), OrgChart: rc.cfg.PopulateOrgChart, BatchSize: a.BatchSize}
	deadline := a.now().Add(a.Budget)
	last := rc.run.Counts
	for {
		var (
			done   bool
			counts directory.RunCounts
		)
		err := keepAlive(ctx, func() (err error) {
			done, counts, err = a.Store.ApplyBatch(ctx, rc.run.ID, ai)
			return err
		}, last)
		if err != nil {
			return ApplyResult{}, err
		}
		heartbeat(ctx, counts)
		last = counts
		if done {
			return ApplyResult{Done: true, Counts: counts}, nil
		}
		if err := sleep(ctx, a.PageDelay); err != nil {
			return ApplyResult{Counts: counts}, err
		}
		if a.now().After(deadline) || workerStopping(ctx) {
			return ApplyResult{Counts: counts}, nil
		}
	}
}
