package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/config"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/runs"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
	"github.com/usersync/usersync/workflows"
)

// usersync doctor answers "why does it not work?" in one command: it checks
// what api and worker need (configuration, database, Temporal, a worker on
// the task queue, the profiles' schedules and connections), prints each
// problem with how to fix it, and exits non-zero when there is one. It
// changes nothing: no migration, no search attribute, no schedule, so it is
// safe against production.
//
// --only narrows it (a container health check: `--only database,temporal`),
// and --probe turns it into a bare HTTP probe, because the runtime image
// has no curl.

// Checks of doctor, in the order they run.
const (
	checkConfig      = "config"
	checkDatabase    = "database"
	checkTemporal    = "temporal"
	checkWorkers     = "workers"
	checkSchedules   = "schedules"
	checkConnections = "connections"
)

var doctorChecks = []string{checkConfig, checkDatabase, checkTemporal, checkWorkers, checkSchedules, checkConnections}

// doctorTimeout bounds each network step of doctor, so that an unreachable
// server is a finding, not a hang.
const doctorTimeout = 15 * time.Second

func runDoctor(ctx context.Context, e *env, args []string) error {
	var only, probe string
	cfg, err := loadConfigWith(e, "doctor",
		"check configuration, database, Temporal, workers, schedules and each profile's connection; say what to fix", args,
		func(fs *flag.FlagSet) {
			fs.StringVar(&only, "only", "", "comma-separated checks to run: "+strings.Join(doctorChecks, ", ")+" (default all)")
			fs.StringVar(&probe, "probe", "", "only GET this URL and succeed on a 2xx (a container health check: the image has no curl)")
		})
	if err != nil {
		return err
	}
	if probe != "" {
		return probeURL(ctx, e.stdout, probe)
	}
	want := map[string]bool{}
	for _, c := range strings.Split(only, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if !contains(doctorChecks, c) {
			fmt.Fprintf(e.stderr, "usersync doctor: unknown check %q (known: %s)\n", c, strings.Join(doctorChecks, ", "))
			return errUsage
		}
		want[c] = true
	}
	if len(want) == 0 {
		for _, c := range doctorChecks {
			want[c] = true
		}
	}
	d := &doctor{out: e.stdout, cfg: cfg, want: want}
	d.run(ctx)
	if d.problems > 0 {
		return fmt.Errorf("%d problem(s) found", d.problems)
	}
	fmt.Fprintln(e.stdout, "no problem found")
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// probeURL is the container health check: one GET, success on a 2xx.
func probeURL(ctx context.Context, out io.Writer, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // the status is the answer
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: %s", url, resp.Status)
	}
	fmt.Fprintf(out, "%s: %s\n", url, resp.Status)
	return nil
}

// doctor runs the checks and prints the findings as it goes.
type doctor struct {
	out      io.Writer
	cfg      *config.Config
	want     map[string]bool
	problems int

	box    *secret.Box
	db     *directory.DB
	store  *directory.SQLStore
	tc     client.Client
	dbOK   bool // the database is reachable and fully migrated
	tempOK bool // Temporal is reachable and the namespace exists

	// dev is set when the key and token are `usersync dev`'s, read from
	// the data dir (devSetup): doctor then checks that setup as dev runs
	// it, plain http to loopback providers (the simulators) included.
	dev bool
}

// devSetup reads what `usersync dev` (and `make run`) keeps in the data
// dir and leaves unset in the environment: the secret key and the API
// token. Without them doctor would report a working laptop setup as
// broken, and could open no profile's secrets; it reads the files only,
// creating nothing.
func (d *doctor) devSetup() {
	if d.cfg.SecretKey != "" {
		return
	}
	key, err := readDevFile(filepath.Join(d.cfg.DataDir, devKeyFile))
	if err != nil || key == "" {
		return
	}
	d.cfg.SecretKey, d.dev = key, true
	if d.cfg.APIToken == "" {
		if tok, err := readDevFile(filepath.Join(d.cfg.DataDir, devTokenFile)); err == nil {
			d.cfg.APIToken = tok
		}
	}
}

func readDevFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

