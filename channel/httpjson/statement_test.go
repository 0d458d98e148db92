package httpjson

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

const statementCSV = "type,order_no,txn_id,refund_no,amount,fee,currency,time\n" +
	"PAYMENT,ORD-1,T1,,10000,60,CNY,2026-11-30T01:02:03Z\n" +
	"REFUND,ORD-1,T1,R1,2500,-15,cny,2026-11-30T09:00:00+08:00\n"

func parseAll(t *testing.T, body string) ([]recon.StatementLine, recon.StatementTotals, error) {
	t.Helper()
	var out []recon.StatementLine
	tot, err := ParseStatement(strings.NewReader(body), int64(len(body)), "2026-11-30", time.UTC, channel.StatementLimits{}, func(l recon.StatementLine) error {
		out = append(out, l)
		return nil
	})
	return out, tot, err
}

func TestParseStatement(t *testing.T) {
	lines, tot, err := parseAll(t, "\ufeff"+statementCSV)
	if err != nil {
		t.Fatal(err)
	}
	want := []recon.StatementLine{
		{LineNo: 2, Kind: recon.LinePayment, OrderNo: "ORD-1", ChannelTxnID: "T1", Amount: 10000, Fee: 60, Currency: "CNY",
			OccurredAt: time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)},
		{LineNo: 3, Kind: recon.LineRefund, OrderNo: "ORD-1", ChannelTxnID: "T1", RefundNo: "R1", Amount: 2500, Fee: -15, Currency: "CNY",
			OccurredAt: time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)},
	}
	if len(lines) != 2 || lines[0] != want[0] || lines[1] != want[1] {
		t.Fatalf("got %+v", lines)
	}
	if tot.Present || tot.PaymentsCount != 1 || tot.PaymentsAmount != 10000 || tot.RefundsAmount != 2500 || tot.FeesAmount != 45 {
		t.Errorf("totals %+v", tot)
	}
	// Columns by name, in any order, extra ones ignored.
	reordered := "time,currency,fee,amount,refund_no,txn_id,order_no,type,note\n2026-11-30T01:02:03Z,CNY,60,10000,,T1,ORD-1,PAYMENT,x\n"
	if l, _, err := parseAll(t, reordered); err != nil || len(l) != 1 || l[0].Amount != 10000 {
		t.Errorf("reordered: %v %+v", err, l)
	}
	if l, _, err := parseAll(t, strings.Join(StatementHeader, ",")+"\n"); err != nil || len(l) != 0 {
		t.Errorf("empty day: %v %+v", err, l)
	}
}

func TestParseStatementRefusesNamingTheLine(t *testing.T) {
	head := "type,order_no,txn_id,refund_no,amount,fee,currency,time\n"
	ok := "PAYMENT,ORD-1,T1,,100,1,CNY,2026-11-30T01:02:03Z\n"
	for name, tc := range map[string]struct{ body, want string }{
		"empty":         {"", "line 1"},
		"no fee column": {"type,order_no,txn_id,refund_no,amount,currency,time\n", `line 1: header has no "fee"`},
		"decimal":       {head + ok + "PAYMENT,ORD-2,T2,,1.00,1,CNY,2026-11-30T01:02:03Z\n", "line 3: amount"},
		"bad time":      {head + ok + ok[:len(ok)-21] + "yesterday\n", "line 3: time"},
		"bad type":      {head + "CHARGE,ORD-2,T2,,100,1,CNY,2026-11-30T01:02:03Z\n", "line 2: unknown kind"},
		"no refund no":  {head + "REFUND,ORD-2,T2,,100,1,CNY,2026-11-30T01:02:03Z\n", "line 2: refund without"},
		"negative":      {head + "PAYMENT,ORD-2,T2,,-100,1,CNY,2026-11-30T01:02:03Z\n", "line 2: amount -100"},
		"no txn":        {head + "PAYMENT,ORD-2,,,100,1,CNY,2026-11-30T01:02:03Z\n", "line 2: empty txn_id"},
		"short row":     {head + ok + "PAYMENT,ORD-2\n", "line 3"},
		"bad quote":     {head + ok + ok + "PAYMENT,\"ORD-2,T2\n", "line 4"},
		"currency":      {head + "PAYMENT,ORD-2,T2,,100,1,yuan,2026-11-30T01:02:03Z\n", "line 2: invalid currency"},
	} {
		_, _, err := parseAll(t, tc.body)
		if !errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadStatement naming %q", name, err, tc.want)
		}
	}
}

