package recon_test

import (
	"testing"
	"time"

	"github.com/recon-dev/recon"
)

func TestDecideCallback(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := recon.Policy{MaxAge: time.Hour, Schedule: []time.Duration{time.Minute}}
	pending := recon.Order{ID: 1, OrderNo: "O1", Amount: 100, Currency: "CNY", Status: recon.StatusPending, CreatedAt: now.Add(-2 * time.Hour)}
	paid := pending
	paid.Status = recon.StatusPaid
	closed := pending
	closed.Status = recon.StatusClosed
	ok := recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: "T"}
	more := ok
	more.Amount = 101
	for _, tc := range []struct {
		name    string
		o       recon.Order
		r       recon.LookupResult
		action  recon.Action
		outcome recon.CallbackOutcome
		kind    recon.MismatchKind
	}{
		{"paid", pending, ok, recon.ActionTransition, recon.CallbackSettled, ""},
		{"closed", pending, recon.LookupResult{Status: recon.ChannelClosed}, recon.ActionTransition, recon.CallbackSettled, ""},
		{"another amount", pending, more, recon.ActionHold, recon.CallbackMismatch, recon.MismatchAmount},
		// Past max_age a pending answer would expire the order on a lookup;
		// a notification leaves it to the lookups.
		{"still pending, expired", pending, recon.LookupResult{Status: recon.ChannelPending}, recon.ActionNone, recon.CallbackUnchanged, ""},
		{"terminal agrees", paid, ok, recon.ActionNone, recon.CallbackUnchanged, ""},
		{"terminal disagrees", closed, ok, recon.ActionReport, recon.CallbackMismatch, recon.MismatchChannelPaidLocalUnpaid},
	} {
		out, oc := recon.DecideCallback(tc.o, tc.r, p, now)
		if out.Action != tc.action || oc != tc.outcome {
			t.Errorf("%s: got %s/%s, want %s/%s", tc.name, out.Action, oc, tc.action, tc.outcome)
		}
		if tc.kind != "" && (out.Mismatch == nil || out.Mismatch.Kind != tc.kind) {
			t.Errorf("%s: mismatch %+v, want %s", tc.name, out.Mismatch, tc.kind)
		}
		if out.Action == recon.ActionTransition && tc.o.Status.Terminal() {
			t.Errorf("%s: a terminal order would move", tc.name)
		}
	}
	// Lost to another writer that closed the order: a status conflict.
	out, oc := recon.CallbackLost(closed, ok)
	if out.Action != recon.ActionReport || oc != recon.CallbackMismatch || out.Mismatch.Kind != recon.MismatchStatusConflict {
		t.Errorf("lost: got %s/%s %+v", out.Action, oc, out.Mismatch)
	}
	if out, oc := recon.CallbackLost(paid, ok); out.Action != recon.ActionNone || oc != recon.CallbackUnchanged {
		t.Errorf("lost to an agreeing writer: got %s/%s", out.Action, oc)
	}
}

func TestDecideRefundCallback(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := recon.Policy{MaxAge: time.Hour, Schedule: []time.Duration{time.Minute}}
	pending := recon.Refund{ID: 1, RefundNo: "R1", Amount: 50, Currency: "CNY", Status: recon.RefundPending, CreatedAt: now.Add(-2 * time.Hour)}
	failed := pending
	failed.Status = recon.RefundFailed
	ok := recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: 50, Currency: "CNY", ChannelRefundID: "RF"}
	more := ok
	more.Amount = 51
	for _, tc := range []struct {
		name    string
		r       recon.Refund
		l       recon.RefundLookup
		action  recon.Action
		outcome recon.CallbackOutcome
		kind    recon.MismatchKind
	}{
		{"succeeded", pending, ok, recon.ActionTransition, recon.CallbackSettled, ""},
		{"failed", pending, recon.RefundLookup{Status: recon.RefundChannelFailed}, recon.ActionTransition, recon.CallbackSettled, ""},
		{"another amount", pending, more, recon.ActionHold, recon.CallbackMismatch, recon.MismatchRefundAmount},
		// Past max_age a lookup would call it stuck; a notification leaves
		// that to the lookups.
		{"abnormal, expired", pending, recon.RefundLookup{Status: recon.RefundChannelAbnormal}, recon.ActionNone, recon.CallbackUnchanged, ""},
		{"terminal disagrees", failed, ok, recon.ActionReport, recon.CallbackMismatch, recon.MismatchChannelRefundedLocalFail},
	} {
		out, oc := recon.DecideRefundCallback(tc.r, tc.l, p, now)
		if out.Action != tc.action || oc != tc.outcome {
			t.Errorf("%s: got %s/%s, want %s/%s", tc.name, out.Action, oc, tc.action, tc.outcome)
		}
		if tc.kind != "" && (out.Mismatch == nil || out.Mismatch.Kind != tc.kind) {
			t.Errorf("%s: mismatch %+v, want %s", tc.name, out.Mismatch, tc.kind)
		}
	}
}

func TestCombineCallbackOutcomes(t *testing.T) {
	for _, tc := range []struct {
		in   []recon.CallbackOutcome
		want recon.CallbackOutcome
	}{
		{nil, recon.CallbackUnchanged},
		{[]recon.CallbackOutcome{recon.CallbackUnchanged}, recon.CallbackUnchanged},
		{[]recon.CallbackOutcome{recon.CallbackUnchanged, recon.CallbackSettled}, recon.CallbackSettled},
		{[]recon.CallbackOutcome{recon.CallbackSettled, recon.CallbackMismatch, recon.CallbackUnchanged}, recon.CallbackMismatch},
	} {
		if got := recon.CombineCallbackOutcomes(tc.in); got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.in, got, tc.want)
		}
	}
}
