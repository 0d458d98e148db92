package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// hookedRefunds is the simulator with a hook run before each refund
// lookup (another writer moving the refund meanwhile).
type hookedRefunds struct {
	*simulator.Sim
	before func(recon.Refund)
}

func (h hookedRefunds) LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	h.before(r)
	return h.Sim.LookupRefund(ctx, r)
}

// orderLookupOnly is a channel adapter without a refund lookup.
type orderLookupOnly struct{ sim *simulator.Sim }

func (o orderLookupOnly) Lookup(ctx context.Context, ord recon.Order) (recon.LookupResult, error) {
	return o.sim.Lookup(ctx, ord)
}

func (e *env) refund(no string) recon.Refund {
	e.t.Helper()
	r, err := e.db.Store.GetRefundByNo(context.Background(), no)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func refundDone(amount int64) simulator.RefundBehaviour {
	return simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, Amount: amount}
}

func mismatchesByRefund(t *testing.T, s *repo.Store) map[string]recon.MismatchKind {
	t.Helper()
	ms, err := s.ListMismatches(context.Background(), repo.MismatchFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]recon.MismatchKind{}
	for _, m := range ms {
		if m.RefundNo == "" {
			continue
		}
		if prev, dup := out[m.RefundNo]; dup {
			t.Fatalf("refund %s has two mismatches: %s and %s", m.RefundNo, prev, m.Kind)
		}
		out[m.RefundNo] = m.Kind
	}
	return out
}

