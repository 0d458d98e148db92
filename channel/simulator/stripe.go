package simulator

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/httpjson"
)

// The Stripe wire format: GET /v1/payment_intents/{id} and
// POST /v1/payment_intents/{id}/cancel, authenticated with the secret key
// (Authorization: Bearer, or Basic with the key as user name, as Stripe
// accepts), answering PaymentIntent objects shaped as the API version the
// official SDK asks for, and Stripe's error objects. Intents are found by id
// through a TxnOrderSource (recon stores the intent id as channel_txn_id).
//
// Answers map to intents as the adapter reads them back: PAID succeeded
// (amount_received, latest_charge, expanded when asked), PENDING one of the
// requires_* states or processing (some requires_payment_method ones with
// the last_payment_error of a declined attempt, which is still pending),
// CLOSED canceled, FAILED canceled with a last_payment_error (Stripe has no
// failed state: an intent whose attempt failed stays payable until it is
// cancelled), NOT_FOUND 404 resource_missing. Faults: transient 500
// api_error, rate limited 429 rate_limit with Retry-After, permanent 403,
// malformed a 200 whose JSON is cut short. Stripe does not sign responses,
// so BadSignature and StaleTimestamp change nothing here. Refunds are
// served at GET /v1/refunds/{id} (see retrieveRefund).

func init() {
	mounts["stripe"] = func(s *Sim, mux *http.ServeMux, orders OrderSource, keys Keys) {
		h := &stripeServer{sim: s, orders: orders, key: keys.StripeAPIKey}
		mux.HandleFunc("GET /v1/payment_intents/{id}", h.auth(h.retrieve))
		mux.HandleFunc("POST /v1/payment_intents/{id}/cancel", h.auth(h.cancel))
		mux.HandleFunc("GET /v1/refunds/{id}", h.auth(h.retrieveRefund))
		mux.HandleFunc("GET /v1/balance_transactions", h.auth(h.balanceTransactions))
		mux.HandleFunc("/v1/", h.auth(h.unrecognized))
	}
}

// StripeAPIVersion is the Stripe-Version the simulator answers in when a
// request names none (the version of the SDK recon is built with).
const StripeAPIVersion = "2025-08-27.basil"

type stripeServer struct {
	sim    *Sim
	orders OrderSource
	key    string
}

// stripeError is the body of every Stripe error reply.
type stripeError struct {
	Error stripeErrorObject `json:"error"`
}

type stripeErrorObject struct {
	Code          string        `json:"code,omitempty"`
	DeclineCode   string        `json:"decline_code,omitempty"`
	DocURL        string        `json:"doc_url,omitempty"`
	Message       string        `json:"message"`
	Param         string        `json:"param,omitempty"`
	PaymentIntent *stripeIntent `json:"payment_intent,omitempty"`
	RequestLogURL string        `json:"request_log_url,omitempty"`
	Type          string        `json:"type"`
}

// stripeIntent is a PaymentIntent, its keys in the API reference's order.
type stripeIntent struct {
	ID                        string              `json:"id"`
	Object                    string              `json:"object"`
	Amount                    int64               `json:"amount"`
	AmountCapturable          int64               `json:"amount_capturable"`
	AmountDetails             map[string]any      `json:"amount_details"`
	AmountReceived            int64               `json:"amount_received"`
	Application               any                 `json:"application"`
	ApplicationFeeAmount      any                 `json:"application_fee_amount"`
	AutomaticPaymentMethods   any                 `json:"automatic_payment_methods"`
	CanceledAt                *int64              `json:"canceled_at"`
	CancellationReason        *string             `json:"cancellation_reason"`
	CaptureMethod             string              `json:"capture_method"`
	ClientSecret              string              `json:"client_secret"`
	ConfirmationMethod        string              `json:"confirmation_method"`
	Created                   int64               `json:"created"`
	Currency                  string              `json:"currency"`
	Customer                  any                 `json:"customer"`
	Description               *string             `json:"description"`
	LastPaymentError          *stripePaymentError `json:"last_payment_error"`
	LatestCharge              any                 `json:"latest_charge"`
	Livemode                  bool                `json:"livemode"`
	Metadata                  map[string]string   `json:"metadata"`
	NextAction                any                 `json:"next_action"`
	OnBehalfOf                any                 `json:"on_behalf_of"`
	PaymentMethod             *string             `json:"payment_method"`
	PaymentMethodOptions      map[string]any      `json:"payment_method_options"`
	PaymentMethodTypes        []string            `json:"payment_method_types"`
	Processing                any                 `json:"processing"`
	ReceiptEmail              any                 `json:"receipt_email"`
	Review                    any                 `json:"review"`
	SetupFutureUsage          any                 `json:"setup_future_usage"`
	Shipping                  any                 `json:"shipping"`
	Source                    any                 `json:"source"`
	StatementDescriptor       any                 `json:"statement_descriptor"`
	StatementDescriptorSuffix any                 `json:"statement_descriptor_suffix"`
	Status                    string              `json:"status"`
	TransferData              any                 `json:"transfer_data"`
	TransferGroup             any                 `json:"transfer_group"`
}

