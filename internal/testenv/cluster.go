package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	_ "github.com/lib/pq" // the local PostgreSQL that holds the cluster's databases
)

// ClusterServices are the Temporal services a Cluster runs, one process
// each, in the order they start.
var ClusterServices = []string{"history", "matching", "frontend", "worker"}

// Cluster is a real Temporal server as production runs it: the server
// built from source (`make temporal-server`), its schema set up by
// deploy/temporal/setup-schema.sh in two fresh PostgreSQL databases
// (persistence and SQL visibility), and its four services started as
// separate processes from deploy/temporal/config, the same files
// docker-compose.yml runs. It stops, and its databases go, with the test.
type Cluster struct {
	Address string
	Client  client.Client
	// With ClusterOptions.MTLS: the CA that signed the frontend's and the
	// clients' certificates, the name the frontend's carries, and a client
	// certificate and key the frontend accepts (PEM files).
	CAFile, ServerName, ClientCert, ClientKey string

	t    testing.TB
	env  []string
	logs string

	mu    sync.Mutex
	procs map[string]*clusterProc
	// portEnv is each process's own ports, set apart from env so that a
	// process that died while the cluster started can come back on new
	// ones.
	portEnv map[string][]string
	revived int
}

type clusterProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	// stopping is set before the test itself stops the process.
	stopping bool
}

// ClusterBinary is bin/<name> (temporal-server, temporal-sql-tool).
func ClusterBinary(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(RepoRoot(), "bin", name)
	_, err := os.Stat(path)
	Need(t, "the Temporal server (make temporal-server)", err)
	return path
}

// ClusterOptions vary a cluster.
type ClusterOptions struct {
	// MTLS makes the frontend require a client certificate of a CA made
	// for the test.
	MTLS bool
	// OneProcess runs the four services in one process: a quicker start
	// for tests that restart none of them.
	OneProcess bool
}

// StartCluster sets up and starts a cluster with the namespace default.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return StartClusterWith(t, ClusterOptions{})
}

// StartClusterWith is StartCluster with options.
func StartClusterWith(t testing.TB, opt ClusterOptions) *Cluster {
	t.Helper()
	server := ClusterBinary(t, "temporal-server")
	sqlTool := ClusterBinary(t, "temporal-sql-tool")
	admin, err := sql.Open("postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	Need(t, "PostgreSQL on 127.0.0.1:5432", admin.Ping())
	name := "tcluster_" + randomHex(t)
	t.Cleanup(func() {
		for _, db := range []string{name, name + "_visibility"} {
			if _, err := admin.Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"); err != nil {
				t.Logf("drop %s: %v", db, err)
			}
		}
		admin.Close()
	})
	c := &Cluster{t: t, procs: map[string]*clusterProc{}, portEnv: map[string][]string{}, logs: t.TempDir()}
	frontend := strconv.Itoa(freeLoopbackPort(t))
	c.Address = "127.0.0.1:" + frontend
	c.env = append(os.Environ(),
		"TEMPORAL_DB="+name, "TEMPORAL_VISIBILITY_DB="+name+"_visibility",
		"TEMPORAL_DB_HOST=127.0.0.1", "TEMPORAL_DB_PORT=5432", "TEMPORAL_DB_USER=postgres",
		"TEMPORAL_SQL_TOOL="+sqlTool,
		// Every process reads the frontend's port: it is the address the
		// system worker and the cluster metadata name.
		"TEMPORAL_FRONTEND_PORT="+frontend,
		"TEMPORAL_DYNAMIC_CONFIG="+filepath.Join(RepoRoot(), "deploy", "temporal", "dynamicconfig.yaml"),
		// Small pools: tests in other packages run clusters, dev servers
		// and usersync processes on the same PostgreSQL at once, and its
		// max_connections (100 by default) is shared by all of them; the
		// production defaults (20 + 10 per service) would exhaust it.
		"TEMPORAL_DB_MAX_CONNS=4", "TEMPORAL_VISIBILITY_MAX_CONNS=2",
	)
	var tlsConf *tls.Config
	if opt.MTLS {
		dir := t.TempDir()
		ca := NewTestCA(t)
		c.ServerName = "frontend.cluster.test"
		write := func(name string, data []byte) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		c.CAFile = write("ca.pem", ca.PEM)
		cert, key := ca.Issue(t, c.ServerName)
		serverCert, serverKey := write("server.pem", cert), write("server.key", key)
		cert, key = ca.Issue(t, "usersync")
		c.ClientCert, c.ClientKey = write("client.pem", cert), write("client.key", key)
		c.env = append(c.env, "TEMPORAL_SERVER_TLS_CERT="+serverCert, "TEMPORAL_SERVER_TLS_KEY="+serverKey,
			"TEMPORAL_SERVER_TLS_CLIENT_CA="+c.CAFile, "TEMPORAL_SERVER_TLS_NAME="+c.ServerName)
		pair, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca.PEM)
		tlsConf = &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: c.ServerName}
	}
	setup := exec.Command("sh", filepath.Join(RepoRoot(), "deploy", "temporal", "setup-schema.sh"))
	setup.Env = c.env
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("set up the schema: %v\n%s", err, tail(string(out), 4096))
	}
	if opt.OneProcess {
		c.portEnv["all"] = c.newPorts(ClusterServices...)
		c.start(server, "all", ClusterServices...)
	} else {
		for _, svc := range ClusterServices {
			c.portEnv[svc] = c.newPorts(svc)
			c.start(server, svc, svc)
		}
	}
	t.Cleanup(c.stopAll)
	// Registered after stopAll, so it runs first: the services' logs are
	// what explains a failure anywhere in the test.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("temporal cluster logs:\n%s", c.Logs())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var tc client.Client
	WaitFor(t, "the cluster's frontend on "+c.Address, 2*time.Minute, func() (bool, string) {
		c.reviveStarting()
		tc, err = client.DialContext(ctx, client.Options{HostPort: c.Address, Namespace: "default", Logger: QuietLogger(),
			ConnectionOptions: client.ConnectionOptions{TLS: tlsConf}})
		if err != nil {
			return false, err.Error() + "\n" + c.Logs()
		}
		return true, ""
	})
	t.Cleanup(tc.Close)
	_, err = tc.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: "default", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("register namespace default: %v", err)
	}
	// The frontends learn of a new namespace on their next refresh.
	WaitFor(t, "namespace default served", time.Minute, func() (bool, string) {
		c.reviveStarting()
		_, err := tc.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default"})
		return err == nil, fmt.Sprint(err) + c.exited()
	})
	// The frontend answers before it has found matching in the
	// membership ring ("Not enough hosts to serve the request"): a task
	// queue's description is served by matching.
	WaitFor(t, "matching reachable through the frontend", 2*time.Minute, func() (bool, string) {
		c.reviveStarting()
		_, err := tc.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: "cluster-probe"}})
		return err == nil, fmt.Sprint(err) + c.exited()
	})
	c.Client = tc
	return c
}

