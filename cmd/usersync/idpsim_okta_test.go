package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/provider/okta"
)

// TestIdpsimServesAnOktaOrg starts `usersync idpsim` with the Okta
// simulator alone, then reads the org with the Okta source configured from
// the printed values, as an admin would paste them.
func TestIdpsimServesAnOktaOrg(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	e := &env{getenv: func(string) string { return "" }, stdout: &out, stderr: &errb}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, e, []string{"idpsim", "--graph-listen", "", "--okta-listen", "127.0.0.1:0",
			"--okta-users", "150", "--okta-rate-window", "2s", "--okta-rate-groups", "10"})
	}()
	printed := regexp.MustCompile(`"okta": (\{.*\})\n\s+"groups": (\[.*\])`)
	deadline := time.Now().Add(10 * time.Second)
	var m []string
	for m = printed.FindStringSubmatch(out.String()); m == nil; m = printed.FindStringSubmatch(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no profile values printed:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var block struct {
		OrgURL   string `json:"orgUrl"`
		APIToken string `json:"apiToken"`
		AppID    string `json:"appId"`
	}
	var groups []string
	if err := json.Unmarshal([]byte(m[1]), &block); err != nil {
		t.Fatalf("printed block %s: %v", m[1], err)
	}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(m[2], `", "`, `","`)), &groups); err != nil || len(groups) != 8 {
		t.Fatalf("printed groups %s: %v", m[2], err)
	}
	src, err := okta.Config{OrgURL: block.OrgURL, APIToken: block.APIToken, AppID: block.AppID, AllowHTTPLoopback: true,
		PageSize: 10}.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Test(ctx); err != nil {
		t.Fatalf("test connection with the printed values: %v", err)
	}
	n, cur := 0, ""
	for {
		p, err := src.Users(ctx, provider.Scope{GroupIDs: groups}, cur)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Items)
		if cur = p.Next; cur == "" {
			break
		}
	}
	// Every user is in one department; STAGED ones (about 3%) are left out.
	if n < 130 || n >= 150 {
		t.Fatalf("%d users in the departments", n)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

func TestIdpsimOktaFlags(t *testing.T) {
	code, out, _ := runCmd(t, context.Background(), nil, "help", "idpsim")
	if code != 0 || !strings.Contains(out, "-okta-listen") || !strings.Contains(out, "-okta-rate-users") {
		t.Fatalf("help idpsim: %d\n%s", code, out)
	}
	if code, _, errOut := runCmd(t, context.Background(), nil, "idpsim", "--graph-listen", "", "--okta-listen", "127.0.0.1:0",
		"--okta-users", "0"); code != 1 || !strings.Contains(errOut, "--okta-users") {
		t.Fatalf("no users: %d %q", code, errOut)
	}
}
