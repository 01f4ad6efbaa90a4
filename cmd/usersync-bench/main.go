// Command usersync-bench is the end-to-end benchmark of package bench
// (`make bench`). It is a command of its own so that the production binary
// does not carry the benchmark and its plotting library (gonum/plot); the
// worker processes it measures are the real `usersync worker`, from the
// binary given with --usersync.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/usersync/usersync/bench"
)

var errUsage = errors.New("usage error")

// env is what the command reads and writes, so that it could be tested
// without the process's own.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr}
	err := runBench(ctx, e, os.Args[1:])
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, errUsage):
		os.Exit(2)
	}
	fmt.Fprintf(e.stderr, "usersync-bench: %v\n", err)
	os.Exit(1)
}

// defaultBenchDatabase is the local PostgreSQL of `make test`, where the
// bench creates (and drops) a database of its own.
const defaultBenchDatabase = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// runBench runs the benchmark, with its report written to
// bench/results/<date>.md and .png.
func runBench(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("usersync-bench", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	sizes := fs.String("sizes", "10000,100000", "tenant sizes in users, comma-separated (10k, 1m accepted)")
	ldapSizes := fs.String("ldap-sizes", "100000", "OpenLDAP directory sizes in users (needs slapd and slapadd), comma-separated; 0 or empty: none")
	dbURL := fs.String("database-url", "", "PostgreSQL server to create a throwaway database on (default DATABASE_URL, else "+defaultBenchDatabase+")")
	tcli := fs.String("temporal-cli", filepath.Join("bin", "temporal"), "the Temporal CLI whose dev server the runs use")
	out := fs.String("out", filepath.Join("bench", "results"), "folder of the report (<date>.md and <date>.png); empty: print only")
	share := fs.Float64("changes", 0.01, "share of users changed before the incremental sync")
	latency := fs.Duration("latency", 0, "delay before the simulated Graph tenant answers each request (e.g. 300ms, as real tenants answer a page)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	usersync := fs.String("usersync", filepath.Join("bin", "usersync"), "the usersync binary whose worker subcommand the runs measure")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(e.stderr, "\nMeasures full, unchanged and incremental syncs of simulated Entra ID tenants through Temporal into PostgreSQL, beside a raw baseline,")
			fmt.Fprintln(e.stderr, "and of OpenLDAP directories (Debian's slapd) of --ldap-sizes users.")
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "usersync-bench: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	ns, err := bench.ParseSizes(*sizes)
	if err != nil {
		return fmt.Errorf("--sizes: %w", err)
	}
	var ls []int
	if v := strings.TrimSpace(*ldapSizes); v != "" && v != "0" {
		if ls, err = bench.ParseSizes(v); err != nil {
			return fmt.Errorf("--ldap-sizes: %w", err)
		}
	}
	if *latency < 0 {
		return fmt.Errorf("--latency: %s is negative", *latency)
	}
	admin := *dbURL
	if admin == "" {
		admin = e.getenv("DATABASE_URL")
	}
	if admin == "" || strings.HasPrefix(admin, "sqlite:") {
		admin = defaultBenchDatabase
	}
	worker, err := filepath.Abs(*usersync)
	if err != nil {
		return fmt.Errorf("--usersync: %w", err)
	}
	if _, err := os.Stat(worker); err != nil {
		return fmt.Errorf("--usersync: the usersync binary (make build): %w", err)
	}
	o := bench.Options{Sizes: ns, LDAPSizes: ls, AdminURL: admin, TemporalCLI: *tcli, Worker: worker, ChangeShare: *share, Log: e.stderr, Latency: *latency}
	if *quiet {
		o.Log = nil
	}
	results, runErr := bench.Run(ctx, o)
	if len(results) == 0 {
		return runErr
	}
	// The sizes measured before a failure are still reported.
	if err := writeBenchReport(e, *out, results); err != nil {
		return err
	}
	return runErr
}

// writeBenchReport prints the report and, unless out is empty, writes it
// to out/<date>.md with its plot.
func writeBenchReport(e *env, out string, results []bench.Result) error {
	now := time.Now()
	host, _ := os.Hostname()
	var md bytes.Buffer
	bench.WriteMarkdown(&md, results, now, host)
	fmt.Fprint(e.stdout, md.String())
	if out == "" {
		return nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	base := filepath.Join(out, now.Format("2006-01-02"))
	if err := os.WriteFile(base+".md", md.Bytes(), 0o644); err != nil { //nolint:gosec // a report to read
		return err
	}
	if err := bench.WritePlot(base+".png", results); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "report: %s.md, plot: %s.png\n", base, base)
	return nil
}