func (d *doctor) ok(what, format string, args ...any) {
	fmt.Fprintf(d.out, "ok    %s: %s\n", what, fmt.Sprintf(format, args...))
}

func (d *doctor) warn(what, fix, format string, args ...any) {
	fmt.Fprintf(d.out, "WARN  %s: %s\n", what, fmt.Sprintf(format, args...))
	if fix != "" {
		fmt.Fprintf(d.out, "      fix: %s\n", fix)
	}
}

func (d *doctor) fail(what, fix, format string, args ...any) {
	d.problems++
	fmt.Fprintf(d.out, "FAIL  %s: %s\n", what, fmt.Sprintf(format, args...))
	if fix != "" {
		fmt.Fprintf(d.out, "      fix: %s\n", fix)
	}
}

func (d *doctor) skip(what, why string) {
	fmt.Fprintf(d.out, "skip  %s: %s\n", what, why)
}

func (d *doctor) run(ctx context.Context) {
	defer func() {
		if d.tc != nil {
			d.tc.Close()
		}
		if d.db != nil {
			d.db.Close()
		}
	}()
	d.devSetup()
	if d.want[checkConfig] {
		d.checkConfig()
	} else {
		d.box, _ = openBox(d.cfg)
	}
	needDB := d.want[checkDatabase] || d.want[checkSchedules] || d.want[checkConnections]
	if needDB {
		d.checkDatabase(ctx)
	}
	if d.want[checkTemporal] || d.want[checkWorkers] || d.want[checkSchedules] {
		d.checkTemporal(ctx)
	}
	if d.want[checkWorkers] {
		d.checkWorkers(ctx)
	}
	if d.want[checkSchedules] {
		d.checkSchedules(ctx)
	}
	if d.want[checkConnections] {
		d.checkConnections(ctx)
	}
}

func (d *doctor) checkConfig() {
	d.ok("configuration", "%s", d.cfg)
	if d.dev {
		d.ok("usersync dev", "USERSYNC_SECRET_KEY and USERSYNC_API_TOKEN unset: using the ones `usersync dev` keeps in %s, "+
			"and allowing plain http to loopback providers as it does", d.cfg.DataDir)
	}
	switch box, err := openBox(d.cfg); {
	case d.cfg.SecretKey == "":
		d.fail("USERSYNC_SECRET_KEY", "set it to the key the secrets were sealed with (a new one: openssl rand -base64 32)",
			"not set: api and worker need it to read the profiles' secrets")
	case err != nil:
		d.fail("USERSYNC_SECRET_KEY", "base64 of 32 bytes, e.g. from openssl rand -base64 32", "%v", err)
	default:
		d.box = box
		if n := len(d.cfg.SecretKeysOld()); n > 0 {
			d.warn("USERSYNC_SECRET_KEY_OLD", "run `usersync rotate-secrets`, then unset USERSYNC_SECRET_KEY_OLD",
				"%d previous key(s) set: a key rotation is under way", n)
		}
	}
	if d.cfg.APIToken == "" {
		d.warn("USERSYNC_API_TOKEN", "set it where `usersync api` runs", "not set: `usersync api` needs it (the worker does not)")
	} else if err := config.CheckAPIToken(d.cfg.APIToken); err != nil {
		d.fail("USERSYNC_API_TOKEN", "set a random token, e.g. from openssl rand -hex 32", "%s",
			strings.TrimPrefix(err.Error(), config.ErrInvalid.Error()+": "))
	}
	if d.cfg.Database == "" && !d.dev {
		d.warn("DATABASE_URL", "set DATABASE_URL=postgres://… for anything but a laptop",
			"not set: the SQLite file %s, which only processes on this machine can share", d.cfg.DatabaseURL())
	}
}

