package workflows

import (
	"strings"
	"testing"
)

// TestSummaryEscapesNames is issue 13's item 11: a profile named by
// whoever may edit it was written into the Temporal UI's Markdown summary
// and details as it was, so a name could render as a link or an image.
func TestSummaryEscapesNames(t *testing.T) {
	name := "[Sign in](https://evil.example) **now** <img src=x> `code`\n# Title"
	for _, got := range []string{
		RunSummary(name, "csv", "manual", false),
		RunDetails(name, "0f4e-11", "csv", "manual", "run-1", true),
	} {
		for _, raw := range []string{"[Sign in](", "**now**", "`code`", "\n# Title"} {
			if strings.Contains(got, raw) {
				t.Errorf("%q left %q as markup", got, raw)
			}
		}
		if strings.Contains(strings.ReplaceAll(got, `\<`, ""), "<img") {
			t.Errorf("%q left an HTML tag", got)
		}
		if !strings.Contains(got, `\[Sign in\]\(https://evil\.example\)`) {
			t.Errorf("%q does not show the name's characters", got)
		}
	}
	if got := RunDetails("People", "a-b`c", "csv", "manual", "r-1", false); !strings.Contains(got, "(`a-bc`)") ||
		!strings.Contains(got, "`r-1`") {
		t.Errorf("ids in code spans: %q", got)
	}
	if md("plain name 42") != "plain name 42" {
		t.Error("plain text changed")
	}
}
