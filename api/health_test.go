package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
)

// seedRun records an ended run of the profile with ledger entries
// (action, subject, username, reason), as a worker would.
func (e *env) seedRun(p *directory.Profile, at time.Time, status, errMsg string, dryRun bool, counts directory.RunCounts, entries ...[4]string) string {
	e.t.Helper()
	ctx := context.Background()
	r := &directory.Run{ID: uuid.NewString(), ProfileID: p.ID, ProfileName: p.Name, Provider: p.Provider,
		DirectoryKey: p.DirectoryKey, Trigger: "manual", DryRun: dryRun, Status: directory.RunRunning,
		Phase: directory.PhaseFetch, StartedAt: at, Counts: counts}
	require.NoError(e.t, e.store.CreateRun(ctx, r))
	require.NoError(e.t, e.store.SetRunStatus(ctx, r.ID, status, directory.PhaseDone, errMsg, at.Add(time.Minute)))
	for _, en := range entries {
		_, err := e.db.ExecContext(ctx, e.db.Rebind(`INSERT INTO change_ledger (run_id, subject_type, subject_id, username, action, reason, changes, at)
			VALUES (?, 'user', ?, ?, ?, ?, '{}', ?)`), r.ID, en[1], en[2], en[0], en[3], at)
		require.NoError(e.t, err)
	}
	return r.ID
}

