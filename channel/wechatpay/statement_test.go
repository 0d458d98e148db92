package wechatpay_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/wechatpay"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/statement/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseBill(t testing.TB, b []byte) ([]recon.StatementLine, recon.StatementTotals, error) {
	t.Helper()
	var lines []recon.StatementLine
	totals, err := wechatpay.ParseBill(bytes.NewReader(b), wechatpay.BillCheck{Day: "2026-11-30", MchID: testMch}, func(l recon.StatementLine) error {
		lines = append(lines, l)
		return nil
	})
	return lines, totals, err
}

func cst(s string) time.Time {
	t, err := time.ParseInLocation(time.DateTime, s, time.FixedZone("CST", 8*3600))
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParseBillCurrentLayout(t *testing.T) {
	lines, totals, err := parseBill(t, fixture(t, "tradebill_all.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := []recon.StatementLine{
		{LineNo: 2, Kind: recon.LinePayment, OrderNo: "ORD-2001", ChannelTxnID: "4200002360202611301150650780", Amount: 6000, Fee: 32, Currency: "CNY", OccurredAt: cst("2026-11-30 10:06:33")},
		{LineNo: 3, Kind: recon.LineRefund, OrderNo: "ORD-1977", ChannelTxnID: "4200002166202611250324636876", RefundNo: "RF-1977-1", Amount: 5000, Fee: -27, Currency: "CNY", OccurredAt: cst("2026-11-30 16:47:58")},
		{LineNo: 4, Kind: recon.LinePayment, OrderNo: "ORD-2002", ChannelTxnID: "4200002360202611301150650781", Amount: 1000, Fee: 5, Currency: "CNY", OccurredAt: cst("2026-11-30 23:59:59")},
		{LineNo: 5, Kind: recon.LinePayment, OrderNo: "ORD-2003", ChannelTxnID: "4200002360202611301150650782", Amount: 1, Fee: 0, Currency: "CNY", OccurredAt: cst("2026-11-30 00:00:03")},
	}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("lines\n got %v\nwant %v", lines, want)
	}
	wantTotals := recon.StatementTotals{Present: true, PaymentsCount: 3, PaymentsAmount: 7001, RefundsCount: 1, RefundsAmount: 5000, FeesAmount: 10}
	if totals != wantTotals {
		t.Errorf("totals %+v, want %+v", totals, wantTotals)
	}
}

func TestParseBillOlderLayout(t *testing.T) {
	var lines []recon.StatementLine
	totals, err := wechatpay.ParseBill(bytes.NewReader(fixture(t, "tradebill_old.csv")), wechatpay.BillCheck{Day: "2014-11-10", MchID: "10000100"},
		func(l recon.StatementLine) error { lines = append(lines, l); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 || lines[0].Amount != 1 || !lines[0].OccurredAt.Equal(cst("2014-11-10 16:33:45")) ||
		lines[2].Kind != recon.LineRefund || lines[2].Amount != 1 || lines[2].RefundNo != "1415640626-R1" {
		t.Errorf("lines %+v", lines)
	}
	if totals.PaymentsAmount != 2 || totals.RefundsAmount != 1 || totals.PaymentsCount != 2 || totals.RefundsCount != 1 {
		t.Errorf("totals %+v", totals)
	}
}

func TestWriteBillRoundTrip(t *testing.T) {
	lines := []recon.StatementLine{
		{LineNo: 2, Kind: recon.LinePayment, OrderNo: "A-1", ChannelTxnID: "4200000001", Amount: 12345, Fee: 74, Currency: "CNY", OccurredAt: cst("2026-11-30 00:00:01")},
		{LineNo: 3, Kind: recon.LineRefund, OrderNo: "A-1", ChannelTxnID: "4200000001", RefundNo: "R-1", Amount: 45, Fee: -1, Currency: "CNY", OccurredAt: cst("2026-11-30 23:00:00")},
	}
	var buf bytes.Buffer
	if err := wechatpay.WriteBill(&buf, wechatpay.Bill{AppID: "wxd678efh567hg6787", MchID: testMch, Lines: lines}); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("\uFEFF交易时间,")) || !bytes.HasSuffix(buf.Bytes(), []byte("\r\n")) {
		t.Errorf("no BOM or CRLF: %q", buf.String())
	}
	got, totals, err := parseBill(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(lines) {
		t.Errorf("read back\n got %v\nwant %v", got, lines)
	}
	if totals.PaymentsAmount != 12345 || totals.RefundsAmount != 45 || totals.FeesAmount != 73 {
		t.Errorf("totals %+v", totals)
	}
}

func TestParseBillRejects(t *testing.T) {
	good := string(fixture(t, "tradebill_all.csv"))
	cases := []struct{ name, file, want string }{
		{"settlement total", strings.Replace(good, "`69.01,", "`69.02,", 1), "line 7: summary: 应结订单总金额 says 69.02000, the rows add up to 69.01000"},
		{"fee total", strings.Replace(good, "`0.10006,", "`0.10000,", 1), "手续费总金额 says 0.10000, the rows add up to 0.10006"},
		{"row count", strings.Replace(good, "\r\n`4,", "\r\n`5,", 1), "总交易单数 says 5 rows, the file has 4"},
		{"truncated", good[:strings.Index(good, "总交易单数")], "no summary row"},
		{"bad amount", strings.Replace(good, "`60.00,`0.00,`0,", "`6O.00,`0.00,`0,", 1), "line 2: 应结订单金额: invalid decimal"},
		{"no backtick", strings.Replace(good, "`ORD-2001", "ORD-2001", 1), "line 2: field 商户订单号 does not start with a backtick"},
		{"unknown state", strings.Replace(good, "`NATIVE,`SUCCESS", "`NATIVE,`PAYING", 1), "line 4: 交易状态 \"PAYING\""},
		{"not a bill", "<html>error</html>\r\n", "line 1: header has no 交易时间 column"},
		{"GBK text", "\xbd\xbb\xd2\xd7\xca\xb1\xbc\xe4,x\r\n", "line 1: not UTF-8 text"},
		{"text after summary", good + "`1\r\n", "text after the summary row"},
		{"another merchant", strings.Replace(good, "`1900000001,`0,`,`4200002166", "`1900000002,`0,`,`4200002166", 1), "line 3: 商户号 1900000002 is not the channel's mch_id 1900000001"},
		{"the day before", strings.Replace(good, "`2026-11-30 00:00:03", "`2026-11-29 23:59:59", 1), "line 5: 交易时间 2026-11-29 23:59:59 is outside the statement's day 2026-11-30"},
		{"the next day", strings.Replace(good, "`2026-11-30 23:59:59", "`2026-12-01 00:00:00", 1), "line 4: 交易时间 2026-12-01 00:00:00 is outside"},
		{"long line", strings.Replace(good, "`会员月卡", "`"+strings.Repeat("长", wechatpay.MaxLineBytes/3), 1), "line 2 is longer than 65536 bytes"},
		{"long field", strings.Replace(good, "`会员月卡", "`"+strings.Repeat("长", channel.MaxCSVField/3+1), 1), "line 2: field too long: field 21 has"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parseBill(t, []byte(c.file))
			if !errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrBadStatement with %q", err, c.want)
			}
		})
	}
}

// billServer serves the trade bill API and the download as WeChat Pay does,
// checking that both requests are signed by the merchant.
type billServer struct {
	t        *testing.T
	srv      *httptest.Server
	file     []byte
	hash     string // hash_value; "" for the file's own
	gzip     bool
	apiError string // a 400 code to answer instead
	apiMsg   string // its message (default 账单文件不存在)
	query    string
	download string
	link     string // download_url, when not the server's own
	moved    string // where /moved redirects to
}

func newBillServer(t *testing.T, file []byte) (*billServer, *wechatpay.Client) {
	b := &billServer{t: t, file: file}
	b.srv = httptest.NewTLSServer(b)
	t.Cleanup(b.srv.Close)
	cfg := testConfig(testKeys(t), b.srv.URL)
	cfg.Now = time.Now
	cfg.HTTPClient = b.srv.Client()
	c, err := wechatpay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, c
}

func (b *billServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	keys := testKeys(b.t)
	if _, err := wechatpay.VerifyRequest(&keys.WechatMerchantKey.PublicKey, r.Header.Get("Authorization"), r.Method, r.RequestURI, nil, time.Now()); err != nil {
		b.t.Errorf("%s: %v", r.URL.Path, err)
	}
	switch r.URL.Path {
	case wechatpay.TradeBillPath:
		b.query = r.URL.RawQuery
		status, body := 200, ""
		if b.apiError != "" {
			msg := b.apiMsg
			if msg == "" {
				msg = "账单文件不存在"
			}
			status, body = 400, fmt.Sprintf(`{"code":%q,"message":%q}`, b.apiError, msg)
		} else {
			hash := b.hash
			if hash == "" {
				sum := sha1.Sum(b.file)
				hash = hex.EncodeToString(sum[:])
			}
			link := b.link
			if link == "" {
				link = b.srv.URL + "/v3/billdownload/file?token=secret-token"
			}
			body = fmt.Sprintf(`{"download_url":%q,"hash_type":"SHA1","hash_value":%q}`, link, hash)
		}
		if err := wechatpay.SignResponse(w.Header(), keys.WechatPlatformKey, keys.WechatPlatformKeyID, time.Now().Unix(), wechatpay.NewNonce(), []byte(body)); err != nil {
			b.t.Error(err)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	case "/v3/billdownload/file":
		b.download = r.URL.RawQuery
		if b.gzip {
			zw := gzip.NewWriter(w)
			_, _ = zw.Write(b.file)
			_ = zw.Close()
			return
		}
		_, _ = w.Write(b.file)
	case "/moved":
		http.Redirect(w, r, b.moved, http.StatusFound)
	default:
		http.NotFound(w, r)
	}
}

func TestFetchStatement(t *testing.T) {
	file := fixture(t, "tradebill_all.csv")
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("gzip=", gz), func(t *testing.T) {
			b, c := newBillServer(t, file)
			b.gzip = gz
			// A plain-http download_url is fetched over https (the server
			// speaks TLS only).
			b.link = strings.Replace(b.srv.URL, "https://", "http://", 1) + "/v3/billdownload/file?token=secret-token"
			var buf bytes.Buffer
			source, err := c.FetchStatement(context.Background(), "2026-11-30", &buf)
			if err != nil {
				t.Fatal(err)
			}
			if b.query != "bill_date=2026-11-30&bill_type=ALL&tar_type=GZIP" || b.download != "token=secret-token" {
				t.Errorf("query %q, download %q", b.query, b.download)
			}
			if source != b.srv.URL+"/v3/billdownload/file" {
				t.Errorf("source %q (the token must go)", source)
			}
			if !bytes.Equal(buf.Bytes(), file) {
				t.Errorf("wrote %d bytes, want the %d of the file", buf.Len(), len(file))
			}
		})
	}
}

