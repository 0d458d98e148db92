package jobs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo/repotest"
)

// simNotification is a notification of the simulator channel about o with
// status and amount, signed with secret.
func simNotification(o recon.Order, status string, amount int64, secret string) ([]byte, http.Header) {
	body, _ := json.Marshal(httpjson.Data{Order: o.OrderNo, Status: status, Amount: &amount, Currency: o.Currency,
		TxnID: "T-" + o.OrderNo, PaidAt: t0.Format(time.RFC3339)})
	return body, http.Header{httpjson.SignatureHeader: {httpjson.Sign(secret, body)}}
}

func newCallbacks(db repotest.DB) *jobs.Callbacks {
	return &jobs.Callbacks{Store: db.Store, Notifiers: map[string]channel.Notifier{"sim": simulator.New(simulator.Config{})},
		Policy: policy, Clock: recon.NewFakeClock(t0.Add(time.Minute))}
}

func seedOne(t *testing.T, db repotest.DB, no string) recon.Order {
	t.Helper()
	o := repotest.Order(no, t0)
	o.Channel = "sim"
	db.Seed(t, &o)
	got, err := db.Store.GetOrderByNo(context.Background(), no)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCallbacksHandle(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		cb := newCallbacks(db)
		handle := func(body []byte, h http.Header) jobs.CallbackResult {
			t.Helper()
			res, _ := cb.Handle(ctx, "sim", body, h)
			return res
		}
		// Paid: settled once; its second delivery is a duplicate, handled.
		paid := seedOne(t, db, "CB-PAID")
		body, h := simNotification(paid, "PAID", paid.Amount, simulator.DefaultSecret)
		if res := handle(body, h); !res.Handled || res.Outcome != "settled" {
			t.Fatalf("paid: %+v", res)
		}
		if res := handle(body, h); !res.Handled || res.Outcome != jobs.CallbackDuplicate {
			t.Fatalf("paid again: %+v", res)
		}
		if o, _ := db.Store.GetOrder(ctx, paid.ID); o.Status != recon.StatusPaid {
			t.Fatalf("order %s, want PAID", o.Status)
		}
		// Another amount: a mismatch, answered as handled; nothing moves.
		off := seedOne(t, db, "CB-OFF")
		body, h = simNotification(off, "PAID", off.Amount+1, simulator.DefaultSecret)
		if res := handle(body, h); !res.Handled || res.Outcome != "mismatch" {
			t.Fatalf("amount mismatch: %+v", res)
		}
		if o, _ := db.Store.GetOrder(ctx, off.ID); o.Status != recon.StatusPending {
			t.Fatalf("order %s, want PENDING", o.Status)
		}
		// A terminal order never moves: a PAID notification for a CLOSED
		// order is a mismatch.
		closed := seedOne(t, db, "CB-CLOSED")
		db.Move(t, db.Store, closed.ID, recon.StatusClosed)
		body, h = simNotification(closed, "PAID", closed.Amount, simulator.DefaultSecret)
		if res := handle(body, h); !res.Handled || res.Outcome != "mismatch" {
			t.Fatalf("paid after closed: %+v", res)
		}
		if o, _ := db.Store.GetOrder(ctx, closed.ID); o.Status != recon.StatusClosed {
			t.Fatalf("order %s, want CLOSED", o.Status)
		}
		// Not final yet: handled, nothing changes.
		wait := seedOne(t, db, "CB-WAIT")
		body, h = simNotification(wait, "PENDING", wait.Amount, simulator.DefaultSecret)
		if res := handle(body, h); !res.Handled || res.Outcome != "unchanged" {
			t.Fatalf("pending: %+v", res)
		}
		// A forged notification is refused before anything is read.
		body, h = simNotification(wait, "PAID", wait.Amount, "forged")
		if res := handle(body, h); res.Handled || res.Status != http.StatusUnauthorized {
			t.Fatalf("forged: %+v", res)
		}
		if o, _ := db.Store.GetOrder(ctx, wait.ID); o.Status != recon.StatusPending {
			t.Fatalf("order %s after a forged notification, want PENDING", o.Status)
		}
		// An order not visible yet: refused (the channel retries); the
		// retry once the order exists settles it.
		late := repotest.Order("CB-LATE", t0)
		late.Channel = "sim"
		body, h = simNotification(late, "PAID", late.Amount, simulator.DefaultSecret)
		if res := handle(body, h); res.Handled || res.Outcome != "order_unknown" || res.Status != http.StatusServiceUnavailable {
			t.Fatalf("unknown order: %+v", res)
		}
		seedOne(t, db, "CB-LATE")
		if res := handle(body, h); !res.Handled || res.Outcome != "settled" {
			t.Fatalf("retry once the order exists: %+v", res)
		}
		// A channel that receives no notifications.
		if res, _ := cb.Handle(ctx, "other", body, h); res.Handled || res.Status != http.StatusNotFound {
			t.Fatalf("unknown channel: %+v", res)
		}
	})
}

