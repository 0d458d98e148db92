package jobs_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// aliRefundNotification is Alipay's asynchronous notification of a refund
// of order orderNo (out_biz_no refundNo, or none when ""), signed with key:
// refund_fee is the trade's refunded total, not the refund's amount.
func aliRefundNotification(t *testing.T, key simulator.Keys, eventID, orderNo, refundNo, refundFee string) []byte {
	t.Helper()
	v := url.Values{
		"notify_time": {"2024-03-02 10:00:09"}, "notify_type": {"trade_status_sync"}, "notify_id": {eventID},
		"app_id": {simulator.TestAlipayAppID}, "charset": {"utf-8"}, "version": {"1.0"},
		"trade_no": {"2024030122001400000000000042"}, "out_trade_no": {orderNo}, "trade_status": {"TRADE_SUCCESS"},
		"total_amount": {"10.00"}, "refund_fee": {refundFee}, "gmt_refund": {"2024-03-02 10:00:05.123"},
	}
	if refundNo != "" {
		v.Set("out_biz_no", refundNo)
	}
	if err := alipay.SignNotification(key.AlipayKey, v); err != nil {
		t.Fatal(err)
	}
	return []byte(v.Encode())
}

// movingLookup is a channel's refund lookup during which another writer
// moves the refund (move).
type movingLookup struct {
	channel.RefundLookup
	move func(recon.Refund)
}

func (m movingLookup) LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	m.move(r)
	return m.RefundLookup.LookupRefund(ctx, r)
}