// stripePaymentError is last_payment_error: an error object about a declined
// attempt.
type stripePaymentError struct {
	Charge        string         `json:"charge"`
	Code          string         `json:"code"`
	DeclineCode   string         `json:"decline_code"`
	DocURL        string         `json:"doc_url"`
	Message       string         `json:"message"`
	PaymentMethod map[string]any `json:"payment_method"`
	Type          string         `json:"type"`
}

// stripeCharge is an expanded latest_charge.
type stripeCharge struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Amount         int64             `json:"amount"`
	AmountCaptured int64             `json:"amount_captured"`
	AmountRefunded int64             `json:"amount_refunded"`
	Captured       bool              `json:"captured"`
	Created        int64             `json:"created"`
	Currency       string            `json:"currency"`
	FailureCode    *string           `json:"failure_code"`
	FailureMessage *string           `json:"failure_message"`
	Livemode       bool              `json:"livemode"`
	Metadata       map[string]string `json:"metadata"`
	Paid           bool              `json:"paid"`
	PaymentIntent  string            `json:"payment_intent"`
	PaymentMethod  string            `json:"payment_method"`
	Refunded       bool              `json:"refunded"`
	Status         string            `json:"status"`
}

// auth checks the secret key as Stripe does before anything else, and adds
// the headers every Stripe reply carries.
func (h *stripeServer) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Request-Id", fmt.Sprintf("req_%014x", h.sim.hash(r.URL.Path, time.Now().String())>>8))
		version := r.Header.Get("Stripe-Version")
		if version == "" {
			version = StripeAPIVersion
		}
		w.Header().Set("Stripe-Version", version)
		key, ok := stripeKey(r)
		switch {
		case !ok:
			writeReply(w, stripeErrorReply(http.StatusUnauthorized, stripeErrorObject{Type: "invalid_request_error",
				Message: "You did not provide an API key. You need to provide your API key in the Authorization header, " +
					"using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."}))
		case subtle.ConstantTimeCompare([]byte(key), []byte(h.key)) != 1:
			writeReply(w, stripeErrorReply(http.StatusUnauthorized, stripeErrorObject{Type: "invalid_request_error",
				Message: "Invalid API Key provided: " + maskKey(key)}))
		default:
			next(w, r)
		}
	}
}

// stripeKey reads the API key from Bearer or Basic (key as user) auth.
func stripeKey(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	if key, ok := strings.CutPrefix(v, "Bearer "); ok && key != "" {
		return key, true
	}
	if enc, ok := strings.CutPrefix(v, "Basic "); ok {
		b, err := base64.StdEncoding.DecodeString(enc)
		if err == nil {
			user, _, _ := strings.Cut(string(b), ":")
			return user, user != ""
		}
	}
	return "", false
}

// maskKey shows a key as Stripe echoes a wrong one: its prefix and last four
// characters.
func maskKey(key string) string {
	prefix := ""
	for _, p := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_"} {
		if strings.HasPrefix(key, p) {
			prefix = p
		}
	}
	rest := key[len(prefix):]
	if len(rest) <= 4 {
		return prefix + strings.Repeat("*", len(rest))
	}
	return prefix + strings.Repeat("*", len(rest)-4) + rest[len(rest)-4:]
}

func (h *stripeServer) unrecognized(w http.ResponseWriter, r *http.Request) {
	writeReply(w, stripeErrorReply(http.StatusNotFound, stripeErrorObject{Type: "invalid_request_error",
		Message: fmt.Sprintf("Unrecognized request URL (%s: %s).", r.Method, r.URL.Path)}))
}

