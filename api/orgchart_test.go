package api

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Issue 14, item 3: a CSV profile that names a manager column has its org
// chart on, whatever populateOrgChart says; without the column it is as
// sent.
func TestCSVManagerFieldTurnsTheOrgChartOn(t *testing.T) {
	eachDialect(t, func(t *testing.T, e *env) {
		body := func(i int, manager string, orgChart any) map[string]any {
			b := map[string]any{"name": fmt.Sprintf("People %d", i), "provider": "csv",
				"csv": map[string]any{"url": "https://files.example.com/people.csv", "managerField": manager}}
			if orgChart != nil {
				b["populateOrgChart"] = orgChart
			}
			return b
		}
		for i, tc := range []struct {
			manager  string
			orgChart any
			want     bool
		}{
			{"manager", nil, true},
			{"boss", false, true},
			{"", nil, false},
			{"", true, true},
		} {
			m := e.do(http.MethodPost, "/api/v1/profiles", body(i, tc.manager, tc.orgChart)).status(http.StatusCreated)
			assert.Equal(t, tc.want, m["populateOrgChart"], "managerField %q, populateOrgChart %v", tc.manager, tc.orgChart)
			got := e.do(http.MethodGet, "/api/v1/profiles/"+m["id"].(string), nil).status(http.StatusOK)
			assert.Equal(t, tc.want, got["populateOrgChart"])
			assert.Equal(t, tc.want, e.storedConfig(m["id"].(string)).PopulateOrgChart)
		}
	})
}
