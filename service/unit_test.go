package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/okta"
)

func TestScrubSecrets(t *testing.T) {
	cfg := &profile.Config{Provider: "okta", Block: &okta.Profile{APIToken: "tok-123456", PrivateKey: "pk"}}
	assert.Equal(t, "refused [redacted] and pk", scrubSecrets("refused tok-123456 and pk", cfg),
		"a secret shorter than 4 characters is not replaced (it would cut words)")
	assert.Equal(t, "x", scrubSecrets("x", nil))
}

func TestMaxCounts(t *testing.T) {
	got := maxCounts(directory.RunCounts{Fetched: 10, Created: 5, ManagersUnresolved: 1},
		directory.RunCounts{Fetched: 7, Created: 9, Disabled: 2})
	assert.Equal(t, directory.RunCounts{Fetched: 10, Created: 9, Disabled: 2, ManagersUnresolved: 1}, got)
}

// TestThrottleRecoversAndHasAGlobalLimit checks the throttle's arithmetic
// with its own clock: attempts come back over time, and many clients
// together run out of the global allowance.
func TestThrottleRecoversAndHasAGlobalLimit(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	th := NewSignInThrottle(nil)
	th.now = func() time.Time { return now }
	th.global.at = now
	for range 10 {
		ok, _ := th.Allow("a", ViaAPI)
		require.True(t, ok)
		th.Fail("a", ViaAPI)
	}
	ok, wait := th.Allow("a", ViaAPI)
	assert.False(t, ok)
	assert.Equal(t, 6*time.Second, wait)
	now = now.Add(6 * time.Second)
	ok, _ = th.Allow("a", ViaAPI)
	assert.True(t, ok, "one attempt back after its period")

	// 100 failures from 100 clients empty the global allowance.
	for i := range 100 {
		th.Fail(fmt.Sprint("c", i), ViaAPI)
	}
	ok, _ = th.Allow("fresh", ViaAPI)
	assert.False(t, ok, "the global limit holds for a client never seen")
}
