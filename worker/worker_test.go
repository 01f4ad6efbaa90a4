package worker

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/activities"
)

// New must register the workflow and every activity without a name clash
// (the SDK panics on one), and must not need a server to build.
func TestNew(t *testing.T) {
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	require.NoError(t, err)
	defer c.Close()
	require.NotPanics(t, func() {
		require.NotNil(t, New(c, "", &activities.Activities{}, Options{}))
		require.NotNil(t, New(c, "other", &activities.Activities{}, Options{MaxConcurrentActivities: 2}))
	})
}
