package workflows

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// historyFiles lists the recorded histories of every shape under dir
// matching pattern: the first shape's at the top, each later shape's in
// the folder named after its change id. The current shape must have some.
func historyFiles(t *testing.T, dir, pattern string) []string {
	t.Helper()
	top, err := filepath.Glob(filepath.Join(dir, pattern))
	require.NoError(t, err)
	shapes, err := filepath.Glob(filepath.Join(dir, "*", pattern))
	require.NoError(t, err)
	current, err := filepath.Glob(filepath.Join(dir, currentShape, pattern))
	require.NoError(t, err)
	require.NotEmpty(t, current, "no histories of the current shape in %s/%s: record them (TestRecordHistory)", dir, currentShape)
	return append(top, shapes...)
}

// TestReplay replays every history a real server recorded (TestRecordHistory),
// of every shape the workflow has had, against the current code: a change
// that would break runs in flight (a new, removed or reordered command not
// guarded by workflow.GetVersion) fails here.
func TestReplay(t *testing.T) {
	for _, f := range historyFiles(t, "testdata", "*history.json") {
		t.Run(f, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(SyncProfile, workflow.RegisterOptions{Name: WorkflowName})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), f))
		})
	}
}
