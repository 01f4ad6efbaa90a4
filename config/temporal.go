package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
)

// How a process reaches Temporal is read the way the Temporal CLI reads it
// (the SDK's envconfig), so that one temporal.toml or one set of TEMPORAL_*
// variables serves the CLI and usersync alike. Each value is taken from,
// in this order:
//
//  1. a flag (--temporal-address, --temporal-api-key, …);
//  2. its environment variable (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
//     TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_*, TEMPORAL_GRPC_META_*,
//     TEMPORAL_CLIENT_AUTHORITY);
//  3. the profile TEMPORAL_PROFILE (else "default") of the TOML file
//     TEMPORAL_CONFIG_FILE (else $XDG_CONFIG_HOME/temporalio/temporal.toml,
//     when it exists);
//  4. usersync's default (127.0.0.1:7233, namespace default, no TLS).
//
// An empty variable counts as unset, as everywhere in usersync.

// temporalConn is the resolved connection.
type temporalConn struct {
	profile envconfig.ClientConfigProfile
	file    string // the file read; "" when none
	name    string // the profile taken from it; "" when the file has none
}

// defaultTemporalConfigFile is where the Temporal CLI keeps its profiles:
// os.UserConfigDir, computed from getenv so that a test's environment is
// the whole environment.
func defaultTemporalConfigFile(getenv func(string) string) string {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "temporalio", "temporal.toml")
}

// envLookup is the environment envconfig sees: the settings usersync
// knows (flag, else variable) and the process environment for the rest.
type envLookup struct {
	c      *Config
	getenv func(string) string
	// given holds TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE when a flag or
	// variable set them: their defaults must not beat the file.
	given map[string]string
}

func (l envLookup) LookupEnv(key string) (string, bool) {
	if v, ok := l.given[key]; ok {
		return v, true
	}
	for _, v := range l.c.vars() {
		if v.Env == key && v.passOn && v.str != nil && key != "TEMPORAL_PROFILE" && key != "TEMPORAL_CONFIG_FILE" {
			return *v.str, *v.str != ""
		}
	}
	switch key {
	case "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE":
		// Given above when set; resolveTemporal chooses the file and profile.
		return "", false
	}
	v := strings.TrimSpace(l.getenv(key))
	return v, v != ""
}

// Environ lists the gRPC headers (TEMPORAL_GRPC_META_*), the only
// variables envconfig finds by listing rather than by name.
func (l envLookup) Environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TEMPORAL_GRPC_META_") {
			if v := l.getenv(k); v != "" {
				out = append(out, k+"="+v)
			}
		}
	}
	return out
}

// resolveTemporal merges the temporal.toml profile, the environment and
// the flags (set lists the flags given or filled from the environment),
// and checks the result by building the client options once.
func (c *Config) resolveTemporal(getenv func(string) string, set map[string]bool) error {
	given := map[string]string{}
	if set["temporal-address"] {
		given["TEMPORAL_ADDRESS"] = c.TemporalAddress
	}
	if set["temporal-namespace"] {
		given["TEMPORAL_NAMESPACE"] = c.TemporalNamespace
	}
	file := c.TemporalConfigFile
	if file != "" {
		// Named, so it must be there: a typo would otherwise connect
		// somewhere else without a word.
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("%w: TEMPORAL_CONFIG_FILE: %w", ErrInvalid, err)
		}
	} else if def := defaultTemporalConfigFile(getenv); def != "" {
		if _, err := os.Stat(def); err == nil {
			file = def
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: Temporal client config %s: %w", ErrInvalid, def, err)
		}
	}
	opts := envconfig.LoadClientConfigProfileOptions{
		ConfigFilePath: file,
		EnvLookup:      envLookup{c: c, getenv: getenv, given: given},
		// Without a file envconfig would look in the real home directory.
		DisableFile: file == "",
	}
	if set["temporal-profile"] {
		// A profile named by the flag or variable must exist; the default
		// one may be missing from the file.
		opts.ConfigFileProfile = c.TemporalProfile
	}
	prof, err := envconfig.LoadClientConfigProfile(opts)
	if err != nil {
		return fmt.Errorf("%w: Temporal client config (TEMPORAL_CONFIG_FILE %q, TEMPORAL_PROFILE %q): %w",
			ErrInvalid, file, c.TemporalProfile, err)
	}
	conn := &temporalConn{profile: prof, file: file}
	if file != "" {
		if all, err := envconfig.LoadClientConfig(envconfig.LoadClientConfigOptions{ConfigFilePath: file}); err == nil && all.Profiles[c.TemporalProfile] != nil {
			conn.name = c.TemporalProfile
		}
	}
	if prof.Address != "" {
		c.TemporalAddress = prof.Address
	}
	if prof.Namespace != "" {
		c.TemporalNamespace = prof.Namespace
	}
	c.temporal = conn
	if _, err := c.TemporalClientOptions(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// TemporalClientOptions are the client options of the resolved connection:
// address, namespace, TLS, API key and gRPC headers. The caller adds its
// logger, metrics and interceptors.
func (c *Config) TemporalClientOptions() (client.Options, error) {
	var prof envconfig.ClientConfigProfile
	if c.temporal != nil {
		prof = c.temporal.profile
	}
	prof.Address, prof.Namespace = c.TemporalAddress, c.TemporalNamespace
	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal client options: %w", err)
	}
	return opts, nil
}

// TemporalSecurity says how the connection is secured, for the log and
// doctor: "plaintext", "TLS", "mTLS", with "+ API key" when one is sent.
func (c *Config) TemporalSecurity() string {
	opts, err := c.TemporalClientOptions()
	if err != nil {
		return "invalid"
	}
	s := "plaintext"
	if t := opts.ConnectionOptions.TLS; t != nil && !opts.ConnectionOptions.TLSDisabled {
		s = "TLS"
		if len(t.Certificates) > 0 {
			s = "mTLS"
		}
	}
	if opts.Credentials != nil {
		s += " + API key"
	}
	return s
}

func (c *Config) temporalProfileUsed() string {
	if c.temporal == nil {
		return ""
	}
	return c.temporal.name
}

func (c *Config) temporalFileUsed() string {
	if c.temporal == nil {
		return ""
	}
	return c.temporal.file
}
