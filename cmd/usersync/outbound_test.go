package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/schema"
	"github.com/usersync/usersync/secret"
)

// serveOn starts an HTTP server on a loopback address of choice
// (127.0.0.2 is loopback too on Linux, and a different host).
func serveOn(t *testing.T, ip string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

const peopleCSV = "username,firstName,lastName,email\njdoe,J,Doe,j@example.com\n"

// TestOutboundPolicyHoldsForRedirects is issue 13's item 6: a remote CSV
// download followed redirects to loopback and private addresses. Every
// connection of a provider request, first URL and redirects alike, is
// now held to one policy: nothing inside unless allowed (dev: loopback).
func TestOutboundPolicyHoldsForRedirects(t *testing.T) {
	inside := serveOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, peopleCSV)
	}))
	outside := serveOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, inside.URL+"/people.csv", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, peopleCSV)
	}))
	download := func(p outboundPolicy, url string) error {
		remote := csv.Remote{URL: url, Client: &http.Client{Transport: outboundTransport(p)}, AllowHTTPLoopback: true}
		_, err := remote.Download(context.Background(), io.Discard)
		return err
	}
	only := outboundPolicy{allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

	if err := download(only, outside.URL+"/people.csv"); err != nil {
		t.Fatalf("an allowed address: %v", err)
	}
	err := download(only, outside.URL+"/redirect")
	var ide *provider.InvalidDataError
	if !errors.As(err, &ide) || !strings.Contains(err.Error(), "127.0.0.2 is in a loopback range") {
		t.Fatalf("redirect to a loopback address not allowed: err = %v", err)
	}
	if err := download(outboundPolicy{}, outside.URL+"/people.csv"); !errors.As(err, &ide) {
		t.Fatalf("production refuses loopback: err = %v", err)
	}
	if err := download(outboundPolicy{loopback: true}, outside.URL+"/redirect"); err != nil {
		t.Fatalf("dev allows loopback: %v", err)
	}
	for _, a := range []string{"10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "fd00::1", "fe80::1",
		"::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"} {
		if (outboundPolicy{}).check(netip.MustParseAddr(a)) == nil {
			t.Errorf("%s let through", a)
		}
	}
	for _, a := range []string{"20.190.160.1", "2603:1000::1"} {
		if err := (outboundPolicy{}).check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	if (outboundPolicy{allow: []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")}}).check(netip.MustParseAddr("10.1.2.3")) != nil {
		t.Error("an allowed network refused")
	}
}

// TestTestConnectionDoesNotQuoteTheServer is item 6's other half, through
// "Test connection" as the API runs it: a remote CSV pointed at a server
// that answers something else (here, a metrics page) failed with the
// server's first line in the message, which the API returns and the audit
// log keeps.
func TestTestConnectionDoesNotQuoteTheServer(t *testing.T) {
	srv := serveOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "# HELP go_gc_duration_seconds INTERNAL-SECRET-LINE\n# TYPE go_gc_duration_seconds summary\n"+
			"go_gc_duration_seconds{quantile=\"0\"} 1.2e-05\n")
	}))
	db := dbtest.Open(t, schema.SQLite)
	box, err := secret.NewBox(secret.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	obs := newObservability(true, nil)
	test := obs.tester(directory.NewSQLStore(db), box, slog.New(slog.NewTextHandler(&logs, nil)))
	cfg := &profile.Config{Name: "Remote", Provider: csv.Name, Block: &csv.Profile{Source: csv.SourceRemote,
		URL: srv.URL + "/metrics", UserMatchField: "username", DefaultPassword: "Welcome-1", Delimiter: ","}}
	cfg.Normalize()
	_, err = test(context.Background(), &directory.Profile{ID: "p1", Name: "Remote", Provider: csv.Name}, cfg)
	if err == nil {
		t.Fatal("a metrics page passed for a CSV file")
	}
	for _, leak := range []string{"INTERNAL-SECRET-LINE", "go_gc_duration_seconds", "HELP"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("the error quotes the server's answer (%q): %v", leak, err)
		}
	}
	if !strings.Contains(err.Error(), "do not look like column names") {
		t.Errorf("the error does not say what failed: %v", err)
	}
}