// resolve finds the order whose channel_txn_id is the intent id.
func (h *stripeServer) resolve(ctx context.Context, id string) (recon.Order, bool, error) {
	src, ok := h.orders.(TxnOrderSource)
	if !ok {
		return recon.Order{}, false, nil
	}
	return src.OrderByTxnID(ctx, id)
}

func (h *stripeServer) retrieve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	o, ok, err := h.resolve(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			writeReply(w, errSourceUnavailable())
		}
		return
	}
	var a Answer
	if ok {
		if a, err = h.sim.Next(ctx, o); err != nil {
			return
		}
	} else {
		if err := h.sim.sleep(ctx, 0); err != nil {
			return
		}
		a = h.sim.NotFound(id)
	}
	writeReply(w, h.sim.renderStripe(o, id, a, expands(r, "latest_charge")))
}

// retrieveRefund answers GET /v1/refunds/{id} about the refund whose
// channel_refund_id is id, found through the order source when it is a
// ChannelRefundSource: SUCCEEDED succeeded, PENDING pending (pending_reason
// processing), FAILED failed (failure_reason), ABNORMAL requires_action
// (the closest Stripe state: the customer must act), NOT_FOUND or an
// unknown id 404 resource_missing; faults as for intents. The refund's
// created time is its creation in recon, which a succeeded answer's time
// also is (a Stripe Refund carries no other).
func (h *stripeServer) retrieveRefund(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	rf, ok, err := h.resolveRefund(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			writeReply(w, errSourceUnavailable())
		}
		return
	}
	var a RefundAnswer
	if ok {
		if a, err = h.sim.NextRefund(ctx, rf); err != nil {
			return
		}
	} else {
		if err := h.sim.sleep(ctx, 0); err != nil {
			return
		}
		a = h.sim.RefundNotFound(id)
	}
	writeReply(w, h.sim.renderStripeRefund(rf, id, a))
}

// resolveRefund finds the refund whose channel_refund_id is id: through a
// ChannelRefundSource, or else by the simulator's own convention, which its
// statements follow too, that the refund numbered N without an id of its
// own is re_N at Stripe.
func (h *stripeServer) resolveRefund(ctx context.Context, id string) (recon.Refund, bool, error) {
	if src, ok := h.orders.(ChannelRefundSource); ok {
		if r, found, err := src.RefundByChannelID(ctx, id); err != nil || found {
			return r, found, err
		}
	}
	no, ok := strings.CutPrefix(id, "re_")
	src := refundsOf(h.orders)
	if !ok || src == nil {
		return recon.Refund{}, false, nil
	}
	r, found, err := src.RefundByNo(ctx, no)
	if err != nil || !found || (r.ChannelRefundID != "" && r.ChannelRefundID != id) {
		return recon.Refund{}, false, err
	}
	return r, true, nil
}

