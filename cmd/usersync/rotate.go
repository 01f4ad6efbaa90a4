package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/usersync/usersync/config"
	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/secret"
)

// A key rotation, step by step (README, "Deploy"):
//
//  1. Restart api and worker with the new USERSYNC_SECRET_KEY and the old
//     key in USERSYNC_SECRET_KEY_OLD: both keys decrypt, the new one encrypts.
//  2. Run `usersync rotate-secrets` with the same two variables: every
//     profile's secrets are re-encrypted with the new key.
//  3. Drop USERSYNC_SECRET_KEY_OLD and restart.
//
// rotate-secrets can be run again at any time: a profile already on the new
// key is left alone.

// actionSecretsRotated is the audit action of a profile whose secrets were
// re-encrypted; the entry names the profile, never a secret.
const actionSecretsRotated = "profile_secrets_rotated"

// rotateAttempts bounds the retries of one profile whose secrets change
// under the rotation (an admin saving it at that moment).
const rotateAttempts = 3

// openBox is the secret box of a process: the current key, plus the keys a
// rotation replaces, which still decrypt. Errors name the variable to fix.
func openBox(cfg *config.Config) (*secret.Box, error) {
	if _, err := secret.NewBox(cfg.SecretKey); err != nil {
		return nil, fmt.Errorf("USERSYNC_SECRET_KEY: %w", err)
	}
	box, err := secret.NewBox(cfg.SecretKey, cfg.SecretKeysOld()...)
	if err != nil {
		return nil, fmt.Errorf("USERSYNC_SECRET_KEY_OLD: %w", err)
	}
	return box, nil
}

// loadConfigWith is loadConfig for a command with flags of its own, which
// own registers on the flag set before it is parsed.
func loadConfigWith(e *env, name, summary string, args []string, own func(fs *flag.FlagSet)) (*config.Config, error) {
	fs := flag.NewFlagSet("usersync "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	own(fs)
	cfg, err := config.Load(fs, args, e.getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(e.stderr, "\n%s.\n", upperFirst(summary))
		return nil, err
	case err != nil && !errors.Is(err, config.ErrInvalid):
		return nil, errUsage // the flag package printed the error and usage
	case err != nil:
		return nil, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "usersync %s: unexpected argument %q\n", name, fs.Arg(0))
		return nil, errUsage
	}
	return cfg, nil
}

func runRotateSecrets(ctx context.Context, e *env, args []string) error {
	var dryRun bool
	cfg, err := loadConfigWith(e, "rotate-secrets",
		"re-encrypt every profile's secrets with USERSYNC_SECRET_KEY (the old key in USERSYNC_SECRET_KEY_OLD)", args,
		func(fs *flag.FlagSet) {
			fs.BoolVar(&dryRun, "dry-run", false, "count what would be re-encrypted, change nothing")
		})
	if err != nil {
		return err
	}
	if err := cfg.Require("USERSYNC_SECRET_KEY"); err != nil {
		return err
	}
	box, err := openBox(cfg)
	if err != nil {
		return err
	}
	log := newLogger(e, cfg)
	db, store, err := openDirectory(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	rep, err := rotateSecrets(ctx, db, store, box, dryRun)
	if err != nil {
		return err
	}
	rep.print(e.stdout, dryRun)
	if len(rep.failed) > 0 {
		return fmt.Errorf("%d profile(s) could not be re-encrypted (listed above); nothing else changed for them", len(rep.failed))
	}
	return nil
}

// rotation counts what rotate-secrets did.
type rotation struct {
	rotated, current, none int
	failed                 []string // "profile name: why", never a secret
}

func (r *rotation) print(w io.Writer, dryRun bool) {
	verb := "re-encrypted with the new key"
	if dryRun {
		verb = "to re-encrypt (dry run: nothing changed)"
	}
	fmt.Fprintf(w, "rotate-secrets: %d profile(s) %s, %d already on the new key, %d without secrets, %d failed\n",
		r.rotated, verb, r.current, r.none, len(r.failed))
	for _, f := range r.failed {
		fmt.Fprintf(w, "  FAILED %s\n", f)
	}
}

// rotateSecrets re-encrypts the sealed secrets of every profile with the
// box's current key. Each profile is one compare-and-swap UPDATE: the new
// value is written only if the stored one is still the one that was read,
// so an admin saving the profile meanwhile is never overwritten (the
// profile is read again and retried). The profile's updatedAt is left as it
// is: its content did not change.
func rotateSecrets(ctx context.Context, db *directory.DB, store *directory.SQLStore, box *secret.Box, dryRun bool) (*rotation, error) {
	rep := &rotation{}
	var profiles []directory.Profile
	for cursor := ""; ; {
		page, err := store.ListProfiles(ctx, directory.ListOptions{Limit: 1000, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		profiles = append(profiles, page.Items...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	update := db.Rebind(`UPDATE profiles SET secrets = ? WHERE id = ? AND secrets = ?`)
	for _, p := range profiles {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var outcome string
		var err error
		for attempt := 1; ; attempt++ {
			outcome, err = rotateOne(ctx, db, update, box, p, dryRun)
			if err != errChangedMeanwhile || attempt == rotateAttempts {
				break
			}
			fresh, gerr := store.GetProfile(ctx, p.ID)
			if errors.Is(gerr, directory.ErrNotFound) {
				outcome, err = "gone", nil
				break
			}
			if gerr != nil {
				err = gerr
				break
			}
			p = *fresh
		}
		switch {
		case err != nil:
			rep.failed = append(rep.failed, fmt.Sprintf("%s (%s): %v", p.Name, p.ID, err))
			continue
		case outcome == "none":
			rep.none++
			continue
		case outcome == "current":
			rep.current++
			continue
		case outcome == "gone":
			continue
		}
		rep.rotated++
		if dryRun {
			continue
		}
		if err := store.AddAudit(ctx, &directory.AuditEntry{Category: directory.CategorySyncConfig,
			Action: actionSecretsRotated, Connection: p.Name, Subject: p.Name,
			Details: "secrets re-encrypted with the new USERSYNC_SECRET_KEY"}); err != nil {
			return nil, fmt.Errorf("profile %q was re-encrypted but its audit entry failed: %w", p.Name, err)
		}
	}
	return rep, nil
}

var errChangedMeanwhile = errors.New("the profile changed during the rotation")

// rotateOne re-encrypts one profile; the outcome is none (no secrets),
// current (already on the new key) or rotated.
func rotateOne(ctx context.Context, db *directory.DB, update string, box *secret.Box, p directory.Profile, dryRun bool) (string, error) {
	if p.Secrets == "" {
		return "none", nil
	}
	next, changed, err := box.Reseal(p.Secrets)
	if err != nil {
		return "", err
	}
	if !changed {
		return "current", nil
	}
	if dryRun {
		return "rotated", nil
	}
	res, err := db.ExecContext(ctx, update, next, p.ID, p.Secrets)
	if err != nil {
		return "", fmt.Errorf("save: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return "", fmt.Errorf("save: %w", err)
	}
	if n == 0 {
		return "", errChangedMeanwhile
	}
	return "rotated", nil
}
