package recon

import (
	"fmt"
	"time"
)

// StatementLineKind is channel_statement_lines.kind: what one line of a
// channel's daily statement records.
type StatementLineKind string

// Statement line kinds.
const (
	LinePayment StatementLineKind = "PAYMENT"
	LineRefund  StatementLineKind = "REFUND"
)

// MaxAmount bounds every amount recon accepts from a channel, in minor units
// (10^15: ten trillion yuan). Larger values are malformed answers; the bound
// also keeps sums of many amounts far from int64 overflow.
const MaxAmount int64 = 1_000_000_000_000_000

// StatementLine is one payment or refund of a channel's daily statement, as the
// channel's adapter parsed it from the provider's own file format.
type StatementLine struct {
	LineNo       int               // 1-based line (or record) number in the raw file, for error messages
	Kind         StatementLineKind // PAYMENT or REFUND
	OrderNo      string            // the merchant order number (out_trade_no)
	ChannelTxnID string            // the channel's transaction id
	RefundNo     string            // REFUND: the refund request number; "" for payments
	Amount       int64             // positive minor units (a refund's amount is positive too)
	Fee          int64             // minor units, signed as the channel writes it
	Currency     string            // ISO 4217, upper case
	OccurredAt   time.Time         // when the channel booked it, UTC
}

// Validate reports a line that cannot be true or stored.
func (l StatementLine) Validate() error {
	switch {
	case l.Kind != LinePayment && l.Kind != LineRefund:
		return fmt.Errorf("line %d: unknown kind %q", l.LineNo, l.Kind)
	case l.ChannelTxnID == "" && l.OrderNo == "":
		return fmt.Errorf("line %d: neither order number nor transaction id", l.LineNo)
	case l.Amount < 0 || l.Amount > MaxAmount:
		return fmt.Errorf("line %d: amount %d out of range", l.LineNo, l.Amount)
	case l.Fee < -MaxAmount || l.Fee > MaxAmount:
		return fmt.Errorf("line %d: fee %d out of range", l.LineNo, l.Fee)
	case !ValidCurrency(l.Currency):
		return fmt.Errorf("line %d: invalid currency %q", l.LineNo, l.Currency)
	case l.Kind == LineRefund && l.RefundNo == "":
		return fmt.Errorf("line %d: refund without a refund number", l.LineNo)
	case l.OccurredAt.IsZero():
		return fmt.Errorf("line %d: no time", l.LineNo)
	case hasControl(l.OrderNo) || hasControl(l.ChannelTxnID) || hasControl(l.RefundNo):
		// They are stored, printed and shown to finance.
		return fmt.Errorf("line %d: order number, transaction id or refund number holds control characters", l.LineNo)
	}
	return nil
}

// StatementTotals are a statement file's own summary figures, where the format
// has them. Amounts are positive minor units; fees as the channel writes them.
// A parser that read a summary sets Present and checks that its lines add up
// to it, failing the whole file otherwise.
type StatementTotals struct {
	Present        bool
	PaymentsCount  int64
	PaymentsAmount int64
	RefundsCount   int64
	RefundsAmount  int64
	FeesAmount     int64
}

// Claim is what the line says about its order, in the shape of a lookup
// answer: a payment claims PAID with its amount, currency, transaction id and
// time. It is for comparing only: the file is not signed line by line, so a
// claim is never decided on (ConfirmLine decides on the channel's lookup).
func (l StatementLine) Claim() LookupResult {
	at := l.OccurredAt
	return LookupResult{Status: ChannelPaid, Amount: l.Amount, Currency: l.Currency, TxnID: l.ChannelTxnID, PaidAt: &at}
}

// ExpectedFee is the fee a payment of amount should carry at rate (a share,
// 0.006 for 0.6%), rounded half away from zero.
func ExpectedFee(amount int64, rate float64) int64 {
	f := float64(amount) * rate
	if f < 0 {
		return -int64(-f + 0.5)
	}
	return int64(f + 0.5)
}

