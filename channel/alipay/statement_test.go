package alipay_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
)

// billZip zips UTF-8 texts as Alipay does: names and contents in GBK, no
// UTF-8 flag. gbk false keeps the contents in UTF-8 (a wrong encoding).
func billZip(t testing.TB, gbk bool, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, text := range files {
		n, err := simplifiedchinese.GBK.NewEncoder().String(name)
		if err != nil {
			t.Fatal(err)
		}
		body := []byte(text)
		if gbk {
			if body, err = simplifiedchinese.GBK.NewEncoder().Bytes(body); err != nil {
				t.Fatal(err)
			}
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, NonUTF8: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/statement/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const billDay = "2026-11-30"

const detailName = "20880000000000000156_20261130_业务明细.csv"
const summaryName = "20880000000000000156_20261130_业务明细(汇总).csv"

func parse(t testing.TB, zipped []byte) ([]recon.StatementLine, recon.StatementTotals, error) {
	t.Helper()
	var lines []recon.StatementLine
	totals, err := alipay.ParseBill(bytes.NewReader(zipped), int64(len(zipped)), alipay.BillCheck{Day: billDay}, func(l recon.StatementLine) error {
		lines = append(lines, l)
		return nil
	})
	return lines, totals, err
}

func at(s string) time.Time {
	t, err := time.ParseInLocation(alipay.TimeLayout, s, alipay.Beijing)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParseBill25Columns(t *testing.T) {
	z := billZip(t, true, map[string]string{detailName: fixture(t, "detail_25col.csv"), summaryName: "#支付宝业务汇总查询\r\n"})
	lines, totals, err := parse(t, z)
	if err != nil {
		t.Fatal(err)
	}
	want := []recon.StatementLine{
		{LineNo: 6, Kind: recon.LinePayment, OrderNo: "ORD-1001", ChannelTxnID: "2026113022001419930500000001", Amount: 8888, Fee: -53, Currency: "CNY", OccurredAt: at("2026-11-30 09:15:09")},
		{LineNo: 7, Kind: recon.LinePayment, OrderNo: "ORD-1002", ChannelTxnID: "2026113022001419930500000002", Amount: 10000, Fee: -57, Currency: "CNY", OccurredAt: at("2026-11-30 12:00:31")},
		{LineNo: 8, Kind: recon.LinePayment, OrderNo: "ORD-1003", ChannelTxnID: "2026113022001419930500000003", Amount: 1, Currency: "CNY", OccurredAt: at("2026-11-30 23:59:59")},
		{LineNo: 9, Kind: recon.LineRefund, OrderNo: "ORD-0977", ChannelTxnID: "2026112822001419930500000777", RefundNo: "RF-0977-1", Amount: 3580, Fee: 21, Currency: "CNY", OccurredAt: at("2026-11-30 16:20:11")},
	}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("lines\n got %v\nwant %v", lines, want)
	}
	wantTotals := recon.StatementTotals{Present: true, PaymentsCount: 3, PaymentsAmount: 18389, RefundsCount: 1, RefundsAmount: 3580, FeesAmount: -89}
	if totals != wantTotals {
		t.Errorf("totals %+v, want %+v", totals, wantTotals)
	}
}

func TestParseBill29Columns(t *testing.T) {
	lines, totals, err := parse(t, billZip(t, true, map[string]string{detailName: fixture(t, "detail_29col.csv")}))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 || lines[1].Kind != recon.LineRefund || lines[1].RefundNo != "2026113020010000001" ||
		lines[1].Amount != 29500 || lines[1].OrderNo != "qd_20261130091500A" || lines[2].Fee != -8 {
		t.Errorf("lines %+v", lines)
	}
	if !totals.Present || totals.PaymentsCount != 2 || totals.PaymentsAmount != 30750 || totals.RefundsAmount != 29500 || totals.FeesAmount != -8 {
		t.Errorf("totals %+v", totals)
	}
}

func TestWriteBillRoundTrip(t *testing.T) {
	lines := []recon.StatementLine{
		{LineNo: 6, Kind: recon.LinePayment, OrderNo: "A-1", ChannelTxnID: "T1", Amount: 12345, Fee: -74, Currency: "CNY", OccurredAt: at("2026-11-30 00:00:01")},
		{LineNo: 7, Kind: recon.LineRefund, OrderNo: "A-1", ChannelTxnID: "T1", RefundNo: "R,1", Amount: 45, Currency: "CNY", OccurredAt: at("2026-11-30 23:00:00")},
	}
	var buf bytes.Buffer
	if err := alipay.WriteBill(&buf, alipay.Bill{Account: "20880000000000000156", Day: "2026-11-30", Lines: lines, ExportedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		if f.Flags&0x800 != 0 {
			t.Errorf("%s: UTF-8 flag set; Alipay names files in GBK", alipay.ZipName(f))
		}
		names = append(names, alipay.ZipName(f))
	}
	if fmt.Sprint(names) != "[20880000000000000156_20261130_业务明细.csv 20880000000000000156_20261130_业务明细(汇总).csv]" {
		t.Errorf("names %q", names)
	}
	got, totals, err := parse(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(lines) {
		t.Errorf("read back\n got %v\nwant %v", got, lines)
	}
	if totals.PaymentsAmount != 12345 || totals.RefundsAmount != 45 || totals.FeesAmount != -74 {
		t.Errorf("totals %+v", totals)
	}
}

func TestParseBillRejects(t *testing.T) {
	good := fixture(t, "detail_25col.csv")
	gz := billZip(t, true, map[string]string{detailName: good})
	cases := []struct {
		name string
		zip  []byte
		want string
	}{
		{"footer amount", billZip(t, true, map[string]string{detailName: strings.Replace(good, "商家实收共183.89元", "商家实收共183.90元", 1)}), "line 12: #交易合计 says 商家实收 183.90 yuan, the rows add up to 183.89"},
		{"footer count", billZip(t, true, map[string]string{detailName: strings.Replace(good, "#退款合计：1笔", "#退款合计：2笔", 1)}), "line 13: #退款合计 says 2 rows, the file has 1"},
		{"no footer", billZip(t, true, map[string]string{detailName: good[:strings.Index(good, "#-----------------------------------------业务明细列表结束")]}), "no #交易合计 footer"},
		{"truncated zip", gz[:len(gz)/2], "not a zip file"},
		{"utf-8 text", billZip(t, false, map[string]string{detailName: good}), "line 1: not GBK text"},
		{"bad amount", billZip(t, true, map[string]string{detailName: strings.Replace(good, ",88.88,88.88,", ",88.8.8,88.88,", 1)}), "line 6: 订单金额(元): invalid decimal amount"},
		{"bad time", billZip(t, true, map[string]string{detailName: strings.Replace(good, "2026-11-30 09:15:09", "2026-11-31 09:15:09", 1)}), "line 6: 完成时间"},
		{"short row", billZip(t, true, map[string]string{detailName: strings.Replace(good, ",88.88,88.88,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,-0.53,0.00,", "", 1)}), "line 6: 11 fields, the header has 25"},
		{"refund sign", billZip(t, true, map[string]string{detailName: strings.Replace(good, "-35.80,-35.80", "35.80,-35.80", 1)}), "line 9: 订单金额(元) 35.80 yuan has the wrong sign"},
		{"row after footer", billZip(t, true, map[string]string{detailName: good + "X,Y\r\n"}), "a row after the footer"},
		{"no detail", billZip(t, true, map[string]string{summaryName: good}), "no detail file"},
		{"other day", billZip(t, true, map[string]string{detailName: strings.Replace(good, "[2026年11月30日 00:00:00]", "[2026年11月29日 00:00:00]", 1)}), "line 3: the bill covers #起始日期 2026年11月29日 00:00:00 to 终止日期 2026年12月01日 00:00:00, not the day 2026-11-30"},
		{"other end", billZip(t, true, map[string]string{detailName: strings.Replace(good, "终止日期：[2026年12月01日 00:00:00]", "终止日期：[2026年12月02日 00:00:00]", 1)}), "line 3: the bill covers"},
		{"no period", billZip(t, true, map[string]string{detailName: strings.Replace(good, "#起始日期", "#开始日期", 1)}), "line 5: no #起始日期/终止日期 line before the header row"},
		{"row the day before", billZip(t, true, map[string]string{detailName: strings.Replace(good, "2026-11-30 09:15:09", "2026-11-29 23:59:59", 1)}), "line 6: 完成时间 2026-11-29 23:59:59 is outside the statement's day 2026-11-30"},
		{"row at the next midnight", billZip(t, true, map[string]string{detailName: strings.Replace(good, "2026-11-30 23:59:59", "2026-12-01 00:00:00", 1)}), "line 8: 完成时间 2026-12-01 00:00:00 is outside"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parse(t, c.zip)
			if !errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrBadStatement with %q", err, c.want)
			}
		})
	}
}

func TestParseBillPassesEmitErrors(t *testing.T) {
	z := billZip(t, true, map[string]string{detailName: fixture(t, "detail_25col.csv")})
	stop := errors.New("stop")
	_, err := alipay.ParseBill(bytes.NewReader(z), int64(len(z)), alipay.BillCheck{Day: billDay}, func(recon.StatementLine) error { return stop })
	if err != stop {
		t.Fatalf("error %v, want emit's own", err)
	}
}

// billSite is a gateway and a bill download host: the gateway answers
// the signed bill download URL link(site), the host serves the bill at
// /downloadBillFile.resource and redirects from /moved to where moved says.
type billSite struct {
	srv   *httptest.Server
	biz   string
	link  func(base string) string
	moved func(base string) string
	bill  []byte
}

func newBillSite(t *testing.T, tls bool, bill []byte) *billSite {
	k := keys(t)
	b := &billSite{bill: bill}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gateway.do":
			_ = r.ParseForm()
			if r.Form.Get("method") != alipay.MethodBillDownloadURL {
				t.Errorf("method %q", r.Form.Get("method"))
			}
			if err := alipay.Verify(&k.AlipayAppKey.PublicKey, alipay.SignContent(r.Form), r.Form.Get("sign")); err != nil {
				t.Errorf("request signature: %v", err)
			}
			b.biz = r.Form.Get("biz_content")
			node := fmt.Sprintf(`{"code":"10000","msg":"Success","bill_download_url":%q}`, b.link(b.srv.URL))
			_, _ = w.Write([]byte(signed(t, k.AlipayKey, alipay.MethodBillDownloadURL, node)))
		case "/downloadBillFile.resource":
			_, _ = w.Write(b.bill)
		case "/moved":
			http.Redirect(w, r, b.moved(b.srv.URL), http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	if tls {
		b.srv = httptest.NewTLSServer(h)
	} else {
		b.srv = httptest.NewServer(h)
	}
	t.Cleanup(b.srv.Close)
	return b
}

// docLink is a download URL as Alipay's documentation shows them, on base.
func docLink(base, account string) string {
	return base + "/downloadBillFile.resource?bizType=trade&userId=" + account + "&fileType=csv.zip&bizDates=20261130&downloadFileName=" +
		account + "_20261130.csv.zip&fileId=%2Ftrade%2F" + account + "%2F20261130.csv.zip&timestamp=1&token=secret"
}

func (b *billSite) client(t *testing.T, mod ...func(*alipay.Config)) *alipay.Client {
	return newClient(t, b.srv.URL+"/gateway.do", append([]func(*alipay.Config){func(c *alipay.Config) {
		if b.srv.TLS != nil {
			c.HTTPClient = b.srv.Client()
		}
	}}, mod...)...)
}

func TestFetchStatement(t *testing.T) {
	zipped := billZip(t, true, map[string]string{detailName: fixture(t, "detail_25col.csv")})
	site := newBillSite(t, true, zipped)
	// The gateway's answer links over plain http, as Alipay's documented
	// sample does: the bill is fetched over https all the same (the server
	// speaks TLS only).
	site.link = func(base string) string {
		return docLink(strings.Replace(base, "https://", "http://", 1), "20880000000000000156")
	}
	var buf bytes.Buffer
	source, err := site.client(t).FetchStatement(context.Background(), "2026-11-30", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if site.biz != `{"bill_type":"trade","bill_date":"2026-11-30"}` {
		t.Errorf("biz_content %s", site.biz)
	}
	if source != site.srv.URL+"/downloadBillFile.resource" {
		t.Errorf("source %q (https, and the query holds the token: it must go)", source)
	}
	if !bytes.Equal(buf.Bytes(), zipped) {
		t.Errorf("wrote %d bytes, want the %d downloaded", buf.Len(), len(zipped))
	}
	// A channel marked insecure (a simulator) keeps a plain-http link.
	plain := newBillSite(t, false, zipped)
	plain.link = func(base string) string { return docLink(base, "2088000000000000") }
	if _, err := plain.client(t, func(c *alipay.Config) { c.Insecure = true }).FetchStatement(context.Background(), "2026-11-30", io.Discard); err != nil {
		t.Fatalf("insecure channel: %v", err)
	}
	if _, err := plain.client(t).FetchStatement(context.Background(), "2026-11-30", io.Discard); err == nil {
		t.Fatal("a plain-http bill host was used by a channel that is not insecure")
	}
}

// TestFetchStatementRefuses: a bill from elsewhere than the signed link's
// https host, or of another account or day, is refused and nothing of it is
// written.
func TestFetchStatementRefuses(t *testing.T) {
	forged := billZip(t, true, map[string]string{detailName: fixture(t, "detail_25col.csv")})
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(forged) }))
	defer attacker.Close()
	otherDay := billZip(t, true, map[string]string{detailName: strings.Replace(fixture(t, "detail_25col.csv"), "2026年11月30日 00:00:00]", "2026年11月29日 00:00:00]", 1)})
	cases := []struct {
		name  string
		bill  []byte
		link  func(base string) string
		moved func(base string) string
		mod   func(*alipay.Config)
		want  string
	}{
		{name: "redirect to plain http", link: func(base string) string { return base + "/moved" }, moved: func(string) string { return attacker.URL + "/x.zip" },
			want: "refused a redirect off https (to http://"},
		{name: "redirect to another host", link: func(base string) string { return base + "/moved" }, moved: func(base string) string {
			return strings.Replace(base, "127.0.0.1", "localhost", 1) + "/downloadBillFile.resource"
		},
			want: "refused a redirect to another host (localhost:"},
		{name: "another account", link: func(base string) string { return docLink(base, "20889999999999990156") },
			want: "line 2: the bill is of account #账号 20880000000000000156, not the channel's 20889999999999990156"},
		{name: "URL of another pid", link: func(base string) string { return docLink(base, "20880000000000000156") },
			mod:  func(c *alipay.Config) { c.PID = "2088111111111111" },
			want: "the signed download URL is for account 20880000000000000156, not the channel's pid 2088111111111111"},
		{name: "another pid", link: func(base string) string { return base + "/downloadBillFile.resource?token=x" },
			mod:  func(c *alipay.Config) { c.PID = "2088111111111111" },
			want: "not the channel's 2088111111111111"},
		{name: "another day", bill: otherDay, link: func(base string) string { return docLink(base, "2088000000000000") },
			want: "line 3: the bill covers #起始日期 2026年11月29日 00:00:00"},
		{name: "past the byte cap", link: func(base string) string { return docLink(base, "2088000000000000") },
			mod:  func(c *alipay.Config) { c.StatementLimits.MaxBytes = 100 },
			want: "more than 100 bytes decompressed (statements.max_bytes)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bill := c.bill
			if bill == nil {
				bill = forged
			}
			site := newBillSite(t, true, bill)
			site.link, site.moved = c.link, c.moved
			mods := []func(*alipay.Config){}
			if c.mod != nil {
				mods = append(mods, c.mod)
			}
			var buf bytes.Buffer
			_, err := site.client(t, mods...).FetchStatement(context.Background(), "2026-11-30", &buf)
			if !errors.Is(err, channel.ErrBadStatement) || channel.ClassOf(err) != channel.ClassPermanent || !strings.Contains(err.Error(), c.want) ||
				!strings.Contains(err.Error(), "alipay ali: statement 2026-11-30") {
				t.Fatalf("error %v, want a permanent bad statement naming %q", err, c.want)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes of a refused bill written", buf.Len())
			}
		})
	}
}

// TestParseBillLimits: a small zip that inflates past the configured caps
// is refused, whether its header says so or not.
func TestParseBillLimits(t *testing.T) {
	good := fixture(t, "detail_25col.csv")
	rows := strings.SplitAfter(good, "\r\n")
	row := rows[5] // ORD-1001; repeated, its footer no longer adds up, but the cap comes first
	big := strings.Join(rows[:5], "") + strings.Repeat(row, 20000) + strings.Join(rows[6:], "")
	z := billZip(t, true, map[string]string{detailName: big})
	if len(z) > len(big)/50 {
		t.Fatalf("zip of %d bytes for %d: not compressible enough for the test", len(z), len(big))
	}
	for _, c := range []struct {
		lim  channel.StatementLimits
		want string
	}{
		{channel.StatementLimits{MaxBytes: 1 << 20}, "more than 1048576 bytes decompressed (statements.max_bytes) (the zip says"},
		{channel.StatementLimits{MaxLines: 1000}, "more than 1000 lines (statements.max_lines) (after line 1000)"},
	} {
		_, err := alipay.ParseBill(bytes.NewReader(z), int64(len(z)), alipay.BillCheck{Day: billDay, Limits: c.lim}, func(recon.StatementLine) error { return nil })
		if !errors.Is(err, channel.ErrStatementTooLarge) || !errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.lim, err, c.want)
		}
	}
	// The detail unzipped by hand is bounded as it is read.
	raw := mustGBK(t, big)
	_, err := alipay.ParseBill(bytes.NewReader(raw), int64(len(raw)), alipay.BillCheck{Day: billDay, Limits: channel.StatementLimits{MaxBytes: 1 << 20}}, func(recon.StatementLine) error { return nil })
	if !errors.Is(err, channel.ErrStatementTooLarge) || !strings.Contains(err.Error(), "more than 1048576 bytes decompressed") {
		t.Errorf("unzipped detail: %v", err)
	}
}

