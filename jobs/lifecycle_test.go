package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// snapshot renders every row the job may write, to compare before and after.
func snapshot(t *testing.T, s *repo.Store) string {
	t.Helper()
	var out string
	for _, q := range []string{
		"SELECT id, status, version, query_attempts, next_query_at, last_query_error, channel_txn_id, paid_at FROM payment_orders ORDER BY id",
		"SELECT id, order_id, event, status FROM merchant_notifications ORDER BY id",
		"SELECT id, order_id, to_version FROM order_transitions ORDER BY id",
		"SELECT id, order_id, kind, occurrences, resolution FROM recon_mismatches ORDER BY id",
	} {
		var rows []map[string]any
		if err := s.DB().Raw(q).Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			keys := make([]string, 0, len(r))
			for k := range r {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out += fmt.Sprintf("%s=%v ", k, r[k])
			}
			out += "\n"
		}
	}
	return out
}

func seedMix(e *env, n int) []*recon.Order {
	var orders []*recon.Order
	kinds := []simulator.Behaviour{
		{Status: recon.ChannelPaid}, {Status: recon.ChannelFailed}, {Status: recon.ChannelClosed},
		{Status: recon.ChannelPending}, {Status: recon.ChannelNotFound}, {Status: recon.ChannelPaid, Amount: 1},
		{Status: recon.ChannelPaid, BadSignature: true},
	}
	for i := 0; i < n; i++ {
		o := repotest.Order(fmt.Sprintf("MIX%04d", i), t0)
		orders = append(orders, &o)
		e.sim.Set(o.OrderNo, kinds[i%len(kinds)])
	}
	e.seed(orders...)
	return orders
}

func TestDryRunWritesNothingAndRerunDoesNothingNew(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		seedMix(e, 35)
		before := snapshot(t, db.Store)
		dry := e.run(jobs.Window{DryRun: true})
		if after := snapshot(t, db.Store); after != before {
			t.Fatalf("dry run changed rows:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if dry.Scanned != 35 || dry.Paid != 5 || dry.Failed != 5 || dry.Closed != 5 || dry.Mismatches != 5 || len(dry.Planned) == 0 {
			t.Fatalf("dry run result = %+v", dry.RunCounters)
		}
		real := e.run(jobs.Window{})
		if real.RunCounters != dry.RunCounters {
			t.Fatalf("real pass %+v differs from its dry run %+v", real.RunCounters, dry.RunCounters)
		}
		done := snapshot(t, db.Store)
		again := e.run(jobs.Window{})
		if again.Scanned != 0 {
			t.Fatalf("rerun at the same moment scanned %d orders", again.Scanned)
		}
		if snapshot(t, db.Store) != done {
			t.Fatal("rerun changed rows")
		}
		// Later, only the rescheduled orders are due; terminal ones never again.
		e.clock.Advance(time.Minute)
		later := e.run(jobs.Window{})
		if later.Scanned != 15 || later.Paid+later.Failed+later.Closed != 0 {
			t.Fatalf("later pass = %+v, want 15 rescheduled orders scanned and none moved", later.RunCounters)
		}
		runs, _ := db.Store.ListRuns(context.Background(), 10)
		if len(runs) != 4 || !runs[3].DryRun || runs[3].Status != repo.RunSucceeded || runs[0].FinishedAt == nil {
			t.Fatalf("runs = %+v", runs)
		}
	})
}

func TestTransientRetriedPermanentNotAndRetryAfterHonoured(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		a, b, c := repotest.Order("TR-a", t0), repotest.Order("TR-b", t0), repotest.Order("TR-c", t0)
		e.seed(&a, &b, &c)
		e.sim.Set("TR-a", simulator.Behaviour{Status: recon.ChannelPaid, TransientFailures: 2})
		e.sim.Set("TR-b", simulator.Behaviour{Status: recon.ChannelPaid, PermanentError: true})
		e.sim.Set("TR-c", simulator.Behaviour{Status: recon.ChannelPaid, RateLimits: 1})
		start := time.Now()
		res := e.run(jobs.Window{})
		elapsed := time.Since(start)
		if e.order("TR-a").Status != recon.StatusPaid || e.sim.Calls("TR-a") != 3 {
			t.Fatalf("transient: status %s after %d calls, want PAID after 3", e.order("TR-a").Status, e.sim.Calls("TR-a"))
		}
		if e.order("TR-b").Status != recon.StatusPending || e.sim.Calls("TR-b") != 1 {
			t.Fatalf("permanent: %d calls, want 1", e.sim.Calls("TR-b"))
		}
		if e.order("TR-c").Status != recon.StatusPaid || e.sim.Calls("TR-c") != 2 {
			t.Fatalf("429: status %s after %d calls", e.order("TR-c").Status, e.sim.Calls("TR-c"))
		}
		if elapsed < 50*time.Millisecond { // the simulator's Retry-After
			t.Fatalf("pass took %s, less than the 429's Retry-After", elapsed)
		}
		if res.Errors != 1 || res.Paid != 2 {
			t.Fatalf("counters %+v", res.RunCounters)
		}
	})
}

