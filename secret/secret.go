// Package secret seals the secret fields of profiles (client secrets, API
// tokens, private keys, CSV passwords) with AES-256-GCM before they reach the
// database, so that a copy of the database alone reveals none of them.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrBadKey means the key is not base64 of 32 bytes.
var ErrBadKey = errors.New("secret key must be base64 of 32 bytes")

// Box seals and opens values with one key.
type Box struct {
	aead cipher.AEAD
}

// NewBox makes a Box from a base64-encoded 32-byte key (USERSYNC_SECRET_KEY).
func NewBox(keyB64 string) (*Box, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keyB64))
	if err != nil || len(key) != 32 {
		return nil, ErrBadKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Box{aead: aead}, nil
}

// GenerateKey returns a new random key in the form NewBox takes.
func GenerateKey() string {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		panic(err) // the OS random source does not fail on supported systems
	}
	return base64.StdEncoding.EncodeToString(k[:])
}

// LoadOrCreateKeyFile reads a key from path, creating it (mode 0600) with a
// new key when missing: the dev key of `usersync dev`.
func LoadOrCreateKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read secret key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create key folder: %w", err)
	}
	k := GenerateKey()
	if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write secret key: %w", err)
	}
	return k, nil
}

// Seal encrypts plaintext; the result is base64 of nonce||ciphertext. An
// empty plaintext seals to "" so that "no secret" stays visible as such.
func (b *Box) Seal(plaintext []byte) (string, error) {
	if len(plaintext) == 0 {
		return "", nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secret: nonce: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, plaintext, nil)
	return base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal made.
func (b *Box) Open(sealed string) ([]byte, error) {
	if sealed == "" {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return nil, fmt.Errorf("secret: decode: %w", err)
	}
	ns := b.aead.NonceSize()
	if len(raw) < ns {
		return nil, errors.New("secret: sealed value too short")
	}
	pt, err := b.aead.Open(nil, raw[:ns], raw[ns:], nil)
	if err != nil {
		return nil, errors.New("secret: cannot decrypt (wrong USERSYNC_SECRET_KEY?)")
	}
	return pt, nil
}
