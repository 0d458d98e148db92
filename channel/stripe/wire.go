package stripe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v82"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// PaymentIntent statuses (the wire values).
const (
	StatusRequiresPaymentMethod = "requires_payment_method"
	StatusRequiresConfirmation  = "requires_confirmation"
	StatusRequiresAction        = "requires_action"
	StatusRequiresCapture       = "requires_capture"
	StatusProcessing            = "processing"
	StatusSucceeded             = "succeeded"
	StatusCanceled              = "canceled"
)

// Error codes the adapter acts on.
const (
	// CodeResourceMissing on a 404 means the intent does not exist.
	CodeResourceMissing = "resource_missing"
	// CodeUnexpectedState answers a cancel of an intent that is not
	// cancelable; the error carries the intent.
	CodeUnexpectedState = "payment_intent_unexpected_state"
)

// ShouldRetryHeader is Stripe's explicit advice on retrying a request.
const ShouldRetryHeader = "Stripe-Should-Retry"

// MaxBodyBytes is the largest response body read; a longer one is
// malformed.
const MaxBodyBytes = 1 << 20

// Reply is one raw HTTP answer of the Stripe API.
type Reply struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Intent is what the adapter reads of a PaymentIntent.
type Intent struct {
	ID             string
	Status         string
	Amount         int64  // amount, smallest currency unit
	AmountReceived int64  // amount_received
	Currency       string // ISO 4217, upper case
	Created        time.Time
	// LatestCharge is the id of latest_charge, expanded or not; "" when null.
	LatestCharge string
	// ChargeCreated is the expanded latest_charge's created time.
	ChargeCreated *time.Time
	// PaymentFailed: last_payment_error is set.
	PaymentFailed bool
}

// Result maps the intent to recon's normalised answer (see the package doc).
func (in Intent) Result() recon.LookupResult {
	r := recon.LookupResult{Amount: in.Amount, Currency: in.Currency, TxnID: in.LatestCharge}
	if r.TxnID == "" {
		r.TxnID = in.ID
	}
	switch in.Status {
	case StatusSucceeded:
		r.Status = recon.ChannelPaid
		r.Amount = in.AmountReceived
		paid := in.Created
		if in.ChargeCreated != nil {
			paid = *in.ChargeCreated
		}
		r.PaidAt = &paid
	case StatusCanceled:
		r.Status = recon.ChannelClosed
		if in.PaymentFailed {
			r.Status = recon.ChannelFailed
		}
	default:
		r.Status = recon.ChannelPending
	}
	return r
}

// wireIntent holds the raw fields of a PaymentIntent the adapter checks.
type wireIntent struct {
	ID               json.RawMessage `json:"id"`
	Object           json.RawMessage `json:"object"`
	Amount           json.RawMessage `json:"amount"`
	AmountReceived   json.RawMessage `json:"amount_received"`
	Currency         json.RawMessage `json:"currency"`
	Status           json.RawMessage `json:"status"`
	Created          json.RawMessage `json:"created"`
	LatestCharge     json.RawMessage `json:"latest_charge"`
	LastPaymentError json.RawMessage `json:"last_payment_error"`
}

// ParsePaymentIntent parses a 200 body that must be the PaymentIntent id.
// It is strict: the body must be one JSON object with object
// "payment_intent", the id asked for, a known status, integer amounts, a
// lower-case three-letter currency and an integer created time; latest_charge
// is null, a charge id or an expanded charge. Its errors wrap
// channel.ErrMalformed and quote a bounded, redacted snippet of the body.
func ParsePaymentIntent(body []byte, id string) (Intent, error) {
	in, err := parseIntent(body, id)
	if err != nil {
		return Intent{}, fmt.Errorf("%w: payment intent: %v: %s", channel.ErrMalformed, err, snippet(body))
	}
	return in, nil
}

