package syncrun_test

import (
	"testing"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/syncrun"
)

// The constants syncrun repeats (so that the workflow code need not link
// directory or profile) must not drift from the originals.
func TestRepeatedConstants(t *testing.T) {
	for _, c := range []struct{ name, ours, theirs string }{
		{"TriggerSchedule", syncrun.TriggerSchedule, directory.TriggerSchedule},
		{"FrequencyDaily", syncrun.FrequencyDaily, profile.ScheduleDaily},
	} {
		if c.ours != c.theirs {
			t.Errorf("syncrun.%s is %q, the original %q", c.name, c.ours, c.theirs)
		}
	}
}
