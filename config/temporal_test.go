package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const twoProfiles = `
[profile.default]
address = "file-default:7233"
namespace = "file-ns"

[profile.cloud]
address = "acme.a1b2c.tmprl.cloud:7233"
namespace = "acme.a1b2c"
api_key = "key-from-file"
`

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The precedence of the Temporal settings: flag, variable, temporal.toml
// profile, usersync's default.
func TestTemporalPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "temporal.toml", twoProfiles)

	c := mustLoad(t, nil, map[string]string{"TEMPORAL_CONFIG_FILE": file})
	if c.TemporalAddress != "file-default:7233" || c.TemporalNamespace != "file-ns" {
		t.Errorf("file's default profile not used: %s %s", c.TemporalAddress, c.TemporalNamespace)
	}
	if c.TemporalSecurity() != "plaintext" || c.temporalProfileUsed() != "default" || c.temporalFileUsed() != file {
		t.Errorf("security %q profile %q file %q", c.TemporalSecurity(), c.temporalProfileUsed(), c.temporalFileUsed())
	}

	c = mustLoad(t, nil, map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_ADDRESS": "env:7233"})
	if c.TemporalAddress != "env:7233" || c.TemporalNamespace != "file-ns" {
		t.Errorf("variable must beat the file, the file the default: %s %s", c.TemporalAddress, c.TemporalNamespace)
	}

	c = mustLoad(t, []string{"--temporal-address", "flag:7233"}, map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_ADDRESS": "env:7233"})
	if c.TemporalAddress != "flag:7233" {
		t.Errorf("flag must beat the variable: %s", c.TemporalAddress)
	}

	// A flag equal to usersync's default still beats the file.
	c = mustLoad(t, []string{"--temporal-namespace", "default"}, map[string]string{"TEMPORAL_CONFIG_FILE": file})
	if c.TemporalNamespace != "default" {
		t.Errorf("explicit flag lost to the file: %s", c.TemporalNamespace)
	}

	c = mustLoad(t, nil, map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "cloud"})
	if c.TemporalAddress != "acme.a1b2c.tmprl.cloud:7233" || c.TemporalNamespace != "acme.a1b2c" {
		t.Errorf("profile cloud: %s %s", c.TemporalAddress, c.TemporalNamespace)
	}
	if got := c.TemporalSecurity(); got != "TLS + API key" {
		t.Errorf("an API key turns TLS on, as the CLI does: %q", got)
	}
	if s := c.String(); strings.Contains(s, "key-from-file") {
		t.Errorf("the configuration prints the API key: %s", s)
	}

	// TEMPORAL_TLS=false keeps the key but drops TLS (a proxy that ends TLS).
	c = mustLoad(t, nil, map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "cloud", "TEMPORAL_TLS": "false"})
	if got := c.TemporalSecurity(); got != "plaintext + API key" {
		t.Errorf("TEMPORAL_TLS=false: %q", got)
	}

	// Without any of them: usersync's defaults, and no file is looked for
	// outside the environment given.
	c = mustLoad(t, nil, nil)
	if c.TemporalAddress != DefaultTemporalAddress || c.TemporalNamespace != DefaultTemporalNamespace || c.temporalFileUsed() != "" {
		t.Errorf("defaults: %s %s %q", c.TemporalAddress, c.TemporalNamespace, c.temporalFileUsed())
	}
}

// The CLI's own file, $XDG_CONFIG_HOME/temporalio/temporal.toml (else
// ~/.config/…), is read when TEMPORAL_CONFIG_FILE is unset.
func TestTemporalDefaultConfigFile(t *testing.T) {
	home := t.TempDir()
	writeFile(t, home, ".config/temporalio/temporal.toml", twoProfiles)
	c := mustLoad(t, nil, map[string]string{"HOME": home})
	if c.TemporalAddress != "file-default:7233" {
		t.Errorf("~/.config/temporalio/temporal.toml not read: %s", c.TemporalAddress)
	}
	xdg := t.TempDir()
	writeFile(t, xdg, "temporalio/temporal.toml", "[profile.default]\naddress = \"xdg:7233\"\n")
	c = mustLoad(t, nil, map[string]string{"HOME": home, "XDG_CONFIG_HOME": xdg})
	if c.TemporalAddress != "xdg:7233" {
		t.Errorf("$XDG_CONFIG_HOME/temporalio/temporal.toml not read: %s", c.TemporalAddress)
	}
}

