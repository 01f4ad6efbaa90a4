// Package testenv starts the real parts integration tests need: a
// Temporal dev server from the CLI that `make tools` builds into ./bin (never
// a download: the machines reach no release site), and the usersync binary
// itself for tests that kill and restart worker processes. Under CI a
// missing part fails the test instead of skipping it, since a skipped test
// proves nothing.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

// RepoRoot is the repository's top folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Need fails under CI, and skips otherwise, when a part is missing.
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required under CI: %v", what, err)
	}
	t.Skipf("%s not available: %v", what, err)
}

// TemporalCLI is the path of the Temporal CLI (USERSYNC_TEMPORAL_CLI or ./bin/temporal).
func TemporalCLI(t testing.TB) string {
	t.Helper()
	path := os.Getenv("USERSYNC_TEMPORAL_CLI")
	if path == "" {
		path = filepath.Join(RepoRoot(), "bin", "temporal")
	}
	_, err := os.Stat(path)
	Need(t, "the temporal CLI (make tools)", err)
	return path
}

// QuietLogger keeps SDK chatter out of test output unless it matters.
func QuietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// DevServer is a throwaway in-memory Temporal dev server.
type DevServer struct {
	Client  client.Client
	Address string
}

// StartDevServer starts a dev server with usersync's search attributes;
// it stops when the test ends.
func StartDevServer(t testing.TB) *DevServer {
	t.Helper()
	return startDevServer(t, temporal.NewSearchAttributes(
		temporal.NewSearchAttributeKeyKeyword("ProfileName").ValueSet(""),
		temporal.NewSearchAttributeKeyKeyword("Provider").ValueSet(""),
	))
}

// StartBareDevServer starts a dev server without usersync's search
// attributes, for tests of their registration.
func StartBareDevServer(t testing.TB) *DevServer {
	t.Helper()
	return startDevServer(t, temporal.SearchAttributes{})
}

func startDevServer(t testing.TB, attrs temporal.SearchAttributes) *DevServer {
	t.Helper()
	path := TemporalCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:     path,
		ClientOptions:    &client.Options{Namespace: "default", Logger: QuietLogger()},
		LogLevel:         "error",
		SearchAttributes: attrs,
		Stdout:           io.Discard,
		Stderr:           io.Discard,
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
	return &DevServer{Client: srv.Client(), Address: srv.FrontendHostPort()}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/usersync once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "usersync-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "usersync")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/usersync")
		cmd.Dir = RepoRoot()
		cmd.Stderr = os.Stderr
		buildErr = cmd.Run()
	})
	if buildErr != nil {
		t.Fatalf("build usersync: %v", buildErr)
	}
	return binPath
}
