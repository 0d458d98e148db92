package stripe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/stripe"
)

const stmtDay = "2026-11-30"

func stmtFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/statement/balance_transactions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseStmt(t testing.TB, b []byte) ([]recon.StatementLine, recon.StatementTotals, error) {
	t.Helper()
	var lines []recon.StatementLine
	totals, err := stripe.ParseBalanceTransactions(bytes.NewReader(b), stmtDay, time.UTC, channel.StatementLimits{}, func(l recon.StatementLine) error {
		lines = append(lines, l)
		return nil
	})
	return lines, totals, err
}

func TestParseBalanceTransactions(t *testing.T) {
	lines, totals, err := parseStmt(t, stmtFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	want := []recon.StatementLine{
		{LineNo: 1, Kind: recon.LinePayment, ChannelTxnID: "pi_3MtwBwLkdIwHu7ix28a3tqPa", Amount: 10000, Fee: 320, Currency: "USD", OccurredAt: at("2026-11-30T20:00:00Z")},
		{LineNo: 2, Kind: recon.LineRefund, OrderNo: "ORD-3001", ChannelTxnID: "pi_3MtwAxLkdIwHu7ix0ZmYy0Fz", RefundNo: "re_1NBN6oLkdIwHu7ixlkTdRW4K", Amount: 2500, Currency: "USD", OccurredAt: at("2026-11-30T19:50:00Z")},
		{LineNo: 4, Kind: recon.LinePayment, OrderNo: "ORD-3002", ChannelTxnID: "ch_1OaBcELkdIwHu7ixLegacy1", Amount: 999, Fee: 59, Currency: "USD", OccurredAt: at("2026-11-30T00:01:00Z")},
	}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("lines\n got %v\nwant %v", lines, want)
	}
	if totals.Present {
		t.Errorf("totals %+v: Stripe's list has none", totals)
	}
}

func TestParseBalanceTransactionsRejects(t *testing.T) {
	good := string(stmtFixture(t))
	first := good[:strings.Index(good, "\n")+1]
	cases := []struct{ name, file, want string }{
		{"truncated", first, "line 1: the last page says has_more"},
		{"net", strings.Replace(good, `"net":9680`, `"net":9690`, 1), "line 1 (page 1), transaction 1: txn_3MtwBwLkdIwHu7ix0ZJ7Ll9D: net 9690 is not amount 10000 minus fee 320"},
		{"float amount", strings.Replace(good, `"amount":10000,"available_on"`, `"amount":100.5,"available_on"`, 1), "amount 100.5 is not an integer"},
		{"other day", strings.Replace(good, `"created":1796068800,"currency":"usd","description"`, `"created":1796169600,"currency":"usd","description"`, 1), "is outside the statement's day"},
		{"not expanded", strings.Replace(good, `"source":{"id":"ch_3MtwBwLkdIwHu7ix0snN8B0K"`, `"source":"ch_3MtwBwLkdIwHu7ix0snN8B0K","x":{"id":"ch_3MtwBwLkdIwHu7ix0snN8B0K"`, 1), "source is not expanded"},
		{"refund sign", strings.NewReplacer(`"amount":-2500,"available_on"`, `"amount":2500,"available_on"`, `"net":-2500`, `"net":2500`).Replace(good), "a refund of positive amount 2500"},
		{"page after the last", good + first, "line 3 (page 3): a page after the one whose has_more is false"},
		{"not json", "<html>", "line 1 (page 1): body is not a JSON object"},
		{"empty", "", "no page"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parseStmt(t, []byte(c.file))
			if !errors.Is(err, channel.ErrBadStatement) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrBadStatement with %q", err, c.want)
			}
		})
	}
}

