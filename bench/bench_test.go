package bench_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/bench"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/internal/testenv"
)

// TestBenchSmoke runs the benchmark at 10,000 users, as `make bench
// SIZES=10000` does: the figures are the machine's and are not asserted,
// but every scenario must run to the end and be reported, and what must
// hold whatever the machine must hold: a re-sync with nothing changed
// writes no user row, and the incremental run is a delta run.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end benchmark")
	}
	dbtest.RequirePostgres(t)
	o := bench.Options{Sizes: []int{10000}, AdminURL: dbtest.AdminURL(),
		TemporalCLI: testenv.TemporalCLI(t), Worker: testenv.Binary(t), Log: testWriter{t},
		// The knob's path, at a delay too small to slow the test.
		Latency: 2 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rs, err := bench.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.Full.Counts.Created < 9000 || r.Full.Mode != "full" || r.Baseline.Users < 9000 {
		t.Fatalf("full sync %+v, baseline %+v", r.Full, r.Baseline)
	}
	if r.NoChange.UserRows != 0 || r.FullNoChange.UserRows != 0 || r.NoChange.Mode != "delta" || r.FullNoChange.Mode != "full" {
		t.Fatalf("re-syncs with nothing changed: %+v, %+v", r.NoChange, r.FullNoChange)
	}
	if r.Incremental.Mode != "delta" || r.Incremental.UserRows == 0 || r.Changes == 0 {
		t.Fatalf("incremental %+v after %d changes", r.Incremental, r.Changes)
	}
	var md bytes.Buffer
	bench.WriteMarkdown(&md, rs, time.Now(), "ci")
	if !strings.Contains(md.String(), "| 10,000 |") || !strings.Contains(md.String(), "answered after 2ms") {
		t.Fatalf("report:\n%s", md.String())
	}
	if err := bench.WritePlot(filepath.Join(t.TempDir(), "plot.png"), rs); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + md.String())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
