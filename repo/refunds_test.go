package repo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

func scanRefunds(t *testing.T, s *repo.Store, sc repo.Scan, page int) map[string]recon.Refund {
	t.Helper()
	all := map[string]recon.Refund{}
	var cur repo.Cursor
	for !cur.Done() {
		refunds, next, err := s.ScanRefundPage(context.Background(), sc, cur, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range refunds {
			if _, dup := all[r.RefundNo]; dup {
				t.Fatalf("refund %s scanned twice", r.RefundNo)
			}
			all[r.RefundNo] = r
		}
		cur = next
	}
	return all
}

// paidOrder seeds a PAID order of 1000 CNY.
func paidOrder(t *testing.T, s *repo.Store, no string) recon.Order {
	t.Helper()
	o := repotest.Order(no, now)
	o.Status = recon.StatusPaid
	repotest.Seed(t, s, &o)
	return o
}

func TestScanDueRefunds(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		s := db.Store
		o := paidOrder(t, s, "O1")
		past, future := now.Add(-time.Minute), now.Add(time.Minute)
		newDue := repotest.Refund("new-due", o, now)
		inGrace := repotest.Refund("in-grace", o, now)
		inGrace.CreatedAt = now.Add(-10 * time.Second)
		scheduled := repotest.Refund("scheduled", o, now)
		scheduled.QueryAttempts, scheduled.NextQueryAt = 2, &past
		later := repotest.Refund("later", o, now)
		later.QueryAttempts, later.NextQueryAt = 2, &future
		held := repotest.Refund("held", o, now)
		held.QueryAttempts = 3 // a hold: attempts made, no next query
		done := repotest.Refund("done", o, now)
		done.Status = recon.RefundSucceeded
		other := repotest.Refund("other-channel", o, now)
		other.Channel = "alipay"
		repotest.SeedRefunds(t, s, &newDue, &inGrace, &scheduled, &later, &held, &done, &other)

		sc := repo.Scan{Now: now, CreatedBefore: now.Add(-time.Minute)}
		got := scanRefunds(t, s, sc, 2)
		for _, want := range []string{"new-due", "scheduled", "other-channel"} {
			if _, ok := got[want]; !ok {
				t.Errorf("due refund %s not scanned (got %v)", want, got)
			}
		}
		if len(got) != 3 {
			t.Fatalf("scanned %d refunds, want 3: %v", len(got), got)
		}
		if got["new-due"].OrderNo != "O1" || got["new-due"].Amount != 300 {
			t.Fatalf("refund read as %+v", got["new-due"])
		}
		sc.Channel = "alipay"
		if got := scanRefunds(t, s, sc, 10); len(got) != 1 || got["other-channel"].ID == 0 {
			t.Fatalf("channel filter: %v", got)
		}
		sc.Channel = ""
		// Shards split the due refunds without overlap.
		seen := 0
		for i := 0; i < 2; i++ {
			sc.Shard = repo.Shard{Index: i, Count: 2}
			seen += len(scanRefunds(t, s, sc, 1))
		}
		if seen != 3 {
			t.Fatalf("two shards scanned %d refunds, want 3", seen)
		}
		// A backfill covers the refunds created in its window; with
		// IncludeTerminal, terminal ones too.
		bf := repo.Scan{Now: now, CreatedBefore: now, Backfill: true, From: now.Add(-2 * time.Hour), To: now}
		if got := scanRefunds(t, s, bf, 3); len(got) != 6 {
			t.Fatalf("backfill scanned %d refunds, want the 6 pending", len(got))
		}
		bf.IncludeTerminal = true
		if got := scanRefunds(t, s, bf, 3); len(got) != 7 {
			t.Fatalf("verification backfill scanned %d refunds, want 7", len(got))
		}
		if n, err := s.CountRefundBackfill(context.Background(), bf); err != nil || n != 7 {
			t.Fatalf("CountRefundBackfill = %d, %v", n, err)
		}
	})
}

func succeeded(r recon.Refund) recon.RefundLookup {
	at := now.Add(-time.Minute)
	return recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: r.Amount, Currency: r.Currency, ChannelRefundID: "RF-" + r.RefundNo, SucceededAt: &at}
}

