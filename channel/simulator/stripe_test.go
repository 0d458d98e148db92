package simulator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
)

// stripeFixture is a simulator server with Stripe test keys and one
// helper to call it.
type stripeFixture struct {
	t      *testing.T
	sim    *Sim
	orders *Orders
	url    string
	key    string
}

func newStripeFixture(t *testing.T, orders OrderSource) *stripeFixture {
	t.Helper()
	keys := Keys{StripeAPIKey: TestStripeAPIKey}
	sim := New(Config{Seed: 5, RetryAfter: 1500 * time.Millisecond})
	o, _ := orders.(*Orders)
	srv := httptest.NewServer(sim.Server(orders, keys))
	t.Cleanup(srv.Close)
	return &stripeFixture{t: t, sim: sim, orders: o, url: srv.URL, key: keys.StripeAPIKey}
}

// add registers an order whose intent id is pi_<no> with behaviour b.
func (f *stripeFixture) add(no string, b Behaviour) string {
	o := order(no)
	o.ChannelTxnID = "pi_" + no
	f.orders.Add(o)
	f.sim.Set(no, b)
	return o.ChannelTxnID
}

// do sends one request with the given Authorization header value and
// returns the status, headers and decoded JSON body.
func (f *stripeFixture) do(method, path, auth string, form url.Values) (int, http.Header, map[string]any) {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m) // a malformed body leaves m nil
	return resp.StatusCode, resp.Header, m
}

func (f *stripeFixture) get(path string) (int, http.Header, map[string]any) {
	return f.do(http.MethodGet, path, "Bearer "+f.key, nil)
}

func stripeErrorOf(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok || e["type"] == nil || e["message"] == nil {
		t.Fatalf("not a Stripe error: %v", m)
	}
	return e
}

func TestStripeAuthentication(t *testing.T) {
	f := newStripeFixture(t, NewOrders())
	id := f.add("auth", Behaviour{Status: recon.ChannelPaid})
	path := "/v1/payment_intents/" + id
	for _, tc := range []struct {
		auth, want string
	}{
		{"", "You did not provide an API key"},
		{"Bearer sk_test_wrong_key_1234", "Invalid API Key provided: sk_test_**********1234"},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("sk_test_other:")), "Invalid API Key provided"},
	} {
		code, h, m := f.do(http.MethodGet, path, tc.auth, nil)
		if code != http.StatusUnauthorized || !strings.Contains(stripeErrorOf(t, m)["message"].(string), tc.want) {
			t.Fatalf("auth %q: HTTP %d %v", tc.auth, code, m)
		}
		if !strings.HasPrefix(h.Get("Request-Id"), "req_") {
			t.Fatalf("no Request-Id: %v", h)
		}
	}
	if f.sim.Calls("auth") != 0 {
		t.Fatalf("unauthenticated requests reached the channel")
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(f.key+":"))
	if code, _, m := f.do(http.MethodGet, path, basic, nil); code != 200 || m["status"] != "succeeded" {
		t.Fatalf("basic auth: HTTP %d %v", code, m)
	}
	if code, _, m := f.get("/v1/charges/ch_1"); code != 404 || !strings.Contains(stripeErrorOf(t, m)["message"].(string), "Unrecognized request URL (GET: /v1/charges/ch_1)") {
		t.Fatalf("unknown path: HTTP %d %v", code, m)
	}
}

func TestStripeRetrieve(t *testing.T) {
	f := newStripeFixture(t, NewOrders())

	id := f.add("paid", Behaviour{Status: recon.ChannelPaid, Amount: 1001})
	code, h, m := f.get("/v1/payment_intents/" + id)
	if code != 200 || m["object"] != "payment_intent" || m["id"] != id || m["status"] != "succeeded" ||
		m["amount_received"] != 1001.0 || m["currency"] != "cny" || h.Get("Stripe-Version") != StripeAPIVersion {
		t.Fatalf("paid: HTTP %d %v", code, m)
	}
	charge, ok := m["latest_charge"].(string)
	if !ok || charge != "ch_"+f.sim.TxnID("paid") {
		t.Fatalf("latest_charge %v", m["latest_charge"])
	}
	if !strings.HasPrefix(m["client_secret"].(string), id+"_secret_") {
		t.Fatalf("client_secret %v", m["client_secret"])
	}
	_, _, m = f.get("/v1/payment_intents/" + id + "?expand%5B%5D=latest_charge")
	ch, ok := m["latest_charge"].(map[string]any)
	if !ok || ch["id"] != charge || ch["object"] != "charge" || ch["status"] != "succeeded" ||
		int64(ch["created"].(float64)) != f.sim.paidAt(order("paid")).Unix() {
		t.Fatalf("expanded latest_charge %v", m["latest_charge"])
	}

	id = f.add("failed", Behaviour{Status: recon.ChannelFailed})
	_, _, m = f.get("/v1/payment_intents/" + id)
	if m["status"] != "canceled" || m["last_payment_error"] == nil {
		t.Fatalf("failed: %v", m)
	}
	id = f.add("closed", Behaviour{Status: recon.ChannelClosed})
	_, _, m = f.get("/v1/payment_intents/" + id)
	if m["status"] != "canceled" || m["last_payment_error"] != nil || m["canceled_at"] == nil {
		t.Fatalf("closed: %v", m)
	}

	for _, tc := range []struct {
		b      Behaviour
		code   int
		errTyp string
	}{
		{Behaviour{Status: recon.ChannelNotFound}, 404, "invalid_request_error"},
		{Behaviour{TransientFailures: 1}, 500, "api_error"},
		{Behaviour{RateLimits: 1}, 429, "invalid_request_error"},
		{Behaviour{PermanentError: true}, 403, "invalid_request_error"},
	} {
		id := f.add(fmt.Sprintf("fault%d", tc.code), tc.b)
		code, h, m := f.get("/v1/payment_intents/" + id)
		if code != tc.code || stripeErrorOf(t, m)["type"] != tc.errTyp {
			t.Fatalf("%+v: HTTP %d %v", tc.b, code, m)
		}
		if code == 429 && h.Get("Retry-After") != "2" {
			t.Fatalf("Retry-After %q", h.Get("Retry-After"))
		}
		if code == 404 && stripeErrorOf(t, m)["code"] != "resource_missing" {
			t.Fatalf("not found: %v", m)
		}
	}
	if code, _, m := f.get("/v1/payment_intents/pi_nobody"); code != 404 || stripeErrorOf(t, m)["code"] != "resource_missing" {
		t.Fatalf("unknown intent: HTTP %d %v", code, m)
	}

	id = f.add("malformed", Behaviour{Status: recon.ChannelPaid, Malformed: true})
	if code, _, m := f.get("/v1/payment_intents/" + id); code != 200 || m != nil {
		t.Fatalf("malformed: HTTP %d parsed as %v", code, m)
	}
	// Stripe signs nothing: a bad signature or stale timestamp changes
	// nothing on this wire.
	id = f.add("badsig", Behaviour{Status: recon.ChannelPaid, BadSignature: true, StaleTimestamp: true})
	if code, _, m := f.get("/v1/payment_intents/" + id); code != 200 || m["status"] != "succeeded" {
		t.Fatalf("bad signature: HTTP %d %v", code, m)
	}
}

