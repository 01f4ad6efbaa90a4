// Package secret seals the secret fields of profiles (client secrets, API
// tokens, private keys, CSV passwords) with AES-256-GCM before they reach the
// database, so that a copy of the database alone reveals none of them.
//
// A Box may also hold previous keys. It always seals with the current key
// but opens with any of them, so that a key can be rotated without a
// downtime: deploy the new key with the old one beside it
// (USERSYNC_SECRET_KEY_OLD), re-encrypt what is stored (`usersync
// rotate-secrets`, built on Reseal), then drop the old key. GCM's
// authentication tag tells reliably which key a value was sealed with, so no
// key id needs to be stored with it.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrBadKey means the key is not base64 of 32 bytes.
var ErrBadKey = errors.New("secret key must be base64 of 32 bytes")

// Box seals with its current key and opens with the current or a previous key.
type Box struct {
	aead cipher.AEAD
	// previous are the keys a rotation replaces: they only open.
	previous []cipher.AEAD
	// root derives the keys of other purposes (DeriveKey): a one-way
	// function of the current key, so nothing derived can reveal it.
	root []byte
}

// DeriveKey returns a 32-byte key for purpose (e.g. "picker cursor"), the
// same in every process that has the same secret key, and unrelated to
// the key of any other purpose. It never seals anything: it is for MACs
// over values the server hands out and must recognise when they return.
func (b *Box) DeriveKey(purpose string) []byte {
	m := hmac.New(sha256.New, b.root)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// NewBox makes a Box from a base64-encoded 32-byte key (USERSYNC_SECRET_KEY)
// and, during a key rotation, the keys it replaces (USERSYNC_SECRET_KEY_OLD),
// which open values but never seal them. A bad previous key is named by its
// position (1 = the first), never by its value.
func NewBox(keyB64 string, previousB64 ...string) (*Box, error) {
	aead, err := newAEAD(keyB64)
	if err != nil {
		return nil, err
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(keyB64)) // checked by newAEAD
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("usersync derived keys v1"))
	b := &Box{aead: aead, root: m.Sum(nil)}
	for i, k := range previousB64 {
		old, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		b.previous = append(b.previous, old)
	}
	return b, nil
}

func newAEAD(keyB64 string) (cipher.AEAD, error) {
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
	return aead, nil
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

// ErrWrongKey means no key of the Box opens the value: it was sealed with a
// key the Box was not given, or it was altered.
var ErrWrongKey = errors.New("secret: cannot decrypt (wrong USERSYNC_SECRET_KEY, or a rotated key missing from USERSYNC_SECRET_KEY_OLD?)")

// Open decrypts what Seal made, with the current key or a previous one.
func (b *Box) Open(sealed string) ([]byte, error) {
	pt, _, err := b.open(sealed)
	return pt, err
}

// open decrypts sealed and reports whether the current key did it.
func (b *Box) open(sealed string) (pt []byte, current bool, err error) {
	if sealed == "" {
		return nil, true, nil
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return nil, false, fmt.Errorf("secret: decode: %w", err)
	}
	for i, aead := range append([]cipher.AEAD{b.aead}, b.previous...) {
		ns := aead.NonceSize()
		if len(raw) < ns+aead.Overhead() {
			return nil, false, errors.New("secret: sealed value too short")
		}
		if pt, err := aead.Open(nil, raw[:ns], raw[ns:], nil); err == nil {
			return pt, i == 0, nil
		}
	}
	return nil, false, ErrWrongKey
}

// Reseal returns sealed as the current key seals it, and whether that
// changed anything: a value the current key already opens comes back as it
// is, so re-encrypting everything twice is the same as doing it once.
func (b *Box) Reseal(sealed string) (string, bool, error) {
	pt, current, err := b.open(sealed)
	if err != nil || current {
		return sealed, false, err
	}
	out, err := b.Seal(pt)
	if err != nil {
		return sealed, false, err
	}
	return out, true, nil
}