func TestTemporalConfigMistakes(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "temporal.toml", twoProfiles)
	for name, vars := range map[string]map[string]string{
		"missing named file":    {"TEMPORAL_CONFIG_FILE": filepath.Join(dir, "nope.toml")},
		"missing named profile": {"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "prod"},
		"broken file":           {"TEMPORAL_CONFIG_FILE": writeFile(t, dir, "bad.toml", "[profile.default\naddress=")},
		"certificate not there": {"TEMPORAL_TLS_CLIENT_CERT_PATH": filepath.Join(dir, "c.pem"), "TEMPORAL_TLS_CLIENT_KEY_PATH": filepath.Join(dir, "k.pem")},
		"certificate no key":    {"TEMPORAL_TLS_CLIENT_CERT_PATH": filepath.Join(dir, "c.pem")},
		"TEMPORAL_TLS not bool": {"TEMPORAL_TLS": "yes please"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, nil, vars)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
		})
	}
}

// mTLS from the variables the CLI reads; the key material never prints.
func TestTemporalMTLSFromVariables(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	c := mustLoad(t, nil, map[string]string{
		"TEMPORAL_ADDRESS":                 "temporal.internal:7233",
		"TEMPORAL_TLS_CLIENT_CERT_PATH":    cert,
		"TEMPORAL_TLS_CLIENT_KEY_PATH":     key,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": cert,
		"TEMPORAL_TLS_SERVER_NAME":         "frontend",
	})
	opts, err := c.TemporalClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	tls := opts.ConnectionOptions.TLS
	if tls == nil || len(tls.Certificates) != 1 || tls.RootCAs == nil || tls.ServerName != "frontend" {
		t.Fatalf("TLS config: %+v", tls)
	}
	if opts.HostPort != "temporal.internal:7233" || c.TemporalSecurity() != "mTLS" {
		t.Errorf("host %s security %s", opts.HostPort, c.TemporalSecurity())
	}
	// A flag beats the variable for the paths too.
	c = mustLoad(t, []string{"--temporal-tls-server-name", "other"}, map[string]string{
		"TEMPORAL_TLS_CLIENT_CERT_PATH": cert, "TEMPORAL_TLS_CLIENT_KEY_PATH": key, "TEMPORAL_TLS_SERVER_NAME": "frontend",
	})
	if opts, _ := c.TemporalClientOptions(); opts.ConnectionOptions.TLS.ServerName != "other" {
		t.Errorf("flag lost to the variable: %q", opts.ConnectionOptions.TLS.ServerName)
	}
}

func TestProviderLimits(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{"USERSYNC_PROVIDER_CONCURRENCY": " azure=2, Okta=4 "})
	got, _ := c.ProviderLimits()
	if len(got) != 2 || got["azure"] != 2 || got["okta"] != 4 {
		t.Errorf("limits %v", got)
	}
	for _, bad := range []string{"azure", "azure=0", "=3", "azure=x"} {
		if _, err := load(t, nil, map[string]string{"USERSYNC_PROVIDER_CONCURRENCY": bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: want ErrInvalid, got %v", bad, err)
		}
	}
	for _, kv := range [][2]string{{"USERSYNC_WORKER_ACTIVITY_SLOTS", "0"}, {"USERSYNC_WORKER_ACTIVITY_SLOTS", "x"},
		{"USERSYNC_WORKER_WORKFLOW_SLOTS", "1"}, {"USERSYNC_WORKER_STOP_TIMEOUT", "-1s"}} {
		k, v := kv[0], kv[1]
		if _, err := load(t, nil, map[string]string{k: v}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s=%s: want ErrInvalid, got %v", k, v, err)
		}
	}
}

// selfSigned writes a self-signed certificate (its own CA) and its key.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "frontend"}, DNSNames: []string{"frontend"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certPath = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyPath = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	return certPath, keyPath
}
