package alipay

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	smartalipay "github.com/smartwalle/alipay/v3"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// NotifyTypeTrade is the notify_type of a trade's asynchronous notification
// (smartwalle/alipay NotifyTypeTradeStatusSync).
const NotifyTypeTrade = smartalipay.NotifyTypeTradeStatusSync

// NotifyAnswer is the body Alipay expects from a notification it may stop
// sending: anything else, or another status, makes it retry (the gateway's
// asynchronous-notification rules; smartwalle/alipay ACKNotification
// writes the same 200 "success").
const NotifyAnswer = "success"

var _ channel.Notifier = (*Client)(nil)

// VerifyNotification verifies and decodes one asynchronous notification
// (CONTRACT §11): a form POST whose RSA2 signature covers every parameter
// but sign and sign_type, sorted, URL-decoded, and whose app_id must be the
// channel's. The form is read from the body alone: Alipay signs only the
// posted parameters, and a URL query merged in (as net/http's Request.Form
// does) would change what is verified. Verification is smartwalle/alipay's
// VerifySign with Alipay's public key; it never downloads a certificate
// (the client is built in sandbox mode, where an unknown alipay_cert_sn is
// an error).
//
// notify_id is the event id: Alipay keeps it across the retries of one
// notification. A notification of another notify_type is returned Ignored.
// A notification about a refund (refund_fee, out_biz_no or gmt_refund
// present: Alipay notifies a partial refund as TRADE_SUCCESS and a full one
// as TRADE_CLOSED) says nothing new about the payment, and it cannot settle
// the refund by itself: refund_fee is "总退款金额", the trade's refunded
// total, not this refund's amount (Alipay's asynchronous notification
// parameters, opendocs.alipay.com/open/204/105301; smartwalle/alipay v3
// Notification.RefundFee). It is returned as a RefundClaim naming the
// refund by out_biz_no, "商户业务ID，主要是退款通知中返回退款申请的流水号"
// (the refund's out_request_no, recon's refund_no), and the trade by
// out_trade_no: recon looks the refund up (alipay.trade.fastpay.refund.query)
// and settles it on that answer only.
func (c *Client) VerifyNotification(ctx context.Context, body []byte, header http.Header) (channel.Notification, error) {
	_ = ctx
	if ct := header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/x-www-form-urlencoded") {
		return channel.Notification{}, fmt.Errorf("alipay %s: %w: notification content type %q is not a form", c.cfg.Name, channel.ErrMalformed, channel.Truncate(ct))
	}
	v, err := c.notifyClient()
	if err != nil {
		return channel.Notification{}, fmt.Errorf("alipay %s: notification verifier: %w", c.cfg.Name, err)
	}
	n, err := DecodeNotification(v, c.cfg.AppID, body)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("alipay %s: %w", c.cfg.Name, err)
	}
	return n, nil
}

// notifyClient builds the smartwalle client once, from the channel's keys.
func (c *Client) notifyClient() (*smartalipay.Client, error) {
	c.notifyOnce.Do(func() {
		c.notifier, c.notifyErr = NewNotifyVerifier(c.cfg)
	})
	return c.notifier, c.notifyErr
}

