package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// composeCLI is the Compose command found on this machine: the docker
// plugin, else Debian's docker-compose (.ci/run installs it).
func composeCLI() []string {
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err == nil && strings.Contains(string(out), "version") {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	return nil
}

// docker-compose.yml is valid Compose as the CLI reads it (no daemon
// needed), and runs the Temporal server from the config and schema script
// the cluster test runs (deploy/temporal).
func TestComposeConfig(t *testing.T) {
	cli := composeCLI()
	if cli == nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the Compose CLI is required under CI (apt-get install --no-install-recommends docker-compose)")
		}
		t.Skip("no Compose CLI (docker compose, or Debian's docker-compose)")
	}
	root, _ := filepath.Abs("..")
	args := append(cli[1:], "--project-directory", root, "-f", filepath.Join(root, "docker-compose.yml"), "config")
	cmd := exec.Command(cli[0], args...)
	cmd.Env = append(os.Environ(),
		"POSTGRES_PASSWORD=compose-test-password",
		"USERSYNC_SECRET_KEY=bm90LWEtcmVhbC1rZXktYnV0LTMyLWJ5dGVzLWxvbmc=",
		"USERSYNC_API_TOKEN=0123456789abcdef0123456789abcdef")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s config: %v\n%s", strings.Join(cli, " "), err, out)
	}
	cfg := string(out)
	for _, want := range []string{
		"/etc/usersync-temporal/setup-schema.sh",
		"--service frontend", "--service history", "--service matching", "--service worker",
		"--env usersync", "temporalio/server:1.29.1",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("the rendered compose file lacks %q", want)
		}
	}
	// The files it mounts are the cluster test's.
	for _, f := range []string{"deploy/temporal/setup-schema.sh", "deploy/temporal/config/usersync.yaml", "deploy/temporal/dynamicconfig.yaml"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Error(err)
		}
	}
	// Without the secrets, compose refuses to start.
	cmd = exec.Command(cli[0], args...)
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("compose accepted a file without POSTGRES_PASSWORD:\n%s", out)
	}
}
