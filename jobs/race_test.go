package jobs_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// callbackFirst is a channel through which, for some orders, a payment
// callback lands while recon's lookup is in flight: it moves the order
// itself (guarded, as the payment service does) before answering.
type callbackFirst struct {
	inner interface {
		Lookup(context.Context, recon.Order) (recon.LookupResult, error)
	}
	store   *repo.Store
	flip    map[string]recon.Status
	flipped atomic.Int64
	mu      sync.Mutex
	once    sync.Map // a callback lands once per order, whichever pass looks first
}

func (c *callbackFirst) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	if to, ok := c.flip[o.OrderNo]; ok {
		// Hold other lookups of flipped orders until the callback has landed,
		// so the callback always wins its order.
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, done := c.once.LoadOrStore(o.OrderNo, true); !done {
			res := c.store.DB().Exec(`UPDATE payment_orders SET status = ?, version = version + 1 WHERE id = ? AND status = 'PENDING'`, to, o.ID)
			if res.Error == nil && res.RowsAffected == 1 {
				c.flipped.Add(1)
				c.store.DB().Exec(`INSERT INTO order_transitions (order_id, from_status, to_status, from_version, to_version, source, created_at)
					SELECT id, 'PENDING', status, version - 1, version, 'callback', updated_at FROM payment_orders WHERE id = ?`, o.ID)
			}
		}
	}
	return c.inner.Lookup(ctx, o)
}

// TestRacingPasses runs two passes over the same orders while callbacks move
// some of them: every order transitions exactly once, one outbox row per
// (order, event), nothing terminal is overwritten and conflicts are counted.
func TestRacingPasses(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		const n = 120
		var orders []*recon.Order
		flip := map[string]recon.Status{}
		for i := 0; i < n; i++ {
			o := repotest.Order(fmt.Sprintf("R%04d", i), t0)
			orders = append(orders, &o)
			st := []recon.ChannelStatus{recon.ChannelPaid, recon.ChannelFailed, recon.ChannelClosed}[i%3]
			e.sim.Set(o.OrderNo, simulatorBehaviour(st))
			switch i % 10 {
			case 0:
				flip[o.OrderNo] = recon.StatusPaid // agrees with the channel when i%3 == 0
			case 5:
				flip[o.OrderNo] = recon.StatusClosed
			}
		}
		e.seed(orders...)

		var wg sync.WaitGroup
		results := make([]jobs.Result, 2)
		cb := &callbackFirst{inner: e.sim, store: db.Open(t), flip: flip}
		for p := 0; p < 2; p++ {
			store := db.Open(t) // a second process, in effect
			rec := e.reconciler(store, cb)
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				res, err := rec.Run(context.Background(), jobs.Window{})
				if err != nil {
					t.Errorf("pass %d: %v", p, err)
				}
				results[p] = res
			}(p)
		}
		wg.Wait()
		ctx := context.Background()
		callbacks := cb.flipped.Load()
		if callbacks != int64(len(flip)) {
			t.Fatalf("%d callbacks won, want %d", callbacks, len(flip))
		}
		moved := callbacks
		conflicts := int64(0)
		for _, r := range results {
			moved += r.Paid + r.Failed + r.Closed
			conflicts += r.Conflicts
		}
		if moved != n {
			t.Fatalf("transitions by passes and callbacks = %d, want %d (results %+v)", moved, n, results)
		}
		if conflicts < callbacks {
			t.Fatalf("conflicts = %d, want at least the %d callbacks that won", conflicts, callbacks)
		}
		for _, o := range orders {
			got := e.order(o.OrderNo)
			trs, _ := db.Store.Transitions(ctx, got.ID)
			if len(trs) != 1 || got.Version != 1 {
				t.Fatalf("order %s: %d transitions, version %d; want exactly one", o.OrderNo, len(trs), got.Version)
			}
			if to, ok := flip[o.OrderNo]; ok && got.Status != to && trs[0].Source == "callback" {
				t.Fatalf("order %s: callback's %s overwritten with %s", o.OrderNo, to, got.Status)
			}
			notes, _ := db.Store.NotificationsOf(ctx, got.ID)
			if trs[0].Source == "callback" {
				if len(notes) != 0 {
					t.Fatalf("order %s: recon enqueued %d notifications for a callback's transition", o.OrderNo, len(notes))
				}
				continue
			}
			if len(notes) != 1 || notes[0].Event != recon.EventFor(got.Status) {
				t.Fatalf("order %s (%s): outbox %+v", o.OrderNo, got.Status, notes)
			}
		}
		// A callback that disagrees with the channel is a STATUS_CONFLICT,
		// and only such a callback.
		ms, _ := db.Store.ListMismatches(ctx, repo.MismatchFilter{})
		conflicted := map[string]bool{}
		for _, m := range ms {
			if m.Kind != recon.MismatchStatusConflict {
				t.Fatalf("unexpected mismatch %+v", m)
			}
			conflicted[m.OrderNo] = true
		}
		for i, o := range orders {
			to, ok := flip[o.OrderNo]
			channelSays := []recon.Status{recon.StatusPaid, recon.StatusFailed, recon.StatusClosed}[i%3]
			if want := ok && to != channelSays; conflicted[o.OrderNo] != want {
				t.Fatalf("order %s (callback %q, channel %s): STATUS_CONFLICT recorded = %v, want %v",
					o.OrderNo, to, channelSays, conflicted[o.OrderNo], want)
			}
		}
	})
}

func simulatorBehaviour(st recon.ChannelStatus) simulator.Behaviour {
	return simulator.Behaviour{Status: st}
}