// renderStripeRefund turns a refund answer about the refund id into
// Stripe's reply.
func (s *Sim) renderStripeRefund(r recon.Refund, id string, a RefundAnswer) httpjson.Reply {
	switch {
	case a.Kind != AnswerStatus:
		return s.renderStripe(recon.Order{}, id, Answer{Kind: a.Kind, RetryAfter: a.RetryAfter}, false)
	case a.Status == recon.RefundChannelNotFound:
		return stripeErrorReply(http.StatusNotFound, stripeErrorObject{Type: "invalid_request_error", Code: "resource_missing",
			DocURL: "https://stripe.com/docs/error-codes/resource-missing", Param: "id",
			Message: fmt.Sprintf("No such refund: '%s'", id)})
	case a.Malformed:
		body := fmt.Sprintf(`{"id": %q, "object": "refund", "amount": %d, "status": `, id, a.Amount)
		return httpjson.Reply{StatusCode: http.StatusOK, Header: http.Header{}, Body: []byte(body)}
	}
	created := r.CreatedAt
	if created.IsZero() {
		created = s.cfg.Clock.Now()
	}
	no := r.RefundNo
	txn := fmt.Sprintf("txn_SIM%016X", s.hash(refundKey(no), "balance_transaction"))
	reason := "requested_by_customer"
	rf := stripeRefund{
		ID: a.AnsweredNo(id), Object: "refund", Amount: a.Amount, BalanceTransaction: &txn,
		Charge: fmt.Sprintf("ch_SIM%016X", s.hash(r.OrderNo, "charge")), Created: created.Unix(),
		Currency: strings.ToLower(a.Currency), DestinationDetails: map[string]any{"card": map[string]any{"type": "refund"}, "type": "card"},
		Metadata: map[string]string{"refund_no": no}, PaymentIntent: "pi_" + r.OrderNo,
		Reason: &reason, Status: string(a.Status),
	}
	switch a.Status {
	case recon.RefundChannelSucceeded:
		rf.Status = "succeeded"
	case recon.RefundChannelPending:
		rf.Status, rf.PendingReason = "pending", "processing"
	case recon.RefundChannelFailed:
		// A failed refund's balance transaction is reversed by another.
		rf.Status, rf.FailureReason = "failed", "expired_or_canceled_card"
		if s.hash(refundKey(no), "canceled")%2 == 0 {
			rf.Status, rf.FailureReason = "canceled", "merchant_request"
		}
	case recon.RefundChannelAbnormal:
		rf.Status = "requires_action"
		rf.NextAction = map[string]any{"display_details": map[string]any{
			"email_sent": map[string]any{"email_sent_at": created.Unix(), "email_sent_to": "buyer@example.com"},
			"expires_at": created.Add(45 * 24 * time.Hour).Unix()}, "type": "display_details"}
	}
	body, _ := json.MarshalIndent(rf, "", "  ") // plain values always encode
	return httpjson.Reply{StatusCode: http.StatusOK, Header: http.Header{}, Body: body}
}

// expands reports whether the request asks to expand field, in any of the
// forms Stripe accepts (expand[]=f, expand[0]=f).
func expands(r *http.Request, field string) bool {
	if err := r.ParseForm(); err != nil {
		return false
	}
	for k, vs := range r.Form {
		if k != "expand" && !strings.HasPrefix(k, "expand[") {
			continue
		}
		for _, v := range vs {
			if v == field {
				return true
			}
		}
	}
	return false
}

var stripeCancellationReasons = map[string]bool{"duplicate": true, "fraudulent": true, "requested_by_customer": true, "abandoned": true}

func (h *stripeServer) cancel(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if err := r.ParseForm(); err != nil {
		writeReply(w, stripeErrorReply(http.StatusBadRequest, stripeErrorObject{Type: "invalid_request_error",
			Message: "Invalid request body."}))
		return
	}
	reason := r.PostForm.Get("cancellation_reason")
	if reason != "" && !stripeCancellationReasons[reason] {
		writeReply(w, stripeErrorReply(http.StatusBadRequest, stripeErrorObject{Type: "invalid_request_error",
			Code: "parameter_invalid_empty", Param: "cancellation_reason",
			Message: "Invalid cancellation_reason: must be one of duplicate, fraudulent, requested_by_customer, or abandoned"}))
		return
	}
	o, ok, err := h.resolve(ctx, id)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			writeReply(w, errSourceUnavailable())
		}
		return
	case !ok:
		if h.sim.sleep(ctx, 0) == nil {
			writeReply(w, h.sim.renderStripe(o, id, Answer{Kind: AnswerStatus, Status: recon.ChannelNotFound}, false))
		}
		return
	}
	closeErr := h.sim.CloseOrder(ctx, o)
	if ctx.Err() != nil {
		return
	}
	if closeErr == nil {
		a := Answer{Kind: AnswerStatus, Status: recon.ChannelClosed, Amount: o.Amount, Currency: o.Currency}
		writeReply(w, h.sim.renderStripeIntent(o, id, a, false, reason))
		return
	}
	a, permanent := h.sim.peek(o)
	switch {
	case permanent:
		writeReply(w, h.sim.renderStripe(o, id, Answer{Kind: AnswerPermanent}, false))
	case a.Status == recon.ChannelNotFound:
		writeReply(w, h.sim.renderStripe(o, id, a, false))
	default:
		pi := h.sim.stripeIntentOf(o, id, a, false, "abandoned")
		writeReply(w, stripeErrorReply(http.StatusBadRequest, stripeErrorObject{Type: "invalid_request_error",
			Code: "payment_intent_unexpected_state", DocURL: "https://stripe.com/docs/error-codes/payment-intent-unexpected-state",
			Message: fmt.Sprintf("You cannot cancel this PaymentIntent because it has a status of %s. Only a PaymentIntent with one of "+
				"the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, "+
				"requires_action, processing.", pi.Status),
			PaymentIntent: &pi}))
	}
}

