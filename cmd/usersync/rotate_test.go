package main

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/directory/dbtest"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
	"github.com/usersync/usersync/secret"
)

// rotationFixture is a database with profiles sealed under an old key.
type rotationFixture struct {
	url            string
	db             *directory.DB
	store          *directory.SQLStore
	oldKey, newKey string
	withSecrets    []*directory.Profile
}

func newRotationFixture(t *testing.T, dialect string) *rotationFixture {
	t.Helper()
	ctx := context.Background()
	f := &rotationFixture{url: dbtest.URL(t, dialect), oldKey: secret.GenerateKey(), newKey: secret.GenerateKey()}
	db, err := directory.OpenDB(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f.db, f.store = db, directory.NewSQLStore(db)
	oldBox, _ := secret.NewBox(f.oldKey)
	for i, pw := range []string{"remote-pw-1", "remote-pw-2", ""} {
		cfg := &profile.Config{Name: "CSV " + string(rune('A'+i)), Provider: csv.Name,
			Block: &csv.Profile{Source: "remote", URL: "https://files.example.com/p.csv", Username: "u", Password: pw}}
		cfg.Normalize()
		clear, sealed, err := profile.Seal(oldBox, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := &directory.Profile{Name: cfg.Name, Provider: cfg.Provider, Enabled: true,
			DirectoryKey: "p-" + uuid.NewString()[:8], Config: clear, Secrets: sealed}
		if err := f.store.CreateProfile(ctx, p); err != nil {
			t.Fatal(err)
		}
		if pw != "" {
			f.withSecrets = append(f.withSecrets, p)
		}
	}
	return f
}

func (f *rotationFixture) env(extra map[string]string) map[string]string {
	m := map[string]string{"DATABASE_URL": f.url, "USERSYNC_SECRET_KEY": f.newKey,
		"USERSYNC_SECRET_KEY_OLD": f.oldKey, "USERSYNC_LOG_LEVEL": "error"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestRotateSecrets(t *testing.T) {
	for _, dialect := range dbtest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			f := newRotationFixture(t, dialect)
			before := map[string]directory.Profile{}
			for _, p := range f.withSecrets {
				got, _ := f.store.GetProfile(ctx, p.ID)
				before[p.ID] = *got
			}

			// A dry run counts and changes nothing.
			code, out, errOut := runCmd(t, ctx, f.env(nil), "rotate-secrets", "--dry-run")
			if code != 0 || !strings.Contains(out, "2 profile(s) to re-encrypt") {
				t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
			}
			for _, p := range f.withSecrets {
				if got, _ := f.store.GetProfile(ctx, p.ID); got.Secrets != before[p.ID].Secrets {
					t.Fatal("the dry run changed a profile")
				}
			}

			code, out, errOut = runCmd(t, ctx, f.env(nil), "rotate-secrets")
			if code != 0 || !strings.Contains(out, "2 profile(s) re-encrypted with the new key, 0 already on the new key, 1 without secrets, 0 failed") {
				t.Fatalf("rotate: exit %d\n%s%s", code, out, errOut)
			}
			// The new key alone now opens every profile, with its secrets intact;
			// nothing else of the profile changed.
			newOnly, _ := secret.NewBox(f.newKey)
			for i, p := range f.withSecrets {
				got, err := f.store.GetProfile(ctx, p.ID)
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := profile.Open(newOnly, got.Config, got.Secrets)
				if err != nil {
					t.Fatalf("profile %s after rotation: %v", p.Name, err)
				}
				if want := []string{"remote-pw-1", "remote-pw-2"}[i]; cfg.Block.(*csv.Profile).Password != want {
					t.Fatalf("password of %s = %q, want %q", p.Name, cfg.Block.(*csv.Profile).Password, want)
				}
				b := before[p.ID]
				if !got.UpdatedAt.Equal(b.UpdatedAt) || string(got.Config) != string(b.Config) || got.Name != b.Name {
					t.Fatalf("rotation changed more than the secrets of %s", p.Name)
				}
			}
			audit, err := f.store.ListAudit(ctx, directory.AuditFilter{Action: actionSecretsRotated}, directory.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(audit.Items) != 2 {
				t.Fatalf("%d audit entries, want one per rotated profile", len(audit.Items))
			}
			for _, a := range audit.Items {
				if a.Category != directory.CategorySyncConfig || strings.Contains(a.Details, "remote-pw") {
					t.Fatalf("audit entry %+v", a)
				}
			}

			// Idempotent: a second run finds everything on the new key, even
			// once the old key is gone.
			code, out, errOut = runCmd(t, ctx, f.env(map[string]string{"USERSYNC_SECRET_KEY_OLD": ""}), "rotate-secrets")
			if code != 0 || !strings.Contains(out, "0 profile(s) re-encrypted with the new key, 2 already on the new key") {
				t.Fatalf("second rotate: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}

func TestRotateSecretsReportsProfilesNoKeyOpens(t *testing.T) {
	ctx := context.Background()
	f := newRotationFixture(t, "sqlite")
	// The old key is not given: nothing can be re-encrypted, and the
	// command says which profiles and why, and fails.
	code, out, errOut := runCmd(t, ctx, f.env(map[string]string{"USERSYNC_SECRET_KEY_OLD": ""}), "rotate-secrets")
	if code != 1 || !strings.Contains(out, "2 failed") || !strings.Contains(out, "FAILED CSV A") ||
		!strings.Contains(out, "USERSYNC_SECRET_KEY_OLD") || !strings.Contains(errOut, "2 profile(s) could not be re-encrypted") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, f.oldKey) || strings.Contains(out+errOut, f.newKey) {
		t.Fatal("a key was printed")
	}
	// A malformed old key is named by its variable, not printed.
	code, _, errOut = runCmd(t, ctx, f.env(map[string]string{"USERSYNC_SECRET_KEY_OLD": "bm90LWEta2V5"}), "rotate-secrets")
	if code != 1 || !strings.Contains(errOut, "USERSYNC_SECRET_KEY_OLD") || strings.Contains(errOut, "bm90LWEta2V5") {
		t.Fatalf("bad old key: exit %d, %s", code, errOut)
	}
}

// A profile saved by an admin between the read and the write of the
// rotation is not overwritten: the write finds a changed value and the
// rotation reads the profile again.
func TestRotateSecretsDoesNotOverwriteAConcurrentSave(t *testing.T) {
	ctx := context.Background()
	f := newRotationFixture(t, "sqlite")
	box, _ := secret.NewBox(f.newKey, f.oldKey)
	stale := *f.withSecrets[0]

	// The admin saves a new password (sealed with the new key, as the api
	// does during a rotation) after the rotation read the profile.
	cfg, err := profile.Open(box, stale.Config, stale.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Block.(*csv.Profile).Password = "saved-by-admin"
	clear, sealed, _ := profile.Seal(box, cfg)
	saved := stale
	saved.Config, saved.Secrets = clear, sealed
	if err := f.store.UpdateProfile(ctx, &saved); err != nil {
		t.Fatal(err)
	}
	update := f.db.Rebind(`UPDATE profiles SET secrets = ? WHERE id = ? AND secrets = ?`)
	if _, err := rotateOne(ctx, f.db, update, box, stale, false); err != errChangedMeanwhile {
		t.Fatalf("stale write: %v, want errChangedMeanwhile", err)
	}
	rep, err := rotateSecrets(ctx, f.db, f.store, box, false)
	if err != nil || rep.rotated != 1 || rep.current != 1 || len(rep.failed) != 0 {
		t.Fatalf("rotation %+v, %v", rep, err)
	}
	got, _ := f.store.GetProfile(ctx, stale.ID)
	newOnly, _ := secret.NewBox(f.newKey)
	if cfg, err := profile.Open(newOnly, got.Config, got.Secrets); err != nil || cfg.Block.(*csv.Profile).Password != "saved-by-admin" {
		t.Fatalf("the admin's save was lost: %v", err)
	}
}

// api and worker read with both keys during a rotation.
func TestOpenBoxUsesTheOldKeys(t *testing.T) {
	oldKey, newKey := secret.GenerateKey(), secret.GenerateKey()
	oldBox, _ := secret.NewBox(oldKey)
	sealed, _ := oldBox.Seal([]byte("x"))
	cfg := mustConfig(t, "--secret-key", newKey, "--secret-key-old", secret.GenerateKey()+","+oldKey)
	box, err := openBox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := box.Open(sealed); err != nil || string(pt) != "x" {
		t.Fatalf("open with the second old key: %q, %v", pt, err)
	}
	if _, err := openBox(mustConfig(t, "--secret-key", "short")); err == nil || !strings.Contains(err.Error(), "USERSYNC_SECRET_KEY:") {
		t.Fatalf("bad key: %v", err)
	}
}
