package recon_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func pending() recon.Order {
	return recon.Order{ID: 7, OrderNo: "A1", Amount: 1000, Currency: "CNY", Status: recon.StatusPending, CreatedAt: now.Add(-time.Hour)}
}

var pol = recon.Policy{MaxAge: 24 * time.Hour, Schedule: []time.Duration{5 * time.Second, time.Minute}, CloseOnExpiry: true}

func TestDecideTable(t *testing.T) {
	expired := pending()
	expired.CreatedAt = now.Add(-25 * time.Hour)
	paid := recon.LookupResult{Status: recon.ChannelPaid, Amount: 1000, Currency: "CNY", TxnID: "T"}
	with := func(r recon.LookupResult, f func(*recon.LookupResult)) recon.LookupResult { f(&r); return r }
	cases := []struct {
		name     string
		o        recon.Order
		r        recon.LookupResult
		canClose bool
		action   recon.Action
		to       recon.Status
		kind     recon.MismatchKind
	}{
		{"paid equal", pending(), paid, true, recon.ActionTransition, recon.StatusPaid, ""},
		{"paid amount differs", pending(), with(paid, func(r *recon.LookupResult) { r.Amount = 1001 }), true, recon.ActionHold, "", recon.MismatchAmount},
		{"paid currency differs", pending(), with(paid, func(r *recon.LookupResult) { r.Currency = "USD" }), true, recon.ActionHold, "", recon.MismatchCurrency},
		{"paid currency missing", pending(), with(paid, func(r *recon.LookupResult) { r.Currency = "" }), true, recon.ActionHold, "", recon.MismatchCurrency},
		{"failed", pending(), recon.LookupResult{Status: recon.ChannelFailed}, true, recon.ActionTransition, recon.StatusFailed, ""},
		{"closed", pending(), recon.LookupResult{Status: recon.ChannelClosed}, true, recon.ActionTransition, recon.StatusClosed, ""},
		{"pending", pending(), recon.LookupResult{Status: recon.ChannelPending}, true, recon.ActionReschedule, "", ""},
		{"not found", pending(), recon.LookupResult{Status: recon.ChannelNotFound}, true, recon.ActionReschedule, "", ""},
		{"expired pending, can close", expired, recon.LookupResult{Status: recon.ChannelPending}, true, recon.ActionClose, "", ""},
		{"expired pending, cannot close", expired, recon.LookupResult{Status: recon.ChannelPending}, false, recon.ActionHold, "", recon.MismatchStuckPending},
		{"expired not found", expired, recon.LookupResult{Status: recon.ChannelNotFound}, true, recon.ActionHold, "", recon.MismatchNotFoundAtChannel},
		{"expired but paid", expired, paid, true, recon.ActionTransition, recon.StatusPaid, ""},
		{"unknown channel status", pending(), recon.LookupResult{Status: "WEIRD"}, true, recon.ActionReschedule, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := recon.Decide(tc.o, tc.r, pol, now, tc.canClose)
			if out.Action != tc.action || out.To != tc.to {
				t.Fatalf("Decide = %s %s, want %s %s", out.Action, out.To, tc.action, tc.to)
			}
			if tc.kind == "" && out.Mismatch != nil {
				t.Fatalf("unexpected mismatch %+v", out.Mismatch)
			}
			if tc.kind != "" && (out.Mismatch == nil || out.Mismatch.Kind != tc.kind) {
				t.Fatalf("mismatch = %+v, want %s", out.Mismatch, tc.kind)
			}
			if out.Action == recon.ActionTransition && out.Event != recon.EventFor(tc.to) {
				t.Fatalf("event = %s", out.Event)
			}
			if out.Action == recon.ActionReschedule && (out.NextQueryAt == nil || !out.NextQueryAt.After(now)) {
				t.Fatalf("reschedule without a next query time")
			}
		})
	}
}

