package activities_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/sources"
)

func TestFinishRunWithoutARowEnds(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		// StartRun failed before it recorded the run: ending it must not
		// fail (and be retried for ever).
		if err := h.acts.FinishRun(context.Background(), activities.FinishInput{RunID: "never-recorded", Status: directory.RunFailed, Error: "x"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAttributeMapAppliesToCSVColumns(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, func(c *profile.Config) {
			c.Block.(*csv.Profile).ColumnMap = nil
			c.AttributeMap = map[string]string{"department": "dept"}
		})
		h.setCSV(csvOf(alice))
		h.mustSync()
		if got := h.user("alice").Attributes; got["dept"] != "Sales" {
			t.Fatalf("attributes %v", got)
		}
	})
}

func TestTestConnectionCSV(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		h := newHarness(t, db, nil)
		h.setCSV(csvOf(alice))
		if _, err := h.acts.TestConnection(h.ctx, h.profile, h.cfg); err != nil {
			t.Fatalf("green light expected: %v", err)
		}
		h.setCSV("login,firstName\nx,y\n")
		if _, err := h.acts.TestConnection(h.ctx, h.profile, h.cfg); err == nil || !strings.Contains(err.Error(), "username") {
			t.Fatalf("missing column not named: %v", err)
		}

		// A remote file: served, then refused credentials.
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "svc" || p != "pw" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "text/csv")
			w.Write([]byte(csvOf(alice))) //nolint:errcheck
		}))
		defer srv.Close()
		acts := activities.New(activities.Deps{Store: h.store, Box: h.box, HTTPClient: srv.Client()})
		cfg := *h.cfg
		remote := *cfg.Block.(*csv.Profile)
		remote.Source, remote.URL, remote.Username, remote.Password = "remote", srv.URL+"/people.csv", "svc", "pw"
		cfg.Block = &remote
		if _, err := acts.TestConnection(h.ctx, h.profile, &cfg); err != nil {
			t.Fatalf("remote green light expected: %v", err)
		}
		remote.Password = "wrong"
		_, err := acts.TestConnection(h.ctx, h.profile, &cfg)
		if !errors.Is(err, provider.ErrAuth) || strings.Contains(err.Error(), "wrong") {
			t.Fatalf("refused credentials: %v", err)
		}
	})
}

func TestRemoteCSVRun(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		var status atomic.Int32
		status.Store(http.StatusOK)
		body := csvOf(alice, bob)
		// A hanging request waits for the test to release it, not for its
		// own context: CI once saw that context end before the client's
		// timeout, and the handler's return then answered an empty 200.
		// Released or not, it never answers: it aborts the connection.
		release := make(chan struct{})
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code := int(status.Load())
			if code == -1 { // hang past the client's timeout
				<-release
				panic(http.ErrAbortHandler)
			}
			w.Header().Set("Content-Type", "text/csv")
			w.WriteHeader(code)
			w.Write([]byte(body)) //nolint:errcheck
		}))
		defer srv.Close()
		defer close(release) // before srv.Close, which waits for the handlers
		h := newHarness(t, db, func(c *profile.Config) {
			c.Block.(*csv.Profile).Source, c.Block.(*csv.Profile).URL, c.Block.(*csv.Profile).DocumentID = "remote", srv.URL+"/people.csv", ""
		})
		client := srv.Client()
		h.acts.HTTPClient = client
		run := h.mustSync()
		if run.Counts.Created != 2 || run.SourceDocumentID == "" {
			t.Fatalf("run %+v", run)
		}
		// The run's copy of the file is removed with the run.
		if _, err := h.store.GetDocument(h.ctx, run.SourceDocumentID); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("the run's copy of the remote file is still stored: %v", err)
		}

		for _, c := range []struct {
			status    int
			final     bool
			wantInMsg string
		}{
			{http.StatusUnauthorized, true, "401"},
			{http.StatusNotFound, true, "404"},
			{http.StatusInternalServerError, false, "500"},
		} {
			status.Store(int32(c.status))
			r := h.sync(false, false)
			if r.err == nil || !strings.Contains(r.err.Error(), c.wantInMsg) {
				t.Fatalf("status %d: err %v", c.status, r.err)
			}
			if provider.Retryable(r.err) == c.final && c.final {
				t.Errorf("status %d: final=%v but err %v", c.status, c.final, r.err)
			}
			if u := h.user("bob"); u.Status != directory.StatusActive {
				t.Fatalf("status %d disabled bob", c.status)
			}
		}
		status.Store(-1)
		h.acts.HTTPClient = &http.Client{Transport: client.Transport, Timeout: 300 * time.Millisecond}
		if r := h.sync(false, false); r.err == nil || !provider.Retryable(r.err) || !strings.Contains(r.err.Error(), "Client.Timeout") {
			t.Fatalf("a timeout must be a retryable failure: %v", r.err)
		}
		if len(h.users()) != 2 {
			t.Fatal("a failed download changed the directory")
		}
	})
}

func TestOpenErrorsKeepTheirRetryability(t *testing.T) {
	eachDB(t, func(t *testing.T, db *directory.DB) {
		openErr := fmt.Errorf("token endpoint: %w", provider.ErrUnreachable)
		sources.Register("unreachable-at-open", func(context.Context, sources.Env, sources.Target) (*sources.Opened, error) {
			return nil, openErr
		})
		h := newHarness(t, db, func(c *profile.Config) { c.Provider, c.Block = "unreachable-at-open", nil })
		run := &directory.Run{ID: "r-open", ProfileID: h.profile.ID, ProfileName: "x", Provider: "unreachable-at-open",
			DirectoryKey: h.profile.DirectoryKey, Trigger: "manual", Status: directory.RunRunning, Phase: directory.PhaseFetch, StartedAt: time.Now()}
		if err := h.store.CreateRun(h.ctx, run); err != nil {
			t.Fatal(err)
		}
		_, err := h.acts.Fetch(h.ctx, activities.FetchInput{RunID: run.ID})
		var ae *temporal.ApplicationError
		if err == nil || (errors.As(err, &ae) && ae.NonRetryable()) {
			t.Fatalf("an unreachable provider at open must stay retryable: %v", err)
		}
		openErr = errors.New("tenantId: not a GUID")
		_, err = h.acts.Fetch(h.ctx, activities.FetchInput{RunID: run.ID})
		if !errors.As(err, &ae) || !ae.NonRetryable() || ae.Type() != activities.ErrTypeConfig {
			t.Fatalf("a configuration error must be final: %v", err)
		}
	})
}
