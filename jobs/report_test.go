package jobs_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// fixedReport is the data set of the golden files: several kinds, channels,
// currencies with 0, 2 and 3 decimals, a Chinese merchant name, a resolved
// and a reopened row, and text that must not become a spreadsheet formula.
func fixedReport() jobs.Report {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	at := func(d, h int) time.Time { return day.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour) }
	resolvedAt := at(3, 9)
	mk := func(id int64, no, merchant, ch string, d, h int, m recon.Mismatch) repo.MismatchRecord {
		return repo.MismatchRecord{ID: id, RunID: 100 + id, OrderID: 1000 + id, OrderNo: no, MerchantID: merchant,
			Channel: ch, DetectedAt: at(d, h), LastSeenAt: at(d, h), Occurrences: 1,
			Resolution: recon.ResolutionOpen, Mismatch: m}
	}
	rows := []repo.MismatchRecord{
		mk(1, "ORD-0001", "m-tea", "alipay", 0, 1, recon.Mismatch{Kind: recon.MismatchAmount, LocalStatus: recon.StatusPending,
			ChannelStatus: recon.ChannelPaid, LocalAmount: 12345, ChannelAmount: 12300, LocalCurrency: "CNY", ChannelCurrency: "CNY",
			ChannelTxnID: "2026112022001", Detail: "channel amount 12300, local 12345 (difference -45)"}),
		mk(2, "ORD-0002", "m-tea", "alipay", 0, 5, recon.Mismatch{Kind: recon.MismatchAmount, LocalStatus: recon.StatusPending,
			ChannelStatus: recon.ChannelPaid, LocalAmount: 500, ChannelAmount: 5000, LocalCurrency: "JPY", ChannelCurrency: "JPY",
			ChannelTxnID: "T-2", Detail: "=HYPERLINK(\"x\")"}),
		mk(3, "ORD-0003", "m-books", "wechat", 1, 2, recon.Mismatch{Kind: recon.MismatchCurrency, LocalStatus: recon.StatusPending,
			ChannelStatus: recon.ChannelPaid, LocalAmount: 1999, ChannelAmount: 1999, LocalCurrency: "USD", ChannelCurrency: "EUR",
			ChannelTxnID: "W3", Detail: `channel currency "EUR", local "USD"`}),
		mk(4, "ORD-0004", "m-kw", "httpjson", 1, 8, recon.Mismatch{Kind: recon.MismatchLocalPaidChannelUnpaid, LocalStatus: recon.StatusPaid,
			ChannelStatus: recon.ChannelNotFound, LocalAmount: 1234, LocalCurrency: "KWD", Detail: "local PAID, channel NOT_FOUND"}),
		mk(5, "ORD-0005", "m-tea", "wechat", 3, 0, recon.Mismatch{Kind: recon.MismatchChannelPaidLocalUnpaid, LocalStatus: recon.StatusClosed,
			ChannelStatus: recon.ChannelPaid, LocalAmount: 8800, ChannelAmount: 8800, LocalCurrency: "CNY", ChannelCurrency: "CNY",
			ChannelTxnID: "W5", Detail: "channel PAID, local CLOSED"}),
		mk(6, "ORD-0006", "m-books", "alipay", 3, 6, recon.Mismatch{Kind: recon.MismatchStuckPending, LocalStatus: recon.StatusPending,
			ChannelStatus: recon.ChannelPending, LocalAmount: 7, LocalCurrency: "CNY", Detail: "still PENDING at the channel after 24h0m0s (max_age 24h0m0s)"}),
		mk(7, "ORD-0007", "m-tea", "alipay", 3, 7, recon.Mismatch{Kind: recon.MismatchNotFoundAtChannel, LocalStatus: recon.StatusPending,
			ChannelStatus: recon.ChannelNotFound, LocalAmount: 100, LocalCurrency: "CNY", Detail: "still NOT_FOUND at the channel"}),
		mk(8, "ORD-0008", "m-tea", "wechat", 3, 8, recon.Mismatch{Kind: recon.MismatchChannelRefundedLocalFail, LocalStatus: "FAILED",
			ChannelStatus: "SUCCEEDED", LocalAmount: 2500, ChannelAmount: 2500, LocalCurrency: "CNY", ChannelCurrency: "CNY",
			ChannelTxnID: "50300908", RefundNo: "RF-0008", Detail: "channel refunded 2500 CNY, local FAILED: do not refund again"}),
	}
	rows[3].Resolution, rows[3].ResolvedBy, rows[3].ResolutionNote, rows[3].ResolvedAt =
		recon.ResolutionResolved, "王芳", "refund confirmed, ticket FIN-7 <ok>", &resolvedAt
	rows[1].Resolution = recon.ResolutionAcknowledged
	rows[5].Occurrences, rows[5].LastSeenAt = 3, at(3, 9)
	rows[5].ResolvedBy, rows[5].ResolutionNote = "ann", "-reopened after the channel changed its mind"
	return jobs.Report{
		Title: "recon mismatch report", GeneratedAt: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC),
		Filter: "from=2026-11-20 to=2026-11-24", Rows: rows,
		MerchantNames: map[string]string{"m-tea": "西湖茶庄 (West Lake Tea)", "m-books": "Riverside Books"},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./jobs -run TestReport -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended, run go test ./jobs -run TestReport -update\n--- got ---\n%s", path, got)
	}
}