func (d *doctor) checkDatabase(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	db, err := directory.OpenDB(cctx, d.cfg.DatabaseURL())
	if err != nil {
		d.fail("database", "check DATABASE_URL, and that the database server is up and reachable from here", "%v", err)
		return
	}
	d.db, d.store = db, directory.NewSQLStore(db)
	st, err := schema.Check(cctx, db.DB, db.Dialect)
	switch {
	case err != nil:
		d.fail("database", "check that DATABASE_URL's user may read the database", "%v", err)
		return
	case len(st.Pending) > 0:
		d.fail("migrations", "run `usersync migrate` (api and worker also migrate at start)",
			"%d of %d not applied: %s", len(st.Pending), st.Known, strings.Join(st.Pending, ", "))
		return
	case len(st.Unknown) > 0:
		d.warn("migrations", "upgrade this usersync to the version the other processes run",
			"the database has migrations this usersync does not know (%v): a newer version migrated it", st.Unknown)
	default:
		d.ok("database", "%s, %d migration(s) applied", db.Dialect, st.Known)
	}
	d.dbOK = true
}

func (d *doctor) checkTemporal(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	opts, err := d.cfg.TemporalClientOptions()
	if err != nil {
		d.fail("temporal", "check TEMPORAL_TLS_*, TEMPORAL_API_KEY and the profile in TEMPORAL_CONFIG_FILE", "%v", err)
		return
	}
	// Doctor reports what fails; the SDK's own warnings would repeat it.
	opts.Logger = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	tc, err := client.DialContext(cctx, opts)
	if err != nil {
		d.fail("temporal", "check TEMPORAL_ADDRESS and how it is secured (TEMPORAL_TLS_*, TEMPORAL_API_KEY), "+
			"and that the Temporal server is up and reachable from here",
			"cannot connect to %s (%s): %v", d.cfg.TemporalAddress, d.cfg.TemporalSecurity(), err)
		return
	}
	d.tc = tc
	ns := d.cfg.TemporalNamespace
	if _, err := tc.WorkflowService().DescribeNamespace(cctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns}); err != nil {
		var nf *serviceerror.NamespaceNotFound
		if errors.As(err, &nf) {
			d.fail("temporal namespace", fmt.Sprintf("create it: temporal operator namespace create --namespace %s --address %s", ns, d.cfg.TemporalAddress),
				"namespace %q does not exist on %s", ns, d.cfg.TemporalAddress)
		} else {
			d.fail("temporal namespace", "check TEMPORAL_NAMESPACE", "describe namespace %q: %v", ns, err)
		}
		return
	}
	d.tempOK = true
	d.ok("temporal", "%s (%s), namespace %q", d.cfg.TemporalAddress, d.cfg.TemporalSecurity(), ns)

	st, err := runs.CheckSearchAttributes(cctx, tc, ns)
	switch {
	case err != nil:
		d.fail("search attributes", "", "%v", err)
	case st.Ready:
		d.ok("search attributes", "ProfileName and Provider are Keyword")
	case st.NoOperatorAPI:
		// Temporal Cloud: usersync cannot add them, and works without.
		d.warn("search attributes", st.Fix(),
			"%s missing on namespace %q, and this server does not let usersync add them (%v): "+
				"runs start without them and are listed by workflow id usersync-profile-<profile id>",
			strings.Join(st.Missing, " and "), ns, st.Err)
	default:
		d.fail("search attributes", "start `usersync api` or `usersync worker` once (they register them), or: "+st.Fix(),
			"%s missing on namespace %q", strings.Join(st.Missing, ", "), ns)
	}
}

func (d *doctor) checkWorkers(ctx context.Context) {
	if !d.tempOK {
		d.skip("workers", "Temporal is not reachable")
		return
	}
	cctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	q := d.cfg.TemporalTaskQueue
	pollers := map[string]int{}
	for _, kind := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		resp, err := d.tc.DescribeTaskQueue(cctx, q, kind)
		if err != nil {
			d.fail("workers", "", "describe task queue %q: %v", q, err)
			return
		}
		for _, p := range resp.GetPollers() {
			pollers[p.GetIdentity()]++
		}
	}
	if len(pollers) == 0 {
		d.fail("workers", fmt.Sprintf("start `usersync worker` with TEMPORAL_TASK_QUEUE=%s (and the same TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE)", q),
			"no worker polls task queue %q: runs will wait for one", q)
		return
	}
	d.ok("workers", "%d worker(s) poll task queue %q", len(pollers), q)
}

