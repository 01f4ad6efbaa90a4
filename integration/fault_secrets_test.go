package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
	"github.com/usersync/usersync/workflows"
)

// recordingAPI calls the API and keeps every response body, to be searched
// for secrets afterwards.
type recordingAPI struct {
	t     *testing.T
	base  string
	token string
	seen  bytes.Buffer
}

func (c *recordingAPI) call(method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+"/api/v1"+path, r)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(&c.seen, "%s %s -> %d %s\n", method, path, resp.StatusCode, raw)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

func (c *recordingAPI) waitRun(id string) map[string]any {
	c.t.Helper()
	var r map[string]any
	testenv.WaitFor(c.t, "run "+id+" to end", 2*time.Minute, func() (bool, string) {
		r = nil
		c.call("GET", "/runs/"+id, nil, &r)
		return r["status"] != directory.RunRunning, fmt.Sprint(r["status"])
	})
	return r
}

// historyText is everything Temporal keeps of the profile's runs: every
// event of every execution as JSON, and, decoded, the data of every payload
// in them (which JSON shows only as base64).
func (e *faultEnv) historyText() string {
	e.t.Helper()
	var out strings.Builder
	list, err := e.temporal.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = %q", workflows.WorkflowID(e.profile.ID))})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(list.GetExecutions()) == 0 {
		e.t.Fatal("no workflow execution of the profile")
	}
	for _, ex := range list.GetExecutions() {
		it := e.temporal.GetWorkflowHistory(e.ctx, ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId(),
			false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				e.t.Fatal(err)
			}
			j, _ := protojson.Marshal(ev)
			out.Write(j)
			out.WriteByte('\n')
			payloadData(ev.ProtoReflect(), &out)
		}
	}
	return out.String()
}

// payloadData appends the data and metadata of every Payload inside m.
func payloadData(m protoreflect.Message, out *strings.Builder) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		out.Write(p.GetData())
		out.WriteByte('\n')
		for k, v := range p.GetMetadata() {
			fmt.Fprintf(out, "%s=%s\n", k, v)
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				payloadData(v.List().Get(i).Message(), out)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				payloadData(mv.Message(), out)
				return true
			})
		case fd.Message() != nil && !fd.IsMap() && !fd.IsList():
			payloadData(v.Message(), out)
		}
		return true
	})
}

