package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/usersync/usersync/bench"
)

// defaultBenchDatabase is the local PostgreSQL of `make test`, where the
// bench creates (and drops) a database of its own.
const defaultBenchDatabase = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// runBench is `usersync bench`: the end-to-end benchmark of package bench,
// with its report written to bench/results/<date>.md and .png.
func runBench(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("usersync bench", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	sizes := fs.String("sizes", "10000,100000", "tenant sizes in users, comma-separated (10k, 1m accepted)")
	dbURL := fs.String("database-url", "", "PostgreSQL server to create a throwaway database on (default DATABASE_URL, else "+defaultBenchDatabase+")")
	tcli := fs.String("temporal-cli", filepath.Join("bin", "temporal"), "the Temporal CLI whose dev server the runs use")
	out := fs.String("out", filepath.Join("bench", "results"), "folder of the report (<date>.md and <date>.png); empty: print only")
	share := fs.Float64("changes", 0.01, "share of users changed before the incremental sync")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(e.stderr, "\nMeasures full, unchanged and incremental syncs of simulated Entra ID tenants through Temporal into PostgreSQL, beside a raw baseline.")
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "usersync bench: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	ns, err := bench.ParseSizes(*sizes)
	if err != nil {
		return fmt.Errorf("--sizes: %w", err)
	}
	admin := *dbURL
	if admin == "" {
		admin = e.getenv("DATABASE_URL")
	}
	if admin == "" || strings.HasPrefix(admin, "sqlite:") {
		admin = defaultBenchDatabase
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the usersync binary: %w", err)
	}
	o := bench.Options{Sizes: ns, AdminURL: admin, TemporalCLI: *tcli, Worker: self, ChangeShare: *share, Log: e.stderr}
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
