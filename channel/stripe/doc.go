// Package stripe is the channel adapter for Stripe (channel kind "stripe").
// It looks orders up as PaymentIntents and closes them by cancelling the
// intent.
//
// # What is spoken
//
// Lookup is GET {base_url}/v1/payment_intents/{id}?expand[0]=latest_charge,
// where id is the order's channel_txn_id (the PaymentIntent id, pi_…).
// Close is POST {base_url}/v1/payment_intents/{id}/cancel with
// cancellation_reason=abandoned. Both carry Authorization: Bearer {api_key}
// and the SDK's Stripe-Version. The requests are built and sent by the
// official SDK (github.com/stripe/stripe-go/v82) with its backend pointed at
// base_url (default https://api.stripe.com), its own retries off (channel.
// Guarded retries) and its logger silenced; the adapter records the raw reply
// of each request and decides from it (Decode), so that every status code,
// header and byte is judged, not only what the SDK's types keep. A 200 body
// must also decode with the SDK's PaymentIntent type.
//
// An order without a channel_txn_id, or with one that is not a pi_ id,
// cannot be looked up: that is a permanent error naming the order, not
// NOT_FOUND, because the channel has said nothing about it.
//
// Stripe responses are not signed (the secret key and TLS authenticate
// them), so there is no signature to verify; instead every body is checked
// strictly: object "payment_intent", the id asked for, a known status,
// integer amounts (never through float), a three-letter lower-case currency.
// Anything else wraps channel.ErrMalformed.
//
// # Statuses
//
//	succeeded                         PAID (amount_received, latest_charge)
//	requires_payment_method,
//	requires_confirmation,
//	requires_action, requires_capture,
//	processing                        PENDING
//	canceled, no last_payment_error   CLOSED
//	canceled with last_payment_error  FAILED
//	404 resource_missing              NOT_FOUND
//
// Stripe has no terminal "failed" state: a declined attempt puts the intent
// back to requires_payment_method with last_payment_error set, and the
// customer may still pay it, so that stays PENDING. Only a cancelled intent
// is final; one whose last attempt failed is reported FAILED (it was tried
// and can no longer be paid), one never successfully attempted is CLOSED.
// A PAID answer's amount is amount_received, in Stripe's smallest currency
// unit, which is recon's minor unit (for ISK, which Stripe writes with two
// decimals, orders must be stored in Stripe's unit). The transaction id is
// latest_charge (or the intent id when it has no charge), paid_at the
// charge's created time (or the intent's).
//
// # Refunds
//
// LookupRefund is GET {base_url}/v1/refunds/{id} (the SDK's
// V1Refunds.Retrieve), where id is the refund's channel_refund_id, the re_…
// id Stripe gave the refund; a refund without one (or with something else
// there) is a permanent error naming the refund, and nothing is asked. The
// body is checked as strictly as an intent's (object "refund", the id asked
// for, an integer amount, a lower-case currency) and must decode with the
// SDK's Refund type:
//
//	succeeded                  SUCCEEDED (amount, currency; created is its time:
//	                           a Refund carries no other)
//	pending, requires_action   PENDING (pending_reason, or "requires_action":
//	                           the customer must act, as for refunds by email)
//	failed, canceled           FAILED (failure_reason as its detail)
//	404 resource_missing       NOT_FOUND
//
// Errors are classified as a lookup's.
//
// # Statements
//
// Stripe has no daily file: a day's statement is its balance transactions
// created between the day's midnights in Config.StatementZone, listed with
// the SDK's iterator (GET /v1/balance_transactions, created[gte],
// created[lt], 100 a page, expand[]=data.source so that each names its
// PaymentIntent, which is how recon knows Stripe orders). FetchStatement
// writes each page's JSON as received, compacted to one line;
// ParseBalanceTransactions reads that back, strictly (integer amounts, net =
// amount − fee, the day's window, has_more false on the last page only).
// charge and payment are payments, refund and payment_refund refunds; fee
// keeps Stripe's sign (a positive cost).
//
// # Errors
//
//	429                          rate limited, with Retry-After when sent
//	409, 5xx, network, timeout   transient
//	Stripe-Should-Retry: true    transient; false: permanent (as the SDK obeys it)
//	other 4xx (400, 401, 402,
//	403, 404 without
//	resource_missing)            permanent
//	unparseable or invalid body  permanent, wrapping channel.ErrMalformed
//
// Cancelling an intent that is already canceled succeeds (Stripe answers
// 400 payment_intent_unexpected_state carrying the canceled intent); one
// that succeeded or is unknown fails permanently.
//
// Error messages quote the HTTP status, Stripe's error type, code, message
// and request id, or a bounded snippet of an unparseable body, with client
// secrets and API keys redacted. The API key itself is never logged or put
// in an error.
package stripe
