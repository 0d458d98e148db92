package wechatpay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/channel/wechatpay"
)

const apiV3Key = "0123456789abcdef0123456789ABCDEF"

const paidResource = `{"mchid":"1900000001","appid":"wxd678efh567hg6787","out_trade_no":"ORD-7","transaction_id":"4200000000202603010000000001",` +
	`"trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"CMC","success_time":"2026-03-01T20:00:05+08:00",` +
	`"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":8888,"payer_total":8888,"currency":"CNY","payer_currency":"CNY"}}`

func notifyClient(t *testing.T, keys simulator.Keys) *wechatpay.Client {
	t.Helper()
	cfg := testConfig(keys, "https://api.mch.weixin.qq.com")
	cfg.APIv3Key = apiV3Key
	c, err := wechatpay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func build(t testing.TB, keys simulator.Keys, event, resource string, at time.Time) ([]byte, http.Header) {
	t.Helper()
	body, h, err := wechatpay.BuildNotification(keys.WechatPlatformKey, keys.WechatPlatformKeyID, apiV3Key,
		"EV-2b5e6c1e-6f0a-5e6b-9c3d-000000000001", event, []byte(resource), at)
	if err != nil {
		t.Fatal(err)
	}
	return body, h
}

func TestNotificationPaid(t *testing.T) {
	keys := testKeys(t)
	body, h := build(t, keys, wechatpay.EventTransactionSuccess, paidResource, time.Now())
	n, err := notifyClient(t, keys).VerifyNotification(context.Background(), body, h)
	if err != nil {
		t.Fatal(err)
	}
	paid := time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC)
	if n.EventID != "EV-2b5e6c1e-6f0a-5e6b-9c3d-000000000001" || n.OrderNo != "ORD-7" || n.Ignored ||
		n.Result.Status != recon.ChannelPaid || n.Result.Amount != 8888 || n.Result.Currency != "CNY" ||
		n.Result.TxnID != "4200000000202603010000000001" || n.Result.PaidAt == nil || !n.Result.PaidAt.Equal(paid) {
		t.Fatalf("got %+v (result %+v)", n, n.Result)
	}
}

func TestNotificationRefused(t *testing.T) {
	keys := testKeys(t)
	c := notifyClient(t, keys)
	good, gh := build(t, keys, wechatpay.EventTransactionSuccess, paidResource, time.Now())
	stale, sh := build(t, keys, wechatpay.EventTransactionSuccess, paidResource, time.Now().Add(-6*time.Minute))
	otherMch, oh := build(t, keys, wechatpay.EventTransactionSuccess,
		`{"mchid":"1900000002","out_trade_no":"ORD-7","transaction_id":"42","trade_state":"SUCCESS","amount":{"total":1,"currency":"CNY"}}`, time.Now())
	wrongSerial := gh.Clone()
	wrongSerial.Set("Wechatpay-Serial", "PUB_KEY_ID_OTHER")
	tampered := append([]byte{}, good...)
	tampered[len(tampered)-2] = ' '
	// A body signed correctly but without a resource: wechatpay-go's
	// handler would dereference a nil resource.
	noResource := []byte(`{"id":"EV-1","event_type":"TRANSACTION.SUCCESS"}`)
	nh := http.Header{}
	if err := wechatpay.SignResponse(nh, keys.WechatPlatformKey, keys.WechatPlatformKeyID, time.Now().Unix(), "N1", noResource); err != nil {
		t.Fatal(err)
	}
	badAmount, bh := build(t, keys, wechatpay.EventTransactionSuccess,
		`{"mchid":"1900000001","out_trade_no":"ORD-7","transaction_id":"42","trade_state":"SUCCESS","amount":{"total":-1,"currency":"CNY"}}`, time.Now())
	for name, tc := range map[string]struct {
		body []byte
		h    http.Header
		want error
	}{
		"stale timestamp": {stale, sh, channel.ErrBadSignature},
		"wrong serial":    {good, wrongSerial, channel.ErrBadSignature},
		"tampered body":   {tampered, gh, channel.ErrBadSignature},
		"unsigned":        {good, http.Header{}, channel.ErrBadSignature},
		"other merchant":  {otherMch, oh, channel.ErrBadSignature},
		"no resource":     {noResource, nh, channel.ErrMalformed},
		"bad amount":      {badAmount, bh, channel.ErrMalformed},
	} {
		n, err := c.VerifyNotification(context.Background(), tc.body, tc.h)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %+v, %v; want %v", name, n, err, tc.want)
		}
	}
	// Another APIv3 key cannot open the resource.
	cfg := testConfig(keys, "https://api.mch.weixin.qq.com")
	cfg.APIv3Key = "ffffffffffffffffffffffffffffffff"
	other, err := wechatpay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.VerifyNotification(context.Background(), good, gh); !errors.Is(err, channel.ErrMalformed) {
		t.Errorf("another api_v3_key: got %v, want a malformed notification", err)
	}
}

