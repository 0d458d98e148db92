package stripe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v82"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/channel/stripe"
)

// The testdata/doc_*.json bodies are the PaymentIntent examples of Stripe's
// API reference (retrieve, confirm, cancel, increment_authorization) and
// its Refund object example (doc_refund_succeeded.json); the
// error_*.json bodies follow the documented error object. requests.json is
// the wire form of the two requests the adapter sends.

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unix(s int64) *time.Time {
	t := time.Unix(s, 0).UTC()
	return &t
}

func TestDocumentedIntentsParse(t *testing.T) {
	for _, tc := range []struct {
		file, id string
		want     recon.LookupResult
	}{
		{"doc_confirm_succeeded.json", "pi_3MtweELkdIwHu7ix0Dt0gF2H", recon.LookupResult{Status: recon.ChannelPaid,
			Amount: 2000, Currency: "USD", TxnID: "ch_3MtweELkdIwHu7ix05lnLAFd", PaidAt: unix(1680802258)}},
		{"doc_retrieve_requires_payment_method.json", "pi_3MtwBwLkdIwHu7ix28a3tqPa", recon.LookupResult{Status: recon.ChannelPending,
			Amount: 2000, Currency: "USD", TxnID: "pi_3MtwBwLkdIwHu7ix28a3tqPa"}},
		{"doc_increment_authorization_requires_capture.json", "pi_1DtBRR2eZvKYlo2CmCVxxvd7", recon.LookupResult{Status: recon.ChannelPending,
			Amount: 2099, Currency: "USD", TxnID: "ch_3MrPBM2eZvKYlo2C1CEBUD4A"}},
		{"doc_cancel_canceled.json", "pi_3MtwBwLkdIwHu7ix28a3tqPa", recon.LookupResult{Status: recon.ChannelClosed,
			Amount: 2000, Currency: "USD", TxnID: "pi_3MtwBwLkdIwHu7ix28a3tqPa"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body := fixture(t, tc.file)
			got, err := stripe.Decode(stripe.Reply{StatusCode: http.StatusOK, Body: body}, tc.id, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if !sameResult(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			// The SDK reads the same values from the same bytes.
			var pi stripego.PaymentIntent
			if err := json.Unmarshal(body, &pi); err != nil {
				t.Fatalf("the SDK cannot decode the documented example: %v", err)
			}
			sdkAgrees(t, body, &pi, tc.id)
			// Anything but this very intent is refused.
			if _, err := stripe.ParsePaymentIntent(body, "pi_other"); !errors.Is(err, channel.ErrMalformed) {
				t.Fatalf("an answer about another intent: %v", err)
			}
		})
	}
}

func sameResult(a, b recon.LookupResult) bool {
	if (a.PaidAt == nil) != (b.PaidAt == nil) || a.PaidAt != nil && !a.PaidAt.Equal(*b.PaidAt) {
		return false
	}
	a.PaidAt, b.PaidAt = nil, nil
	return a == b
}

// sdkAgrees checks that the SDK's decoding of body says what the adapter
// reads from it.
func sdkAgrees(t *testing.T, body []byte, pi *stripego.PaymentIntent, id string) {
	t.Helper()
	in, err := stripe.ParsePaymentIntent(body, id)
	if err != nil {
		t.Fatal(err)
	}
	charge := ""
	if pi.LatestCharge != nil {
		charge = pi.LatestCharge.ID
	}
	type view struct {
		ID, Status, Currency, Charge string
		Amount, Received, Created    int64
		Failed                       bool
	}
	ours := view{in.ID, in.Status, strings.ToLower(in.Currency), in.LatestCharge, in.Amount, in.AmountReceived, in.Created.Unix(), in.PaymentFailed}
	sdk := view{pi.ID, string(pi.Status), string(pi.Currency), charge, pi.Amount, pi.AmountReceived, pi.Created, pi.LastPaymentError != nil}
	if ours != sdk {
		t.Fatalf("adapter reads %+v, the SDK %+v", ours, sdk)
	}
	if in.ChargeCreated != nil && (pi.LatestCharge == nil || pi.LatestCharge.Created != in.ChargeCreated.Unix()) {
		t.Fatalf("charge created %s, the SDK says %+v", in.ChargeCreated, pi.LatestCharge)
	}
}

func TestDocumentedErrorsClassify(t *testing.T) {
	for _, tc := range []struct {
		file   string
		status int
		header map[string]string
		want   recon.ChannelStatus // a result, or
		class  channel.Class       // the error's class
	}{
		{"error_resource_missing.json", 404, nil, recon.ChannelNotFound, 0},
		{"error_rate_limit.json", 429, map[string]string{"Retry-After": "3"}, "", channel.ClassRateLimited},
		{"error_api_error.json", 500, nil, "", channel.ClassTransient},
		{"error_api_error.json", 500, map[string]string{"Stripe-Should-Retry": "false"}, "", channel.ClassPermanent},
		{"error_invalid_api_key.json", 401, nil, "", channel.ClassPermanent},
		{"error_unexpected_state_succeeded.json", 400, nil, "", channel.ClassPermanent},
	} {
		t.Run(fmt.Sprintf("%s_%d", tc.file, tc.status), func(t *testing.T) {
			body := fixture(t, tc.file)
			h := http.Header{"Request-Id": {"req_golden"}}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			r, err := stripe.Decode(stripe.Reply{StatusCode: tc.status, Header: h, Body: body}, "pi_3MtwBwLkdIwHu7ix28a3tqPa", time.Now())
			if tc.want != "" {
				if err != nil || r.Status != tc.want {
					t.Fatalf("got %+v, %v; want %s", r, err, tc.want)
				}
				return
			}
			if err == nil || channel.ClassOf(err) != tc.class {
				t.Fatalf("got %+v, %v; want a %s error", r, err, tc.class)
			}
			// The SDK's own reading of the error body agrees on what is
			// quoted, and no secret leaks.
			e := stripe.ParseError(body)
			if e == nil || !strings.Contains(err.Error(), string(e.Type)) || !strings.Contains(err.Error(), "req_golden") {
				t.Fatalf("error %q does not name the Stripe error %+v", err, e)
			}
			noSecrets(t, err.Error())
		})
	}
	t.Run("429 Retry-After", func(t *testing.T) {
		_, err := stripe.Decode(stripe.Reply{StatusCode: 429, Header: http.Header{"Retry-After": {"3"}}, Body: fixture(t, "error_rate_limit.json")}, "pi_x", time.Now())
		if channel.RetryAfterOf(err) != 3*time.Second {
			t.Fatalf("retry after %s: %v", channel.RetryAfterOf(err), err)
		}
	})
}

// noSecrets fails when msg quotes a client secret or an API key.
func noSecrets(t *testing.T, msg string) {
	t.Helper()
	for _, leak := range []string{"_secret_Y", "_secret_A", "_secret_S", "_secret_c", "sk_test_*", "sk_test_recon", simulator.TestStripeAPIKey} {
		if strings.Contains(msg, leak) {
			t.Fatalf("error quotes a secret (%s): %s", leak, msg)
		}
	}
}

func TestDocumentedCancelReplies(t *testing.T) {
	id := "pi_3MtwBwLkdIwHu7ix28a3tqPa"
	if err := stripe.DecodeCancel(stripe.Reply{StatusCode: 200, Body: fixture(t, "doc_cancel_canceled.json")}, id, time.Now()); err != nil {
		t.Fatalf("canceled: %v", err)
	}
	if err := stripe.DecodeCancel(stripe.Reply{StatusCode: 400, Body: fixture(t, "error_unexpected_state_canceled.json")}, id, time.Now()); err != nil {
		t.Fatalf("already canceled: %v", err)
	}
	err := stripe.DecodeCancel(stripe.Reply{StatusCode: 400, Body: fixture(t, "error_unexpected_state_succeeded.json")}, "pi_3MtweELkdIwHu7ix0Dt0gF2H", time.Now())
	if channel.ClassOf(err) != channel.ClassPermanent || !strings.Contains(err.Error(), "payment_intent_unexpected_state") {
		t.Fatalf("succeeded: %v", err)
	}
	noSecrets(t, err.Error())
	err = stripe.DecodeCancel(stripe.Reply{StatusCode: 404, Body: fixture(t, "error_resource_missing.json")}, id, time.Now())
	if channel.ClassOf(err) != channel.ClassPermanent {
		t.Fatalf("missing: %v", err)
	}
	// A 200 that is not canceled is no close.
	err = stripe.DecodeCancel(stripe.Reply{StatusCode: 200, Body: fixture(t, "doc_retrieve_requires_payment_method.json")}, id, time.Now())
	if channel.ClassOf(err) != channel.ClassPermanent {
		t.Fatalf("not canceled: %v", err)
	}
}

// wireRequest is one request as requests.json records it.
type wireRequest struct {
	Method        string `json:"method"`
	Path          string `json:"path"`
	Query         string `json:"query"`
	Authorization string `json:"authorization"`
	ContentType   string `json:"content_type"`
	Body          string `json:"body"`
}

// TestRequestsMatchGolden checks the wire form of the requests the SDK
// sends for the adapter.
func TestRequestsMatchGolden(t *testing.T) {
	var want map[string]wireRequest
	if err := json.Unmarshal(fixture(t, "requests.json"), &want); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]wireRequest{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q, err := url.QueryUnescape(r.URL.RawQuery)
		if err != nil {
			t.Errorf("query %q: %v", r.URL.RawQuery, err)
		}
		kind := "retrieve"
		if r.Method == http.MethodPost {
			kind = "cancel"
			if r.Header.Get("Idempotency-Key") == "" {
				t.Errorf("cancel without an Idempotency-Key")
			}
		}
		if r.Header.Get("Stripe-Version") != stripego.APIVersion {
			t.Errorf("Stripe-Version %q", r.Header.Get("Stripe-Version"))
		}
		mu.Lock()
		got[kind] = wireRequest{r.Method, r.URL.Path, q, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(body)}
		mu.Unlock()
		name := "doc_retrieve_requires_payment_method.json"
		if kind == "cancel" {
			name = "doc_cancel_canceled.json"
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(fixture(t, name))
	}))
	defer srv.Close()
	c, err := stripe.New(stripe.Config{BaseURL: srv.URL, APIKey: "sk_test_recon_golden"})
	if err != nil {
		t.Fatal(err)
	}
	o := recon.Order{OrderNo: "golden", ChannelTxnID: "pi_3MtwBwLkdIwHu7ix28a3tqPa"}
	if r, err := c.Lookup(context.Background(), o); err != nil || r.Status != recon.ChannelPending {
		t.Fatalf("lookup: %+v %v", r, err)
	}
	if err := c.CloseOrder(context.Background(), o); err != nil {
		t.Fatalf("close: %v", err)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s request:\n got %+v\nwant %+v", k, got[k], w)
		}
	}
}

