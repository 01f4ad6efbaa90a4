package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Targets are the performance targets the project holds the bench to
// (the product's design, raised by the performance work of issue 17),
// printed beside the figures.
const Targets = `Targets: first sync of 100,000 users ≤ 12 s, of 1,000,000 ≤ 180 s; a forced full run of 1,000,000 with nothing
changed ≤ 60 s, writing no user, membership or ledger row; pipeline ÷ baseline ≥ 0.2 at 1,000,000; worker peak RSS ≤ 300 MB;
a re-sync with nothing changed writes 0 user rows; a 1% incremental sync of 100,000 ≤ 10 s.`

func secs(d time.Duration) string { return fmt.Sprintf("%.1f", d.Seconds()) }

func mb(b int64) string { return fmt.Sprintf("%d", b>>20) }

func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// WriteMarkdown writes the results as the tables of bench/results/<date>.md.
func WriteMarkdown(w io.Writer, rs []Result, when time.Time, machine string) {
	rs, ldapRs := splitLDAP(rs)
	fmt.Fprintf(w, "# usersync benchmark, %s\n\n", when.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Machine: %s (%d CPUs, %s/%s, %s). Simulated Entra ID tenant (idpsim/graph over TLS, in the bench process), "+
		"Temporal dev server, one `usersync worker` process, PostgreSQL. Scope: the \"All Staff\" tree (99%% of the users); "+
		"group sync of every security group; managers; two mapped attributes.\n\n",
		machine, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if len(rs) > 0 && rs[0].Server != "" {
		fmt.Fprintf(w, "Database: %s.\n\n", rs[0].Server)
	}
	if len(rs) > 0 && rs[0].Latency > 0 {
		fmt.Fprintf(w, "Graph latency: every request to the simulated tenant (a page, a `$batch`, the baseline's reads too) "+
			"is answered after %s, as a real tenant answers in hundreds of milliseconds (`--latency`).\n\n", rs[0].Latency)
	}
	fmt.Fprintln(w, "## Full first sync, and the raw baseline")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| users | wall (s) | users/s | worker peak RSS (MB) | rows written | baseline (s) | baseline users/s | pipeline ÷ baseline |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %.2f |\n", thousands(r.Size), secs(r.Full.Wall),
			thousands(int(r.Full.UsersPerSecond())), mb(r.Full.PeakRSS), thousands(int(r.Full.Rows)), secs(r.Baseline.Wall),
			thousands(int(r.Baseline.UsersPerSecond())), r.Ratio())
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Re-syncs")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| users | nothing changed: wall (s) | user rows written | rows written | forced full, nothing changed: wall (s) | user rows written | 1% changed: changes | wall (s) | user rows written | rows written | peak RSS (MB) |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %d | %s | %s | %s | %s | %s |\n", thousands(r.Size),
			secs(r.NoChange.Wall), r.NoChange.UserRows, thousands(int(r.NoChange.Rows)),
			secs(r.FullNoChange.Wall), r.FullNoChange.UserRows,
			thousands(r.Changes), secs(r.Incremental.Wall), thousands(int(r.Incremental.UserRows)), thousands(int(r.Incremental.Rows)),
			mb(max(r.NoChange.PeakRSS, r.FullNoChange.PeakRSS, r.Incremental.PeakRSS)))
	}
	fmt.Fprintln(w)
	writePhases(w, "##", rs)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\"Rows written\" is what PostgreSQL counted inserted, updated and deleted in every table (staging, plan, ledger and audit included); "+
		"\"user rows written\" counts the users the run created or updated. The nothing-changed re-sync is the run the product makes "+
		"(a delta run on Graph's delta links); the forced one drops the sync state first and reads the whole tenant again.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, strings.ReplaceAll(Targets, "\n", " "))
	writeLDAP(w, ldapRs)
}

// writePhases writes where each run's time went, by activity, under a
// heading of the given level.
func writePhases(w io.Writer, level string, rs []Result) {
	fmt.Fprintln(w, level+" Where the time went")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Seconds spent in each activity of the run, from its scheduling to its close (every attempt, from Temporal's history); \"other\" is the rest of the wall time: the workflow's own tasks.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| users | run | wall | fetch | plan | apply | finish | other |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		for _, m := range []struct {
			name string
			m    Measure
		}{{"full first sync", r.Full}, {"nothing changed", r.NoChange}, {"forced full, nothing changed", r.FullNoChange},
			{"1% changed", r.Incremental}} {
			var sum time.Duration
			for _, d := range m.m.Phases {
				sum += d
			}
			p := m.m.Phases
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", thousands(r.Size), m.name, secs(m.m.Wall),
				secs(p["Fetch"]), secs(p["Plan"]), secs(p["Apply"]), secs(p["FinishRun"]), secs(max(m.m.Wall-sum, 0)))
		}
	}
}

