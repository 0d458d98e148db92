package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
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
		"     success_code: OK, not_found_code: NO_ORDER, status_map: {SUCCESS: PAID, WAITING: PENDING, SHUT: CLOSED}}\n", srv.URL)
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

	bad := writeConfig(t, fmt.Sprintf("channels:\n  - {name: hj, kind: httpjson, base_url: %q, status_map: {SUCCESS: DONE}}\n", srv.URL))
	code, _, stderr = runCLI(t, nil, "run", "--config", bad)
	if code != exitUsage || !strings.Contains(stderr, "status_map") || !strings.Contains(stderr, "channels[0] (hj)") {
		t.Fatalf("bad status_map: %d %q", code, stderr)
	}
}
