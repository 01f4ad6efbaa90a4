package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/usersync/usersync/provider"
)

// TestGiveUpBoundsOnlyProviderFailures checks the provider retry budget:
// a provider failing past the budget ends the step with a final error that
// names it; within the budget, or for a database failure, or for an error
// that is final already, the error is left as it is.
func TestGiveUpBoundsOnlyProviderFailures(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	outage := providerError{fmt.Errorf("download csv: %w", errors.New("the server failed (500 Internal Server Error)"))}
	dbDown := errors.New("pq: the database system is shutting down")
	badFile := classify(providerError{&provider.InvalidDataError{Object: "line 3", Reason: "unbalanced quote"}})

	for _, tc := range []struct {
		name      string
		err       error
		elapsed   time.Duration
		wantFinal bool
	}{
		{"provider within budget", outage, 30 * time.Minute, false},
		{"provider past budget", outage, 61 * time.Minute, true},
		{"database past budget", dbDown, 5 * time.Hour, false},
		{"final already", badFile, 5 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := ts.NewTestActivityEnvironment()
			env.RegisterActivityWithOptions(func(ctx context.Context) error {
				return giveUp(ctx, time.Now().Add(tc.elapsed), 0, tc.err)
			}, activity.RegisterOptions{Name: "Step"})
			_, err := env.ExecuteActivity("Step")
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) {
				t.Fatalf("error %v", err)
			}
			if appErr.NonRetryable() != tc.wantFinal {
				t.Fatalf("final = %t, want %t: %v", appErr.NonRetryable(), tc.wantFinal, err)
			}
			if tc.name == "provider past budget" {
				if msg := appErr.Error(); appErr.Type() != ErrTypeProviderUnavailable || !strings.Contains(msg, "gave up") ||
					!strings.Contains(msg, "500 Internal Server Error") {
					t.Fatalf("give-up error %v (type %s)", err, appErr.Type())
				}
			}
		})
	}
}
