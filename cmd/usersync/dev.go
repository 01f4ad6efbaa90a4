package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/usersync/usersync/config"
	"github.com/usersync/usersync/secret"
)

// Files of `usersync dev` in the data dir. They are created once and reused,
// so the token and the key survive a restart and the encrypted secrets in the
// SQLite file stay readable.
const (
	devTokenFile = "api-token"
	devKeyFile   = "secret.key"
)

func runDev(ctx context.Context, e *env, args []string) error {
	cfg, err := loadConfig(e, "dev", "API and worker in one process, for a laptop", args)
	if err != nil {
		return err
	}
	tokenFrom := "USERSYNC_API_TOKEN"
	if cfg.APIToken != "" {
		// dev serves on a real port too; a token someone chose is held to
		// the rule a generated one meets.
		if err := config.CheckAPIToken(cfg.APIToken); err != nil {
			return fmt.Errorf("%w (or unset it: dev then generates one)", err)
		}
	}
	if cfg.APIToken == "" {
		path := filepath.Join(cfg.DataDir, devTokenFile)
		if cfg.APIToken, err = loadOrCreateToken(path); err != nil {
			return err
		}
		tokenFrom = path
	}
	if cfg.SecretKey == "" {
		if cfg.SecretKey, err = secret.LoadOrCreateKeyFile(filepath.Join(cfg.DataDir, devKeyFile)); err != nil {
			return fmt.Errorf("dev secret key: %w", err)
		}
	}
	banner := func(apiURL string) {
		fmt.Fprintf(e.stdout, "\nusersync dev is up\n  API          %s\n  API token    %s   (from %s)\n  Temporal UI  %s\n\n",
			apiURL, cfg.APIToken, tokenFrom, cfg.TemporalUIURL)
	}
	return serve(ctx, e, cfg, services{api: true, worker: true, banner: banner, loopbackHTTP: true})
}

// loadOrCreateToken reads the API token of dev from path, or generates one
// and writes it there, readable by the owner only.
func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("dev api token: %s is empty; delete it to get a new token", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("dev api token: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("dev api token: %w", err)
	}
	tok := newToken()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateToken(path) // another process just wrote it
	}
	if err != nil {
		return "", fmt.Errorf("dev api token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("dev api token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("dev api token: %w", err)
	}
	return tok, nil
}

// newToken is 32 random bytes, URL-safe base64: safe in a shell and a header.
func newToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // the OS random source does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
