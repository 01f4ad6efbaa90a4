// Package config reads the settings every usersync subcommand shares.
//
// Each setting is an environment variable and a flag of the same meaning
// (DATABASE_URL and --database-url, …), so that one name works in a shell, in
// docker-compose.yml and in a Kubernetes manifest, while a flag can still
// override it for one invocation. The precedence is flag, then environment,
// then the default. Secrets (the API token, the secret key, a database
// password) never leave this package in clear through String or LogValue, so
// a logged configuration is safe to paste into an issue.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Defaults of the settings that have one.
const (
	DefaultTemporalAddress   = "127.0.0.1:7233"
	DefaultTemporalNamespace = "default"
	DefaultTemporalTaskQueue = "usersync"
	DefaultTemporalUIURL     = "http://localhost:8233"
	DefaultListen            = "127.0.0.1:8080"
	DefaultDataDir           = "./data"
	DefaultLogLevel          = "info"
	DefaultLogFormat         = "auto"
	// DefaultTemporalProfile is the temporal.toml profile read when
	// TEMPORAL_PROFILE is unset, as the Temporal CLI does.
	DefaultTemporalProfile = "default"
	// DefaultActivitySlots bounds how many steps (one per running sync) a
	// worker runs at once. Fetch and apply are set-based SQL, so the
	// database is the limit: 8 matches the SQLite connection pool and
	// leaves Postgres room for the API. More throughput is more workers.
	DefaultActivitySlots = 8
	// DefaultWorkflowSlots bounds the workflow tasks a worker runs at once.
	// A workflow task only orders steps (milliseconds of CPU), so a worker
	// needs few; the bound keeps a burst of schedule ticks from filling
	// the worker's memory with histories.
	DefaultWorkflowSlots = 100
	// DefaultWorkerStopTimeout lets a step in flight commit its stretch
	// and report on SIGTERM instead of being cut off and run again;
	// docker-compose.yml gives the process 30 s before SIGKILL.
	DefaultWorkerStopTimeout = 20 * time.Second
)

// Config is the settings of one usersync process.
type Config struct {
	// Database is DATABASE_URL as given; "" means the SQLite file in DataDir.
	// Use DatabaseURL for the effective value.
	Database          string
	TemporalAddress   string
	TemporalNamespace string
	TemporalTaskQueue string
	// TemporalUIURL is the base of the temporalUiUrl links, without a
	// trailing slash.
	TemporalUIURL string
	Listen        string
	// MetricsListen is the address of a separate /metrics listener ("" =
	// none): a worker has no other HTTP port to be scraped on.
	MetricsListen string
	APIToken      string
	SecretKey     string
	// SecretKeyOld is the keys a rotation replaces, comma-separated: they
	// still decrypt, never encrypt (see SecretKeysOld and rotate-secrets).
	SecretKeyOld string
	DataDir      string
	LogLevel     string // debug | info | warn | error
	LogFormat    string // auto (text on a terminal, else JSON) | text | json

	// OutboundAllow lists, comma-separated, the networks (CIDR or single
	// addresses) of loopback, private or link-local ranges that provider
	// requests may reach anyway: an on-premises file server, a proxy. See
	// OutboundAllowNets.
	OutboundAllow string

	// How to reach Temporal besides its address and namespace, under the
	// names the Temporal CLI reads (see temporal.go for the precedence).
	TemporalProfile           string // TEMPORAL_PROFILE: profile of the temporal.toml file
	TemporalConfigFile        string // TEMPORAL_CONFIG_FILE: "" = $XDG_CONFIG_HOME/temporalio/temporal.toml when it exists
	TemporalAPIKey            string // TEMPORAL_API_KEY (Temporal Cloud); turns TLS on
	TemporalTLS               string // TEMPORAL_TLS: true or false; "" = on with a certificate or an API key
	TemporalTLSClientCertPath string
	TemporalTLSClientKeyPath  string
	TemporalTLSServerCAPath   string
	TemporalTLSServerName     string

	// Worker tuning: task slots, the concurrency of each provider's
	// fetches, and how long a stopping worker waits for its steps.
	ActivitySlots       int
	WorkflowSlots       int
	ProviderConcurrency string // "azure=2,okta=4"; see ProviderLimits
	WorkerStopTimeout   time.Duration

	// temporal is the connection Load resolved from the file, the
	// environment and the flags; nil for a Config built by hand.
	temporal *temporalConn

	// FaultPageDelay slows every fetched page down by this much. It is a
	// fault-injection knob for the crash/resume tests, hidden from usage.
	FaultPageDelay time.Duration
}