// Issue 14, item 5: the health panel lists what the last runs left undone
// (stale users, conflicts, unresolved managers, duplicate e-mails, licence
// refusals), how long each has lasted, and the credentials' state.
func TestProfileHealth(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		id := e.createProfile(csvProfile)
		p, err := e.store.GetProfile(ctx, id)
		require.NoError(t, err)

		h := e.do(http.MethodGet, "/api/v1/profiles/"+id+"/health", nil).status(http.StatusOK)
		assert.Equal(t, []any{}, h["runs"])
		assert.Nil(t, h["counts"])
		assert.Equal(t, []any{}, h["staleUsers"])
		assert.Equal(t, "unknown", h["credentials"].(map[string]any)["status"])

		// ann: in the directory, active, skipped on three runs in a row.
		ann := &directory.User{Username: "ann", FirstName: "Ann", LastName: "A", Email: "ann@example.com", DirectoryKey: p.DirectoryKey}
		require.NoError(t, e.store.CreateUser(ctx, ann))
		t0 := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)
		skipAnn := [4]string{"skipped", ann.ID, "ann", "line 2: email missing"}
		e.seedRun(p, t0, directory.RunSucceeded, "", false, directory.RunCounts{Skipped: 1}, skipAnn)
		e.seedRun(p, t0.Add(time.Hour), directory.RunSucceeded, "", false, directory.RunCounts{Skipped: 2}, skipAnn,
			[4]string{"skipped", "ext-bob", "bob", "line 3: last name missing"})
		// A dry run and a failed run are not applied runs: passed over.
		e.seedRun(p, t0.Add(90*time.Minute), directory.RunSucceeded, "", true, directory.RunCounts{}, [4]string{"skipped", "ext-x", "x", "dry"})
		newest := e.seedRun(p, t0.Add(2*time.Hour), directory.RunPartial, "", false,
			directory.RunCounts{Skipped: 2, Conflicts: 2, ManagersUnresolved: 1, DuplicateEmails: 1, LicenceRefused: 1},
			skipAnn, [4]string{"skipped", "ext-bob", "bob", "line 3: last name missing"},
			[4]string{"conflict", "ext-cat", "cat", `username "cat" belongs to a local account`},
			[4]string{"conflict", "ext-dan", "dan", `username "dan" is used by 2 users of the source`},
			[4]string{"manager_unresolved", ann.ID, "ann", `manager "boss" is not a user of this directory`},
			[4]string{"duplicate_email", ann.ID, "ann", "e-mail address ann@example.com is shared by 2 active users"},
			[4]string{"licence_refused", "ext-eve", "eve", "licence limit 10 reached"})
		e.seedRun(p, t0.Add(3*time.Hour), directory.RunFailed, "csv: authentication failed: the server refused the password", false, directory.RunCounts{})

		h = e.do(http.MethodGet, "/api/v1/profiles/"+id+"/health", nil).status(http.StatusOK)
		runs := h["runs"].([]any)
		require.Len(t, runs, 3)
		assert.Equal(t, newest, runs[0].(map[string]any)["id"])
		assert.EqualValues(t, 2, h["counts"].(map[string]any)["skipped"])
		stale := h["staleUsers"].([]any)
		require.Len(t, stale, 2)
		byName := map[string]map[string]any{}
		for _, s := range stale {
			byName[s.(map[string]any)["username"].(string)] = s.(map[string]any)
		}
		assert.EqualValues(t, 3, byName["ann"]["runs"], "skipped on all three runs read")
		assert.Equal(t, ann.ID, byName["ann"]["userId"])
		assert.Equal(t, "active", byName["ann"]["userStatus"], "active with its old data")
		assert.Equal(t, "line 2: email missing", byName["ann"]["reason"])
		assert.EqualValues(t, 2, byName["bob"]["runs"])
		assert.Nil(t, byName["bob"]["userId"])

		conflicts := h["conflicts"].([]any)
		require.Len(t, conflicts, 2)
		assert.Equal(t, true, conflicts[0].(map[string]any)["localAccount"])
		assert.Nil(t, conflicts[1].(map[string]any)["localAccount"])
		assert.Len(t, h["unresolvedManagers"], 1)
		assert.Len(t, h["duplicateEmails"], 1)
		assert.Len(t, h["licenceRefused"], 1)
		cred := h["credentials"].(map[string]any)
		assert.Equal(t, "refused", cred["status"], "the newest run failed on its credentials")
		assert.Equal(t, "run", cred["source"])

		// Fewer runs read: nothing lasts longer than that.
		h = e.do(http.MethodGet, "/api/v1/profiles/"+id+"/health?runs=1", nil).status(http.StatusOK)
		assert.Len(t, h["runs"], 1)
		for _, s := range h["staleUsers"].([]any) {
			assert.EqualValues(t, 1, s.(map[string]any)["runs"])
		}
		e.do(http.MethodGet, "/api/v1/profiles/"+id+"/health?runs=0", nil).apiErr(http.StatusBadRequest, "bad_request")
		e.do(http.MethodGet, "/api/v1/profiles/"+id+"/health?runs=21", nil).apiErr(http.StatusBadRequest, "bad_request")
		e.do(http.MethodGet, "/api/v1/profiles/nope/health", nil).apiErr(http.StatusNotFound, "not_found")
	})
}

