package config

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 14: the compose example's API token, as shipped, is refused at
// start (a placeholder or too short), so that nobody runs it by accident;
// docker-compose.yml then refuses an empty one by itself.
func TestComposeExampleTokenIsRefused(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "examples", "compose.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "USERSYNC_API_TOKEN="); ok {
			found = true
			if err := CheckAPIToken(v); err == nil {
				t.Errorf("examples/compose.env's USERSYNC_API_TOKEN %q would be accepted", v)
			}
		}
	}
	if !found {
		t.Fatal("examples/compose.env has no USERSYNC_API_TOKEN")
	}
}