// ErrInvalid wraps every error about a value (as opposed to a command line
// the flag package could not parse, which it reports itself).
var ErrInvalid = errors.New("invalid configuration")

// Var describes one setting: its variable, its flag and its default.
type Var struct {
	Env     string
	Flag    string
	Default string // as shown in usage; "" = none
	Usage   string
	Secret  bool // redacted when the configuration is printed
	Hidden  bool // left out of usage (fault injection)

	str *string
	dur *time.Duration
	num *int
	// passOn marks a Temporal variable that envconfig also reads: Load
	// hands the value (flag or variable) on to it.
	passOn bool
}

// vars binds the settings of c; the order is the order of the usage text.
func (c *Config) vars() []Var {
	return []Var{
		{Env: "DATABASE_URL", Flag: "database-url", Default: "sqlite:$USERSYNC_DATA_DIR/usersync.db",
			Usage: "postgres://… (lib/pq) or sqlite:PATH", str: &c.Database},
		{Env: "TEMPORAL_ADDRESS", Flag: "temporal-address", Default: DefaultTemporalAddress,
			Usage: "Temporal frontend host:port", str: &c.TemporalAddress},
		{Env: "TEMPORAL_NAMESPACE", Flag: "temporal-namespace", Default: DefaultTemporalNamespace,
			Usage: "Temporal namespace", str: &c.TemporalNamespace},
		{Env: "TEMPORAL_PROFILE", Flag: "temporal-profile", Default: DefaultTemporalProfile,
			Usage: "profile of the Temporal client config file (temporal.toml, as the Temporal CLI reads it)", str: &c.TemporalProfile, passOn: true},
		{Env: "TEMPORAL_CONFIG_FILE", Flag: "temporal-config-file", Default: "$XDG_CONFIG_HOME/temporalio/temporal.toml",
			Usage: "Temporal client config file (TOML profiles: address, namespace, api_key, tls); optional unless set", str: &c.TemporalConfigFile, passOn: true},
		{Env: "TEMPORAL_API_KEY", Flag: "temporal-api-key", Default: "",
			Usage: "API key (Temporal Cloud); sent as a bearer token over TLS", Secret: true, str: &c.TemporalAPIKey, passOn: true},
		{Env: "TEMPORAL_TLS", Flag: "temporal-tls", Default: "",
			Usage: "true or false: TLS to the frontend (default: on when a client certificate or an API key is set)", str: &c.TemporalTLS, passOn: true},
		{Env: "TEMPORAL_TLS_CLIENT_CERT_PATH", Flag: "temporal-tls-client-cert-path", Default: "",
			Usage: "mTLS client certificate (PEM)", str: &c.TemporalTLSClientCertPath, passOn: true},
		{Env: "TEMPORAL_TLS_CLIENT_KEY_PATH", Flag: "temporal-tls-client-key-path", Default: "",
			Usage: "mTLS client key (PEM)", str: &c.TemporalTLSClientKeyPath, passOn: true},
		{Env: "TEMPORAL_TLS_SERVER_CA_CERT_PATH", Flag: "temporal-tls-server-ca-cert-path", Default: "",
			Usage: "CA that signed the frontend's certificate (default: the system's)", str: &c.TemporalTLSServerCAPath, passOn: true},
		{Env: "TEMPORAL_TLS_SERVER_NAME", Flag: "temporal-tls-server-name", Default: "",
			Usage: "name the frontend's certificate must carry (default: the host of the address)", str: &c.TemporalTLSServerName, passOn: true},
		{Env: "TEMPORAL_TASK_QUEUE", Flag: "temporal-task-queue", Default: DefaultTemporalTaskQueue,
			Usage: "Temporal task queue of the sync workflows", str: &c.TemporalTaskQueue},
		{Env: "TEMPORAL_UI_URL", Flag: "temporal-ui-url", Default: DefaultTemporalUIURL,
			Usage: "base URL of the Temporal Web UI (for temporalUiUrl links)", str: &c.TemporalUIURL},
		{Env: "USERSYNC_WORKER_ACTIVITY_SLOTS", Flag: "worker-activity-slots", Default: strconv.Itoa(DefaultActivitySlots),
			Usage: "steps a worker runs at once (one per syncing profile); the database is the limit", num: &c.ActivitySlots},
		{Env: "USERSYNC_WORKER_WORKFLOW_SLOTS", Flag: "worker-workflow-slots", Default: strconv.Itoa(DefaultWorkflowSlots),
			Usage: "workflow tasks a worker runs at once", num: &c.WorkflowSlots},
		{Env: "USERSYNC_PROVIDER_CONCURRENCY", Flag: "provider-concurrency", Default: "",
			Usage: "most fetches of one provider a worker runs at once, e.g. azure=2,okta=4 (the others: up to the activity slots)", str: &c.ProviderConcurrency},
		{Env: "USERSYNC_WORKER_STOP_TIMEOUT", Flag: "worker-stop-timeout", Default: DefaultWorkerStopTimeout.String(),
			Usage: "how long a stopping worker lets its steps in flight finish their stretch", dur: &c.WorkerStopTimeout},
		{Env: "USERSYNC_LISTEN", Flag: "listen", Default: DefaultListen,
			Usage: "address the HTTP API listens on", str: &c.Listen},
		{Env: "USERSYNC_METRICS_LISTEN", Flag: "metrics-listen", Default: "",
			Usage: "address of a separate Prometheus /metrics listener, e.g. :9090 (needed to scrape a worker; the API also serves /metrics)", str: &c.MetricsListen},
		{Env: "USERSYNC_API_TOKEN", Flag: "api-token", Default: "",
			Usage: "bearer token of the API (generated by dev, required by api)", Secret: true, str: &c.APIToken},
		{Env: "USERSYNC_SECRET_KEY", Flag: "secret-key", Default: "",
			Usage: "base64 of 32 bytes; encrypts secrets at rest (generated by dev, required by api and worker)", Secret: true, str: &c.SecretKey},
		{Env: "USERSYNC_SECRET_KEY_OLD", Flag: "secret-key-old", Default: "",
			Usage: "during a key rotation: the previous key(s), comma-separated; they still decrypt, the new key encrypts (see rotate-secrets)", Secret: true, str: &c.SecretKeyOld},
		{Env: "USERSYNC_OUTBOUND_ALLOW", Flag: "outbound-allow", Default: "",
			Usage: "networks in loopback, private or link-local ranges that provider requests (and their redirects) may reach, e.g. 10.1.2.0/24 (comma-separated; dev allows loopback)", str: &c.OutboundAllow},
		{Env: "USERSYNC_DATA_DIR", Flag: "data-dir", Default: DefaultDataDir,
			Usage: "local state of dev: SQLite file, api-token, secret.key", str: &c.DataDir},
		{Env: "USERSYNC_LOG_LEVEL", Flag: "log-level", Default: DefaultLogLevel,
			Usage: "debug, info, warn or error", str: &c.LogLevel},
		{Env: "USERSYNC_LOG_FORMAT", Flag: "log-format", Default: DefaultLogFormat,
			Usage: "auto (text on a terminal, JSON otherwise), text or json", str: &c.LogFormat},
		{Env: "USERSYNC_FAULT_PAGE_DELAY", Flag: "fault-page-delay", Default: "0s",
			Usage: "fault injection: sleep this long before each fetched page", Hidden: true, dur: &c.FaultPageDelay},
	}
}

