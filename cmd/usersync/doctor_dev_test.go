package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/secret"
)

// Issue 14: doctor agrees with `make run`. With the key and token that
// `usersync dev` keeps in the data dir and a profile reading a simulator on
// plain http over loopback (which dev accepts and Test connection passes),
// doctor finds no problem; pointed at the same profile as an `api` would
// run it (its key in the environment, no loopback http), it says why the
// connection fails.
func TestDoctorAgreesWithTheDevSetup(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	key, err := secret.LoadOrCreateKeyFile(filepath.Join(data, devKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateToken(filepath.Join(data, devTokenFile)); err != nil {
		t.Fatal(err)
	}
	sim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		_, _ = w.Write([]byte("username,firstName,lastName,email\nada,Ada,L,ada@example.com\n"))
	}))
	defer sim.Close()

	db, err := directory.OpenDB(ctx, "sqlite:"+filepath.Join(data, "usersync.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	box, err := secret.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &profile.Config{Name: "Simulated", Provider: csv.Name,
		Block: &csv.Profile{Source: csv.SourceRemote, URL: sim.URL + "/people.csv", UserMatchField: "username", Password: "pw", DefaultPassword: "Welcome-1"}}
	cfg.Normalize()
	if errs := cfg.Validate(); errs != nil {
		t.Fatal(errs)
	}
	clear, sealed, err := profile.Seal(box, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := directory.NewSQLStore(db).CreateProfile(ctx, &directory.Profile{Name: cfg.Name, Provider: cfg.Provider,
		Enabled: true, DirectoryKey: "p-" + uuid.NewString()[:8], Config: clear, Secrets: sealed}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	vars := map[string]string{"USERSYNC_DATA_DIR": data, "USERSYNC_LOG_LEVEL": "error"}
	code, out, errOut := runCmd(t, ctx, vars, "doctor", "--only", "config,database,connections")
	if code != 0 {
		t.Fatalf("doctor on the dev setup: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"ok    usersync dev:", `ok    profile "Simulated" (csv): connection ok`} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "USERSYNC_SECRET_KEY: not set") || strings.Contains(out, "USERSYNC_API_TOKEN: not set") {
		t.Errorf("doctor ignores the dev key and token:\n%s", out)
	}

	// As an `api` process runs it: the key in the environment, no
	// loopback http. Doctor fails the connection as the API would.
	vars["USERSYNC_SECRET_KEY"] = key
	code, out, _ = runCmd(t, ctx, vars, "doctor", "--only", "database,connections")
	if code == 0 || !strings.Contains(out, `FAIL  profile "Simulated" (csv)`) {
		t.Fatalf("doctor outside dev passed a plain-http loopback profile: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(data, devKeyFile)); err != nil {
		t.Fatal(err)
	}
}