// PaymentVerdict is what one statement payment means for the local order it
// names. A statement is evidence, never a verdict: no verdict moves an order.
type PaymentVerdict struct {
	// Mismatches are the findings about the line: CHANNEL_ONLY for an order
	// recon does not know, AMOUNT_MISMATCH or CURRENCY_MISMATCH against the
	// local order, CHANNEL_PAID_LOCAL_UNPAID for a FAILED or CLOSED order,
	// STATEMENT_CONFLICT for a transaction id that is not the order's,
	// FEE_MISMATCH.
	Mismatches []Mismatch
	// Matched: the line agrees with a local PAID order.
	Matched bool
	// Lookup: the line claims a local PENDING order paid with its amount and
	// currency. Only the channel's verified lookup may settle the order
	// (ConfirmLine).
	Lookup bool
}

// ComparePayment compares a statement payment line with its local order (nil
// when recon does not know the order) and, when feeRate is positive, its fee
// with the rate. It is pure.
func ComparePayment(l StatementLine, o *Order, feeRate float64) PaymentVerdict {
	var v PaymentVerdict
	if o == nil {
		v.Mismatches = append(v.Mismatches, ChannelOnly(l))
		return v
	}
	claim := l.Claim()
	var m *Mismatch
	switch {
	case o.Status == StatusPending:
		m = comparePaid(*o, claim)
		if m == nil {
			m = otherTxn(l, *o)
		}
		v.Lookup = m == nil
	default:
		if m = Verify(*o, claim).Mismatch; m == nil && o.Status == StatusPaid {
			m = otherTxn(l, *o)
		}
		v.Matched = m == nil
	}
	if m != nil {
		m.Detail = fmt.Sprintf("statement line %d: %s", l.LineNo, m.Detail)
		v.Mismatches = append(v.Mismatches, *m)
	}
	if m := CompareFee(l, *o, feeRate); m != nil {
		v.Mismatches = append(v.Mismatches, *m)
	}
	return v
}

// otherTxn is the STATEMENT_CONFLICT of a line whose transaction id is not
// the one the order is known by (for Stripe the PaymentIntent id, the lookup
// key): that line is about another payment, whatever its order number says.
func otherTxn(l StatementLine, o Order) *Mismatch {
	if l.ChannelTxnID == "" || o.ChannelTxnID == "" || l.ChannelTxnID == o.ChannelTxnID {
		return nil
	}
	return newMismatch(MismatchStatementConflict, o, l.Claim(),
		fmt.Sprintf("transaction %s, but the order's is %s", l.ChannelTxnID, o.ChannelTxnID))
}

// ConfirmLine decides on the channel's verified lookup r of the local
// PENDING order o that statement line l claims paid (ComparePayment's
// Lookup). Only a lookup that confirms the line (PAID, with the line's
// amount, currency and transaction id) settles the order: the outcome is
// Decide's on r, and ok is true. Any other answer leaves the order as it
// is: the STATEMENT_CONFLICT mismatch says what the lookup said instead.
// It is pure.
func ConfirmLine(l StatementLine, o Order, r LookupResult, now time.Time) (out Outcome, conflict *Mismatch) {
	var why string
	switch {
	case r.Status != ChannelPaid:
		why = fmt.Sprintf("the channel's lookup says %s", r.Status)
	case r.Currency != l.Currency:
		why = fmt.Sprintf("the channel's lookup says paid in %q", r.Currency)
	case r.Amount != l.Amount:
		why = fmt.Sprintf("the channel's lookup says paid %d", r.Amount)
	case l.ChannelTxnID != "" && r.TxnID != l.ChannelTxnID && l.ChannelTxnID != o.ChannelTxnID:
		// The line names the payment the lookup answered about by the
		// lookup's transaction id, or by the id the order is known and
		// looked up by (Stripe's PaymentIntent, whose lookup names its
		// charge).
		why = fmt.Sprintf("the channel's lookup says transaction %q", r.TxnID)
	default:
		out = Decide(o, r, Policy{}, now, false)
		if out.Action == ActionTransition {
			return out, nil
		}
		// The lookup confirms the line but not the order (another
		// writer's change since the line was compared): the order stays
		// for its own lookups to settle.
		why = fmt.Sprintf("the channel's lookup confirms it, but the order is %s %d %s", o.Status, o.Amount, o.Currency)
	}
	m := newMismatch(MismatchStatementConflict, o, r,
		fmt.Sprintf("statement line %d: paid %d %s (transaction %s); %s", l.LineNo, l.Amount, l.Currency, l.ChannelTxnID, why))
	if l.ChannelTxnID != "" {
		m.ChannelTxnID = l.ChannelTxnID
	}
	return Outcome{Action: ActionNone, Order: o, Lookup: &r}, m
}

