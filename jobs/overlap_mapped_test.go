package jobs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// teamHandler plays the team's own payment callback handler on mapped
// schema A: it reads the order's state and moves it with the status-guarded
// update payment systems use (... WHERE pay_order_id = ? AND state = <read>),
// writing none of recon's rows. It remembers what it wrote.
type teamHandler struct {
	store *repo.Store
	mu    sync.Mutex
	won   map[string]int // order_no -> state written
}

var schemaAState = map[recon.Status]int{recon.StatusPaid: 2, recon.StatusFailed: 3, recon.StatusClosed: 6}

// callback moves order no to state to if it is still pending; first, when
// paying is set, it moves it from created (0) to paying (1), as the
// handler does when the customer opens the cashier.
func (h *teamHandler) callback(ctx context.Context, no string, to int, paying bool) error {
	db := h.store.DB().WithContext(ctx)
	if paying {
		if err := db.Exec("UPDATE t_pay_order SET state = 1 WHERE pay_order_id = ? AND state = 0", no).Error; err != nil {
			return err
		}
	}
	var state int
	if err := db.Raw("SELECT state FROM t_pay_order WHERE pay_order_id = ?", no).Row().Scan(&state); err != nil {
		return err
	}
	if state != 0 && state != 1 {
		return nil
	}
	res := db.Exec("UPDATE t_pay_order SET state = ?, updated_at = ? WHERE pay_order_id = ? AND state = ?", to, time.Now().UTC(), no, state)
	if res.Error != nil || res.RowsAffected == 0 {
		return res.Error
	}
	h.mu.Lock()
	h.won[no] = to
	h.mu.Unlock()
	return nil
}

// racingLookup answers like the simulator, but for the orders in race it
// lets the team's handler move the order first, so the pass's commit is
// certain to lose its guard.
type racingLookup struct {
	*simulator.Sim
	race map[string]func(ctx context.Context) error
}

func (l racingLookup) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	r, err := l.Sim.Lookup(ctx, o)
	if f := l.race[o.OrderNo]; f != nil && err == nil {
		if cerr := f(ctx); cerr != nil {
			return r, cerr
		}
	}
	return r, err
}

