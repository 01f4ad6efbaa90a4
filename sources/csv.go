package sources

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
)

func init() { Register(csv.Name, openCSV) }

// csvConfig is the CSV source's configuration for a profile. A CSV's
// provider attributes are its columns, so the profile's attributeMap adds to
// the columnMap (which wins where both name a column).
func csvConfig(cfg *profile.Config, c *csv.Profile, documentID string, pageSize int) csv.Config {
	cols := make(map[string]string, len(c.ColumnMap)+len(cfg.AttributeMap))
	for k, v := range cfg.AttributeMap {
		cols[k] = v
	}
	for k, v := range c.ColumnMap {
		cols[k] = v
	}
	return csv.Config{DocumentID: documentID, UserMatchField: c.UserMatchField, ManagerField: c.ManagerField,
		DefaultPassword: c.DefaultPassword, ColumnMap: cols, Delimiter: c.Delimiter, GroupsField: c.GroupsField,
		PageSize: pageSize}
}

// openCSV reads the run's snapshot when there is one; otherwise (test
// connection, the picker) the profile's document, or the remote file
// downloaded into memory and not stored.
func openCSV(ctx context.Context, env Env, t Target) (*Opened, error) {
	c, ok := t.Config.Block.(*csv.Profile)
	if !ok {
		return nil, errors.New("the profile has no csv block")
	}
	var docs csv.DocumentReader = env.Store
	docID := t.DocumentID
	if docID == "" {
		docID = c.DocumentID
		if c.Source != csv.SourceDocument {
			var buf bytes.Buffer
			remote := csv.Remote{URL: c.URL, Username: c.Username, Password: c.Password, Client: env.HTTPClient,
				AllowHTTPLoopback: env.AllowHTTPLoopback}
			if _, err := remote.Download(ctx, &buf); err != nil {
				return nil, err
			}
			docs, docID = memDocs(buf.Bytes()), "remote"
		}
	}
	src, err := csvConfig(t.Config, c, docID, env.PageSize).Open(docs)
	if err != nil {
		return nil, err
	}
	return &Opened{Source: src, DefaultPassword: src.DefaultPassword(), Passwords: true, FoldIDs: true, UserGroups: true,
		Validate: func(ctx context.Context) (map[int]string, error) {
			rep, err := src.Validate(ctx)
			if err != nil {
				return nil, err
			}
			return rep.DuplicateLines(), nil
		}}, nil
}

// memDocs serves one in-memory document.
type memDocs []byte

func (m memDocs) OpenDocument(_ context.Context, _ string, offset int64) (io.ReadCloser, error) {
	offset = min(max(offset, 0), int64(len(m)))
	return io.NopCloser(bytes.NewReader(m[offset:])), nil
}