func parseIntent(body []byte, id string) (Intent, error) {
	var w wireIntent
	if err := strictObject(body, &w); err != nil {
		return Intent{}, err
	}
	var in Intent
	obj, err := str(w.Object, "object")
	if err != nil {
		return Intent{}, err
	}
	if obj != "payment_intent" {
		return Intent{}, fmt.Errorf("object is %q, not payment_intent", channel.Truncate(obj))
	}
	if in.ID, err = str(w.ID, "id"); err != nil {
		return Intent{}, err
	}
	if in.ID != id {
		return Intent{}, fmt.Errorf("answer is about %q, not %q", channel.Truncate(in.ID), channel.Truncate(id))
	}
	if in.Status, err = str(w.Status, "status"); err != nil {
		return Intent{}, err
	}
	switch in.Status {
	case StatusRequiresPaymentMethod, StatusRequiresConfirmation, StatusRequiresAction, StatusRequiresCapture,
		StatusProcessing, StatusSucceeded, StatusCanceled:
	default:
		return Intent{}, fmt.Errorf("unknown status %q", channel.Truncate(in.Status))
	}
	if in.Amount, err = amount(w.Amount, "amount"); err != nil {
		return Intent{}, err
	}
	if in.AmountReceived, err = amount(w.AmountReceived, "amount_received"); err != nil {
		return Intent{}, err
	}
	cur, err := str(w.Currency, "currency")
	if err != nil {
		return Intent{}, err
	}
	if in.Currency, err = currency(cur); err != nil {
		return Intent{}, err
	}
	created, err := unixTime(w.Created, "created")
	if err != nil {
		return Intent{}, err
	}
	in.Created = created
	if in.LatestCharge, in.ChargeCreated, err = latestCharge(w.LatestCharge); err != nil {
		return Intent{}, err
	}
	switch {
	case isNull(w.LastPaymentError):
	case bytes.HasPrefix(bytes.TrimSpace(w.LastPaymentError), []byte("{")):
		in.PaymentFailed = true
	default:
		return Intent{}, errors.New("last_payment_error is neither null nor an object")
	}
	return in, nil
}

// strictObject decodes one JSON object into v, refusing anything else.
func strictObject(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("body is not a JSON object")
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return fmt.Errorf("decode: %v", err)
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// str reads a required, non-empty JSON string.
func str(raw json.RawMessage, name string) (string, error) {
	if isNull(raw) {
		return "", fmt.Errorf("%s is missing", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	if s == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return s, nil
}

// integer reads a required JSON integer exactly: digits only, no fraction,
// exponent or quotes, so that an amount never passes through a float.
func integer(raw json.RawMessage, name string) (int64, error) {
	t := bytes.TrimSpace(raw)
	if isNull(t) {
		return 0, fmt.Errorf("%s is missing", name)
	}
	digits := t
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return 0, fmt.Errorf("%s is not an integer", name)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s %s is not an integer", name, channel.Truncate(string(t)))
		}
	}
	n, err := strconv.ParseInt(string(t), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %s is out of range", name, channel.Truncate(string(t)))
	}
	return n, nil
}

func amount(raw json.RawMessage, name string) (int64, error) {
	n, err := integer(raw, name)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%s %d is negative", name, n)
	}
	return n, nil
}

// maxUnix bounds a plausible timestamp (year 9999).
const maxUnix = 253402300799

func unixTime(raw json.RawMessage, name string) (time.Time, error) {
	n, err := integer(raw, name)
	if err != nil {
		return time.Time{}, err
	}
	if n <= 0 || n > maxUnix {
		return time.Time{}, fmt.Errorf("%s %d is not a plausible time", name, n)
	}
	return time.Unix(n, 0).UTC(), nil
}

// currency checks a wire currency (three lower-case letters) and returns it
// upper-cased.
func currency(c string) (string, error) {
	if len(c) != 3 {
		return "", fmt.Errorf("currency %q is not a three-letter code", channel.Truncate(c))
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'a' || c[i] > 'z' {
			return "", fmt.Errorf("currency %q is not a lower-case three-letter code", c)
		}
	}
	return strings.ToUpper(c), nil
}