func TestReportGoldenFiles(t *testing.T) {
	r := fixedReport()
	for _, tc := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"report.csv", func(b *bytes.Buffer) error { return r.WriteCSV(b) }},
		{"report.json", func(b *bytes.Buffer) error { return r.WriteJSON(b) }},
		{"report.html", func(b *bytes.Buffer) error { return r.WriteHTML(b) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, b.Bytes())
		})
	}
}

func TestReportCSVHasBOMAndDefusesFormulas(t *testing.T) {
	var b bytes.Buffer
	if err := fixedReport().WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if !strings.HasPrefix(s, "\ufeffid,run_id,order_id,order_no,merchant_id,channel,kind,") {
		t.Fatalf("csv does not start with a BOM and the contract columns: %q", s[:60])
	}
	if !strings.Contains(s, `"'=HYPERLINK(""x"")"`) || !strings.Contains(s, "'-reopened") {
		t.Fatal("formula-like text not defused")
	}
	if !strings.Contains(s, "西湖茶庄") {
		t.Fatal("merchant name missing")
	}
}

func TestReportTotals(t *testing.T) {
	tot := fixedReport().Totals()
	if tot.Count != 8 {
		t.Fatalf("count = %d", tot.Count)
	}
	var cny jobs.CurrencyTotal
	for _, c := range tot.AtStake {
		if c.Currency == "CNY" {
			cny = c
		}
	}
	// AMOUNT |12300-12345| + CHANNEL_PAID_LOCAL_UNPAID 8800 paid at the
	// channel only + STUCK_PENDING and NOT_FOUND_AT_CHANNEL unpaid on both
	// sides + CHANNEL_REFUNDED_LOCAL_FAILED 2500 refunded at the channel
	// only.
	if cny.Count != 5 || cny.AbsDifference.Int64() != 11345 || cny.AbsDifferenceMajor != "113.45" {
		t.Fatalf("CNY at stake = %+v", cny)
	}
	if got := tot.ByKind[0]; got.Kind != recon.MismatchAmount || got.Currency != "CNY" || got.AbsDifference.Int64() != 45 {
		t.Fatalf("first kind total = %+v", got)
	}
	for cur, want := range map[string]int64{"USD": 1999, "KWD": 1234, "JPY": 4500} {
		for _, c := range tot.AtStake {
			if c.Currency == cur && c.AbsDifference.Int64() != want {
				t.Errorf("%s at stake = %d, want %d", cur, c.AbsDifference, want)
			}
		}
	}
	if len(tot.PerDay) != 4 || tot.PerDay[2].Count != 0 || tot.PerDay[3].Count != 4 {
		t.Fatalf("per day = %+v", tot.PerDay)
	}
}

func TestFormatMinor(t *testing.T) {
	for _, tc := range []struct {
		amount int64
		cur    string
		want   string
	}{
		{12345, "CNY", "123.45"}, {5, "USD", "0.05"}, {0, "EUR", "0.00"}, {-45, "CNY", "-0.45"},
		{500, "JPY", "500"}, {1000, "KRW", "1000"}, {1234, "KWD", "1.234"}, {5, "BHD", "0.005"},
		{-9223372036854775808, "USD", "-92233720368547758.08"},
	} {
		if got := jobs.FormatMinor(tc.amount, tc.cur); got != tc.want {
			t.Errorf("FormatMinor(%d, %s) = %q, want %q", tc.amount, tc.cur, got, tc.want)
		}
	}
}

// externalRef finds attributes that would make a browser fetch something.
var externalRef = regexp.MustCompile(`(?i)(src|href|xlink:href)\s*=\s*["']?\s*(https?:)?//|@import|url\(\s*["']?(https?:)?//`)

