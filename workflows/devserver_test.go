package workflows

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
)

// temporalCLI is the Temporal CLI `make run` builds into ./bin; tests use
// it rather than letting the SDK download one, so they run offline.
func temporalCLI(t testing.TB) string {
	t.Helper()
	path := os.Getenv("USERSYNC_TEMPORAL_CLI")
	if path == "" {
		abs, err := filepath.Abs(filepath.Join("..", "bin", "temporal"))
		if err != nil {
			t.Fatal(err)
		}
		path = abs
	}
	if _, err := os.Stat(path); err != nil {
		// Under CI a skipped test would prove nothing.
		if os.Getenv("CI") != "" {
			t.Fatalf("temporal CLI required under CI (make tools): %v", err)
		}
		t.Skipf("temporal CLI not built (make tools): %v", err)
	}
	return path
}

// quietLogger keeps SDK chatter out of test output unless it matters.
func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// startDevServer starts a throwaway in-memory Temporal dev server and
// returns a client of its default namespace.
func startDevServer(t testing.TB) client.Client {
	t.Helper()
	path := temporalCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  path,
		ClientOptions: &client.Options{Namespace: "default", Logger: quietLogger()},
		LogLevel:      "error",
		Stdout:        io.Discard,
		Stderr:        io.Discard,
	})
	if err != nil {
		t.Fatalf("start temporal dev server: %v", err)
	}
	t.Cleanup(func() {
		srv.Client().Close()
		if err := srv.Stop(); err != nil {
			t.Logf("stop temporal dev server: %v", err)
		}
	})
	return srv.Client()
}
