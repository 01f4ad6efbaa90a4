package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersync/usersync/config"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
)

// runCmd runs a command line in-process with the given environment.
func runCmd(t *testing.T, ctx context.Context, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{getenv: func(k string) string { return vars[k] }, stdout: &out, stderr: &errb}
	code = run(ctx, e, args)
	return code, out.String(), errb.String()
}

func TestHelpListsCommands(t *testing.T) {
	code, out, _ := runCmd(t, context.Background(), nil, "help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, name := range []string{"dev", "api", "worker", "migrate", "doctor", "rotate-secrets", "version"} {
		if !strings.Contains(out, "\n  "+name+" ") {
			t.Errorf("help does not list %s:\n%s", name, out)
		}
	}
	if got := strings.Join(commandNames(), ","); got != "api,dev,doctor,idpsim,migrate,rotate-secrets,version,worker" {
		t.Errorf("commands = %s", got)
	}
}

func TestNoArgsAndUnknownCommand(t *testing.T) {
	if code, _, errOut := runCmd(t, context.Background(), nil); code != 2 || !strings.Contains(errOut, "Commands:") {
		t.Errorf("no args: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut := runCmd(t, context.Background(), nil, "serve")
	if code != 2 || !strings.Contains(errOut, `unknown command "serve"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
}

func TestHelpForCommandShowsFlagsNotHiddenOnes(t *testing.T) {
	code, out, _ := runCmd(t, context.Background(), nil, "help", "worker")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{"usersync worker", "--database-url", "USERSYNC_SECRET_KEY", "--temporal-task-queue"} {
		if !strings.Contains(out, s) {
			t.Errorf("help worker lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "fault-page-delay") {
		t.Errorf("help shows the fault-injection flag:\n%s", out)
	}
	if code, _, _ := runCmd(t, context.Background(), nil, "api", "-h"); code != 0 {
		t.Errorf("api -h: exit %d", code)
	}
}

func TestBadFlagsAndValues(t *testing.T) {
	code, _, errOut := runCmd(t, context.Background(), nil, "migrate", "--no-such-flag")
	if code != 2 || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCmd(t, context.Background(), nil, "migrate", "stray")
	if code != 2 || !strings.Contains(errOut, `unexpected argument "stray"`) {
		t.Errorf("stray argument: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCmd(t, context.Background(), map[string]string{"DATABASE_URL": "mysql://x"}, "migrate")
	if code != 1 || !strings.Contains(errOut, "DATABASE_URL") {
		t.Errorf("bad DATABASE_URL: exit %d, stderr %q", code, errOut)
	}
}

func TestRequiredVariables(t *testing.T) {
	ctx := context.Background()
	code, _, errOut := runCmd(t, ctx, nil, "api")
	if code != 1 || !strings.Contains(errOut, "USERSYNC_API_TOKEN") || !strings.Contains(errOut, "USERSYNC_SECRET_KEY") {
		t.Errorf("api without token and key: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCmd(t, ctx, map[string]string{"USERSYNC_API_TOKEN": "t"}, "api")
	if code != 1 || strings.Contains(errOut, "USERSYNC_API_TOKEN") || !strings.Contains(errOut, "USERSYNC_SECRET_KEY") {
		t.Errorf("api without key: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCmd(t, ctx, nil, "worker")
	if code != 1 || !strings.Contains(errOut, "USERSYNC_SECRET_KEY") {
		t.Errorf("worker without key: exit %d, stderr %q", code, errOut)
	}
	// A malformed key is named too, before anything is opened.
	code, _, errOut = runCmd(t, ctx, map[string]string{"USERSYNC_SECRET_KEY": "short", "USERSYNC_DATA_DIR": t.TempDir()}, "worker")
	if code != 1 || !strings.Contains(errOut, "USERSYNC_SECRET_KEY") {
		t.Errorf("worker with a bad key: exit %d, stderr %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, context.Background(), nil, "version")
	if code != 0 || !strings.HasPrefix(out, "usersync ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, out2, _ := runCmd(t, context.Background(), nil, "--version"); code != 0 || out2 != out {
		t.Errorf("--version: exit %d, %q", code, out2)
	}
}

func TestMigrate(t *testing.T) {
	t.Run("sqlite default in the data dir", func(t *testing.T) {
		dir := t.TempDir()
		code, _, errOut := runCmd(t, context.Background(), map[string]string{"USERSYNC_DATA_DIR": dir}, "migrate")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if _, err := os.Stat(filepath.Join(dir, "usersync.db")); err != nil {
			t.Fatalf("no database file: %v", err)
		}
		// Migrating again is a no-op.
		if code, _, errOut := runCmd(t, context.Background(), nil, "migrate", "--data-dir", dir); code != 0 {
			t.Fatalf("second migrate: exit %d: %s", code, errOut)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		url := dbtest.URL(t, schema.Postgres)
		code, _, errOut := runCmd(t, context.Background(), nil, "migrate", "--database-url", url)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

func TestLoadOrCreateToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "api-token")
	tok, err := loadOrCreateToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) < 40 {
		t.Errorf("token too short: %q", tok)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := loadOrCreateToken(path)
	if err != nil || again != tok {
		t.Errorf("second load = %q, %v; want the same token", again, err)
	}
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateToken(path); err == nil {
		t.Error("empty token file accepted")
	}
}

func TestDisplayAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080": "127.0.0.1:8080",
		":8080":          "127.0.0.1:8080",
		"0.0.0.0:8080":   "127.0.0.1:8080",
		"[::]:8080":      "127.0.0.1:8080",
		"[::1]:8080":     "[::1]:8080",
		"example:80":     "example:80",
	} {
		if got := displayAddr(in); got != want {
			t.Errorf("displayAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoggerFormat(t *testing.T) {
	for _, tc := range []struct {
		format   string
		terminal bool
		json     bool
	}{
		{"auto", true, false},
		{"auto", false, true},
		{"text", false, false},
		{"json", true, true},
	} {
		var buf bytes.Buffer
		e := &env{stderr: &buf, stderrIsTerminal: tc.terminal}
		cfg := mustConfig(t, "--log-format", tc.format)
		newLogger(e, cfg).Info("hello")
		if got := strings.HasPrefix(buf.String(), "{"); got != tc.json {
			t.Errorf("format %s terminal %v: %q", tc.format, tc.terminal, buf.String())
		}
	}
}

func mustConfig(t *testing.T, args ...string) *config.Config {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg, err := config.Load(fs, args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestWeakAPITokenRefusedAtStart is issue 13's item 4: a one-character
// token was accepted. api (and dev, given a token) refuse one shorter than
// 32 characters, or a known placeholder, before opening anything.
func TestWeakAPITokenRefusedAtStart(t *testing.T) {
	ctx := context.Background()
	key := secret.GenerateKey()
	for _, tc := range []struct{ cmd, token, want string }{
		{"api", "t", "USERSYNC_API_TOKEN is 1 characters, fewer than 32"},
		{"api", "change-me", `USERSYNC_API_TOKEN is a placeholder ("change-me")`},
		{"api", "CHANGEME", `placeholder ("changeme")`},
		{"api", strings.Repeat("a", 40), "one character repeated"},
		{"dev", "short-token", "fewer than 32"},
	} {
		code, _, errOut := runCmd(t, ctx, map[string]string{"USERSYNC_API_TOKEN": tc.token, "USERSYNC_SECRET_KEY": key,
			"USERSYNC_DATA_DIR": t.TempDir(), "TEMPORAL_ADDRESS": "127.0.0.1:1"}, tc.cmd)
		if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "openssl rand -hex 32") {
			t.Errorf("%s with token %q: exit %d, stderr %q, want %q", tc.cmd, tc.token, code, errOut, tc.want)
		}
		if strings.Contains(errOut, tc.token) && len(tc.token) > 10 {
			t.Errorf("the refused token is printed: %q", errOut)
		}
	}
}