func mustGBK(t *testing.T, s string) []byte {
	b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseStatementChecksThePID: a bill imported by hand is refused when
// it names another account than the channel's pid.
func TestParseStatementChecksThePID(t *testing.T) {
	z := billZip(t, true, map[string]string{detailName: fixture(t, "detail_25col.csv")})
	for pid, want := range map[string]string{
		"2088000000000000":     "",
		"20880000000000000156": "",
		"2088000000000001":     "line 2: the bill is of account #账号 20880000000000000156, not the channel's 2088000000000001",
	} {
		c := newClient(t, "https://openapi.alipay.com/gateway.do", func(c *alipay.Config) { c.PID = pid })
		_, err := c.ParseStatement(bytes.NewReader(z), int64(len(z)), billDay, nil, func(recon.StatementLine) error { return nil })
		if (want == "" && err != nil) || (want != "" && (!errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), want))) {
			t.Errorf("pid %s: %v, want %q", pid, err, want)
		}
	}
	noAccount := billZip(t, true, map[string]string{detailName: strings.Replace(fixture(t, "detail_25col.csv"), "#账号", "#帐户", 1)})
	c := newClient(t, "https://openapi.alipay.com/gateway.do", func(c *alipay.Config) { c.PID = "2088000000000000" })
	if _, err := c.ParseStatement(bytes.NewReader(noAccount), int64(len(noAccount)), billDay, nil, func(recon.StatementLine) error { return nil }); err == nil ||
		!strings.Contains(err.Error(), "no #账号 line before the header row") {
		t.Errorf("no account: %v", err)
	}
	if _, err := alipay.New(alipay.Config{AppID: "a", PrivateKey: keys(t).AlipayAppKey, AlipayPublicKey: &keys(t).AlipayKey.PublicKey, PID: "1234"}); err == nil ||
		!strings.HasPrefix(err.Error(), "pid: ") {
		t.Errorf("bad pid: %v", err)
	}
}