func TestNotificationRefund(t *testing.T) {
	keys := testKeys(t)
	body, h := build(t, keys, "REFUND.SUCCESS", `{"mchid":"1900000001","transaction_id":"4200000000202603010000000001","out_trade_no":"ORD-7",`+
		`"refund_id":"50000000382019052709732678859","out_refund_no":"RF-1","refund_status":"SUCCESS","success_time":"2026-03-01T20:30:00+08:00",`+
		`"user_received_account":"招商银行信用卡0403","amount":{"total":8888,"refund":500,"payer_total":8888,"payer_refund":500}}`, time.Now())
	n, err := notifyClient(t, keys).VerifyNotification(context.Background(), body, h)
	if err != nil {
		t.Fatal(err)
	}
	if n.Ignored || n.Refund == nil || n.RefundNo != "RF-1" || n.OrderNo != "ORD-7" || n.Refund.Status != recon.RefundChannelSucceeded ||
		n.Refund.Amount != 500 || n.Refund.Currency != "CNY" || n.Refund.ChannelRefundID != "50000000382019052709732678859" || n.Refund.SucceededAt == nil {
		t.Fatalf("got %+v (refund %+v)", n, n.Refund)
	}
	body, h = build(t, keys, "REFUND.CLOSED", `{"mchid":"1900000001","out_trade_no":"ORD-7","out_refund_no":"RF-2","refund_status":"CLOSED"}`, time.Now())
	if n, err := notifyClient(t, keys).VerifyNotification(context.Background(), body, h); err != nil || n.Refund == nil || n.Refund.Status != recon.RefundChannelFailed {
		t.Fatalf("closed refund: %+v, %v", n, err)
	}
	body, h = build(t, keys, "REFUND.SUCCESS", `{"mchid":"1900000009","out_refund_no":"RF-3","refund_status":"SUCCESS"}`, time.Now())
	if _, err := notifyClient(t, keys).VerifyNotification(context.Background(), body, h); !errors.Is(err, channel.ErrBadSignature) {
		t.Fatalf("another merchant's refund: %v", err)
	}
}

func TestAPIv3KeyLength(t *testing.T) {
	cfg := testConfig(testKeys(t), "https://api.mch.weixin.qq.com")
	cfg.APIv3Key = "short"
	if _, err := wechatpay.New(cfg); err == nil {
		t.Fatal("a 5-byte api_v3_key was accepted")
	}
}

// FuzzDecodeNotification signs whatever body the fuzzer makes (as WeChat Pay
// would), so the decoding after verification is explored: it must never
// panic, and whatever it accepts is a valid notification of the merchant.
func FuzzDecodeNotification(f *testing.F) {
	keys, err := simulator.TestKeys()
	if err != nil {
		f.Fatal(err)
	}
	good, _ := build(f, keys, wechatpay.EventTransactionSuccess, paidResource, time.Now())
	f.Add(good, []byte(paidResource))
	f.Add([]byte(`{"id":"x","event_type":"TRANSACTION.SUCCESS","resource":null}`), []byte(`{}`))
	f.Add([]byte(`{"id":"x","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"AAAA","nonce":"123456789012"}}`), []byte(`[]`))
	// A nonce of any length but 12 bytes made the library's GCM panic.
	f.Add([]byte(`{"id":"x","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","nonce":"12345"}}`), []byte(`[1]`))
	f.Fuzz(func(t *testing.T, body, plaintext []byte) {
		// Half the cases: an envelope around the fuzzer's plaintext,
		// encrypted properly, so the transaction reader is reached too.
		if len(plaintext)%2 == 0 {
			res, err := wechatpay.EncryptResource(apiV3Key, plaintext, "transaction", "123456789012")
			if err != nil {
				t.Fatal(err)
			}
			body, _ = json.Marshal(map[string]any{"id": "EV-1", "event_type": wechatpay.EventTransactionSuccess, "resource": res})
		}
		h := http.Header{}
		if err := wechatpay.SignResponse(h, keys.WechatPlatformKey, keys.WechatPlatformKeyID, time.Now().Unix(), "NONCE", body); err != nil {
			t.Fatal(err)
		}
		n, err := wechatpay.DecodeNotification(context.Background(), keys.WechatPlatformKeyID, keys.WechatPlatformKey.PublicKey, apiV3Key, testMch, body, h)
		channeltest.CheckNotification(t, n, err)
	})
}
