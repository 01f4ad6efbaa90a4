package workflows

import (
	sdklog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/internal/testenv"
)

func quietLogger() sdklog.Logger { return testenv.QuietLogger() }