func TestFetchStatementErrors(t *testing.T) {
	t.Run("hash mismatch", func(t *testing.T) {
		b, c := newBillServer(t, fixture(t, "tradebill_all.csv"))
		b.hash = strings.Repeat("0", 40)
		var buf bytes.Buffer
		_, err := c.FetchStatement(context.Background(), "2026-11-30", &buf)
		if !errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), "hash_value says 0000") {
			t.Fatalf("error %v", err)
		}
		if buf.Len() != 0 {
			t.Errorf("%d unverified bytes written", buf.Len())
		}
	})
	for _, code := range []string{wechatpay.CodeNoStatementExist, wechatpay.CodeStatementCreating} {
		t.Run(code, func(t *testing.T) {
			b, c := newBillServer(t, nil)
			b.apiError = code
			_, err := c.FetchStatement(context.Background(), "2026-11-30", &bytes.Buffer{})
			if !errors.Is(err, channel.ErrNoStatement) {
				t.Fatalf("error %v, want ErrNoStatement", err)
			}
		})
	}
	t.Run("No Bill Exist", func(t *testing.T) {
		b, c := newBillServer(t, nil)
		b.apiError, b.apiMsg = "INVALID_REQUEST", wechatpay.MessageNoBillExist
		_, err := c.FetchStatement(context.Background(), "2026-11-30", &bytes.Buffer{})
		if !errors.Is(err, channel.ErrNoStatement) {
			t.Fatalf("error %v, want ErrNoStatement", err)
		}
	})
	t.Run("other refusal", func(t *testing.T) {
		b, c := newBillServer(t, nil)
		b.apiError, b.apiMsg = "INVALID_REQUEST", "参数错误"
		_, err := c.FetchStatement(context.Background(), "2026-11-30", &bytes.Buffer{})
		if err == nil || errors.Is(err, channel.ErrNoStatement) || channel.ClassOf(err) != channel.ClassPermanent {
			t.Fatalf("error %v, want a permanent refusal", err)
		}
	})
	t.Run("redirect to plain http", func(t *testing.T) {
		forged := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(fixture(t, "tradebill_all.csv")) }))
		defer forged.Close()
		b, c := newBillServer(t, fixture(t, "tradebill_all.csv"))
		b.link, b.moved = b.srv.URL+"/moved", forged.URL+"/v3/billdownload/file?token=x"
		var buf bytes.Buffer
		_, err := c.FetchStatement(context.Background(), "2026-11-30", &buf)
		if !errors.Is(err, channel.ErrBadStatement) || channel.ClassOf(err) != channel.ClassPermanent || !strings.Contains(err.Error(), "refused a redirect off https") {
			t.Fatalf("error %v", err)
		}
		if buf.Len() != 0 {
			t.Errorf("%d bytes written", buf.Len())
		}
	})
	t.Run("gzip past the cap", func(t *testing.T) {
		bomb := bigBill(t, 20000)
		b, c := newBillServer(t, bomb)
		b.gzip = true
		c.SetStatementLimits(channel.StatementLimits{MaxBytes: 1 << 20})
		var buf bytes.Buffer
		_, err := c.FetchStatement(context.Background(), "2026-11-30", &buf)
		if !errors.Is(err, channel.ErrStatementTooLarge) || channel.ClassOf(err) != channel.ClassPermanent || !strings.Contains(err.Error(), "more than 1048576 bytes decompressed (statements.max_bytes)") {
			t.Fatalf("error %v", err)
		}
		if buf.Len() != 0 {
			t.Errorf("%d bytes written", buf.Len())
		}
	})
	t.Run("unsigned answer", func(t *testing.T) {
		f, c := newFake(t)
		f.answer = answer{status: 200, unsigned: true, body: `{"download_url":"http://x/y","hash_type":"SHA1","hash_value":"` + strings.Repeat("a", 40) + `"}`}
		_, err := c.FetchStatement(context.Background(), "2026-11-30", &bytes.Buffer{})
		if !errors.Is(err, channel.ErrBadSignature) {
			t.Fatalf("error %v", err)
		}
	})
}

