package console_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// artifacts is where the browser test leaves its screenshots:
// $RECON_TEST_ARTIFACTS (.ci/run sets .ci/artifacts), else a temporary
// directory.
func artifacts(t *testing.T) string {
	dir := os.Getenv("RECON_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("browser test skipped: no chromium on PATH (apt-get install -y chromium)")
	return ""
}

// TestBrowser drives the console in headless Chromium as a finance admin
// behind the auth proxy: filter, open a mismatch, check it now, acknowledge
// and resolve it through the page's own forms, export the CSV. No page may
// log an error, throw, or violate the Content-Security-Policy.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t, repotest.NewSQLite(t), nil)
	ts := httptest.NewServer(e.h) // 127.0.0.1, the trusted proxy
	defer ts.Close()
	shots := artifacts(t)
	downloads := t.TempDir()

	actx, cancel := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	// Every console message of level warning and above, exceptions and CSP
	// violations (browser log entries) included.
	var mu sync.Mutex
	var problems []string
	seen := make(chan struct{}, 1)
	messages := chromedp.Console(ctx)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				problems = append(problems, m.String()+" ("+m.URL+")")
				mu.Unlock()
				select {
				case seen <- struct{}{}:
				default:
				}
			}
		}
	}()
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		step("screenshot "+name, err)
		step("save "+name, os.WriteFile(filepath.Join(shots, name), png, 0o644))
	}
	// click clicks sel and waits for the page it leads to to load.
	click := func(what string, sel chromedp.CSS) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(sel)))
		step(what, err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		step("text of "+sel, err)
		return s
	}

	// Sign in as the proxy would: every request carries the user's header.
	_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
	step("network", err)
	_, err = chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"X-Forwarded-Email": admin}})
	step("proxy header", err)
	yes := true
	_, err = chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: &yes})
	step("downloads", err)

	step("open list", chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/mismatches"), chromedp.WaitVisible(chromedp.ID("mismatches"))))
	if s := text("#mismatches"); !strings.Contains(s, "o-amt") || !strings.Contains(s, "o-stuck") || !strings.Contains(s, merchant) {
		t.Fatalf("list shows:\n%s", s)
	}
	shot("console-list.png")

	// Filter by kind with the form: choosing a kind applies it (console.js).
	_, err = chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.SetValue(chromedp.CSS(`select[name=kind]`), "AMOUNT_MISMATCH")))
	step("choose kind", err)
	if s := text("#mismatches"); !strings.Contains(s, "o-amt") || strings.Contains(s, "o-stuck") {
		t.Fatalf("filtered list shows:\n%s", s)
	}

	// Open it, check it now, acknowledge, resolve.
	click("open mismatch", chromedp.CSS(`#mismatches tbody a`))
	step("detail", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("ack"))))
	click("check now", chromedp.CSS("#check-now"))
	if s := text("#decision"); !strings.Contains(s, "AMOUNT_MISMATCH") || !strings.Contains(s, "Nothing was applied") {
		t.Fatalf("check now shows: %s", s)
	}
	shot("console-detail.png")
	click("acknowledge", chromedp.CSS("#ack"))
	if s := text(".flash"); !strings.Contains(s, "Acknowledged") {
		t.Fatalf("after ack: %s", s)
	}
	step("note", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("note"), "退款 0.50 CNY, ticket FIN-7")))
	click("resolve", chromedp.CSS("#resolve"))
	if s := text(".flash"); !strings.Contains(s, "Resolved") {
		t.Fatalf("after resolve: %s", s)
	}
	if s := text("#history"); !strings.Contains(s, "RESOLVED") || !strings.Contains(s, admin) || !strings.Contains(s, "退款 0.50 CNY") {
		t.Fatalf("history: %s", s)
	}
	shot("console-resolved.png")
	m := e.mismatch("o-amt")
	if m.Resolution != recon.ResolutionResolved || m.ResolvedBy != admin {
		t.Fatalf("mismatch after the browser resolved it: %+v", m)
	}

	// Export every mismatch as CSV through the page's link.
	step("list all", chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/mismatches?resolution=ALL"), chromedp.WaitVisible(chromedp.ID("export"))))
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	step("export", chromedp.Do(ctx, chromedp.Click(chromedp.ID("export"))))
	var file string
	for ev, err := range progress {
		step("download", err)
		if ev.State == browser.DownloadProgressStateCompleted {
			file = filepath.Join(downloads, ev.GUID)
			break
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("download canceled")
		}
	}
	got, err := os.ReadFile(file)
	step("read download", err)
	mf, desc, _ := jobs.ReportQuery{}.Filter(time.UTC, nil)
	rep, err := jobs.BuildReport(context.Background(), e.db.Store, mf, desc, t0)
	step("report", err)
	var want bytes.Buffer
	step("csv", rep.WriteCSV(&want))
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("exported CSV differs from recon report:\n%s\nwant:\n%s", got, want.Bytes())
	}

	// The runs and statements pages, and a mismatch on a tablet.
	for i, st := range []string{repo.RunSucceeded, repo.RunFailed} {
		id, err := e.db.Store.StartRun(context.Background(), jobs.KindReconcile, false, "", "recon-7d9f/1", t0.Add(time.Duration(i)*time.Minute))
		step("start run", err)
		msg := ""
		if st == repo.RunFailed {
			msg = "lookup sim: 3 orders failed"
		}
		step("finish run", e.db.Store.FinishRun(context.Background(), id, st, repo.RunCounters{Scanned: 1200, Paid: 1100, Failed: 40, Closed: 20,
			Rescheduled: 37, Mismatches: 3}, msg, t0.Add(time.Duration(i)*time.Minute+40*time.Second)))
	}
	step("runs", chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/runs"), chromedp.WaitVisible(chromedp.ID("runs"))))
	shot("console-runs.png")
	step("statement", e.db.Store.FailStatement(context.Background(), repo.StatementImport{Channel: "sim", Day: "2026-11-19", Source: repo.SourceFetch,
		Origin: "https://sim.example/statement?date=2026-11-19", SHA256: "ab", Size: 10}, "lines do not add up to the file's summary (payments 12 vs 13)", t0))
	step("statements", chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/statements"), chromedp.WaitVisible(chromedp.ID("statements"))))
	shot("console-statements.png")
	step("tablet", chromedp.Do(ctx, chromedp.EmulateViewport(820, 1180), chromedp.Navigate(ts.URL+"/mismatches/"+itoa(e.ids["o-stuck"])),
		chromedp.WaitVisible(chromedp.ID("resolve"))))
	shot("console-tablet.png")

	mu.Lock()
	found := append([]string(nil), problems...)
	mu.Unlock()
	if len(found) > 0 {
		t.Fatalf("the pages logged problems:\n%s", strings.Join(found, "\n"))
	}

	// The watch works: an image from elsewhere is refused by the CSP and
	// reported.
	step("inject", chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.body.insertAdjacentHTML("beforeend", "<img src=\"https://example.invalid/x.png\">")`)))
	select {
	case <-seen:
	case <-ctx.Done():
		t.Fatal("a CSP violation was not reported: the console watch sees nothing")
	}
	cancel()
	<-collected
	t.Logf("screenshots in %s", shots)
}
