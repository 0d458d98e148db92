package stripe

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// leaked finds a secret-shaped value that was not redacted.
var leaked = regexp.MustCompile(`(_secret_|[srp]k_(live|test)_)([0-9A-Za-z*_]+)`)

// checkMessage fails when an error message is unbounded or quotes a secret.
func checkMessage(t *testing.T, err error, extra int) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 12*channel.MaxSnippet+4*extra+400 {
		t.Errorf("error is %d bytes long", len(msg))
	}
	for _, ix := range leaked.FindAllStringSubmatchIndex(msg, -1) {
		whole, secret := msg[ix[0]:ix[1]], msg[ix[6]:ix[7]]
		// Redaction runs before the snippet is cut, so a marker cut at
		// the end of a snippet ("_secret_REDAC"...) is no secret.
		cutMarker := secret != "" && strings.HasPrefix("REDACTED", secret) && strings.HasPrefix(msg[ix[1]:], `"...`)
		if secret != "REDACTED" && !cutMarker {
			t.Errorf("error quotes a secret %q: %s", whole, msg)
		}
	}
}

// checkResult fails when an accepted answer is not well formed.
func checkResult(t *testing.T, r recon.LookupResult) {
	t.Helper()
	if !r.Status.Valid() {
		t.Fatalf("accepted invalid status %q", r.Status)
	}
	if r.Amount < 0 {
		t.Errorf("accepted negative amount %d", r.Amount)
	}
	if r.Status == recon.ChannelNotFound {
		return
	}
	if !recon.ValidCurrency(r.Currency) {
		t.Errorf("accepted currency %q", r.Currency)
	}
	if r.TxnID == "" {
		t.Errorf("no transaction id in %+v", r)
	}
	if (r.Status == recon.ChannelPaid) != (r.PaidAt != nil) {
		t.Errorf("paid_at %v with status %s", r.PaidAt, r.Status)
	}
	if r.PaidAt != nil && r.PaidAt.Location() != time.UTC {
		t.Errorf("paid_at %s not in UTC", r.PaidAt)
	}
}

// FuzzParsePaymentIntent feeds arbitrary 200 bodies to the PaymentIntent
// parser: it must never panic, only accept well-formed intents about the id
// asked for, and keep its errors bounded, malformed and free of secrets.
func FuzzParsePaymentIntent(f *testing.F) {
	f.Add([]byte(`{"id":"pi_1","object":"payment_intent","amount":100,"amount_received":100,"currency":"usd","status":"succeeded","created":1700000000,"latest_charge":"ch_1","last_payment_error":null}`), "pi_1")
	f.Add([]byte(`{"id":"pi_1","object":"payment_intent","amount":100,"amount_received":0,"currency":"eur","status":"canceled","created":1,"latest_charge":{"id":"ch_1","object":"charge","created":2},"last_payment_error":{"type":"card_error"},"client_secret":"pi_1_secret_abc"}`), "pi_1")
	f.Add([]byte(`{"id":"pi_1","object":"payment_intent","amount":1e2}`), "pi_1")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		in, err := ParsePaymentIntent(body, id)
		if err != nil {
			if in != (Intent{}) {
				t.Errorf("error %v with a non-zero intent %+v", err, in)
			}
			if !errors.Is(err, channel.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			checkMessage(t, err, len(id))
			return
		}
		if in.ID != id {
			t.Fatalf("accepted an intent about %q for %q", in.ID, id)
		}
		if in.Amount < 0 || in.AmountReceived < 0 {
			t.Fatalf("accepted negative amounts %+v", in)
		}
		checkResult(t, in.Result())
	})
}

// FuzzParseErrorReply feeds arbitrary non-200 replies to the lookup and
// cancel decoders: they must never panic, classify every reply, and keep
// their errors bounded and free of secrets.
func FuzzParseErrorReply(f *testing.F) {
	f.Add(404, "", "", []byte(`{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such payment_intent: 'pi_1'"}}`), "pi_1")
	f.Add(429, "2", "", []byte(`{"error":{"type":"invalid_request_error","code":"rate_limit","message":"slow"}}`), "pi_1")
	f.Add(500, "", "false", []byte(`{"error":{"type":"api_error","message":"An unknown error occurred"}}`), "pi_1")
	f.Add(400, "", "", []byte(`{"error":{"type":"invalid_request_error","code":"payment_intent_unexpected_state","message":"x","payment_intent":{"id":"pi_1","status":"canceled","client_secret":"pi_1_secret_zz"}}}`), "pi_1")
	f.Add(401, "", "", []byte(`{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_live_****abcd"}}`), "pi_1")
	f.Add(502, "Wed, 21 Oct 2015 07:28:00 GMT", "true", []byte(`<html>bad gateway</html>`), "pi_1")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retryAfter, shouldRetry string, body []byte, id string) {
		if status == http.StatusOK {
			status = http.StatusCreated // 200 bodies are FuzzParsePaymentIntent's
		}
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set(ShouldRetryHeader, shouldRetry)
		r := Reply{StatusCode: status, Header: h, Body: body}
		res, err := Decode(r, id, now)
		if err == nil {
			if res.Status != recon.ChannelNotFound || status != http.StatusNotFound {
				t.Fatalf("HTTP %d answered %+v", status, res)
			}
		} else {
			if res != (recon.LookupResult{}) {
				t.Errorf("error %v with a non-zero result %+v", err, res)
			}
			var ce *channel.Error
			if !errors.As(err, &ce) {
				t.Fatalf("unclassified error %v", err)
			}
			if ce.RetryAfter < 0 || ce.RetryAfter > 24*time.Hour {
				t.Errorf("retry after %s", ce.RetryAfter)
			}
			checkMessage(t, err, len(id))
		}
		if err := DecodeCancel(r, id, now); err != nil {
			checkMessage(t, err, len(id))
		} else if status != http.StatusBadRequest {
			t.Fatalf("cancel accepted HTTP %d", status)
		}
	})
}

// FuzzParseRefund feeds arbitrary bodies to ParseRefund: it must never
// panic, refuse with a bounded ErrMalformed, and accept only storable
// answers about the refund asked for.
func FuzzParseRefund(f *testing.F) {
	f.Add([]byte(`{"id":"re_1","object":"refund","amount":1000,"currency":"usd","created":1692942318,"status":"succeeded"}`), "re_1")
	f.Add([]byte(`{"id":"re_1","object":"refund","amount":1000,"currency":"usd","created":1692942318,"status":"failed","failure_reason":"declined"}`), "re_1")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		r, err := ParseRefund(body, id)
		if err != nil {
			if r != (recon.RefundLookup{}) || !errors.Is(err, channel.ErrMalformed) {
				t.Fatalf("error %v with answer %+v", err, r)
			}
			if len(err.Error()) > 4*channel.MaxSnippet+8*len(id)+400 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
			return
		}
		if r.ChannelRefundID != id {
			t.Errorf("accepted an answer about %q, not %q", r.ChannelRefundID, id)
		}
		switch {
		case !r.Status.Valid() || r.Status == recon.RefundChannelNotFound || r.Status == recon.RefundChannelAbnormal:
			t.Fatalf("accepted status %q", r.Status)
		case !recon.ValidCurrency(r.Currency):
			t.Errorf("accepted currency %q", r.Currency)
		case (r.SucceededAt != nil) != (r.Status == recon.RefundChannelSucceeded):
			t.Errorf("succeeded_at %v on %s", r.SucceededAt, r.Status)
		case r.Amount < 0:
			t.Errorf("accepted amount %d", r.Amount)
		}
	})
}
