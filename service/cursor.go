package service

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/usersync/usersync/secret"
)

// pickerCursors seals the group picker's provider cursors. A provider's
// cursor may be a URL (Graph's @odata.nextLink) that the provider package
// fetches with the profile's token: handed to clients as it is, a client
// could send back any URL and have the server fetch it. A sealed cursor is
// an HMAC-signed envelope the server made, for this profile, within
// cursorTTL: anything else is refused unread. (The search is not bound: a
// provider's cursor carries its own filter, and the admin page's script
// pages with whatever search box it has.)
type pickerCursors struct {
	key []byte
	now func() time.Time
}

// cursorTTL bounds a cursor's life: a picker page is read within minutes,
// and providers expire their own cursors too.
const cursorTTL = time.Hour

// newPickerCursors derives the key from the secret key, so that every API
// replica accepts the others' cursors; without a box (tests), a key of
// this process's own.
func newPickerCursors(box *secret.Box) *pickerCursors {
	c := &pickerCursors{now: time.Now}
	if box != nil {
		c.key = box.DeriveKey("usersync picker cursor v1")
	} else {
		c.key = make([]byte, 32)
		if _, err := rand.Read(c.key); err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
	}
	return c
}

type cursorEnvelope struct {
	Cursor string `json:"c"`
	Issued int64  `json:"t"`
}

func (c *pickerCursors) mac(profileID, body string) []byte {
	m := hmac.New(sha256.New, c.key)
	for _, part := range []string{"picker", profileID, body} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// seal wraps a provider cursor for a client.
func (c *pickerCursors) seal(profileID, cursor string) string {
	raw, _ := json.Marshal(cursorEnvelope{Cursor: cursor, Issued: c.now().Unix()}) //nolint:errchkjson // strings
	body := base64.RawURLEncoding.EncodeToString(raw)
	return body + "." + base64.RawURLEncoding.EncodeToString(c.mac(profileID, body))
}

var (
	errCursorForged  = errors.New("not a cursor this server made for this profile")
	errCursorExpired = errors.New("the cursor expired")
)

// open returns the provider cursor of a sealed one, or why it is refused.
func (c *pickerCursors) open(profileID, sealed string) (string, error) {
	body, sig, ok := cutLast(sealed, '.')
	if !ok {
		return "", errCursorForged
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, c.mac(profileID, body)) {
		return "", errCursorForged
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	var env cursorEnvelope
	if err != nil || json.Unmarshal(raw, &env) != nil || env.Cursor == "" {
		return "", errCursorForged
	}
	if age := c.now().Sub(time.Unix(env.Issued, 0)); age > cursorTTL || age < -time.Minute {
		return "", errCursorExpired
	}
	return env.Cursor, nil
}

func cutLast(s string, sep byte) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}
