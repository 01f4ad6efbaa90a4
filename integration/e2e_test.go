package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
)

// apiClient talks to the API as a script would.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c *apiClient) do(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case *multipartBody:
		r, ct = b.buf, b.ct
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	req.Header.Set("Authorization", "Bearer "+c.token)
	if r != nil {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

type multipartBody struct {
	buf *bytes.Buffer
	ct  string
}

func csvUpload(name, content string) *multipartBody {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	f, _ := w.CreateFormFile("file", name)
	f.Write([]byte(content)) //nolint:errcheck
	w.Close()
	return &multipartBody{buf: &buf, ct: w.FormDataContentType()}
}

type runView struct {
	ID            string              `json:"id"`
	Status        string              `json:"status"`
	Phase         string              `json:"phase"`
	Error         string              `json:"error"`
	Counts        directory.RunCounts `json:"counts"`
	TemporalUIURL string              `json:"temporalUiUrl"`
}

// waitRun polls GET /runs/{id} until the run leaves running.
func (c *apiClient) waitRun(id string) runView {
	c.t.Helper()
	var r runView
	testenv.WaitFor(c.t, "run "+id+" to end", 2*time.Minute, func() (bool, string) {
		r = runView{}
		if st := c.do("GET", "/runs/"+id, nil, &r); st != 200 {
			c.t.Fatalf("GET run: %d", st)
		}
		return r.Status != directory.RunRunning, r.Status + " in " + r.Phase
	})
	return r
}

func (c *apiClient) users() map[string]directoryUser {
	c.t.Helper()
	var page struct {
		Items []directoryUser `json:"items"`
	}
	if st := c.do("GET", "/users?limit=1000", nil, &page); st != 200 {
		c.t.Fatalf("GET users: %d", st)
	}
	out := map[string]directoryUser{}
	for _, u := range page.Items {
		var full directoryUser
		c.do("GET", "/users/"+u.ID, nil, &full)
		out[u.Username] = full
	}
	return out
}

// TestEndToEndThroughTheAPI is the quickstart as a script runs it: upload
// a CSV, create a profile, sync, read users; change the CSV and sync again,
// and see updates, disables and re-enables in users, runs and audit.
func TestEndToEndThroughTheAPI(t *testing.T) {
	c := newStack(t, stackOptions{PageDelay: 150 * time.Millisecond, PageSize: 2}).api

	csv1 := "username,firstName,lastName,email,manager,groups\n" +
		"ann,Ann,Archer,ann@example.com,,Staff;Intranet Editors\n" +
		"ben,Ben,Baker,ben@example.com,ann,Staff\n" +
		"cat,Cat,Cole,cat@example.com,ann,Staff\n"
	var doc struct {
		ID     string `json:"id"`
		SHA256 string `json:"sha256"`
	}
	if st := c.do("POST", "/documents", csvUpload("people.csv", csv1), &doc); st != 201 && st != 200 {
		t.Fatalf("upload: %d", st)
	}
	profileBody := map[string]any{
		"name": "People", "provider": "csv",
		"csv": map[string]any{"source": "document", "documentId": doc.ID, "userMatchField": "username",
			"managerField": "manager", "defaultPassword": "Welcome-1", "groupsField": "groups"},
		"groupSync": map[string]any{"mode": "regex", "pattern": "^Intranet"}, "populateOrgChart": true,
	}
	var prof struct {
		ID                 string `json:"id"`
		DirectoryKey       string `json:"directoryKey"`
		CSV                map[string]any
		DefaultPasswordSet bool
	}
	if st := c.do("POST", "/profiles", profileBody, &prof); st != 201 {
		t.Fatalf("create profile: %d", st)
	}
	var light struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	if st := c.do("POST", "/profiles/"+prof.ID+"/test", nil, &light); st != 200 || !light.OK {
		t.Fatalf("test connection: %d %+v", st, light)
	}

	// First sync, and a second start while it runs: 409 with the run.
	var run runView
	if st := c.do("POST", "/profiles/"+prof.ID+"/sync", map[string]any{"dryRun": false}, &run); st != 202 {
		t.Fatalf("sync: %d", st)
	}
	var conflict struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if st := c.do("POST", "/profiles/"+prof.ID+"/sync", map[string]any{}, &conflict); st != 409 || conflict.Error.Code != "run_in_progress" {
		t.Fatalf("second sync: %d %+v", st, conflict)
	}
	run = c.waitRun(run.ID)
	if run.Status != directory.RunSucceeded || run.Counts.Created != 3 || run.Counts.ManagersLinked != 2 ||
		!strings.Contains(run.TemporalUIURL, "/namespaces/default/workflows/") {
		t.Fatalf("first run %+v", run)
	}
	u := c.users()
	if len(u) != 3 || u["ben"].ManagerID == nil || *u["ben"].ManagerID != u["ann"].ID ||
		len(u["ann"].Groups) != 1 || u["ann"].Groups[0] != "Intranet Editors" {
		t.Fatalf("users after the first run %+v", u)
	}

	// The CSV changes: Ben's name, Cat leaves.
	csv2 := "username,firstName,lastName,email,manager,groups\n" +
		"ann,Ann,Archer,ann@example.com,,Staff;Intranet Editors\n" +
		"ben,Ben,Brown,ben@example.com,ann,Staff\n"
	c.do("POST", "/documents", csvUpload("people2.csv", csv2), &doc)
	profileBody["csv"].(map[string]any)["documentId"] = doc.ID
	delete(profileBody["csv"].(map[string]any), "defaultPassword") // omitted secret: kept
	if st := c.do("PUT", "/profiles/"+prof.ID, profileBody, &prof); st != 200 {
		t.Fatalf("put profile: %d", st)
	}
	c.do("POST", "/profiles/"+prof.ID+"/sync", map[string]any{}, &run)
	run = c.waitRun(run.ID)
	if run.Status != directory.RunSucceeded || run.Counts.Updated != 1 || run.Counts.Disabled != 1 || run.Counts.Unchanged != 1 {
		t.Fatalf("second run %+v", run)
	}
	u = c.users()
	if u["ben"].LastName != "Brown" || u["cat"].Status != directory.StatusDisabled {
		t.Fatalf("users after the second run %+v", u)
	}
	var changes struct {
		Items []struct {
			Username string                           `json:"username"`
			Action   string                           `json:"action"`
			Changes  map[string]directory.FieldChange `json:"changes"`
		} `json:"items"`
	}
	c.do("GET", "/runs/"+run.ID+"/changes?action=updated", nil, &changes)
	if len(changes.Items) != 1 || changes.Items[0].Changes["lastName"].To != "Brown" {
		t.Fatalf("ledger %+v", changes)
	}

	// Cat returns.
	c.do("POST", "/documents", csvUpload("people3.csv", csv1), &doc)
	profileBody["csv"].(map[string]any)["documentId"] = doc.ID
	c.do("PUT", "/profiles/"+prof.ID, profileBody, &prof)
	c.do("POST", "/profiles/"+prof.ID+"/sync", map[string]any{}, &run)
	run = c.waitRun(run.ID)
	if run.Status != directory.RunSucceeded || run.Counts.Reenabled != 1 || run.Counts.Updated != 1 {
		t.Fatalf("third run %+v", run)
	}
	if c.users()["cat"].Status != directory.StatusActive {
		t.Fatal("cat not re-enabled")
	}

	// Runs and audit tell the story.
	var runs struct {
		Items []runView `json:"items"`
	}
	c.do("GET", "/runs?profileId="+prof.ID, nil, &runs)
	if len(runs.Items) != 3 {
		t.Fatalf("runs %+v", runs)
	}
	for _, action := range []string{"user_created", "user_updated", "user_disabled", "user_reenabled", "run_started", "run_finished"} {
		var audit struct {
			Items []struct {
				Category string `json:"category"`
			} `json:"items"`
		}
		c.do("GET", "/audit?category=UserSync&action="+action+"&profile=People", nil, &audit)
		if len(audit.Items) == 0 {
			t.Errorf("no audit entry %s", action)
		}
	}

	// A run cancelled in fetch disables nobody.
	c.do("POST", "/documents", csvUpload("people4.csv", "username,firstName,lastName,email\nzed,Zed,Zane,zed@example.com\n"+
		strings.Repeat("", 0)), &doc)
	profileBody["csv"].(map[string]any)["documentId"] = doc.ID
	profileBody["safety"] = map[string]any{"maxDisables": 100, "maxDisablePercent": 100}
	c.do("PUT", "/profiles/"+prof.ID, profileBody, &prof)
	c.do("POST", "/profiles/"+prof.ID+"/sync", map[string]any{}, &run)
	if st := c.do("POST", "/runs/"+run.ID+"/cancel", nil, nil); st != 202 {
		t.Fatalf("cancel: %d", st)
	}
	run = c.waitRun(run.ID)
	if run.Status != directory.RunCancelled {
		t.Fatalf("cancelled run %+v", run)
	}
	for name, u := range c.users() {
		if u.Status != directory.StatusActive {
			t.Errorf("%s disabled by a cancelled run", name)
		}
	}
}
