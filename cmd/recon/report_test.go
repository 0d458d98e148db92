package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// seedCLI makes a fresh, migrated SQLite database (repotest.SQLiteFile) and
// inserts orders, returning the config path and an open store.
func seedCLI(t *testing.T, channels string, orders []recon.Order) (string, *repo.Store) {
	t.Helper()
	db := repotest.SQLiteFile(t)
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+db+"'}\nchannels:\n"+channels)
	store, err := repo.Open(context.Background(), repo.SQLite, db, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.InsertOrders(context.Background(), orders); err != nil {
		t.Fatal(err)
	}
	return cfg, store
}

func cliOrder(no string, st recon.Status, created time.Time) recon.Order {
	return recon.Order{OrderNo: no, MerchantID: "m1", Channel: "sim", Amount: 1234, Currency: "CNY",
		Status: st, CreatedAt: created, UpdatedAt: created}
}

func TestCheckShowsBothSidesAndCommitsOnlyWhenAsked(t *testing.T) {
	created := time.Now().UTC().Add(-time.Hour)
	cfg, store := seedCLI(t, "  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n",
		[]recon.Order{cliOrder("chk-1", recon.StatusPending, created)})
	ctx := context.Background()

	code, out, stderr := runCLI(t, nil, "check", "chk-1", "--config", cfg)
	if code != 0 {
		t.Fatalf("check: %d %s", code, stderr)
	}
	for _, want := range []string{"LOCAL", "CHANNEL", "PENDING", "PAID", "12.34 CNY", "decision: TRANSITION to PAID", "transitions:\n  none", "--commit applies"} {
		if !strings.Contains(out, want) {
			t.Fatalf("check output lacks %q:\n%s", want, out)
		}
	}
	if o, _ := store.GetOrderByNo(ctx, "chk-1"); o.Status != recon.StatusPending || o.Version != 0 {
		t.Fatalf("check without --commit changed the order: %+v", o)
	}

	code, out, stderr = runCLI(t, nil, "check", "chk-1", "--commit", "--config", cfg)
	if code != 0 || !strings.Contains(out, "order is now PAID") {
		t.Fatalf("check --commit: %d %s\n%s", code, stderr, out)
	}
	o, _ := store.GetOrderByNo(ctx, "chk-1")
	if o.Status != recon.StatusPaid {
		t.Fatalf("after --commit: %+v", o)
	}
	if trs, _ := store.Transitions(ctx, o.ID); len(trs) != 1 || trs[0].ToStatus != recon.StatusPaid {
		t.Fatalf("transitions after --commit: %+v", trs)
	}
	// Looking again shows the transition and decides nothing.
	_, out, _ = runCLI(t, nil, "check", "chk-1", "--config", cfg)
	if !strings.Contains(out, "PENDING -> PAID") || !strings.Contains(out, "decision: NONE") {
		t.Fatalf("second check:\n%s", out)
	}

	if code, _, stderr := runCLI(t, nil, "check", "no-such-order", "--config", cfg); code != exitUsage || !strings.Contains(stderr, "no-such-order") {
		t.Fatalf("unknown order: %d %q", code, stderr)
	}
}