// The credentials' state: the newest of the last Test connection and the
// last run; an expired Entra secret is told apart, and the metric says so.
func TestCredentialHealthAndMetric(t *testing.T) {
	var fail error
	e := newEnv(t, func(o *Options) {
		o.Tester = func(context.Context, *directory.Profile, *profile.Config) ([]string, error) {
			if fail != nil {
				return nil, fail
			}
			return []string{"okta: grant okta.logs.read"}, nil
		}
		o.Metrics = prometheus.NewRegistry()
	})
	ctx := context.Background()
	id := e.createProfile(csvProfile)
	p, err := e.store.GetProfile(ctx, id)
	require.NoError(t, err)
	cred := func() map[string]any {
		t.Helper()
		return e.do(http.MethodGet, "/api/v1/profiles/"+id+"/health", nil).status(http.StatusOK)["credentials"].(map[string]any)
	}
	metric := func(problem string) string {
		t.Helper()
		body := e.doWith(http.MethodGet, "/metrics", nil, nil).Body.String()
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, `usersync_profile_credentials_problem{problem="`+problem+`",profile="People file",provider="csv"} `) {
				return l[strings.LastIndexByte(l, ' ')+1:]
			}
		}
		t.Fatalf("no credential metric for %s in\n%s", problem, body)
		return ""
	}
	assert.Equal(t, "unknown", cred()["status"])
	assert.Equal(t, "0", metric("expired"))

	e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
	c := cred()
	assert.Equal(t, "ok", c["status"])
	assert.Equal(t, "test", c["source"])
	assert.Equal(t, []any{"okta: grant okta.logs.read"}, c["warnings"])

	fail = fmt.Errorf("%w: %w", provider.ErrCredentialsExpired, fmt.Errorf("%w: the client secret of application \"x\" has expired (AADSTS7000222): create a new secret", provider.ErrAuth))
	e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
	c = cred()
	assert.Equal(t, "expired", c["status"])
	assert.Contains(t, c["message"], "create a new secret")
	assert.Equal(t, "1", metric("expired"))
	assert.Equal(t, "0", metric("refused"))

	// A run that succeeded since: the credentials work again.
	e.seedRun(p, time.Now().Add(time.Hour), directory.RunSucceeded, "", false, directory.RunCounts{})
	c = cred()
	assert.Equal(t, "ok", c["status"])
	assert.Equal(t, "run", c["source"])
	assert.Equal(t, "0", metric("expired"))
	e.seedRun(p, time.Now().Add(2*time.Hour), directory.RunFailed, "okta: permission denied: the API token may not read users", false, directory.RunCounts{})
	assert.Equal(t, "permission", cred()["status"])
	assert.Equal(t, "1", metric("permission"))
}

// A delta run judges only what changed: an entry of the last full run
// still holds through the delta runs after it, unless one of them judged
// that user otherwise.
func TestProfileHealthThroughDeltaRuns(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		id := e.createProfile(csvProfile)
		p, err := e.store.GetProfile(ctx, id)
		require.NoError(t, err)
		delta := func(runID string) {
			_, err := e.db.ExecContext(ctx, e.db.Rebind(`UPDATE sync_runs SET sync_mode = 'delta' WHERE id = ?`), runID)
			require.NoError(t, err)
		}
		t0 := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)
		full := e.seedRun(p, t0, directory.RunSucceeded, "", false, directory.RunCounts{},
			[4]string{"skipped", "ext-ann", "ann", "email missing"},
			[4]string{"manager_unresolved", "u-bob", "bob", `manager "m1" is not a user of this directory`},
			[4]string{"manager_unresolved", "u-dan", "dan", `manager "m2" is not a user of this directory`})
		_, err = e.db.ExecContext(ctx, e.db.Rebind(`UPDATE sync_runs SET sync_mode = 'full' WHERE id = ?`), full)
		require.NoError(t, err)
		delta(e.seedRun(p, t0.Add(time.Hour), directory.RunSucceeded, "", false, directory.RunCounts{}))
		delta(e.seedRun(p, t0.Add(2*time.Hour), directory.RunSucceeded, "", false, directory.RunCounts{},
			[4]string{"skipped", "ext-cat", "cat", "last name missing"},
			[4]string{"manager_linked", "u-bob", "bob", ""}))

		h := e.do(http.MethodGet, "/api/v1/profiles/"+id+"/health", nil).status(http.StatusOK)
		runsOf := func(list string) map[string]float64 {
			out := map[string]float64{}
			for _, it := range h[list].([]any) {
				m := it.(map[string]any)
				out[m["username"].(string)] = m["runs"].(float64)
			}
			return out
		}
		assert.Equal(t, map[string]float64{"cat": 1, "ann": 3}, runsOf("staleUsers"),
			"ann is still skipped: no delta run read her again")
		assert.Equal(t, map[string]float64{"dan": 3}, runsOf("unresolvedManagers"), "bob's manager was linked since")
	})
}
