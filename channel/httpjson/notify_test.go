package httpjson_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
)

func notifyClient(t *testing.T, secret string) *httpjson.Client {
	t.Helper()
	c, err := httpjson.New(httpjson.Config{Name: "hj", BaseURL: "https://pay.example.com", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNotification(t *testing.T) {
	body := []byte(`{"order":"ORD-7","status":"PAID","amount":100,"currency":"cny","txn_id":"T123","paid_at":"2026-03-01T12:00:05Z"}`)
	h := http.Header{httpjson.SignatureHeader: {httpjson.Sign("s3cret", body)}}
	n, err := notifyClient(t, "s3cret").VerifyNotification(context.Background(), body, h)
	if err != nil {
		t.Fatal(err)
	}
	if n.OrderNo != "ORD-7" || n.Result.Status != recon.ChannelPaid || n.Result.Amount != 100 || n.Result.Currency != "CNY" ||
		n.Result.TxnID != "T123" || n.EventID != channel.BodyEventID(body) {
		t.Fatalf("got %+v", n)
	}
	refund := []byte(`{"refund":"RF-1","order":"ORD-7","status":"SUCCEEDED","amount":40,"currency":"CNY","refund_txn_id":"RT1","succeeded_at":"2026-03-01T12:00:05Z"}`)
	rn, err := notifyClient(t, "s3cret").VerifyNotification(context.Background(), refund, http.Header{httpjson.SignatureHeader: {httpjson.Sign("s3cret", refund)}})
	if err != nil || rn.Refund == nil || rn.RefundNo != "RF-1" || rn.Refund.Status != recon.RefundChannelSucceeded || rn.Refund.Amount != 40 {
		t.Fatalf("refund notification: %+v, %v", rn, err)
	}
	for name, tc := range map[string]struct {
		secret string
		body   string
		sig    string
		want   error
	}{
		"wrong signature": {"s3cret", string(body), httpjson.Sign("other", body), channel.ErrBadSignature},
		"no secret":       {"", string(body), httpjson.Sign("", body), channel.ErrBadSignature},
		"paid, no amount": {"s3cret", `{"order":"O","status":"PAID"}`, httpjson.Sign("s3cret", []byte(`{"order":"O","status":"PAID"}`)), channel.ErrMalformed},
		"no order":        {"s3cret", `{"status":"FAILED"}`, httpjson.Sign("s3cret", []byte(`{"status":"FAILED"}`)), channel.ErrMalformed},
		"empty refund":    {"s3cret", `{"refund":"","status":"FAILED"}`, httpjson.Sign("s3cret", []byte(`{"refund":"","status":"FAILED"}`)), channel.ErrMalformed},
	} {
		c, err := httpjson.New(httpjson.Config{Name: "hj", BaseURL: "https://pay.example.com", Secret: tc.secret})
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.VerifyNotification(context.Background(), []byte(tc.body), http.Header{httpjson.SignatureHeader: {tc.sig}})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %+v, %v; want %v", name, n, err, tc.want)
		}
	}
}

// FuzzDecodeNotification signs whatever body the fuzzer makes: decoding
// must not panic, and whatever it accepts is a valid notification.
func FuzzDecodeNotification(f *testing.F) {
	f.Add([]byte(`{"order":"ORD-7","status":"PAID","amount":100,"currency":"CNY","txn_id":"T","paid_at":"2026-03-01T12:00:05Z"}`))
	f.Add([]byte(`{"order":"","status":"CLOSED"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"refund":"RF-1","status":"SUCCEEDED","amount":1,"currency":"CNY"}`))
	cfg := httpjson.Config{Name: "hj", BaseURL: "https://pay.example.com", Secret: "s3cret"}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := httpjson.DecodeNotification(cfg, body, httpjson.Sign("s3cret", body))
		if err != nil {
			if !errors.Is(err, channel.ErrMalformed) {
				t.Fatalf("error %v from a signed body is not malformed", err)
			}
			return
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("accepted an invalid notification %+v: %v", n, err)
		}
	})
}
