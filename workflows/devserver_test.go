package workflows

import (
	"testing"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/internal/testenv"
)

func quietLogger() sdklog.Logger { return testenv.QuietLogger() }

// startDevServer starts a throwaway dev server without usersync's search
// attributes: the client test checks that the client registers them.
func startDevServer(t testing.TB) client.Client {
	t.Helper()
	return testenv.StartBareDevServer(t).Client
}