type outboxRow struct {
	ID       string
	OrderID  int64
	RefundID int64
	Event    string
	Payload  string
}

func outboxOf(t *testing.T, s *repo.Store) []outboxRow {
	t.Helper()
	var rows []outboxRow
	if err := s.DB().Raw("SELECT id, order_id, refund_id, event, payload FROM merchant_notifications ORDER BY refund_id, event").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestCommitRefundTransition(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		o := paidOrder(t, s, "O1")
		r1, r2 := repotest.Refund("R1", o, now), repotest.Refund("R2", o, now)
		repotest.SeedRefunds(t, s, &r1, &r2)
		meta := repo.CommitMeta{RunID: 0, Source: "reconcile", Now: now}
		// Two refunds of one order each get their refund.succeeded row.
		outs := []recon.RefundOutcome{
			recon.DecideRefund(r1, succeeded(r1), recon.Policy{}, now),
			recon.DecideRefund(r2, succeeded(r2), recon.Policy{}, now),
		}
		reps, err := s.CommitRefundBatch(ctx, outs, meta)
		if err != nil {
			t.Fatal(err)
		}
		for i, rep := range reps {
			if rep.Result != repo.Applied || rep.OrderMismatch != nil {
				t.Fatalf("refund %d: %+v", i, rep)
			}
		}
		got, err := s.GetRefundByNo(ctx, "R1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != recon.RefundSucceeded || got.Version != 1 || got.ChannelRefundID != "RF-R1" || got.SucceededAt == nil || got.NextQueryAt != nil {
			t.Fatalf("refund after commit: %+v", got)
		}
		rows := outboxOf(t, s)
		if len(rows) != 2 || rows[0].RefundID != r1.ID || rows[1].RefundID != r2.ID || rows[0].OrderID != o.ID || rows[0].Event != "refund.succeeded" {
			t.Fatalf("outbox rows: %+v", rows)
		}
		var body recon.RefundNotification
		if err := json.Unmarshal([]byte(rows[0].Payload), &body); err != nil {
			t.Fatal(err)
		}
		if body.ID != rows[0].ID || body.Data.RefundNo != "R1" || body.Data.OrderNo != "O1" || body.Data.Status != recon.RefundSucceeded ||
			body.Data.Amount != 300 || body.Data.ChannelRefundID != "RF-R1" || body.Data.SucceededAt == nil {
			t.Fatalf("payload %s", rows[0].Payload)
		}
		var audit []struct {
			RefundID   int64
			FromStatus string
			ToStatus   string
			ToVersion  int64
		}
		if err := s.DB().Raw("SELECT refund_id, from_status, to_status, to_version FROM refund_transitions ORDER BY refund_id").Scan(&audit).Error; err != nil {
			t.Fatal(err)
		}
		if len(audit) != 2 || audit[0].RefundID != r1.ID || audit[0].FromStatus != "PENDING" || audit[0].ToStatus != "SUCCEEDED" || audit[0].ToVersion != 1 {
			t.Fatalf("audit rows: %+v", audit)
		}
		// An order event beside them keeps its own (order, event) row.
		note := recon.NewNotification(o, recon.StatusPaid, "T", nil, now)
		if ok, err := s.EnqueueNotification(ctx, o.ID, note, now); err != nil || !ok {
			t.Fatalf("enqueue order.paid beside refund rows: %v, %v", ok, err)
		}
		if ok, err := s.EnqueueNotification(ctx, o.ID, note, now); err != nil || ok {
			t.Fatalf("a second order.paid of the order was not refused: %v, %v", ok, err)
		}
		// The refund read before the commit is stale now: the guard
		// refuses it and reports who won.
		again, err := s.CommitRefundBatch(ctx, []recon.RefundOutcome{recon.DecideRefund(r1, recon.RefundLookup{Status: recon.RefundChannelFailed}, recon.Policy{}, now)}, meta)
		if err != nil {
			t.Fatal(err)
		}
		if again[0].Result != repo.Lost || again[0].Current.Status != recon.RefundSucceeded {
			t.Fatalf("second writer: %+v", again[0])
		}
		if len(outboxOf(t, s)) != 3 {
			t.Fatal("the lost commit wrote an outbox row")
		}
	})
}

