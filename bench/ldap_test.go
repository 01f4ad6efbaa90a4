package bench_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/bench"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/provider/ldap/ldaptest"
)

// TestBenchLDAPSmoke runs the LDAP part of the benchmark on a directory of
// 300 users, as `make bench LDAP_SIZES=300` does: slapd loaded with
// slapadd, a full sync, a re-sync with nothing changed, a forced full one
// and an incremental one. Run itself fails a size whose counts are not the
// layout's (every user once, then nothing, then exactly the changes); here
// the report must show the LDAP section.
func TestBenchLDAPSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end benchmark")
	}
	ldaptest.Require(t)
	dbtest.RequirePostgres(t)
	o := bench.Options{LDAPSizes: []int{300}, AdminURL: dbtest.AdminURL(),
		TemporalCLI: testenv.TemporalCLI(t), Worker: testenv.Binary(t), Log: testWriter{t}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rs, err := bench.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].LDAP == nil {
		t.Fatalf("results %+v", rs)
	}
	r := rs[0]
	if r.Full.Counts.Created != 291 || r.Changes != 5 || r.Incremental.Counts.Fetched != 5 {
		t.Fatalf("full %+v, %d changes, incremental %+v", r.Full.Counts, r.Changes, r.Incremental.Counts)
	}
	var md bytes.Buffer
	bench.WriteMarkdown(&md, rs, time.Now(), "ci")
	if s := md.String(); !strings.Contains(s, "## LDAP directory (OpenLDAP)") || !strings.Contains(s, "| 300 | 317 |") {
		t.Fatalf("report:\n%s", s)
	}
	if err := bench.WritePlot(filepath.Join(t.TempDir(), "plot.png"), rs); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + md.String())
}