// BenchmarkParseBill parses a bill of 100,000 payments (go test -bench
// ParseBill -benchmem ./channel/wechatpay).
func BenchmarkParseBill(b *testing.B) {
	lines := make([]recon.StatementLine, 100_000)
	at := cst("2026-11-30 00:00:00")
	for i := range lines {
		lines[i] = recon.StatementLine{Kind: recon.LinePayment, OrderNo: fmt.Sprintf("ORD-%08d", i), ChannelTxnID: fmt.Sprintf("42000023602026113011%08d", i),
			Amount: int64(1000 + i%9000), Fee: 6, Currency: "CNY", OccurredAt: at.Add(time.Duration(i) * 800 * time.Millisecond)}
	}
	var buf bytes.Buffer
	if err := wechatpay.WriteBill(&buf, wechatpay.Bill{AppID: "wxd678efh567hg6787", MchID: testMch, Lines: lines}); err != nil {
		b.Fatal(err)
	}
	f := buf.Bytes()
	b.SetBytes(int64(len(f)))
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if _, err := wechatpay.ParseBill(bytes.NewReader(f), wechatpay.BillCheck{Day: "2026-11-30"}, func(recon.StatementLine) error { n++; return nil }); err != nil || n != len(lines) {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestParseStatementReadsGzip: a bill downloaded by hand with tar_type=GZIP
// imports as it is; a cut one fails.
func TestParseStatementReadsGzip(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(fixture(t, "tradebill_all.csv"))
	_ = zw.Close()
	_, c := newBillServer(t, nil)
	n := 0
	totals, err := c.ParseStatement(bytes.NewReader(gz.Bytes()), int64(gz.Len()), "2026-11-30", nil, func(recon.StatementLine) error { n++; return nil })
	if err != nil || n != 4 || totals.PaymentsAmount != 7001 {
		t.Fatalf("%d lines, totals %+v, error %v", n, totals, err)
	}
	cut := gz.Bytes()[:gz.Len()-20]
	_, err = c.ParseStatement(bytes.NewReader(cut), int64(len(cut)), "2026-11-30", nil, func(recon.StatementLine) error { return nil })
	if !errors.Is(err, channel.ErrBadStatement) {
		t.Fatalf("cut gzip: error %v", err)
	}
}

// bigBill is a valid bill of n equal payments: megabytes that gzip to
// kilobytes.
func bigBill(t *testing.T, n int) []byte {
	lines := make([]recon.StatementLine, n)
	for i := range lines {
		lines[i] = recon.StatementLine{Kind: recon.LinePayment, OrderNo: "A-1", ChannelTxnID: "4200000001", Amount: 100, Fee: 1, Currency: "CNY", OccurredAt: cst("2026-11-30 12:00:00")}
	}
	var buf bytes.Buffer
	if err := wechatpay.WriteBill(&buf, wechatpay.Bill{AppID: "wxd678efh567hg6787", MchID: testMch, Lines: lines}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestParseStatementLimits: a gzip bill that inflates past the caps is
// refused, naming the cap, and the channel's mch_id is checked.
func TestParseStatementLimits(t *testing.T) {
	bill := bigBill(t, 20000)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bill)
	_ = zw.Close()
	if gz.Len() > len(bill)/50 {
		t.Fatalf("gzip of %d bytes for %d: not compressible enough for the test", gz.Len(), len(bill))
	}
	_, c := newBillServer(t, nil)
	if _, err := c.ParseStatement(bytes.NewReader(gz.Bytes()), int64(gz.Len()), "2026-11-30", nil, func(recon.StatementLine) error { return nil }); err != nil {
		t.Fatalf("within the default caps: %v", err)
	}
	for _, c2 := range []struct {
		lim  channel.StatementLimits
		want string
	}{
		{channel.StatementLimits{MaxBytes: 1 << 20}, "more than 1048576 bytes decompressed (statements.max_bytes)"},
		{channel.StatementLimits{MaxLines: 1000}, "more than 1000 lines (statements.max_lines) (after line 1000)"},
	} {
		c.SetStatementLimits(c2.lim)
		_, err := c.ParseStatement(bytes.NewReader(gz.Bytes()), int64(gz.Len()), "2026-11-30", nil, func(recon.StatementLine) error { return nil })
		if !errors.Is(err, channel.ErrStatementTooLarge) || !errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), c2.want) {
			t.Errorf("%+v: %v, want %q", c2.lim, err, c2.want)
		}
	}
}