// Vars lists the settings (for documentation and usage text).
func Vars() []Var { return new(Config).vars() }

// Load registers the settings as flags on fs, parses args and fills the
// unset flags from getenv, then from the defaults. An empty environment
// variable counts as unset. Positional arguments are left in fs.Args().
// A -h/--help answers flag.ErrHelp, as fs.Parse does; fs.Usage is replaced
// by PrintUsage, which hides the fault-injection flags.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c := &Config{}
	vars := c.vars()
	for _, v := range vars {
		switch {
		case v.str != nil:
			def := v.Default
			if v.Env == "DATABASE_URL" || v.Env == "TEMPORAL_CONFIG_FILE" {
				def = "" // computed after parsing
			}
			fs.StringVar(v.str, v.Flag, def, v.Usage)
		case v.dur != nil:
			var def time.Duration
			if v.Default != "" {
				def, _ = time.ParseDuration(v.Default)
			}
			fs.DurationVar(v.dur, v.Flag, def, v.Usage)
		case v.num != nil:
			def, _ := strconv.Atoi(v.Default)
			fs.IntVar(v.num, v.Flag, def, v.Usage)
		}
	}
	// The flag package's own usage would list the hidden flags too.
	fs.Usage = func() { PrintUsage(fs.Output(), fs) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, v := range vars {
		if set[v.Flag] {
			continue
		}
		val := strings.TrimSpace(getenv(v.Env))
		if val == "" {
			continue
		}
		switch {
		case v.str != nil:
			*v.str = val
		case v.dur != nil:
			d, err := time.ParseDuration(val)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, v.Env, err)
			}
			*v.dur = d
		case v.num != nil:
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("%w: %s must be a whole number (got %q)", ErrInvalid, v.Env, val)
			}
			*v.num = n
		}
		set[v.Flag] = true
	}
	if err := c.normalise(); err != nil {
		return nil, err
	}
	if err := c.resolveTemporal(getenv, set); err != nil {
		return nil, err
	}
	return c, nil
}

