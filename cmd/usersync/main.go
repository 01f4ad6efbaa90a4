// Command usersync is the one binary of usersync. Its subcommands are the
// processes of the design: `api` (the HTTP API), `worker` (the Temporal
// worker running sync workflows and activities), `dev` (both in one process,
// with a generated token and key, for a laptop) and `migrate`.
//
// This package is the only place that wires concrete types together (the
// SQL store, the secret box, the Temporal client, the Gin router); every
// other package takes its dependencies as parameters, which keeps them
// testable on their own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/usersync/usersync/config"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

// errUsage marks a command line that could not be understood; the usage has
// already been printed, the process exits with status 2.
var errUsage = errors.New("usage error")

// env is what a command runs with, so tests can run commands in-process.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	// stderrIsTerminal chooses the text log handler in "auto" log format.
	stderrIsTerminal bool
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "API and worker in one process, with a generated token and secret key (for a laptop)", runDev},
		{"api", "serve the HTTP API (needs USERSYNC_API_TOKEN and USERSYNC_SECRET_KEY)", runAPI},
		{"worker", "run the Temporal worker: sync workflows and activities (needs USERSYNC_SECRET_KEY)", runWorker},
		{"migrate", "apply the database migrations and exit", runMigrate},
		{"doctor", "check configuration, database, Temporal, workers, schedules and connections; say what to fix", runDoctor},
		{"rotate-secrets", "re-encrypt every profile's secrets with USERSYNC_SECRET_KEY (old key in USERSYNC_SECRET_KEY_OLD)", runRotateSecrets},
		{"idpsim", "serve simulated identity providers (Entra ID tenants) for demos, tests and benchmarks", runIdpsim},
		{"version", "print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process at once
		// instead of waiting for a graceful shutdown.
		<-ctx.Done()
		stop()
	}()
	e := &env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr, stderrIsTerminal: isTerminal(os.Stderr)}
	os.Exit(run(ctx, e, os.Args[1:]))
}

// run executes a command line and answers the exit status.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		printHelp(e.stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return helpFor(ctx, e, rest[0])
		}
		printHelp(e.stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, e, rest)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(e.stderr, "usersync %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(e.stderr, "usersync: unknown command %q\n\n", name)
	printHelp(e.stderr)
	return 2
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "usersync keeps a people directory in step with Entra ID, Okta and CSV files.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: usersync <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	fmt.Fprintf(tw, "  help\t%s\n", "this list; `usersync help <command>` shows the flags of a command")
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every flag is also an environment variable (DATABASE_URL is --database-url, …);")
	fmt.Fprintln(w, "see `usersync help dev` for the list.")
}

// helpFor prints the flags of one command.
func helpFor(ctx context.Context, e *env, name string) int {
	for _, c := range commands() {
		if c.name == name {
			_ = c.run(ctx, &env{getenv: e.getenv, stdout: e.stdout, stderr: e.stdout}, []string{"-h"})
			return 0
		}
	}
	fmt.Fprintf(e.stderr, "usersync help: unknown command %q\n", name)
	return 2
}

// loadConfig parses the flags of a subcommand; -h prints its usage.
func loadConfig(e *env, name, summary string, args []string) (*config.Config, error) {
	fs := flag.NewFlagSet("usersync "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfg, err := config.Load(fs, args, e.getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(e.stderr, "\n%s.\n", upperFirst(summary))
			return nil, err
		}
		if !errors.Is(err, config.ErrInvalid) {
			return nil, errUsage // the flag package printed the error and usage
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "usersync %s: unexpected argument %q\n", name, fs.Arg(0))
		return nil, errUsage
	}
	return cfg, nil
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// newLogger builds the process logger: text on a terminal, JSON otherwise
// (or as USERSYNC_LOG_FORMAT says), on stderr.
func newLogger(e *env, cfg *config.Config) *slog.Logger {
	level, _ := config.ParseLogLevel(cfg.LogLevel) // checked by Load
	opts := &slog.HandlerOptions{Level: level}
	text := cfg.LogFormat == "text" || (cfg.LogFormat == "auto" && e.stderrIsTerminal)
	if text {
		return slog.New(slog.NewTextHandler(e.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(e.stderr, opts))
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func runVersion(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("usersync version", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	fmt.Fprintf(e.stdout, "usersync %s (%s, %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// versionString is the -X version, else the VCS revision go build recorded.
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	rev := settings["vcs.revision"]
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if settings["vcs.modified"] == "true" {
		rev += "-dirty"
	}
	return "dev-" + rev
}

// commandNames lists the subcommands (for tests and completion).
func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return names
}