// latestCharge reads latest_charge: null, an id, or an expanded charge.
func latestCharge(raw json.RawMessage) (string, *time.Time, error) {
	if isNull(raw) {
		return "", nil, nil
	}
	t := bytes.TrimSpace(raw)
	if t[0] == '"' {
		id, err := str(raw, "latest_charge")
		return id, nil, err
	}
	var ch struct {
		ID      json.RawMessage `json:"id"`
		Object  json.RawMessage `json:"object"`
		Created json.RawMessage `json:"created"`
	}
	if err := strictObject(t, &ch); err != nil {
		return "", nil, errors.New("latest_charge is neither null, an id nor a charge")
	}
	if obj, err := str(ch.Object, "latest_charge.object"); err != nil || obj != "charge" {
		return "", nil, errors.New("latest_charge.object is not charge")
	}
	id, err := str(ch.ID, "latest_charge.id")
	if err != nil {
		return "", nil, err
	}
	created, err := unixTime(ch.Created, "latest_charge.created")
	if err != nil {
		return "", nil, err
	}
	return id, &created, nil
}

// ParseError decodes a Stripe error body ({"error": {...}}) into the SDK's
// error type. It returns nil when the body is not one.
func ParseError(body []byte) *stripego.Error {
	var raw struct {
		Error *stripego.Error `json:"error"`
	}
	if err := strictObject(body, &raw); err != nil || raw.Error == nil {
		return nil
	}
	if raw.Error.Type == "" && raw.Error.Msg == "" && raw.Error.Code == "" {
		return nil
	}
	return raw.Error
}

// Decode turns a raw lookup reply about the intent id into a result or a
// classified error, exactly as Client.Lookup does (see the package doc).
// now dates a Retry-After given as an HTTP date.
func Decode(r Reply, id string, now time.Time) (recon.LookupResult, error) {
	if r.StatusCode == http.StatusOK {
		in, err := ParsePaymentIntent(r.Body, id)
		if err != nil {
			return recon.LookupResult{}, channel.Permanent(err)
		}
		return in.Result(), nil
	}
	e := ParseError(r.Body)
	if r.StatusCode == http.StatusNotFound && e != nil && e.Code == CodeResourceMissing {
		return recon.LookupResult{Status: recon.ChannelNotFound}, nil
	}
	return recon.LookupResult{}, ReplyError(r, e, now)
}

// ReplyError classifies a reply that is not an answer: e is its decoded
// Stripe error, or nil when the body is not one. The message quotes the
// status, Stripe's type, code, message and request id (or a bounded snippet
// of the body), never a client secret or key.
func ReplyError(r Reply, e *stripego.Error, now time.Time) error {
	err := errors.New(describe(r, e))
	advice := strings.ToLower(strings.TrimSpace(r.Header.Get(ShouldRetryHeader)))
	switch {
	case advice == "false":
		return channel.Permanent(fmt.Errorf("%w (%s: false)", err, ShouldRetryHeader))
	case r.StatusCode == http.StatusTooManyRequests:
		return channel.RateLimited(channel.ParseRetryAfter(r.Header.Get("Retry-After"), now), err)
	case advice == "true", r.StatusCode == http.StatusConflict, r.StatusCode >= 500:
		return channel.Transient(err)
	}
	return channel.Permanent(err)
}

// describe renders a failed reply for an error message.
func describe(r Reply, e *stripego.Error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", r.StatusCode)
	if e == nil {
		fmt.Fprintf(&b, ": %s", snippet(r.Body))
		return b.String()
	}
	for _, part := range []string{string(e.Type), string(e.Code), string(e.DeclineCode)} {
		if part != "" {
			b.WriteString(" " + channel.Truncate(part))
		}
	}
	if e.Msg != "" {
		fmt.Fprintf(&b, ": %s", redact(channel.Truncate(e.Msg)))
	}
	if e.Param != "" {
		fmt.Fprintf(&b, " (param %s)", channel.Truncate(e.Param))
	}
	if id := r.Header.Get("Request-Id"); id != "" {
		fmt.Fprintf(&b, " [request %s]", channel.Truncate(id))
	}
	return b.String()
}

// secretPattern matches what must never reach a log: client secrets of
// intents and API keys, which Stripe may echo (masked or not).
var secretPattern = regexp.MustCompile(`(_secret_|\b[srp]k_(live|test)_)[0-9A-Za-z*_]+`)

func redact(s string) string {
	return secretPattern.ReplaceAllString(s, "${1}REDACTED")
}

// snippet quotes a bounded piece of a raw body for an error
// (channel.Snippet), with secrets redacted first.
func snippet(body []byte) string {
	return channel.Snippet([]byte(redact(string(body))))
}
