package directory_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/rules"
	"github.com/usersync/usersync/schema"
)

// BenchmarkEngine times the engine alone on Postgres: staging pages of 999
// users, the plan, and apply with managers and group sync (three groups a
// user, as the bench's tenant has about), for a first sync and for a
// re-sync with nothing changed. Size with -engine.users.
var (
	batchSize   = 5000
	engineUsers = flag.Int("engine.users", 100_000, "users of BenchmarkEngine's tenant")
)

func BenchmarkEngine(b *testing.B) {
	n := *engineUsers
	ctx := context.Background()
	db := dbtest.Open(b, schema.Postgres)
	s := directory.NewSQLStore(db)
	e := &engine{ctx: ctx, s: s, dir: "p-bench"}
	if err := s.CreateProfile(ctx, &directory.Profile{ID: uuid.NewString(), Name: "bench", Provider: "azure", Enabled: true,
		DirectoryKey: e.dir, Config: []byte(`{}`)}); err != nil {
		b.Fatal(err)
	}
	users := make([]directory.StagedUser, n)
	for i := range users {
		u := staged(fmt.Sprintf("obj-%07d", i), fmt.Sprintf("user%07d", i), fmt.Sprintf("Last%d", i))
		if i >= 10 {
			u.ManagerRef = fmt.Sprintf("obj-%07d", i/10)
		}
		u.Attributes = map[string]string{"department": fmt.Sprintf("Dept %d", i%50)}
		u.ContentHash = rules.ContentHash(rules.Record{Username: u.Username, FirstName: u.FirstName, LastName: u.LastName,
			Email: u.Email, ManagerRef: u.ManagerRef, Attributes: u.Attributes}, true)
		users[i] = u
	}
	run := func(label string) {
		e.runID = uuid.NewString()
		if err := s.CreateRun(ctx, &directory.Run{ID: e.runID, ProfileID: "x", ProfileName: "x", Provider: "azure",
			DirectoryKey: e.dir, Trigger: "manual", Status: directory.RunRunning, Phase: directory.PhaseFetch, StartedAt: s.Now()}); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		for i := 0; i < n; i += 999 {
			end := min(i+999, n)
			page := &directory.FetchedPage{Users: users[i:end]}
			for j, u := range users[i:end] {
				for _, g := range []string{fmt.Sprintf("dept%02d", (i+j)%50), fmt.Sprintf("team%03d", (i+j)/20%500), "all"} {
					page.Groups = append(page.Groups, directory.StagedGroup{ExternalID: g, Name: "Group " + g})
					page.Members = append(page.Members, directory.StagedMember{GroupExternalID: g, UserExternalID: u.ExternalID})
				}
			}
			if _, err := s.SaveFetchedPage(ctx, e.runID, page, "x", end == n); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		if _, err := s.Plan(ctx, e.runID, directory.PlanInput{DirectoryKey: e.dir}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		var c directory.RunCounts
		steps := 0
		per := map[string]time.Duration{}
		for done := false; !done; steps++ {
			r, _ := s.GetRun(ctx, e.runID)
			ts := time.Now()
			var err error
			done, c, err = s.ApplyBatch(ctx, e.runID, directory.ApplyInput{DirectoryKey: e.dir, OrgChart: true, GroupSync: true, BatchSize: batchSize})
			per[r.ApplyStep] += time.Since(ts)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("%s: apply steps %v", label, per)
		t3 := time.Now()
		b.Logf("%s: stage %v, plan %v, apply %v (%d batches) — %.0f users/s; counts %+v", label,
			t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), t3.Sub(t2).Round(time.Millisecond), steps,
			float64(n)/t3.Sub(t0).Seconds(), c)
	}
	for i := 0; i < b.N; i++ {
		run("first sync")
		run("no change")
	}
}
