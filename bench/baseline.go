package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/usersync/usersync/idpsim/graph"
)

// change makes share of the tenant's users change the way a working week
// does: 40% of the changes are attributes (a new department), 20% leavers,
// 20% joiners, 20% moves to another team. It returns how many it made.
func change(ten *graph.Tenant, share float64) (int, error) {
	users := ten.Users()
	total := max(int(float64(len(users))*share), 5)
	var leaves []graph.Group
	isGroup := map[string]bool{}
	groups := ten.Groups()
	for _, g := range groups {
		isGroup[g.ID] = true
	}
	for _, g := range groups {
		if g.Kind == graph.Security && len(g.Members) > 0 && !slices.ContainsFunc(g.Members, func(m string) bool { return isGroup[m] }) {
			leaves = append(leaves, g)
		}
	}
	if len(leaves) < 2 {
		return 0, fmt.Errorf("the tenant has fewer than two teams")
	}
	attrs, leavers, joiners := total*2/5, total/5, total/5
	moves := total - attrs - leavers - joiners
	step := max(len(users)/total, 1)
	i, made := 0, 0
	next := func() graph.User {
		u := users[(i*step+7)%len(users)]
		i++
		return u
	}
	for range attrs {
		u := next()
		if err := ten.UpdateUser(u.ID, func(x *graph.User) { x.Props["department"] = "Reorganised " + x.Props["department"].(string) }); err != nil {
			return made, err
		}
		made++
	}
	gone := make([]string, 0, leavers)
	for range leavers {
		gone = append(gone, next().ID)
	}
	if err := ten.DeleteUsers(gone...); err != nil {
		return made, err
	}
	made += len(gone)
	for j := range joiners {
		upn := fmt.Sprintf("joiner.%d@%s", j, ten.Domain)
		if _, err := ten.NewUser(graph.User{UserPrincipalName: upn, Mail: upn, GivenName: "Joiner", Surname: fmt.Sprint(j),
			AccountEnabled: true, Props: map[string]any{"department": "Sales", "jobTitle": "Associate"}}, leaves[j%len(leaves)].ID); err != nil {
			return made, err
		}
		made++
	}
	for j := range moves {
		from, to := leaves[j%len(leaves)], leaves[(j+1)%len(leaves)]
		cur, _ := ten.Group(from.ID)
		if len(cur.Members) == 0 {
			continue
		}
		if err := ten.MoveUser(cur.Members[j%len(cur.Members)], from.ID, to.ID); err != nil {
			return made, err
		}
		made++
	}
	return made, nil
}

// Baseline is the raw read-and-copy of the same pages.
type Baseline struct {
	Users int
	Wall  time.Duration
}

// UsersPerSecond is the baseline's throughput.
func (b Baseline) UsersPerSecond() float64 {
	if b.Wall <= 0 {
		return 0
	}
	return float64(b.Users) / b.Wall.Seconds()
}

// baselineUser is what the pipeline reads of a user, decoded by
// encoding/json.
type baselineUser struct {
	ID             string  `json:"id"`
	UPN            string  `json:"userPrincipalName"`
	GivenName      string  `json:"givenName"`
	Surname        string  `json:"surname"`
	Mail           string  `json:"mail"`
	AccountEnabled *bool   `json:"accountEnabled"`
	Department     *string `json:"department"`
	JobTitle       *string `json:"jobTitle"`
	Manager        []struct {
		ID      string          `json:"id"`
		Removed json.RawMessage `json:"@removed"`
	} `json:"manager@delta"`
}

// baseline reads the pages the pipeline's full sync reads for its users
// (the users delta function's initial round, with the same $select and
// the manager) with net/http and encoding/json, and copies each page into
// a table with COPY in a transaction of its own: the least a sync must do.
func (e *env) baseline(ctx context.Context, ten *graph.Tenant) (Baseline, error) {
	var b Baseline
	if _, err := e.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS bench_baseline (external_id TEXT, username TEXT,
  first_name TEXT, last_name TEXT, email TEXT, active BOOLEAN, manager_ref TEXT, attributes TEXT)`); err != nil {
		return b, err
	}
	if _, err := e.db.ExecContext(ctx, `TRUNCATE bench_baseline`); err != nil {
		return b, err
	}
	hc := e.simSrv.Client()
	start := time.Now()
	c := ten.Client()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {c.Secret},
		"scope": {"https://graph.microsoft.com/.default"}}
	resp, err := hc.PostForm(e.simSrv.URL+"/"+ten.ID+"/oauth2/v2.0/token", form)
	if err != nil {
		return b, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil {
		return b, err
	}
	next := e.simSrv.URL + "/v1.0/users/delta?" + url.Values{
		"$select": {"id,userPrincipalName,givenName,surname,mail,accountEnabled,department,jobTitle,manager"}}.Encode()
	for next != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return b, err
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := hc.Do(req)
		if err != nil {
			return b, err
		}
		var page struct {
			Next  string         `json:"@odata.nextLink"`
			Value []baselineUser `json:"value"`
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			return b, fmt.Errorf("baseline page: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return b, err
		}
		if err := e.copyPage(ctx, page.Value); err != nil {
			return b, err
		}
		b.Users += len(page.Value)
		next = page.Next
	}
	b.Wall = time.Since(start)
	return b, nil
}

func (e *env) copyPage(ctx context.Context, users []baselineUser) error {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after a commit it does nothing
	//lint:ignore SA1019 CopyIn quotes the names; the statement it builds is what pq's note suggests
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("bench_baseline", "external_id", "username", "first_name", "last_name",
		"email", "active", "manager_ref", "attributes"))
	if err != nil {
		return err
	}
	for _, u := range users {
		mgr := ""
		for _, m := range u.Manager {
			if m.Removed == nil {
				mgr = m.ID
			}
		}
		attrs, _ := json.Marshal(map[string]*string{"department": u.Department, "title": u.JobTitle}) //nolint:errchkjson // strings
		if _, err := stmt.ExecContext(ctx, u.ID, u.UPN, u.GivenName, u.Surname, u.Mail,
			u.AccountEnabled == nil || *u.AccountEnabled, mgr, string(attrs)); err != nil {
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	return tx.Commit()
}
