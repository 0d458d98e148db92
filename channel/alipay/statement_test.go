package alipay_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
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
	totals, err := alipay.ParseBill(bytes.NewReader(zipped), int64(len(zipped)), billDay, func(l recon.StatementLine) error {
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
		{"other day", billZip(t, true, map[string]string{detailName: strings.Replace(good, "[2026年11月30日 00:00:00]", "[2026年11月29日 00:00:00]", 1)}), "line 3: the bill starts on 2026-11-29, not on 2026-11-30"},
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
	_, err := alipay.ParseBill(bytes.NewReader(z), int64(len(z)), billDay, func(recon.StatementLine) error { return stop })
	if err != stop {
		t.Fatalf("error %v, want emit's own", err)
	}
}

func TestFetchStatement(t *testing.T) {
	k := keys(t)
	zipped := billZip(t, true, map[string]string{detailName: fixture(t, "detail_25col.csv")})
	var biz string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gateway.do":
			_ = r.ParseForm()
			if r.Form.Get("method") != alipay.MethodBillDownloadURL {
				t.Errorf("method %q", r.Form.Get("method"))
			}
			if err := alipay.Verify(&k.AlipayAppKey.PublicKey, alipay.SignContent(r.Form), r.Form.Get("sign")); err != nil {
				t.Errorf("request signature: %v", err)
			}
			biz = r.Form.Get("biz_content")
			node := fmt.Sprintf(`{"code":"10000","msg":"Success","bill_download_url":"%s/downloadBillFile.resource?bizType=trade&userId=2088&fileType=csv.zip&bizDates=20261130&downloadFileName=x.csv.zip&fileId=%%2Ftrade%%2F2088&timestamp=1&token=secret"}`, srv.URL)
			_, _ = w.Write([]byte(signed(t, k.AlipayKey, alipay.MethodBillDownloadURL, node)))
		case "/downloadBillFile.resource":
			_, _ = w.Write(zipped)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL+"/gateway.do")
	var buf bytes.Buffer
	source, err := c.FetchStatement(context.Background(), "2026-11-30", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if biz != `{"bill_type":"trade","bill_date":"2026-11-30"}` {
		t.Errorf("biz_content %s", biz)
	}
	if source != srv.URL+"/downloadBillFile.resource" {
		t.Errorf("source %q (the query holds the token: it must go)", source)
	}
	if !bytes.Equal(buf.Bytes(), zipped) {
		t.Errorf("wrote %d bytes, want the %d downloaded", buf.Len(), len(zipped))
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
		if _, err := alipay.ParseBill(bytes.NewReader(z), int64(len(z)), billDay, func(recon.StatementLine) error { n++; return nil }); err != nil || n != len(lines) {
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