func TestImpossibleRowsAreSkippedAndCounted(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		good := repotest.Order("IMP-good", t0)
		neg := repotest.Order("IMP-neg", t0)
		neg.Amount = -5
		cur := repotest.Order("IMP-cur", t0)
		cur.Currency = "yen"
		ch := repotest.Order("IMP-chan", t0)
		ch.Channel = "nowhere"
		e.seed(&good, &neg, &cur, &ch)
		e.sim.Set("IMP-good", simulator.Behaviour{Status: recon.ChannelPaid})
		res := e.run(jobs.Window{})
		if res.Skipped != 3 || res.Errors != 3 || res.Paid != 1 {
			t.Fatalf("counters %+v", res.RunCounters)
		}
		for _, no := range []string{"IMP-neg", "IMP-cur", "IMP-chan"} {
			if o := e.order(no); o.Status != recon.StatusPending || o.Version != 0 || o.QueryAttempts != 0 {
				t.Fatalf("%s was touched: %+v", no, o)
			}
		}
		ctx := context.Background()
		if run, err := db.Store.GetRun(ctx, res.RunID); err != nil || run.Skipped != 3 || run.Errors != 3 || run.Status != repo.RunSucceeded {
			t.Fatalf("run row = %+v, %v; want the skipped rows reported", run, err)
		}
		// A status the job does not know is only ever seen by a backfill
		// that verifies terminal orders (the due scan reads PENDING rows).
		odd := repotest.Order("IMP-status", t0)
		odd.Status = "REFUNDED"
		e.seed(&odd)
		e.sim.Set("IMP-status", simulator.Behaviour{Status: recon.ChannelPaid})
		bf := e.run(jobs.Window{Backfill: true, IncludeTerminal: true, From: t0.Add(-2 * time.Hour), To: t0})
		if bf.Skipped != 4 || bf.Errors != 4 || bf.Scanned != 5 {
			t.Fatalf("backfill counters %+v, want the four impossible rows skipped", bf.RunCounters)
		}
		if o := e.order("IMP-status"); o.Status != "REFUNDED" || o.Version != 0 || e.sim.Calls("IMP-status") != 0 {
			t.Fatalf("order with an unknown status was touched or looked up: %+v", o)
		}
		if ms, _ := db.Store.ListMismatches(ctx, repo.MismatchFilter{}); len(ms) != 0 {
			t.Fatalf("impossible rows made mismatches: %+v", ms)
		}
	})
}

func TestShutdownAbortsTheRunAndCommitsNothingHalfDone(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		e.sim = simulator.New(simulator.Config{Seed: 1, PaidRate: 1, Latency: 20 * time.Millisecond})
		var orders []*recon.Order
		for i := 0; i < 200; i++ {
			o := repotest.Order(fmt.Sprintf("SD%04d", i), t0)
			orders = append(orders, &o)
		}
		e.seed(orders...)
		ctx, cancel := context.WithCancel(context.Background())
		rec := e.reconciler(db.Store, nil)
		rec.ShutdownGrace = 10 * time.Millisecond
		obs := &cancelAfter{n: 10, cancel: cancel}
		rec.Observer = obs
		res, err := rec.Run(ctx, jobs.Window{})
		if !errors.Is(err, jobs.ErrShutdown) {
			t.Fatalf("err = %v, want ErrShutdown", err)
		}
		run, _ := db.Store.GetRun(context.Background(), res.RunID)
		if run.Status != repo.RunAborted || run.FinishedAt == nil {
			t.Fatalf("run = %+v, want ABORTED and finished", run)
		}
		if res.Paid == 0 || res.Paid >= 200 {
			t.Fatalf("paid %d: the pass should have stopped part way", res.Paid)
		}
		paid := int64(0)
		for _, o := range orders {
			got := e.order(o.OrderNo)
			notes, _ := db.Store.NotificationsOf(context.Background(), got.ID)
			trs, _ := db.Store.Transitions(context.Background(), got.ID)
			switch got.Status {
			case recon.StatusPaid:
				paid++
				if len(notes) != 1 || len(trs) != 1 || got.Version != 1 {
					t.Fatalf("%s PAID with %d outbox and %d audit rows", o.OrderNo, len(notes), len(trs))
				}
			case recon.StatusPending:
				if len(notes) != 0 || len(trs) != 0 || got.Version != 0 {
					t.Fatalf("%s half-committed", o.OrderNo)
				}
			}
		}
		if paid != res.Paid || run.Paid != paid {
			t.Fatalf("paid rows %d, result %d, run row %d", paid, res.Paid, run.Paid)
		}
	})
}

