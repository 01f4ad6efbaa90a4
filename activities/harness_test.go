package activities_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/secret"
)

// harness runs sync runs of one CSV profile through the real activities,
// called in workflow order without Temporal (the workflow's own tests and
// the integration tests cover the orchestration).
type harness struct {
	t       *testing.T
	ctx     context.Context
	store   *directory.SQLStore
	acts    *activities.Activities
	box     *secret.Box
	profile *directory.Profile
	cfg     *profile.Config
}

func newHarness(t *testing.T, db *directory.DB, mutate func(*profile.Config)) *harness {
	t.Helper()
	box, err := secret.NewBox(secret.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	store := directory.NewSQLStore(db)
	h := &harness{t: t, ctx: context.Background(), store: store, box: box}
	h.acts = activities.New(activities.Deps{Store: store, Box: box, PageSize: 2, BatchSize: 2, BcryptCost: bcrypt.MinCost})
	cfg := &profile.Config{Name: "People CSV", Provider: csv.Name,
		Block: &csv.Profile{Source: "document", DocumentID: "none-yet", UserMatchField: "username",
			ManagerField: "manager", DefaultPassword: "Welcome-1", GroupsField: "groups",
			ColumnMap: map[string]string{"department": "department"}},
		GroupSync: profile.GroupSync{Mode: profile.GroupSyncAll}, PopulateOrgChart: true}
	if mutate != nil {
		mutate(cfg)
	}
	cfg.Normalize()
	h.cfg = cfg
	clear, sealed, err := profile.Seal(box, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.profile = &directory.Profile{ID: uuid.NewString(), Name: cfg.Name, Provider: cfg.Provider, Enabled: true,
		DirectoryKey: "p-" + uuid.NewString()[:8], Config: clear, Secrets: sealed}
	if err := store.CreateProfile(h.ctx, h.profile); err != nil {
		t.Fatal(err)
	}
	return h
}

// saveConfig stores h.cfg after a test changed it.
func (h *harness) saveConfig() {
	h.t.Helper()
	clear, sealed, err := profile.Seal(h.box, h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.profile.Config, h.profile.Secrets = clear, sealed
	if err := h.store.UpdateProfile(h.ctx, h.profile); err != nil {
		h.t.Fatal(err)
	}
}

// setCSV uploads content and points the profile at it.
func (h *harness) setCSV(content string) {
	h.t.Helper()
	doc, err := h.store.CreateDocument(h.ctx, "people.csv", "text/csv", strings.NewReader(content), 1<<20)
	if err != nil {
		h.t.Fatal(err)
	}
	h.cfg.Block.(*csv.Profile).DocumentID = doc.ID
	h.saveConfig()
}

type result struct {
	run   *directory.Run
	plan  activities.PlanResult
	err   error // the error that failed the run, if any
	guard string
}

// sync runs one whole run; approve says what an operator answers when the
// guard holds the run.
func (h *harness) sync(dryRun, approve bool) result {
	h.t.Helper()
	ctx := h.ctx
	runID := uuid.NewString()
	fail := func(err error) result {
		var ae *temporal.ApplicationError
		msg := err.Error()
		if errors.As(err, &ae) {
			msg = ae.Message()
		}
		if ferr := h.acts.FinishRun(ctx, activities.FinishInput{RunID: runID, Status: directory.RunFailed, Error: msg}); ferr != nil {
			h.t.Fatalf("finish failed run: %v", ferr)
		}
		return result{run: h.run(runID), err: err}
	}
	start, err := h.acts.StartRun(ctx, activities.StartRunInput{RunID: runID, ProfileID: h.profile.ID, Trigger: "manual", DryRun: dryRun})
	if err != nil {
		return fail(err)
	}
	if start.Skip != "" {
		h.acts.FinishRun(ctx, activities.FinishInput{RunID: runID, Status: directory.RunSkipped, Error: start.Skip}) //nolint:errcheck
		return result{run: h.run(runID)}
	}
	for i := 0; ; i++ {
		r, err := h.acts.Fetch(ctx, activities.FetchInput{RunID: runID})
		if err != nil {
			return fail(err)
		}
		if r.Done {
			break
		}
		if i > 10000 {
			h.t.Fatal("fetch does not end")
		}
	}
	plan, err := h.acts.Plan(ctx, activities.PlanInput{RunID: runID})
	if err != nil {
		res := fail(err)
		res.plan = plan
		return res
	}
	if dryRun {
		if err := h.acts.FinishRun(ctx, activities.FinishInput{RunID: runID, Status: directory.RunSucceeded}); err != nil {
			h.t.Fatal(err)
		}
		return result{run: h.run(runID), plan: plan}
	}
	if plan.Guard != "" && !approve {
		if err := h.acts.FinishRun(ctx, activities.FinishInput{RunID: runID, Status: directory.RunBlocked, Error: plan.Guard}); err != nil {
			h.t.Fatal(err)
		}
		return result{run: h.run(runID), plan: plan, guard: plan.Guard}
	}
	for i := 0; ; i++ {
		r, err := h.acts.Apply(ctx, activities.ApplyInput{RunID: runID})
		if err != nil {
			return fail(err)
		}
		if r.Done {
			break
		}
		if i > 10000 {
			h.t.Fatal("apply does not end")
		}
	}
	if err := h.acts.FinishRun(ctx, activities.FinishInput{RunID: runID, Status: directory.RunSucceeded}); err != nil {
		h.t.Fatal(err)
	}
	return result{run: h.run(runID), plan: plan, guard: plan.Guard}
}

func (h *harness) mustSync() *directory.Run {
	h.t.Helper()
	r := h.sync(false, false)
	if r.err != nil || r.guard != "" {
		h.t.Fatalf("sync failed: err=%v guard=%q", r.err, r.guard)
	}
	if r.run.Status != directory.RunSucceeded {
		h.t.Fatalf("run status %s: %s", r.run.Status, r.run.Error)
	}
	return r.run
}

func (h *harness) run(id string) *directory.Run {
	h.t.Helper()
	r, err := h.store.GetRun(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// users returns the directory's users by username.
func (h *harness) users() map[string]directory.User {
	h.t.Helper()
	out := map[string]directory.User{}
	cursor := ""
	for {
		p, err := h.store.ListUsers(h.ctx, directory.UserFilter{}, directory.ListOptions{Limit: 1000, Cursor: cursor})
		if err != nil {
			h.t.Fatal(err)
		}
		for _, u := range p.Items {
			full, err := h.store.GetUser(h.ctx, u.ID)
			if err != nil {
				h.t.Fatal(err)
			}
			out[u.Username] = *full
		}
		if p.NextCursor == "" {
			return out
		}
		cursor = p.NextCursor
	}
}

func (h *harness) user(name string) directory.User {
	h.t.Helper()
	u, ok := h.users()[name]
	if !ok {
		h.t.Fatalf("user %s not in the directory", name)
	}
	return u
}

// changes returns the run's ledger.
func (h *harness) changes(runID, action string) []directory.Change {
	h.t.Helper()
	p, err := h.store.ListChanges(h.ctx, runID, action, directory.ListOptions{Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	return p.Items
}

// audit returns the run's audit entries with that action.
func (h *harness) audit(runID, action string) []directory.AuditEntry {
	h.t.Helper()
	p, err := h.store.ListAudit(h.ctx, directory.AuditFilter{RunID: runID, Action: action}, directory.ListOptions{Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	return p.Items
}

func eachDB(t *testing.T, f func(t *testing.T, db *directory.DB)) { dbtest.Each(t, f) }

const header = "username,firstName,lastName,email,manager,department,groups,password\n"

func csvOf(rows ...string) string { return header + strings.Join(rows, "\n") + "\n" }