// peek returns the status a lookup of o would answer now (the order's own
// amount and currency), without counting a call or injecting a fault, and
// whether o fails every call permanently. It explains a refused close, so
// the order is not closed.
func (s *Sim) peek(o recon.Order) (Answer, bool) {
	s.mu.Lock()
	b, _ := s.behaviour(o)
	st := s.state(o.OrderNo)
	status := currentStatus(b, st.answers)
	if st.paid {
		status = recon.ChannelPaid
	}
	s.mu.Unlock()
	a := Answer{Kind: AnswerStatus, Status: status, Amount: o.Amount, Currency: o.Currency}
	if status == recon.ChannelPaid {
		a.TxnID, a.PaidAt = s.TxnID(o.OrderNo), s.paidAt(o)
	}
	return a, b.PermanentError
}

// renderStripe turns an answer about intent id into Stripe's reply.
func (s *Sim) renderStripe(o recon.Order, id string, a Answer, expandCharge bool) httpjson.Reply {
	switch a.Kind {
	case AnswerTransient:
		return stripeErrorReply(http.StatusInternalServerError, stripeErrorObject{Type: "api_error",
			Message: "An unknown error occurred (simulated transient failure)."})
	case AnswerRateLimited:
		r := stripeErrorReply(http.StatusTooManyRequests, stripeErrorObject{Type: "invalid_request_error", Code: "rate_limit",
			DocURL:  "https://stripe.com/docs/error-codes/rate-limit",
			Message: "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits."})
		r.Header.Set("Retry-After", RetryAfterHeader(a.RetryAfter))
		return r
	case AnswerPermanent:
		return stripeErrorReply(http.StatusForbidden, stripeErrorObject{Type: "invalid_request_error",
			Message: "The provided key does not have the required permissions for this endpoint (simulated permanent failure)."})
	}
	if a.Status == recon.ChannelNotFound {
		return stripeErrorReply(http.StatusNotFound, stripeErrorObject{Type: "invalid_request_error", Code: "resource_missing",
			DocURL: "https://stripe.com/docs/error-codes/resource-missing", Param: "intent",
			Message: fmt.Sprintf("No such payment_intent: '%s'", id)})
	}
	if a.Malformed {
		body := fmt.Sprintf(`{"id": %q, "object": "payment_intent", "amount": %d, "status": `, id, a.Amount)
		return httpjson.Reply{StatusCode: http.StatusOK, Header: http.Header{}, Body: []byte(body)}
	}
	return s.renderStripeIntent(o, id, a, expandCharge, "abandoned")
}

// renderStripeIntent is the 200 reply carrying the intent; reason is the
// cancellation_reason of a canceled one ("" for none).
func (s *Sim) renderStripeIntent(o recon.Order, id string, a Answer, expandCharge bool, reason string) httpjson.Reply {
	pi := s.stripeIntentOf(o, id, a, expandCharge, reason)
	body, _ := json.MarshalIndent(pi, "", "  ") // plain values always encode
	return httpjson.Reply{StatusCode: http.StatusOK, Header: http.Header{}, Body: body}
}

// Pending intents take one of these states, chosen per order.
var stripePending = []string{"requires_payment_method", "requires_payment_method", "requires_confirmation",
	"requires_action", "requires_capture", "processing"}

