package api

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
)

// countingStore counts the per-profile reads a listing must not make.
type countingStore struct {
	directory.Store
	lastRun, lastRuns atomic.Int32
}

func (c *countingStore) LastRun(ctx context.Context, id string) (*directory.Run, error) {
	c.lastRun.Add(1)
	return c.Store.LastRun(ctx, id)
}

func (c *countingStore) LastRuns(ctx context.Context, ids []string) (map[string]*directory.Run, error) {
	c.lastRuns.Add(1)
	return c.Store.LastRuns(ctx, ids)
}

// A page of profiles reads their last runs in one query, and each
// profile's last run is its own.
func TestListingProfilesReadsLastRunsOnce(t *testing.T) {
	base := newEnv(t)
	counted := &countingStore{Store: base.store}
	e := newEnv(t, func(o *Options) { o.Store = counted })
	ids := map[string]string{}
	for i := range 3 {
		name := fmt.Sprintf("People %d", i)
		id := e.createProfile(`{"name":"` + name + `","provider":"csv","csv":{"url":"https://files.example.com/p.csv"}}`)
		ids[id] = name
		if i < 2 {
			require.NoError(t, base.store.CreateRun(context.Background(), &directory.Run{ID: "run-" + id, ProfileID: id,
				ProfileName: name, Provider: "csv", Trigger: "manual", StartedAt: time.Now().Add(time.Duration(i) * time.Minute)}))
		}
	}
	counted.lastRun.Store(0)
	counted.lastRuns.Store(0)

	list := e.do(http.MethodGet, "/api/v1/profiles", nil).status(http.StatusOK)
	items := list["items"].([]any)
	require.Len(t, items, 3)
	withRun := 0
	for _, it := range items {
		m := it.(map[string]any)
		if last, ok := m["lastRun"].(map[string]any); ok {
			withRun++
			assert.Equal(t, "run-"+m["id"].(string), last["id"], "each profile shows its own last run")
		} else {
			assert.Nil(t, m["lastRun"])
		}
	}
	assert.Equal(t, 2, withRun)
	assert.Zero(t, counted.lastRun.Load(), "no query per profile")
	assert.Equal(t, int32(1), counted.lastRuns.Load())
}