func TestVerifyTerminal(t *testing.T) {
	o := pending()
	cases := []struct {
		local recon.Status
		r     recon.LookupResult
		kind  recon.MismatchKind
	}{
		{recon.StatusPaid, recon.LookupResult{Status: recon.ChannelPaid, Amount: 1000, Currency: "CNY"}, ""},
		{recon.StatusPaid, recon.LookupResult{Status: recon.ChannelPaid, Amount: 900, Currency: "CNY"}, recon.MismatchAmount},
		{recon.StatusPaid, recon.LookupResult{Status: recon.ChannelNotFound}, recon.MismatchLocalPaidChannelUnpaid},
		{recon.StatusPaid, recon.LookupResult{Status: recon.ChannelClosed}, recon.MismatchLocalPaidChannelUnpaid},
		{recon.StatusClosed, recon.LookupResult{Status: recon.ChannelPaid, Amount: 1000, Currency: "CNY"}, recon.MismatchChannelPaidLocalUnpaid},
		{recon.StatusFailed, recon.LookupResult{Status: recon.ChannelPaid, Amount: 1000, Currency: "CNY"}, recon.MismatchChannelPaidLocalUnpaid},
		{recon.StatusFailed, recon.LookupResult{Status: recon.ChannelFailed}, ""},
		{recon.StatusClosed, recon.LookupResult{Status: recon.ChannelNotFound}, ""},
	}
	for _, tc := range cases {
		o.Status = tc.local
		out := recon.Decide(o, tc.r, pol, now, true)
		if out.To != "" || out.Action == recon.ActionTransition || out.Action == recon.ActionReschedule {
			t.Fatalf("%s/%s: verification proposed a change: %+v", tc.local, tc.r.Status, out)
		}
		if tc.kind == "" && (out.Mismatch != nil || out.Action != recon.ActionNone) {
			t.Fatalf("%s/%s: unexpected %+v", tc.local, tc.r.Status, out.Mismatch)
		}
		if tc.kind != "" && (out.Mismatch == nil || out.Mismatch.Kind != tc.kind || out.Action != recon.ActionReport) {
			t.Fatalf("%s/%s: mismatch %+v, want %s", tc.local, tc.r.Status, out.Mismatch, tc.kind)
		}
	}
}

func TestClassifyConflict(t *testing.T) {
	o := pending()
	o.Status = recon.StatusClosed
	if m := recon.ClassifyConflict(o, recon.LookupResult{Status: recon.ChannelPaid, Amount: 1000, Currency: "CNY"}); m == nil || m.Kind != recon.MismatchStatusConflict {
		t.Fatalf("closed vs paid = %+v", m)
	}
	o.Status = recon.StatusPaid
	if m := recon.ClassifyConflict(o, recon.LookupResult{Status: recon.ChannelPaid, Amount: 1000, Currency: "CNY"}); m != nil {
		t.Fatalf("agreeing winner = %+v", m)
	}
	if m := recon.ClassifyConflict(o, recon.LookupResult{Status: recon.ChannelPaid, Amount: 1, Currency: "CNY"}); m == nil || m.Kind != recon.MismatchAmount {
		t.Fatalf("paid with other amount = %+v", m)
	}
}

func TestNextQueryAtFollowsTheScheduleWithStableJitter(t *testing.T) {
	p := recon.Policy{Schedule: []time.Duration{5 * time.Second, time.Minute}, Jitter: 0.1}
	o := pending()
	for attempts, base := range map[int]time.Duration{0: 5 * time.Second, 1: time.Minute, 9: time.Minute} {
		o.QueryAttempts = attempts
		got := recon.NextQueryAt(o, p, now).Sub(now)
		if got < base*9/10 || got > base*11/10 {
			t.Fatalf("attempt %d: wait %s outside %s ±10%%", attempts, got, base)
		}
		if again := recon.NextQueryAt(o, p, now).Sub(now); again != got {
			t.Fatalf("jitter not stable: %s then %s", got, again)
		}
	}
}

