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
// and LookupRefund queries a refund by the merchant's refund number
// (CONTRACT §10),
//
//	GET {base_url}/v3/refund/domestic/refunds/{out_refund_no}
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
// and for refunds (verified the same way, 404 included):
//
//	status SUCCESS       SUCCEEDED (amount.refund in fen, amount.currency, refund_id, success_time)
//	status CLOSED        FAILED (退款关闭)
//	status PROCESSING    PENDING
//	status ABNORMAL      ABNORMAL (退款异常: the merchant must act in the merchant platform;
//	                     not final; user_received_account is kept as its detail)
//	404 RESOURCE_NOT_EXISTS   NOT_FOUND (a result)
//
// An answer whose out_refund_no (or out_trade_no) is not the refund's is
// malformed.
//
// Amounts are whole fen (minor units) decoded straight into int64, never
// through a float; amount.payer_total (what the payer paid after coupons) is
// checked but not reported, since reconciliation compares the order total.
// Errors carry at most 200 bytes of the raw body, never keys or signatures.
//
// # Statements
//
// FetchStatement asks GET {base_url}/v3/bill/tradebill?bill_date=…&bill_type=ALL&tar_type=GZIP
// for a day's trade bill (signed and verified like every call; 400
// NO_STATEMENT_EXIST or STATEMENT_CREATING is channel.ErrNoStatement), then
// downloads download_url with a signed request, over https on that host
// only (Config.Insecure aside), decompressed to Config.StatementLimits at
// most. The download is not signed:
// its SHA-1, over the decompressed bytes with their BOM and CRLF, must equal
// hash_value before anything is written (wechatpay-go has no helper for this;
// the official Java SDK checks it the same way). ParseBill streams the file
// by column name (both layouts), refuses rows of another 商户号 than mch_id
// or outside the day, and checks it against its summary row;
// WriteBill writes the format for the simulator and the tests.
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