// TestPassesRaceTheTeamsCallbackHandlerOnAMappedTable runs passes at once
// over mapped schema A (string key, two pending values, no version column)
// while the team's handler moves a third of the orders with its own
// status-guarded updates, some disagreeing with the channel: every order
// moves once, nothing the handler wrote is overwritten, disagreements
// found by a pass that lost are STATUS_CONFLICT, and recon queues one
// notification per transition it made, none for the handler's.
func TestPassesRaceTheTeamsCallbackHandlerOnAMappedTable(t *testing.T) {
	for _, newDB := range []func(testing.TB, repotest.Schema) repotest.DB{repotest.NewSQLiteSchema, repotest.NewMySQLSchema} {
		db := newDB(t, repotest.SchemaA)
		t.Run(string(db.Dialect), func(t *testing.T) {
			e := newEnv(t, db)
			e.sim = simulator.New(simulator.Config{Seed: 1, Secret: "s3cret", Latency: time.Millisecond})
			n := 240
			ctx := context.Background()
			h := &teamHandler{store: db.Open(t), won: map[string]int{}}
			truth := map[string]repotest.Truth{}
			race := map[string]func(context.Context) error{}
			disagree := map[string]bool{}
			var later []func() error
			seed := repotest.RandSeed(t)
			rng := rand.New(rand.NewPCG(seed, seed))
			var orders []*recon.Order
			for i := 0; i < n; i++ {
				o := repotest.Order(fmt.Sprintf("TA%05d", i), t0)
				b, tr := truthMix(i)
				e.sim.Set(o.OrderNo, b)
				truth[o.OrderNo] = tr
				orders = append(orders, &o)
				if i%3 != 0 {
					continue
				}
				// The handler's word: the channel's, or (every other one)
				// a different terminal state.
				to := map[recon.ChannelStatus]recon.Status{recon.ChannelPaid: recon.StatusPaid, recon.ChannelFailed: recon.StatusFailed,
					recon.ChannelClosed: recon.StatusClosed}[tr.Status]
				if to == "" || tr.Tampered || tr.Unverifiable || i%2 == 0 {
					to = []recon.Status{recon.StatusPaid, recon.StatusFailed, recon.StatusClosed}[rng.IntN(3)]
				}
				if want, ok := map[recon.ChannelStatus]recon.Status{recon.ChannelPaid: recon.StatusPaid, recon.ChannelFailed: recon.StatusFailed,
					recon.ChannelClosed: recon.StatusClosed}[tr.Status]; !ok || want != to || tr.Tampered {
					disagree[o.OrderNo] = true
				}
				no, state, paying := o.OrderNo, schemaAState[to], i%4 == 0
				cb := func(ctx context.Context) error { return h.callback(ctx, no, state, paying) }
				if (i/3)%2 == 0 && !tr.Unverifiable {
					race[no] = cb // lands while a pass looks the order up
				} else {
					later = append(later, func() error { return cb(ctx) })
				}
			}
			e.seed(orders...)
			look := racingLookup{Sim: e.sim, race: race}

			var wg sync.WaitGroup
			results := make([]jobs.Result, 3)
			for p := range results {
				rec := e.reconciler(db.Open(t), look)
				rec.CommitBatch = 1 + p*16
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
				for _, f := range rng.Perm(len(later)) {
					if err := later[f](); err != nil {
						t.Errorf("handler: %v", err)
						return
					}
				}
			}()
			wg.Wait()
			if t.Failed() {
				return
			}
			// Whatever the racing passes left due (lookups of orders a
			// racing pass had claimed) is picked up by one more pass.
			results = append(results, e.run(jobs.Window{}))

			var moved int64
			for _, r := range results {
				moved += r.Paid + r.Failed + r.Closed
			}
			var recMoved, conflicts int64
			for _, o := range orders {
				got, err := db.Store.GetOrder(ctx, o.ID)
				if err != nil {
					t.Fatal(err)
				}
				var state int
				if err := db.Store.DB().Raw("SELECT state FROM t_pay_order WHERE pay_order_id = ?", o.OrderNo).Row().Scan(&state); err != nil {
					t.Fatal(err)
				}
				trs, _ := db.Store.Transitions(ctx, o.ID)
				notes, _ := db.Store.NotificationsOf(ctx, o.ID)
				ms, _ := db.Store.ListMismatches(ctx, repo.MismatchFilter{OrderID: o.ID, Kind: recon.MismatchStatusConflict})
				conflicts += int64(len(ms))
				tr := truth[o.OrderNo]
				if wrote, ok := h.won[o.OrderNo]; ok {
					if state != wrote || len(trs) != 0 || len(notes) != 0 {
						t.Fatalf("%s: the handler wrote %d, the table holds %d; recon audit %+v, outbox %+v", o.OrderNo, wrote, state, trs, notes)
					}
					if len(ms) == 1 && !disagree[o.OrderNo] {
						t.Fatalf("%s: STATUS_CONFLICT where the handler agreed with the channel: %+v", o.OrderNo, ms[0])
					}
					if _, raced := race[o.OrderNo]; raced && disagree[o.OrderNo] && !tr.Tampered && (tr.Status == recon.ChannelPaid ||
						tr.Status == recon.ChannelFailed || tr.Status == recon.ChannelClosed) && len(ms) != 1 {
						t.Fatalf("%s: a pass lost to a disagreeing handler and recorded no STATUS_CONFLICT", o.OrderNo)
					}
					continue
				}
				if len(ms) != 0 {
					t.Fatalf("%s: STATUS_CONFLICT on an order the handler never moved", o.OrderNo)
				}
				if got.Status.Terminal() {
					recMoved++
					if len(trs) != 1 || len(notes) != 1 || trs[0].ToStatus != got.Status || state != schemaAState[got.Status] {
						t.Fatalf("%s moved by recon to %s (state %d): audit %+v, outbox %+v", o.OrderNo, got.Status, state, trs, notes)
					}
				} else if len(trs) != 0 || len(notes) != 0 || (state != 0 && state != 1) {
					t.Fatalf("%s pending (state %d) with audit %+v, outbox %+v", o.OrderNo, state, trs, notes)
				}
				want := map[recon.ChannelStatus]recon.Status{recon.ChannelPaid: recon.StatusPaid, recon.ChannelFailed: recon.StatusFailed,
					recon.ChannelClosed: recon.StatusClosed}[tr.Status]
				if tr.Tampered || tr.Unverifiable || want == "" {
					want = recon.StatusPending
				}
				if got.Status != want {
					t.Fatalf("%s: %s, the channel says %s", o.OrderNo, got.Status, want)
				}
			}
			if moved != recMoved || len(h.won) == 0 || conflicts == 0 {
				t.Fatalf("passes counted %d transitions, recon's audit has %d; the handler moved %d; %d conflicts", moved, recMoved, len(h.won), conflicts)
			}
			t.Logf("recon moved %d, the handler %d, STATUS_CONFLICT %d", recMoved, len(h.won), conflicts)
		})
	}
}
