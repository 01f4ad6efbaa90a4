package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A bad --ldap-sizes is refused before anything starts, naming the flag.
func TestLDAPSizesFlag(t *testing.T) {
	for _, v := range []string{"x", "-5", "10k,y"} {
		var out bytes.Buffer
		e := &env{getenv: func(string) string { return "" }, stdout: &out, stderr: &out}
		err := runBench(context.Background(), e, []string{"--sizes", "1000", "--ldap-sizes", v})
		if err == nil || !strings.Contains(err.Error(), "--ldap-sizes") {
			t.Errorf("--ldap-sizes %q: %v", v, err)
		}
	}
}

// A negative --latency is refused before anything starts.
func TestLatencyFlag(t *testing.T) {
	var out bytes.Buffer
	e := &env{getenv: func(string) string { return "" }, stdout: &out, stderr: &out}
	err := runBench(context.Background(), e, []string{"--sizes", "1000", "--latency", "-1s"})
	if err == nil || !strings.Contains(err.Error(), "--latency") {
		t.Errorf("--latency -1s: %v", err)
	}
}
