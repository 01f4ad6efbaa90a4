package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	oktasim "github.com/usersync/usersync/idpsim/okta"
)

// oktaSimulator is a simulated Okta org: the management API usersync reads
// (and the calls that change an org), SSWS and OAuth service-app
// authentication, Okta's paging and rate limits. It is off unless
// --okta-listen names an address.
func oktaSimulator() idpSimulator {
	return idpSimulator{name: "okta", flags: func(fs *flag.FlagSet) func(string, io.Writer) (http.Handler, error) {
		var (
			cfg    oktasim.Config
			limits = map[string]*int{}
		)
		fs.Int64Var(&cfg.Seed, "okta-seed", 1, "seed of the generated org: the same seed, the same users, groups and ids")
		fs.IntVar(&cfg.Users, "okta-users", 1000, "users of the org, in every Okta status")
		fs.StringVar(&cfg.Domain, "okta-domain", "example.com", "domain of the users' logins and emails")
		fs.StringVar(&cfg.APIToken, "okta-api-token", oktasim.DefaultAPIToken, "the SSWS API token the org accepts")
		fs.DurationVar(&cfg.Window, "okta-rate-window", time.Minute, "rate-limit window (Okta's is a minute)")
		for _, f := range []string{oktasim.FamilyUsers, oktasim.FamilyGroups, oktasim.FamilyApps, oktasim.FamilyLogs} {
			limits[f] = fs.Int("okta-rate-"+f, oktasim.DefaultRateLimits[f], "requests to /api/v1/"+f+" per window before 429 E0000047")
		}
		fs.Float64Var(&cfg.ServerErrorRate, "okta-error-share", 0, "fault: share of requests answered 500")
		fs.DurationVar(&cfg.Latency, "okta-latency", 0, "fault: delay added to every request")
		fs.DurationVar(&cfg.LogLag, "okta-log-lag", 0, "System Log: how long after its published time an event becomes readable")
		fs.BoolVar(&cfg.FilterIncludesDeprovisioned, "okta-filter-deprovisioned", false,
			"/api/v1/users?filter= includes DEPROVISIONED users, as Okta documents (default: only when the filter asks for that status)")
		return func(baseURL string, w io.Writer) (http.Handler, error) {
			switch {
			case cfg.Users < 1:
				return nil, errors.New("--okta-users must be at least 1")
			case cfg.Window <= 0:
				return nil, errors.New("--okta-rate-window must be positive")
			case cfg.ServerErrorRate < 0 || cfg.ServerErrorRate > 1:
				return nil, errors.New("--okta-error-share must be between 0 and 1")
			case cfg.LogLag < 0:
				return nil, errors.New("--okta-log-lag must not be negative")
			}
			cfg.RateLimits = map[string]int{}
			for f, n := range limits {
				if *n < 0 {
					return nil, fmt.Errorf("--okta-rate-%s must not be negative", f)
				}
				cfg.RateLimits[f] = *n
			}
			sim := oktasim.New(cfg)
			printOktaOrg(w, baseURL, sim)
			return sim, nil
		}
	}}
}

// printOktaOrg prints the okta block of a profile for the org, ready to
// paste, and the groups to select.
func printOktaOrg(w io.Writer, baseURL string, sim *oktasim.Server) {
	block, _ := json.Marshal(map[string]string{"orgUrl": baseURL, "apiToken": sim.APIToken(), "appId": sim.AppID()}) //nolint:errchkjson // strings only
	types := map[string]int{}
	var depts []string
	for _, g := range sim.Groups() {
		types[g.Type]++
		for _, d := range oktasim.Departments {
			if g.Name == d {
				depts = append(depts, g.ID)
			}
		}
	}
	scope, _ := json.Marshal(depts) //nolint:errchkjson // strings only
	fmt.Fprintf(w, "\nSimulated Okta org on %s\n", baseURL)
	fmt.Fprintf(w, "\n  %d users, %d groups (%d OKTA_GROUP, %d APP_GROUP, %d BUILT_IN), %d of them assigned to the app\n",
		len(sim.Users()), types[oktasim.GroupOkta]+types[oktasim.GroupApp]+types[oktasim.GroupBuiltIn],
		types[oktasim.GroupOkta], types[oktasim.GroupApp], types[oktasim.GroupBuiltIn], len(sim.AppGroups()))
	fmt.Fprintf(w, "    \"okta\": %s\n", strings.ReplaceAll(string(block), `","`, `", "`))
	fmt.Fprintf(w, "    \"groups\": %s   (the %d departments: every user)\n", strings.ReplaceAll(string(scope), `","`, `", "`), len(depts))
	fmt.Fprintf(w, "\n  Org, token and groups as JSON: GET %s/_sim/org\n", baseURL)
	fmt.Fprintf(w, "  Change the org between syncs with Okta's own calls (Authorization: SSWS <apiToken>):\n")
	fmt.Fprintf(w, "  POST %s/api/v1/users/{id}/lifecycle/suspend (or deactivate, unsuspend, activate),\n", baseURL)
	fmt.Fprintf(w, "  POST …/api/v1/users/{id} {\"profile\": {\"login\": …}}, PUT|DELETE …/api/v1/groups/{id}/users/{userId}\n")
	fmt.Fprintf(w, "  PUT %s/_sim/faults {\"serverErrorRate\": 0.1, \"latency\": \"200ms\", \"logLag\": \"5s\", \"lateEvents\": 1, \"lateBy\": \"10m\"},\n", baseURL)
	fmt.Fprintf(w, "  PUT …/_sim/rate-limits {\"users\": 60}\n\n")
}