// TestRunSettlesRefundsBesideOrders drives every decision for a PENDING
// refund through one pass that also settles an order.
func TestRunSettlesRefundsBesideOrders(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		paid := repotest.Order("O-PAID", t0)
		paid.Status = recon.StatusPaid
		pending := repotest.Order("O-PEND", t0)
		e.seed(&paid, &pending)
		e.sim.Set("O-PEND", simulator.Behaviour{Status: recon.ChannelPaid})
		mk := func(no string, amount int64) *recon.Refund {
			r := repotest.Refund(no, paid, t0)
			r.Amount = amount
			return &r
		}
		ok, failed, proc, abn, over, amt := mk("R-OK", 300), mk("R-FAIL", 100), mk("R-PROC", 100), mk("R-ABN", 100), mk("R-OVER", 800), mk("R-AMT", 100)
		young := mk("R-YOUNG", 100)
		young.CreatedAt = t0.Add(-10 * time.Second) // in the grace period
		repotest.SeedRefunds(t, db.Store, ok, failed, proc, abn, over, amt, young)
		e.sim.SetRefund("R-OK", refundDone(300))
		e.sim.SetRefund("R-FAIL", simulator.RefundBehaviour{Status: recon.RefundChannelFailed})
		e.sim.SetRefund("R-PROC", simulator.RefundBehaviour{Status: recon.RefundChannelPending})
		e.sim.SetRefund("R-ABN", simulator.RefundBehaviour{Status: recon.RefundChannelAbnormal})
		e.sim.SetRefund("R-OVER", refundDone(800))
		e.sim.SetRefund("R-AMT", refundDone(99))
		e.sim.SetRefund("R-YOUNG", refundDone(100))

		rec := e.reconciler(db.Store, nil)
		// One worker and one committer, one refund per commit: R-OK
		// (scanned first) settles before R-OVER is judged.
		rec.Concurrency, rec.CommitBatch, rec.Committers = 1, 1, 1
		res, err := rec.Run(ctx, jobs.Window{})
		if err != nil {
			t.Fatal(err)
		}
		c := res.RunCounters
		if c.Scanned != 1 || c.Paid != 1 || c.RefundsScanned != 6 || c.RefundsSucceeded != 2 || c.RefundsFailed != 1 ||
			c.RefundsRescheduled != 2 || c.Errors != 0 || c.Skipped != 0 {
			t.Fatalf("counters %+v", c)
		}
		if e.sim.RefundCalls("R-YOUNG") != 0 {
			t.Fatal("a refund in its grace period was looked up")
		}
		want := map[string]recon.RefundStatus{"R-OK": recon.RefundSucceeded, "R-FAIL": recon.RefundFailed, "R-PROC": recon.RefundPending,
			"R-ABN": recon.RefundPending, "R-OVER": recon.RefundSucceeded, "R-AMT": recon.RefundPending}
		for no, st := range want {
			if got := e.refund(no); got.Status != st {
				t.Errorf("%s is %s, want %s", no, got.Status, st)
			}
		}
		if got := e.refund("R-AMT"); got.NextQueryAt != nil || got.QueryAttempts != 1 {
			t.Fatalf("a refund with another amount is still queried: %+v", got)
		}
		if got := e.refund("R-ABN"); got.NextQueryAt == nil || !got.NextQueryAt.After(t0) {
			t.Fatalf("an ABNORMAL refund is not kept queried: %+v", got)
		}
		kinds := mismatchesByRefund(t, db.Store)
		wantKinds := map[string]recon.MismatchKind{"R-ABN": recon.MismatchRefundAbnormal, "R-AMT": recon.MismatchRefundAmount, "R-OVER": recon.MismatchRefund}
		if len(kinds) != len(wantKinds) {
			t.Fatalf("refund mismatches %v, want %v", kinds, wantKinds)
		}
		for no, k := range wantKinds {
			if kinds[no] != k {
				t.Fatalf("refund mismatches %v, want %v", kinds, wantKinds)
			}
		}
		if res.NewMismatches != 3 || res.Mismatches != 3 {
			t.Fatalf("mismatch counters %d new of %d", res.NewMismatches, res.Mismatches)
		}
		notes, err := db.Store.NotificationsOf(ctx, paid.ID)
		if err != nil {
			t.Fatal(err)
		}
		events := map[recon.Event]int{}
		for _, n := range notes {
			events[n.Event]++
		}
		if events[recon.EventRefundSucceeded] != 2 || events[recon.EventRefundFailed] != 1 || len(notes) != 3 {
			t.Fatalf("outbox of the refunded order: %+v", events)
		}
		run, err := db.Store.GetRun(ctx, res.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if run.RefundsScanned != 6 || run.RefundsSucceeded != 2 || run.RefundsFailed != 1 || run.RefundsRescheduled != 2 {
			t.Fatalf("run row %+v", run.RunCounters)
		}

		// The next pass at the same time has nothing due; once the
		// schedule's first step has passed, the two kept refunds are.
		if res := e.runWith(rec, jobs.Window{}); res.RefundsScanned != 0 {
			t.Fatalf("second pass scanned %d refunds", res.RefundsScanned)
		}
		e.clock.Advance(10 * time.Second)
		e.sim.SetRefund("R-PROC", refundDone(100))
		res = e.runWith(rec, jobs.Window{})
		if res.RefundsScanned != 2 || res.RefundsSucceeded != 1 || res.RefundsRescheduled != 1 {
			t.Fatalf("third pass: %+v", res.RunCounters)
		}
		if e.sim.RefundCalls("R-ABN") != 2 || e.sim.RefundCalls("R-AMT") != 1 {
			t.Fatalf("lookups: ABN %d, AMT %d", e.sim.RefundCalls("R-ABN"), e.sim.RefundCalls("R-AMT"))
		}
		if kinds := mismatchesByRefund(t, db.Store); kinds["R-PROC"] != recon.MismatchRefund {
			// R-OK 300 + R-OVER 800 + R-PROC 100 > 1000.
			t.Fatalf("R-PROC's over-refund not recorded: %v", kinds)
		}
	})
}

// oneRefund seeds a PAID order O1 of 1000 and a due PENDING refund R1 of
// 300 of it.
func oneRefund(t *testing.T, db repotest.DB) *env {
	e := newEnv(t, db)
	paid := repotest.Order("O1", t0)
	paid.Status = recon.StatusPaid
	e.seed(&paid)
	r := repotest.Refund("R1", paid, t0)
	repotest.SeedRefunds(t, db.Store, &r)
	return e
}

