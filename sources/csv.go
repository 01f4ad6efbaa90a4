package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/usersync/usersync/profile"
	"github.com/usersync/usersync/provider/csv"
)

func init() {
	Register(csv.Name, openCSV)
	RegisterSnapshot(csv.Name, snapshotCSV)
}

// snapshotCSV is the document a CSV run reads: the profile's uploaded
// document, or a copy of the remote file stored for the run (removed when
// it ends).
func snapshotCSV(ctx context.Context, env Env, t Target, runID string) (string, error) {
	c, ok := t.Config.Block.(*csv.Profile)
	if !ok {
		return "", errors.New("the profile has no csv block")
	}
	if c.Source == csv.SourceDocument {
		if _, err := env.Store.GetDocument(ctx, c.DocumentID); err != nil {
			return "", fmt.Errorf("csv document %s of profile %q: %w", c.DocumentID, t.Profile.Name, err)
		}
		return c.DocumentID, nil
	}
	var buf bytes.Buffer
	remote := csv.Remote{URL: c.URL, Username: c.Username, Password: c.Password, Client: env.HTTPClient,
		AllowHTTPLoopback: env.AllowHTTPLoopback}
	if _, err := remote.Download(ctx, &buf); err != nil {
		return "", &ProviderError{fmt.Errorf("download csv: %w", err)}
	}
	doc, err := env.Store.CreateDocument(ctx, "run-"+runID+".csv", "text/csv", &buf, csv.DefaultMaxSize)
	if err != nil {
		return "", fmt.Errorf("store csv copy: %w", err)
	}
	return doc.ID, nil
}

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
