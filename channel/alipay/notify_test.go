package alipay_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/alipay"
	"github.com/recon-dev/recon/channel/channeltest"
)

// notification is a trade notification as Alipay posts it, signed with
// Alipay's key unless mod changes it afterwards.
func notification(t testing.TB, mod func(url.Values)) url.Values {
	t.Helper()
	v := url.Values{}
	v.Set("notify_time", "2024-03-01 20:00:09")
	v.Set("notify_type", "trade_status_sync")
	v.Set("notify_id", "ac05099524730693a8b330c5ecf72da9786")
	v.Set("app_id", appID)
	v.Set("charset", "utf-8")
	v.Set("version", "1.0")
	v.Set("trade_no", "2024030122001400000000000001")
	v.Set("out_trade_no", "ORD-7")
	v.Set("trade_status", "TRADE_SUCCESS")
	v.Set("total_amount", "88.88")
	v.Set("gmt_payment", "2024-03-01 20:00:05")
	v.Set("subject", "订单 ORD-7")
	if mod != nil {
		mod(v)
	}
	if err := alipay.SignNotification(keys(t).AlipayKey, v); err != nil {
		t.Fatal(err)
	}
	return v
}

func verifyNotification(t testing.TB, body string) (channel.Notification, error) {
	t.Helper()
	c := newClient(t, alipay.DefaultGateway)
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}}
	return c.VerifyNotification(context.Background(), []byte(body), h)
}

func TestNotificationPaid(t *testing.T) {
	n, err := verifyNotification(t, notification(t, nil).Encode())
	if err != nil {
		t.Fatal(err)
	}
	paid := time.Date(2024, 3, 1, 12, 0, 5, 0, time.UTC)
	want := recon.LookupResult{Status: recon.ChannelPaid, Amount: 8888, Currency: "CNY", TxnID: "2024030122001400000000000001", PaidAt: &paid}
	if n.EventID != "ac05099524730693a8b330c5ecf72da9786" || n.OrderNo != "ORD-7" || n.Ignored || !sameResult(n.Result, want) {
		t.Fatalf("got %+v (result %+v), want order ORD-7, %+v", n, n.Result, want)
	}
}

func TestNotificationStatuses(t *testing.T) {
	for status, want := range map[string]recon.ChannelStatus{
		"TRADE_FINISHED": recon.ChannelPaid, "TRADE_CLOSED": recon.ChannelClosed, "WAIT_BUYER_PAY": recon.ChannelPending,
	} {
		n, err := verifyNotification(t, notification(t, func(v url.Values) { v.Set("trade_status", status) }).Encode())
		if err != nil || n.Result.Status != want {
			t.Errorf("%s: got %+v, %v; want %s", status, n.Result, err, want)
		}
	}
}

func TestNotificationRefused(t *testing.T) {
	tampered := notification(t, nil)
	tampered.Set("total_amount", "0.01")
	otherApp := notification(t, func(v url.Values) { v.Set("app_id", "2021000000000000") })
	unsigned := notification(t, nil)
	unsigned.Del("sign")
	twice := notification(t, nil).Encode() + "&total_amount=0.01"
	for name, tc := range map[string]struct {
		body string
		want error
	}{
		"tampered amount": {tampered.Encode(), channel.ErrBadSignature},
		"another app":     {otherApp.Encode(), channel.ErrBadSignature},
		"unsigned":        {unsigned.Encode(), channel.ErrBadSignature},
		"repeated param":  {twice, channel.ErrMalformed},
		"not a form":      {"%zz", channel.ErrMalformed},
		"no notify_id":    {notification(t, func(v url.Values) { v.Del("notify_id") }).Encode(), channel.ErrMalformed},
		"bad status":      {notification(t, func(v url.Values) { v.Set("trade_status", "PAID") }).Encode(), channel.ErrMalformed},
		"bad amount":      {notification(t, func(v url.Values) { v.Set("total_amount", "1.234") }).Encode(), channel.ErrMalformed},
		"unknown cert sn": {notification(t, func(v url.Values) { v.Set("alipay_cert_sn", "abc") }).Encode(), channel.ErrBadSignature},
	} {
		n, err := verifyNotification(t, tc.body)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %+v, %v; want %v", name, n, err, tc.want)
		}
	}
}

// A refund notification names the refund (out_biz_no) and the trade, for
// recon to look the refund up; it carries no answer of its own (refund_fee
// is the trade's refunded total).
func TestNotificationRefundClaim(t *testing.T) {
	n, err := verifyNotification(t, notification(t, func(v url.Values) {
		v.Set("trade_status", "TRADE_CLOSED")
		v.Set("refund_fee", "88.88")
		v.Set("out_biz_no", "RF-1")
	}).Encode())
	if err != nil || !n.RefundClaim || n.Ignored || n.RefundNo != "RF-1" || n.OrderNo != "ORD-7" || n.Refund != nil {
		t.Fatalf("got %+v, %v; want a refund claim for RF-1 of ORD-7", n, err)
	}
	// Without out_biz_no the trade alone names the candidates.
	n, err = verifyNotification(t, notification(t, func(v url.Values) {
		v.Set("refund_fee", "10.00")
		v.Set("gmt_refund", "2024-03-02 10:00:00.123")
	}).Encode())
	if err != nil || !n.RefundClaim || n.RefundNo != "" || n.OrderNo != "ORD-7" {
		t.Fatalf("got %+v, %v; want a refund claim for order ORD-7", n, err)
	}
	// Naming neither is not a notification recon can act on.
	_, err = verifyNotification(t, notification(t, func(v url.Values) {
		v.Set("refund_fee", "10.00")
		v.Del("out_trade_no")
	}).Encode())
	if !errors.Is(err, channel.ErrMalformed) {
		t.Fatalf("got %v, want malformed", err)
	}
	// Another notify_type is still ignored.
	n, err = verifyNotification(t, notification(t, func(v url.Values) { v.Set("notify_type", "other") }).Encode())
	if err != nil || !n.Ignored {
		t.Fatalf("got %+v, %v; want ignored", n, err)
	}
}

// FuzzDecodeNotification feeds arbitrary form bodies to the notification
// decoder: it must never panic, and whatever it accepts must be signed by
// Alipay's key for the channel's app and well formed.
func FuzzDecodeNotification(f *testing.F) {
	f.Add([]byte(notification(f, nil).Encode()))
	f.Add([]byte(notification(f, func(v url.Values) { v.Set("refund_fee", "1.00") }).Encode()))
	f.Add([]byte("a=1&a=2"))
	f.Add([]byte("sign=AAAA&notify_id=x"))
	v, err := alipay.NewNotifyVerifier(alipay.Config{AppID: appID, PrivateKey: keys(f).AlipayAppKey, AlipayPublicKey: &keys(f).AlipayKey.PublicKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := alipay.DecodeNotification(v, appID, body)
		channeltest.CheckNotification(t, n, err)
		if err != nil {
			return
		}
		form, _ := url.ParseQuery(string(body))
		if form.Get("app_id") != appID {
			t.Fatalf("accepted app_id %q", form.Get("app_id"))
		}
	})
}