// simRefundNotification is a refund notification of the simulator channel.
func simRefundNotification(r recon.Refund, status string, amount int64) ([]byte, http.Header) {
	body, _ := json.Marshal(httpjson.RefundData{Refund: r.RefundNo, Order: r.OrderNo, Status: status, Amount: &amount,
		Currency: r.Currency, RefundTxnID: "RT-" + r.RefundNo, SucceededAt: t0.Format(time.RFC3339)})
	return body, http.Header{httpjson.SignatureHeader: {httpjson.Sign(simulator.DefaultSecret, body)}}
}

func TestCallbacksHandleRefunds(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		cb := newCallbacks(db)
		handle := func(body []byte, h http.Header) jobs.CallbackResult {
			t.Helper()
			res, _ := cb.Handle(ctx, "sim", body, h)
			return res
		}
		o := seedOne(t, db, "CB-RF-ORDER")
		db.Move(t, db.Store, o.ID, recon.StatusPaid)
		ok := repotest.Refund("CB-RF-1", o, t0)
		off := repotest.Refund("CB-RF-2", o, t0)
		gone := repotest.Refund("CB-RF-3", o, t0)
		gone.Status = recon.RefundFailed
		repotest.SeedRefunds(t, db.Store, &ok, &off, &gone)
		// Succeeded: settled once, the duplicate handled.
		body, h := simRefundNotification(ok, "SUCCEEDED", ok.Amount)
		if res := handle(body, h); !res.Handled || res.Outcome != "settled" {
			t.Fatalf("refund succeeded: %+v", res)
		}
		if res := handle(body, h); !res.Handled || res.Outcome != jobs.CallbackDuplicate {
			t.Fatalf("again: %+v", res)
		}
		if r, _ := db.Store.GetRefund(ctx, ok.ID); r.Status != recon.RefundSucceeded {
			t.Fatalf("refund %s, want SUCCEEDED", r.Status)
		}
		// Another amount: a mismatch, handled, nothing moves.
		body, h = simRefundNotification(off, "SUCCEEDED", off.Amount+1)
		if res := handle(body, h); !res.Handled || res.Outcome != "mismatch" {
			t.Fatalf("refund amount: %+v", res)
		}
		if r, _ := db.Store.GetRefund(ctx, off.ID); r.Status != recon.RefundPending {
			t.Fatalf("refund %s, want PENDING", r.Status)
		}
		// A terminal refund never moves: succeeded at the channel, FAILED
		// locally is the money-losing mismatch.
		body, h = simRefundNotification(gone, "SUCCEEDED", gone.Amount)
		if res := handle(body, h); !res.Handled || res.Outcome != "mismatch" {
			t.Fatalf("refund after failed: %+v", res)
		}
		if r, _ := db.Store.GetRefund(ctx, gone.ID); r.Status != recon.RefundFailed {
			t.Fatalf("refund %s, want FAILED", r.Status)
		}
		// A refund not visible yet: refused, then handled once it exists.
		late := repotest.Refund("CB-RF-LATE", o, t0)
		body, h = simRefundNotification(late, "SUCCEEDED", late.Amount)
		if res := handle(body, h); res.Handled || res.Outcome != "order_unknown" {
			t.Fatalf("unknown refund: %+v", res)
		}
		repotest.SeedRefunds(t, db.Store, &late)
		if res := handle(body, h); !res.Handled || res.Outcome != "settled" {
			t.Fatalf("retry once the refund exists: %+v", res)
		}
	})
}