// TestReportHTMLInChromium opens the golden data set's page in headless
// Chromium: it must render (a screenshot is produced, kept in
// $RECON_TEST_ARTIFACTS when set) and the DOM must hold the table. The page
// must reference nothing outside itself.
func TestReportHTMLInChromium(t *testing.T) {
	var b bytes.Buffer
	if err := fixedReport().WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if m := externalRef.FindString(b.String()); m != "" {
		t.Fatalf("report references an external resource: %q", m)
	}
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium not installed (apt-get install -y chromium); skipping the browser rendering check")
	}
	dir := t.TempDir()
	out := dir
	if a := os.Getenv("RECON_TEST_ARTIFACTS"); a != "" {
		if err := os.MkdirAll(a, 0o755); err != nil {
			t.Fatal(err)
		}
		out = a
	}
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(out, "report.png")
	_ = os.Remove(shot)
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
			"--user-data-dir=" + filepath.Join(dir, "profile")}
		cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\n%s", bin, args, err, stderr.String())
		}
		return stdout.Bytes()
	}
	run("--window-size=1400,1000", "--screenshot="+shot, "file://"+page)
	st, err := os.Stat(shot)
	if err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot produced: %v", err)
	}
	png, _ := os.ReadFile(shot)
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatal("screenshot is not a PNG")
	}
	t.Logf("screenshot: %s (%d bytes)", shot, st.Size())
	dom := string(run("--dump-dom", "file://"+page))
	for _, want := range []string{`id="mismatches"`, "ORD-0007", `id="chart"`, "西湖茶庄", `id="by-kind"`, `id="at-stake"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if n := strings.Count(dom, "<tr>"); n < 8 {
		t.Errorf("rendered DOM has %d table rows, want at least 8", n)
	}
}

// TestReportStatementsSection: a report of a period with statements shows
// each statement's counts and the file's own totals, in every format.
func TestReportStatementsSection(t *testing.T) {
	r := fixedReport()
	r.Rows = r.Rows[:2]
	imported := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	r.Statements = []repo.Statement{
		{ID: 2, Channel: "wechat", Day: "2026-11-21", Status: repo.StatementReconciled, Source: repo.SourceFetch,
			SHA256: strings.Repeat("ab", 32), ImportedAt: &imported,
			Totals:   recon.StatementTotals{Present: true, PaymentsCount: 3, PaymentsAmount: 30000, RefundsCount: 1, RefundsAmount: 500, FeesAmount: 180},
			Payments: 3, Refunds: 1, Fees: 180,
			StatementCounts: repo.StatementCounts{Lines: 4, Matched: 1, Settled: 1, ChannelOnly: 1, RefundMismatches: 1, FeeMismatches: 1}},
		{ID: 1, Channel: "bank", Day: "2026-11-20", Status: repo.StatementFailed, Source: repo.SourceFile,
			Error: "line 7: amount \"1.5\" is not an integer of minor units"},
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{"statements.csv", r.WriteCSV}, {"statements.json", r.WriteJSON}, {"statements.html", r.WriteHTML}} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"2026-11-21", "wechat", "30000", "line 7"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s lacks %q", f.name, want)
			}
		}
		golden(t, f.name, b.Bytes())
	}
}

// TestReportCSVDefusesEveryTextCell fills every text field of a mismatch,
// the merchant's name and a statement with a formula: no cell of the CSV
// may start as one, whichever column it is in.
func TestReportCSVDefusesEveryTextCell(t *testing.T) {
	const formula = "=HYPERLINK(\"http://x\")"
	var m repo.MismatchRecord
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			switch f := v.Field(i); f.Kind() {
			case reflect.String:
				f.SetString(formula)
			case reflect.Struct:
				if f.CanSet() && f.Type() != reflect.TypeOf(time.Time{}) {
					fill(f)
				}
			}
		}
	}
	fill(reflect.ValueOf(&m).Elem())
	m.ID, m.LocalAmount, m.ChannelAmount = 1, 100, 250
	m.DetectedAt, m.LastSeenAt = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var st repo.Statement
	fill(reflect.ValueOf(&st).Elem())
	r := jobs.Report{Rows: []repo.MismatchRecord{m}, MerchantNames: map[string]string{m.MerchantID: formula}, Statements: []repo.Statement{st}}
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(b.String(), "\ufeff")))
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("want a header, a row, a statements header and a statement: %q", recs)
	}
	for _, rec := range [][]string{recs[1], recs[3]} {
		for i, c := range rec {
			if strings.HasPrefix(c, "=") {
				t.Errorf("cell %d is a formula: %q", i, c)
			}
		}
	}
}
