package channel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/recon-dev/recon"
)

// Notifier is implemented by channels whose asynchronous notifications
// (callbacks) recon receives (CONTRACT §11). Like Closer it is optional.
type Notifier interface {
	// VerifyNotification verifies one notification as it arrived (the raw
	// body and the request headers) and decodes it. It reads no database
	// and calls no one. A notification whose signature is missing or wrong
	// wraps ErrBadSignature; one that cannot be read wraps ErrMalformed.
	// A verified notification about something recon does not act on is
	// returned with Ignored set.
	VerifyNotification(ctx context.Context, body []byte, header http.Header) (Notification, error)
}

// Notification is a verified notification about one payment, decoded into
// the shape of a lookup answer.
type Notification struct {
	// EventID identifies the notification, the same on each of the
	// channel's retries (Alipay notify_id, WeChat Pay id, Stripe event id,
	// else BodyEventID of the body).
	EventID string
	// Type is the channel's event or notification type, for logs.
	Type string
	// OrderNo is the merchant order number (out_trade_no); "" when the
	// channel names the order by TxnKey only.
	OrderNo string
	// TxnKey is the order's channel_txn_id when the channel names the
	// order by it (a Stripe PaymentIntent id).
	TxnKey string
	// Result is what the notification says about the order.
	Result recon.LookupResult
	// Refund, when set, makes this a notification about a refund (CONTRACT
	// §10, §11): RefundNo is its refund number (out_refund_no), RefundKey
	// its channel_refund_id where the channel names it by that (Stripe's
	// re_ id), and Result is unused.
	Refund    *recon.RefundLookup
	RefundNo  string
	RefundKey string
	// RefundClaim, when set, makes this a notification that a refund was
	// made without being a refund's answer (Alipay's: its refund_fee is the
	// trade's refunded total, not the refund's amount): recon looks the
	// refund up at once through the channel's verified refund lookup and
	// decides on that answer alone. RefundNo names the refund; when it is
	// "", the PENDING refunds of order OrderNo are the candidates. Refund
	// and Result are unused.
	RefundClaim bool
	// Ignored marks a verified notification recon does not act on; it is
	// recorded and answered as handled.
	Ignored bool
}

// MaxEventIDLen is the longest event id recon stores
// (recon_callbacks.event_id).
const MaxEventIDLen = 128

// Validate reports a decoded notification that cannot be acted on or
// stored. Every error wraps ErrMalformed.
func (n Notification) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: notification: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	switch {
	case n.EventID == "" || len(n.EventID) > MaxEventIDLen || !utf8.ValidString(n.EventID):
		return bad("event id of %d bytes (1 to %d of UTF-8)", len(n.EventID), MaxEventIDLen)
	case n.Ignored:
		return nil
	case n.RefundClaim:
		if n.RefundNo == "" && n.OrderNo == "" {
			return bad("names no refund and no order")
		}
		if len(n.RefundNo) > 64 || !utf8.ValidString(n.RefundNo) || len(n.OrderNo) > 64 || !utf8.ValidString(n.OrderNo) {
			return bad("refund number of %d bytes, order number of %d", len(n.RefundNo), len(n.OrderNo))
		}
		return nil
	case n.Refund != nil:
		if n.RefundNo == "" && n.RefundKey == "" {
			return bad("names no refund")
		}
		if len(n.RefundNo) > 64 || !utf8.ValidString(n.RefundNo) || len(n.RefundKey) > recon.MaxTxnIDLen {
			return bad("refund number of %d bytes", len(n.RefundNo))
		}
		if err := n.Refund.Validate(); err != nil {
			return bad("%v", err)
		}
		return nil
	case n.OrderNo == "" && n.TxnKey == "":
		return bad("names no order")
	case len(n.OrderNo) > 64 || !utf8.ValidString(n.OrderNo):
		return bad("order number of %d bytes", len(n.OrderNo))
	case len(n.TxnKey) > recon.MaxTxnIDLen:
		return bad("transaction key of %d bytes", len(n.TxnKey))
	}
	if err := n.Result.Validate(); err != nil {
		return bad("%v", err)
	}
	return nil
}

// BodyEventID is the event id of a notification that carries none of its
// own: the hex SHA-256 of its body, so the channel's retries of the same
// body share it.
func BodyEventID(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}