// stripeIntentOf renders the intent an answer describes.
func (s *Sim) stripeIntentOf(o recon.Order, id string, a Answer, expandCharge bool, reason string) stripeIntent {
	no := o.OrderNo
	created := o.CreatedAt
	if created.IsZero() {
		created = s.cfg.Clock.Now()
	}
	pm := fmt.Sprintf("pm_SIM%016X", s.hash(no, "payment_method"))
	pi := stripeIntent{
		ID: id, Object: "payment_intent", Amount: a.Amount,
		AmountDetails:           map[string]any{"tip": map[string]any{}},
		AutomaticPaymentMethods: map[string]bool{"enabled": true},
		CaptureMethod:           "automatic",
		ClientSecret:            fmt.Sprintf("%s_secret_SIM%016X", id, s.hash(no, "client_secret")),
		ConfirmationMethod:      "automatic",
		Created:                 created.Unix(),
		Currency:                strings.ToLower(a.Currency),
		Metadata:                map[string]string{"order_no": no},
		PaymentMethodOptions: map[string]any{"card": map[string]any{
			"installments": nil, "mandate_options": nil, "network": nil, "request_three_d_secure": "automatic"}},
		PaymentMethodTypes: []string{"card"},
	}
	declined := func() {
		charge := fmt.Sprintf("ch_SIM%016X", s.hash(no, "declined_charge"))
		pi.LastPaymentError = &stripePaymentError{Charge: charge, Code: "card_declined", DeclineCode: "generic_decline",
			DocURL: "https://stripe.com/docs/error-codes/card-declined", Message: "Your card was declined.",
			PaymentMethod: map[string]any{"id": pm, "object": "payment_method", "type": "card"}, Type: "card_error"}
		pi.LatestCharge = charge
		if expandCharge {
			pi.LatestCharge = s.stripeCharge(charge, id, pm, a, created, false)
		}
	}
	switch a.Status {
	case recon.ChannelPaid:
		pi.Status = "succeeded"
		pi.AmountReceived = a.Amount
		pi.PaymentMethod = &pm
		charge := "ch_" + a.TxnID
		pi.LatestCharge = charge
		if expandCharge {
			pi.LatestCharge = s.stripeCharge(charge, id, pm, a, a.PaidAt, true)
		}
	case recon.ChannelClosed, recon.ChannelFailed:
		pi.Status = "canceled"
		at := s.paidAt(o).Unix()
		pi.CanceledAt = &at
		if reason != "" {
			pi.CancellationReason = &reason
		}
		if a.Status == recon.ChannelFailed {
			declined()
		}
	default: // PENDING, or an invalid status sent as is
		pi.Status = stripePending[s.hash(no, "stripe_pending")%uint64(len(stripePending))]
		switch pi.Status {
		case "requires_payment_method":
			if s.hash(no, "stripe_declined")%2 == 0 {
				declined() // a declined attempt: the customer may still pay
			}
		case "requires_action":
			pi.PaymentMethod = &pm
			pi.NextAction = map[string]any{"type": "use_stripe_sdk", "use_stripe_sdk": map[string]any{}}
		case "requires_capture":
			pi.CaptureMethod = "manual"
			pi.AmountCapturable = a.Amount
			pi.PaymentMethod = &pm
		case "requires_confirmation":
			pi.ConfirmationMethod = "manual"
			pi.PaymentMethod = &pm
		case "processing":
			pi.PaymentMethod = &pm
			pi.Processing = map[string]any{"type": "card", "card": map[string]any{}}
		}
		if a.Status != recon.ChannelPending && a.Status != "" {
			pi.Status = strings.ToLower(string(a.Status))
		}
	}
	return pi
}

func (s *Sim) stripeCharge(id, intent, pm string, a Answer, at time.Time, paid bool) stripeCharge {
	ch := stripeCharge{ID: id, Object: "charge", Amount: a.Amount, Created: at.Unix(),
		Currency: strings.ToLower(a.Currency), Metadata: map[string]string{}, PaymentIntent: intent, PaymentMethod: pm}
	if paid {
		ch.AmountCaptured, ch.Captured, ch.Paid, ch.Status = a.Amount, true, true, "succeeded"
	} else {
		code, msg := "card_declined", "Your card was declined."
		ch.FailureCode, ch.FailureMessage, ch.Status = &code, &msg, "failed"
	}
	return ch
}

// errSourceUnavailable answers a request the order source failed.
func errSourceUnavailable() httpjson.Reply {
	return stripeErrorReply(http.StatusInternalServerError, stripeErrorObject{Type: "api_error",
		Message: "An unknown error occurred (order source unavailable)."})
}

func stripeErrorReply(code int, e stripeErrorObject) httpjson.Reply {
	body, _ := json.MarshalIndent(stripeError{Error: e}, "", "  ") // plain values always encode
	return httpjson.Reply{StatusCode: code, Header: http.Header{}, Body: body}
}