func refundMismatches(t *testing.T, s *repo.Store) []repo.MismatchRecord {
	t.Helper()
	ms, err := s.ListMismatches(context.Background(), repo.MismatchFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestCommitRefundOverRefundAndUnpaidOrder(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		o := paidOrder(t, s, "O1")
		unpaid := repotest.Order("O2", now)
		unpaid.Status = recon.StatusClosed
		repotest.Seed(t, s, &unpaid)
		first, over := repotest.Refund("R1", o, now), repotest.Refund("R2", o, now)
		first.Amount, over.Amount = 800, 300
		ofUnpaid := repotest.Refund("R3", unpaid, now)
		repotest.SeedRefunds(t, s, &first, &over, &ofUnpaid)
		meta := repo.CommitMeta{Source: "reconcile", Now: now}
		for _, r := range []recon.Refund{first, over, ofUnpaid} {
			if _, err := s.CommitRefundBatch(ctx, []recon.RefundOutcome{recon.DecideRefund(r, succeeded(r), recon.Policy{}, now)}, meta); err != nil {
				t.Fatal(err)
			}
		}
		// The channel's word settled all three.
		for _, no := range []string{"R1", "R2", "R3"} {
			if r, err := s.GetRefundByNo(ctx, no); err != nil || r.Status != recon.RefundSucceeded {
				t.Fatalf("%s: %+v %v", no, r, err)
			}
		}
		ms := refundMismatches(t, s)
		if len(ms) != 2 {
			t.Fatalf("mismatches %+v, want the over-refund and the refund of an unpaid order", ms)
		}
		byNo := map[string]repo.MismatchRecord{}
		for _, m := range ms {
			byNo[m.RefundNo] = m
			if m.Kind != recon.MismatchRefund {
				t.Fatalf("kind %s", m.Kind)
			}
		}
		if m := byNo["R2"]; m.OrderNo != "O1" || m.ChannelAmount != 1100 || m.LocalAmount != 1000 {
			t.Fatalf("over-refund row: %+v", m)
		}
		if m := byNo["R3"]; m.OrderNo != "O2" || m.LocalStatus != recon.StatusClosed {
			t.Fatalf("refund of an unpaid order: %+v", m)
		}
	})
}

func TestCommitRefundMismatchesOnePerRefundAndKind(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		o := paidOrder(t, s, "O1")
		r1, r2 := repotest.Refund("R1", o, now), repotest.Refund("R2", o, now)
		repotest.SeedRefunds(t, s, &r1, &r2)
		pol := recon.Policy{MaxAge: 24 * time.Hour, Schedule: []time.Duration{time.Minute}}
		abnormal := recon.RefundLookup{Status: recon.RefundChannelAbnormal}
		meta := repo.CommitMeta{Source: "reconcile", Now: now}
		reps, err := s.CommitRefundBatch(ctx, []recon.RefundOutcome{recon.DecideRefund(r1, abnormal, pol, now), recon.DecideRefund(r2, abnormal, pol, now)}, meta)
		if err != nil {
			t.Fatal(err)
		}
		if !reps[0].NewMismatch || !reps[1].NewMismatch {
			t.Fatalf("reports %+v", reps)
		}
		// ABNORMAL keeps the refund queried.
		got, _ := s.GetRefundByNo(ctx, "R1")
		if got.Status != recon.RefundPending || got.QueryAttempts != 1 || got.NextQueryAt == nil {
			t.Fatalf("abnormal refund %+v", got)
		}
		// Seen again: the same row is updated, not duplicated.
		reps, err = s.CommitRefundBatch(ctx, []recon.RefundOutcome{recon.DecideRefund(got, abnormal, pol, now.Add(time.Minute))}, meta)
		if err != nil || reps[0].NewMismatch || reps[0].Result != repo.Applied {
			t.Fatalf("second sighting: %+v %v", reps, err)
		}
		ms := refundMismatches(t, s)
		if len(ms) != 2 || ms[0].Kind != recon.MismatchRefundAbnormal || ms[0].RefundNo == ms[1].RefundNo {
			t.Fatalf("mismatches %+v", ms)
		}
		for _, m := range ms {
			if m.RefundNo == "R1" && m.Occurrences != 2 {
				t.Fatalf("R1's row seen %d times", m.Occurrences)
			}
		}
		// Past max_age: REFUND_STUCK, and no more automatic queries.
		got, _ = s.GetRefundByNo(ctx, "R1")
		late := now.Add(48 * time.Hour)
		if _, err := s.CommitRefundBatch(ctx, []recon.RefundOutcome{recon.DecideRefund(got, abnormal, pol, late)}, meta); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetRefundByNo(ctx, "R1")
		if got.NextQueryAt != nil || got.Status != recon.RefundPending {
			t.Fatalf("stuck refund still scheduled: %+v", got)
		}
		due := scanRefunds(t, s, repo.Scan{Now: late, CreatedBefore: late}, 10)
		if _, ok := due["R1"]; ok {
			t.Fatal("a held refund is still due")
		}
	})
}