func (e *env) runWith(rec *jobs.Reconciler, w jobs.Window) jobs.Result {
	e.t.Helper()
	res, err := rec.Run(context.Background(), w)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// TestRunSkipsRefundsOfChannelsWithoutRefundLookup: a channel whose adapter
// cannot look refunds up has its refunds skipped and counted, no errors.
func TestRunSkipsRefundsOfChannelsWithoutRefundLookup(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		paid := repotest.Order("O1", t0)
		paid.Status = recon.StatusPaid
		e.seed(&paid)
		r1, r2 := repotest.Refund("R1", paid, t0), repotest.Refund("R2", paid, t0)
		repotest.SeedRefunds(t, db.Store, &r1, &r2)
		g := channel.NewGuarded("sim", orderLookupOnly{sim: e.sim}, 0, channel.RetryPolicy{MaxElapsed: time.Millisecond})
		rec := e.reconciler(db.Store, nil)
		rec.Channels = map[string]jobs.Channel{"sim": g}
		res := e.runWith(rec, jobs.Window{})
		if res.RefundsScanned != 2 || res.RefundsUnsupported != 2 || res.Skipped != 2 || res.Errors != 0 || res.RefundsRescheduled != 0 {
			t.Fatalf("counters %+v", res.RunCounters)
		}
		if got := e.refund("R1"); got.QueryAttempts != 0 || got.Status != recon.RefundPending {
			t.Fatalf("a skipped refund was touched: %+v", got)
		}
	})
}

// TestBackfillVerifiesTerminalRefunds: --include-terminal reports the two
// verification kinds, and changes nothing.
func TestBackfillVerifiesTerminalRefunds(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		paid := repotest.Order("O1", t0)
		paid.Status = recon.StatusPaid
		e.seed(&paid)
		lf, ls, agree := repotest.Refund("R-LF", paid, t0), repotest.Refund("R-LS", paid, t0), repotest.Refund("R-AGREE", paid, t0)
		lf.Status, ls.Status, agree.Status = recon.RefundFailed, recon.RefundSucceeded, recon.RefundSucceeded
		e.sim.Set("O1", simulator.Behaviour{Status: recon.ChannelPaid}) // the order agrees
		outside := repotest.Refund("R-OLD", paid, t0)
		outside.Status, outside.CreatedAt = recon.RefundFailed, t0.Add(-72*time.Hour)
		repotest.SeedRefunds(t, db.Store, &lf, &ls, &agree, &outside)
		e.sim.SetRefund("R-LF", refundDone(300))
		e.sim.SetRefund("R-AGREE", refundDone(300))
		e.sim.SetRefund("R-OLD", refundDone(300))
		e.sim.SetRefund("R-LS", simulator.RefundBehaviour{Status: recon.RefundChannelNotFound})
		rec := e.reconciler(db.Store, nil)
		w := jobs.Window{Backfill: true, From: t0.Add(-48 * time.Hour), To: t0}
		if res := e.runWith(rec, w); res.RefundsScanned != 0 {
			t.Fatalf("a backfill without include-terminal scanned %d terminal refunds", res.RefundsScanned)
		}
		w.IncludeTerminal = true
		res := e.runWith(rec, w)
		if res.RefundsScanned != 3 || res.Mismatches != 2 || res.RefundsSucceeded+res.RefundsFailed != 0 {
			t.Fatalf("counters %+v", res.RunCounters)
		}
		kinds := mismatchesByRefund(t, db.Store)
		if kinds["R-LF"] != recon.MismatchChannelRefundedLocalFail || kinds["R-LS"] != recon.MismatchLocalRefundedChannelNot || len(kinds) != 2 {
			t.Fatalf("verification found %v", kinds)
		}
		if got := e.refund("R-LF"); got.Status != recon.RefundFailed || got.Version != 0 {
			t.Fatalf("verification changed a refund: %+v", got)
		}
	})
}