func TestFetchStatementErrors(t *testing.T) {
	k := keys(t)
	cases := []struct {
		name  string
		body  string
		check func(error) bool
	}{
		{"no bill", signed(t, k.AlipayKey, alipay.MethodBillDownloadURL, `{"code":"40004","msg":"Business Failed","sub_code":"isp.bill_not_exist","sub_msg":"账单不存在"}`),
			func(err error) bool { return errors.Is(err, channel.ErrNoStatement) }},
		{"bad signature", signed(t, k.AlipayAppKey, alipay.MethodBillDownloadURL, `{"code":"10000","msg":"Success","bill_download_url":"http://127.0.0.1/x"}`),
			func(err error) bool { return errors.Is(err, channel.ErrBadSignature) }},
		{"system error", signed(t, k.AlipayKey, alipay.MethodBillDownloadURL, `{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}`),
			func(err error) bool { return channel.ClassOf(err) == channel.ClassTransient }},
		{"not a url", signed(t, k.AlipayKey, alipay.MethodBillDownloadURL, `{"code":"10000","msg":"Success","bill_download_url":"ftp://x/y"}`),
			func(err error) bool { return errors.Is(err, channel.ErrMalformed) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := newClient(t, gateway(t, reply{status: 200, body: c.body}, nil))
			_, err := cl.FetchStatement(context.Background(), "2026-11-30", &bytes.Buffer{})
			if err == nil || !c.check(err) {
				t.Fatalf("error %v", err)
			}
		})
	}
}

