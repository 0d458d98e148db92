package repo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// seedRead seeds n due orders named prefix-i and returns them as read back.
func seedRead(t *testing.T, db repotest.DB, prefix string, n int) []recon.Order {
	t.Helper()
	ptrs := make([]*recon.Order, n)
	for i := range ptrs {
		o := repotest.Order(fmt.Sprintf("%s-%03d", prefix, i), now)
		ptrs[i] = &o
	}
	db.Seed(t, ptrs...)
	out := make([]recon.Order, n)
	for i, p := range ptrs {
		o, err := db.Store.GetOrder(context.Background(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = o
	}
	return out
}

func paid(o recon.Order) recon.Outcome {
	return recon.Decide(o, recon.LookupResult{Status: recon.ChannelPaid, Amount: o.Amount, Currency: o.Currency, TxnID: "T-" + o.OrderNo},
		recon.Policy{}, now, false)
}

// countRows counts the rows of table for one order.
func countRows(t *testing.T, s *repo.Store, table string, orderID int64) int64 {
	t.Helper()
	var n int64
	if err := s.DB().Table(table).Where("order_id = ?", orderID).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCommitBatchGuardsEachOrder commits one batch mixing every action with
// orders someone else moved first: each order gets its own result, the moved
// ones nothing written, the others all their rows.
func TestCommitBatchGuardsEachOrder(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		ord := seedRead(t, db, "B", 6)
		// A callback pays B-001; B-002's schedule moved (a stale read).
		db.Move(t, db.Store, ord[1].ID, recon.StatusPaid)
		db.Touch(t, db.Store, ord[2].ID)
		resched := recon.Failed(ord[3], "timeout", recon.Policy{}, now)
		hold := recon.Decide(ord[4], recon.LookupResult{Status: recon.ChannelPaid, Amount: ord[4].Amount + 1, Currency: ord[4].Currency},
			recon.Policy{}, now, false)
		outs := []recon.Outcome{paid(ord[5]), paid(ord[1]), paid(ord[2]), resched, hold, paid(ord[0])}
		reps, err := db.Store.CommitBatch(ctx, outs, repo.CommitMeta{Source: "test", Now: now, RunID: 7})
		if err != nil {
			t.Fatal(err)
		}
		want := []repo.CommitResult{repo.Applied, repo.Lost, repo.Stale, repo.Applied, repo.Applied, repo.Applied}
		for i, r := range reps {
			if r.Result != want[i] {
				t.Fatalf("report %d (%s) = %+v, want %s", i, outs[i].Order.OrderNo, r, want[i])
			}
		}
		if reps[1].Current.Status != recon.StatusPaid || reps[2].Current.Status != recon.StatusPending ||
			(reps[2].Current.Version == ord[2].Version && reps[2].Current.StoredStatus == ord[2].StoredStatus) || !reps[4].NewMismatch {
			t.Fatalf("reports = %+v", reps)
		}
		for _, o := range []recon.Order{ord[0], ord[5]} {
			got, _ := db.Store.GetOrder(ctx, o.ID)
			if got.Status != recon.StatusPaid || got.Version != 1 || got.ChannelTxnID != "T-"+o.OrderNo ||
				countRows(t, db.Store, "merchant_notifications", o.ID) != 1 || countRows(t, db.Store, "order_transitions", o.ID) != 1 {
				t.Fatalf("%s after batch = %+v", o.OrderNo, got)
			}
		}
		for _, o := range []recon.Order{ord[1], ord[2]} {
			if countRows(t, db.Store, "merchant_notifications", o.ID) != 0 || countRows(t, db.Store, "order_transitions", o.ID) != 0 {
				t.Fatalf("%s: rows written for a moved order", o.OrderNo)
			}
		}
		if got, _ := db.Store.GetOrder(ctx, ord[3].ID); got.QueryAttempts != 1 || got.LastQueryError != "timeout" || got.NextQueryAt == nil {
			t.Fatalf("rescheduled order = %+v", got)
		}
		if got, _ := db.Store.GetOrder(ctx, ord[4].ID); got.Status != recon.StatusPending || got.NextQueryAt != nil ||
			countRows(t, db.Store, "recon_mismatches", ord[4].ID) != 1 {
			t.Fatalf("held order = %+v", got)
		}
		trs, _ := db.Store.Transitions(ctx, ord[0].ID)
		if len(trs) != 1 || trs[0].RunID != 7 || trs[0].Source != "test" || trs[0].ToVersion != 1 {
			t.Fatalf("audit = %+v", trs)
		}
	})
}

// TestCommitBatchIsAllOrNothing makes the last write of a batch fail: no
// order of the batch is changed, and no outbox or audit row is left.
func TestCommitBatchIsAllOrNothing(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		ord := seedRead(t, db, "A", 4)
		// An audit row already claims ord[3]'s next version: its audit insert
		// violates the unique key, after every update of the batch ran.
		if err := db.Store.DB().Exec(`INSERT INTO order_transitions (order_id, from_status, to_status, from_version, to_version, source, created_at)
			VALUES (?, 'PENDING', 'PAID', 0, 1, 'planted', ?)`, ord[3].ID, now).Error; err != nil {
			t.Fatal(err)
		}
		var outs []recon.Outcome
		for _, o := range ord {
			outs = append(outs, paid(o))
		}
		if _, err := db.Store.CommitBatch(ctx, outs, repo.CommitMeta{Source: "test", Now: now}); err == nil {
			t.Fatal("batch with a failing write committed")
		}
		for _, o := range ord {
			got, _ := db.Store.GetOrder(ctx, o.ID)
			if got.Status != recon.StatusPending || got.Version != 0 || got.QueryAttempts != 0 ||
				countRows(t, db.Store, "merchant_notifications", o.ID) != 0 {
				t.Fatalf("%s half written: %+v", o.OrderNo, got)
			}
		}
		if _, err := db.Store.CommitBatch(ctx, []recon.Outcome{{Action: recon.ActionNone, Order: ord[0]}}, repo.CommitMeta{Now: now}); err == nil {
			t.Fatal("an outcome with nothing to commit was accepted")
		}
	})
}