// listServer serves the fixture's pages as Stripe's list endpoint does
// (pretty-printed, paged by starting_after), checking the query.
func listServer(t *testing.T, status int) (*stripe.Client, *[]string) {
	pages := strings.Split(strings.TrimSpace(string(stmtFixture(t))), "\n")
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != stripe.BalanceTransactionsPath || r.Header.Get("Authorization") != "Bearer "+testKey {
			t.Errorf("request %s %s", r.URL.Path, r.Header.Get("Authorization"))
		}
		queries = append(queries, r.URL.RawQuery)
		if status != http.StatusOK {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Request rate limit exceeded."}}`))
			return
		}
		page := pages[0]
		if r.URL.Query().Get("starting_after") == "txn_1OaBcDLkdIwHu7ixPayout01" {
			page = pages[1]
		}
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, []byte(page), "", "  ")
		_, _ = w.Write(pretty.Bytes())
	}))
	t.Cleanup(srv.Close)
	c, err := stripe.New(stripe.Config{Name: "st", BaseURL: srv.URL, APIKey: testKey, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, &queries
}

func TestFetchStatement(t *testing.T) {
	c, queries := listServer(t, http.StatusOK)
	var buf bytes.Buffer
	source, err := c.FetchStatement(context.Background(), stmtDay, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), stmtFixture(t)) {
		t.Errorf("wrote\n%s\nwant the pages compacted, one a line", buf.String())
	}
	if len(*queries) != 2 || !strings.Contains((*queries)[0], "created[gte]=1795996800") || !strings.Contains((*queries)[0], "created[lt]=1796083200") ||
		!strings.Contains((*queries)[0], "expand[0]=data.source") || !strings.Contains((*queries)[0], "limit=100") ||
		!strings.Contains((*queries)[1], "starting_after=txn_1OaBcDLkdIwHu7ixPayout01") {
		t.Errorf("queries %q", *queries)
	}
	if !strings.HasSuffix(source, "/v1/balance_transactions?created[gte]=1795996800&created[lt]=1796083200") {
		t.Errorf("source %q", source)
	}
}

func TestFetchStatementRateLimited(t *testing.T) {
	c, _ := listServer(t, http.StatusTooManyRequests)
	_, err := c.FetchStatement(context.Background(), stmtDay, &bytes.Buffer{})
	if channel.ClassOf(err) != channel.ClassRateLimited || channel.RetryAfterOf(err) != 3*time.Second {
		t.Fatalf("error %v", err)
	}
}

func TestParseBalanceTransactionsLimits(t *testing.T) {
	for _, c := range []struct {
		lim  channel.StatementLimits
		want string
	}{
		{channel.StatementLimits{MaxBytes: 200}, "more than 200 bytes decompressed (statements.max_bytes)"},
		{channel.StatementLimits{MaxLines: 2}, "line 1 (page 1): more than 2 transactions (statements.max_lines)"},
	} {
		_, err := stripe.ParseBalanceTransactions(bytes.NewReader(stmtFixture(t)), stmtDay, time.UTC, c.lim, func(recon.StatementLine) error { return nil })
		if !errors.Is(err, channel.ErrBadStatement) || !errors.Is(err, channel.ErrStatementTooLarge) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.lim, err, c.want)
		}
	}
}

func TestFetchStatementLimit(t *testing.T) {
	c, _ := listServer(t, http.StatusOK)
	c.SetStatementLimits(channel.StatementLimits{MaxBytes: int64(len(stmtFixture(t)) - 1)})
	_, err := c.FetchStatement(context.Background(), stmtDay, &bytes.Buffer{})
	if !errors.Is(err, channel.ErrStatementTooLarge) || channel.ClassOf(err) != channel.ClassPermanent || !strings.Contains(err.Error(), "statements.max_bytes") {
		t.Fatalf("error %v", err)
	}
}

// TestFetchStatementRefusesRedirects: a list answer redirected to another
// host is not followed, so no page comes from there.
func TestFetchStatementRefusesRedirects(t *testing.T) {
	var forgedHits atomic.Int64
	forged := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forgedHits.Add(1)
		_, _ = w.Write(stmtFixture(t)[:bytes.IndexByte(stmtFixture(t), '\n')])
	}))
	defer forged.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(forged.URL, "127.0.0.1", "localhost", 1)+r.URL.RequestURI(), http.StatusFound)
	}))
	defer srv.Close()
	c, err := stripe.New(stripe.Config{Name: "st", BaseURL: srv.URL, APIKey: testKey, Timeout: 5 * time.Second,
		StatementLimits: channel.StatementLimits{MaxBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = c.FetchStatement(context.Background(), stmtDay, &buf)
	if err == nil || channel.ClassOf(err) != channel.ClassPermanent || !strings.Contains(err.Error(), "HTTP 302") || buf.Len() != 0 || forgedHits.Load() != 0 {
		t.Fatalf("error %v, %d bytes written, %d requests to the other host", err, buf.Len(), forgedHits.Load())
	}
}
