package stripe_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/channeltest"
	"github.com/recon-dev/recon/channel/stripe"
)

const whsec = "whsec_test_5f3c0b8a1e"

func intentEvent(typ, status string, amountReceived int64, created int64) []byte {
	return []byte(fmt.Sprintf(`{"id":"evt_1PXq2","object":"event","api_version":"2020-08-27","created":%d,"type":%q,"livemode":false,"pending_webhooks":1,`+
		`"data":{"object":{"id":"pi_3Mtw","object":"payment_intent","amount":2000,"amount_received":%d,"currency":"usd","status":%q,`+
		`"created":1700000000,"latest_charge":"ch_3Mtw","last_payment_error":null,"metadata":{"order_no":"ORD-7"}}}}`, created, typ, amountReceived, status))
}

func signedHeader(body []byte, secret string, at time.Time) http.Header {
	p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: at})
	return http.Header{stripe.SignatureHeader: {p.Header}}
}

func webhookClient(t *testing.T, secret string) *stripe.Client {
	t.Helper()
	c, err := stripe.New(stripe.Config{Name: "st", APIKey: "sk_test_x", WebhookSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWebhookSucceeded(t *testing.T) {
	body := intentEvent("payment_intent.succeeded", "succeeded", 2000, 1700000100)
	n, err := webhookClient(t, whsec).VerifyNotification(context.Background(), body, signedHeader(body, whsec, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	paid := time.Unix(1700000100, 0).UTC()
	if n.EventID != "evt_1PXq2" || n.TxnKey != "pi_3Mtw" || n.OrderNo != "ORD-7" || n.Result.Status != recon.ChannelPaid ||
		n.Result.Amount != 2000 || n.Result.Currency != "USD" || n.Result.PaidAt == nil || !n.Result.PaidAt.Equal(paid) {
		t.Fatalf("got %+v (result %+v)", n, n.Result)
	}
}

func TestWebhookStatuses(t *testing.T) {
	for typ, tc := range map[string]struct {
		status string
		want   recon.ChannelStatus
	}{
		"payment_intent.canceled":       {"canceled", recon.ChannelClosed},
		"payment_intent.payment_failed": {"requires_payment_method", recon.ChannelPending},
		"payment_intent.processing":     {"processing", recon.ChannelPending},
	} {
		body := intentEvent(typ, tc.status, 0, 1700000100)
		n, err := webhookClient(t, whsec).VerifyNotification(context.Background(), body, signedHeader(body, whsec, time.Now()))
		if err != nil || n.Result.Status != tc.want || n.Ignored {
			t.Errorf("%s: got %+v, %v; want %s", typ, n.Result, err, tc.want)
		}
	}
	body := []byte(`{"id":"evt_2","object":"event","type":"charge.succeeded","created":1,"data":{"object":{"id":"ch_1","object":"charge"}}}`)
	n, err := webhookClient(t, whsec).VerifyNotification(context.Background(), body, signedHeader(body, whsec, time.Now()))
	if err != nil || !n.Ignored || n.EventID != "evt_2" {
		t.Errorf("charge.succeeded: got %+v, %v; want ignored", n, err)
	}
}

func TestWebhookRefund(t *testing.T) {
	for typ, want := range map[string]recon.RefundChannelStatus{
		"refund.updated": recon.RefundChannelSucceeded, "charge.refund.updated": recon.RefundChannelSucceeded,
	} {
		body := []byte(`{"id":"evt_r1","object":"event","type":"` + typ + `","created":1692942400,"data":{"object":` +
			`{"id":"re_1","object":"refund","amount":1000,"currency":"usd","created":1692942318,"status":"succeeded","metadata":{"refund_no":"RF-1"}}}}`)
		n, err := webhookClient(t, whsec).VerifyNotification(context.Background(), body, signedHeader(body, whsec, time.Now()))
		if err != nil || n.Refund == nil || n.Refund.Status != want || n.Refund.Amount != 1000 || n.Refund.Currency != "USD" ||
			n.RefundKey != "re_1" || n.RefundNo != "RF-1" || n.Ignored {
			t.Errorf("%s: got %+v (refund %+v), %v", typ, n, n.Refund, err)
		}
	}
	body := []byte(`{"id":"evt_r2","object":"event","type":"refund.failed","created":1,"data":{"object":` +
		`{"id":"re_2","object":"refund","amount":1000,"currency":"usd","created":1692942318,"status":"failed","failure_reason":"declined"}}}`)
	n, err := webhookClient(t, whsec).VerifyNotification(context.Background(), body, signedHeader(body, whsec, time.Now()))
	if err != nil || n.Refund == nil || n.Refund.Status != recon.RefundChannelFailed || n.RefundNo != "" || n.RefundKey != "re_2" {
		t.Errorf("refund.failed: got %+v, %v", n, err)
	}
}

func TestWebhookRefused(t *testing.T) {
	body := intentEvent("payment_intent.succeeded", "succeeded", 2000, 1700000100)
	tampered := intentEvent("payment_intent.succeeded", "succeeded", 1, 1700000100)
	bad := []byte(`{"id":"evt_3","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent","amount":"x"}}}`)
	for name, tc := range map[string]struct {
		body []byte
		h    http.Header
		want error
	}{
		"older than 300s": {body, signedHeader(body, whsec, time.Now().Add(-301*time.Second)), channel.ErrBadSignature},
		"another secret":  {body, signedHeader(body, "whsec_other", time.Now()), channel.ErrBadSignature},
		"tampered":        {tampered, signedHeader(body, whsec, time.Now()), channel.ErrBadSignature},
		"unsigned":        {body, http.Header{}, channel.ErrBadSignature},
		"bad intent":      {bad, signedHeader(bad, whsec, time.Now()), channel.ErrMalformed},
	} {
		n, err := webhookClient(t, whsec).VerifyNotification(context.Background(), tc.body, tc.h)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %+v, %v; want %v", name, n, err, tc.want)
		}
	}
	if _, err := stripe.New(stripe.Config{APIKey: "sk_test_x", WebhookSecret: "sk_test_y"}); err == nil {
		t.Error("a webhook_secret that is no whsec_ was accepted")
	}
}

// FuzzDecodeEvent signs whatever body the fuzzer makes, so decoding after
// verification is explored: no panic, and whatever is accepted is valid.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(intentEvent("payment_intent.succeeded", "succeeded", 2000, 1700000100))
	f.Add([]byte(`{"id":"evt_1","type":"payment_intent.succeeded","data":null}`))
	f.Add([]byte(`{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":[]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := signedHeader(body, whsec, time.Now())
		n, err := stripe.DecodeEvent(body, h.Get(stripe.SignatureHeader), whsec)
		channeltest.CheckNotification(t, n, err)
	})
}
