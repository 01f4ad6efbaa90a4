package bench_test

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/usersync/usersync/bench"
)

// TestWritePlotPanels draws the report's four figures for Entra sizes,
// LDAP sizes, both, and a size whose steps were not recorded, into one
// PNG of the report's size.
func TestWritePlotPanels(t *testing.T) {
	measure := func(wall time.Duration, users int) bench.Measure {
		return bench.Measure{Wall: wall, Users: users, PeakRSS: 120 << 20,
			Phases: bench.Phases{"Fetch": wall / 3, "Plan": wall / 10, "Apply": wall / 2}}
	}
	entra := []bench.Result{
		{Size: 10000, Full: measure(5*time.Second, 9900), NoChange: measure(time.Second, 9900),
			FullNoChange: measure(3*time.Second, 9900), Incremental: measure(time.Second, 9900),
			Baseline: bench.Baseline{Users: 10000, Wall: time.Second / 2}},
		{Size: 100000, Full: measure(50*time.Second, 99000), Baseline: bench.Baseline{Users: 100000, Wall: 4 * time.Second}},
	}
	ldap := []bench.Result{{Size: 1000, LDAP: &bench.LDAPRun{Entries: 1100}, Full: measure(2*time.Second, 1000)}}
	noSteps := []bench.Result{{Size: 1000, Full: bench.Measure{Wall: time.Second, Users: 1000}}}
	for name, rs := range map[string][]bench.Result{"entra": entra, "ldap": ldap, "both": append(entra, ldap...), "no steps": noSteps} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "plot.png")
			if err := bench.WritePlot(path, rs); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cfg, err := png.DecodeConfig(f)
			if err != nil {
				t.Fatal(err)
			}
			// 12 × 9 inches at vgimg's 96 dpi: the four panels.
			if cfg.Width != 1152 || cfg.Height != 864 {
				t.Fatalf("png %d×%d, want 1152×864", cfg.Width, cfg.Height)
			}
		})
	}
}
