package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/usersync/usersync/idpsim/graph"
)

// idpSimulator is one simulated identity provider that `usersync idpsim`
// can serve on its own address. The command owns --<name>-listen; the
// simulator registers the rest of its flags (all named --<name>-…) and,
// once they are parsed, builds its handler and prints what a profile needs
// to reach it. A second provider is one more entry in idpSimulators.
type idpSimulator struct {
	name          string // flag prefix
	defaultListen string // "" = off unless asked for
	flags         func(fs *flag.FlagSet) (build func(baseURL string, w io.Writer) (http.Handler, error))
}

func idpSimulators() []idpSimulator {
	return []idpSimulator{graphSimulator(), oktaSimulator()}
}

func runIdpsim(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("usersync idpsim", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: usersync idpsim [flags]")
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), "Serves simulated identity providers for demos, tests and benchmarks, and prints")
		fmt.Fprintln(fs.Output(), "the values to put in a profile. An empty --<provider>-listen turns one off.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	type entry struct {
		sim    idpSimulator
		listen *string
		build  func(string, io.Writer) (http.Handler, error)
	}
	var sims []entry
	for _, s := range idpSimulators() {
		listen := fs.String(s.name+"-listen", s.defaultListen, "address of the "+s.name+" simulator (\"\" = off)")
		sims = append(sims, entry{sim: s, listen: listen, build: s.flags(fs)})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "usersync idpsim: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	errc := make(chan error, len(sims))
	var servers []*http.Server
	for _, s := range sims {
		if *s.listen == "" {
			continue
		}
		ln, err := net.Listen("tcp", *s.listen)
		if err != nil {
			return fmt.Errorf("listen on %s (--%s-listen): %w", *s.listen, s.sim.name, err)
		}
		h, err := s.build("http://"+displayAddr(ln.Addr().String()), e.stdout)
		if err != nil {
			ln.Close()
			return fmt.Errorf("%s simulator: %w", s.sim.name, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s simulator: %w", s.sim.name, err)
			}
		}()
	}
	if len(servers) == 0 {
		return errors.New("nothing to serve: every --<provider>-listen is empty")
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(sctx)
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// graphSimulator is a simulated Microsoft Entra ID: Microsoft Graph and
// its token endpoint, any number of tenants on one address.
func graphSimulator() idpSimulator {
	return idpSimulator{name: "graph", defaultListen: "127.0.0.1:8081", flags: func(fs *flag.FlagSet) func(string, io.Writer) (http.Handler, error) {
		var (
			o       graph.TenantOptions
			seed    = fs.Uint64("graph-seed", 1, "seed of the generated tenants: the same seed, the same users, groups and ids")
			tenants = fs.Int("graph-tenants", 1, "number of tenants, each with its own id, credentials and users")
			f       graph.Faults
			life    = fs.Duration("graph-token-lifetime", 3599*time.Second, "lifetime of issued access tokens")
		)
		fs.IntVar(&o.Users, "graph-users", 1000, "users per tenant")
		fs.IntVar(&o.Groups, "graph-groups", 20, "security groups per tenant, nested under the group \"All Staff\"")
		fs.IntVar(&o.Depth, "graph-depth", 2, "levels of group nesting below \"All Staff\"")
		fs.Float64Var(&o.DisabledShare, "graph-disabled-share", 0.02, "share of users with accountEnabled false")
		fs.Float64Var(&o.OutOfScopeShare, "graph-out-of-scope-share", 0.03, "share of users in no security group")
		fs.IntVar(&o.MailEnabledSecurityGroups, "graph-mail-enabled-groups", 2, "mail-enabled security groups per tenant")
		fs.IntVar(&o.Microsoft365Groups, "graph-m365-groups", 2, "Microsoft 365 groups per tenant (never in a picker)")
		fs.IntVar(&o.DistributionGroups, "graph-distribution-groups", 2, "distribution groups per tenant (never in a picker)")
		fs.Float64Var(&f.ThrottleShare, "graph-throttle-share", 0, "fault: share of Graph requests answered 429")
		fs.DurationVar(&f.RetryAfter, "graph-retry-after", time.Second, "fault: Retry-After of those 429s (sent as fractional seconds)")
		fs.Float64Var(&f.ErrorShare, "graph-error-share", 0, "fault: share of Graph requests answered 503 or 504")
		fs.DurationVar(&f.Latency, "graph-latency", 0, "fault: delay added to every Graph request")
		fs.Float64Var(&f.EmptyPageShare, "graph-empty-page-share", 0, "fault: share of list pages sent empty with a nextLink")
		return func(baseURL string, w io.Writer) (http.Handler, error) {
			switch {
			case o.Users < 0 || o.Groups < 0 || *tenants < 1:
				return nil, errors.New("--graph-users and --graph-groups must not be negative, --graph-tenants at least 1")
			case o.Depth < 1:
				return nil, errors.New("--graph-depth must be at least 1")
			}
			sim := graph.New(graph.Options{Seed: *seed, TokenLifetime: *life, Faults: f})
			fmt.Fprintf(w, "\nSimulated Microsoft Entra ID (Graph v1.0) on %s\n", baseURL)
			for i := range *tenants {
				to := o
				to.Seed = *seed + uint64(i)
				t := sim.AddTenant(to)
				printGraphTenant(w, baseURL, t)
			}
			fmt.Fprintf(w, "\n  Tenants and credentials as JSON: GET %s/_sim/tenants\n", baseURL)
			fmt.Fprintf(w, "  Change a tenant between syncs: PATCH %s/_sim/tenants/{tenant}/users/{id} {\"accountEnabled\": false},\n", baseURL)
			fmt.Fprintf(w, "  DELETE …/users/{id}, POST …/users, PATCH …/groups/{id} {\"displayName\": …}, PUT|DELETE …/groups/{id}/members/{id},\n")
			fmt.Fprintf(w, "  PUT %s/_sim/faults {\"throttleShare\": 0.3, \"retryAfter\": \"250ms\"}\n\n", baseURL)
			return sim, nil
		}
	}}
}

// printGraphTenant prints the azure block of a profile for a tenant, ready
// to paste, and the group to select.
func printGraphTenant(w io.Writer, baseURL string, t *graph.Tenant) {
	c := t.Client()
	block, _ := json.Marshal(map[string]string{ //nolint:errchkjson // strings only
		"tenantId": t.ID, "clientId": c.ID, "clientSecret": c.Secret,
		"authorityUrl": baseURL, "graphBaseUrl": baseURL + "/v1.0",
	})
	kinds := map[graph.GroupKind]int{}
	for _, g := range t.Groups() {
		kinds[g.Kind]++
	}
	fmt.Fprintf(w, "\n  Tenant %s: %d users, %d security groups (+%d mail-enabled security, %d Microsoft 365, %d distribution)\n",
		t.Domain, len(t.Users()), kinds[graph.Security], kinds[graph.MailEnabledSecurity], kinds[graph.Microsoft365], kinds[graph.Distribution])
	fmt.Fprintf(w, "    \"azure\": %s\n", strings.ReplaceAll(string(block), `","`, `", "`))
	if root, ok := t.GroupByName("All Staff"); ok {
		fmt.Fprintf(w, "    \"groups\": [%q]   (All Staff: every user in a security group)\n", root.ID)
	}
}
