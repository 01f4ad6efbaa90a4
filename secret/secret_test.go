package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpenRoundTrip(t *testing.T) {
	b, err := NewBox(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal([]byte("s3cret-value"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "s3cret") {
		t.Fatalf("sealed value shows the plaintext: %q", sealed)
	}
	got, err := b.Open(sealed)
	if err != nil || !bytes.Equal(got, []byte("s3cret-value")) {
		t.Fatalf("open = %q, %v", got, err)
	}
	again, _ := b.Seal([]byte("s3cret-value"))
	if again == sealed {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
}

func TestOpenWithWrongKeyFails(t *testing.T) {
	a, _ := NewBox(GenerateKey())
	b, _ := NewBox(GenerateKey())
	sealed, _ := a.Seal([]byte("x"))
	if _, err := b.Open(sealed); err == nil {
		t.Fatal("opened with the wrong key")
	}
	if _, err := a.Open(sealed[:10]); err == nil {
		t.Fatal("opened a truncated value")
	}
}

func TestBadKeys(t *testing.T) {
	for _, k := range []string{"", "abc", "AAAA"} {
		if _, err := NewBox(k); err == nil {
			t.Errorf("NewBox(%q) accepted", k)
		}
	}
}

func TestLoadOrCreateKeyFileIsStable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d", "secret.key")
	k1, err := LoadOrCreateKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKeyFile(p)
	if err != nil || k1 != k2 {
		t.Fatalf("second load = %q, %v; want %q", k2, err, k1)
	}
	if _, err := NewBox(k1); err != nil {
		t.Fatal(err)
	}
}

func TestRotationOpensOldSealsNew(t *testing.T) {
	oldKey, newKey := GenerateKey(), GenerateKey()
	oldBox, _ := NewBox(oldKey)
	sealedOld, err := oldBox.Seal([]byte("client-secret"))
	if err != nil {
		t.Fatal(err)
	}

	// Without the old key the new box cannot read it, and says what to set.
	newOnly, _ := NewBox(newKey)
	if _, err := newOnly.Open(sealedOld); !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "USERSYNC_SECRET_KEY_OLD") {
		t.Fatalf("open without the old key: %v", err)
	}

	rot, err := NewBox(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rot.Open(sealedOld); err != nil || string(got) != "client-secret" {
		t.Fatalf("open old value: %q, %v", got, err)
	}
	sealedNew, err := rot.Seal([]byte("client-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oldBox.Open(sealedNew); err == nil {
		t.Fatal("a rotating box sealed with the old key")
	}
	if got, err := newOnly.Open(sealedNew); err != nil || string(got) != "client-secret" {
		t.Fatalf("new key cannot open a new seal: %q, %v", got, err)
	}
}

func TestResealIsIdempotent(t *testing.T) {
	oldKey, newKey := GenerateKey(), GenerateKey()
	oldBox, _ := NewBox(oldKey)
	sealedOld, _ := oldBox.Seal([]byte(`{"csv.password":"pw"}`))
	rot, _ := NewBox(newKey, oldKey)

	once, changed, err := rot.Reseal(sealedOld)
	if err != nil || !changed || once == sealedOld {
		t.Fatalf("first reseal: changed=%t err=%v", changed, err)
	}
	newOnly, _ := NewBox(newKey)
	if got, err := newOnly.Open(once); err != nil || string(got) != `{"csv.password":"pw"}` {
		t.Fatalf("resealed value: %q, %v", got, err)
	}
	twice, changed, err := rot.Reseal(once)
	if err != nil || changed || twice != once {
		t.Fatalf("second reseal changed=%t err=%v: not idempotent", changed, err)
	}
	if v, changed, err := rot.Reseal(""); v != "" || changed || err != nil {
		t.Fatalf("reseal of no secret: %q %t %v", v, changed, err)
	}

	stranger, _ := NewBox(GenerateKey())
	foreign, _ := stranger.Seal([]byte("x"))
	if v, changed, err := rot.Reseal(foreign); !errors.Is(err, ErrWrongKey) || changed || v != foreign {
		t.Fatalf("reseal of a value no key opens: %q %t %v", v, changed, err)
	}
}

func TestBadPreviousKeyIsNamedByPosition(t *testing.T) {
	_, err := NewBox(GenerateKey(), GenerateKey(), "not-a-key")
	if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "previous key 2") || strings.Contains(err.Error(), "not-a-key") {
		t.Fatalf("bad previous key: %v", err)
	}
}

func TestTamperedValueDoesNotOpen(t *testing.T) {
	b, _ := NewBox(GenerateKey(), GenerateKey())
	sealed, _ := b.Seal([]byte("value"))
	raw, _ := base64.StdEncoding.DecodeString(sealed)
	raw[len(raw)-1] ^= 1
	if _, err := b.Open(base64.StdEncoding.EncodeToString(raw)); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("tampered value: %v", err)
	}
	if _, err := b.Open(base64.StdEncoding.EncodeToString(raw[:8])); err == nil || errors.Is(err, ErrWrongKey) {
		t.Fatalf("short value: %v", err)
	}
}

func TestDeriveKey(t *testing.T) {
	k := GenerateKey()
	a, err := NewBox(k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewBox(k, GenerateKey())
	c, _ := NewBox(GenerateKey())
	if !bytes.Equal(a.DeriveKey("x"), b.DeriveKey("x")) {
		t.Error("the same key derives differently")
	}
	if bytes.Equal(a.DeriveKey("x"), a.DeriveKey("y")) || bytes.Equal(a.DeriveKey("x"), c.DeriveKey("x")) {
		t.Error("purposes or keys share a derived key")
	}
	if len(a.DeriveKey("x")) != 32 {
		t.Error("not 32 bytes")
	}
}