// TestConcurrentRefundsOfOneOrder settles two refunds of one order, which
// together exceed it, in two batches of two processes at once: whichever
// commits second sees the first, so the over-refund is recorded exactly
// once. On a cluster each process is on its own node, and both batches are
// held until each has read the order's refunds: neither sees the other's
// read locks, so only a row both write makes them conflict.
func TestConcurrentRefundsOfOneOrder(t *testing.T) {
	repotest.ForSchemasAndCluster(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		stores := []*repo.Store{db.OpenNode(t, 1), db.OpenNode(t, 2)}
		var both chan struct{} // closed when both batches have read the sums
		var arrived atomic.Int64
		arrive := func() {
			if arrived.Add(1) == 2 {
				close(both)
			}
		}
		if db.Cluster != nil {
			// On one server the second batch waits for the first's locks
			// before its sums: holding the first there would block both.
			for _, s := range stores {
				repo.SetAfterRefundSums(s, func() { arrive(); <-both })
			}
		}
		for i := 0; i < 10; i++ {
			o := paidOrder(t, db.Store, fmt.Sprintf("O%d", i))
			a, b := repotest.Refund(fmt.Sprintf("A%d", i), o, now), repotest.Refund(fmt.Sprintf("B%d", i), o, now)
			a.Amount, b.Amount = 600, 600
			repotest.SeedRefunds(t, db.Store, &a, &b)
			db.Settle(t)
			both = make(chan struct{})
			arrived.Store(0)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for j, r := range []recon.Refund{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// A batch that fails before the sums lets the other go on.
					defer func() {
						if arrived.Load() < 2 {
							arrive()
						}
					}()
					_, errs[j] = stores[j].CommitRefundBatch(ctx, []recon.RefundOutcome{recon.DecideRefund(r, succeeded(r), recon.Policy{}, now)},
						repo.CommitMeta{Source: "reconcile", Now: now})
				}()
			}
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatal(errs)
			}
			for _, no := range []string{a.RefundNo, b.RefundNo} {
				if r, err := db.Store.GetRefundByNo(ctx, no); err != nil || r.Status != recon.RefundSucceeded {
					t.Fatalf("round %d: refund %s %+v %v, want SUCCEEDED", i, no, r, err)
				}
			}
			ms, err := db.Store.ListMismatches(ctx, repo.MismatchFilter{OrderID: o.ID})
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || ms[0].Kind != recon.MismatchRefund || ms[0].ChannelAmount != 1200 {
				t.Fatalf("round %d: mismatches %+v, want one REFUND_MISMATCH over 1200", i, ms)
			}
		}
	})
}

