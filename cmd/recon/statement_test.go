package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/channeltest"
)

// startSimServe runs `recon sim serve` with cfg until the test ends and
// returns its URL and the secret it signs httpjson answers with.
func startSimServe(t *testing.T, cfg string) (url, secret string) {
	t.Helper()
	return startSimServeKeys(t, cfg, simKeysDir(t))
}

// simKeysDir returns a directory of the test's own holding the simulator's
// test keys, generated once per test binary (four 2048-bit RSA keys take
// seconds under the race detector), for sim serve's --keys-dir: sim serve
// loads them instead of generating its own. TestSimServeAnswersAboutTheDatabaseOrders
// starts sim serve on an empty directory, where it generates them.
func simKeysDir(t *testing.T) string {
	t.Helper()
	_, files := channeltest.KeyFiles(t)
	return files.Dir
}

// startSimServeKeys is startSimServe with the simulator's keys in keysDir.
func startSimServeKeys(t *testing.T, cfg, keysDir string) (url, secret string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"sim", "serve", "--addr", "127.0.0.1:0", "--keys-dir", keysDir, "--config", cfg},
			&out, &errb, func(string) string { return "" })
	}()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, rest, ok := strings.Cut(out.String(), "listening on "); ok && strings.Contains(rest, "sim-stripe") {
			url, _, _ = strings.Cut(rest, "\n")
			_, rest, _ = strings.Cut(rest, `secret: "`)
			secret, _, _ = strings.Cut(rest, `"`)
			return url, secret
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("sim serve exited %d: %s", code, errb.String())
		default:
		}
	}
	t.Fatalf("sim serve did not start: %s", errb.String())
	return "", ""
}

