package stripe_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/stripe"
)

const docRefundID = "re_1Nispe2eZvKYlo2Cd31jOCgZ"

// docRefund is the Refund example of Stripe's API reference
// (testdata/doc_refund_succeeded.json) with status and extra fields
// replaced.
func docRefund(t *testing.T, status, extra string) string {
	t.Helper()
	b := strings.Replace(string(fixture(t, "doc_refund_succeeded.json")), `"status": "succeeded"`, `"status": "`+status+`"`+extra, 1)
	return b
}

func TestDocumentedRefundParses(t *testing.T) {
	got, err := stripe.ParseRefund(fixture(t, "doc_refund_succeeded.json"), docRefundID)
	at := time.Unix(1692942318, 0).UTC()
	if err != nil || got.Status != recon.RefundChannelSucceeded || got.Amount != 1000 || got.Currency != "USD" ||
		got.ChannelRefundID != docRefundID || got.SucceededAt == nil || !got.SucceededAt.Equal(at) {
		t.Fatalf("documented refund read as %+v, %v", got, err)
	}
}

func TestLookupRefundMapsStatuses(t *testing.T) {
	r := recon.Refund{RefundNo: "RF-1", OrderNo: "ORD-1", ChannelRefundID: docRefundID, Amount: 1000, Currency: "USD"}
	for _, tc := range []struct {
		status, extra string
		want          recon.RefundChannelStatus
		detail        string
	}{
		{"succeeded", "", recon.RefundChannelSucceeded, ""},
		{"pending", `, "pending_reason": "charge_pending"`, recon.RefundChannelPending, "charge_pending"},
		{"requires_action", "", recon.RefundChannelPending, "requires_action"},
		{"failed", `, "failure_reason": "lost_or_stolen_card"`, recon.RefundChannelFailed, "lost_or_stolen_card"},
		{"canceled", `, "failure_reason": null`, recon.RefundChannelFailed, ""},
	} {
		c, calls := fakeStripe(t, reply{status: 200, body: docRefund(t, tc.status, tc.extra)})
		got, err := c.LookupRefund(context.Background(), r)
		if err != nil || got.Status != tc.want || got.Detail != tc.detail || (got.SucceededAt != nil) != (tc.want == recon.RefundChannelSucceeded) {
			t.Errorf("%s: %+v, %v; want %s (%q)", tc.status, got, err, tc.want, tc.detail)
		}
		if calls.Load() != 1 {
			t.Errorf("%s: %d requests", tc.status, calls.Load())
		}
	}
	c, _ := fakeStripe(t, reply{status: 404, body: string(fixture(t, "error_resource_missing.json"))})
	if got, err := c.LookupRefund(context.Background(), r); err != nil || got.Status != recon.RefundChannelNotFound {
		t.Errorf("404 resource_missing: %+v, %v; want NOT_FOUND", got, err)
	}
}

func TestLookupRefundRefuses(t *testing.T) {
	r := recon.Refund{RefundNo: "RF-1", OrderNo: "ORD-1", ChannelRefundID: docRefundID}
	doc := string(fixture(t, "doc_refund_succeeded.json"))
	for _, tc := range []struct {
		name  string
		rep   reply
		class channel.Class
		is    error
	}{
		{"another refund", reply{status: 200, body: strings.Replace(doc, docRefundID, "re_other", 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"not a refund", reply{status: 200, body: strings.Replace(doc, `"object": "refund"`, `"object": "charge"`, 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"unknown status", reply{status: 200, body: docRefund(t, "reversed", "")}, channel.ClassPermanent, channel.ErrMalformed},
		{"null status", reply{status: 200, body: strings.Replace(doc, `"status": "succeeded"`, `"status": null`, 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"float amount", reply{status: 200, body: strings.Replace(doc, `"amount": 1000`, `"amount": 1000.0`, 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"negative amount", reply{status: 200, body: strings.Replace(doc, `"amount": 1000`, `"amount": -1000`, 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"upper-case currency", reply{status: 200, body: strings.Replace(doc, `"usd"`, `"USD"`, 1)}, channel.ClassPermanent, channel.ErrMalformed},
		{"cut short", reply{status: 200, body: doc[:80]}, channel.ClassPermanent, channel.ErrMalformed},
		{"404 without resource_missing", reply{status: 404, body: `{"error":{"type":"invalid_request_error","message":"Unrecognized request URL"}}`}, channel.ClassPermanent, nil},
		{"rate limited", reply{status: 429, body: string(fixture(t, "error_rate_limit.json")), header: map[string]string{"Retry-After": "3"}}, channel.ClassRateLimited, nil},
		{"api error", reply{status: 500, body: string(fixture(t, "error_api_error.json"))}, channel.ClassTransient, nil},
		{"bad key", reply{status: 401, body: string(fixture(t, "error_invalid_api_key.json"))}, channel.ClassPermanent, nil},
	} {
		c, _ := fakeStripe(t, tc.rep)
		got, err := c.LookupRefund(context.Background(), r)
		if err == nil || channel.ClassOf(err) != tc.class || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), "refund lookup RF-1") {
			t.Errorf("%s: %+v, %v; want a %s error %v naming the refund", tc.name, got, err, tc.class, tc.is)
		}
	}
	// A refund without a re_ id is never asked about.
	for _, id := range []string{"", "pi_123", "re_1/../../v1/charges", "re_1?expand=x"} {
		c, calls := fakeStripe(t, reply{status: 200, body: doc})
		_, err := c.LookupRefund(context.Background(), recon.Refund{RefundNo: "RF-9", ChannelRefundID: id})
		if channel.ClassOf(err) != channel.ClassPermanent || !strings.Contains(err.Error(), "RF-9") || calls.Load() != 0 {
			t.Errorf("channel_refund_id %q: %v after %d requests; want a permanent error naming RF-9 and no request", id, err, calls.Load())
		}
	}
}
