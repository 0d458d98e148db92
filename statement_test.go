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
	with := func(f func(*StatementLine)) StatementLine { l := line; f(&l); return l }
	for _, tc := range []struct {
		name    string
		line    StatementLine
		order   *Order
		rate    float64
		action  Action         // of Outcome; "" for none
		kinds   []MismatchKind // outcome's mismatch first, then the others
		matched bool
		settled bool
	}{
		{"paid agrees", line, ord(StatusPaid, 10000, "CNY"), 0.006, "", nil, true, false},
		{"pending settles", line, ord(StatusPending, 10000, "CNY"), 0, ActionTransition, nil, false, true},
		{"pending amount differs", line, ord(StatusPending, 9999, "CNY"), 0, ActionHold, []MismatchKind{MismatchAmount}, false, false},
		{"pending currency differs", line, ord(StatusPending, 10000, "USD"), 0, ActionHold, []MismatchKind{MismatchCurrency}, false, false},
		{"paid amount differs", line, ord(StatusPaid, 10001, "CNY"), 0, ActionReport, []MismatchKind{MismatchAmount}, false, false},
		{"failed locally", line, ord(StatusFailed, 10000, "CNY"), 0, ActionReport, []MismatchKind{MismatchChannelPaidLocalUnpaid}, false, false},
		{"closed locally", line, ord(StatusClosed, 10000, "CNY"), 0, ActionReport, []MismatchKind{MismatchChannelPaidLocalUnpaid}, false, false},
		{"unknown order", line, nil, 0.006, "", []MismatchKind{MismatchChannelOnly}, false, false},
		{"fee one unit off is fine", with(func(l *StatementLine) { l.Fee = 61 }), ord(StatusPaid, 10000, "CNY"), 0.006, "", nil, true, false},
		{"fee negative as written", with(func(l *StatementLine) { l.Fee = -60 }), ord(StatusPaid, 10000, "CNY"), 0.006, "", nil, true, false},
		{"fee two units off", with(func(l *StatementLine) { l.Fee = 62 }), ord(StatusPaid, 10000, "CNY"), 0.006, "", []MismatchKind{MismatchFee}, true, false},
		{"fee off, no rate set", with(func(l *StatementLine) { l.Fee = 99 }), ord(StatusPaid, 10000, "CNY"), 0, "", nil, true, false},
		{"settles and fee off", with(func(l *StatementLine) { l.Fee = 0 }), ord(StatusPending, 10000, "CNY"), 0.006, ActionTransition, []MismatchKind{MismatchFee}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ComparePayment(tc.line, tc.order, tc.rate)
			var kinds []MismatchKind
			if v.Outcome != nil {
				if v.Outcome.Action != tc.action {
					t.Fatalf("action %s, want %s", v.Outcome.Action, tc.action)
				}
				if v.Outcome.Mismatch != nil {
					kinds = append(kinds, v.Outcome.Mismatch.Kind)
					if !strings.Contains(v.Outcome.Mismatch.Detail, "statement line 7") {
						t.Errorf("detail %q does not name the line", v.Outcome.Mismatch.Detail)
					}
				}
				if v.Outcome.Action == ActionTransition {
					o := v.Outcome
					if o.To != StatusPaid || o.Event != EventPaid || o.Lookup.TxnID != "T1" || !o.Lookup.PaidAt.Equal(at) || o.Order.Version != 3 {
						t.Errorf("settlement %+v", o)
					}
				}
			} else if tc.action != "" {
				t.Fatalf("no outcome, want %s", tc.action)
			}
			for _, m := range v.Mismatches {
				kinds = append(kinds, m.Kind)
				if !strings.Contains(m.Detail, "statement line 7") {
					t.Errorf("detail %q does not name the line", m.Detail)
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
			if v.Matched != tc.matched || v.Settled != tc.settled {
				t.Errorf("matched %v settled %v", v.Matched, v.Settled)
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
