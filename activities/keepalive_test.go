package activities

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/testenv"
)

// A step that outlasts the heartbeat timeout in one call (one statement
// over millions of rows) must end in its first attempt, on a real server
// that enforces the timeout.
func TestKeepAliveHoldsALongStepInItsFirstAttempt(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Temporal dev server")
	}
	srv := testenv.StartDevServer(t)

	const queue = "keepalive-test"
	w := worker.New(srv.Client, queue, worker.Options{})
	// longStep blocks for three heartbeat timeouts, in keepAlive or not,
	// and reports the attempt it ended in.
	longStep := func(ctx context.Context, kept bool) (int32, error) {
		wait := func() error { time.Sleep(3 * time.Second); return nil }
		if kept {
			if err := keepAlive(ctx, wait, "working"); err != nil {
				return 0, err
			}
		} else if err := wait(); err != nil {
			return 0, err
		}
		return activity.GetInfo(ctx).Attempt, nil
	}
	w.RegisterActivityWithOptions(longStep, activity.RegisterOptions{Name: "LongStep"})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, kept bool) (int32, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
			HeartbeatTimeout: time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		var attempt int32
		err := workflow.ExecuteActivity(ctx, "LongStep", kept).Get(ctx, &attempt)
		return attempt, err
	}, workflow.RegisterOptions{Name: "LongStepWorkflow"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	run := func(kept bool) (int32, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := srv.Client.ExecuteWorkflow(ctx, clientOptions(queue), "LongStepWorkflow", kept)
		if err != nil {
			t.Fatal(err)
		}
		var attempt int32
		err = r.Get(ctx, &attempt)
		return attempt, err
	}
	if attempt, err := run(true); err != nil || attempt != 1 {
		t.Fatalf("kept alive: attempt %d, %v", attempt, err)
	}
	// The control: the same step without keepAlive times out.
	if _, err := run(false); err == nil {
		t.Fatal("a step that does not heartbeat was not timed out: the test proves nothing")
	}
}

func clientOptions(queue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{TaskQueue: queue}
}
