// Package recon holds the domain of the payment reconciliation job: orders and
// their lifecycle, what a channel says about an order, the mismatch kinds finance
// reviews, and Decide, the pure function that turns an order and a channel's
// answer into an outcome. It imports nothing of this module; repo, channel and
// jobs build on it.
package recon

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Status is the local state of a payment order (payment_orders.status).
type Status string

// The four order states. Only PENDING is non-terminal; the job moves an order
// out of PENDING and never out of a terminal state.
const (
	StatusPending Status = "PENDING"
	StatusPaid    Status = "PAID"
	StatusFailed  Status = "FAILED"
	StatusClosed  Status = "CLOSED"
)

// Terminal reports whether s is a final state the job never changes.
func (s Status) Terminal() bool {
	return s == StatusPaid || s == StatusFailed || s == StatusClosed
}

// Valid reports whether s is one of the four known states.
func (s Status) Valid() bool { return s == StatusPending || s.Terminal() }

// CanTransition reports whether the job may move an order from s to to.
func (s Status) CanTransition(to Status) bool {
	return s == StatusPending && to.Terminal()
}

// ChannelStatus is a channel's answer normalised to the five values of the
// contract.
type ChannelStatus string

// Normalised channel answers.
const (
	ChannelPaid     ChannelStatus = "PAID"
	ChannelPending  ChannelStatus = "PENDING"
	ChannelFailed   ChannelStatus = "FAILED"
	ChannelClosed   ChannelStatus = "CLOSED"
	ChannelNotFound ChannelStatus = "NOT_FOUND"
)

// Valid reports whether c is one of the five normalised answers.
func (c ChannelStatus) Valid() bool {
	switch c {
	case ChannelPaid, ChannelPending, ChannelFailed, ChannelClosed, ChannelNotFound:
		return true
	}
	return false
}

// Order is a payment order as the job reads it from payment_orders.
type Order struct {
	ID             int64
	OrderNo        string
	MerchantID     string
	Channel        string
	ChannelTxnID   string
	Amount         int64 // minor units
	Currency       string
	Status         Status
	Version        int64
	QueryAttempts  int
	NextQueryAt    *time.Time
	LastQueryError string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	PaidAt         *time.Time
	// StoredStatus is the status column's value as read from a mapped
	// orders table (one of the values meaning Status); "" for recon's own
	// table. The guarded update of a table without a version column
	// compares it.
	StoredStatus string
}

// Validate reports impossible data on a row the payment service wrote, so the
// job can skip the order with a counted error instead of acting on it.
func (o Order) Validate() error {
	switch {
	case o.OrderNo == "":
		return fmt.Errorf("%w: empty order_no", ErrInvalidOrder)
	case o.Amount < 0:
		return fmt.Errorf("%w: negative amount %d", ErrInvalidOrder, o.Amount)
	case !o.Status.Valid():
		return fmt.Errorf("%w: unknown status %q", ErrInvalidOrder, o.Status)
	case !ValidCurrency(o.Currency):
		return fmt.Errorf("%w: invalid currency %q", ErrInvalidOrder, o.Currency)
	}
	return nil
}

// ValidCurrency reports whether c looks like an ISO 4217 code: three upper-case
// letters.
func ValidCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// LookupResult is a channel's verified answer about one order.
type LookupResult struct {
	Status   ChannelStatus
	Amount   int64  // minor units; meaningful when Status is PAID
	Currency string // ISO 4217 upper case; may be empty when the channel omits it
	TxnID    string
	PaidAt   *time.Time
}

// MaxTxnIDLen is the longest channel transaction id recon stores
// (payment_orders.channel_txn_id).
const MaxTxnIDLen = 128

