package recon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Notification is the body POSTed to a merchant (CONTRACT §5).
type Notification struct {
	ID        string           `json:"id"`
	Event     Event            `json:"event"`
	CreatedAt time.Time        `json:"created_at"`
	Data      NotificationData `json:"data"`
}

// NotificationData describes the order in a Notification.
type NotificationData struct {
	OrderNo      string     `json:"order_no"`
	MerchantID   string     `json:"merchant_id"`
	Status       Status     `json:"status"`
	Amount       int64      `json:"amount"`
	Currency     string     `json:"currency"`
	Channel      string     `json:"channel"`
	ChannelTxnID string     `json:"channel_txn_id"`
	PaidAt       *time.Time `json:"paid_at,omitempty"`
}

// NotificationID is the stable id of the notification of event for an order:
// derived from the order number and event, so every writer that enqueues it
// computes the same id and a duplicate is ignored by the outbox's unique key.
func NotificationID(orderNo string, e Event) string {
	sum := sha256.Sum256([]byte(orderNo + "\x00" + string(e)))
	return "ntf_" + hex.EncodeToString(sum[:12])
}

// NewNotification builds the notification announcing that o moved to status
// to, with the channel's transaction id and paid time.
func NewNotification(o Order, to Status, txnID string, paidAt *time.Time, now time.Time) Notification {
	e := EventFor(to)
	if txnID == "" {
		txnID = o.ChannelTxnID
	}
	var pa *time.Time
	if to == StatusPaid && paidAt != nil {
		t := paidAt.UTC()
		pa = &t
	}
	return Notification{
		ID:        NotificationID(o.OrderNo, e),
		Event:     e,
		CreatedAt: now.UTC(),
		Data: NotificationData{
			OrderNo: o.OrderNo, MerchantID: o.MerchantID, Status: to,
			Amount: o.Amount, Currency: o.Currency, Channel: o.Channel,
			ChannelTxnID: txnID, PaidAt: pa,
		},
	}
}

// Payload is the exact JSON body sent to the merchant.
func (n Notification) Payload() []byte {
	b, _ := json.Marshal(n) // a struct of strings, ints and times always marshals
	return b
}

// RefundNotification is the body POSTed to a merchant about a refund
// (CONTRACT §10): the envelope of Notification, the refund in data.
type RefundNotification struct {
	ID        string                 `json:"id"`
	Event     Event                  `json:"event"`
	CreatedAt time.Time              `json:"created_at"`
	Data      RefundNotificationData `json:"data"`
}

// RefundNotificationData describes the refund in a RefundNotification.
type RefundNotificationData struct {
	RefundNo        string       `json:"refund_no"`
	OrderNo         string       `json:"order_no"`
	MerchantID      string       `json:"merchant_id"`
	Status          RefundStatus `json:"status"`
	Amount          int64        `json:"amount"`
	Currency        string       `json:"currency"`
	Channel         string       `json:"channel"`
	ChannelRefundID string       `json:"channel_refund_id"`
	SucceededAt     *time.Time   `json:"succeeded_at,omitempty"`
}

// NewRefundNotification builds the notification announcing that refund r
// moved to status to, with the channel's refund id and success time. Its id
// is derived from the refund number and event, so a duplicate is ignored by
// the outbox's unique key as for orders.
func NewRefundNotification(r Refund, to RefundStatus, refundID string, succeededAt *time.Time, now time.Time) RefundNotification {
	e := RefundEventFor(to)
	if refundID == "" {
		refundID = r.ChannelRefundID
	}
	var sa *time.Time
	if to == RefundSucceeded && succeededAt != nil {
		t := succeededAt.UTC()
		sa = &t
	}
	return RefundNotification{
		ID:        NotificationID("refund\x00"+r.RefundNo, e),
		Event:     e,
		CreatedAt: now.UTC(),
		Data: RefundNotificationData{
			RefundNo: r.RefundNo, OrderNo: r.OrderNo, MerchantID: r.MerchantID, Status: to,
			Amount: r.Amount, Currency: r.Currency, Channel: r.Channel,
			ChannelRefundID: refundID, SucceededAt: sa,
		},
	}
}

// Payload is the exact JSON body sent to the merchant.
func (n RefundNotification) Payload() []byte {
	b, _ := json.Marshal(n) // a struct of strings, ints and times always marshals
	return b
}
