package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo/repotest"
)

// TestHTTPJSONPathsCodesAndStatusesFromConfig points an httpjson channel at a
// server that speaks the get_result protocol with its own path, parameter,
// codes and status words, all set in config.yaml.
func TestHTTPJSONPathsCodesAndStatusesFromConfig(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/query" {
			http.NotFound(w, r)
			return
		}
		switch no := r.URL.Query().Get("out_trade_no"); no {
		case "hj-paid":
			fmt.Fprintf(w, `{"code":"OK","msg":"","data":{"order":%q,"status":"SUCCESS","amount":1234,"currency":"CNY","txn_id":"X1","paid_at":"2026-01-02T03:04:05Z"}}`, no)
		case "hj-wait":
			fmt.Fprintf(w, `{"code":"OK","msg":"","data":{"order":%q,"status":"WAITING","amount":1234,"currency":"CNY"}}`, no)
		default:
			fmt.Fprint(w, `{"code":"NO_ORDER","msg":"unknown"}`)
		}
	}))
	defer srv.Close()
	created := time.Now().UTC().Add(-time.Hour)
	chans := fmt.Sprintf("  - {name: sim, kind: httpjson, base_url: %q, lookup_path: /api/v2/query, order_param: out_trade_no,\n"+
		"     success_code: OK, not_found_code: NO_ORDER, status_map: {SUCCESS: PAID, WAITING: PENDING, SHUT: CLOSED},\n"+
		"     insecure: true}\n", srv.URL)
	cfg, store := seedCLI(t, chans, []recon.Order{
		cliOrder("hj-paid", recon.StatusPending, created), cliOrder("hj-wait", recon.StatusPending, created),
		cliOrder("hj-gone", recon.StatusPending, created),
	})
	code, out, stderr := runCLI(t, nil, "run", "--config", cfg)
	if code != 0 {
		t.Fatalf("run: %d %s %s", code, out, stderr)
	}
	for no, want := range map[string]recon.Status{"hj-paid": recon.StatusPaid, "hj-wait": recon.StatusPending, "hj-gone": recon.StatusPending} {
		o, err := store.GetOrderByNo(context.Background(), no)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != want || o.LastQueryError != "" || o.QueryAttempts != 1 {
			t.Errorf("%s: %s attempts %d error %q, want %s with no error", no, o.Status, o.QueryAttempts, o.LastQueryError, want)
		}
	}

	bad := writeConfig(t, fmt.Sprintf("channels:\n  - {name: hj, kind: httpjson, base_url: %q, insecure: true, status_map: {SUCCESS: DONE}}\n", srv.URL))
	code, _, stderr = runCLI(t, nil, "run", "--config", bad)
	if code != exitUsage || !strings.Contains(stderr, "status_map") || !strings.Contains(stderr, "channels[0] (hj)") {
		t.Fatalf("bad status_map: %d %q", code, stderr)
	}
}

// TestGarbageAnswersNeverStopThePass: a channel answering a long non-ASCII
// message, or an id too long to store, fails that order's lookup only; the
// reason is kept in last_query_error (valid UTF-8, bounded) and the other
// orders are reconciled, on MariaDB as on SQLite.
func TestGarbageAnswersNeverStopThePass(t *testing.T) {
	longMsg := strings.Repeat("订单不存在或已关闭", 30) // 810 bytes, cut mid-character at 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch no := r.URL.Query().Get("orderId"); no {
		case "gb-msg":
			fmt.Fprintf(w, `{"code":"9999","msg":%q}`, longMsg)
		case "gb-txn":
			fmt.Fprintf(w, `{"code":"0000","msg":"","data":{"order":%q,"status":"PAID","amount":1234,"currency":"CNY","txn_id":%q,"paid_at":"2026-01-02T03:04:05Z"}}`,
				no, strings.Repeat("T", 200))
		default:
			fmt.Fprintf(w, `{"code":"0000","msg":"","data":{"order":%q,"status":"PAID","amount":1234,"currency":"CNY","txn_id":"T1","paid_at":"2026-01-02T03:04:05Z"}}`, no)
		}
	}))
	t.Cleanup(srv.Close) // the per-database subtests run in parallel, after this returns
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		created := time.Now().UTC().Add(-time.Hour)
		orders := []recon.Order{cliOrder("gb-msg", recon.StatusPending, created), cliOrder("gb-txn", recon.StatusPending, created),
			cliOrder("gb-good", recon.StatusPending, created)}
		if err := db.Store.InsertOrders(ctx, orders); err != nil {
			t.Fatal(err)
		}
		cfg := writeConfig(t, fmt.Sprintf("database: {driver: %s, dsn: %q}\n", db.Dialect, db.DSN)+
			"reconcile: {lookup_retry: {initial_interval: 1ms, max_interval: 2ms, max_elapsed: 50ms}}\n"+
			fmt.Sprintf("channels:\n  - {name: sim, kind: httpjson, base_url: %q, insecure: true}\n", srv.URL))
		code, out, stderr := runCLI(t, nil, "run", "--config", cfg)
		if code != 0 || !strings.Contains(out, "paid         1") || !strings.Contains(out, "errors       2") {
			good, _ := db.Store.GetOrderByNo(ctx, "gb-good")
			t.Fatalf("run: exit %d (gb-good: %q)\n%s\n%s", code, good.LastQueryError, out, stderr)
		}
		for _, no := range []string{"gb-msg", "gb-txn"} {
			o, err := db.Store.GetOrderByNo(ctx, no)
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != recon.StatusPending || o.ChannelTxnID != "" || o.LastQueryError == "" ||
				!utf8.ValidString(o.LastQueryError) || len(o.LastQueryError) > 1024 {
				t.Errorf("%s: %+v", no, o)
			}
		}
		if o, _ := db.Store.GetOrderByNo(ctx, "gb-good"); o.Status != recon.StatusPaid {
			t.Errorf("gb-good: %+v", o)
		}
	})
}

// TestMainClosesTheChannelsIdleConnections: when Main returns, the
// connections its channel adapters opened are closed, not left idle for a
// server's graceful shutdown to wait on (in-process callers: the demo and
// the tests). Each kind over HTTP is served by one test server.
func TestMainClosesTheChannelsIdleConnections(t *testing.T) {
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	closed := make(chan struct{}, 16)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"code":"0000","msg":"","data":{"order":"idle-1","status":"PAID","amount":1234,"currency":"CNY","txn_id":"T1","paid_at":"2026-01-02T03:04:05Z"}}`)
	}))
	srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch st {
		case http.StateNew:
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			if open[c] {
				delete(open, c)
				closed <- struct{}{}
			}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	db := repotest.NewSQLite(t)
	o := cliOrder("idle-1", recon.StatusPending, time.Now().UTC().Add(-time.Hour))
	db.Seed(t, &o)
	cfg := writeConfig(t, fmt.Sprintf("database: {driver: sqlite, dsn: %q}\n", db.DSN)+
		fmt.Sprintf("channels:\n  - {name: sim, kind: httpjson, base_url: %q, insecure: true}\n", srv.URL))
	if code, out, stderr := runCLI(t, nil, "run", "--config", cfg); code != 0 || !strings.Contains(out, "paid         1") {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, stderr)
	}
	// The server sees the client close the connection it used; before,
	// it stayed open until the transport's 90 s idle timeout.
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("the connection of the pass's lookups was still open a minute after Main returned")
	}
}