// WritePlot draws the report's figures as one PNG: the wall times against
// the tenant size; the first sync's users/s beside the baseline's; the
// worker's peak RSS; and where each size's first sync spent its time, by
// step (from Temporal's history, as the report's table).
func WritePlot(path string, rs []Result) error {
	entra, ldapRs := splitLDAP(rs)
	times, err := timePlot(entra, ldapRs)
	if err != nil {
		return err
	}
	perSecond, err := sizePlot("first sync: users/s", "users/s", true, []sizeSeries{
		{"full sync", entra, func(r Result) float64 { return r.Full.UsersPerSecond() }},
		{"baseline (read + COPY)", entra, func(r Result) float64 { return r.Baseline.UsersPerSecond() }},
		{"LDAP: full sync", ldapRs, func(r Result) float64 { return r.Full.UsersPerSecond() }},
	})
	if err != nil {
		return err
	}
	rss, err := sizePlot("worker peak RSS (target ≤ 300 MB)", "MB", false, []sizeSeries{
		{"full sync", entra, func(r Result) float64 { return float64(r.Full.PeakRSS >> 20) }},
		{"re-syncs (the most of three)", entra, func(r Result) float64 {
			return float64(max(r.NoChange.PeakRSS, r.FullNoChange.PeakRSS, r.Incremental.PeakRSS) >> 20)
		}},
		{"LDAP: full sync", ldapRs, func(r Result) float64 { return float64(r.Full.PeakRSS >> 20) }},
	})
	if err != nil {
		return err
	}
	steps, err := stepPlot(entra)
	if err != nil {
		return err
	}
	const w, h = 12 * vg.Inch, 9 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: vg.Inch / 4, PadY: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8,
		PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	plots := [][]*plot.Plot{{times, perSecond}, {rss, steps}}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j, p := range plots[i] {
			p.Draw(canvases[i][j])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

func timePlot(rs, ldapRs []Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "usersync: time against tenant size"
	logAxes(p, "seconds")
	series := []struct {
		name string
		get  func(Result) time.Duration
	}{
		{"full sync", func(r Result) time.Duration { return r.Full.Wall }},
		{"baseline (read + COPY)", func(r Result) time.Duration { return r.Baseline.Wall }},
		{"forced full re-sync, no change", func(r Result) time.Duration { return r.FullNoChange.Wall }},
		{"incremental, 1% changed", func(r Result) time.Duration { return r.Incremental.Wall }},
		{"re-sync, no change", func(r Result) time.Duration { return r.NoChange.Wall }},
	}
	var args []any
	for _, s := range series {
		pts := make(plotter.XYs, 0, len(rs))
		for _, r := range rs {
			pts = append(pts, plotter.XY{X: float64(r.Size), Y: max(s.get(r).Seconds(), 0.01)})
		}
		args = append(args, s.name, pts)
	}
	args = append(args, ldapSeries(ldapRs)...)
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

func logAxes(p *plot.Plot, y string) {
	p.X.Label.Text = "users"
	p.Y.Label.Text = y
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
}

// sizeSeries is one line of a figure by tenant size; a series without
// results is left out.
type sizeSeries struct {
	name string
	rs   []Result
	get  func(Result) float64
}

func sizePlot(title, y string, logY bool, series []sizeSeries) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	logAxes(p, y)
	if !logY {
		p.Y.Scale = plot.LinearScale{}
		p.Y.Tick.Marker = plot.DefaultTicks{}
		p.Y.Min = 0
	}
	var args []any
	for _, s := range series {
		if len(s.rs) == 0 {
			continue
		}
		pts := make(plotter.XYs, 0, len(s.rs))
		for _, r := range s.rs {
			// A log axis cannot take 0 (a measure that did not run).
			pts = append(pts, plotter.XY{X: float64(r.Size), Y: max(s.get(r), 0.01)})
		}
		args = append(args, s.name, pts)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	p.Legend.Left = true
	return p, nil
}

// stepPlot stacks, for each Entra ID size, the share of the first sync's
// wall time each step took: shares, so that the small sizes stay readable
// beside the largest.
func stepPlot(rs []Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "first sync: share of the wall time by step"
	p.Y.Label.Text = "% of the wall time"
	p.Y.Max = 130 // room for the legend above the bars
	steps := []struct {
		name string
		get  func(Measure) time.Duration
	}{
		{"fetch", func(m Measure) time.Duration { return m.Phases["Fetch"] }},
		{"plan", func(m Measure) time.Duration { return m.Phases["Plan"] }},
		{"apply", func(m Measure) time.Duration { return m.Phases["Apply"] }},
		{"the rest", func(m Measure) time.Duration {
			return max(m.Wall-m.Phases["Fetch"]-m.Phases["Plan"]-m.Phases["Apply"], 0)
		}},
	}
	if len(rs) == 0 {
		p.Title.Text += " (no Entra ID size measured)"
		return p, nil
	}
	labels := make([]string, 0, len(rs))
	for _, r := range rs {
		labels = append(labels, thousands(r.Size))
	}
	var below *plotter.BarChart
	for i, s := range steps {
		vals := make(plotter.Values, 0, len(rs))
		for _, r := range rs {
			share := 0.0
			if r.Full.Wall > 0 {
				share = 100 * s.get(r.Full).Seconds() / r.Full.Wall.Seconds()
			}
			vals = append(vals, share)
		}
		bars, err := plotter.NewBarChart(vals, vg.Points(28))
		if err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i)
		if below != nil {
			bars.StackOn(below)
		}
		below = bars
		p.Add(bars)
		p.Legend.Add(s.name, bars)
	}
	p.NominalX(labels...)
	p.Legend.Top = true
	return p, nil
}
