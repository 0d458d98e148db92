package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

var wide = jobs.Window{Backfill: true, From: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}

// Five orders the payment service wrote with the schema's DEFAULT
// CURRENT_TIMESTAMP, a batch size of 2, a backfill over a wide window: every
// order is scanned.
func TestBackfillScansOrdersWithTheDefaultTime(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		e.clock = recon.NewFakeClock(time.Now().UTC().Add(time.Hour))
		if err := db.Store.DB().Exec(`INSERT INTO payment_orders (order_no, merchant_id, channel, amount, currency)
			VALUES ('d1', 'm1', 'sim', 100, 'CNY'), ('d2', 'm1', 'sim', 100, 'CNY'), ('d3', 'm1', 'sim', 100, 'CNY'),
			       ('d4', 'm1', 'sim', 100, 'CNY'), ('d5', 'm1', 'sim', 100, 'CNY')`).Error; err != nil {
			t.Fatal(err)
		}
		e.sim.Set("d1", simulator.Behaviour{Status: recon.ChannelPaid, Amount: 100})
		r := e.reconciler(db.Store, nil)
		r.BatchSize = 2
		res, err := r.Run(context.Background(), wide)
		if err != nil || res.Status != repo.RunSucceeded || res.Scanned != 5 || res.Paid != 1 || res.Rescheduled != 4 {
			t.Fatalf("backfill = %+v, %v; want 5 scanned", res, err)
		}
	})
}

// An order written with an ISO-8601 created_at 19 hours ago, the same day,
// is due.
func TestRunPicksUpAnISODatedOrder(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		evening := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
		e.clock = recon.NewFakeClock(evening)
		created := evening.Add(-19 * time.Hour).Format("2006-01-02T15:04:05Z")
		if db.Dialect == repo.MySQL {
			created = strings.TrimSuffix(created, "Z") // MariaDB refuses the Z
		}
		if err := db.Store.DB().Exec(`INSERT INTO payment_orders (order_no, merchant_id, channel, amount, currency, created_at, updated_at)
			VALUES ('iso', 'm1', 'sim', 100, 'CNY', ?, ?)`, created, created).Error; err != nil {
			t.Fatal(err)
		}
		e.sim.Set("iso", simulator.Behaviour{Status: recon.ChannelPaid, Amount: 100})
		if res := e.run(jobs.Window{}); res.Scanned != 1 || res.Paid != 1 {
			t.Fatalf("run = %+v; want the ISO-dated order scanned and paid", res)
		}
		if o := e.order("iso"); o.Status != recon.StatusPaid || !o.CreatedAt.Equal(evening.Add(-19*time.Hour)) {
			t.Fatalf("order = %+v", o)
		}
	})
}

// lossyScan is the real store with a scan that drops orders, as a scan that
// compared times wrongly did; settle lands callbacks for some orders before
// the scan starts.
type lossyScan struct {
	*repo.Store
	drop   map[string]bool
	settle func()
}

func (s *lossyScan) ScanPage(ctx context.Context, sc repo.Scan, cur repo.Cursor, limit int) ([]recon.Order, repo.Cursor, error) {
	if s.settle != nil {
		s.settle()
		s.settle = nil
	}
	page, next, err := s.Store.ScanPage(ctx, sc, cur, limit)
	kept := page[:0]
	for _, o := range page {
		if !s.drop[o.OrderNo] {
			kept = append(kept, o)
		}
	}
	return kept, next, err
}

// A backfill that scanned fewer orders than its window held fails; orders
// that a callback settled before the scan reached them are no such miss.
func TestBackfillThatMissedOrdersFails(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		var orders []*recon.Order
		for i := range 6 {
			o := repotest.Order(fmt.Sprintf("B%d", i), t0)
			orders = append(orders, &o)
			if i%2 == 0 {
				e.sim.Set(o.OrderNo, simulator.Behaviour{Status: recon.ChannelPaid})
			}
		}
		e.seed(orders...)
		r := e.reconciler(db.Store, nil)
		r.BatchSize = 2
		w := jobs.Window{Backfill: true, From: t0.Add(-2 * time.Hour), To: t0}

		// Settled by callbacks just before the scan: not a miss.
		r.Store = &lossyScan{Store: db.Store, drop: map[string]bool{"B1": true, "B3": true}, settle: func() {
			if err := db.Store.DB().Exec("UPDATE payment_orders SET status = 'PAID', version = version + 1 WHERE order_no IN ('B1', 'B3')").Error; err != nil {
				t.Error(err)
			}
		}}
		res, err := r.Run(context.Background(), w)
		if err != nil || res.Status != repo.RunSucceeded || res.Scanned != 4 || res.Paid != 3 {
			t.Fatalf("backfill with two orders settled meanwhile = %+v, %v; want SUCCEEDED", res, err)
		}

		// B5 missed while still PENDING: FAILED, for a dry run and a
		// verification backfill too.
		for _, c := range []struct {
			dry, terminal bool
			want          string
		}{{false, false, "scanned 0 of the 1 orders"}, {true, false, "scanned 0 of the 1 orders"}, {false, true, "scanned 5 of the 6 orders"}} {
			w.DryRun, w.IncludeTerminal = c.dry, c.terminal
			r.Store = &lossyScan{Store: db.Store, drop: map[string]bool{"B5": true}}
			res, err = r.Run(context.Background(), w)
			if err == nil || res.Status != repo.RunFailed || !strings.Contains(res.Error, c.want) {
				t.Fatalf("%+v: backfill that missed B5 = %+v, %v; want FAILED, %q", c, res, err, c.want)
			}
			run, err := db.Store.GetRun(context.Background(), res.RunID)
			if err != nil || run.Status != repo.RunFailed {
				t.Fatalf("run row = %+v, %v", run, err)
			}
		}
		// With --limit the window is not meant to be covered.
		w.Limit = 1
		if res, err := r.Run(context.Background(), w); err != nil || res.Status != repo.RunSucceeded || res.Scanned != 1 {
			t.Fatalf("limited backfill = %+v, %v", res, err)
		}
	})
}