// TestConcurrentBatchesMoveEachOrderOnce commits the same orders from two
// connections at once, in opposite orders: every order is applied by exactly
// one of them and reported lost by the other.
func TestConcurrentBatchesMoveEachOrderOnce(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		ord := seedRead(t, db, "C", 60)
		var wg sync.WaitGroup
		reports := make([][]repo.CommitReport, 2)
		for w := 0; w < 2; w++ {
			store := db.Open(t)
			outs := make([]recon.Outcome, len(ord))
			for i, o := range ord {
				if w == 1 {
					o = ord[len(ord)-1-i]
				}
				outs[i] = paid(o)
			}
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for start := 0; start < len(outs); start += 15 {
					reps, err := store.CommitBatch(ctx, outs[start:start+15], repo.CommitMeta{Source: "test", Now: now})
					if err != nil {
						t.Errorf("committer %d: %v", w, err)
						return
					}
					reports[w] = append(reports[w], reps...)
				}
			}(w)
		}
		wg.Wait()
		applied := 0
		for _, reps := range reports {
			for _, r := range reps {
				switch r.Result {
				case repo.Applied:
					applied++
				case repo.Lost:
				default:
					t.Fatalf("unexpected report %+v", r)
				}
			}
		}
		if applied != len(ord) {
			t.Fatalf("%d applied, want %d", applied, len(ord))
		}
		for _, o := range ord {
			got, _ := db.Store.GetOrder(ctx, o.ID)
			if got.Version != 1 || countRows(t, db.Store, "merchant_notifications", o.ID) != 1 ||
				countRows(t, db.Store, "order_transitions", o.ID) != 1 {
				t.Fatalf("%s moved more than once: %+v", o.OrderNo, got)
			}
		}
	})
}