func (c *Cluster) start(server, name string, services ...string) {
	c.t.Helper()
	args := []string{"--root", RepoRoot(), "--config", "deploy/temporal/config", "--env", "usersync", "--allow-no-auth", "start"}
	for _, svc := range services {
		args = append(args, "--service", svc)
	}
	cmd := exec.Command(server, args...)
	cmd.Dir = RepoRoot()
	c.mu.Lock()
	cmd.Env = append(slices.Clone(c.env), c.portEnv[name]...)
	c.mu.Unlock()
	out, err := os.OpenFile(filepath.Join(c.logs, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start temporal %s: %v", name, err)
	}
	p := &clusterProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
}

// newPorts picks the ports of services (all but the frontend's gRPC port,
// which clients already know) as environment for their process.
func (c *Cluster) newPorts(services ...string) []string {
	c.t.Helper()
	var env []string
	for _, svc := range services {
		up := strings.ToUpper(svc)
		if svc != "frontend" {
			env = append(env, "TEMPORAL_"+up+"_PORT="+strconv.Itoa(freeLoopbackPort(c.t)))
		} else {
			env = append(env, "TEMPORAL_FRONTEND_HTTP_PORT="+strconv.Itoa(freeLoopbackPort(c.t)))
		}
		env = append(env, "TEMPORAL_"+up+"_MEMBERSHIP_PORT="+strconv.Itoa(freeLoopbackPort(c.t)))
	}
	return env
}

// reviveStarting starts again, on new ports, a process that died before
// the cluster served its first request, at most three times in all. CI
// saw matching exit during start-up on a loaded machine (a port another
// process took between freeLoopbackPort and the bind, or a start-up
// deadline); what the test exercises is the cluster once it runs, so a
// start-up death is logged with its reason, not failed on.
func (c *Cluster) reviveStarting() {
	c.t.Helper()
	for name := range c.exitedUnasked() {
		if c.revived >= 3 {
			return
		}
		c.revived++
		log, err := c.readLog(name)
		if err != nil {
			log = err.Error()
		}
		c.t.Logf("temporal %s exited while the cluster started; starting it again on new ports. its log ends:\n%s",
			name, tail(log, 4096))
		services := []string{name}
		if name == "all" {
			services = ClusterServices
		}
		ports := c.newPorts(services...)
		c.mu.Lock()
		c.portEnv[name] = ports
		c.mu.Unlock()
		c.start(ClusterBinary(c.t, "temporal-server"), name, services...)
	}
}

// readLog is a process's log so far.
func (c *Cluster) readLog(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(c.logs, name+".log"))
	return string(data), err
}

// Restart stops a service with sig, waits for it to be gone, and starts
// it again on the same ports and databases.
func (c *Cluster) Restart(svc string, sig syscall.Signal) {
	c.t.Helper()
	c.mu.Lock()
	p := c.procs[svc]
	p.stopping = true
	c.mu.Unlock()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	c.start(ClusterBinary(c.t, "temporal-server"), svc, svc)
}

func (c *Cluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range append([]string{"all"}, ClusterServices...) {
		if p := c.procs[name]; p != nil {
			p.stopping = true
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// exited names the services that ended without the test stopping them,
// for a wait's failure message.
func (c *Cluster) exited() string {
	var b strings.Builder
	for name, state := range c.exitedUnasked() {
		fmt.Fprintf(&b, "\ntemporal %s exited: %v", name, state)
	}
	return b.String()
}

// exitedUnasked is the processes that exited without the test stopping
// them, with how they ended.
func (c *Cluster) exitedUnasked() map[string]*os.ProcessState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*os.ProcessState{}
	for name, p := range c.procs {
		select {
		case <-p.done:
			if !p.stopping {
				out[name] = p.cmd.ProcessState
			}
		default:
		}
	}
	return out
}

// Logs is the end of every service's log, for a failure message.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, svc := range append([]string{"all"}, ClusterServices...) {
		log, err := c.readLog(svc)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "--- temporal %s ---\n%s\n", svc, tail(log, 8192))
	}
	b.WriteString(c.exited())
	return b.String()
}

// freeLoopbackPort is a TCP port free on 127.0.0.1 a moment ago, below
// 32768: the server records its services' ports in a smallint column
// (cluster_membership), which the kernel's ephemeral ports overflow.
func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	for range 1000 {
		port := 20000 + mrand.IntN(12000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port below 32768 on 127.0.0.1")
	return 0
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
