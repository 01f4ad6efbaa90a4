package integration

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usersync/usersync/directory"
	"github.com/usersync/usersync/internal/testenv"
)

// chromiumPath finds Debian's chromium (USERSYNC_CHROMIUM overrides). Under
// CI a missing browser fails the test: .ci/run installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("USERSYNC_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			testenv.Need(t, "chromium (apt-get install chromium)", err)
		}
		path = p
	}
	return path
}

// screenshotDir is where the test leaves its screenshots: USERSYNC_ARTIFACTS
// when set (CI keeps that folder), else a new folder under $TMPDIR; the
// test prints it either way, and never deletes it.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("USERSYNC_ARTIFACTS")
	if dir != "" {
		dir = filepath.Join(dir, "admin-browser")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "usersync-admin-browser-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// TestAdminPageInBrowser is issue 7's walk through the admin page in
// headless Chromium, against the real API, store, worker and Temporal: sign
// in, upload a CSV, create a CSV profile, Test connection is green, Save
// and sync, the run page reaches succeeded, the users page lists the
// synced people. A screenshot of each step is kept.
func TestAdminPageInBrowser(t *testing.T) {
	ctx := context.Background()
	// Small pages with a pause each: the run lasts long enough for the run
	// page to show it going.
	st := newStack(t, stackOptions{PageSize: 5, PageDelay: 300 * time.Millisecond, Admin: true})
	srv, store, token := st.srv, st.store, st.token

	people := filepath.Join(testenv.RepoRoot(), "examples", "people.csv")
	usernames := csvColumn(t, people, "username")

	b := startBrowser(t)
	browser := b.ctx
	shot, do, submit, text, html, expect := b.shot, b.do, b.submit, b.text, b.html, b.expect

	// 1. Sign in with the API token.
	do("open", chromedp.Navigate(srv.URL+"/profiles"), chromedp.WaitVisible(chromedp.CSS("#token")))
	shot("signin")
	do("type token", chromedp.SendKeys(chromedp.CSS("#token"), token))
	submit("sign in", "main form button[type=submit]")
	expect("signed in", text("main h1"), "Profiles")
	shot("profiles-empty")

	// 2. Upload the CSV.
	do("documents", chromedp.Navigate(srv.URL+"/documents"), chromedp.WaitVisible(chromedp.CSS("#f-file")),
		chromedp.SetUploadFiles(chromedp.CSS("#f-file"), []string{people}))
	submit("upload", "form.upload button[type=submit]")
	expect("uploaded", text(".notice"), "Document uploaded.")
	expect("document listed", text("main table"), "people.csv")
	shot("document-uploaded")
	docs, err := store.ListDocuments(ctx, directory.ListOptions{})
	if err != nil || len(docs.Items) != 1 {
		t.Fatalf("documents: %v %+v", err, docs.Items)
	}

	// 3. Create a CSV profile that reads it.
	const defaultPassword = "Welcome-2-usersync!"
	do("new profile", chromedp.Navigate(srv.URL+"/profiles/new"), chromedp.WaitVisible(chromedp.CSS(".choices")))
	submit("choose csv", `a[href="/profiles/new?provider=csv"]`)
	do("fill profile",
		chromedp.WaitVisible(chromedp.CSS("#f-name")),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "People CSV"),
		chromedp.SetValue(chromedp.CSS("#f-csv-documentId"), docs.Items[0].ID),
		chromedp.SendKeys(chromedp.CSS("#f-csv-managerField"), "manager"),
		chromedp.SendKeys(chromedp.CSS("#f-csv-groupsField"), "groups"),
		chromedp.SendKeys(chromedp.CSS("#f-csv-defaultPassword"), defaultPassword),
		chromedp.SendKeys(chromedp.CSS("#attr-from-0"), "department"),
		chromedp.SendKeys(chromedp.CSS("#attr-to-0"), "department"),
		// The org chart box is left unticked: the manager column turns it
		// on (issue 14, item 3).
		chromedp.Click(chromedp.CSS("#gs-all")),
	)
	shot("new-csv-profile")
	submit("save profile", `button[name="action"][value="save"]`)
	expect("created", text(".notice"), "Profile created.")
	expect("org chart on", text("#f-populateOrgChart-hint"), "On, because the manager column manager is set")
	if on, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.querySelector("#f-populateOrgChart").checked`)); err != nil || !on {
		shot("FAILED-org-chart")
		t.Fatalf("the org chart box is not ticked after saving a manager column (%v)", err)
	}
	shot("profile-created")
	if h := html(); strings.Contains(h, defaultPassword) {
		t.Fatal("the default password is in the editor's HTML")
	}

	// 4. Test connection: the light is green.
	submit("test connection", `button[name="action"][value="test"]`)
	do("green light", chromedp.WaitVisible(chromedp.CSS(".test-result .light.ok")))
	expect("test message", text(".test-result"), "connection works")
	shot("test-connection-green")

	// 5. Save and sync: a notice links to the run that started.
	submit("save and sync", `button[name="action"][value="sync"]`)
	expect("sync notice", text(".notice"), "a sync started")
	shot("sync-started")
	submit("open run", ".notice a")

	// 6. The run page follows the run live, then shows it succeeded.
	deadline := time.Now().Add(2 * time.Minute)
	sawLive := false
	for {
		status, _ := chromedp.Run(browser, chromedp.Evaluate[string](
			`(document.querySelector('[data-run-field="status"] .badge') || {}).textContent || ""`))
		live, _ := chromedp.Run(browser, chromedp.Evaluate[bool](`!!document.querySelector("[data-run-status-url]")`))
		if live && !sawLive && strings.TrimSpace(status) == "running" {
			sawLive = true
			shot("run-live")
		}
		// The page reloads itself when the run ends: the final page has
		// no live marker.
		if strings.TrimSpace(status) == directory.RunSucceeded && !live {
			break
		}
		if s := strings.TrimSpace(status); s == directory.RunFailed || s == directory.RunBlocked || s == directory.RunCancelled {
			shot("FAILED-run")
			t.Fatalf("the run ended %s: %s", s, text(".run-state"))
		}
		if time.Now().After(deadline) {
			shot("FAILED-run-wait")
			t.Fatalf("the run page did not reach succeeded (status %q)", status)
		}
		time.Sleep(300 * time.Millisecond)
	}
	expect("created count", text(`[data-count="created"]`), fmt.Sprint(len(usernames)))
	expect("managers linked", text(`[data-count="managersLinked"]`), fmt.Sprint(len(usernames)-1))
	expect("ledger", text("table.ledger"), "created")
	expect("temporal link", html(), "http://localhost:8233/namespaces/default/workflows/")
	shot("run-succeeded")
	if !sawLive {
		t.Log("the run ended before the run page showed it running; no live screenshot")
	}

	// 7. The users page lists the synced people.
	do("users", chromedp.Navigate(srv.URL+"/users"), chromedp.WaitVisible(chromedp.CSS("main table")))
	list := text("main table")
	for _, u := range usernames {
		expect("users list", list, u)
	}
	shot("users")
	// At an ordinary laptop width the groups column is in view, not cut
	// off behind a horizontal scroll.
	do("users at 1024", chromedp.EmulateViewport(1024, 768), chromedp.Navigate(srv.URL+"/users"),
		chromedp.WaitVisible(chromedp.CSS("main table")))
	if cut, err := chromedp.Run(browser, chromedp.Evaluate[bool](
		`(function () { var w = document.querySelector("main .table-wrap"); return w.scrollWidth > w.clientWidth + 1; })()`)); err != nil || cut {
		shot("FAILED-users-1024")
		t.Fatalf("the users table is wider than a 1024 px window (%v)", err)
	}
	shot("users-1024")
	do("back to 1280", chromedp.EmulateViewport(1280, 900))

	p, err := store.ListProfiles(ctx, directory.ListOptions{})
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("profiles: %v", err)
	}
	profileID := p.Items[0].ID
	userID := func(name string) string {
		t.Helper()
		page, err := store.ListUsers(ctx, directory.UserFilter{Query: name}, directory.ListOptions{})
		if err != nil || len(page.Items) != 1 {
			t.Fatalf("user %s: %v %+v", name, err, page.Items)
		}
		return page.Items[0].ID
	}

	// 8. (Issue 14, items 4 and 5.) The provider blanks a user's email:
	// the next run skips the user, its page says why, and the profile's
	// health page shows the user still active with the old data.
	blanked := filepath.Join(t.TempDir(), "people-blanked.csv")
	writeBlankedEmail(t, people, blanked, "rpatel")
	do("documents again", chromedp.Navigate(srv.URL+"/documents"), chromedp.WaitVisible(chromedp.CSS("#f-file")),
		chromedp.SetUploadFiles(chromedp.CSS("#f-file"), []string{blanked}))
	submit("upload blanked", "form.upload button[type=submit]")
	docs, err = store.ListDocuments(ctx, directory.ListOptions{})
	if err != nil || len(docs.Items) != 2 {
		t.Fatalf("documents: %v %+v", err, docs.Items)
	}
	newDoc := docs.Items[0].ID
	if docs.Items[0].Name != "people-blanked.csv" {
		newDoc = docs.Items[1].ID
	}
	do("editor", chromedp.Navigate(srv.URL+"/profiles/"+profileID), chromedp.WaitVisible(chromedp.CSS("#f-csv-documentId")),
		chromedp.SetValue(chromedp.CSS("#f-csv-documentId"), newDoc))
	submit("save and sync again", `button[name="action"][value="sync"]`)
	expect("second sync notice", text(".notice"), "a sync started")
	submit("open second run", ".notice a")
	waitRunPage(t, browser, shot, directory.RunSucceeded)
	expect("skipped count", text(`[data-count="skipped"]`), "1")
	expect("skipped users", text("#skipped"), "rpatel")
	expect("skipped reason", text("#skipped"), "email")
	shot("run-skipped-users")
	do("health", chromedp.Navigate(srv.URL+"/profiles/"+profileID+"/health"), chromedp.WaitVisible(chromedp.CSS("#health-stale")))
	expect("stale user", text("#health-stale"), "rpatel")
	expect("stale user active", text("#health-stale"), "active")
	expect("credentials", text("#credentials"), "working")
	shot("health")

	// 9. (Items 2 and 4.) Disable a user after a confirmation: it leaves
	// its groups' lists and counts.
	okafor := userID("dokafor")
	do("user page", chromedp.Navigate(srv.URL+"/users/"+okafor), chromedp.WaitVisible(chromedp.CSS("#user-disable")))
	submit("disable", "#user-disable")
	expect("disable confirmation", text("main"), "Disable dokafor?")
	shot("confirm-disable")
	submit("confirm disable", "main form button[type=submit]")
	expect("disabled", text(".notice"), "User disabled")
	sales, err := store.ListGroups(ctx, "Sales", directory.ListOptions{})
	if err != nil || len(sales.Items) == 0 {
		t.Fatalf("group Sales: %v", err)
	}
	do("group page", chromedp.Navigate(srv.URL+"/groups/"+sales.Items[0].ID), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if members := text("main"); strings.Contains(members, "dokafor") && !strings.Contains(members, "Show the 1 disabled member") {
		shot("FAILED-group-disabled")
		t.Fatalf("a disabled user is listed in its group: %s", members)
	}
	expect("disabled member hidden", text("#members-filter"), "Show the 1 disabled member too")
	shot("group-without-disabled")

	// 10. (Item 1.) With the licence full, enabling the user again is
	// refused on its page, with the reason; with room, it is enabled.
	active, err := store.CountActiveUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	do("licence", chromedp.Navigate(srv.URL+"/licence"), chromedp.WaitVisible(chromedp.CSS("#f-limit")),
		chromedp.SetValue(chromedp.CSS("#f-limit"), fmt.Sprint(active)))
	submit("save licence", "main form button[type=submit]")
	expect("licence saved", text(".notice"), "Licence limit saved.")
	do("user page again", chromedp.Navigate(srv.URL+"/users/"+okafor), chromedp.WaitVisible(chromedp.CSS("#user-enable")))
	submit("enable", "#user-enable")
	submit("confirm enable", "main form button[type=submit]")
	expect("licence refusal", text("#user-error"), "Not enabled: cannot enable dokafor: the licence allows")
	shot("enable-refused-by-licence")
	do("licence off", chromedp.Navigate(srv.URL+"/licence"), chromedp.WaitVisible(chromedp.CSS("#f-limit")),
		chromedp.SetValue(chromedp.CSS("#f-limit"), "0"))
	submit("save licence off", "main form button[type=submit]")
	do("user page once more", chromedp.Navigate(srv.URL+"/users/"+okafor), chromedp.WaitVisible(chromedp.CSS("#user-enable")))
	submit("enable again", "#user-enable")
	submit("confirm enable again", "main form button[type=submit]")
	expect("enabled", text(".notice"), "User enabled.")

	// 11. Delete a user after a confirmation.
	submit("delete", "#user-delete")
	expect("delete confirmation", text("main"), "Delete dokafor?")
	submit("confirm delete", "main form button[type=submit]")
	expect("deleted", text(".notice"), "User deleted.")
	if _, err := store.GetUser(ctx, okafor); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("the deleted user is still there: %v", err)
	}

	// 12. Reset last run without a schedule says why nothing was reset.
	do("editor for reset", chromedp.Navigate(srv.URL+"/profiles/"+profileID), chromedp.WaitVisible(chromedp.CSS("#reset-last-run button")))
	submit("reset last run", "#reset-last-run button")
	expect("reset explained", text(".notice"), "Nothing was reset: this profile has no schedule")
	shot("reset-without-schedule")

	// 13. (Issue 19.) Revert the first run, which created everyone: the
	// run page's button shows a preview (nothing changes), whose page asks
	// for the confirmation and offers to pause the schedule; the revert
	// then disables whom the run created (dokafor, deleted since, is a
	// conflict) and pauses the profile.
	runsOf, err := store.ListRuns(ctx, directory.RunFilter{ProfileID: profileID}, directory.ListOptions{Limit: 100})
	if err != nil || len(runsOf.Items) < 2 {
		t.Fatalf("runs: %v %+v", err, runsOf.Items)
	}
	firstRun := runsOf.Items[len(runsOf.Items)-1]
	activeBefore, err := store.CountActiveUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	do("first run", chromedp.Navigate(srv.URL+"/runs/"+firstRun.ID), chromedp.WaitVisible(chromedp.CSS("#revert-preview")))
	submit("preview revert", "#revert-preview")
	expect("preview notice", text(".notice"), "Preview of the revert")
	waitRunPage(t, browser, shot, directory.RunSucceeded)
	expect("confirmation", text("#revert-confirm"), "Revert run "+firstRun.ID+"?")
	expect("next sync warning", text("#revert-confirm"), "The next sync of the profile would re-apply the provider's state")
	expect("preview ledger", text("table.ledger"), "disabled")
	expect("preview conflict", text("table.ledger"), "deleted after the run")
	shot("revert-preview")
	if n, err := store.CountActiveUsers(ctx); err != nil || n != activeBefore {
		t.Fatalf("the preview changed the directory: %d active users, %d before (%v)", n, activeBefore, err)
	}
	submit("confirm revert", "#revert-apply")
	expect("revert notice", text(".notice"), "The revert started")
	waitRunPage(t, browser, shot, directory.RunSucceeded)
	expect("reverts", text(".page-head"), "Reverts of run "+firstRun.ID)
	expect("disabled count", text(`[data-count="disabled"]`), fmt.Sprint(len(usernames)-1))
	if c := strings.TrimSpace(text(`[data-count="conflicts"]`)); c == "0" {
		shot("FAILED-revert-conflicts")
		t.Fatal("the revert counts no conflict: dokafor was deleted after the run")
	}
	shot("revert-done")
	if n, err := store.CountActiveUsers(ctx); err != nil || n != activeBefore-(len(usernames)-1) {
		t.Fatalf("after the revert %d users are active, want %d (%v)", n, activeBefore-(len(usernames)-1), err)
	}
	if pp, err := store.GetProfile(ctx, profileID); err != nil || pp.Enabled {
		t.Fatalf("the revert did not pause the profile: %v %+v", err, pp)
	}

	// The same pages on a phone-sized window stay usable (no horizontal
	// page overflow apart from the scrolling tables).
	do("narrow", chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.URL+"/profiles"),
		chromedp.WaitVisible(chromedp.CSS("main table")))
	shot("profiles-narrow")
	overflow, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil {
		t.Fatal(err)
	}
	if overflow {
		shot("FAILED-narrow-overflow")
		t.Fatal("the profiles page is wider than a 390 px window")
	}
	do("narrow editor", chromedp.Navigate(srv.URL+"/profiles/"+profileID), chromedp.WaitVisible(chromedp.CSS("#f-name")))
	shot("editor-narrow")
	if h := html(); strings.Contains(h, defaultPassword) {
		t.Fatal("the default password is in the editor's HTML")
	}
}

// writeBlankedEmail copies a CSV file with the email of one user blanked,
// as a provider that lost it would send it.
func writeBlankedEmail(t *testing.T, from, to, username string) {
	t.Helper()
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	user, email := slices.Index(rows[0], "username"), slices.Index(rows[0], "email")
	for _, r := range rows[1:] {
		if r[user] == username {
			r[email] = ""
		}
	}
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(out)
	if err := w.WriteAll(rows); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitRunPage waits until the open run page shows the run ended with
// want, the page no longer live.
func waitRunPage(t *testing.T, browser context.Context, shot func(string), want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		status, _ := chromedp.Run(browser, chromedp.Evaluate[string](
			`(document.querySelector('[data-run-field="status"] .badge') || {}).textContent || ""`))
		live, _ := chromedp.Run(browser, chromedp.Evaluate[bool](`!!document.querySelector("[data-run-status-url]")`))
		s := strings.TrimSpace(status)
		if s == want && !live {
			return
		}
		if s == directory.RunFailed || s == directory.RunBlocked || s == directory.RunCancelled {
			shot("FAILED-run")
			t.Fatalf("the run ended %s", s)
		}
		if time.Now().After(deadline) {
			shot("FAILED-run-wait")
			t.Fatalf("the run page did not reach %s (status %q)", want, s)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// csvColumn reads one column of a CSV file.
func csvColumn(t *testing.T, path, column string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("read %s: %v", path, errors.Join(err, errors.New("no rows")))
	}
	col := -1
	for i, h := range rows[0] {
		if h == column {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("%s has no column %s", path, column)
	}
	var out []string
	for _, r := range rows[1:] {
		out = append(out, r[col])
	}
	return out
}