// CompareFee checks a payment's fee against rate: more than one minor unit
// off the expected fee is FEE_MISMATCH. Fees are compared by magnitude,
// since channels write them with either sign. A rate of zero or less checks
// nothing.
func CompareFee(l StatementLine, o Order, rate float64) *Mismatch {
	if rate <= 0 || l.Kind != LinePayment {
		return nil
	}
	fee := l.Fee
	if fee < 0 {
		fee = -fee
	}
	want := ExpectedFee(l.Amount, rate)
	if d := fee - want; d <= 1 && d >= -1 {
		return nil
	}
	return &Mismatch{Kind: MismatchFee, LocalStatus: o.Status, ChannelStatus: ChannelPaid,
		LocalAmount: want, ChannelAmount: fee, LocalCurrency: o.Currency, ChannelCurrency: l.Currency,
		ChannelTxnID: l.ChannelTxnID,
		Detail:       fmt.Sprintf("statement line %d: fee %d, expected %d at rate %g of %d", l.LineNo, fee, want, rate, l.Amount)}
}

// ChannelOnly is the CHANNEL_ONLY mismatch of a statement line whose order
// recon does not know.
func ChannelOnly(l StatementLine) Mismatch {
	what := "payment"
	if l.Kind == LineRefund {
		what = "refund"
	}
	// No local order: the local currency is the line's, so the report puts
	// the whole amount at stake in it.
	return Mismatch{Kind: MismatchChannelOnly, ChannelStatus: ChannelPaid, ChannelAmount: l.Amount,
		LocalCurrency: l.Currency, ChannelCurrency: l.Currency, ChannelTxnID: l.ChannelTxnID,
		Detail: fmt.Sprintf("statement line %d: %s of order %q (transaction %s) unknown to recon", l.LineNo, what, l.OrderNo, l.ChannelTxnID)}
}

// RefundFacts are a statement's refunds of one order.
type RefundFacts struct {
	Line     StatementLine // the first refund line of the order in the statement
	Count    int64         // refund lines of the order in the statement
	Amount   int64         // their sum
	Total    int64         // every refund of the order in every imported statement
	Currency string        // the refunds' currency ("" when they differ)
}

// CompareRefund checks a statement's refunds of one order against the local
// order (nil when recon does not know it): an unknown order is CHANNEL_ONLY;
// a refund of an order that is not PAID locally, in another currency, or
// refunds adding up to more than was paid are REFUND_MISMATCH. Nil means the
// refunds match. It is pure.
func CompareRefund(f RefundFacts, o *Order) *Mismatch {
	if o == nil {
		m := ChannelOnly(f.Line)
		m.ChannelAmount = f.Amount
		return &m
	}
	m := &Mismatch{Kind: MismatchRefund, LocalStatus: o.Status, ChannelStatus: ChannelPaid,
		LocalAmount: o.Amount, ChannelAmount: f.Total, LocalCurrency: o.Currency, ChannelCurrency: f.Currency,
		ChannelTxnID: f.Line.ChannelTxnID}
	switch {
	case o.Status != StatusPaid:
		m.Detail = fmt.Sprintf("statement line %d: refund of %d for an order that is %s locally", f.Line.LineNo, f.Amount, o.Status)
	case f.Currency != o.Currency:
		m.Detail = fmt.Sprintf("statement line %d: refund in %q, order in %q", f.Line.LineNo, f.Currency, o.Currency)
	case f.Total > o.Amount:
		m.Detail = fmt.Sprintf("statement line %d: refunds total %d, more than the %d paid", f.Line.LineNo, f.Total, o.Amount)
	default:
		return nil
	}
	return m
}

