package recon_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
)

func pendingRefund() recon.Refund {
	return recon.Refund{ID: 9, RefundNo: "R1", OrderID: 7, OrderNo: "A1", Amount: 300, Currency: "CNY",
		Status: recon.RefundPending, CreatedAt: now.Add(-time.Hour)}
}

func TestDecideRefundTable(t *testing.T) {
	old := pendingRefund()
	old.CreatedAt = now.Add(-25 * time.Hour)
	ok := recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: 300, Currency: "CNY", ChannelRefundID: "RF1"}
	with := func(l recon.RefundLookup, f func(*recon.RefundLookup)) recon.RefundLookup { f(&l); return l }
	cases := []struct {
		name   string
		r      recon.Refund
		l      recon.RefundLookup
		action recon.Action
		to     recon.RefundStatus
		kind   recon.MismatchKind
		next   bool // a next query time is set
	}{
		{"succeeded equal", pendingRefund(), ok, recon.ActionTransition, recon.RefundSucceeded, "", false},
		{"succeeded other amount", pendingRefund(), with(ok, func(l *recon.RefundLookup) { l.Amount = 301 }), recon.ActionHold, "", recon.MismatchRefundAmount, false},
		{"succeeded other currency", pendingRefund(), with(ok, func(l *recon.RefundLookup) { l.Currency = "USD" }), recon.ActionHold, "", recon.MismatchRefundAmount, false},
		{"succeeded without currency", pendingRefund(), with(ok, func(l *recon.RefundLookup) { l.Currency = "" }), recon.ActionHold, "", recon.MismatchRefundAmount, false},
		{"failed", pendingRefund(), recon.RefundLookup{Status: recon.RefundChannelFailed}, recon.ActionTransition, recon.RefundFailed, "", false},
		{"pending", pendingRefund(), recon.RefundLookup{Status: recon.RefundChannelPending}, recon.ActionReschedule, "", "", true},
		{"not found", pendingRefund(), recon.RefundLookup{Status: recon.RefundChannelNotFound}, recon.ActionReschedule, "", "", true},
		{"abnormal is reported and kept queried", pendingRefund(), recon.RefundLookup{Status: recon.RefundChannelAbnormal}, recon.ActionReschedule, "", recon.MismatchRefundAbnormal, true},
		{"old and pending", old, recon.RefundLookup{Status: recon.RefundChannelPending}, recon.ActionHold, "", recon.MismatchRefundStuck, false},
		{"old and not found", old, recon.RefundLookup{Status: recon.RefundChannelNotFound}, recon.ActionHold, "", recon.MismatchRefundStuck, false},
		{"old and abnormal", old, recon.RefundLookup{Status: recon.RefundChannelAbnormal}, recon.ActionHold, "", recon.MismatchRefundStuck, false},
		{"old but succeeded", old, ok, recon.ActionTransition, recon.RefundSucceeded, "", false},
		{"old but failed", old, recon.RefundLookup{Status: recon.RefundChannelFailed}, recon.ActionTransition, recon.RefundFailed, "", false},
		{"unknown channel status", pendingRefund(), recon.RefundLookup{Status: "WEIRD"}, recon.ActionReschedule, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := recon.DecideRefund(tc.r, tc.l, pol, now)
			if out.Action != tc.action || out.To != tc.to {
				t.Fatalf("DecideRefund = %s %s, want %s %s", out.Action, out.To, tc.action, tc.to)
			}
			if tc.kind == "" && out.Mismatch != nil {
				t.Fatalf("unexpected mismatch %+v", out.Mismatch)
			}
			if tc.kind != "" {
				if out.Mismatch == nil || out.Mismatch.Kind != tc.kind {
					t.Fatalf("mismatch = %+v, want %s", out.Mismatch, tc.kind)
				}
				if out.Mismatch.RefundNo != "R1" || out.Mismatch.LocalAmount != 300 {
					t.Fatalf("mismatch does not name the refund: %+v", out.Mismatch)
				}
			}
			if out.Action == recon.ActionTransition && out.Event != recon.RefundEventFor(tc.to) {
				t.Fatalf("event = %q", out.Event)
			}
			if tc.next != (out.NextQueryAt != nil) || (out.NextQueryAt != nil && !out.NextQueryAt.After(now)) {
				t.Fatalf("next query at = %v, want set: %v", out.NextQueryAt, tc.next)
			}
		})
	}
}

func TestDecideRefundEvents(t *testing.T) {
	if got := recon.DecideRefund(pendingRefund(), recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: 300, Currency: "CNY"}, pol, now).Event; got != recon.EventRefundSucceeded {
		t.Fatalf("success event = %q", got)
	}
	if got := recon.DecideRefund(pendingRefund(), recon.RefundLookup{Status: recon.RefundChannelFailed}, pol, now).Event; got != recon.EventRefundFailed {
		t.Fatalf("failure event = %q", got)
	}
}