// TestRefundsBesideEachOrdersSchema: refunds in refund_orders name their
// order by recon's ref of it, whichever orders table is mapped, and are
// judged against that order.
func TestRefundsBesideEachOrdersSchema(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		paid := repotest.Order("PAID1", now)
		paid.Status = recon.StatusPaid
		pending := repotest.Order("PEND1", now)
		db.Seed(t, &paid, &pending)
		ok, unpaid := repotest.Refund("R-OK", paid, now), repotest.Refund("R-UNPAID", pending, now)
		repotest.SeedRefunds(t, db.Store, &ok, &unpaid)
		got := scanRefunds(t, db.Store, repo.Scan{Now: now, CreatedBefore: now}, 10)
		if got["R-OK"].OrderNo != "PAID1" || got["R-UNPAID"].OrderNo != "PEND1" {
			t.Fatalf("scanned refunds %+v", got)
		}
		var outs []recon.RefundOutcome
		for _, r := range []recon.Refund{got["R-OK"], got["R-UNPAID"]} {
			outs = append(outs, recon.DecideRefund(r, succeeded(r), recon.Policy{}, now))
		}
		reps, err := db.Store.CommitRefundBatch(ctx, outs, repo.CommitMeta{Source: "reconcile", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if reps[0].Result != repo.Applied || reps[0].OrderMismatch != nil {
			t.Fatalf("refund of a paid order: %+v", reps[0])
		}
		if reps[1].Result != repo.Applied || reps[1].OrderMismatch == nil || reps[1].OrderMismatch.Kind != recon.MismatchRefund {
			t.Fatalf("refund of a pending order: %+v", reps[1])
		}
	})
}

// TestRefundRepricedBeforeCommitIsNotSettled: the payment service changed a
// refund's amount after recon read it; the guard (the version, or on a
// table without one the status and amount read) refuses the commit, so the
// refund is never settled on an amount that is no longer its own.
func TestRefundRepricedBeforeCommitIsNotSettled(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		o := paidOrder(t, s, "O1")
		r := repotest.Refund("R1", o, now)
		repotest.SeedRefunds(t, s, &r)
		read := scanRefunds(t, s, repo.Scan{Now: now, CreatedBefore: now}, 10)["R1"]
		db.RepriceRefund(t, s, "R1", 250)
		reps, err := s.CommitRefundBatch(ctx, []recon.RefundOutcome{recon.DecideRefund(read, succeeded(read), recon.Policy{}, now)},
			repo.CommitMeta{Source: "reconcile", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if reps[0].Result != repo.Stale || reps[0].Current.Status != recon.RefundPending || reps[0].Current.Amount != 250 {
			t.Fatalf("commit over a repriced refund: %+v", reps[0])
		}
		if rows := outboxOf(t, s); len(rows) != 0 {
			t.Fatalf("outbox rows %+v", rows)
		}
	})
}

// TestDryRunOverMappedRefundsRegistersNothing: a dry run over refunds the
// payment service wrote into its own tables, whose orders recon has never
// seen, scans them without writing recon's bookkeeping of either.
func TestDryRunOverMappedRefundsRegistersNothing(t *testing.T) {
	repotest.ForSchemas(t, []repotest.Schema{repotest.SchemaJeepay}, func(t *testing.T, db repotest.DB) {
		s, at := db.Store, now.Add(-time.Hour).Format("2006-01-02 15:04:05")
		for _, q := range []string{
			"INSERT INTO t_pay_order (pay_order_id, mch_no, if_code, amount, currency, state, created_at, updated_at) VALUES ('P1', 'm1', 'sim', 1000, 'cny', 2, '" + at + "', '" + at + "')",
			"INSERT INTO t_refund_order (refund_order_id, pay_order_id, mch_no, if_code, refund_amount, currency, state, created_at, updated_at) VALUES ('R1', 'P1', 'm1', 'sim', 300, 'cny', 1, '" + at + "', '" + at + "')",
		} {
			if err := s.DB().Exec(q).Error; err != nil {
				t.Fatal(err)
			}
		}
		got := scanRefunds(t, s, repo.Scan{Now: now, CreatedBefore: now, DryRun: true}, 10)
		if r := got["R1"]; len(got) != 1 || r.OrderNo != "P1" || r.OrderID != 0 || r.Amount != 300 || r.Currency != "CNY" {
			t.Fatalf("dry run scanned %+v", got)
		}
		for _, table := range []string{"recon_order_state", "recon_refund_state"} {
			var n int64
			if err := s.DB().Raw("SELECT COUNT(*) FROM " + table).Scan(&n).Error; err != nil || n != 0 {
				t.Fatalf("%s has %d rows after a dry run (%v)", table, n, err)
			}
		}
		got = scanRefunds(t, s, repo.Scan{Now: now, CreatedBefore: now}, 10)
		if r := got["R1"]; r.OrderNo != "P1" || r.OrderID == 0 {
			t.Fatalf("a pass scanned %+v", got)
		}
	})
}