// LocalOnly is the LOCAL_ONLY mismatch of a local PAID order that is in
// neither the statement of the day it was paid nor the next day's.
func LocalOnly(o Order, day string) Mismatch {
	return Mismatch{Kind: MismatchLocalOnly, LocalStatus: o.Status, ChannelStatus: ChannelNotFound,
		LocalAmount: o.Amount, LocalCurrency: o.Currency, ChannelTxnID: o.ChannelTxnID,
		Detail: fmt.Sprintf("paid locally on %s, in neither that day's statement nor the next", day)}
}

// RefundClaim is what a refund line says about its refund order, in the
// shape of a refund lookup: the refund SUCCEEDED with the line's amount and
// currency. As Claim, it is for comparing only.
func (l StatementLine) RefundClaim() RefundLookup {
	at := l.OccurredAt
	return RefundLookup{Status: RefundChannelSucceeded, Amount: l.Amount, Currency: l.Currency, SucceededAt: &at}
}

// CompareRefundLine checks refund line l against its terminal refund order
// f (a line is evidence, so nothing moves): a FAILED refund the line shows
// made is CHANNEL_REFUNDED_LOCAL_FAILED, a SUCCEEDED one of another amount
// or currency REFUND_AMOUNT_MISMATCH. Nil means the line matches. A PENDING
// refund is looked up instead (ConfirmRefundLine). It is pure.
func CompareRefundLine(l StatementLine, f Refund) *Mismatch {
	m := VerifyRefund(f, l.RefundClaim()).Mismatch
	if m != nil {
		m.ChannelTxnID = l.ChannelTxnID
		m.Detail = fmt.Sprintf("statement line %d: %s", l.LineNo, m.Detail)
	}
	return m
}

// ConfirmRefundLine decides on the channel's verified lookup r of the local
// PENDING refund f that statement line l shows made. Only a lookup that
// confirms the line (SUCCEEDED, with the line's amount and currency)
// decides the refund: the outcome is DecideRefund's on r. Any other answer
// leaves the refund as it is: the STATEMENT_CONFLICT mismatch says what the
// lookup said instead. It is pure.
func ConfirmRefundLine(l StatementLine, f Refund, r RefundLookup, now time.Time) (out RefundOutcome, conflict *Mismatch) {
	var why string
	switch {
	case r.Status != RefundChannelSucceeded:
		why = fmt.Sprintf("the channel's refund lookup says %s", r.Status)
	case r.Currency != l.Currency:
		why = fmt.Sprintf("the channel's refund lookup says refunded in %q", r.Currency)
	case r.Amount != l.Amount:
		why = fmt.Sprintf("the channel's refund lookup says refunded %d", r.Amount)
	default:
		out = DecideRefund(f, r, Policy{}, now)
		if out.Action == ActionTransition || out.Action == ActionHold {
			// A success of another amount than the refund's is held as
			// REFUND_AMOUNT_MISMATCH: the lookup's word, not the line's.
			return out, nil
		}
		why = fmt.Sprintf("the channel's refund lookup confirms it, but the refund is %s %d %s", f.Status, f.Amount, f.Currency)
	}
	m := newRefundMismatch(MismatchStatementConflict, f, r,
		fmt.Sprintf("statement line %d: refund %s of %d %s; %s", l.LineNo, l.RefundNo, l.Amount, l.Currency, why))
	if l.ChannelTxnID != "" {
		m.ChannelTxnID = l.ChannelTxnID
	}
	return RefundOutcome{Action: ActionNone, Refund: f, Lookup: &r}, m
}