func TestStripeCancel(t *testing.T) {
	f := newStripeFixture(t, NewOrders())
	cancel := func(id string, form url.Values) (int, map[string]any) {
		code, _, m := f.do(http.MethodPost, "/v1/payment_intents/"+id+"/cancel", "Bearer "+f.key, form)
		return code, m
	}

	id := f.add("pending", Behaviour{Status: recon.ChannelPending})
	code, m := cancel(id, url.Values{"cancellation_reason": {"abandoned"}})
	if code != 200 || m["status"] != "canceled" || m["cancellation_reason"] != "abandoned" {
		t.Fatalf("cancel pending: HTTP %d %v", code, m)
	}
	if _, _, m := f.get("/v1/payment_intents/" + id); m["status"] != "canceled" || m["last_payment_error"] != nil {
		t.Fatalf("after cancel: %v", m)
	}
	if code, m := cancel(id, nil); code != 200 || m["cancellation_reason"] != nil {
		t.Fatalf("cancel again without a reason: HTTP %d %v", code, m)
	}

	id = f.add("paid", Behaviour{Status: recon.ChannelPaid})
	code, m = cancel(id, nil)
	e := stripeErrorOf(t, m)
	pi, _ := e["payment_intent"].(map[string]any)
	if code != 400 || e["code"] != "payment_intent_unexpected_state" || pi["status"] != "succeeded" || pi["id"] != id {
		t.Fatalf("cancel paid: HTTP %d %v", code, m)
	}
	id = f.add("failed", Behaviour{Status: recon.ChannelFailed})
	if code, m := cancel(id, nil); code != 400 || stripeErrorOf(t, m)["payment_intent"].(map[string]any)["status"] != "canceled" {
		t.Fatalf("cancel failed: HTTP %d %v", code, m)
	}
	id = f.add("gone", Behaviour{Status: recon.ChannelNotFound})
	if code, m := cancel(id, nil); code != 404 || stripeErrorOf(t, m)["code"] != "resource_missing" {
		t.Fatalf("cancel unknown: HTTP %d %v", code, m)
	}
	if code, _ := cancel("pi_nobody", nil); code != 404 {
		t.Fatalf("cancel an intent nobody has: HTTP %d", code)
	}
	id = f.add("perm", Behaviour{Status: recon.ChannelPending, PermanentError: true})
	if code, _ := cancel(id, nil); code != 403 {
		t.Fatalf("cancel with a permanent failure: HTTP %d", code)
	}
	id = f.add("reason", Behaviour{Status: recon.ChannelPending})
	if code, m := cancel(id, url.Values{"cancellation_reason": {"bored"}}); code != 400 || stripeErrorOf(t, m)["param"] != "cancellation_reason" {
		t.Fatalf("bad reason: HTTP %d %v", code, m)
	}
	if _, _, m := f.get("/v1/payment_intents/" + id); m["status"] == "canceled" {
		t.Fatalf("a refused cancel cancelled: %v", m)
	}
}

// A plain OrderSource cannot find intents by id: every intent is unknown.
func TestStripeNeedsTxnOrderSource(t *testing.T) {
	src := OrderSourceFunc(func(ctx context.Context, no string) (recon.Order, bool, error) { return order(no), true, nil })
	f := newStripeFixture(t, src)
	if code, _, m := f.get("/v1/payment_intents/pi_x"); code != 404 || stripeErrorOf(t, m)["code"] != "resource_missing" {
		t.Fatalf("HTTP %d %v", code, m)
	}
}
