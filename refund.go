package recon

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// RefundStatus is the local state of a refund order (refund_orders.status,
// CONTRACT §10).
type RefundStatus string

// The three refund states. Only PENDING is non-terminal; the job moves a
// refund out of PENDING and never out of a terminal state.
const (
	RefundPending   RefundStatus = "PENDING"
	RefundSucceeded RefundStatus = "SUCCEEDED"
	RefundFailed    RefundStatus = "FAILED"
)

// Terminal reports whether s is a final state the job never changes.
func (s RefundStatus) Terminal() bool { return s == RefundSucceeded || s == RefundFailed }

// Valid reports whether s is one of the three known states.
func (s RefundStatus) Valid() bool { return s == RefundPending || s.Terminal() }

// RefundChannelStatus is a channel's answer about a refund, normalised.
type RefundChannelStatus string

// Normalised refund answers. ABNORMAL (WeChat Pay) needs the merchant's
// action at the channel and is not final.
const (
	RefundChannelSucceeded RefundChannelStatus = "SUCCEEDED"
	RefundChannelPending   RefundChannelStatus = "PENDING"
	RefundChannelFailed    RefundChannelStatus = "FAILED"
	RefundChannelAbnormal  RefundChannelStatus = "ABNORMAL"
	RefundChannelNotFound  RefundChannelStatus = "NOT_FOUND"
)

// Valid reports whether c is one of the five normalised answers.
func (c RefundChannelStatus) Valid() bool {
	switch c {
	case RefundChannelSucceeded, RefundChannelPending, RefundChannelFailed, RefundChannelAbnormal, RefundChannelNotFound:
		return true
	}
	return false
}

// Refund is a refund order as the job reads it from refund_orders (or the
// team's mapped refunds table).
type Refund struct {
	ID              int64
	RefundNo        string // sent to the channel as out_request_no / out_refund_no
	OrderID         int64  // the paid order
	OrderNo         string // the paid order's order_no (Alipay's out_trade_no)
	MerchantID      string
	Channel         string
	ChannelRefundID string // Stripe's re_… id (the lookup key); the channel's refund id elsewhere
	Amount          int64  // minor units
	Currency        string
	Status          RefundStatus
	Version         int64
	QueryAttempts   int
	NextQueryAt     *time.Time
	LastQueryError  string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	SucceededAt     *time.Time
	// StoredStatus is the status column's value as read from a mapped
	// refunds table; "" for recon's own table (see Order.StoredStatus).
	StoredStatus string
}

// Validate reports impossible data on a row the payment service wrote.
func (r Refund) Validate() error {
	switch {
	case r.RefundNo == "":
		return fmt.Errorf("%w: empty refund_no", ErrInvalidOrder)
	case r.Amount < 0:
		return fmt.Errorf("%w: negative refund amount %d", ErrInvalidOrder, r.Amount)
	case !r.Status.Valid():
		return fmt.Errorf("%w: unknown refund status %q", ErrInvalidOrder, r.Status)
	case !ValidCurrency(r.Currency):
		return fmt.Errorf("%w: invalid refund currency %q", ErrInvalidOrder, r.Currency)
	}
	return nil
}

// RefundLookup is a channel's verified answer about one refund.
type RefundLookup struct {
	Status          RefundChannelStatus
	Amount          int64  // minor units; meaningful when Status is SUCCEEDED
	Currency        string // ISO 4217 upper case; may be empty when the channel omits it
	ChannelRefundID string
	SucceededAt     *time.Time
	// Detail is the channel's own words where they help finance (a failure
	// reason, the account an ABNORMAL refund went to); cleaned before it is
	// stored.
	Detail string
}

// Validate reports an answer that cannot be true or stored.
func (r RefundLookup) Validate() error {
	switch {
	case !r.Status.Valid():
		return fmt.Errorf("unknown refund status %q", r.Status)
	case r.Amount < 0:
		return fmt.Errorf("negative refund amount %d", r.Amount)
	case r.Amount > MaxAmount:
		return fmt.Errorf("refund amount %d is above the %d minor units recon accepts", r.Amount, MaxAmount)
	case r.Currency != "" && !ValidCurrency(r.Currency):
		return fmt.Errorf("invalid currency %q", r.Currency)
	case len(r.ChannelRefundID) > MaxTxnIDLen:
		return fmt.Errorf("refund id of %d bytes (at most %d)", len(r.ChannelRefundID), MaxTxnIDLen)
	case !utf8.ValidString(r.ChannelRefundID) || hasControl(r.ChannelRefundID):
		return fmt.Errorf("refund id %q is not clean text", r.ChannelRefundID)
	case r.SucceededAt != nil && (r.SucceededAt.Year() < 2000 || r.SucceededAt.Year() > 9999):
		return fmt.Errorf("refund time %s is out of range", r.SucceededAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// Refund notification events (merchant_notifications.event).
const (
	EventRefundSucceeded Event = "refund.succeeded"
	EventRefundFailed    Event = "refund.failed"
)