// listProfiles reads every profile.
func (d *doctor) listProfiles(ctx context.Context) ([]directory.Profile, error) {
	var all []directory.Profile
	opt := directory.ListOptions{Limit: 1000}
	for {
		page, err := d.store.ListProfiles(ctx, opt)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		opt.Cursor = page.NextCursor
	}
}

// checkSchedules compares each profile with its Temporal schedule: one
// exists exactly for the profiles whose frequency is not off, paused
// exactly while the profile is disabled, starting the scheduled workflow on
// this task queue; and no schedule is left of a deleted profile.
func (d *doctor) checkSchedules(ctx context.Context) {
	switch {
	case !d.dbOK:
		d.skip("schedules", "the database is not ready")
		return
	case !d.tempOK:
		d.skip("schedules", "Temporal is not reachable")
		return
	}
	cctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	profiles, err := d.listProfiles(cctx)
	if err != nil {
		d.fail("schedules", "", "list profiles: %v", err)
		return
	}
	const fix = "restart `usersync api` (it brings every schedule in line with the profiles at start), or save the profile again"
	known := map[string]bool{}
	inStep := 0
	for i := range profiles {
		p := &profiles[i]
		known[runs.ScheduleID(p.ID)] = true
		what := fmt.Sprintf("schedule of %q", p.Name)
		sched, err := runs.ScheduleOf(p)
		if err != nil {
			d.fail(what, "save the profile again through the API", "%v", err)
			continue
		}
		_, _, on, err := runs.ScheduleSpec(sched)
		if err != nil {
			d.fail(what, "save the profile again with a valid schedule", "%v", err)
			continue
		}
		desc, err := d.tc.ScheduleClient().GetHandle(cctx, runs.ScheduleID(p.ID)).Describe(cctx)
		var nf *serviceerror.NotFound
		missing := errors.As(err, &nf)
		switch {
		case err != nil && !missing:
			d.fail(what, "", "describe: %v", err)
		case !on && !missing:
			d.fail(what, fix, "the profile's frequency is off but Temporal has a schedule for it")
		case !on:
			inStep++
		case missing:
			d.fail(what, fix, "the profile syncs %s but Temporal has no schedule for it", describeSchedule(sched))
		default:
			var problems []string
			if paused := desc.Schedule.State != nil && desc.Schedule.State.Paused; paused == p.Enabled {
				problems = append(problems, fmt.Sprintf("paused=%t while the profile is enabled=%t", paused, p.Enabled))
			}
			if a, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction); !ok {
				problems = append(problems, "its action does not start a workflow")
			} else {
				if name, _ := a.Workflow.(string); name != workflows.ScheduledWorkflowName {
					problems = append(problems, fmt.Sprintf("it starts %v, not %s", a.Workflow, workflows.ScheduledWorkflowName))
				}
				if a.TaskQueue != d.cfg.TemporalTaskQueue {
					problems = append(problems, fmt.Sprintf("it starts on task queue %q, not %q (TEMPORAL_TASK_QUEUE)", a.TaskQueue, d.cfg.TemporalTaskQueue))
				}
			}
			if len(problems) > 0 {
				d.fail(what, fix, "%s", strings.Join(problems, "; "))
			} else {
				inStep++
			}
		}
	}
	// Schedules of profiles that no longer exist.
	it, err := d.tc.ScheduleClient().List(cctx, client.ScheduleListOptions{PageSize: 1000})
	if err != nil {
		d.fail("schedules", "", "list schedules: %v", err)
		return
	}
	var orphans []string
	for n := 0; it.HasNext() && n < 100000; n++ {
		s, err := it.Next()
		if err != nil {
			d.fail("schedules", "", "list schedules: %v", err)
			return
		}
		if strings.HasPrefix(s.ID, runs.ScheduleID("")) && !known[s.ID] {
			orphans = append(orphans, s.ID)
		}
	}
	if len(orphans) > 0 {
		sort.Strings(orphans)
		d.fail("schedules", fix+"; or delete them: temporal schedule delete --schedule-id <id>",
			"%d schedule(s) of deleted profiles still start runs: %s", len(orphans), strings.Join(orphans, ", "))
	}
	if inStep == len(profiles) && len(orphans) == 0 {
		d.ok("schedules", "the schedules of %d profile(s) are in step", len(profiles))
	}
}