func TestVerificationBackfillReportsAndNeverModifiesTerminalOrders(t *testing.T) {
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var orders []recon.Order
	for i := 0; i < 5; i++ {
		orders = append(orders, cliOrder("bf-failed-"+string(rune('a'+i)), recon.StatusFailed, created.Add(time.Duration(i)*time.Minute)))
	}
	orders = append(orders, cliOrder("bf-pending", recon.StatusPending, created))
	cfg, store := seedCLI(t, "  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n", orders)
	ctx := context.Background()

	code, out, stderr := runCLI(t, nil, "backfill", "--from", "2026-03-01T00:00:00Z", "--to", "2026-03-02T00:00:00Z",
		"--include-terminal", "--config", cfg)
	if code != 0 {
		t.Fatalf("backfill: %d %s", code, stderr)
	}
	if !strings.Contains(out, "scanned      6") || !strings.Contains(out, "mismatches   5 (5 new)") {
		t.Fatalf("backfill summary:\n%s", out)
	}
	// Not a terminal: the progress is a log line with the total, not a bar.
	if !strings.Contains(stderr, "pass progress (final)") || !strings.Contains(stderr, `"total":6`) || strings.Contains(stderr, "\r") {
		t.Fatalf("progress lines on a non-terminal:\n%s", stderr)
	}
	for _, o := range orders[:5] {
		got, _ := store.GetOrderByNo(ctx, o.OrderNo)
		if got.Status != recon.StatusFailed || got.Version != 0 {
			t.Fatalf("verification modified %s: %+v", o.OrderNo, got)
		}
	}
	if got, _ := store.GetOrderByNo(ctx, "bf-pending"); got.Status != recon.StatusPaid {
		t.Fatalf("pending order in the window: %+v", got)
	}
	ms, err := store.ListMismatches(ctx, repo.MismatchFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 5 {
		t.Fatalf("mismatches: %+v", ms)
	}
	for _, m := range ms {
		if m.Kind != recon.MismatchChannelPaidLocalUnpaid {
			t.Fatalf("mismatch kind %s, want %s", m.Kind, recon.MismatchChannelPaidLocalUnpaid)
		}
	}
}

func TestMismatchListAckResolveAndLimit(t *testing.T) {
	created := time.Now().UTC().Add(-time.Hour)
	var orders []recon.Order
	for _, no := range []string{"ml-1", "ml-2", "ml-3"} {
		orders = append(orders, cliOrder(no, recon.StatusFailed, created))
	}
	cfg, store := seedCLI(t, "  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\nreconcile: {concurrency: 1}\n", orders)
	ctx := context.Background()
	if code, _, stderr := runCLI(t, nil, "backfill", "--from", "2000-01-01", "--to", "2100-01-01", "--include-terminal", "--config", cfg); code != 0 {
		t.Fatalf("backfill: %s", stderr)
	}
	ms, err := store.ListMismatches(ctx, repo.MismatchFilter{})
	if err != nil || len(ms) != 3 {
		t.Fatalf("mismatches %+v, %v", ms, err)
	}
	// Concurrent workers detect them in any order: find each by its order.
	ids := map[string]string{}
	for _, m := range ms {
		ids[m.OrderNo] = fmt.Sprint(m.ID)
	}
	id := func(i int) string { return ids[fmt.Sprintf("ml-%d", i+1)] }
	if code, _, stderr := runCLI(t, nil, "mismatch", "ack", id(0), "--by", "ann", "--config", cfg); code != 0 {
		t.Fatalf("ack: %s", stderr)
	}
	if code, _, stderr := runCLI(t, nil, "mismatch", "resolve", id(0), "--by", "ann", "--note", "refunded", "--config", cfg); code != 0 {
		t.Fatalf("resolve: %s", stderr)
	}
	if code, _, stderr := runCLI(t, nil, "mismatch", "resolve", id(1), "--by", "bob", "--config", cfg); code != exitUsage ||
		!strings.Contains(stderr, "--note") {
		t.Fatalf("resolve without a note: %d %q", code, stderr)
	}
	// The resolved one is not listed (one worker detects ml-1 first, so a
	// limit applied before the filter would show nothing); the note says
	// there is more.
	code, out, stderr := runCLI(t, nil, "mismatch", "list", "--limit", "1", "--config", cfg)
	if code != 0 || strings.Contains(out, "ml-1") || strings.Contains(out, "ml-2") == strings.Contains(out, "ml-3") ||
		!strings.Contains(out, "first 1 shown") {
		t.Fatalf("list --limit 1: %d %s\n%s", code, out, stderr)
	}
	_, out, _ = runCLI(t, nil, "mismatch", "list", "--config", cfg)
	if !strings.Contains(out, "ml-2") || !strings.Contains(out, "ml-3") || strings.Contains(out, "ml-1") || strings.Contains(out, "shown") {
		t.Fatalf("list:\n%s", out)
	}
	_, out, _ = runCLI(t, nil, "mismatch", "history", id(0), "--config", cfg)
	for _, want := range []string{"OPENED", "ACKNOWLEDGED", "cli:ann", "RESOLVED", "refunded"} {
		if !strings.Contains(out, want) {
			t.Fatalf("history lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckRefundShowsBothSidesAndCommitsOnlyWhenAsked(t *testing.T) {
	created := time.Now().UTC().Add(-time.Hour)
	cfg, store := seedCLI(t, "  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n",
		[]recon.Order{cliOrder("chk-1", recon.StatusPaid, created)})
	ctx := context.Background()
	o, err := store.GetOrderByNo(ctx, "chk-1")
	if err != nil {
		t.Fatal(err)
	}
	refunds := []recon.Refund{{RefundNo: "rf-1", OrderID: o.ID, MerchantID: "m1", Channel: "sim", Amount: 234, Currency: "CNY",
		Status: recon.RefundPending, CreatedAt: created, UpdatedAt: created}}
	if err := store.InsertRefunds(ctx, refunds); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := runCLI(t, nil, "check", "--refund", "rf-1", "--config", cfg)
	if code != 0 {
		t.Fatalf("check --refund: %d %s", code, stderr)
	}
	for _, want := range []string{"refund rf-1", "of order chk-1", "LOCAL", "CHANNEL", "PENDING", "SUCCEEDED", "2.34 CNY",
		"decision: TRANSITION to SUCCEEDED, notify refund.succeeded", "transitions:\n  none", "--commit applies"} {
		if !strings.Contains(out, want) {
			t.Fatalf("check --refund output lacks %q:\n%s", want, out)
		}
	}
	if r, _ := store.GetRefundByNo(ctx, "rf-1"); r.Status != recon.RefundPending || r.Version != 0 {
		t.Fatalf("check without --commit changed the refund: %+v", r)
	}

	code, out, stderr = runCLI(t, nil, "check", "--refund", "rf-1", "--commit", "--config", cfg)
	if code != 0 || !strings.Contains(out, "refund is now SUCCEEDED (v1)") {
		t.Fatalf("check --refund --commit: %d %s\n%s", code, stderr, out)
	}
	_, out, _ = runCLI(t, nil, "check", "--refund", "rf-1", "--config", cfg)
	if !strings.Contains(out, "PENDING -> SUCCEEDED") || !strings.Contains(out, "decision: NONE") {
		t.Fatalf("second check:\n%s", out)
	}

	if code, _, stderr := runCLI(t, nil, "check", "--refund", "no-such-refund", "--config", cfg); code != exitUsage || !strings.Contains(stderr, "no-such-refund") {
		t.Fatalf("unknown refund: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, nil, "check", "chk-1", "--refund", "rf-1", "--config", cfg); code != exitUsage || !strings.Contains(stderr, "not both") {
		t.Fatalf("order and refund at once: %d %q", code, stderr)
	}
}

func TestReportSelectsARefund(t *testing.T) {
	created := time.Now().UTC().Add(-time.Hour)
	// The order is still PENDING here: a refund of it is REFUND_MISMATCH.
	cfg, store := seedCLI(t, "  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n",
		[]recon.Order{cliOrder("rep-1", recon.StatusPending, created)})
	ctx := context.Background()
	o, err := store.GetOrderByNo(ctx, "rep-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.InsertRefunds(ctx, []recon.Refund{{RefundNo: "rf-rep", OrderID: o.ID, MerchantID: "m1", Channel: "sim",
		Amount: 100, Currency: "CNY", Status: recon.RefundPending, CreatedAt: created, UpdatedAt: created}}); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, nil, "check", "--refund", "rf-rep", "--commit", "--config", cfg); code != 0 {
		t.Fatalf("check --refund --commit: %d %s", code, stderr)
	}
	code, out, stderr := runCLI(t, nil, "report", "--refund", "rf-rep", "--format", "csv", "--config", cfg)
	if code != 0 || !strings.Contains(out, "REFUND_MISMATCH") || !strings.Contains(out, ",rf-rep") {
		t.Fatalf("report --refund rf-rep: %d %s\n%s", code, stderr, out)
	}
	if _, out, _ := runCLI(t, nil, "report", "--refund", "rf-other", "--format", "csv", "--config", cfg); strings.Contains(out, "REFUND_MISMATCH") {
		t.Fatalf("report --refund rf-other shows another refund's row:\n%s", out)
	}
}
