package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// TestRunWithADeadChannelDefersItsOrders runs `recon run` (a process, on
// MariaDB) over two channels, one of which answers 503 to everything: the
// healthy channel's orders settle, the dead channel is paused by its breaker
// after a bounded number of requests, its orders are deferred (left due,
// unqueried, no error, no mismatch), and the summary, the run row and the
// log say so.
func TestRunWithADeadChannelDefersItsOrders(t *testing.T) {
	db := repotest.NewMySQL(t)
	var requests atomic.Int64
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(dead.Close)

	const n = 300
	now := time.Now().UTC().Add(-time.Minute)
	var orders []recon.Order
	for i := 0; i < n; i++ {
		for _, ch := range []string{"sim", "dead"} {
			o := repotest.Order(fmt.Sprintf("B-%s-%04d", ch, i), now)
			o.Channel = ch
			orders = append(orders, o)
		}
	}
	if err := db.Store.InsertOrders(context.Background(), orders); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`database: {driver: %s, dsn: '%s'}
reconcile:
  grace_period: 1s
  concurrency: 8
  query_schedule: [1h]
  lookup_retry: {initial_interval: 200ms, max_interval: 5s, max_elapsed: 5s}
log: {level: info, format: json}
channels:
  - name: sim
    kind: simulator
    secret: s3cret
    simulator: {seed: 3, latency: 2ms, paid_rate: 0.5}
  - name: dead
    kind: httpjson
    base_url: %s
    insecure: true
    breaker: {failures: 10, probe_interval: 1h}
`, db.Dialect, db.DSN, dead.URL))
	// The probe is an hour away (on the process's own clock): however
	// slowly a loaded machine runs the pass, every dead order is deferred.
	p := startRecon(t, nil, "run", "--config", cfg, "--output", "json")
	start := time.Now()
	if code := p.wait(); code != 0 {
		t.Fatalf("recon run: exit %d\n%s%s", code, p.stdout.String(), p.stderr.String())
	}
	took := time.Since(start)
	var res struct {
		RunID                              int64 `json:"run_id"`
		Status                             string
		Scanned, Paid, Rescheduled, Errors int64
		Mismatches, Deferred               int64
	}
	if err := json.Unmarshal(p.stdout.Bytes(), &res); err != nil {
		t.Fatalf("summary %q: %v", p.stdout.String(), err)
	}
	t.Logf("%d orders a channel: pass took %s; dead channel requests %d; summary %s", n, took.Round(time.Millisecond), requests.Load(), strings.TrimSpace(p.stdout.String()))
	if res.Status != repo.RunSucceeded || res.Scanned != 2*n || res.Paid+res.Rescheduled != n || res.Errors != 0 ||
		res.Mismatches != 0 || res.Deferred != n {
		t.Fatalf("summary %+v: want the healthy channel's %d orders settled and the dead channel's deferred", res, n)
	}
	if r := requests.Load(); r > 50 {
		t.Fatalf("the dead channel received %d requests; want a bounded number", r)
	}
	run, err := db.Store.GetRun(context.Background(), res.RunID)
	if err != nil || run.Deferred != n {
		t.Fatalf("run row %+v, %v", run, err)
	}
	for _, msg := range []string{`"msg":"channel paused for this pass`, `"channel":"dead"`, `"deferred":300`} {
		if !strings.Contains(p.stderr.String(), msg) {
			t.Fatalf("log lacks %s:\n%s", msg, p.stderr.String())
		}
	}
	// The deferred orders were left as they were: never queried, still due.
	var untouched int64
	if err := db.Store.DB().Raw(`SELECT COUNT(*) FROM payment_orders WHERE channel = 'dead' AND status = 'PENDING'
		AND query_attempts = 0 AND next_query_at IS NULL AND last_query_error IS NULL`).Scan(&untouched).Error; err != nil {
		t.Fatal(err)
	}
	if untouched != n {
		t.Fatalf("%d of the dead channel's %d orders left untouched", untouched, n)
	}
}