// TestRefundMovedByAnotherWriter: a refund settled by someone else between
// the scan and the commit is never overwritten; a winner that disagrees
// with the channel is STATUS_CONFLICT on that refund.
func TestRefundMovedByAnotherWriter(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		e := oneRefund(t, db)
		e.sim.SetRefund("R1", refundDone(300))
		hooked := hookedRefunds{Sim: e.sim, before: func(recon.Refund) {
			if !db.MoveRefund(t, db.Store, "R1", recon.RefundFailed) {
				t.Error("the other writer did not move R1")
			}
		}}
		res := e.runWith(e.reconciler(db.Store, hooked), jobs.Window{})
		if res.Conflicts != 1 || res.RefundsSucceeded != 0 || res.Mismatches != 1 {
			t.Fatalf("counters %+v", res.RunCounters)
		}
		if got := e.refund("R1"); got.Status != recon.RefundFailed {
			t.Fatalf("the other writer's FAILED was overwritten: %+v", got)
		}
		if kinds := mismatchesByRefund(t, db.Store); kinds["R1"] != recon.MismatchStatusConflict {
			t.Fatalf("mismatches %v", kinds)
		}
	})
}

// TestRefundDryRunWritesNothing plans the refunds' outcomes and writes none.
func TestRefundDryRunWritesNothing(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		e := oneRefund(t, db)
		e.sim.SetRefund("R1", refundDone(300))
		res := e.runWith(e.reconciler(db.Store, nil), jobs.Window{DryRun: true})
		if res.RefundsSucceeded != 1 || len(res.Planned) != 1 || res.Planned[0].RefundNo != "R1" || res.Planned[0].To != "SUCCEEDED" {
			t.Fatalf("dry run: %+v %+v", res.RunCounters, res.Planned)
		}
		if got := e.refund("R1"); got.Status != recon.RefundPending || got.QueryAttempts != 0 {
			t.Fatalf("a dry run wrote %+v", got)
		}
	})
}

// TestRefundLookupErrorsAreRetried: a failed refund lookup keeps the error
// and reschedules the refund.
func TestRefundLookupErrorsAreRetried(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		e := oneRefund(t, db)
		e.sim.SetRefund("R1", simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, PermanentError: true})
		res := e.runWith(e.reconciler(db.Store, nil), jobs.Window{})
		if res.Errors != 1 || res.RefundsRescheduled != 1 {
			t.Fatalf("counters %+v", res.RunCounters)
		}
		if got := e.refund("R1"); got.LastQueryError == "" || got.NextQueryAt == nil || got.QueryAttempts != 1 {
			t.Fatalf("after a failed lookup: %+v", got)
		}
	})
}

// TestMetricsCountRefunds: a pass's refund transitions and refund
// mismatch kinds are exposed.
func TestMetricsCountRefunds(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		e := oneRefund(t, db)
		paid := e.order("O1")
		abn := repotest.Refund("R2", paid, t0)
		repotest.SeedRefunds(t, db.Store, &abn)
		e.sim.SetRefund("R1", refundDone(300))
		e.sim.SetRefund("R2", simulator.RefundBehaviour{Status: recon.RefundChannelAbnormal})
		m := jobs.NewMetrics()
		if v, ok := series(gather(t, m), "recon_refund_transitions_total", map[string]string{"to": "SUCCEEDED"}); !ok || v != 0 {
			t.Fatalf("refund transitions before a pass = %v, %v; want 0", v, ok)
		}
		rec := e.reconciler(db.Store, nil)
		rec.Observer = m
		e.runWith(rec, jobs.Window{})
		fams := gather(t, m)
		if v, _ := series(fams, "recon_refund_transitions_total", map[string]string{"to": "SUCCEEDED"}); v != 1 {
			t.Fatalf("refund transitions to SUCCEEDED = %v, want 1", v)
		}
		if v, _ := series(fams, "recon_mismatches_total", map[string]string{"kind": "REFUND_ABNORMAL"}); v != 1 {
			t.Fatalf("REFUND_ABNORMAL detections = %v, want 1", v)
		}
	})
}
