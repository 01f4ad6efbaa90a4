package main

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/config"
)

// Issue 14: a process started without a Temporal server says what it
// waits for and how to get one, rather than seem to hang.
func TestDialTemporalSaysWhatItWaitsFor(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := dialTemporal(ctx, &config.Config{TemporalAddress: addr, TemporalNamespace: "default"}, log, nil)
	if err == nil {
		t.Fatal("connected to nothing")
	}
	for _, want := range []string{"waiting for the Temporal server at " + addr + " (TEMPORAL_ADDRESS, namespace default); giving up in",
		"make run", "bin/temporal server start-dev"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}
}