func TestFetchStatement(t *testing.T) {
	body := []byte(statementCSV)
	var gotPath, gotDate string
	status, sig := http.StatusOK, Sign("k", body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotDate = r.URL.Path, r.URL.Query().Get("date")
		w.Header().Set(SignatureHeader, sig)
		w.WriteHeader(status)
		if status == http.StatusOK {
			_, _ = w.Write(body)
		} else {
			_, _ = w.Write([]byte("{}"))
		}
	}))
	defer srv.Close()
	c, err := New(Config{Name: "bank", BaseURL: srv.URL + "/api", Secret: "k", StatementPath: "/bills/daily"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var buf bytes.Buffer
	src, err := c.FetchStatement(ctx, "2026-11-30", &buf)
	if err != nil || buf.String() != statementCSV || gotPath != "/api/bills/daily" || gotDate != "2026-11-30" || !strings.Contains(src, "/api/bills/daily?date=2026-11-30") {
		t.Fatalf("fetch: %v %q %s %s %s", err, buf.String(), gotPath, gotDate, src)
	}
	sig = Sign("forged", body)
	if _, err := c.FetchStatement(ctx, "2026-11-30", io.Discard); !errors.Is(err, channel.ErrBadSignature) || channel.ClassOf(err) != channel.ClassPermanent {
		t.Errorf("bad signature: %v", err)
	}
	status, sig = http.StatusNotFound, Sign("k", []byte("{}"))
	if _, err := c.FetchStatement(ctx, "2026-11-30", io.Discard); !errors.Is(err, channel.ErrNoStatement) {
		t.Errorf("404: %v", err)
	}
	sig = "" // an unsigned 404 says nothing
	if _, err := c.FetchStatement(ctx, "2026-11-30", io.Discard); errors.Is(err, channel.ErrNoStatement) || !errors.Is(err, channel.ErrBadSignature) {
		t.Errorf("unsigned 404: %v", err)
	}
	status = http.StatusServiceUnavailable
	if _, err := c.FetchStatement(ctx, "2026-11-30", io.Discard); channel.ClassOf(err) != channel.ClassTransient {
		t.Errorf("503: %v", err)
	}
	if _, err := c.FetchStatement(ctx, "30/11/2026", io.Discard); err == nil {
		t.Error("bad day accepted")
	}
}

// FuzzParseStatement feeds arbitrary files to ParseStatement: it never
// panics, every line it emits is valid, and every failure names a line.
func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(statementCSV))
	f.Add([]byte("\ufefftype,order_no,txn_id,refund_no,amount,fee,currency,time\nREFUND,a,b,c,1,0,USD,2026-01-01T00:00:00Z\n"))
	f.Add([]byte("type,order_no\n\"x"))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := ParseStatement(bytes.NewReader(body), int64(len(body)), "2026-11-30", time.UTC, channel.StatementLimits{}, func(l recon.StatementLine) error {
			if err := l.Validate(); err != nil {
				t.Fatalf("emitted an invalid line: %v", err)
			}
			if l.OccurredAt.Location() != time.UTC {
				t.Fatalf("time %s not in UTC", l.OccurredAt)
			}
			return nil
		})
		if err != nil && (!errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), "line ")) {
			t.Fatalf("error %v does not wrap ErrBadStatement or name a line", err)
		}
	})
}

