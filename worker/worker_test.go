package worker

import (
	"context"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/syncrun"
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

// offQueue are the exported methods of the activities that are not steps:
// the API calls them directly, and their arguments carry decrypted
// secrets, which must not travel through Temporal.
var offQueue = []string{"ProviderGroups", "TestConnection"}

// Every exported method of the activities is either a step, registered
// under the name the workflows call, or deliberately off the queue: a new
// method must be put on one side.
func TestStepsAreTheOnlyActivities(t *testing.T) {
	steps := Steps(&activities.Activities{})
	names := []string{syncrun.StepStartRun, syncrun.StepFetch, syncrun.StepPlan, syncrun.StepSetStatus,
		syncrun.StepApply, syncrun.StepFinishRun, syncrun.StepCheckScheduledRun, syncrun.StepRecordSkippedRun,
		syncrun.StepStartRevert, syncrun.StepPlanRevert, syncrun.StepApplyRevert}
	var got []string
	for name, fn := range steps {
		got = append(got, name)
		// The function registered under a name is the method of that name.
		method := runtimeName(fn)
		require.True(t, strings.HasSuffix(method, "."+name+"-fm"), "step %s is registered as %s", name, method)
	}
	sort.Strings(got)
	sort.Strings(names)
	require.Equal(t, names, got)

	typ := reflect.TypeFor[*activities.Activities]()
	for i := range typ.NumMethod() {
		m := typ.Method(i).Name
		if _, ok := steps[m]; ok {
			continue
		}
		require.Contains(t, offQueue, m, "exported method %s of the activities is neither a step (worker.Steps) nor kept off the queue", m)
	}
}

func runtimeName(fn any) string {
	return runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
}

// A workflow that asks the task queue for TestConnection finds no such
// activity: only the steps are there.
func TestHelpersAreNotOnTheQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Temporal dev server")
	}
	srv := testenv.StartDevServer(t)
	const queue = "registration-test"
	w := New(srv.Client, queue, activities.New(activities.Deps{}), Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, name string) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		return workflow.ExecuteActivity(ctx, name, nil, nil).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "CallStep"})
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range offQueue {
		run, err := srv.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, "CallStep", name)
		require.NoError(t, err)
		err = run.Get(ctx, nil)
		require.Error(t, err, "%s ran on the task queue", name)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, err, &appErr, name)
		require.Equal(t, "ActivityNotRegisteredError", appErr.Type(), "%s: %v", name, err)
	}
}
