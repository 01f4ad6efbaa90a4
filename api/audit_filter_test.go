package api

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/directory"
)

// Issue 14: the audit log's action filter takes the names the admin page
// shows ("member added") and a last word ("created"), as well as the
// stored form.
func TestAuditActionFilterTakesWhatIsShown(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, a := range []string{"member_added", "group_member_added", "user_created", "profile_created", "member_removed"} {
			require.NoError(t, e.store.AddAudit(ctx, &directory.AuditEntry{Category: directory.CategorySync, Action: a}))
		}
		count := func(action string) int {
			t.Helper()
			m := e.do(http.MethodGet, "/api/v1/audit?action="+url.QueryEscape(action), nil).status(http.StatusOK)
			return len(m["items"].([]any))
		}
		assert.Equal(t, 2, count("member added"))
		assert.Equal(t, 2, count("Member-Added"))
		assert.Equal(t, 2, count("member_added"))
		assert.Equal(t, 1, count("group member added"))
		assert.Equal(t, 2, count("created"))
		assert.Equal(t, 1, count(" user  created "))
		assert.Equal(t, 0, count("reated"))
		assert.Equal(t, 5, count(""))
	})
}

func TestAuditActionWord(t *testing.T) {
	for in, want := range map[string]string{"member added": "member_added", "  Member-Added ": "member_added",
		"user_created": "user_created", "": "", "a__b": "a_b"} {
		assert.Equal(t, want, AuditActionWord(in), in)
	}
}
