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
	tot, err := ParseStatement(strings.NewReader(body), int64(len(body)), func(l recon.StatementLine) error {
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
		_, err := ParseStatement(bytes.NewReader(body), int64(len(body)), func(l recon.StatementLine) error {
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