func TestParseStatementBounds(t *testing.T) {
	head := "type,order_no,txn_id,refund_no,amount,fee,currency,time\n"
	ok := "PAYMENT,ORD-1,T1,,100,1,CNY,2026-11-30T01:02:03Z\n"
	for name, tc := range map[string]struct {
		body string
		lim  channel.StatementLimits
		want string
	}{
		"the day before":  {body: head + ok + "PAYMENT,ORD-2,T2,,100,1,CNY,2026-11-29T23:59:59Z\n", want: "line 3: time 2026-11-29 23:59:59 is outside the statement's day 2026-11-30"},
		"the next day":    {body: head + "PAYMENT,ORD-2,T2,,100,1,CNY,2026-12-01T08:00:00+08:00\n", want: "line 2: time 2026-12-01 00:00:00 is outside"},
		"long line":       {body: head + ok + "PAYMENT,ORD-2,T2,,100,1,CNY,2026-11-30T01:02:03Z," + strings.Repeat("x", MaxStatementLine) + "\n", want: "line 3 is longer than 65536 bytes"},
		"long field":      {body: head + "PAYMENT," + strings.Repeat("o", channel.MaxCSVField+1) + ",T2,,100,1,CNY,2026-11-30T01:02:03Z\n", want: "line 2: field too long: field 2 has 8193 bytes"},
		"bytes past cap":  {body: head + strings.Repeat(ok, 100), lim: channel.StatementLimits{MaxBytes: 1000}, want: "more than 1000 bytes decompressed (statements.max_bytes)"},
		"lines past cap":  {body: head + strings.Repeat(ok, 10), lim: channel.StatementLimits{MaxLines: 5}, want: "more than 5 lines (statements.max_lines) (after line 5)"},
		"multi-line cell": {body: head + "PAYMENT,\"ORD\n-2\",T2,,100,1,CNY,2026-11-30T01:02:03Z\n", want: "line 2: unterminated quoted field"},
	} {
		_, err := ParseStatement(strings.NewReader(tc.body), int64(len(tc.body)), "2026-11-30", time.UTC, tc.lim, func(recon.StatementLine) error { return nil })
		if !errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadStatement naming %q", name, err, tc.want)
		}
	}
	// The day is the configured zone's: 2026-11-30 in Shanghai starts at 16:00 UTC the day before.
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	body := head + "PAYMENT,ORD-1,T1,,100,1,CNY,2026-11-29T16:00:00Z\n"
	if _, err := ParseStatement(strings.NewReader(body), int64(len(body)), "2026-11-30", sh, channel.StatementLimits{}, func(recon.StatementLine) error { return nil }); err != nil {
		t.Errorf("Shanghai midnight: %v", err)
	}
}

func TestFetchStatementBounded(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(statementCSV)) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/endless/statement": // a body that never ends
			_, _ = w.Write([]byte("type,order_no,txn_id,refund_no,amount,fee,currency,time\n"))
			line := []byte("PAYMENT,ORD-1,T1,,100,1,CNY,2026-11-30T01:02:03Z\n")
			for {
				if _, err := w.Write(line); err != nil {
					return
				}
			}
		case "/stalled/statement": // headers, then nothing
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		case "/moved/statement":
			http.Redirect(w, r, other.URL+"/statement?date=2026-11-30", http.StatusFound)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct{ path, want string }{
		{"/endless", "more than 1048576 bytes decompressed (statements.max_bytes)"},
		{"/stalled", "the channel sent nothing for 200ms (timeout)"},
		{"/moved", "refused a redirect to another host"},
	} {
		c, err := New(Config{Name: "bank", BaseURL: srv.URL + tc.path, Timeout: 200 * time.Millisecond,
			StatementLimits: channel.StatementLimits{MaxBytes: 1 << 20}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.FetchStatement(context.Background(), "2026-11-30", io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "httpjson bank: fetch statement 2026-11-30") {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
	}
}