func describeSchedule(s profile.Schedule) string {
	switch s.Frequency {
	case profile.ScheduleInterval:
		return fmt.Sprintf("every %d minutes", s.EveryMinutes)
	case profile.ScheduleDaily:
		return fmt.Sprintf("daily at %s %s", s.Time, s.Timezone)
	}
	return s.Frequency
}

// checkConnections runs "Test connection" for every enabled profile, with
// the secrets this process can open.
func (d *doctor) checkConnections(ctx context.Context) {
	if !d.dbOK {
		d.skip("connections", "the database is not ready")
		return
	}
	lctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	profiles, err := d.listProfiles(lctx)
	cancel()
	if err != nil {
		d.fail("connections", "", "list profiles: %v", err)
		return
	}
	if len(profiles) == 0 {
		d.ok("connections", "no profile yet")
		return
	}
	// The API's own Test connection: the same outbound policy (networks
	// allowed, loopback http under dev) and provider client, so that
	// doctor and the admin's green light agree.
	allow, err := d.cfg.OutboundAllowNets()
	if err != nil {
		d.fail("connections", "fix USERSYNC_OUTBOUND_ALLOW", "%v", err)
		return
	}
	test := newObservability(d.dev, allow).tester(d.store, d.box, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range profiles {
		p := &profiles[i]
		what := fmt.Sprintf("profile %q (%s)", p.Name, p.Provider)
		if !p.Enabled {
			d.skip(what, "disabled")
			continue
		}
		if p.Secrets != "" && d.box == nil {
			d.skip(what, "USERSYNC_SECRET_KEY is not usable")
			continue
		}
		if _, old, err := d.box.Reseal(p.Secrets); err == nil && old {
			d.warn(what, "run `usersync rotate-secrets`", "its secrets are sealed with a previous key (USERSYNC_SECRET_KEY_OLD)")
		}
		cfg, err := profile.Open(d.box, p.Config, p.Secrets)
		if err != nil {
			d.fail(what, "USERSYNC_SECRET_KEY must be the key the secrets were sealed with; during a key rotation put the previous one in USERSYNC_SECRET_KEY_OLD",
				"%v", err)
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, 2*doctorTimeout)
		began := time.Now()
		warnings, err := test(tctx, p, cfg)
		cancel()
		if err != nil {
			d.fail(what, connectionFix(err), "test connection: %v", err)
			continue
		}
		// The same warnings as the API's Test connection: it works, but
		// not fully.
		for _, w := range warnings {
			d.warn(what, "", "%s", w)
		}
		d.ok(what, "connection ok (%d ms)", time.Since(began).Milliseconds())
	}
}

// connectionFix says what to do about a failed test connection.
func connectionFix(err error) string {
	var thr *provider.ThrottledError
	switch {
	case strings.Contains(err.Error(), "USERSYNC_OUTBOUND_ALLOW"):
		return "the provider's address is in a loopback, private or link-local range, which provider requests may not reach: " +
			"allow its network with USERSYNC_OUTBOUND_ALLOW (a simulator on this machine is reachable under `usersync dev`)"
	case errors.Is(err, provider.ErrCredentialsExpired):
		return "the provider says the credentials have expired: create new ones (an Entra client secret) and save them on the profile"
	case errors.Is(err, provider.ErrAuth):
		return "the provider refused the credentials: set the right ones on the profile"
	case errors.Is(err, provider.ErrPermission):
		return "the credentials lack a permission or admin consent: grant it in the provider's admin console"
	case errors.Is(err, provider.ErrNotFound):
		return "the URL, tenant, org or document does not exist: correct it on the profile"
	case errors.Is(err, provider.ErrInvalidData):
		return "the provider answered something usersync cannot use: see the message"
	case errors.As(err, &thr):
		return "the provider is throttling: try again later"
	case errors.Is(err, provider.ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		return "the provider cannot be reached from here: check the URL, DNS, proxy and firewall"
	}
	return "see the message; \"Test connection\" in the API gives the same answer"
}
