package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/provider/azure"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestIdpsimServesWhatItPrints starts `usersync idpsim` with two tenants
// and a small throttle, then reads each tenant with the Entra ID source
// configured from the printed values, as an admin would paste them.
func TestIdpsimServesWhatItPrints(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	e := &env{getenv: func(string) string { return "" }, stdout: &out, stderr: &errb}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, e, []string{"idpsim", "--graph-listen", "127.0.0.1:0", "--graph-users", "120", "--graph-groups", "6",
			"--graph-tenants", "2", "--graph-throttle-share", "0.2", "--graph-retry-after", "20ms"})
	}()
	blocks := regexp.MustCompile(`"azure": (\{.*\})\n\s+"groups": \["([^"]+)"\]`)
	deadline := time.Now().Add(10 * time.Second)
	for len(blocks.FindAllStringSubmatch(out.String(), -1)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no profile values printed:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, m := range blocks.FindAllStringSubmatch(out.String(), -1) {
		var a struct {
			TenantID     string `json:"tenantId"`
			ClientID     string `json:"clientId"`
			ClientSecret string `json:"clientSecret"`
			AuthorityURL string `json:"authorityUrl"`
			GraphBaseURL string `json:"graphBaseUrl"`
		}
		if err := json.Unmarshal([]byte(m[1]), &a); err != nil {
			t.Fatalf("printed block %s: %v", m[1], err)
		}
		seen[a.TenantID] = true
		src, err := azure.Config{TenantID: a.TenantID, ClientID: a.ClientID, ClientSecret: a.ClientSecret,
			AuthorityURL: a.AuthorityURL, GraphBaseURL: a.GraphBaseURL, AllowHTTPLoopback: true,
			Retry: azure.RetryPolicy{BaseDelay: time.Millisecond}}.Open()
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Test(ctx); err != nil {
			t.Fatalf("test connection with the printed values: %v", err)
		}
		n, cur := 0, ""
		for {
			p, err := src.Users(ctx, provider.Scope{GroupIDs: []string{m[2]}}, cur)
			if err != nil {
				t.Fatal(err)
			}
			n += len(p.Items)
			if cur = p.Next; cur == "" {
				break
			}
		}
		if n < 100 || n > 120 {
			t.Fatalf("tenant %s: %d users in All Staff", a.TenantID, n)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("tenants %v", seen)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

func TestIdpsimFlags(t *testing.T) {
	code, out, _ := runCmd(t, context.Background(), nil, "help", "idpsim")
	if code != 0 || !strings.Contains(out, "-graph-listen") || !strings.Contains(out, "-graph-throttle-share") {
		t.Fatalf("help idpsim: %d\n%s", code, out)
	}
	if code, _, errOut := runCmd(t, context.Background(), nil, "idpsim", "--graph-listen", ""); code != 1 ||
		!strings.Contains(errOut, "nothing to serve") {
		t.Fatalf("nothing to serve: %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, context.Background(), nil, "idpsim", "--graph-listen", "127.0.0.1:0", "--graph-depth", "0"); code != 1 ||
		!strings.Contains(errOut, "--graph-depth") {
		t.Fatalf("bad depth: %d %q", code, errOut)
	}
}
