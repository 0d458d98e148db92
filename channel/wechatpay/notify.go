package wechatpay

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/validators"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Notification event types recon reads (WeChat Pay's payment and refund
// notifications name their event_type so).
const (
	EventTransactionSuccess = "TRANSACTION.SUCCESS"
	// EventRefundPrefix starts the refund events (REFUND.SUCCESS,
	// REFUND.ABNORMAL, REFUND.CLOSED).
	EventRefundPrefix = "REFUND."
	// ResourceAlgorithm is the only resource cipher WeChat Pay uses.
	ResourceAlgorithm = "AEAD_AES_256_GCM"
	// resourceNonceSize is AES-GCM's nonce length, the only one it takes.
	resourceNonceSize = 12
)

// NotifyFailure is the JSON body of a refused notification: WeChat Pay
// retries a notification answered with a 4xx or 5xx and this body, and
// stops on 200 or 204 (its notification rules; CONTRACT §11).
func NotifyFailure(message string) []byte {
	b, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{"FAIL", message})
	return b
}

// envelope is the outer notification body.
type envelope struct {
	ID        string          `json:"id"`
	EventType string          `json:"event_type"`
	Resource  json.RawMessage `json:"resource"`
}

// Resource is the encrypted part of a notification.
type Resource struct {
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
	OriginalType   string `json:"original_type"`
}

var _ channel.Notifier = (*Client)(nil)

// VerifyNotification verifies and decodes one notification (CONTRACT §11)
// with wechatpay-go's notify handler (notify.NewRSANotifyHandler and
// ParseNotifyRequest): Wechatpay-Signature over "timestamp\nnonce\nbody\n"
// with the key Wechatpay-Serial names (the channel's public_key_id),
// Wechatpay-Timestamp within five minutes of now, and the resource opened
// with AEAD_AES_256_GCM under api_v3_key. A TRANSACTION.SUCCESS resource
// is a transaction, read as a lookup answer is (ParseTransaction) for the
// channel's mch_id; refund events and others are returned Ignored. The
// notification's id is its event id.
func (c *Client) VerifyNotification(ctx context.Context, body []byte, header http.Header) (channel.Notification, error) {
	n, err := DecodeNotification(ctx, c.cfg.PublicKeyID, *c.cfg.PublicKey, c.cfg.APIv3Key, c.cfg.MchID, body, header)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("wechatpay %s: %w", c.cfg.Name, err)
	}
	return n, nil
}

// DecodeNotification is VerifyNotification with the channel's settings
// given: the platform key and its ID, the APIv3 key and the merchant.
func DecodeNotification(ctx context.Context, keyID string, key rsa.PublicKey, apiV3Key, mchID string, body []byte, header http.Header) (channel.Notification, error) {
	bad := func(format string, args ...any) (channel.Notification, error) {
		return channel.Notification{}, fmt.Errorf("notification: %w: %s", channel.ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(apiV3Key) != 32 {
		return channel.Notification{}, errors.New("notification: api_v3_key is not set (32 bytes)")
	}
	verifier := verifiers.NewSHA256WithRSAPubkeyVerifier(keyID, key)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		return bad("%v", err)
	}
	req.Header = header.Clone()
	// The signature first, on its own, so that a forged notification is
	// told from a malformed one (the handler's errors are plain text).
	if err := validators.NewWechatPayNotifyValidator(verifier).Validate(ctx, req); err != nil {
		return channel.Notification{}, fmt.Errorf("notification: %w: %s", channel.ErrBadSignature, firstLine(err))
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return bad("%v", err)
	}
	var res Resource
	// The handler dereferences the resource unchecked: a signed body
	// without one must not reach it.
	if len(bytes.TrimSpace(env.Resource)) == 0 || json.Unmarshal(env.Resource, &res) != nil || res.Ciphertext == "" {
		return bad("no resource")
	}
	// The handler also hands the nonce to GCM unchecked, and GCM panics on
	// any length but its own (12 bytes).
	if res.Algorithm != ResourceAlgorithm {
		return bad("resource algorithm %q, want %s", channel.Truncate(res.Algorithm), ResourceAlgorithm)
	}
	if len(res.Nonce) != resourceNonceSize {
		return bad("resource nonce of %d bytes, want %d", len(res.Nonce), resourceNonceSize)
	}
	if env.ID == "" {
		return bad("no id")
	}
	h, err := notify.NewRSANotifyHandler(apiV3Key, verifier)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("notification handler: %w", err)
	}
	var plain json.RawMessage
	parsed, err := h.ParseNotifyRequest(ctx, req, &plain)
	if err != nil {
		return bad("%s", firstLine(err))
	}
	out := channel.Notification{EventID: parsed.ID, Type: parsed.EventType}
	if strings.HasPrefix(parsed.EventType, EventRefundPrefix) {
		return decodeRefundNotification(out, plain, mchID)
	}
	if parsed.EventType != EventTransactionSuccess {
		out.Ignored = true
		return out, nil
	}
	var t Transaction
	if err := json.Unmarshal(plain, &t); err != nil {
		return bad("resource: %v", err)
	}
	if t.MchID != mchID {
		return channel.Notification{}, fmt.Errorf("notification: %w: for mchid %q, not %q", channel.ErrBadSignature, channel.Truncate(t.MchID), mchID)
	}
	if t.OutTradeNo == "" {
		return bad("resource has no out_trade_no")
	}
	r, err := ParseTransaction(plain, t.OutTradeNo, mchID)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("notification: %w", err)
	}
	out.OrderNo, out.Result = t.OutTradeNo, r
	if err := out.Validate(); err != nil {
		return channel.Notification{}, err
	}
	return out, nil
}