func TestOrderValidate(t *testing.T) {
	for _, f := range []func(*recon.Order){
		func(o *recon.Order) { o.Amount = -1 },
		func(o *recon.Order) { o.Status = "WHATEVER" },
		func(o *recon.Order) { o.Currency = "cny" },
		func(o *recon.Order) { o.Currency = "" },
		func(o *recon.Order) { o.OrderNo = "" },
	} {
		o := pending()
		f(&o)
		if o.Validate() == nil {
			t.Fatalf("invalid order accepted: %+v", o)
		}
	}
	if err := pending().Validate(); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecide(f *testing.F) {
	f.Add(int64(1000), "CNY", "PAID", int64(1000), "CNY", int64(3600), 0, true)
	f.Add(int64(0), "JPY", "NOT_FOUND", int64(0), "", int64(90000), 3, false)
	f.Fuzz(func(t *testing.T, amount int64, cur, status string, chAmount int64, chCur string, ageSecs int64, attempts int, canClose bool) {
		o := pending()
		o.Amount, o.Currency, o.QueryAttempts = amount, cur, attempts
		o.CreatedAt = now.Add(-time.Duration(ageSecs) * time.Second)
		r := recon.LookupResult{Status: recon.ChannelStatus(status), Amount: chAmount, Currency: chCur}
		out := recon.Decide(o, r, pol, now, canClose)
		if out.Action == recon.ActionTransition {
			if !o.Status.CanTransition(out.To) {
				t.Fatalf("illegal transition %s -> %s", o.Status, out.To)
			}
			if out.To == recon.StatusPaid && (chAmount != amount || chCur != cur) {
				t.Fatalf("PAID with channel %d %s vs local %d %s", chAmount, chCur, amount, cur)
			}
		}
	})
}

func TestLookupResultValidate(t *testing.T) {
	ok := recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: "T1"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("good answer refused: %v", err)
	}
	if err := (recon.LookupResult{Status: recon.ChannelPending}).Validate(); err != nil {
		t.Fatalf("bare pending answer refused: %v", err)
	}
	if err := (recon.LookupResult{Status: recon.ChannelPaid, Amount: recon.MaxAmount, Currency: "CNY", TxnID: "支付-42"}).Validate(); err != nil {
		t.Fatalf("largest amount with a non-ASCII id refused: %v", err)
	}
	for name, r := range map[string]recon.LookupResult{
		"unknown status":   {Status: "MAYBE"},
		"negative amount":  {Status: recon.ChannelPaid, Amount: -1, Currency: "CNY"},
		"bad currency":     {Status: recon.ChannelPaid, Amount: 1, Currency: "cny"},
		"txn id too long":  {Status: recon.ChannelPaid, Amount: 1, Currency: "CNY", TxnID: strings.Repeat("T", recon.MaxTxnIDLen+1)},
		"paid at year 1":   {Status: recon.ChannelPaid, Amount: 1, Currency: "CNY", PaidAt: &time.Time{}},
		"txn id not UTF-8": {Status: recon.ChannelPaid, Amount: 1, Currency: "CNY", TxnID: "T\xff"},
		"amount near 2^63": {Status: recon.ChannelPaid, Amount: math.MaxInt64 - 7, Currency: "CNY"},
		"amount over max":  {Status: recon.ChannelPaid, Amount: recon.MaxAmount + 1, Currency: "CNY"},
		"txn id with ESC":  {Status: recon.ChannelPaid, Amount: 1, Currency: "CNY", TxnID: "T1\x1b[2J"},
		"txn id with LF":   {Status: recon.ChannelPaid, Amount: 1, Currency: "CNY", TxnID: "T1\nT2"},
		"txn id with DEL":  {Status: recon.ChannelPaid, Amount: 1, Currency: "CNY", TxnID: "T1\x7f"},
		"txn id with C1":   {Status: recon.ChannelPaid, Amount: 1, Currency: "CNY", TxnID: "T1\u009b2J"},
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, r)
		}
	}
}
