package secret

import (
	"bytes"
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
