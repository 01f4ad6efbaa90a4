package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func load(t *testing.T, args []string, e map[string]string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("usersync test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return Load(fs, args, env(e))
}

func mustLoad(t *testing.T, args []string, e map[string]string) *Config {
	t.Helper()
	c, err := load(t, args, e)
	if err != nil {
		t.Fatalf("Load(%v): %v", args, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, nil, nil)
	want := Config{
		TemporalAddress:   "127.0.0.1:7233",
		TemporalNamespace: "default",
		TemporalTaskQueue: "usersync",
		TemporalUIURL:     "http://localhost:8233",
		Listen:            "127.0.0.1:8080",
		DataDir:           "./data",
		LogLevel:          "info",
		LogFormat:         "auto",
		TemporalProfile:   "default",
		ActivitySlots:     8,
		WorkflowSlots:     100,
		WorkerStopTimeout: 20 * time.Second,
		temporal:          c.temporal,
	}
	if *c != want {
		t.Fatalf("defaults:\n got %+v\nwant %+v", *c, want)
	}
	if got := c.DatabaseURL(); got != "sqlite:data/usersync.db" {
		t.Fatalf("DatabaseURL() = %q", got)
	}
}

func TestEveryVariableHasAFlag(t *testing.T) {
	cases := map[string]struct {
		value string
		get   func(*Config) string
	}{
		"DATABASE_URL":                   {"postgres://u@db/x", func(c *Config) string { return c.Database }},
		"TEMPORAL_ADDRESS":               {"temporal:7233", func(c *Config) string { return c.TemporalAddress }},
		"TEMPORAL_NAMESPACE":             {"prod", func(c *Config) string { return c.TemporalNamespace }},
		"TEMPORAL_TASK_QUEUE":            {"q2", func(c *Config) string { return c.TemporalTaskQueue }},
		"TEMPORAL_UI_URL":                {"https://temporal.example.com", func(c *Config) string { return c.TemporalUIURL }},
		"USERSYNC_LISTEN":                {":9090", func(c *Config) string { return c.Listen }},
		"USERSYNC_METRICS_LISTEN":        {"0.0.0.0:9100", func(c *Config) string { return c.MetricsListen }},
		"USERSYNC_API_TOKEN":             {"tok", func(c *Config) string { return c.APIToken }},
		"USERSYNC_SECRET_KEY":            {"key", func(c *Config) string { return c.SecretKey }},
		"USERSYNC_SECRET_KEY_OLD":        {"old1,old2", func(c *Config) string { return c.SecretKeyOld }},
		"USERSYNC_DATA_DIR":              {"/var/lib/usersync", func(c *Config) string { return c.DataDir }},
		"USERSYNC_LOG_LEVEL":             {"debug", func(c *Config) string { return c.LogLevel }},
		"USERSYNC_LOG_FORMAT":            {"json", func(c *Config) string { return c.LogFormat }},
		"USERSYNC_OUTBOUND_ALLOW":        {"10.1.2.0/24,127.0.0.1", func(c *Config) string { return c.OutboundAllow }},
		"TEMPORAL_API_KEY":               {"key-1", func(c *Config) string { return c.TemporalAPIKey }},
		"TEMPORAL_TLS":                   {"false", func(c *Config) string { return c.TemporalTLS }},
		"TEMPORAL_TLS_SERVER_NAME":       {"frontend.example.com", func(c *Config) string { return c.TemporalTLSServerName }},
		"USERSYNC_PROVIDER_CONCURRENCY":  {"azure=2", func(c *Config) string { return c.ProviderConcurrency }},
		"USERSYNC_WORKER_ACTIVITY_SLOTS": {"3", func(c *Config) string { return strconv.Itoa(c.ActivitySlots) }},
		"USERSYNC_WORKER_WORKFLOW_SLOTS": {"7", func(c *Config) string { return strconv.Itoa(c.WorkflowSlots) }},
		"USERSYNC_WORKER_STOP_TIMEOUT":   {"45s", func(c *Config) string { return c.WorkerStopTimeout.String() }},
	}
	// These name files, which must exist: temporal_test.go covers them.
	for _, skip := range []string{"TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE", "TEMPORAL_TLS_CLIENT_CERT_PATH",
		"TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"} {
		cases[skip] = struct {
			value string
			get   func(*Config) string
		}{}
	}
	for _, v := range Vars() {
		if v.Hidden {
			continue
		}
		tc, ok := cases[v.Env]
		if !ok {
			t.Errorf("no test case for %s", v.Env)
			continue
		}
		if tc.get == nil {
			continue
		}
		t.Run(v.Env, func(t *testing.T) {
			fromEnv := mustLoad(t, nil, map[string]string{v.Env: tc.value})
			if got := tc.get(fromEnv); got != tc.value {
				t.Errorf("from env: got %q, want %q", got, tc.value)
			}
			fromFlag := mustLoad(t, []string{"--" + v.Flag, tc.value}, nil)
			if got := tc.get(fromFlag); got != tc.value {
				t.Errorf("from --%s: got %q, want %q", v.Flag, got, tc.value)
			}
		})
	}
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	e := map[string]string{"USERSYNC_LISTEN": "0.0.0.0:1", "TEMPORAL_ADDRESS": "env:7233"}
	c := mustLoad(t, []string{"--listen=0.0.0.0:2"}, e)
	if c.Listen != "0.0.0.0:2" {
		t.Errorf("flag lost to env: %q", c.Listen)
	}
	if c.TemporalAddress != "env:7233" {
		t.Errorf("env lost to default: %q", c.TemporalAddress)
	}
	if c.TemporalNamespace != "default" {
		t.Errorf("default: %q", c.TemporalNamespace)
	}
	// A flag set to its default value still beats the environment.
	c = mustLoad(t, []string{"--temporal-address", "127.0.0.1:7233"}, e)
	if c.TemporalAddress != "127.0.0.1:7233" {
		t.Errorf("explicit flag equal to default lost to env: %q", c.TemporalAddress)
	}
	// An empty variable counts as unset.
	c = mustLoad(t, nil, map[string]string{"TEMPORAL_NAMESPACE": "  "})
	if c.TemporalNamespace != "default" {
		t.Errorf("empty env replaced the default: %q", c.TemporalNamespace)
	}
}

func TestDatabaseURLFollowsDataDir(t *testing.T) {
	c := mustLoad(t, []string{"--data-dir", "/tmp/us"}, nil)
	if got := c.DatabaseURL(); got != "sqlite:/tmp/us/usersync.db" {
		t.Fatalf("DatabaseURL() = %q", got)
	}
	c = mustLoad(t, []string{"--data-dir", "/tmp/us"}, map[string]string{"DATABASE_URL": "sqlite:/elsewhere.db"})
	if got := c.DatabaseURL(); got != "sqlite:/elsewhere.db" {
		t.Fatalf("DatabaseURL() = %q", got)
	}
}

func TestFaultPageDelay(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{"USERSYNC_FAULT_PAGE_DELAY": "250ms"})
	if c.FaultPageDelay != 250*time.Millisecond {
		t.Fatalf("from env: %v", c.FaultPageDelay)
	}
	c = mustLoad(t, []string{"--fault-page-delay", "2s"}, map[string]string{"USERSYNC_FAULT_PAGE_DELAY": "250ms"})
	if c.FaultPageDelay != 2*time.Second {
		t.Fatalf("flag: %v", c.FaultPageDelay)
	}
	if _, err := load(t, nil, map[string]string{"USERSYNC_FAULT_PAGE_DELAY": "soon"}); err == nil ||
		!strings.Contains(err.Error(), "USERSYNC_FAULT_PAGE_DELAY") {
		t.Fatalf("bad duration: %v", err)
	}
}

func TestInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		e    map[string]string
		args []string
		want string
	}{
		{map[string]string{"DATABASE_URL": "mysql://root:hunter2@db/x"}, nil, "DATABASE_URL"},
		{map[string]string{"TEMPORAL_UI_URL": "localhost:8233"}, nil, "TEMPORAL_UI_URL"},
		{map[string]string{"USERSYNC_LOG_LEVEL": "loud"}, nil, "USERSYNC_LOG_LEVEL"},
		{map[string]string{"USERSYNC_LOG_FORMAT": "xml"}, nil, "USERSYNC_LOG_FORMAT"},
		{nil, []string{"--listen", ""}, "USERSYNC_LISTEN"},
		{nil, []string{"--fault-page-delay", "-1s"}, "USERSYNC_FAULT_PAGE_DELAY"},
	} {
		_, err := load(t, tc.args, tc.e)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want one naming %s", tc.e, tc.args, err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%v %v: error %v does not wrap ErrInvalid", tc.e, tc.args, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	if _, err := load(t, []string{"--no-such-flag"}, nil); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("unknown flag: %v", err)
	}
	if _, err := load(t, []string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestPositionalArgsAreLeft(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	if _, err := Load(fs, []string{"--listen", ":1", "extra", "args"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fs.Args(), " "); got != "extra args" {
		t.Fatalf("Args() = %q", got)
	}
}

func TestTrailingSlashOfUIURLIsDropped(t *testing.T) {
	c := mustLoad(t, []string{"--temporal-ui-url", "http://ui.example:8080/"}, nil)
	if c.TemporalUIURL != "http://ui.example:8080" {
		t.Fatalf("TemporalUIURL = %q", c.TemporalUIURL)
	}
}

func TestRequire(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{"USERSYNC_SECRET_KEY": "k"})
	if err := c.Require("USERSYNC_SECRET_KEY"); err != nil {
		t.Fatalf("set variable reported missing: %v", err)
	}
	err := c.Require("USERSYNC_API_TOKEN", "USERSYNC_SECRET_KEY")
	if err == nil || err.Error() != "USERSYNC_API_TOKEN (or --api-token) is required but not set" {
		t.Fatalf("Require: %v", err)
	}
	c = mustLoad(t, nil, nil)
	err = c.Require("USERSYNC_API_TOKEN", "USERSYNC_SECRET_KEY")
	if err == nil || err.Error() != "USERSYNC_API_TOKEN (or --api-token) and USERSYNC_SECRET_KEY (or --secret-key) are required but not set" {
		t.Fatalf("Require both: %v", err)
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{
		"DATABASE_URL":        "postgres://usersync:pa55word@db:5432/usersync?sslmode=disable",
		"USERSYNC_API_TOKEN":  "tok-very-secret",
		"USERSYNC_SECRET_KEY": "a2V5LXZlcnktc2VjcmV0",
	})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	outs := map[string]string{"String": c.String(), "LogValue": buf.String()}
	for name, out := range outs {
		for _, secret := range []string{"pa55word", "tok-very-secret", "a2V5LXZlcnktc2VjcmV0"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows %q: %s", name, secret, out)
			}
		}
		for _, visible := range []string{"postgres://usersync:redacted@db:5432/usersync", "127.0.0.1:7233", "[redacted]"} {
			if !strings.Contains(out, visible) {
				t.Errorf("%s hides %q: %s", name, visible, out)
			}
		}
	}
	var rec struct {
		Config map[string]string `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Config["temporalNamespace"] != "default" || rec.Config["apiToken"] != "[redacted]" {
		t.Errorf("LogValue group: %v", rec.Config)
	}
}

func TestRedactDatabaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@h/db":                         "postgres://u:redacted@h/db",
		"postgres://u@h/db?password=p&sslmode=enable": "postgres://u@h/db?password=redacted&sslmode=enable",
		"postgres://u@h/db":                           "postgres://u@h/db",
		"sqlite:data/usersync.db":                     "sqlite:data/usersync.db",
		"postgres://u:p%zz@h/db":                      "postgres://u:redacted@h/db",
	} {
		if got := redactDatabaseURL(in); got != want {
			t.Errorf("redactDatabaseURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUsageHidesFaultInjection(t *testing.T) {
	fs := flag.NewFlagSet("usersync worker", flag.ContinueOnError)
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	if _, err := Load(fs, []string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "fault-page") || strings.Contains(out, "FAULT") {
		t.Errorf("usage shows the hidden flag:\n%s", out)
	}
	for _, s := range []string{"--database-url", "DATABASE_URL", "USERSYNC_SECRET_KEY", "127.0.0.1:8080", "usersync worker"} {
		if !strings.Contains(out, s) {
			t.Errorf("usage lacks %q:\n%s", s, out)
		}
	}
}

func TestSecretKeysOld(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{"USERSYNC_SECRET_KEY_OLD": " a=, ,b= "})
	if got := strings.Join(c.SecretKeysOld(), "|"); got != "a=|b=" {
		t.Fatalf("SecretKeysOld() = %q", got)
	}
	if keys := mustLoad(t, nil, nil).SecretKeysOld(); keys != nil {
		t.Fatalf("unset: %q", keys)
	}
	// The old key is a secret like the new one.
	c = mustLoad(t, nil, map[string]string{"USERSYNC_SECRET_KEY_OLD": "c2VjcmV0LW9sZA=="})
	if s := c.String(); strings.Contains(s, "c2VjcmV0LW9sZA") || !strings.Contains(s, `secretKeyOld="[redacted]"`) {
		t.Fatalf("String() = %s", s)
	}
}

func TestCheckAPIToken(t *testing.T) {
	for tok, want := range map[string]string{
		"t":                                    "fewer than 32",
		"change-me":                            "placeholder",
		"Change-Me":                            "placeholder",
		"changeme-000000000000000000000000000": "placeholder",
		"token":                                "placeholder",
		strings.Repeat("x", 64):                "one character repeated",
		"0123456789abcdef0123456789abcde":      "31 characters",
		"0123456789abcdef0123456789abcdef":     "",
	} {
		err := CheckAPIToken(tok)
		switch {
		case want == "" && err != nil:
			t.Errorf("CheckAPIToken(%q) = %v, want nil", tok, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrInvalid)):
			t.Errorf("CheckAPIToken(%q) = %v, want %q", tok, err, want)
		}
	}
}

func TestOutboundAllowNets(t *testing.T) {
	c := &Config{OutboundAllow: " 10.1.2.3/24, 127.0.0.1 ,::1,"}
	nets, err := c.OutboundAllowNets()
	if err != nil || len(nets) != 3 || nets[0].String() != "10.1.2.0/24" || nets[1].String() != "127.0.0.1/32" || nets[2].String() != "::1/128" {
		t.Fatalf("nets %v, err %v", nets, err)
	}
	c.OutboundAllow = "files.internal"
	if _, err := c.OutboundAllowNets(); err == nil || !strings.Contains(err.Error(), "USERSYNC_OUTBOUND_ALLOW") {
		t.Fatalf("err = %v", err)
	}
}