func TestVerifyRefundTerminal(t *testing.T) {
	cases := []struct {
		local recon.RefundStatus
		l     recon.RefundLookup
		kind  recon.MismatchKind
	}{
		{recon.RefundSucceeded, recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: 300, Currency: "CNY"}, ""},
		{recon.RefundSucceeded, recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: 200, Currency: "CNY"}, recon.MismatchRefundAmount},
		{recon.RefundSucceeded, recon.RefundLookup{Status: recon.RefundChannelFailed}, recon.MismatchLocalRefundedChannelNot},
		{recon.RefundSucceeded, recon.RefundLookup{Status: recon.RefundChannelNotFound}, recon.MismatchLocalRefundedChannelNot},
		{recon.RefundSucceeded, recon.RefundLookup{Status: recon.RefundChannelPending}, recon.MismatchLocalRefundedChannelNot},
		{recon.RefundFailed, recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: 300, Currency: "CNY"}, recon.MismatchChannelRefundedLocalFail},
		{recon.RefundFailed, recon.RefundLookup{Status: recon.RefundChannelFailed}, ""},
		{recon.RefundFailed, recon.RefundLookup{Status: recon.RefundChannelNotFound}, ""},
	}
	for _, tc := range cases {
		r := pendingRefund()
		r.Status = tc.local
		// A terminal refund through DecideRefund is only verified.
		out := recon.DecideRefund(r, tc.l, pol, now)
		if out.To != "" || out.NextQueryAt != nil {
			t.Fatalf("%s/%s: a terminal refund was changed: %+v", tc.local, tc.l.Status, out)
		}
		switch {
		case tc.kind == "" && (out.Action != recon.ActionNone || out.Mismatch != nil):
			t.Fatalf("%s/%s: got %s %+v, want nothing", tc.local, tc.l.Status, out.Action, out.Mismatch)
		case tc.kind != "" && (out.Action != recon.ActionReport || out.Mismatch == nil || out.Mismatch.Kind != tc.kind):
			t.Fatalf("%s/%s: got %s %+v, want %s", tc.local, tc.l.Status, out.Action, out.Mismatch, tc.kind)
		}
	}
}

func TestClassifyRefundConflict(t *testing.T) {
	r := pendingRefund()
	succeeded := recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: 300, Currency: "CNY"}
	r.Status = recon.RefundFailed
	if m := recon.ClassifyRefundConflict(r, succeeded); m == nil || m.Kind != recon.MismatchStatusConflict || m.RefundNo != "R1" {
		t.Fatalf("FAILED by another writer, channel succeeded: %+v", m)
	}
	r.Status = recon.RefundSucceeded
	if m := recon.ClassifyRefundConflict(r, succeeded); m != nil {
		t.Fatalf("the winner agrees: %+v", m)
	}
	if m := recon.ClassifyRefundConflict(r, recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: 1, Currency: "CNY"}); m == nil || m.Kind != recon.MismatchRefundAmount {
		t.Fatalf("the winner's amount differs: %+v", m)
	}
	r.Status = recon.RefundPending
	if m := recon.ClassifyRefundConflict(r, succeeded); m != nil {
		t.Fatalf("still pending: %+v", m)
	}
}

func TestCheckRefundOrder(t *testing.T) {
	paid := recon.Order{ID: 7, OrderNo: "A1", Amount: 1000, Currency: "CNY", Status: recon.StatusPaid}
	r := pendingRefund()
	cases := []struct {
		name   string
		o      recon.Order
		before int64
		bad    bool
	}{
		{"fits", paid, 0, false},
		{"fits exactly", paid, 700, false},
		{"over-refund", paid, 701, true},
		{"order not paid", func() recon.Order { o := paid; o.Status = recon.StatusClosed; return o }(), 0, true},
		{"order pending", func() recon.Order { o := paid; o.Status = recon.StatusPending; return o }(), 0, true},
		{"other currency", func() recon.Order { o := paid; o.Currency = "USD"; return o }(), 0, true},
	}
	for _, tc := range cases {
		m := recon.CheckRefundOrder(tc.o, tc.before, r)
		if (m != nil) != tc.bad {
			t.Fatalf("%s: got %+v", tc.name, m)
		}
		if m != nil && (m.Kind != recon.MismatchRefund || m.RefundNo != "R1") {
			t.Fatalf("%s: %+v", tc.name, m)
		}
	}
}

func TestRefundNotificationPayload(t *testing.T) {
	r := pendingRefund()
	r.MerchantID, r.Channel = "m1", "sim"
	at := now.Add(-time.Minute)
	n := recon.NewRefundNotification(r, recon.RefundSucceeded, "RF1", &at, now)
	var got map[string]any
	if err := json.Unmarshal(n.Payload(), &got); err != nil {
		t.Fatal(err)
	}
	data := got["data"].(map[string]any)
	for _, k := range []string{"refund_no", "order_no", "merchant_id", "status", "amount", "currency", "channel", "channel_refund_id", "succeeded_at"} {
		if _, ok := data[k]; !ok {
			t.Fatalf("data lacks %s: %s", k, n.Payload())
		}
	}
	if got["event"] != "refund.succeeded" || data["status"] != "SUCCEEDED" || data["channel_refund_id"] != "RF1" {
		t.Fatalf("payload %s", n.Payload())
	}
	if n.ID == recon.NotificationID("R1", recon.EventRefundSucceeded) || !strings.HasPrefix(n.ID, "ntf_") {
		t.Fatalf("id %q", n.ID)
	}
	if n.ID != recon.NewRefundNotification(r, recon.RefundSucceeded, "", nil, now.Add(time.Hour)).ID {
		t.Fatal("the id is not stable across writers")
	}
}