// normalise trims and checks the values that can be checked without I/O.
func (c *Config) normalise() error {
	c.TemporalUIURL = strings.TrimRight(c.TemporalUIURL, "/")
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	var errs []error
	if c.Database != "" && !strings.HasPrefix(c.Database, "postgres://") &&
		!strings.HasPrefix(c.Database, "postgresql://") && !strings.HasPrefix(c.Database, "sqlite:") {
		errs = append(errs, fmt.Errorf("DATABASE_URL must start with postgres:// or sqlite: (got %q)", redactDatabaseURL(c.Database)))
	}
	for _, v := range []struct{ name, val string }{
		{"TEMPORAL_ADDRESS", c.TemporalAddress},
		{"TEMPORAL_NAMESPACE", c.TemporalNamespace},
		{"TEMPORAL_TASK_QUEUE", c.TemporalTaskQueue},
		{"USERSYNC_LISTEN", c.Listen},
	} {
		if strings.TrimSpace(v.val) == "" {
			errs = append(errs, fmt.Errorf("%s must not be empty", v.name))
		}
	}
	if u, err := url.Parse(c.TemporalUIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("TEMPORAL_UI_URL must be an http(s) URL (got %q)", c.TemporalUIURL))
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("USERSYNC_LOG_FORMAT must be auto, text or json (got %q)", c.LogFormat))
	}
	if _, err := c.OutboundAllowNets(); err != nil {
		errs = append(errs, err)
	}
	if c.ActivitySlots < 1 {
		errs = append(errs, fmt.Errorf("USERSYNC_WORKER_ACTIVITY_SLOTS must be at least 1 (got %d)", c.ActivitySlots))
	}
	if c.WorkflowSlots < 2 {
		// The SDK refuses a worker with a single workflow task slot: a
		// sticky and a normal poller each need one.
		errs = append(errs, fmt.Errorf("USERSYNC_WORKER_WORKFLOW_SLOTS must be at least 2 (got %d)", c.WorkflowSlots))
	}
	if c.WorkerStopTimeout < 0 {
		errs = append(errs, errors.New("USERSYNC_WORKER_STOP_TIMEOUT must not be negative"))
	}
	if _, err := c.ProviderLimits(); err != nil {
		errs = append(errs, err)
	}
	switch strings.ToLower(c.TemporalTLS) {
	case "", "true", "false", "1", "0":
	default:
		errs = append(errs, fmt.Errorf("TEMPORAL_TLS must be true or false (got %q)", c.TemporalTLS))
	}
	if c.FaultPageDelay < 0 {
		errs = append(errs, errors.New("USERSYNC_FAULT_PAGE_DELAY must not be negative"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
}

// ParseLogLevel maps USERSYNC_LOG_LEVEL to a slog level.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("USERSYNC_LOG_LEVEL must be debug, info, warn or error (got %q)", s)
	}
	return l, nil
}