// TestCommitBatchRerunsTheWholeBatch makes the first attempt of a batch fail
// with a lock wait timeout (MySQL 1205) after it updated two of its three
// orders: the database rolls the attempt back, CommitBatch runs the whole
// batch again, and every order is written exactly once.
func TestCommitBatchRerunsTheWholeBatch(t *testing.T) {
	db := repotest.NewMySQL(t)
	ctx := context.Background()
	ord := seedRead(t, db, "D", 3)
	// A committer whose lock waits give up after a second.
	mc, err := mysqldrv.ParseDSN(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	mc.Params = map[string]string{"innodb_lock_wait_timeout": "1"}
	impatient := repotest.DB{Dialect: db.Dialect, DSN: mc.FormatDSN()}.Open(t)
	blocker := db.Open(t).DB().Begin()
	defer blocker.Rollback()
	if err := blocker.Exec("SELECT id FROM payment_orders WHERE id = ? FOR UPDATE", ord[2].ID).Error; err != nil {
		t.Fatal(err)
	}
	// The store tells of each attempt the database aborted and that it
	// runs again (ObserveConflicts): hold the row until the first attempt
	// has timed out waiting for it and been rolled back, then release it
	// for the rerun.
	rerun := make(chan string, 16)
	impatient.ObserveConflicts(func(op string) { rerun <- op })
	done := make(chan error, 1)
	var reps []repo.CommitReport
	go func() {
		var err error
		reps, err = impatient.CommitBatch(ctx, []recon.Outcome{paid(ord[0]), paid(ord[1]), paid(ord[2])}, repo.CommitMeta{Source: "test", Now: now})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("batch ended (%v) without its first attempt timing out on the locked row", err)
	case op := <-rerun:
		if op != "commit" {
			t.Fatalf("conflict reported for %q, want commit", op)
		}
	}
	blocker.Rollback()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, o := range ord {
		got, _ := db.Store.GetOrder(ctx, o.ID)
		if reps[i].Result != repo.Applied || got.Version != 1 || got.QueryAttempts != 1 ||
			countRows(t, db.Store, "merchant_notifications", o.ID) != 1 || countRows(t, db.Store, "order_transitions", o.ID) != 1 {
			t.Fatalf("%s after the rerun: %+v (%+v)", o.OrderNo, got, reps[i])
		}
	}
}

// A pass that looked an order up before another pass held it for a mismatch
// finds its reschedule stale: the hold stays.
func TestStaleRescheduleNeverUndoesAHold(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		o := seedRead(t, db, "hold", 1)[0]
		policy := recon.Policy{Schedule: []time.Duration{time.Minute}}
		hold := recon.Decide(o, recon.LookupResult{Status: recon.ChannelPaid, Amount: o.Amount + 1, Currency: o.Currency, TxnID: "T"},
			policy, now, false)
		later := recon.Decide(o, recon.LookupResult{Status: recon.ChannelPending}, policy, now, false)
		if hold.Action != recon.ActionHold || later.Action != recon.ActionReschedule {
			t.Fatalf("decisions %s, %s", hold.Action, later.Action)
		}
		meta := repo.CommitMeta{Source: "test", Now: now}
		if reps, err := db.Store.CommitBatch(ctx, []recon.Outcome{hold}, meta); err != nil || reps[0].Result != repo.Applied {
			t.Fatalf("hold: %+v, %v", reps, err)
		}
		reps, err := db.Store.CommitBatch(ctx, []recon.Outcome{later}, meta)
		if err != nil || reps[0].Result != repo.Stale {
			t.Fatalf("stale reschedule: %+v, %v", reps, err)
		}
		got, _ := db.Store.GetOrder(ctx, o.ID)
		if got.NextQueryAt != nil || got.QueryAttempts != 1 {
			t.Fatalf("the hold was undone: %+v", got)
		}
	})
}

