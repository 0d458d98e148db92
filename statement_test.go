package recon

import (
	"strings"
	"testing"
	"time"
)

func TestComparePayment(t *testing.T) {
	at := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	line := StatementLine{LineNo: 7, Kind: LinePayment, OrderNo: "O1", ChannelTxnID: "T1", Amount: 10000, Fee: 60, Currency: "CNY", OccurredAt: at}
	ord := func(s Status, amount int64, cur string) *Order {
		return &Order{ID: 1, OrderNo: "O1", Amount: amount, Currency: cur, Status: s, Version: 3}
	}
	withTxn := func(o *Order, txn string) *Order { o.ChannelTxnID = txn; return o }
	with := func(f func(*StatementLine)) StatementLine { l := line; f(&l); return l }
	for _, tc := range []struct {
		name    string
		line    StatementLine
		order   *Order
		rate    float64
		kinds   []MismatchKind
		matched bool
		lookup  bool
	}{
		{"paid agrees", line, ord(StatusPaid, 10000, "CNY"), 0.006, nil, true, false},
		{"paid agrees, same transaction", line, withTxn(ord(StatusPaid, 10000, "CNY"), "T1"), 0, nil, true, false},
		// A line only ever asks for a lookup: it settles nothing itself.
		{"pending asks for a lookup", line, ord(StatusPending, 10000, "CNY"), 0, nil, false, true},
		{"pending, same transaction", line, withTxn(ord(StatusPending, 10000, "CNY"), "T1"), 0, nil, false, true},
		{"pending, other transaction", line, withTxn(ord(StatusPending, 10000, "CNY"), "pi_REAL"), 0, []MismatchKind{MismatchStatementConflict}, false, false},
		{"paid, other transaction", line, withTxn(ord(StatusPaid, 10000, "CNY"), "pi_REAL"), 0, []MismatchKind{MismatchStatementConflict}, false, false},
		{"pending amount differs", line, ord(StatusPending, 9999, "CNY"), 0, []MismatchKind{MismatchAmount}, false, false},
		{"pending currency differs", line, ord(StatusPending, 10000, "USD"), 0, []MismatchKind{MismatchCurrency}, false, false},
		{"paid amount differs", line, ord(StatusPaid, 10001, "CNY"), 0, []MismatchKind{MismatchAmount}, false, false},
		{"failed locally", line, ord(StatusFailed, 10000, "CNY"), 0, []MismatchKind{MismatchChannelPaidLocalUnpaid}, false, false},
		{"closed locally", line, ord(StatusClosed, 10000, "CNY"), 0, []MismatchKind{MismatchChannelPaidLocalUnpaid}, false, false},
		{"unknown order", line, nil, 0.006, []MismatchKind{MismatchChannelOnly}, false, false},
		{"fee one unit off is fine", with(func(l *StatementLine) { l.Fee = 61 }), ord(StatusPaid, 10000, "CNY"), 0.006, nil, true, false},
		{"fee negative as written", with(func(l *StatementLine) { l.Fee = -60 }), ord(StatusPaid, 10000, "CNY"), 0.006, nil, true, false},
		{"fee two units off", with(func(l *StatementLine) { l.Fee = 62 }), ord(StatusPaid, 10000, "CNY"), 0.006, []MismatchKind{MismatchFee}, true, false},
		{"fee off, no rate set", with(func(l *StatementLine) { l.Fee = 99 }), ord(StatusPaid, 10000, "CNY"), 0, nil, true, false},
		{"lookup and fee off", with(func(l *StatementLine) { l.Fee = 0 }), ord(StatusPending, 10000, "CNY"), 0.006, []MismatchKind{MismatchFee}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ComparePayment(tc.line, tc.order, tc.rate)
			var kinds []MismatchKind
			for _, m := range v.Mismatches {
				kinds = append(kinds, m.Kind)
				if !strings.Contains(m.Detail, "statement line 7") {
					t.Errorf("detail %q does not name the line", m.Detail)
				}
				if m.Kind == MismatchStatementConflict && (m.ChannelTxnID != "T1" || !strings.Contains(m.Detail, "pi_REAL")) {
					t.Errorf("conflict %+v names not both transactions", m)
				}
			}
			if len(kinds) != len(tc.kinds) {
				t.Fatalf("mismatches %v, want %v", kinds, tc.kinds)
			}
			for i := range kinds {
				if kinds[i] != tc.kinds[i] {
					t.Fatalf("mismatches %v, want %v", kinds, tc.kinds)
				}
			}
			if v.Matched != tc.matched || v.Lookup != tc.lookup {
				t.Errorf("matched %v lookup %v, want %v %v", v.Matched, v.Lookup, tc.matched, tc.lookup)
			}
		})
	}
}