// DatabaseURL is the effective database: DATABASE_URL, or the SQLite file
// usersync.db in the data dir.
func (c *Config) DatabaseURL() string {
	if c.Database != "" {
		return c.Database
	}
	return "sqlite:" + filepath.Join(c.DataDir, "usersync.db")
}

// OutboundAllowNets parses USERSYNC_OUTBOUND_ALLOW: each entry a CIDR
// prefix or a single address.
func (c *Config) OutboundAllowNets() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range strings.Split(c.OutboundAllow, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, fmt.Errorf("USERSYNC_OUTBOUND_ALLOW: %q is neither a CIDR prefix nor an address", e)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// SecretKeysOld splits USERSYNC_SECRET_KEY_OLD into its keys (base64 has
// no comma), dropping empty entries.
func (c *Config) SecretKeysOld() []string {
	var keys []string
	for _, k := range strings.Split(c.SecretKeyOld, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// ProviderLimits parses USERSYNC_PROVIDER_CONCURRENCY: provider=n pairs,
// comma-separated. A provider it does not name has no limit of its own.
func (c *Config) ProviderLimits() (map[string]int, error) {
	out := map[string]int{}
	for _, e := range strings.Split(c.ProviderConcurrency, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		name, num, ok := strings.Cut(e, "=")
		n, err := strconv.Atoi(strings.TrimSpace(num))
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || err != nil || n < 1 || name == "" {
			return nil, fmt.Errorf("USERSYNC_PROVIDER_CONCURRENCY: %q is not provider=n with n at least 1 (e.g. azure=2)", e)
		}
		out[name] = n
	}
	return out, nil
}

// Require checks that the named variables (USERSYNC_API_TOKEN, …) are set,
// and names every missing one with its flag in the error.
func (c *Config) Require(envs ...string) error {
	byEnv := map[string]Var{}
	for _, v := range c.vars() {
		byEnv[v.Env] = v
	}
	var missing []string
	for _, e := range envs {
		v, ok := byEnv[e]
		if !ok {
			return fmt.Errorf("config: unknown variable %s", e)
		}
		if v.str != nil && *v.str == "" {
			missing = append(missing, fmt.Sprintf("%s (or --%s)", v.Env, v.Flag))
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s is required but not set", missing[0])
	}
	return fmt.Errorf("%s are required but not set", strings.Join(missing, " and "))
}

// MinAPITokenLength is the shortest API token a process accepts: the token
// is the admin's password as well as the bearer token, and 32 characters
// of `openssl rand -hex 32` cannot be guessed however fast one tries.
const MinAPITokenLength = 32

// placeholderTokens are the values examples and tutorials use for a token
// (examples/compose.env says change-me), lower-cased; a token that is one
// of them, or contains one as a run of a longer placeholder, is refused.
var placeholderTokens = []string{"change-me", "changeme", "change_me", "replace-me", "replaceme", "your-token",
	"your-api-token", "api-token", "apitoken", "secret", "password", "token", "example", "default", "test", "dev"}

// CheckAPIToken refuses an API token that is too short, a known
// placeholder, or one character repeated, with a message that says how to
// make a good one. `usersync dev` generates a good one when none is set.
func CheckAPIToken(tok string) error {
	const fix = "use a random token of at least 32 characters, e.g. `openssl rand -hex 32`"
	lower := strings.ToLower(strings.TrimSpace(tok))
	for _, p := range placeholderTokens {
		if lower == p || strings.Trim(lower, "-_0123456789") == p {
			return fmt.Errorf("%w: USERSYNC_API_TOKEN is a placeholder (%q); %s", ErrInvalid, p, fix)
		}
	}
	if n := len([]rune(tok)); n < MinAPITokenLength {
		return fmt.Errorf("%w: USERSYNC_API_TOKEN is %d characters, fewer than %d; %s", ErrInvalid, n, MinAPITokenLength, fix)
	}
	if strings.Count(tok, tok[:1]) == len(tok) {
		return fmt.Errorf("%w: USERSYNC_API_TOKEN is one character repeated; %s", ErrInvalid, fix)
	}
	return nil
}

// redacted is what a secret prints as; redactedURLPart is the same inside a
// URL, where brackets would be percent-encoded.
const (
	redacted        = "[redacted]"
	redactedURLPart = "redacted"
)

func redactSecret(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// userinfoRe finds "user:password@" in a string that url.Parse rejects.
var userinfoRe = regexp.MustCompile(`(://[^:/@]*):[^@]*@`)

// redactDatabaseURL hides the password of a database URL, whether it is in
// the userinfo or in a password= query parameter.
func redactDatabaseURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "sqlite" {
		return userinfoRe.ReplaceAllString(s, "$1:"+redactedURLPart+"@")
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redactedURLPart)
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", redactedURLPart)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// fields is the configuration as printable pairs, secrets redacted.
func (c *Config) fields() [][2]string {
	return [][2]string{
		{"databaseUrl", redactDatabaseURL(c.DatabaseURL())},
		{"temporalAddress", c.TemporalAddress},
		{"temporalNamespace", c.TemporalNamespace},
		{"temporalTaskQueue", c.TemporalTaskQueue},
		{"temporalUiUrl", c.TemporalUIURL},
		{"listen", c.Listen},
		{"outboundAllow", c.OutboundAllow},
		{"temporalProfile", c.temporalProfileUsed()},
		{"temporalConfigFile", c.temporalFileUsed()},
		{"temporalSecurity", c.TemporalSecurity()},
		{"workerActivitySlots", strconv.Itoa(c.ActivitySlots)},
		{"workerWorkflowSlots", strconv.Itoa(c.WorkflowSlots)},
		{"providerConcurrency", c.ProviderConcurrency},
		{"workerStopTimeout", c.WorkerStopTimeout.String()},
		{"apiToken", redactSecret(c.APIToken)},
		{"secretKey", redactSecret(c.SecretKey)},
		{"secretKeyOld", redactSecret(c.SecretKeyOld)},
		{"dataDir", c.DataDir},
		{"logLevel", c.LogLevel},
		{"logFormat", c.LogFormat},
	}
}

// String prints the configuration with secrets redacted.
func (c *Config) String() string {
	var b strings.Builder
	for i, f := range c.fields() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", f[0], f[1])
	}
	if c.FaultPageDelay > 0 {
		fmt.Fprintf(&b, " faultPageDelay=%q", c.FaultPageDelay.String())
	}
	return b.String()
}

// LogValue logs the configuration as a group, secrets redacted.
func (c *Config) LogValue() slog.Value {
	fs := c.fields()
	attrs := make([]slog.Attr, 0, len(fs)+1)
	for _, f := range fs {
		attrs = append(attrs, slog.String(f[0], f[1]))
	}
	if c.FaultPageDelay > 0 {
		attrs = append(attrs, slog.Duration("faultPageDelay", c.FaultPageDelay))
	}
	return slog.GroupValue(attrs...)
}

// PrintUsage writes the flags of fs with their environment variables and
// defaults, leaving out the hidden ones. Flags that are not settings (a
// subcommand's own) are listed too, after the settings.
func PrintUsage(w io.Writer, fs *flag.FlagSet) {
	byFlag := map[string]Var{}
	for _, v := range Vars() {
		byFlag[v.Flag] = v
	}
	fmt.Fprintf(w, "Usage: %s [flags]\n\nFlags (each also an environment variable; a flag beats the variable, which beats the default):\n", fs.Name())
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	var own []*flag.Flag
	for _, v := range Vars() {
		if v.Hidden || fs.Lookup(v.Flag) == nil {
			continue
		}
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  --%s\t%s\t%s\t%s\n", v.Flag, v.Env, def, v.Usage)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := byFlag[f.Name]; !ok {
			own = append(own, f)
		}
	})
	for _, f := range own {
		def := f.DefValue
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  --%s\t\t%s\t%s\n", f.Name, def, f.Usage)
	}
	tw.Flush()
}