// TestGuardComparesTheFactsRead changes an order's amount or currency (the
// payment service's own writes) between recon's read and its write: on every
// table, the mapped ones without a version column too, the guarded update
// (Commit, CommitBatch, ResolveWithChange) writes nothing and reports the
// order stale as it is now, so it is decided again on its own facts; an
// order whose facts are unchanged (a lower-case currency read upper-cased, a
// decimal amount with cents) is settled.
func TestGuardComparesTheFactsRead(t *testing.T) {
	schemas := append(append([]repotest.Schema(nil), repotest.Schemas...), repotest.SchemaC)
	repotest.ForSchemas(t, schemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s, meta := db.Store, repo.CommitMeta{Source: "test", Now: now}
		hasCurrency := db.Schema.Mapping == nil || db.Schema.Mapping.Columns.Currency != ""
		cents := repotest.Order("F-cents", now)
		cents.Amount = 1234
		db.Seed(t, &cents)
		ord := append(seedRead(t, db, "F", 4), mustGet(t, s, cents.ID))
		amount, currency, same, resolved, withCents := ord[0], ord[1], ord[2], ord[3], ord[4]
		mismatch := recon.Mismatch{Kind: recon.MismatchStuckPending, LocalStatus: recon.StatusPending,
			ChannelStatus: recon.ChannelPending, LocalAmount: resolved.Amount, LocalCurrency: resolved.Currency, Detail: "still PENDING"}
		if _, err := s.RecordMismatch(ctx, resolved, mismatch, meta); err != nil {
			t.Fatal(err)
		}
		ms, err := s.ListMismatches(ctx, repo.MismatchFilter{OrderID: resolved.ID})
		if err != nil || len(ms) != 1 {
			t.Fatalf("mismatch of %s: %v %v", resolved.OrderNo, ms, err)
		}

		db.Reprice(t, s, amount.ID, 1500, "")
		db.Reprice(t, s, currency.ID, currency.Amount, "USD")
		db.Reprice(t, s, resolved.ID, 999, "")

		rep, err := s.Commit(ctx, paid(amount), meta)
		if err != nil || rep.Result != repo.Stale || rep.Current.Amount != 1500 || rep.Current.Status != recon.StatusPending {
			t.Fatalf("commit after the amount changed = %+v, %v; want stale with amount 1500", rep, err)
		}
		again := recon.Decide(rep.Current, *paid(amount).Lookup, recon.Policy{}, now, false)
		if again.Action != recon.ActionHold || again.Mismatch.Kind != recon.MismatchAmount {
			t.Fatalf("decided again on the order as it is: %+v; want an amount mismatch held", again)
		}

		reps, err := s.CommitBatch(ctx, []recon.Outcome{paid(same), paid(currency), paid(withCents)}, meta)
		if err != nil {
			t.Fatal(err)
		}
		wantCurrency := repo.Applied
		if hasCurrency {
			wantCurrency = repo.Stale
		}
		if reps[0].Result != repo.Applied || reps[1].Result != wantCurrency || reps[2].Result != repo.Applied {
			t.Fatalf("batch = %+v; want applied, %s, applied", reps, wantCurrency)
		}
		if hasCurrency && reps[1].Current.Currency != "USD" {
			t.Fatalf("re-read after the currency changed = %+v", reps[1].Current)
		}

		out, err := recon.CloseLocally(resolved)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ResolveWithChange(ctx, ms[0].ID, out, "ann", "abandoned", meta); !errors.Is(err, recon.ErrConflict) {
			t.Fatalf("resolving with a change after the amount changed: %v; want ErrConflict", err)
		}

		moved := []recon.Order{same, withCents}
		if !hasCurrency {
			moved = append(moved, currency)
		}
		for _, o := range []recon.Order{amount, currency, resolved, same, withCents} {
			got := mustGet(t, s, o.ID)
			wantStatus, wantRows := recon.StatusPending, int64(0)
			if slices.ContainsFunc(moved, func(m recon.Order) bool { return m.ID == o.ID }) {
				wantStatus, wantRows = recon.StatusPaid, 1
			}
			if got.Status != wantStatus || countRows(t, s, "merchant_notifications", o.ID) != wantRows ||
				countRows(t, s, "order_transitions", o.ID) != wantRows {
				t.Errorf("%s: status %s, notifications %d, audit rows %d; want %s and %d",
					o.OrderNo, got.Status, countRows(t, s, "merchant_notifications", o.ID),
					countRows(t, s, "order_transitions", o.ID), wantStatus, wantRows)
			}
		}
	})
}

func mustGet(t *testing.T, s *repo.Store, id int64) recon.Order {
	t.Helper()
	o, err := s.GetOrder(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
