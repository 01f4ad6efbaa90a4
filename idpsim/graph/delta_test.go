package graph

import (
	"net/http"
	"net/url"
	"testing"
)

// deltaRound follows a delta round from path to its deltaLink and returns
// every entry with the deltaLink.
func (f *simFixture) deltaRound(path string) ([]map[string]any, string) {
	f.t.Helper()
	var out []map[string]any
	for pages := 0; ; pages++ {
		status, body, _ := f.get(path)
		if status != http.StatusOK {
			f.t.Fatalf("GET %s: %d %v", path, status, body)
		}
		for _, v := range body["value"].([]any) {
			out = append(out, v.(map[string]any))
		}
		if next, ok := body["@odata.nextLink"].(string); ok {
			if _, both := body["@odata.deltaLink"]; both || pages > 10000 {
				f.t.Fatalf("page with both links or endless round: %v", body)
			}
			path = next
			continue
		}
		return out, body["@odata.deltaLink"].(string)
	}
}

func TestDeltaRounds(t *testing.T) {
	f := newSim(t, TenantOptions{Seed: 9, Users: 40, Groups: 5, Depth: 2})
	ten := f.ten

	// The initial rounds list everything: users, and groups with all their
	// direct members spread over pages of 7 entries.
	users, userLink := f.deltaRound("/v1.0/users/delta()?$select=id,givenName,accountEnabled&$expand=manager($select=id)&$top=7")
	if len(users) != 40 {
		t.Fatalf("initial users round: %d users", len(users))
	}
	groups, groupLink := f.deltaRound("/v1.0/groups/delta()?$select=id,displayName,members&$top=7")
	members := map[string]int{}
	for _, g := range groups {
		for _, m := range g["members@delta"].([]any) {
			if _, removed := m.(map[string]any)["@removed"]; removed {
				t.Fatalf("an initial round lists a removal: %v", g)
			}
			members[g["id"].(string)]++
		}
	}
	for _, g := range ten.Groups() {
		if members[g.ID] != len(g.Members) {
			t.Fatalf("group %s: %d members listed, %d in the tenant", g.DisplayName, members[g.ID], len(g.Members))
		}
	}

	// Nothing changed: empty rounds.
	if u, _ := f.deltaRound(userLink); len(u) != 0 {
		t.Fatalf("unchanged tenant, users delta %v", u)
	}

	// Changes: a rename, a leaver, a joiner, a move.
	all := ten.Users()
	g := ten.Groups()
	leaf := g[len(g)-1]
	must(t, ten.RenameUPN(all[3].ID, "renamed@x"))
	must(t, ten.DeleteUser(all[5].ID))
	joiner, err := ten.NewUser(User{UserPrincipalName: "new@x", GivenName: "N", Surname: "U", AccountEnabled: true}, leaf.ID)
	must(t, err)
	moved := leaf.Members[0]
	must(t, ten.RemoveMember(leaf.ID, moved))
	users, userLink2 := f.deltaRound(userLink)
	got := map[string]map[string]any{}
	for _, u := range users {
		got[u["id"].(string)] = u
	}
	if got[all[3].ID] == nil || got[all[3].ID]["@removed"] != nil || got[joiner] == nil || got[all[5].ID]["@removed"] == nil {
		t.Fatalf("users delta %v", users)
	}
	groups, _ = f.deltaRound(groupLink)
	var changes []map[string]any
	for _, gr := range groups {
		if gr["id"] == leaf.ID {
			for _, m := range gr["members@delta"].([]any) {
				changes = append(changes, m.(map[string]any))
			}
		}
	}
	added, removed := 0, 0
	for _, m := range changes {
		if m["@removed"] != nil {
			removed++
		} else {
			added++
		}
	}
	if added != 1 || removed < 1 {
		t.Fatalf("leaf group changes %v", changes)
	}
	if u, _ := f.deltaRound(userLink2); len(u) != 0 {
		t.Fatalf("second delta round not empty: %v", u)
	}

	// Sync from now, then expired tokens.
	status, body, _ := f.get("/v1.0/users/delta()?$deltatoken=latest&$select=id")
	if status != 200 || len(body["value"].([]any)) != 0 || body["@odata.deltaLink"] == nil {
		t.Fatalf("latest: %d %v", status, body)
	}
	f.sim.ExpireDeltaTokens()
	if status, body, _ := f.get(userLink2); status != http.StatusGone || errCode(body) != "syncStateNotFound" {
		t.Fatalf("expired token: %d %v", status, body)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeltaTracksManagersAsDocumented holds the simulator to the delta
// function's documentation: $expand and $top are ignored (pages are the
// server's size, no manager object), the manager comes as manager@delta
// when $select names it — for every user with one in an initial round,
// later only for a user whose manager changed, an @removed entry when it
// was unset — and an id filter tracks the given users only.
func TestDeltaTracksManagersAsDocumented(t *testing.T) {
	f := newSim(t, TenantOptions{Seed: 12, Users: 450, Groups: 3})
	ten := f.ten
	all := ten.Users()

	// $expand and $top are ignored: default page size, no "manager".
	status, body, _ := f.get("/v1.0/users/delta()?$select=id,department&$expand=manager($select=id)&$top=7")
	if status != 200 || len(body["value"].([]any)) != DefaultDeltaPageSize {
		t.Fatalf("first page: %d, %d users", status, len(body["value"].([]any)))
	}
	for _, v := range body["value"].([]any) {
		if _, ok := v.(map[string]any)["manager"]; ok {
			t.Fatalf("$expand honoured on delta: %v", v)
		}
	}

	users, link := f.deltaRound("/v1.0/users/delta()?$select=id,department,manager")
	withManager := 0
	for _, u := range users {
		md, ok := u["manager@delta"].([]any)
		if !ok {
			continue
		}
		withManager++
		if id := md[0].(map[string]any)["id"]; id == nil || md[0].(map[string]any)["@removed"] != nil {
			t.Fatalf("initial manager@delta %v", u)
		}
	}
	if len(users) != 450 || withManager != 449 {
		t.Fatalf("initial round: %d users, %d with manager@delta", len(users), withManager)
	}

	// A department change alone: listed without manager@delta. A new
	// manager: manager@delta names it. A cleared one: an @removed entry.
	must(t, ten.UpdateUser(all[10].ID, func(u *User) { u.Props["department"] = "Moved" }))
	must(t, ten.SetManager(all[11].ID, all[0].ID))
	must(t, ten.SetManager(all[12].ID, ""))
	users, _ = f.deltaRound(link)
	got := map[string]map[string]any{}
	for _, u := range users {
		got[u["id"].(string)] = u
	}
	if len(got) != 3 {
		t.Fatalf("changes %v", users)
	}
	if _, ok := got[all[10].ID]["manager@delta"]; ok {
		t.Fatalf("unchanged manager listed: %v", got[all[10].ID])
	}
	if md := got[all[11].ID]["manager@delta"].([]any); md[0].(map[string]any)["id"] != all[0].ID {
		t.Fatalf("changed manager: %v", got[all[11].ID])
	}
	if md := got[all[12].ID]["manager@delta"].([]any); md[0].(map[string]any)["@removed"] == nil ||
		md[0].(map[string]any)["id"] != all[12].ManagerID {
		t.Fatalf("removed manager: %v", got[all[12].ID])
	}

	// An id filter: an initial round of those users only, managers told.
	filter := url.QueryEscape("id eq '" + all[20].ID + "' or id eq '" + all[21].ID + "'")
	users, _ = f.deltaRound("/v1.0/users/delta()?$select=id,manager&$filter=" + filter)
	if len(users) != 2 || users[0]["manager@delta"] == nil {
		t.Fatalf("id filter: %v", users)
	}
	if status, body, _ := f.get("/v1.0/users/delta()?$filter=" + url.QueryEscape("department eq 'x'")); status != 400 {
		t.Fatalf("other filter: %d %v", status, body)
	}
}
