package jobs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// truthMix gives order i a channel behaviour and the truth the ledger check
// judges it by: paid (most), failed, closed, pending, not found, a tampered
// amount, a bad signature.
func truthMix(i int) (simulator.Behaviour, repotest.Truth) {
	switch i % 10 {
	case 0, 1, 2, 3:
		return simulator.Behaviour{Status: recon.ChannelPaid}, repotest.Truth{Status: recon.ChannelPaid}
	case 4:
		return simulator.Behaviour{Status: recon.ChannelFailed}, repotest.Truth{Status: recon.ChannelFailed}
	case 5:
		return simulator.Behaviour{Status: recon.ChannelClosed}, repotest.Truth{Status: recon.ChannelClosed}
	case 6:
		return simulator.Behaviour{Status: recon.ChannelPending}, repotest.Truth{Status: recon.ChannelPending}
	case 7:
		return simulator.Behaviour{Status: recon.ChannelNotFound}, repotest.Truth{Status: recon.ChannelNotFound}
	case 8:
		return simulator.Behaviour{Status: recon.ChannelPaid, Amount: 1}, repotest.Truth{Status: recon.ChannelPaid, Tampered: true}
	}
	return simulator.Behaviour{Status: recon.ChannelPaid, BadSignature: true}, repotest.Truth{Status: recon.ChannelPaid, Unverifiable: true}
}

// callbackWriter plays the payment service: a callback moves an order out of
// PENDING itself, guarded like recon, with its own audit and outbox rows.
type callbackWriter struct {
	store *repo.Store
	now   time.Time
	won   atomic.Int64
}

// land applies a callback saying to for order no; it does nothing when the
// order already left PENDING.
func (c *callbackWriter) land(ctx context.Context, no string, to recon.Status) error {
	won, err := repotest.LandCallback(ctx, c.store, no, to, c.now)
	if won {
		c.won.Add(1)
	}
	return err
}

// TestFourPassesAndCallbacksOverlap runs four passes at once over the same
// orders (on a cluster, spread over its nodes) while a callback writer moves
// a quarter of them: the ledger
// invariants hold, every order the channel settles is settled exactly once,
// and every transition is counted by exactly one writer.
func TestFourPassesAndCallbacksOverlap(t *testing.T) {
	repotest.ForEachDBAndCluster(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		e.sim = simulator.New(simulator.Config{Seed: 1, Secret: "s3cret", Latency: time.Millisecond})
		n := 400
		if testing.Short() {
			n = 100
		}
		truth := map[string]repotest.Truth{}
		var orders []*recon.Order
		for i := 0; i < n; i++ {
			o := repotest.Order(fmt.Sprintf("OV%05d", i), t0)
			b, tr := truthMix(i)
			e.sim.Set(o.OrderNo, b)
			truth[o.OrderNo] = tr
			orders = append(orders, &o)
		}
		e.seed(orders...)

		ctx := context.Background()
		seed := repotest.RandSeed(t)
		rng := rand.New(rand.NewPCG(seed, seed))
		db.Settle(t) // on a cluster, every node has the orders
		// The payment service reads its orders causally.
		cb := &callbackWriter{store: db.Store, now: t0}
		var callbacks []int
		for _, i := range rng.Perm(n)[:n/4] {
			callbacks = append(callbacks, i)
		}
		var wg sync.WaitGroup
		results := make([]jobs.Result, 4)
		for p := range results {
			rec := e.reconciler(db.Open(t), nil)
			rec.CommitBatch = 1 + p*10 // from one order per transaction to batches
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := rec.Run(ctx, jobs.Window{})
				if err != nil {
					t.Errorf("pass %d: %v", p, err)
				}
				results[p] = res
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k, i := range callbacks {
				to := []recon.Status{recon.StatusPaid, recon.StatusFailed, recon.StatusClosed}[k%3]
				if err := cb.land(ctx, orders[i].OrderNo, to); err != nil {
					t.Errorf("callback for %s: %v", orders[i].OrderNo, err)
					return
				}
			}
		}()
		wg.Wait()
		if t.Failed() {
			return
		}
		led := repotest.CheckLedger(t, db.Store, truth, true)
		t.Log(led)
		moved := cb.won.Load()
		for _, r := range results {
			moved += r.Paid + r.Failed + r.Closed
		}
		terminal := int64(led.ByStatus[recon.StatusPaid] + led.ByStatus[recon.StatusFailed] + led.ByStatus[recon.StatusClosed])
		if moved != terminal || int64(led.ByOther) != cb.won.Load() {
			t.Fatalf("passes and callbacks counted %d transitions (callbacks %d), the ledger has %d (by others %d); results %+v",
				moved, cb.won.Load(), terminal, led.ByOther, results)
		}
	})
}