// Validate reports an answer that cannot be true, or cannot be stored, so
// that it is treated as a malformed answer instead of being decided on.
func (r LookupResult) Validate() error {
	switch {
	case !r.Status.Valid():
		return fmt.Errorf("unknown status %q", r.Status)
	case r.Amount < 0:
		return fmt.Errorf("negative amount %d", r.Amount)
	case r.Amount > MaxAmount:
		return fmt.Errorf("amount %d is above the %d minor units recon accepts", r.Amount, MaxAmount)
	case r.Currency != "" && !ValidCurrency(r.Currency):
		return fmt.Errorf("invalid currency %q", r.Currency)
	case len(r.TxnID) > MaxTxnIDLen:
		return fmt.Errorf("transaction id of %d bytes (at most %d)", len(r.TxnID), MaxTxnIDLen)
	case !utf8.ValidString(r.TxnID):
		return fmt.Errorf("transaction id is not valid UTF-8")
	case hasControl(r.TxnID):
		// It is stored, printed and sent to merchants: a control character
		// (a terminal escape, a line break) has no place in an id.
		return fmt.Errorf("transaction id %q holds control characters", r.TxnID)
	case r.PaidAt != nil && (r.PaidAt.Year() < 2000 || r.PaidAt.Year() > 9999):
		// DATETIME holds years 1000-9999; a payment before 2000 is a wrong
		// clock or a zero value.
		return fmt.Errorf("paid at %s is out of range", r.PaidAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// hasControl reports a control character (C0, DEL, C1) in s.
func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// MismatchKind is recon_mismatches.kind.
type MismatchKind string

// The mismatch kinds finance reviews.
const (
	MismatchAmount                 MismatchKind = "AMOUNT_MISMATCH"
	MismatchCurrency               MismatchKind = "CURRENCY_MISMATCH"
	MismatchStatusConflict         MismatchKind = "STATUS_CONFLICT"
	MismatchChannelPaidLocalUnpaid MismatchKind = "CHANNEL_PAID_LOCAL_UNPAID"
	MismatchLocalPaidChannelUnpaid MismatchKind = "LOCAL_PAID_CHANNEL_UNPAID"
	MismatchStuckPending           MismatchKind = "STUCK_PENDING"
	MismatchNotFoundAtChannel      MismatchKind = "NOT_FOUND_AT_CHANNEL"
	// From statement reconciliation (CONTRACT §8).
	MismatchChannelOnly MismatchKind = "CHANNEL_ONLY"
	MismatchLocalOnly   MismatchKind = "LOCAL_ONLY"
	MismatchRefund      MismatchKind = "REFUND_MISMATCH"
	MismatchFee         MismatchKind = "FEE_MISMATCH"
	// MismatchStatementConflict is a statement line the channel's lookup
	// does not confirm (CONTRACT §8: a statement is evidence, the lookup
	// decides), or a line whose transaction id is not the order's.
	MismatchStatementConflict MismatchKind = "STATEMENT_CONFLICT"
	// From refunds (CONTRACT §10); their rows carry the refund number.
	MismatchRefundAmount             MismatchKind = "REFUND_AMOUNT_MISMATCH"
	MismatchRefundAbnormal           MismatchKind = "REFUND_ABNORMAL"
	MismatchRefundStuck              MismatchKind = "REFUND_STUCK"
	MismatchChannelRefundedLocalFail MismatchKind = "CHANNEL_REFUNDED_LOCAL_FAILED"
	MismatchLocalRefundedChannelNot  MismatchKind = "LOCAL_REFUNDED_CHANNEL_NOT"
)

// MismatchKinds lists every kind, in the order reports show them.
var MismatchKinds = []MismatchKind{
	MismatchAmount, MismatchCurrency, MismatchStatusConflict,
	MismatchChannelPaidLocalUnpaid, MismatchLocalPaidChannelUnpaid,
	MismatchStuckPending, MismatchNotFoundAtChannel,
	MismatchChannelOnly, MismatchLocalOnly, MismatchRefund, MismatchFee,
	MismatchStatementConflict,
	MismatchRefundAmount, MismatchRefundAbnormal, MismatchRefundStuck,
	MismatchChannelRefundedLocalFail, MismatchLocalRefundedChannelNot,
}

// Resolution is the finance workflow state of a mismatch.
type Resolution string

// Mismatch resolutions.
const (
	ResolutionOpen         Resolution = "OPEN"
	ResolutionAcknowledged Resolution = "ACKNOWLEDGED"
	ResolutionResolved     Resolution = "RESOLVED"
)

// Mismatch is one discrepancy between the local order and the channel.
type Mismatch struct {
	Kind            MismatchKind
	LocalStatus     Status
	ChannelStatus   ChannelStatus
	LocalAmount     int64
	ChannelAmount   int64
	LocalCurrency   string
	ChannelCurrency string
	ChannelTxnID    string
	Detail          string
	// RefundNo names the refund a mismatch is about ("" for an order's):
	// a refund's mismatches are kept one per (refund, kind).
	RefundNo string
}

// Event is the merchant notification event for a terminal state.
type Event string

// Notification events (merchant_notifications.event).
const (
	EventPaid   Event = "order.paid"
	EventFailed Event = "order.failed"
	EventClosed Event = "order.closed"
)

// EventFor returns the notification event announcing status s.
func EventFor(s Status) Event {
	switch s {
	case StatusPaid:
		return EventPaid
	case StatusFailed:
		return EventFailed
	case StatusClosed:
		return EventClosed
	}
	return ""
}

// Sentinel errors shared by the packages of the module.
var (
	// ErrConflict means a guarded state change found the order no longer in
	// the state it was read in: someone else moved it first.
	ErrConflict = errors.New("order changed concurrently")
	// ErrNotFound means a row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidOrder marks a row with impossible data.
	ErrInvalidOrder = errors.New("invalid order")
)

// Clock tells the time. Jobs and repo take one so tests can control time.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock, in UTC.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// FakeClock is a settable clock for tests. It is safe for concurrent use.
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewFakeClock returns a FakeClock showing t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{t: t.UTC()} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t.UTC()
	c.mu.Unlock()
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