// cancelAfter cancels the pass's context after n orders were processed.
type cancelAfter struct {
	n      int64
	seen   int64
	cancel func()
	mu     sync.Mutex
}

func (c *cancelAfter) Lookup(string, string, time.Duration)                 {}
func (c *cancelAfter) Transition(recon.Status)                              {}
func (c *cancelAfter) Mismatch(recon.MismatchKind)                          {}
func (c *cancelAfter) Conflict()                                            {}
func (c *cancelAfter) RunFinished(string, string, time.Duration, time.Time) {}
func (c *cancelAfter) Processed(time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen++
	if c.seen == c.n {
		c.cancel()
	}
}

func TestAbandonedRunIsClosedByTheNextPass(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		dead, err := db.Store.StartRun(ctx, jobs.KindReconcile, false, "", "killed", t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		alive, _ := db.Store.StartRun(ctx, jobs.KindReconcile, false, "", "alive", t0)
		e.run(jobs.Window{})
		d, _ := db.Store.GetRun(ctx, dead)
		a, _ := db.Store.GetRun(ctx, alive)
		if d.Status != repo.RunFailed || d.FinishedAt == nil {
			t.Fatalf("abandoned run = %+v, want FAILED with finished_at", d)
		}
		if a.Status != repo.RunRunning {
			t.Fatalf("live run = %+v, want still RUNNING", a)
		}
	})
}

// refusingStore is the real store, except that a commit batch holding an
// order of refuse fails, as MySQL refusing that order's row would.
type refusingStore struct {
	*repo.Store
	refuse map[string]bool
}

func (s refusingStore) CommitBatch(ctx context.Context, outs []recon.Outcome, meta repo.CommitMeta) ([]repo.CommitReport, error) {
	for _, o := range outs {
		if s.refuse[o.Order.OrderNo] {
			return nil, errors.New("Error 1406 (22001): Data too long for column")
		}
	}
	return s.Store.CommitBatch(ctx, outs, meta)
}

func TestOneRefusedOrderDoesNotEndThePass(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		var orders []*recon.Order
		for i := 0; i < 30; i++ {
			o := repotest.Order(fmt.Sprintf("RF%03d", i), t0)
			orders = append(orders, &o)
			e.sim.Set(o.OrderNo, simulator.Behaviour{Status: recon.ChannelPaid})
		}
		e.seed(orders...)
		r := e.reconciler(db.Store, nil)
		r.Concurrency, r.CommitBatch = 8, 16 // the refused order shares batches with others
		r.Store = refusingStore{Store: db.Store, refuse: map[string]bool{"RF007": true}}
		res, err := r.Run(context.Background(), jobs.Window{})
		if err != nil || res.Status != repo.RunSucceeded || res.Paid != 29 || res.Errors != 1 {
			t.Fatalf("Run = %+v, %v", res, err)
		}
		if o := e.order("RF007"); o.Status != recon.StatusPending || o.Version != orders[7].Version {
			t.Fatalf("refused order = %+v", o)
		}
		repotest.CheckLedger(t, db.Store, nil, false)

		// When every commit fails, the database is failing: the pass ends.
		o := repotest.Order("RF-ALL", t0)
		e.sim.Set(o.OrderNo, simulator.Behaviour{Status: recon.ChannelPaid})
		e.seed(&o)
		all := map[string]bool{"RF007": true, "RF-ALL": true}
		r.Store = refusingStore{Store: db.Store, refuse: all}
		if res, err := r.Run(context.Background(), jobs.Window{}); err == nil || res.Status != repo.RunFailed {
			t.Fatalf("Run with every commit refused = %+v, %v", res, err)
		}
	})
}