// TestStatementRunAgainstSimServe fetches an httpjson statement from `recon
// sim serve` and reconciles it through the command line.
func TestStatementRunAgainstSimServe(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, loc)
	var orders []recon.Order
	for i := 0; i < 60; i++ {
		o := cliOrder(fmt.Sprintf("ST-%03d", i), recon.StatusPending, start.Add(time.Duration(i)*20*time.Minute).UTC())
		o.Channel = "bank"
		orders = append(orders, o)
	}
	simCfg, store := seedCLI(t, "  - {name: sim, kind: simulator, secret: stmt-secret, simulator: {seed: 3, paid_rate: 0.7, closed_rate: 0.2}}\n", orders)
	url, secret := startSimServe(t, simCfg)
	var dsn string
	for _, l := range strings.Split(readFile(t, simCfg), "\n") {
		if strings.HasPrefix(l, "database:") {
			dsn = l
		}
	}
	cfg := writeConfig(t, dsn+"\nstatements: {timezone: Asia/Shanghai}\nchannels:\n"+
		fmt.Sprintf("  - {name: bank, kind: httpjson, base_url: %q, secret: %q, fee_rate: 0.006}\n", url, secret))

	code, out, stderr := runCLI(t, nil, "statement", "run", "--date", "2026-11-22", "--output", "json", "--fail-on-mismatch", "--config", cfg)
	if code != exitMismatch {
		t.Fatalf("statement run: exit %d, want 3\n%s\n%s", code, out, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	for _, k := range []string{"channel", "bill_date", "status", "lines", "matched", "settled", "channel_only", "local_only",
		"amount_mismatches", "refund_mismatches", "fee_mismatches", "new_mismatches", "statement_conflicts", "lookups", "lookups_failed"} {
		if _, ok := res[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, out)
		}
	}
	// The channel's lookups (over HTTP, signed) settle what the statement
	// claims paid, but for the line sim serve plants that they do not
	// confirm.
	if res["status"] != "RECONCILED" || res["settled"].(float64) < 10 || res["channel_only"].(float64) != 1 || res["new_mismatches"].(float64) < 4 ||
		res["statement_conflicts"] != 1.0 || res["lookups"] != res["settled"].(float64)+1 || res["lookups_failed"] != 0.0 {
		t.Errorf("result %s", out)
	}
	ctx := context.Background()
	paid := 0
	for _, o := range orders {
		got, _ := store.GetOrderByNo(ctx, o.OrderNo)
		if got.Status == recon.StatusPaid {
			paid++
		}
	}
	if float64(paid) != res["settled"].(float64) {
		t.Errorf("%d orders PAID, %v settled", paid, res["settled"])
	}

	// Reconciling again finds nothing new; a dry run writes nothing.
	code, out, stderr = runCLI(t, nil, "statement", "reconcile", "--channel", "bank", "--date", "2026-11-22", "--fail-on-mismatch", "--config", cfg)
	if code != 0 || !strings.Contains(out, "new mismatches 0") {
		t.Fatalf("reconcile again: %d\n%s\n%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, nil, "statement", "reconcile", "--channel", "bank", "--date", "2026-11-22", "--dry-run", "--config", cfg)
	if code != 0 || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: %d %s", code, out)
	}
	code, out, _ = runCLI(t, nil, "statement", "list", "--config", cfg)
	if code != 0 || !strings.Contains(out, "2026-11-22") || !strings.Contains(out, "RECONCILED") || !regexp.MustCompile(`conflicts[^\n]*\n[^\n]*RECONCILED +\d+ +\d+ +\d+ +1 `).MatchString(out) {
		t.Fatalf("list: %d %s", code, out)
	}
	// Usage errors: a day that is not a date, a channel that does not exist.
	if code, _, _ := runCLI(t, nil, "statement", "fetch", "--channel", "bank", "--date", "22/11/2026", "--config", cfg); code != exitUsage {
		t.Errorf("bad date: exit %d", code)
	}
	if code, _, stderr := runCLI(t, nil, "statement", "fetch", "--channel", "nope", "--date", "2026-11-22", "--config", cfg); code != exitUsage || !strings.Contains(stderr, "nope") {
		t.Errorf("unknown channel: exit %d %s", code, stderr)
	}
	// A file that does not parse: exit 1, the reason names the line.
	bad := filepath.Join(t.TempDir(), "bad.csv")
	writeFileT(t, bad, "type,order_no,txn_id,refund_no,amount,fee,currency,time\nPAYMENT,ST-001,T1,,1.5,0,CNY,2026-11-22T01:00:00Z\n")
	code, _, stderr = runCLI(t, nil, "statement", "import", "--channel", "bank", "--date", "2026-11-21", "--file", bad, "--config", cfg)
	if code != exitFailed || !strings.Contains(stderr, "line 2") {
		t.Errorf("bad file: exit %d %s", code, stderr)
	}
	// A file that is not there (or a directory) is a mistyped flag: exit 2
	// naming it, and the day's statement is left as it was.
	for _, missing := range []string{filepath.Join(t.TempDir(), "nofile.csv"), t.TempDir()} {
		code, out, stderr = runCLI(t, nil, "statement", "import", "--channel", "bank", "--date", "2026-11-22", "--file", missing, "--config", cfg)
		if code != exitUsage || !strings.Contains(stderr, missing) || out != "" {
			t.Errorf("missing file: exit %d\n%s\n%s", code, out, stderr)
		}
	}
	if _, out, _ := runCLI(t, nil, "statement", "list", "--config", cfg); !regexp.MustCompile(`2026-11-22 +bank +RECONCILED`).MatchString(out) {
		t.Errorf("list after the missing files:\n%s", out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFileT(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBenchStatement runs the statement benchmark small: every seeded
// PENDING order is settled by its lookup at the rate limit, every PAID one
// matched, the unknown payment found.
func TestBenchStatement(t *testing.T) {
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+filepath.Join(t.TempDir(), "b.db")+"'}\n")
	code, out, stderr := runCLI(t, nil, "bench", "statement", "--lines", "500", "--rate-limit", "1000", "--config", cfg)
	if code != 0 {
		t.Fatalf("bench statement: %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"import ", "reconcile ", "matched 495, settled 5, statement conflicts 0, channel only 1",
		"lookups 5 (0 failed)", "rate_limit 1000/s", "peak RSS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestStatementConfigKeys(t *testing.T) {
	for body, key := range map[string]string{
		"statements: {timezone: Mars/Olympus}\n": "statements.timezone",
		"statements: {max_bytes: 1000}\n":        "statements.max_bytes",
		"statements: {max_lines: -1}\n":          "statements.max_lines",
		"channels:\n  - {name: a, kind: alipay, app_id: x, private_key_file: k, public_key_file: p, pid: '12345'}\n": "pid",
		"channels:\n  - {name: s, kind: simulator, fee_rate: 6}\n":                                                   "fee_rate",
		"channels:\n  - {name: s, kind: simulator, statement_path: /x}\n":                                            "statement_path",
		"channels:\n  - {name: b, kind: httpjson, base_url: 'http://x', statement_path: bills}\n":                    "statement_path",
	} {
		code, _, stderr := runCLI(t, nil, "statement", "list", "--config", writeConfig(t, body))
		if code != exitUsage || !strings.Contains(stderr, key) {
			t.Errorf("%q: exit %d, %s", body, code, stderr)
		}
	}
}

// The benchmark's payments lie within their day however many there are.
func TestBenchPaidAtStaysInTheDay(t *testing.T) {
	start := time.Date(2026, 11, 21, 16, 0, 0, 0, time.UTC)
	const n = 1_000_000
	prev := start
	for _, i := range []int{0, 1, 106_751, 106_752, 500_000, n - 1} {
		at := benchPaidAt(i, n, start)
		if at.Before(prev) || !at.Before(start.Add(24*time.Hour)) {
			t.Errorf("payment %d of %d at %s, outside the day from %s (or before payment before it, %s)", i, n, at, start, prev)
		}
		prev = at
	}
}
