package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

func TestNotifyCommandDeliversAndResends(t *testing.T) {
	var posts atomic.Int64
	var fail atomic.Bool
	fail.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "r.db")
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+db+"'}\n"+
		"notify: {retry_schedule: [1ms], timeout: 2s, allow_private_networks: true}\n"+
		"channels:\n  - {name: sim, kind: simulator, simulator: {seed: 1}}\n")
	if code, _, stderr := runCLI(t, nil, "migrate", "--config", cfg); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	ctx := context.Background()
	store, err := repo.Open(ctx, repo.SQLite, db, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now().UTC().Add(-time.Minute)
	if err := store.UpsertMerchant(ctx, repo.Merchant{ID: "m1", NotifyURL: srv.URL, NotifySecret: "s"}, now); err != nil {
		t.Fatal(err)
	}
	o := recon.Order{OrderNo: "cli-1", MerchantID: "m1", Channel: "sim", Amount: 100, Currency: "CNY",
		Status: recon.StatusPaid, CreatedAt: now, UpdatedAt: now}
	orders := []recon.Order{o}
	if err := store.InsertOrders(ctx, orders); err != nil {
		t.Fatal(err)
	}
	note := recon.NewNotification(orders[0], recon.StatusPaid, "T1", &now, now)
	if _, err := store.EnqueueNotification(ctx, orders[0].ID, note, now); err != nil {
		t.Fatal(err)
	}

	pass := func() map[string]any {
		t.Helper()
		code, out, stderr := runCLI(t, nil, "notify", "--output", "json", "--config", cfg)
		if code != 0 {
			t.Fatalf("notify: %d %s", code, stderr)
		}
		var res map[string]any
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("json %q: %v", out, err)
		}
		for _, k := range []string{"run_id", "delivered", "retried", "dead", "errors"} {
			if _, ok := res[k]; !ok {
				t.Fatalf("json output lacks %q: %s", k, out)
			}
		}
		return res
	}
	if res := pass(); res["retried"] != 1.0 {
		t.Fatalf("first pass: %v", res)
	}
	if res := pass(); res["dead"] != 1.0 {
		t.Fatalf("second pass: %v", res)
	}
	code, _, stderr := runCLI(t, nil, "notify", "resend", "--config", cfg)
	if code != exitUsage {
		t.Fatalf("resend without id: %d %s", code, stderr)
	}
	if code, _, _ := runCLI(t, nil, "notify", "resend", "ntf_unknown", "--config", cfg); code != exitUsage {
		t.Fatalf("resend of unknown id: %d", code)
	}
	code, out, stderr := runCLI(t, nil, "notify", "resend", "--dead", "--merchant", "m1", "--config", cfg)
	if code != 0 || !strings.Contains(out, "1 dead notifications") {
		t.Fatalf("resend --dead: %d %q %s", code, out, stderr)
	}
	fail.Store(false)
	if res := pass(); res["delivered"] != 1.0 {
		t.Fatalf("after resend: %v", res)
	}
	if code, out, _ := runCLI(t, nil, "notify", "resend", note.ID, "--config", cfg); code != 0 || !strings.Contains(out, note.ID) {
		t.Fatalf("resend id: %d %q", code, out)
	}
	if posts.Load() != 3 {
		t.Fatalf("merchant got %d posts, want 3", posts.Load())
	}
}