// databaseText is every row of every table of the test database as JSON:
// audit log, ledger, runs, profiles (their sealed secrets included), …
func (e *faultEnv) databaseText() string {
	e.t.Helper()
	var tables []string
	if err := e.db.SelectContext(e.ctx, &tables, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`); err != nil {
		e.t.Fatal(err)
	}
	var out strings.Builder
	for _, tbl := range tables {
		var rows []string
		if err := e.db.SelectContext(e.ctx, &rows, `SELECT row_to_json(t)::text FROM `+strconv.Quote(tbl)+` t`); err != nil {
			e.t.Fatal(err)
		}
		for _, r := range rows {
			out.WriteString(tbl + ": " + r + "\n")
		}
	}
	return out.String()
}

// TestSecretsNeverLeak runs a remote CSV profile with a download password
// and a default password through the API and a worker (both processes,
// logging at debug level): create, test the connection, read, sync, save,
// a wrong password that fails the test and a run. Then it searches every
// API response, both processes' logs, every row of the database and every
// event and payload of the runs' Temporal histories: no secret may be
// anywhere in clear.
func TestSecretsNeverLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	const (
		remotePassword  = "Remote-pw-7f1e2a"
		defaultPassword = "Default-pw-93bc0d"
		wrongPassword   = "Wrong-pw-51aa3e"
	)
	files := newCSVServer(t, "sync-reader", remotePassword)
	files.set(peopleCSV(0, 40, never, never), serveOK, 0)
	tmp := testenv.StartDevServer(t)
	e := newFaultEnv(t, tmp.Client, tmp.Address)
	e.workerEnv = []string{"SSL_CERT_FILE=" + trustFile(t, files.srv.Certificate()), "USERSYNC_LOG_LEVEL=debug"}
	port := freePort(t)
	apiProc := e.startProcess("api", []string{"USERSYNC_API_TOKEN=leak-token-0123456789abcdef0123456789", "USERSYNC_LISTEN=127.0.0.1:" + strconv.Itoa(port)}, "api")
	worker := e.startWorker("worker", 0)
	c := &recordingAPI{t: t, base: "http://127.0.0.1:" + strconv.Itoa(port), token: "leak-token-0123456789abcdef0123456789"}
	testenv.WaitFor(t, "the api to be ready", time.Minute, func() (bool, string) {
		resp, err := http.Get(c.base + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})

	body := map[string]any{
		"name": "Leak check", "provider": "csv",
		"csv": map[string]any{"source": "remote", "url": files.srv.URL + "/people.csv", "username": "sync-reader",
			"password": remotePassword, "userMatchField": "username", "managerField": "manager", "groupsField": "groups",
			"defaultPassword": defaultPassword, "columnMap": map[string]string{"department": "department"}},
		"groupSync": map[string]any{"mode": "all"}, "populateOrgChart": true,
	}
	var prof struct {
		ID  string         `json:"id"`
		CSV map[string]any `json:"csv"`
	}
	if st := c.call("POST", "/profiles", body, &prof); st != http.StatusCreated {
		t.Fatalf("create profile: %d\n%s", st, c.seen.String())
	}
	if prof.CSV["passwordSet"] != true || prof.CSV["defaultPasswordSet"] != true {
		t.Fatalf("the profile does not say its secrets are set: %v", prof.CSV)
	}
	e.profile = &directory.Profile{ID: prof.ID}
	var light struct {
		OK bool `json:"ok"`
	}
	if c.call("POST", "/profiles/"+prof.ID+"/test", nil, &light); !light.OK {
		t.Fatalf("test connection failed:\n%s", c.seen.String())
	}
	c.call("GET", "/profiles/"+prof.ID, nil, nil)
	c.call("GET", "/profiles", nil, nil)

	var run struct {
		ID string `json:"id"`
	}
	c.call("POST", "/profiles/"+prof.ID+"/sync", map[string]any{"dryRun": false}, &run)
	if r := c.waitRun(run.ID); r["status"] != directory.RunSucceeded {
		t.Fatalf("sync: %v", r)
	}
	c.call("GET", "/runs/"+run.ID+"/changes?limit=1000", nil, nil)
	c.call("GET", "/users?limit=1000", nil, nil)
	c.call("GET", "/audit?limit=1000", nil, nil)

	// A save that omits the secrets keeps them; then a wrong password:
	// the test connection and a run fail, and say why without it.
	delete(body["csv"].(map[string]any), "password")
	delete(body["csv"].(map[string]any), "defaultPassword")
	body["populateOrgChart"] = false
	if st := c.call("PUT", "/profiles/"+prof.ID, body, nil); st != http.StatusOK {
		t.Fatalf("save: %d", st)
	}
	body["csv"].(map[string]any)["password"] = wrongPassword
	c.call("PUT", "/profiles/"+prof.ID, body, nil)
	if c.call("POST", "/profiles/"+prof.ID+"/test", nil, &light); light.OK {
		t.Fatal("test connection passed with a wrong password")
	}
	c.call("POST", "/profiles/"+prof.ID+"/sync", map[string]any{}, &run)
	if r := c.waitRun(run.ID); r["status"] != directory.RunFailed {
		t.Fatalf("sync with a wrong password: %v", r)
	}
	c.call("GET", "/runs?limit=1000", nil, nil)
	c.call("GET", "/audit?limit=1000", nil, nil)

	// Stop both processes so that their logs are complete.
	sigterm(t, apiProc)
	sigterm(t, worker)

	places := map[string]string{
		"api responses":    c.seen.String(),
		"api log":          apiProc.Log(),
		"worker log":       worker.Log(),
		"database":         e.databaseText(),
		"temporal history": e.historyText(),
	}
	// Each place must show what it is known to hold, so that an empty
	// search cannot pass for a clean one.
	for place, known := range map[string]string{
		"api responses": "sync-reader", "api log": "api listening", "worker log": "worker polling",
		"database": "Leak check", "temporal history": run.ID,
	} {
		if !strings.Contains(places[place], known) {
			t.Fatalf("%s lacks %q: the search would prove nothing", place, known)
		}
	}
	for place, text := range places {
		for _, s := range []string{remotePassword, defaultPassword, wrongPassword, e.key} {
			if i := strings.Index(text, s); i >= 0 {
				t.Errorf("%s shows a secret: …%s…", place, text[max(0, i-200):min(len(text), i+len(s)+50)])
			}
		}
	}
}