// NewNotifyVerifier returns a smartwalle/alipay client that verifies with
// cfg's Alipay public key. It signs nothing and calls no one: built in
// sandbox mode, it never fetches a certificate named by a notification.
func NewNotifyVerifier(cfg Config) (*smartalipay.Client, error) {
	if cfg.PrivateKey == nil || cfg.AlipayPublicKey == nil {
		return nil, fmt.Errorf("private_key_file and public_key_file are required")
	}
	priv := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(cfg.PrivateKey))
	cl, err := smartalipay.New(cfg.AppID, priv, false)
	if err != nil {
		return nil, fmt.Errorf("private_key_file: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(cfg.AlipayPublicKey)
	if err != nil {
		return nil, fmt.Errorf("public_key_file: %w", err)
	}
	if err := cl.LoadAliPayPublicKey(base64.StdEncoding.EncodeToString(der)); err != nil {
		return nil, fmt.Errorf("public_key_file: %w", err)
	}
	return cl, nil
}

// DecodeNotification verifies the form body of a notification with v and
// decodes it for app appID. A form that does not parse, or misses what a
// notification must carry, wraps channel.ErrMalformed; a signature that does
// not verify, or another app's notification, wraps channel.ErrBadSignature.
func DecodeNotification(v *smartalipay.Client, appID string, body []byte) (channel.Notification, error) {
	bad := func(format string, args ...any) (channel.Notification, error) {
		return channel.Notification{}, fmt.Errorf("notification: %w: %s", channel.ErrMalformed, fmt.Sprintf(format, args...))
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return bad("form does not parse: %v", err)
	}
	for k, vals := range form {
		// One value per parameter: a repeated one is not what Alipay sends,
		// and which of them a reader takes would be ambiguous.
		if len(vals) != 1 {
			return bad("parameter %q appears %d times", channel.Truncate(k), len(vals))
		}
	}
	if form.Get("sign") == "" {
		return channel.Notification{}, fmt.Errorf("notification: %w: no sign", channel.ErrBadSignature)
	}
	n, err := v.DecodeNotification(form)
	if err != nil {
		return channel.Notification{}, fmt.Errorf("notification: %w: %v", channel.ErrBadSignature, err)
	}
	if n.AppId != appID {
		return channel.Notification{}, fmt.Errorf("notification: %w: for app_id %q, not %q", channel.ErrBadSignature, channel.Truncate(n.AppId), appID)
	}
	out := channel.Notification{EventID: n.NotifyId, Type: n.NotifyType, OrderNo: n.OutTradeNo}
	if out.EventID == "" {
		return bad("no notify_id")
	}
	if n.NotifyType != NotifyTypeTrade {
		out.Ignored = true
		return out, nil
	}
	if n.RefundFee != "" || n.OutBizNo != "" || n.GmtRefund != "" {
		if n.OutBizNo == "" && n.OutTradeNo == "" {
			return bad("refund notification without out_biz_no or out_trade_no")
		}
		out.RefundClaim, out.RefundNo = true, n.OutBizNo
		if err := out.Validate(); err != nil {
			return channel.Notification{}, err
		}
		return out, nil
	}
	status, ok := TradeStatus(string(n.TradeStatus))
	if !ok {
		return bad("unknown trade_status %q", channel.Truncate(string(n.TradeStatus)))
	}
	if out.OrderNo == "" {
		return bad("no out_trade_no")
	}
	res := recon.LookupResult{Status: status, TxnID: n.TradeNo, Currency: DefaultCurrency}
	if n.TotalAmount == "" {
		return bad("no total_amount")
	}
	if res.Amount, err = ParseAmount(n.TotalAmount, DefaultCurrency); err != nil {
		return bad("total_amount: %v", err)
	}
	if status == recon.ChannelPaid && n.TradeNo == "" {
		return bad("%s without trade_no", n.TradeStatus)
	}
	if n.GmtPayment != "" {
		t, err := time.ParseInLocation(TimeLayout, n.GmtPayment, Beijing)
		if err != nil {
			return bad("invalid gmt_payment %q", channel.Truncate(n.GmtPayment))
		}
		t = t.UTC()
		res.PaidAt = &t
	}
	out.Result = res
	if err := out.Validate(); err != nil {
		return channel.Notification{}, err
	}
	return out, nil
}

// NotificationContent is the string a notification's signature covers:
// every parameter but sign and sign_type, sorted, as name=value joined by
// &, the values URL-decoded (smartwalle/alipay's encoder, which VerifySign
// uses).
func NotificationContent(form url.Values) []byte {
	pairs := make([]string, 0, len(form))
	for k, vals := range form {
		if k == "sign" || k == "sign_type" {
			continue
		}
		for _, v := range vals {
			pairs = append(pairs, k+"="+v)
		}
	}
	sort.Strings(pairs)
	return []byte(strings.Join(pairs, "&"))
}

// SignNotification signs form as Alipay signs a notification, with key
// (Alipay's private key: the simulator and the tests), setting sign and
// sign_type.
func SignNotification(key *rsa.PrivateKey, form url.Values) error {
	sig, err := Sign(key, NotificationContent(form))
	if err != nil {
		return err
	}
	form.Set("sign", sig)
	form.Set("sign_type", SignType)
	return nil
}
