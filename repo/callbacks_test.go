package repo_test

import (
	"context"
	"sync"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

var callbackMeta = repo.CommitMeta{Source: "callback", Now: now}

func callbackRecord(o recon.Order, event string, oc recon.CallbackOutcome) repo.CallbackRecord {
	return repo.CallbackRecord{Channel: "sim", EventID: event, OrderNo: o.OrderNo, OrderID: o.ID, Outcome: oc, ReceivedAt: now}
}

// callbackRow reads the outcome and duplicates of one recorded event.
func callbackRow(t *testing.T, s *repo.Store, event string) (string, int, bool) {
	t.Helper()
	var rows []struct {
		Outcome    string
		Duplicates int
	}
	if err := s.DB().Table("recon_callbacks").Select("outcome, duplicates").Where("channel = ? AND event_id = ?", "sim", event).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		return "", 0, false
	}
	return rows[0].Outcome, rows[0].Duplicates, true
}

// TestCommitCallbackOnce delivers one notification ten times at once, then
// again: it settles the order once (one audit row with source callback, one
// outbox row), and every other delivery is a duplicate that is counted.
func TestCommitCallbackOnce(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		o := seedRead(t, db, "CB", 1)[0]
		out := paid(o)
		var wg sync.WaitGroup
		results := make(chan repo.CommitResult, 11)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rep, err := db.Store.CommitCallback(ctx, &out, callbackRecord(o, "EV-1", recon.CallbackSettled), callbackMeta)
				if err != nil {
					t.Error(err)
				}
				results <- rep.Result
			}()
		}
		wg.Wait()
		rep, err := db.Store.CommitCallback(ctx, &out, callbackRecord(o, "EV-1", recon.CallbackSettled), callbackMeta)
		if err != nil {
			t.Fatal(err)
		}
		results <- rep.Result
		close(results)
		count := map[repo.CommitResult]int{}
		for r := range results {
			count[r]++
		}
		if count[repo.Applied] != 1 || count[repo.Duplicate] != 10 {
			t.Fatalf("results %v, want one applied and ten duplicates", count)
		}
		got, err := db.Store.GetOrder(ctx, o.ID)
		if err != nil || got.Status != recon.StatusPaid {
			t.Fatalf("order %+v, %v; want PAID", got, err)
		}
		if n := countRows(t, db.Store, "order_transitions", o.ID); n != 1 {
			t.Fatalf("%d audit rows, want 1", n)
		}
		if n := countRows(t, db.Store, "merchant_notifications", o.ID); n != 1 {
			t.Fatalf("%d outbox rows, want 1", n)
		}
		var source string
		if err := db.Store.DB().Table("order_transitions").Select("source").Where("order_id = ?", o.ID).Scan(&source).Error; err != nil || source != "callback" {
			t.Fatalf("audit source %q, %v", source, err)
		}
		if oc, dups, ok := callbackRow(t, db.Store, "EV-1"); !ok || oc != string(recon.CallbackSettled) || dups != 10 {
			t.Fatalf("recorded %q with %d duplicates (%v), want SETTLED with 10", oc, dups, ok)
		}
	})
}

// TestCommitCallbackUnknownOrderRetried records a notification for an order
// not visible yet; its retry (same event) is taken as new.
func TestCommitCallbackUnknownOrderRetried(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		unknown := repo.CallbackRecord{Channel: "sim", EventID: "EV-2", OrderNo: "LATE-1", Outcome: recon.CallbackOrderUnknown, ReceivedAt: now}
		for range 2 {
			rep, err := db.Store.CommitCallback(ctx, nil, unknown, callbackMeta)
			if err != nil || rep.Result != repo.Recorded {
				t.Fatalf("unknown order: %+v, %v; want recorded (refused again, not a duplicate)", rep, err)
			}
		}
		if oc, _, ok := callbackRow(t, db.Store, "EV-2"); !ok || oc != string(recon.CallbackOrderUnknown) {
			t.Fatalf("recorded %q (%v), want ORDER_UNKNOWN", oc, ok)
		}
		o := repotest.Order("LATE-1", now)
		db.Seed(t, &o)
		read, err := db.Store.GetOrderByNo(ctx, "LATE-1")
		if err != nil {
			t.Fatal(err)
		}
		out := paid(read)
		rep, err := db.Store.CommitCallback(ctx, &out, callbackRecord(read, "EV-2", recon.CallbackSettled), callbackMeta)
		if err != nil || rep.Result != repo.Applied {
			t.Fatalf("retry once the order exists: %+v, %v; want applied", rep, err)
		}
		if oc, _, _ := callbackRow(t, db.Store, "EV-2"); oc != string(recon.CallbackSettled) {
			t.Fatalf("recorded %q, want SETTLED", oc)
		}
	})
}

// TestCommitCallbackLost: an order another writer moved after the
// notification read it is not overwritten, and nothing of the notification
// is kept, so it can be decided again on the order as it is.
func TestCommitCallbackLost(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		o := seedRead(t, db, "LOST", 1)[0]
		db.Move(t, db.Store, o.ID, recon.StatusClosed)
		out := paid(o)
		rep, err := db.Store.CommitCallback(ctx, &out, callbackRecord(o, "EV-3", recon.CallbackSettled), callbackMeta)
		if err != nil || rep.Result != repo.Lost || rep.Current.Status != recon.StatusClosed {
			t.Fatalf("got %+v, %v; want lost to CLOSED", rep, err)
		}
		if _, _, ok := callbackRow(t, db.Store, "EV-3"); ok {
			t.Fatal("the notification was recorded although its commit was undone")
		}
		if n := countRows(t, db.Store, "merchant_notifications", o.ID); n != 0 {
			t.Fatalf("%d outbox rows, want none", n)
		}
	})
}

// TestCommitRefundCallbackOnce: one refund notification delivered five
// times at once settles the refund once; the others are duplicates.
func TestCommitRefundCallbackOnce(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		o := seedRead(t, db, "RCB", 1)[0]
		db.Move(t, db.Store, o.ID, recon.StatusPaid)
		r := repotest.Refund("RCB-R1", o, now)
		repotest.SeedRefunds(t, db.Store, &r)
		read, err := db.Store.GetRefund(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		out := recon.DecideRefund(read, recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: r.Amount, Currency: r.Currency, ChannelRefundID: "RT"},
			recon.Policy{}, now)
		rec := repo.CallbackRecord{Channel: "sim", EventID: "EV-R1", RefundNo: r.RefundNo, Outcome: recon.CallbackSettled, ReceivedAt: now}
		var wg sync.WaitGroup
		results := make(chan repo.CommitResult, 5)
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rep, err := db.Store.CommitRefundCallback(ctx, &out, rec, callbackMeta)
				if err != nil {
					t.Error(err)
				}
				results <- rep.Result
			}()
		}
		wg.Wait()
		close(results)
		count := map[repo.CommitResult]int{}
		for res := range results {
			count[res]++
		}
		if count[repo.Applied] != 1 || count[repo.Duplicate] != 4 {
			t.Fatalf("results %v, want one applied and four duplicates", count)
		}
		if got, _ := db.Store.GetRefund(ctx, r.ID); got.Status != recon.RefundSucceeded {
			t.Fatalf("refund %s, want SUCCEEDED", got.Status)
		}
	})
}
