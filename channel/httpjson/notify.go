package httpjson

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/recon-dev/recon/channel"
)

// NotifyAnswer is the body of a handled notification (CONTRACT §11): the
// protocol's success code.
const NotifyAnswer = `{"code":"0000"}`

var _ channel.Notifier = (*Client)(nil)

// VerifyNotification verifies and decodes one notification (CONTRACT §11):
// the body is a lookup answer's data object (section 6), or a refund lookup
// answer's (section 10: it has "refund"), and X-Signature is
// hex(HMAC-SHA256(secret, body)). A channel without a secret receives no
// notifications: an unsigned one could be anybody's. The protocol has no
// event id, so the event id is a hash of the body (the channel's retries
// repeat the body).
func (c *Client) VerifyNotification(ctx context.Context, body []byte, header http.Header) (channel.Notification, error) {
	_ = ctx
	n, err := DecodeNotification(c.cfg, body, header.Get(SignatureHeader))
	if err != nil {
		return channel.Notification{}, fmt.Errorf("httpjson %s: %w", c.cfg.Name, err)
	}
	return n, nil
}

// DecodeNotification verifies body against its X-Signature value sig under
// cfg.Secret and decodes it under cfg's status map.
func DecodeNotification(cfg Config, body []byte, sig string) (channel.Notification, error) {
	cfg = cfg.withDefaults()
	if cfg.Secret == "" {
		return channel.Notification{}, fmt.Errorf("notification: %w: the channel has no secret to verify it with", channel.ErrBadSignature)
	}
	if err := Verify(cfg.Secret, body, sig); err != nil {
		return channel.Notification{}, fmt.Errorf("notification: %w", err)
	}
	var peek struct {
		Refund *string `json:"refund"`
	}
	if err := json.Unmarshal(body, &peek); err == nil && peek.Refund != nil {
		return decodeRefundNotification(cfg, body)
	}
	var d Data
	if err := json.Unmarshal(body, &d); err != nil {
		return channel.Notification{}, fmt.Errorf("notification: %w: %v: %s", channel.ErrMalformed, err, channel.Snippet(body))
	}
	r, err := d.result(cfg, "notification", body)
	if err != nil {
		return channel.Notification{}, err
	}
	n := channel.Notification{EventID: channel.BodyEventID(body), Type: d.Status, OrderNo: d.Order, Result: r}
	if err := n.Validate(); err != nil {
		return channel.Notification{}, err
	}
	return n, nil
}

// decodeRefundNotification reads a verified refund notification: the data
// object of a refund lookup answer, read as that answer is
// (ParseRefundResponse).
func decodeRefundNotification(cfg Config, body []byte) (channel.Notification, error) {
	var d RefundData
	if err := json.Unmarshal(body, &d); err != nil {
		return channel.Notification{}, fmt.Errorf("notification: %w: %v: %s", channel.ErrMalformed, err, channel.Snippet(body))
	}
	wrapped, err := json.Marshal(RefundResponse{Code: cfg.SuccessCode, Data: &d})
	if err != nil {
		return channel.Notification{}, fmt.Errorf("notification: %w: %v", channel.ErrMalformed, err)
	}
	l, err := ParseRefundResponse(wrapped, d.Refund, "", cfg)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("notification: %w", err)
	}
	n := channel.Notification{EventID: channel.BodyEventID(body), Type: d.Status, OrderNo: d.Order, RefundNo: d.Refund, Refund: &l}
	if err := n.Validate(); err != nil {
		return channel.Notification{}, err
	}
	return n, nil
}