// Only a lookup that confirms the line settles the order, and it settles it
// with the lookup's facts; any other answer is STATEMENT_CONFLICT and moves
// nothing.
func TestConfirmLine(t *testing.T) {
	at := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	lookupAt := at.Add(-time.Minute)
	now := at.Add(24 * time.Hour)
	line := StatementLine{LineNo: 7, Kind: LinePayment, OrderNo: "O1", ChannelTxnID: "T1", Amount: 10000, Fee: 60, Currency: "CNY", OccurredAt: at}
	o := Order{ID: 1, OrderNo: "O1", Amount: 10000, Currency: "CNY", Status: StatusPending, Version: 3}
	paid := LookupResult{Status: ChannelPaid, Amount: 10000, Currency: "CNY", TxnID: "T1", PaidAt: &lookupAt}
	with := func(f func(*LookupResult)) LookupResult { r := paid; f(&r); return r }
	for _, tc := range []struct {
		name  string
		line  StatementLine
		r     LookupResult
		about string // "" settles
	}{
		{"lookup confirms", line, paid, ""},
		{"line without transaction id", func() StatementLine { l := line; l.ChannelTxnID = ""; return l }(), paid, ""},
		{"still pending", line, LookupResult{Status: ChannelPending}, "lookup says PENDING"},
		{"not found", line, LookupResult{Status: ChannelNotFound}, "lookup says NOT_FOUND"},
		{"failed", line, LookupResult{Status: ChannelFailed}, "lookup says FAILED"},
		{"closed", line, LookupResult{Status: ChannelClosed}, "lookup says CLOSED"},
		{"other amount", line, with(func(r *LookupResult) { r.Amount = 9000 }), "paid 9000"},
		{"other currency", line, with(func(r *LookupResult) { r.Currency = "USD" }), `paid in "USD"`},
		{"other transaction", line, with(func(r *LookupResult) { r.TxnID = "T2" }), `transaction "T2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, m := ConfirmLine(tc.line, o, tc.r, now)
			if tc.about == "" {
				// A line named by the id the order is looked up by (a
				// PaymentIntent, whose lookup names its charge) is the
				// payment the lookup answered about.
				pi, l := o, tc.line
				pi.ChannelTxnID, l.ChannelTxnID = "pi_1", "pi_1"
				if out, m := ConfirmLine(l, pi, with(func(r *LookupResult) { r.TxnID = "ch_1" }), now); m != nil || out.Action != ActionTransition {
					t.Errorf("the order's own PaymentIntent: %+v %+v", out, m)
				}
			}
			if tc.about == "" {
				if m != nil || out.Action != ActionTransition || out.To != StatusPaid || out.Event != EventPaid ||
					out.Lookup == nil || !out.Lookup.PaidAt.Equal(lookupAt) || out.Order.Version != 3 {
					t.Fatalf("want a settlement on the lookup's facts, got %+v %+v", out, m)
				}
				return
			}
			if m == nil || out.Action == ActionTransition {
				t.Fatalf("settled on %+v", tc.r)
			}
			if m.Kind != MismatchStatementConflict || !strings.Contains(m.Detail, tc.about) || !strings.Contains(m.Detail, "statement line 7") ||
				m.LocalStatus != StatusPending || m.ChannelStatus != tc.r.Status || m.ChannelTxnID != "T1" {
				t.Errorf("conflict %+v, want one about %q", m, tc.about)
			}
		})
	}
}

func TestCompareRefund(t *testing.T) {
	l := StatementLine{LineNo: 9, Kind: LineRefund, OrderNo: "O1", ChannelTxnID: "T1", RefundNo: "R1", Amount: 400, Currency: "CNY", OccurredAt: time.Now()}
	paid := &Order{ID: 1, OrderNo: "O1", Amount: 1000, Currency: "CNY", Status: StatusPaid}
	for _, tc := range []struct {
		name  string
		f     RefundFacts
		o     *Order
		want  MismatchKind
		about string
	}{
		{"partial refund", RefundFacts{Line: l, Count: 1, Amount: 400, Total: 400, Currency: "CNY"}, paid, "", ""},
		{"whole amount over two days", RefundFacts{Line: l, Count: 1, Amount: 400, Total: 1000, Currency: "CNY"}, paid, "", ""},
		{"over-refund", RefundFacts{Line: l, Count: 2, Amount: 1001, Total: 1001, Currency: "CNY"}, paid, MismatchRefund, "more than the 1000 paid"},
		{"over-refund with earlier days", RefundFacts{Line: l, Count: 1, Amount: 400, Total: 1200, Currency: "CNY"}, paid, MismatchRefund, "refunds total 1200"},
		{"unpaid order", RefundFacts{Line: l, Count: 1, Amount: 400, Total: 400, Currency: "CNY"},
			&Order{ID: 2, Amount: 1000, Currency: "CNY", Status: StatusClosed}, MismatchRefund, "CLOSED locally"},
		{"pending order", RefundFacts{Line: l, Count: 1, Amount: 400, Total: 400, Currency: "CNY"},
			&Order{ID: 2, Amount: 1000, Currency: "CNY", Status: StatusPending}, MismatchRefund, "PENDING locally"},
		{"other currency", RefundFacts{Line: l, Count: 1, Amount: 400, Total: 400, Currency: "USD"}, paid, MismatchRefund, `refund in "USD"`},
		{"unknown order", RefundFacts{Line: l, Count: 1, Amount: 400, Total: 400, Currency: "CNY"}, nil, MismatchChannelOnly, "refund of order"},
	} {
		m := CompareRefund(tc.f, tc.o)
		switch {
		case tc.want == "" && m != nil:
			t.Errorf("%s: unexpected %+v", tc.name, m)
		case tc.want != "" && (m == nil || m.Kind != tc.want || !strings.Contains(m.Detail, tc.about) || !strings.Contains(m.Detail, "line 9")):
			t.Errorf("%s: got %+v, want %s about %q", tc.name, m, tc.want, tc.about)
		}
	}
}

func TestExpectedFee(t *testing.T) {
	for _, tc := range []struct {
		amount int64
		rate   float64
		want   int64
	}{{10000, 0.006, 60}, {250, 0.006, 2}, {249, 0.006, 1}, {1, 0.006, 0}, {MaxAmount, 0.006, 6_000_000_000_000}, {100, 0, 0}} {
		if got := ExpectedFee(tc.amount, tc.rate); got != tc.want {
			t.Errorf("ExpectedFee(%d, %g) = %d, want %d", tc.amount, tc.rate, got, tc.want)
		}
	}
	if m := LocalOnly(Order{OrderNo: "O", Status: StatusPaid, Amount: 5, Currency: "CNY"}, "2026-11-30"); m.Kind != MismatchLocalOnly || !strings.Contains(m.Detail, "2026-11-30") {
		t.Errorf("LocalOnly: %+v", m)
	}
}

func TestConfirmRefundLine(t *testing.T) {
	at := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	now := at.Add(24 * time.Hour)
	line := StatementLine{LineNo: 9, Kind: LineRefund, OrderNo: "O1", ChannelTxnID: "T1", RefundNo: "R1", Amount: 300, Currency: "CNY", OccurredAt: at}
	f := Refund{ID: 4, RefundNo: "R1", OrderNo: "O1", Amount: 300, Currency: "CNY", Status: RefundPending, Version: 2}
	done := RefundLookup{Status: RefundChannelSucceeded, Amount: 300, Currency: "CNY", ChannelRefundID: "50301"}
	with := func(fn func(*RefundLookup)) RefundLookup { r := done; fn(&r); return r }
	for _, tc := range []struct {
		name   string
		refund Refund
		r      RefundLookup
		action Action
		about  string // the conflict's detail; "" when none
	}{
		{"lookup confirms", f, done, ActionTransition, ""},
		{"still processing", f, RefundLookup{Status: RefundChannelPending}, ActionNone, "lookup says PENDING"},
		{"not found", f, RefundLookup{Status: RefundChannelNotFound}, ActionNone, "lookup says NOT_FOUND"},
		{"failed", f, RefundLookup{Status: RefundChannelFailed}, ActionNone, "lookup says FAILED"},
		{"other amount than the line", f, with(func(r *RefundLookup) { r.Amount = 299 }), ActionNone, "refunded 299"},
		{"other currency than the line", f, with(func(r *RefundLookup) { r.Currency = "USD" }), ActionNone, `refunded in "USD"`},
		{"the line's amount, not the refund's", func() Refund { r := f; r.Amount = 400; return r }(), done, ActionHold, ""},
		{"moved by another writer", func() Refund { r := f; r.Status = RefundSucceeded; return r }(), done, ActionNone, "but the refund is SUCCEEDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, m := ConfirmRefundLine(line, tc.refund, tc.r, now)
			if out.Action != tc.action {
				t.Fatalf("action %s, want %s (%+v)", out.Action, tc.action, m)
			}
			if tc.about == "" {
				if m != nil {
					t.Fatalf("unexpected conflict %+v", m)
				}
				if tc.action == ActionTransition && (out.To != RefundSucceeded || out.Event != EventRefundSucceeded || out.Refund.Version != 2) {
					t.Fatalf("settlement %+v", out)
				}
				if tc.action == ActionHold && (out.Mismatch == nil || out.Mismatch.Kind != MismatchRefundAmount) {
					t.Fatalf("hold %+v", out)
				}
				return
			}
			if m == nil || m.Kind != MismatchStatementConflict || m.RefundNo != "R1" || m.ChannelTxnID != "T1" ||
				!strings.Contains(m.Detail, "statement line 9") || !strings.Contains(m.Detail, tc.about) {
				t.Fatalf("conflict %+v, want one about %q", m, tc.about)
			}
		})
	}
}

func TestCompareRefundLine(t *testing.T) {
	at := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	line := StatementLine{LineNo: 9, Kind: LineRefund, OrderNo: "O1", RefundNo: "R1", Amount: 300, Currency: "CNY", OccurredAt: at}
	f := Refund{RefundNo: "R1", Amount: 300, Currency: "CNY"}
	for _, tc := range []struct {
		status RefundStatus
		amount int64
		want   MismatchKind // "" matches
	}{
		{RefundSucceeded, 300, ""},
		{RefundSucceeded, 200, MismatchRefundAmount},
		{RefundFailed, 300, MismatchChannelRefundedLocalFail},
	} {
		r := f
		r.Status, r.Amount = tc.status, tc.amount
		m := CompareRefundLine(line, r)
		switch {
		case tc.want == "" && m != nil:
			t.Errorf("%s %d: %+v", tc.status, tc.amount, m)
		case tc.want != "" && (m == nil || m.Kind != tc.want || m.RefundNo != "R1" || !strings.Contains(m.Detail, "statement line 9")):
			t.Errorf("%s %d: %+v, want %s", tc.status, tc.amount, m, tc.want)
		}
	}
}
