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
