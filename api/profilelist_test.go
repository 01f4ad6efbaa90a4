package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/storetest"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/secret"
)

// A page of profiles costs the same store calls whether it shows two
// profiles or six: their last runs come in one query, and nothing is read
// per profile. Each profile still shows its own last run.
func TestListingProfilesReadsTheSameForAnyPageSize(t *testing.T) {
	calls := map[int]map[string]int{}
	for _, n := range []int{2, 6} {
		base := newEnv(t)
		counted := storetest.NewCounting(base.store)
		e := newEnv(t, func(o *Options) {
			o.Store = counted
			o.Tester = func(context.Context, *directory.Profile, *profile.Config) ([]string, error) { return nil, nil }
		})
		withRuns := map[string]bool{}
		for i := range n {
			name := fmt.Sprintf("People %d", i)
			id := e.createProfile(`{"name":"` + name + `","provider":"csv","csv":{"url":"https://files.example.com/p.csv"}}`)
			if i%2 == 0 {
				withRuns[id] = true
				require.NoError(t, base.store.CreateRun(context.Background(), &directory.Run{ID: "run-" + id, ProfileID: id,
					ProfileName: name, Provider: "csv", Trigger: "manual", StartedAt: time.Now().Add(time.Duration(i) * time.Minute)}))
				e.do(http.MethodPost, "/api/v1/profiles/"+id+"/test", nil).status(http.StatusOK)
			}
		}
		counted.Reset()

		list := e.do(http.MethodGet, "/api/v1/profiles", nil).status(http.StatusOK)
		items := list["items"].([]any)
		require.Len(t, items, n)
		for _, it := range items {
			m := it.(map[string]any)
			if withRuns[m["id"].(string)] {
				assert.Equal(t, "run-"+m["id"].(string), m["lastRun"].(map[string]any)["id"], "each profile shows its own last run")
			} else {
				assert.Nil(t, m["lastRun"])
			}
		}
		calls[n] = counted.Calls()
	}
	assert.Equal(t, calls[2], calls[6], "the store calls of a page grow with its profiles")
	assert.Equal(t, 1, calls[6]["LastRuns"])
	assert.Zero(t, calls[6]["LastRun"], "no query per profile")
}

// A listing decrypts no profile: it shows of each secret only whether it
// is set, which the stored profile says without the key, so a server
// holding another key lists the same page.
func TestListingProfilesDecryptsNothing(t *testing.T) {
	e := newEnv(t)
	e.createProfile(csvProfile)
	want := e.do(http.MethodGet, "/api/v1/profiles", nil).status(http.StatusOK)
	csvBlock := want["items"].([]any)[0].(map[string]any)["csv"].(map[string]any)
	require.Equal(t, true, csvBlock["passwordSet"])
	require.Equal(t, true, csvBlock["defaultPasswordSet"])

	otherKey, err := secret.NewBox(secret.GenerateKey())
	require.NoError(t, err)
	other := newServer(Options{Store: e.store, Runner: e.runner, Box: otherKey, Token: testToken})
	e.h = other.routes()
	assert.Equal(t, want, e.do(http.MethodGet, "/api/v1/profiles", nil).status(http.StatusOK))
}
