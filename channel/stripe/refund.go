package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	stripego "github.com/stripe/stripe-go/v82"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Refund statuses (the wire values; stripe-go RefundStatus): "pending,
// requires_action, succeeded, failed, or canceled".
const (
	RefundPending        = string(stripego.RefundStatusPending)
	RefundRequiresAction = string(stripego.RefundStatusRequiresAction)
	RefundSucceeded      = string(stripego.RefundStatusSucceeded)
	RefundFailed         = string(stripego.RefundStatusFailed)
	RefundCanceled       = string(stripego.RefundStatusCanceled)
)

// RefundStatuses maps every refund status to recon's refund answers. A
// refund that requires_action waits for the customer (refund instructions
// for a payment method without native refunds): still pending.
var RefundStatuses = map[string]recon.RefundChannelStatus{
	RefundSucceeded:      recon.RefundChannelSucceeded,
	RefundPending:        recon.RefundChannelPending,
	RefundRequiresAction: recon.RefundChannelPending,
	RefundFailed:         recon.RefundChannelFailed,
	RefundCanceled:       recon.RefundChannelFailed,
}

// LookupRefund retrieves the Refund named by r.ChannelRefundID (GET
// /v1/refunds/{id}, the re_… id Stripe gave the refund, which the payment
// service stores as channel_refund_id). A refund without one cannot be
// looked up: a permanent error naming it, not NOT_FOUND. A missing refund
// (404 resource_missing) is NOT_FOUND; replies are judged as Lookup's are.
func (c *Client) LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	const op = "refund lookup"
	id, err := refundID(r)
	if err != nil {
		return recon.RefundLookup{}, channel.Permanent(c.errorf(op, r.RefundNo, "%w", err))
	}
	rec, sdkErr := c.call(ctx, func(ctx context.Context) error {
		_, err := c.sc.V1Refunds.Retrieve(ctx, id, &stripego.RefundRetrieveParams{})
		return err
	})
	if rec == nil {
		return recon.RefundLookup{}, c.networkError(ctx, op, r.RefundNo, sdkErr)
	}
	if rec.tooLarge {
		return recon.RefundLookup{}, channel.Permanent(c.errorf(op, r.RefundNo, "%w: body larger than %d bytes", channel.ErrMalformed, MaxBodyBytes))
	}
	res, err := DecodeRefund(rec.reply, id, c.cfg.Now())
	if err != nil {
		return recon.RefundLookup{}, c.wrap(op, r.RefundNo, err)
	}
	if rec.reply.StatusCode == http.StatusOK && sdkErr != nil {
		return recon.RefundLookup{}, channel.Permanent(c.errorf(op, r.RefundNo,
			"%w: the Stripe SDK cannot decode the refund: %s", channel.ErrMalformed, snippet(rec.reply.Body)))
	}
	return res, nil
}

// refundID is the Stripe refund id of r.
func refundID(r recon.Refund) (string, error) {
	if r.ChannelRefundID == "" {
		return "", errors.New("refund has no channel_refund_id (the Stripe refund id, re_…): Stripe cannot look it up")
	}
	return objectID(r.ChannelRefundID, "re_", "channel_refund_id", "Refund")
}

// DecodeRefund turns a raw reply about the refund id into an answer or a
// classified error, exactly as Client.LookupRefund does; errors are
// classified as Decode's.
func DecodeRefund(r Reply, id string, now time.Time) (recon.RefundLookup, error) {
	if r.StatusCode == http.StatusOK {
		res, err := ParseRefund(r.Body, id)
		if err != nil {
			return recon.RefundLookup{}, channel.Permanent(err)
		}
		return res, nil
	}
	e := ParseError(r.Body)
	if r.StatusCode == http.StatusNotFound && e != nil && e.Code == CodeResourceMissing {
		return recon.RefundLookup{Status: recon.RefundChannelNotFound}, nil
	}
	return recon.RefundLookup{}, ReplyError(r, e, now)
}

// wireRefund holds the raw fields of a Refund the adapter checks.
type wireRefund struct {
	ID            json.RawMessage `json:"id"`
	Object        json.RawMessage `json:"object"`
	Amount        json.RawMessage `json:"amount"`
	Currency      json.RawMessage `json:"currency"`
	Status        json.RawMessage `json:"status"`
	Created       json.RawMessage `json:"created"`
	FailureReason json.RawMessage `json:"failure_reason"`
	PendingReason json.RawMessage `json:"pending_reason"`
}

// ParseRefund parses a 200 body that must be the Refund id, as strictly as
// ParsePaymentIntent: object "refund", the id asked for, a known status, an
// integer amount, a lower-case three-letter currency, an integer created
// time. A succeeded refund's time is its created time (a Refund carries no
// other); a failed one's failure_reason, a pending one's pending_reason or
// "requires_action" is its Detail. Errors wrap channel.ErrMalformed and
// quote a bounded, redacted snippet of the body.
func ParseRefund(body []byte, id string) (recon.RefundLookup, error) {
	res, err := parseRefund(body, id)
	if err != nil {
		return recon.RefundLookup{}, fmt.Errorf("%w: refund: %v: %s", channel.ErrMalformed, err, snippet(body))
	}
	return res, nil
}

func parseRefund(body []byte, id string) (recon.RefundLookup, error) {
	var w wireRefund
	if err := strictObject(body, &w); err != nil {
		return recon.RefundLookup{}, err
	}
	obj, err := str(w.Object, "object")
	if err != nil {
		return recon.RefundLookup{}, err
	}
	if obj != "refund" {
		return recon.RefundLookup{}, fmt.Errorf("object is %q, not refund", channel.Truncate(obj))
	}
	gotID, err := str(w.ID, "id")
	if err != nil {
		return recon.RefundLookup{}, err
	}
	if gotID != id {
		return recon.RefundLookup{}, fmt.Errorf("answer is about %q, not %q", channel.Truncate(gotID), channel.Truncate(id))
	}
	wire, err := str(w.Status, "status")
	if err != nil {
		return recon.RefundLookup{}, err
	}
	status, ok := RefundStatuses[wire]
	if !ok {
		return recon.RefundLookup{}, fmt.Errorf("unknown status %q", channel.Truncate(wire))
	}
	res := recon.RefundLookup{Status: status, ChannelRefundID: gotID}
	if res.Amount, err = amount(w.Amount, "amount"); err != nil {
		return recon.RefundLookup{}, err
	}
	cur, err := str(w.Currency, "currency")
	if err != nil {
		return recon.RefundLookup{}, err
	}
	if res.Currency, err = currency(cur); err != nil {
		return recon.RefundLookup{}, err
	}
	created, err := unixTime(w.Created, "created")
	if err != nil {
		return recon.RefundLookup{}, err
	}
	reason := func(raw json.RawMessage, name string) (string, error) {
		if isNull(raw) {
			return "", nil
		}
		return str(raw, name)
	}
	switch wire {
	case RefundSucceeded:
		res.SucceededAt = &created
	case RefundFailed, RefundCanceled:
		if res.Detail, err = reason(w.FailureReason, "failure_reason"); err != nil {
			return recon.RefundLookup{}, err
		}
	case RefundPending:
		if res.Detail, err = reason(w.PendingReason, "pending_reason"); err != nil {
			return recon.RefundLookup{}, err
		}
	case RefundRequiresAction:
		res.Detail = RefundRequiresAction
	}
	return res, nil
}
