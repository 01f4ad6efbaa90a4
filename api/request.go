package api

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/profile"
)

const (
	// maxJSONBody caps every JSON request body.
	maxJSONBody = 1 << 20
	maxLimit    = 1000
)

// readBody reads a JSON request body of at most maxJSONBody bytes.
func readBody(c *gin.Context) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody))
}

// readJSON decodes the body strictly into v: unknown fields are a 400 that
// names them.
func readJSON(c *gin.Context, v any) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	return profile.DecodeJSON(body, v)
}

// readOptionalJSON is readJSON where an empty body means all defaults.
func readOptionalJSON(c *gin.Context, v any) error {
	body, err := readBody(c)
	if err != nil || len(body) == 0 {
		return err
	}
	return profile.DecodeJSON(body, v)
}

// listOptions reads ?limit= and ?cursor=. A limit over the maximum is cut
// to it, as API.md promises; one that is not a positive number is refused.
func listOptions(c *gin.Context) (directory.ListOptions, error) {
	opt := directory.ListOptions{Cursor: c.Query("cursor")}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return opt, errBadRequest("limit must be a whole number from 1 to %d", maxLimit)
		}
		opt.Limit = min(n, maxLimit)
	}
	return opt, nil
}

// oneOf checks an enumerated query parameter ("" always passes).
func oneOf(c *gin.Context, name string, allowed ...string) (string, error) {
	v := c.Query(name)
	if v == "" {
		return "", nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", errBadRequest("%s must be one of %v", name, allowed)
}

// mapPage converts the items of a page.
func mapPage[T, U any](p directory.Page[T], f func(*T) U) directory.Page[U] {
	out := directory.Page[U]{Items: make([]U, len(p.Items)), NextCursor: p.NextCursor}
	for i := range p.Items {
		out.Items[i] = f(&p.Items[i])
	}
	return out
}

// runJSON is a run as API.md shows it.
type runJSON struct {
	ID            string              `json:"id"`
	ProfileID     string              `json:"profileId"`
	ProfileName   string              `json:"profileName"`
	Trigger       string              `json:"trigger"`
	DryRun        bool                `json:"dryRun"`
	Status        string              `json:"status"`
	Phase         string              `json:"phase"`
	Counts        directory.RunCounts `json:"counts"`
	Error         string              `json:"error"`
	StartedAt     time.Time           `json:"startedAt"`
	FinishedAt    *time.Time          `json:"finishedAt"`
	WorkflowID    string              `json:"workflowId"`
	TemporalRunID string              `json:"temporalRunId"`
	TemporalUIURL string              `json:"temporalUiUrl"`
	// RevertOf is the run a revert (trigger "revert") reverts.
	RevertOf string `json:"revertOf,omitempty"`
}

func (s *server) runJSON(r *directory.Run) runJSON {
	out := runJSON{
		ID: r.ID, ProfileID: r.ProfileID, ProfileName: r.ProfileName, Trigger: r.Trigger,
		DryRun: r.DryRun, Status: r.Status, Phase: r.Phase, Counts: r.Counts, Error: r.Error,
		StartedAt: r.StartedAt.UTC(), WorkflowID: r.WorkflowID, TemporalRunID: r.TemporalRunID, RevertOf: r.RevertOf,
	}
	if r.FinishedAt != nil {
		f := r.FinishedAt.UTC()
		out.FinishedAt = &f
	}
	out.TemporalUIURL = s.svc.UIURL(r)
	return out
}