// TestSimulatorSpeaksStripe fetches the simulator's Stripe replies for every
// kind of answer and checks them against the SDK: every intent decodes
// strictly into the SDK's types (no key the SDK does not know), carries the
// documented keys, and the SDK reads the same values the adapter does.
func TestSimulatorSpeaksStripe(t *testing.T) {
	keys, err := simulator.TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	sim := simulator.New(simulator.Config{Seed: 3, RetryAfter: time.Second})
	orders := simulator.NewOrders()
	srv := httptest.NewServer(sim.Server(orders, keys))
	defer srv.Close()

	var docKeys map[string]json.RawMessage
	if err := json.Unmarshal(fixture(t, "doc_retrieve_requires_payment_method.json"), &docKeys); err != nil {
		t.Fatal(err)
	}
	// invoice left the PaymentIntent in the API version the SDK asks for.
	delete(docKeys, "invoice")

	get := func(t *testing.T, id string, expand bool) (int, []byte) {
		t.Helper()
		u := srv.URL + "/v1/payment_intents/" + id
		if expand {
			u += "?expand%5B0%5D=latest_charge"
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+keys.StripeAPIKey)
		req.Header.Set("Stripe-Version", stripego.APIVersion)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	add := func(no string, b simulator.Behaviour) string {
		o := recon.Order{OrderNo: no, Amount: 4200, Currency: "EUR", Status: recon.StatusPending,
			CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ChannelTxnID: "pi_" + no}
		orders.Add(o)
		sim.Set(no, b)
		return o.ChannelTxnID
	}
	statuses := map[string]bool{}
	for i, b := range []simulator.Behaviour{
		{Status: recon.ChannelPaid}, {Status: recon.ChannelClosed}, {Status: recon.ChannelFailed},
		{Status: recon.ChannelPaid, Amount: 4201},
	} {
		for _, expand := range []bool{false, true} {
			id := add(fmt.Sprintf("sim%d%v", i, expand), b)
			code, body := get(t, id, expand)
			if code != 200 {
				t.Fatalf("%s: HTTP %d %s", id, code, body)
			}
			checkIntent(t, body, id, docKeys, expand)
			in, _ := stripe.ParsePaymentIntent(body, id)
			statuses[in.Status] = true
		}
	}
	// Pending intents take every pending state across orders.
	for i := 0; i < 60; i++ {
		id := add(fmt.Sprintf("pend%d", i), simulator.Behaviour{Status: recon.ChannelPending})
		code, body := get(t, id, true)
		if code != 200 {
			t.Fatalf("%s: HTTP %d %s", id, code, body)
		}
		checkIntent(t, body, id, docKeys, true)
		in, _ := stripe.ParsePaymentIntent(body, id)
		if in.Result().Status != recon.ChannelPending {
			t.Fatalf("pending order answered %+v", in)
		}
		statuses[in.Status] = true
		if in.PaymentFailed {
			statuses["declined "+in.Status] = true
		}
	}
	for _, s := range []string{"succeeded", "canceled", "requires_payment_method", "requires_confirmation", "requires_action",
		"requires_capture", "processing", "declined requires_payment_method"} {
		if !statuses[s] {
			t.Errorf("the simulator never answered %s (got %v)", s, statuses)
		}
	}

	// Error replies decode strictly into the SDK's error type.
	for _, tc := range []struct {
		b    simulator.Behaviour
		code int
	}{
		{simulator.Behaviour{Status: recon.ChannelNotFound}, 404},
		{simulator.Behaviour{TransientFailures: 1}, 500},
		{simulator.Behaviour{RateLimits: 1}, 429},
		{simulator.Behaviour{PermanentError: true}, 403},
	} {
		id := add(fmt.Sprintf("err%d", tc.code), tc.b)
		code, body := get(t, id, false)
		if code != tc.code {
			t.Fatalf("%+v: HTTP %d, want %d", tc.b, code, tc.code)
		}
		var e struct {
			Error *stripego.Error `json:"error"`
		}
		strict(t, body, &e)
		if e.Error == nil || e.Error.Type == "" || e.Error.Msg == "" {
			t.Fatalf("error body %s", body)
		}
	}
	if code, _ := get(t, "pi_unknown", false); code != 404 {
		t.Fatalf("unknown intent: HTTP %d", code)
	}
}

// The simulator answers in the API version the SDK asks for when a
// request names none.
func TestSimulatorAPIVersionIsTheSDKs(t *testing.T) {
	if simulator.StripeAPIVersion != stripego.APIVersion {
		t.Fatalf("simulator answers in %s, the SDK asks for %s", simulator.StripeAPIVersion, stripego.APIVersion)
	}
}

// checkIntent checks one simulator intent against the SDK and the
// documented keys.
func checkIntent(t *testing.T, body []byte, id string, docKeys map[string]json.RawMessage, expand bool) {
	t.Helper()
	// Strict: an alias type has the SDK's fields without its lenient
	// UnmarshalJSON.
	type intent stripego.PaymentIntent
	var strictPI intent
	strict(t, body, &strictPI)
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		t.Fatal(err)
	}
	for k := range docKeys {
		if _, ok := keys[k]; !ok {
			t.Errorf("%s lacks the documented key %q", id, k)
		}
	}
	for k := range keys {
		if _, ok := docKeys[k]; !ok {
			t.Errorf("%s has the undocumented key %q", id, k)
		}
	}
	if raw := keys["latest_charge"]; expand && bytes.HasPrefix(raw, []byte("{")) {
		type charge stripego.Charge
		var ch charge
		strict(t, raw, &ch)
	}
	var pi stripego.PaymentIntent
	if err := json.Unmarshal(body, &pi); err != nil {
		t.Fatal(err)
	}
	sdkAgrees(t, body, &pi, id)
}

func strict(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("the SDK's types do not decode %s strictly: %v", body, err)
	}
}