// firstLine is an error's text without what follows a newline or the
// request dump wechatpay-go appends, so that no header or body is logged.
func firstLine(err error) string {
	s := err.Error()
	if i := strings.Index(s, ", request:"); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return channel.Truncate(s)
}

// EncryptResource encrypts plaintext as WeChat Pay encrypts a
// notification's resource: AEAD_AES_256_GCM under apiV3Key with nonce (12
// bytes) and associatedData, the ciphertext (with its tag) in base64. The
// simulator and the tests use it.
func EncryptResource(apiV3Key string, plaintext []byte, associatedData, nonce string) (Resource, error) {
	block, err := aes.NewCipher([]byte(apiV3Key))
	if err != nil {
		return Resource{}, fmt.Errorf("api_v3_key: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return Resource{}, err
	}
	if len(nonce) != gcm.NonceSize() {
		return Resource{}, fmt.Errorf("nonce of %d bytes, want %d", len(nonce), gcm.NonceSize())
	}
	ct := gcm.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return Resource{Algorithm: ResourceAlgorithm, Ciphertext: base64.StdEncoding.EncodeToString(ct),
		AssociatedData: associatedData, Nonce: nonce, OriginalType: "transaction"}, nil
}

// BuildNotification renders a notification as WeChat Pay posts it: event
// id and eventType, plaintext encrypted under apiV3Key into the resource,
// the body signed at time at with the platform key known as keyID. The
// simulator and the tests use it.
func BuildNotification(key *rsa.PrivateKey, keyID, apiV3Key, id, eventType string, plaintext []byte, at time.Time) ([]byte, http.Header, error) {
	nonce := NewNonce()
	res, err := EncryptResource(apiV3Key, plaintext, "transaction", nonce[:12])
	if err != nil {
		return nil, nil, err
	}
	summary := "支付成功"
	if strings.HasPrefix(eventType, EventRefundPrefix) {
		res.OriginalType, summary = "refund", "退款状态变更"
	}
	body, err := json.Marshal(struct {
		ID           string   `json:"id"`
		CreateTime   string   `json:"create_time"`
		ResourceType string   `json:"resource_type"`
		EventType    string   `json:"event_type"`
		Summary      string   `json:"summary"`
		Resource     Resource `json:"resource"`
	}{id, at.In(chinaTime).Format(time.RFC3339), "encrypt-resource", eventType, summary, res})
	if err != nil {
		return nil, nil, err
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if err := SignResponse(h, key, keyID, at.Unix(), NewNonce(), body); err != nil {
		return nil, nil, err
	}
	return body, h, nil
}

// refundNotice is the resource of a refund notification: a refund as the
// query answers it, but for its status, named refund_status there.
type refundNotice struct {
	MchID        string `json:"mchid"`
	OutRefundNo  string `json:"out_refund_no"`
	OutTradeNo   string `json:"out_trade_no"`
	RefundStatus string `json:"refund_status"`
}

// decodeRefundNotification reads a REFUND.* resource (REFUND.SUCCESS,
// REFUND.ABNORMAL, REFUND.CLOSED) for merchant mchID with the refund
// query's reader (ParseRefund). Its amount carries no currency: WeChat Pay
// refunds only in CNY.
func decodeRefundNotification(out channel.Notification, plain []byte, mchID string) (channel.Notification, error) {
	bad := func(format string, args ...any) (channel.Notification, error) {
		return channel.Notification{}, fmt.Errorf("notification: %w: %s", channel.ErrMalformed, fmt.Sprintf(format, args...))
	}
	var rn refundNotice
	if err := json.Unmarshal(plain, &rn); err != nil {
		return bad("resource: %v", err)
	}
	if rn.MchID != mchID {
		return channel.Notification{}, fmt.Errorf("notification: %w: for mchid %q, not %q", channel.ErrBadSignature, channel.Truncate(rn.MchID), mchID)
	}
	if rn.OutRefundNo == "" {
		return bad("resource has no out_refund_no")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(plain, &fields); err != nil {
		return bad("resource: %v", err)
	}
	status, _ := json.Marshal(rn.RefundStatus)
	fields["status"] = status
	asQuery, err := json.Marshal(fields)
	if err != nil {
		return bad("resource: %v", err)
	}
	l, err := ParseRefund(asQuery, rn.OutRefundNo, rn.OutTradeNo)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("notification: %w", err)
	}
	if l.Currency == "" && l.Status == recon.RefundChannelSucceeded {
		l.Currency = "CNY"
	}
	out.Refund, out.RefundNo, out.OrderNo = &l, rn.OutRefundNo, rn.OutTradeNo
	if err := out.Validate(); err != nil {
		return channel.Notification{}, err
	}
	return out, nil
}
