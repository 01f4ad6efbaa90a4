package activities

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
)

// memDocs serves one in-memory document to a CSV source: "Test connection"
// reads a remote file without storing it.
type memDocs []byte

func (m memDocs) OpenDocument(_ context.Context, _ string, offset int64) (io.ReadCloser, error) {
	if offset > int64(len(m)) {
		offset = int64(len(m))
	}
	return nopCloser{bytes.NewReader(m[offset:])}, nil
}

// TestConnection is "Test connection" for a profile (the API's green or red
// light): the provider's cheapest read with the profile's credentials. A
// CSV is read and its header and first row checked; a remote CSV is
// downloaded but not stored.
func (a *Activities) TestConnection(ctx context.Context, p *directory.Profile, cfg *profile.Config) error {
	switch p.Provider {
	case profile.ProviderCSV:
		c := cfg.CSV
		if c == nil {
			return fmt.Errorf("the profile has no csv block")
		}
		if c.Source == "document" {
			src, err := csvConfig(cfg, c.DocumentID, a.PageSize).Open(a.Store)
			if err != nil {
				return err
			}
			return src.Test(ctx)
		}
		var buf bytes.Buffer
		remote := csv.Remote{URL: c.URL, Username: c.Username, Password: c.Password, Client: a.HTTPClient,
			AllowHTTPLoopback: a.AllowHTTPLoopback}
		if _, err := remote.Download(ctx, &buf); err != nil {
			return err
		}
		src, err := csvConfig(cfg, "remote", a.PageSize).Open(memDocs(buf.Bytes()))
		if err != nil {
			return err
		}
		return src.Test(ctx)
	}
	return fmt.Errorf("provider %q is not supported yet", p.Provider)
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
