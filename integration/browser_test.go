package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium driven through the admin page, with the
// steps a walk is made of: each failure leaves a screenshot of where the
// page was, in the walk's screenshot folder.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
	n     int
}

// startBrowser starts Chromium for the length of t (failing under CI
// without it, as chromiumPath says).
func startBrowser(t *testing.T) *browser {
	t.Helper()
	chromium := chromiumPath(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	// The first action starts the browser, and lives as long as it does:
	// no timeout on it (see chromedp.Run).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium %s: %v", chromium, err)
	}
	return &browser{t: t, ctx: ctx, shots: screenshotDir(t)}
}

// shot saves a screenshot of the whole page, numbered in walk order.
func (b *browser) shot(name string) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	// From the top, so the sticky bar is where a person sees it.
	_, _ = chromedp.Run(sctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.n++
	if err := os.WriteFile(filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name)), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// do runs the steps of one stage with a deadline.
func (b *browser) do(stage string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		b.shot("FAILED-" + stage)
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		b.t.Fatalf("%s (at %s): %v", stage, loc, err)
	}
}

// submit clicks a button or link that loads another page, and waits until
// a new document (after any redirect) has loaded: the old one carries a
// marker the new one lacks.
func (b *browser) submit(stage, selector string) {
	b.t.Helper()
	b.do(stage+": mark", chromedp.Evaluate[chromedp.Void](`window.__usersyncOld = true`))
	b.do(stage+": click", chromedp.Click(chromedp.CSS(selector)))
	deadline := time.Now().Add(time.Minute)
	for {
		// Errors are expected while the page changes.
		fresh, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](
			`window.__usersyncOld === undefined && document.readyState === "complete"`))
		if err == nil && fresh {
			return
		}
		if time.Now().After(deadline) {
			b.shot("FAILED-" + stage)
			b.t.Fatalf("%s: no new page after clicking %s", stage, selector)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// text is the text of the first element selector matches.
func (b *browser) text(selector string) string {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		b.shot("FAILED-text")
		b.t.Fatalf("text of %s: %v", selector, err)
	}
	return s
}

// html is the page's HTML as the browser holds it now.
func (b *browser) html() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// expect fails the walk unless got contains want.
func (b *browser) expect(what, got, want string) {
	b.t.Helper()
	if !strings.Contains(got, want) {
		b.shot("FAILED-" + what)
		b.t.Fatalf("%s: %q does not contain %q", what, got, want)
	}
}

// signIn opens the admin page and signs in with the API token.
func (b *browser) signIn(base, token string) {
	b.t.Helper()
	b.do("open", chromedp.Navigate(base+"/profiles"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("type token", chromedp.SendKeys(chromedp.CSS("#token"), token))
	b.submit("sign in", "main form button[type=submit]")
	b.expect("signed in", b.text("main h1"), "Profiles")
}
