// Package wechatpay is the channel adapter for WeChat Pay API v3 (channel
// kind "wechatpay").
//
// # What is spoken
//
// Lookup queries a transaction by the merchant's order number,
//
//	GET {base_url}/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={mch_id}
//
// and CloseOrder closes it,
//
//	POST {base_url}/v3/pay/transactions/out-trade-no/{out_trade_no}/close  {"mchid":"…"}  → 204
//
// Every request carries
//
//	Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="{cert_serial}"
//
// where signature is base64(SHA256withRSA(merchant private key,
// "METHOD\nPATH?QUERY\ntimestamp\nnonce\nbody\n")) (RequestMessage).
//
// Every answer recon acts on is verified: Wechatpay-Serial must be the
// configured public_key_id, Wechatpay-Signature must verify with the WeChat
// Pay public key over "Wechatpay-Timestamp\nWechatpay-Nonce\nbody\n"
// (ResponseMessage), and Wechatpay-Timestamp must be within five minutes of
// now; a failure wraps channel.ErrBadSignature. That covers 200 answers,
// 404 ORDER_NOT_EXIST (NOT_FOUND is a result) and the 204 of a close. Faults
// (429, 5xx) and refusals (other 4xx) are errors whatever their signature.
//
// # How answers map
//
//	trade_state SUCCESS, REFUND       PAID (amount.total, amount.currency, transaction_id, success_time)
//	trade_state NOTPAY, USERPAYING    PENDING (no currency, no transaction_id: both stay empty)
//	trade_state CLOSED, REVOKED       CLOSED
//	trade_state PAYERROR              FAILED
//	404 ORDER_NOT_EXIST               NOT_FOUND (a result)
//	429 FREQUENCY_LIMITED             channel.RateLimited, with Retry-After when sent
//	5xx SYSTEM_ERROR, network errors  channel.Transient (the per-request timeout too)
//	other 4xx (SIGN_ERROR, PARAM_ERROR, ORDERPAID on close, …)  channel.Permanent
//	unparseable body, unknown state   channel.Permanent wrapping channel.ErrMalformed
//	close: 400 ORDER_CLOSED           success (the order already cannot be paid)
//
// Amounts are whole fen (minor units) decoded straight into int64, never
// through a float; amount.payer_total (what the payer paid after coupons) is
// checked but not reported, since reconciliation compares the order total.
// Errors carry at most 200 bytes of the raw body, never keys or signatures.
//
// # The official SDK
//
// The wire code is written here rather than taken from
// github.com/wechatpay-apiv3/wechatpay-go: its client skips verification of
// non-2xx answers (a 404 is a result here and must be verified), its
// validator reads the wall clock and its errors print every header,
// signatures included. The SDK is the independent check in the tests
// instead: its signer and verifier must agree with this package both ways,
// and its client must accept the simulator's answers.
package wechatpay