// An Alipay refund notification settles nothing by itself: it makes recon
// look the refund up, and only the lookup's answer settles it, once.
func TestCallbacksAlipayRefundClaim(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		k, err := simulator.TestKeys()
		if err != nil {
			t.Fatal(err)
		}
		// The channel: the simulator's Alipay gateway answering signed
		// alipay.trade.fastpay.refund.query about the refunds it is told.
		sim := simulator.New(simulator.Config{Seed: 1})
		chOrders := simulator.NewOrders()
		srv := httptest.NewServer(sim.Server(chOrders, k))
		t.Cleanup(srv.Close)
		ali, err := alipay.New(alipay.Config{Name: "ali", BaseURL: srv.URL + simulator.AlipayGatewayPath, AppID: simulator.TestAlipayAppID,
			PrivateKey: k.AlipayAppKey, AlipayPublicKey: &k.AlipayKey.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Minute)
		cb := &jobs.Callbacks{Store: db.Store, Notifiers: map[string]channel.Notifier{"ali": ali},
			RefundLookups: map[string]channel.RefundLookup{"ali": ali}, Policy: policy, Clock: recon.NewFakeClock(now)}
		handle := func(body []byte) jobs.CallbackResult {
			t.Helper()
			res, _ := cb.Handle(ctx, "ali", body, http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}})
			return res
		}
		status := func(r recon.Refund) recon.Refund {
			t.Helper()
			got, err := db.Store.GetRefund(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		count := func(q string, args ...any) int64 {
			t.Helper()
			var n int64
			if err := db.Store.DB().Raw(q, args...).Row().Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		seedOrder := func(no string) recon.Order {
			t.Helper()
			o := repotest.Order(no, t0)
			o.Channel = "ali"
			db.Seed(t, &o)
			db.Move(t, db.Store, o.ID, recon.StatusPaid)
			got, err := db.Store.GetOrderByNo(ctx, no)
			if err != nil {
				t.Fatal(err)
			}
			chOrders.Add(recon.Order{OrderNo: no, Amount: o.Amount, Currency: "CNY", Status: recon.StatusPaid, CreatedAt: t0})
			return got
		}
		refund := func(no string, o recon.Order, at simulator.RefundBehaviour) recon.Refund {
			t.Helper()
			r := repotest.Refund(no, o, t0)
			repotest.SeedRefunds(t, db.Store, &r)
			chOrders.AddRefund(recon.Refund{RefundNo: no, OrderNo: o.OrderNo, Amount: r.Amount, Currency: "CNY", Status: recon.RefundPending, CreatedAt: t0})
			sim.SetRefund(no, at)
			return r
		}
		succeeded := simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded}
		processing := simulator.RefundBehaviour{Status: recon.RefundChannelPending}

		o := seedOrder("AR-ORDER")
		done := refund("AR-RF-1", o, succeeded)
		wait := refund("AR-RF-2", o, processing)
		down := refund("AR-RF-3", o, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, PermanentError: true})

		// The refund the lookup confirms: settled, with its outbox and
		// audit rows (source callback); refund_fee (the trade's total,
		// 9.00 here) is not the refund's 3.00 and is not what settles it.
		body := aliRefundNotification(t, k, "AR-N1", o.OrderNo, done.RefundNo, "9.00")
		if res := handle(body); !res.Handled || res.Outcome != "settled" {
			t.Fatalf("confirmed refund: %+v", res)
		}
		if r := status(done); r.Status != recon.RefundSucceeded {
			t.Fatalf("refund %s, want SUCCEEDED", r.Status)
		}
		// A duplicate takes no effect (and asks the channel nothing).
		sim.SetRefund(done.RefundNo, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, PermanentError: true})
		if res := handle(body); !res.Handled || res.Outcome != jobs.CallbackDuplicate {
			t.Fatalf("duplicate: %+v", res)
		}
		if n := count("SELECT COUNT(*) FROM merchant_notifications WHERE refund_id = ?", done.ID); n != 1 {
			t.Fatalf("%d outbox rows for the refund, want 1", n)
		}
		if n := count("SELECT COUNT(*) FROM refund_transitions WHERE refund_id = ? AND source = ?", done.ID, jobs.SourceCallback); n != 1 {
			t.Fatalf("%d callback transitions of the refund, want 1", n)
		}
		if n := count("SELECT COUNT(*) FROM recon_callbacks WHERE channel = 'ali' AND event_id = 'AR-N1' AND refund_no = ? AND duplicates = 1", done.RefundNo); n != 1 {
			t.Fatal("the notification is not recorded once with its duplicate")
		}

		// The lookup says the refund is not done: nothing moves.
		if res := handle(aliRefundNotification(t, k, "AR-N2", o.OrderNo, wait.RefundNo, "12.00")); !res.Handled || res.Outcome != "unchanged" {
			t.Fatalf("refund not made yet: %+v", res)
		}
		if r := status(wait); r.Status != recon.RefundPending {
			t.Fatalf("refund %s, want PENDING", r.Status)
		}

		// A forged notification moves nothing and asks the channel
		// nothing.
		forged := []byte(strings.Replace(string(aliRefundNotification(t, k, "AR-N3", o.OrderNo, wait.RefundNo, "12.00")), "refund_fee=12.00", "refund_fee=13.00", 1))
		if res := handle(forged); res.Handled || res.Status != http.StatusUnauthorized {
			t.Fatalf("forged: %+v", res)
		}
		if r := status(wait); r.Status != recon.RefundPending {
			t.Fatalf("refund %s after a forged notification, want PENDING", r.Status)
		}

		// The lookup fails: nothing recorded, the refund due at once, and
		// Alipay told to retry; the retry once the channel answers settles
		// it.
		body = aliRefundNotification(t, k, "AR-N4", o.OrderNo, down.RefundNo, "12.00")
		res := handle(body)
		if res.Handled || res.Outcome != jobs.CallbackLookupFailed || res.Status != http.StatusServiceUnavailable {
			t.Fatalf("failed lookup: %+v", res)
		}
		r := status(down)
		if r.Status != recon.RefundPending || r.NextQueryAt == nil || r.NextQueryAt.After(now) || !strings.Contains(r.LastQueryError, "lookup failed") {
			t.Fatalf("after a failed lookup: %s, next %v, error %q; want PENDING and due now", r.Status, r.NextQueryAt, r.LastQueryError)
		}
		if n := count("SELECT COUNT(*) FROM recon_callbacks WHERE event_id = 'AR-N4'"); n != 0 {
			t.Fatalf("%d records of a notification whose lookup failed, want none", n)
		}
		sim.SetRefund(down.RefundNo, succeeded)
		if res := handle(body); !res.Handled || res.Outcome != "settled" {
			t.Fatalf("retry after the failed lookup: %+v", res)
		}
		if r := status(down); r.Status != recon.RefundSucceeded {
			t.Fatalf("refund %s, want SUCCEEDED", r.Status)
		}

		// Without out_biz_no the order's PENDING refunds are looked up, and
		// only those the lookup confirms settle.
		o2 := seedOrder("AR-ORDER-2")
		a := refund("AR-RF-4", o2, succeeded)
		b := refund("AR-RF-5", o2, processing)
		if res := handle(aliRefundNotification(t, k, "AR-N5", o2.OrderNo, "", "3.00")); !res.Handled || res.Outcome != "settled" {
			t.Fatalf("refund of the order: %+v", res)
		}
		if ra, rb := status(a), status(b); ra.Status != recon.RefundSucceeded || rb.Status != recon.RefundPending {
			t.Fatalf("refunds %s and %s, want SUCCEEDED and PENDING", ra.Status, rb.Status)
		}

		// A refund recon does not know yet: refused, so Alipay retries.
		if res := handle(aliRefundNotification(t, k, "AR-N6", o.OrderNo, "AR-RF-LATE", "12.00")); res.Handled || res.Outcome != "order_unknown" {
			t.Fatalf("unknown refund: %+v", res)
		}

		// The payment service fails one of the order's refunds while its
		// lookup is made: the commit finds it moved, and it alone is
		// decided again as it is now (the channel's success against the
		// local FAILED is a STATUS_CONFLICT for finance); the order's
		// other refund still settles.
		o3 := seedOrder("AR-ORDER-3")
		moved := refund("AR-RF-6", o3, succeeded)
		other := refund("AR-RF-7", o3, succeeded)
		cb.RefundLookups["ali"] = movingLookup{RefundLookup: ali, move: func(r recon.Refund) {
			if r.ID == moved.ID && !db.MoveRefund(t, db.Store, moved.RefundNo, recon.RefundFailed) {
				t.Error("the refund was not PENDING when its lookup was made")
			}
		}}
		if res := handle(aliRefundNotification(t, k, "AR-N7", o3.OrderNo, "", "6.00")); !res.Handled || res.Outcome != "mismatch" {
			t.Fatalf("a refund moved under the notification: %+v", res)
		}
		if rm, ro := status(moved), status(other); rm.Status != recon.RefundFailed || ro.Status != recon.RefundSucceeded {
			t.Fatalf("refunds %s and %s, want FAILED (the other writer's) and SUCCEEDED", rm.Status, ro.Status)
		}
		ms, err := db.Store.ListMismatches(ctx, repo.MismatchFilter{RefundNo: moved.RefundNo, Kind: recon.MismatchStatusConflict})
		if err != nil || len(ms) != 1 {
			t.Fatalf("STATUS_CONFLICT rows of the moved refund: %v, %v; want one", ms, err)
		}
	})
}
