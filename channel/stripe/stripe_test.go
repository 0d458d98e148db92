package stripe_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/stripe"
)

const testKey = "sk_test_adapter_unit_key"

// intentBody is a minimal PaymentIntent of id with the given fields
// replacing the defaults (raw JSON values).
func intentBody(id string, fields map[string]string) string {
	f := map[string]string{
		"id": `"` + id + `"`, "object": `"payment_intent"`, "amount": "1099", "amount_received": "1099",
		"currency": `"usd"`, "status": `"succeeded"`, "created": "1700000000",
		"latest_charge": `{"id":"ch_1","object":"charge","created":1700000042}`, "last_payment_error": "null",
		"client_secret": `"` + id + `_secret_TOPSECRETVALUE"`, "metadata": "{}",
	}
	for k, v := range fields {
		f[k] = v
	}
	var b strings.Builder
	b.WriteString("{")
	first := true
	for k, v := range f {
		if v == "" {
			continue // removed
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(`"` + k + `":` + v)
	}
	b.WriteString("}")
	return b.String()
}

// reply is what the fake Stripe answers.
type reply struct {
	status int
	header map[string]string
	body   string
}

func fakeStripe(t *testing.T, r reply) (*stripe.Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		calls.Add(1)
		if req.Header.Get("Authorization") != "Bearer "+testKey {
			t.Errorf("Authorization %q", req.Header.Get("Authorization"))
		}
		for k, v := range r.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(r.status)
		_, _ = w.Write([]byte(r.body))
	}))
	t.Cleanup(srv.Close)
	c, err := stripe.New(stripe.Config{Name: "unit", BaseURL: srv.URL + "/", APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

var order = recon.Order{OrderNo: "ORD-1", ChannelTxnID: "pi_123", Amount: 1099, Currency: "USD", Status: recon.StatusPending}

func TestLookupMapsIntents(t *testing.T) {
	t.Parallel()
	paidAt := time.Unix(1700000042, 0).UTC()
	for _, tc := range []struct {
		name   string
		fields map[string]string
		want   recon.LookupResult
	}{
		{"succeeded, expanded charge", nil, recon.LookupResult{Status: recon.ChannelPaid, Amount: 1099, Currency: "USD", TxnID: "ch_1", PaidAt: &paidAt}},
		{"succeeded, charge id", map[string]string{"latest_charge": `"ch_2"`},
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 1099, Currency: "USD", TxnID: "ch_2", PaidAt: unix(1700000000)}},
		{"partially captured: amount_received counts", map[string]string{"amount_received": "1000"},
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 1000, Currency: "USD", TxnID: "ch_1", PaidAt: &paidAt}},
		{"requires_payment_method with a declined attempt is pending", map[string]string{"status": `"requires_payment_method"`,
			"amount_received": "0", "last_payment_error": `{"type":"card_error","code":"card_declined"}`},
			recon.LookupResult{Status: recon.ChannelPending, Amount: 1099, Currency: "USD", TxnID: "ch_1"}},
		{"requires_capture is pending", map[string]string{"status": `"requires_capture"`, "amount_received": "0"},
			recon.LookupResult{Status: recon.ChannelPending, Amount: 1099, Currency: "USD", TxnID: "ch_1"}},
		{"processing is pending", map[string]string{"status": `"processing"`, "latest_charge": "null"},
			recon.LookupResult{Status: recon.ChannelPending, Amount: 1099, Currency: "USD", TxnID: "pi_123"}},
		{"canceled is closed", map[string]string{"status": `"canceled"`, "amount_received": "0", "latest_charge": "null"},
			recon.LookupResult{Status: recon.ChannelClosed, Amount: 1099, Currency: "USD", TxnID: "pi_123"}},
		{"canceled after a failed attempt is failed", map[string]string{"status": `"canceled"`, "amount_received": "0",
			"last_payment_error": `{"type":"card_error","code":"card_declined"}`},
			recon.LookupResult{Status: recon.ChannelFailed, Amount: 1099, Currency: "USD", TxnID: "ch_1"}},
		{"zero-decimal currency", map[string]string{"currency": `"jpy"`, "amount": "500", "amount_received": "500"},
			recon.LookupResult{Status: recon.ChannelPaid, Amount: 500, Currency: "JPY", TxnID: "ch_1", PaidAt: &paidAt}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := fakeStripe(t, reply{status: 200, body: intentBody("pi_123", tc.fields)})
			got, err := c.Lookup(context.Background(), order)
			if err != nil {
				t.Fatal(err)
			}
			if !sameResult(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLookupRefusesMalformedBodies(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"cut short":            `{"id":"pi_123","object":"payment_intent","amount":`,
		"not an object":        `["pi_123"]`,
		"bare id":              `"pi_123"`,
		"another intent":       intentBody("pi_999", nil),
		"another object":       intentBody("pi_123", map[string]string{"object": `"charge"`}),
		"no object":            intentBody("pi_123", map[string]string{"object": ""}),
		"float amount":         intentBody("pi_123", map[string]string{"amount_received": "1099.0"}),
		"exponent amount":      intentBody("pi_123", map[string]string{"amount_received": "1.099e3"}),
		"string amount":        intentBody("pi_123", map[string]string{"amount_received": `"1099"`}),
		"negative amount":      intentBody("pi_123", map[string]string{"amount": "-1"}),
		"huge amount":          intentBody("pi_123", map[string]string{"amount": "99999999999999999999"}),
		"missing amount":       intentBody("pi_123", map[string]string{"amount_received": ""}),
		"upper-case currency":  intentBody("pi_123", map[string]string{"currency": `"USD"`}),
		"long currency":        intentBody("pi_123", map[string]string{"currency": `"usdt"`}),
		"unknown status":       intentBody("pi_123", map[string]string{"status": `"paid"`}),
		"missing created":      intentBody("pi_123", map[string]string{"created": ""}),
		"charge is a number":   intentBody("pi_123", map[string]string{"latest_charge": "7"}),
		"charge of no time":    intentBody("pi_123", map[string]string{"latest_charge": `{"id":"ch_1","object":"charge"}`}),
		"error is a string":    intentBody("pi_123", map[string]string{"last_payment_error": `"declined"`}),
		"SDK cannot decode it": intentBody("pi_123", map[string]string{"metadata": "5"}),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, _ := fakeStripe(t, reply{status: 200, body: body})
			r, err := c.Lookup(context.Background(), order)
			if err == nil || !errors.Is(err, channel.ErrMalformed) || channel.ClassOf(err) != channel.ClassPermanent {
				t.Fatalf("got %+v, %v; want a permanent malformed error", r, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "ORD-1") || !strings.Contains(msg, "stripe unit") {
				t.Errorf("error does not name the channel and order: %s", msg)
			}
			if strings.Contains(msg, "TOPSECRETVALUE") || strings.Contains(msg, testKey) {
				t.Errorf("error leaks a secret: %s", msg)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		t.Parallel()
		big := intentBody("pi_123", map[string]string{"description": `"` + strings.Repeat("x", stripe.MaxBodyBytes) + `"`})
		c, _ := fakeStripe(t, reply{status: 200, body: big})
		if _, err := c.Lookup(context.Background(), order); !errors.Is(err, channel.ErrMalformed) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestLookupClassifiesErrors(t *testing.T) {
	t.Parallel()
	stripeErr := func(typ, code, msg string) string {
		return `{"error":{"type":"` + typ + `","code":"` + code + `","message":"` + msg + `"}}`
	}
	for _, tc := range []struct {
		name  string
		r     reply
		class channel.Class
		after time.Duration
		quote string // the error must quote it
	}{
		{"429 with Retry-After", reply{429, map[string]string{"Retry-After": "7"}, stripeErr("invalid_request_error", "rate_limit", "Too many requests")},
			channel.ClassRateLimited, 7 * time.Second, "rate_limit"},
		{"429 without Retry-After", reply{429, nil, stripeErr("invalid_request_error", "rate_limit", "slow down")}, channel.ClassRateLimited, 0, "slow down"},
		{"500", reply{500, map[string]string{"Request-Id": "req_abc"}, stripeErr("api_error", "", "An unknown error occurred")},
			channel.ClassTransient, 0, "req_abc"},
		{"502 from a proxy", reply{502, nil, "<html>bad gateway</html>"}, channel.ClassTransient, 0, "bad gateway"},
		{"409", reply{409, nil, stripeErr("idempotency_error", "", "conflict")}, channel.ClassTransient, 0, "idempotency_error"},
		{"500 Stripe-Should-Retry false", reply{500, map[string]string{"Stripe-Should-Retry": "false"}, stripeErr("api_error", "", "no")},
			channel.ClassPermanent, 0, "Stripe-Should-Retry"},
		{"400 Stripe-Should-Retry true", reply{400, map[string]string{"Stripe-Should-Retry": "true"}, stripeErr("invalid_request_error", "lock_timeout", "locked")},
			channel.ClassTransient, 0, "lock_timeout"},
		{"401", reply{401, nil, stripeErr("invalid_request_error", "", "Invalid API Key provided: sk_test_****************_key")},
			channel.ClassPermanent, 0, "Invalid API Key provided: sk_test_REDACTED"},
		{"402", reply{402, nil, stripeErr("card_error", "card_declined", "Your card was declined.")}, channel.ClassPermanent, 0, "card_declined"},
		{"403", reply{403, nil, stripeErr("invalid_request_error", "", "restricted key")}, channel.ClassPermanent, 0, "restricted key"},
		{"404 unrecognized URL is no answer", reply{404, nil, stripeErr("invalid_request_error", "", "Unrecognized request URL")},
			channel.ClassPermanent, 0, "Unrecognized"},
		{"404 from a proxy", reply{404, nil, "not found"}, channel.ClassPermanent, 0, "not found"},
		{"redirect", reply{304, nil, ""}, channel.ClassPermanent, 0, "HTTP 304"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := fakeStripe(t, tc.r)
			r, err := c.Lookup(context.Background(), order)
			if err == nil {
				t.Fatalf("answered %+v", r)
			}
			if got := channel.ClassOf(err); got != tc.class {
				t.Fatalf("class %s, want %s: %v", got, tc.class, err)
			}
			if got := channel.RetryAfterOf(err); got != tc.after {
				t.Fatalf("retry after %s, want %s", got, tc.after)
			}
			if !strings.Contains(err.Error(), tc.quote) || !strings.Contains(err.Error(), "lookup ORD-1") {
				t.Fatalf("error %q does not quote %q", err, tc.quote)
			}
			if strings.Contains(err.Error(), "****") {
				t.Fatalf("error quotes a masked key: %v", err)
			}
		})
	}
	t.Run("404 resource_missing is NOT_FOUND", func(t *testing.T) {
		t.Parallel()
		c, _ := fakeStripe(t, reply{404, nil, stripeErr("invalid_request_error", "resource_missing", "No such payment_intent: 'pi_123'")})
		r, err := c.Lookup(context.Background(), order)
		if err != nil || r.Status != recon.ChannelNotFound {
			t.Fatalf("got %+v, %v", r, err)
		}
	})
}

func TestLookupNeedsAnIntentID(t *testing.T) {
	t.Parallel()
	c, calls := fakeStripe(t, reply{status: 200, body: intentBody("pi_123", nil)})
	for _, txn := range []string{"", "ch_123", "pi_../../v1/charges", "pi_1?expand=x", "pi_" + strings.Repeat("a", 300)} {
		o := order
		o.ChannelTxnID = txn
		_, err := c.Lookup(context.Background(), o)
		if channel.ClassOf(err) != channel.ClassPermanent || !strings.Contains(err.Error(), "ORD-1") {
			t.Errorf("channel_txn_id %q: %v", txn, err)
		}
		if err := c.CloseOrder(context.Background(), o); channel.ClassOf(err) != channel.ClassPermanent {
			t.Errorf("close with channel_txn_id %q: %v", txn, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d requests for orders without an intent id", n)
	}
}

func TestLookupTimeoutsAndNetwork(t *testing.T) {
	t.Parallel()
	t.Run("timeout is transient", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		defer srv.Close()
		c, err := stripe.New(stripe.Config{BaseURL: srv.URL, APIKey: testKey, Timeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Lookup(context.Background(), order)
		if channel.ClassOf(err) != channel.ClassTransient || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("caller cancel is not retried", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		defer srv.Close()
		c, _ := stripe.New(stripe.Config{BaseURL: srv.URL, APIKey: testKey})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Lookup(ctx, order)
		if !errors.Is(err, context.Canceled) || channel.ClassOf(err) != channel.ClassPermanent {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("connection refused is transient", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c, _ := stripe.New(stripe.Config{BaseURL: "http://" + addr, APIKey: testKey})
		_, err = c.Lookup(context.Background(), order)
		if channel.ClassOf(err) != channel.ClassTransient || strings.Contains(err.Error(), testKey) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestCloseOrder(t *testing.T) {
	t.Parallel()
	canceled := intentBody("pi_123", map[string]string{"status": `"canceled"`, "amount_received": "0", "latest_charge": "null"})
	unexpected := func(status string) string {
		return `{"error":{"type":"invalid_request_error","code":"payment_intent_unexpected_state","message":"You cannot cancel this PaymentIntent because it has a status of ` +
			status + `.","payment_intent":` + intentBody("pi_123", map[string]string{"status": `"` + status + `"`}) + `}}`
	}
	for _, tc := range []struct {
		name  string
		r     reply
		class channel.Class // -1: success
	}{
		{"canceled", reply{200, nil, canceled}, -1},
		{"already canceled", reply{400, nil, unexpected("canceled")}, -1},
		{"succeeded", reply{400, nil, unexpected("succeeded")}, channel.ClassPermanent},
		{"200 but not canceled", reply{200, nil, intentBody("pi_123", nil)}, channel.ClassPermanent},
		{"200 malformed", reply{200, nil, `{"id":`}, channel.ClassPermanent},
		{"missing", reply{404, nil, `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such payment_intent"}}`}, channel.ClassPermanent},
		{"server error", reply{500, nil, `{"error":{"type":"api_error","message":"oops"}}`}, channel.ClassTransient},
		{"rate limited", reply{429, map[string]string{"Retry-After": "1"}, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"slow"}}`}, channel.ClassRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, calls := fakeStripe(t, tc.r)
			err := c.CloseOrder(context.Background(), order)
			if calls.Load() != 1 {
				t.Fatalf("%d requests", calls.Load())
			}
			if tc.class == -1 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || channel.ClassOf(err) != tc.class {
				t.Fatalf("got %v, want a %s error", err, tc.class)
			}
			if !strings.Contains(err.Error(), "close ORD-1") || strings.Contains(err.Error(), "TOPSECRETVALUE") {
				t.Fatalf("error %v", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  stripe.Config
		want string // "" valid
	}{
		{stripe.Config{APIKey: "sk_test_x"}, ""},
		{stripe.Config{APIKey: "rk_live_x", BaseURL: "http://127.0.0.1:9/stripe"}, ""},
		{stripe.Config{}, "api_key: is required"},
		{stripe.Config{APIKey: "pk_test_publishable"}, "api_key: a publishable key"},
		{stripe.Config{APIKey: "whsec_signing"}, "api_key: not a Stripe secret"},
		{stripe.Config{APIKey: "sk_test_with space"}, "api_key: contains whitespace"},
		{stripe.Config{APIKey: "sk_test_x", BaseURL: "api.stripe.com"}, "base_url: not an absolute http(s) URL"},
		{stripe.Config{APIKey: "sk_test_x", BaseURL: "ftp://x"}, "base_url: not an absolute http(s) URL"},
		{stripe.Config{APIKey: "sk_test_x", BaseURL: "https://x/?a=b"}, "base_url:"},
		{stripe.Config{APIKey: "sk_test_x", Timeout: -time.Second}, "timeout:"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.cfg, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
			continue
		}
		if tc.cfg.APIKey != "" && strings.Contains(err.Error(), tc.cfg.APIKey) {
			t.Errorf("error quotes the key: %v", err)
		}
		if _, err := stripe.New(tc.cfg); err == nil {
			t.Errorf("New accepted %+v", tc.cfg)
		}
	}
}