// BenchmarkParseBill parses a bill of 100,000 payments (go test -bench
// ParseBill -benchmem ./channel/alipay).
func BenchmarkParseBill(b *testing.B) {
	lines := make([]recon.StatementLine, 100_000)
	at := at("2026-11-30 00:00:00")
	for i := range lines {
		lines[i] = recon.StatementLine{Kind: recon.LinePayment, OrderNo: fmt.Sprintf("ORD-%08d", i), ChannelTxnID: fmt.Sprintf("2026113022001419930%09d", i),
			Amount: int64(1000 + i%9000), Fee: -6, Currency: "CNY", OccurredAt: at.Add(time.Duration(i) * 800 * time.Millisecond)}
	}
	var buf bytes.Buffer
	if err := alipay.WriteBill(&buf, alipay.Bill{Account: "20880000000000000156", Day: "2026-11-30", Lines: lines, ExportedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	z := buf.Bytes()
	b.SetBytes(int64(len(z)))
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if _, err := alipay.ParseBill(bytes.NewReader(z), int64(len(z)), alipay.BillCheck{Day: billDay}, func(recon.StatementLine) error { n++; return nil }); err != nil || n != len(lines) {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestParseBillReadsTheUnzippedDetail: the detail file unzipped by hand
// imports as it is.
func TestParseBillReadsTheUnzippedDetail(t *testing.T) {
	gbk, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(fixture(t, "detail_25col.csv")))
	if err != nil {
		t.Fatal(err)
	}
	lines, totals, err := parse(t, gbk)
	if err != nil || len(lines) != 4 || totals.PaymentsAmount != 18389 {
		t.Fatalf("%d lines, totals %+v, error %v", len(lines), totals, err)
	}
}
