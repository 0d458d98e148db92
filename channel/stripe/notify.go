package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// SignatureHeader carries a webhook event's signature.
const SignatureHeader = "Stripe-Signature"

// WebhookTolerance is how old a signed event may be: stripe-go's
// webhook.DefaultTolerance, the 300 s CONTRACT §11 names.
const WebhookTolerance = webhook.DefaultTolerance

// EventPaymentIntentPrefix starts the events recon acts on
// (payment_intent.succeeded, .canceled, .payment_failed, .processing, ...).
const EventPaymentIntentPrefix = "payment_intent."

// The refund events recon acts on: refund.created, refund.updated,
// refund.failed, and charge.refund.updated of older API versions; their
// data.object is the Refund.
const (
	EventRefundPrefix        = "refund."
	EventChargeRefundUpdated = "charge.refund.updated"
	// MetadataRefundNo is the metadata key whose value, when the payment
	// service sets it on a refund, is recon's refund_no; without it the
	// refund is found by its re_ id (channel_refund_id).
	MetadataRefundNo = "refund_no"
)

var _ channel.Notifier = (*Client)(nil)

// VerifyNotification verifies and decodes one webhook event (CONTRACT §11)
// with stripe-go's webhook.ConstructEventWithOptions: the Stripe-Signature
// header's v1 HMAC under webhook_secret, its timestamp within
// WebhookTolerance. The API version of the event is not required to be
// stripe-go's own: the endpoint's version is the account's choice, and the
// intent is read field by field, strictly, as a lookup answer is
// (ParsePaymentIntent). A payment_intent.* event names its order by the
// intent id (channel_txn_id) and, when set, metadata.order_no; a refund
// event (refund.*, charge.refund.updated) names its refund by its re_ id
// and, when set, metadata.refund_no; other events are returned Ignored. The event id is the event id.
func (c *Client) VerifyNotification(ctx context.Context, body []byte, header http.Header) (channel.Notification, error) {
	_ = ctx
	if c.cfg.WebhookSecret == "" {
		return channel.Notification{}, fmt.Errorf("stripe %s: webhook_secret is not set", c.cfg.Name)
	}
	n, err := DecodeEvent(body, header.Get(SignatureHeader), c.cfg.WebhookSecret)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("stripe %s: %w", c.cfg.Name, err)
	}
	return n, nil
}

// DecodeEvent verifies a webhook body against its Stripe-Signature value
// sig with secret and decodes it. Signature failures (none, stale, wrong)
// wrap channel.ErrBadSignature; anything unreadable wraps
// channel.ErrMalformed.
func DecodeEvent(body []byte, sig, secret string) (channel.Notification, error) {
	bad := func(format string, args ...any) (channel.Notification, error) {
		return channel.Notification{}, fmt.Errorf("event: %w: %s", channel.ErrMalformed, fmt.Sprintf(format, args...))
	}
	ev, err := webhook.ConstructEventWithOptions(body, sig, secret, webhook.ConstructEventOptions{
		Tolerance: WebhookTolerance, IgnoreAPIVersionMismatch: true,
	})
	if err != nil {
		for _, e := range []error{webhook.ErrInvalidHeader, webhook.ErrNoValidSignature, webhook.ErrNotSigned, webhook.ErrTooOld} {
			if errors.Is(err, e) {
				return channel.Notification{}, fmt.Errorf("event: %w: %v", channel.ErrBadSignature, err)
			}
		}
		return bad("%s", channel.Truncate(err.Error()))
	}
	if ev.ID == "" {
		return bad("no id")
	}
	out := channel.Notification{EventID: ev.ID, Type: string(ev.Type)}
	refund := strings.HasPrefix(string(ev.Type), EventRefundPrefix) || string(ev.Type) == EventChargeRefundUpdated
	if !refund && !strings.HasPrefix(string(ev.Type), EventPaymentIntentPrefix) {
		out.Ignored = true
		return out, nil
	}
	if ev.Data == nil || len(ev.Data.Raw) == 0 {
		return bad("%s without data.object", ev.Type)
	}
	var head struct {
		ID       string            `json:"id"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(ev.Data.Raw, &head); err != nil {
		return bad("data.object: %v", err)
	}
	if refund {
		l, err := ParseRefund(ev.Data.Raw, head.ID)
		if err != nil {
			return channel.Notification{}, fmt.Errorf("event %s: %w", channel.Truncate(ev.ID), err)
		}
		out.Refund, out.RefundKey, out.RefundNo = &l, head.ID, head.Metadata[MetadataRefundNo]
		if err := out.Validate(); err != nil {
			return channel.Notification{}, err
		}
		return out, nil
	}
	in, err := ParsePaymentIntent(ev.Data.Raw, head.ID)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("event %s: %w", channel.Truncate(ev.ID), err)
	}
	r := in.Result()
	if r.Status == recon.ChannelPaid && in.ChargeCreated == nil && ev.Created > 0 {
		// The event of a success is made when the payment succeeds; the
		// intent's own created time is when checkout began.
		paid := time.Unix(ev.Created, 0).UTC()
		r.PaidAt = &paid
	}
	out.TxnKey, out.OrderNo, out.Result = in.ID, head.Metadata[MetadataOrderNo], r
	if err := out.Validate(); err != nil {
		return channel.Notification{}, err
	}
	return out, nil
}
