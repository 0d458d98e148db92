// Package alipay is the Alipay adapter (channel kind "alipay"): it looks
// orders up with alipay.trade.query and closes them with alipay.trade.close on
// the OpenAPI gateway (https://openapi.alipay.com/gateway.do by default).
//
// # What is spoken
//
// Each call is one form-encoded POST to the gateway URL with the common
// parameters app_id, method, format=JSON, charset=utf-8, sign_type=RSA2,
// timestamp ("2006-01-02 15:04:05", Beijing time), version=1.0 and
// biz_content={"out_trade_no":"<order_no>"}, signed RSA2: SHA256withRSA
// (PKCS #1 v1.5) with the app's private key over the non-empty parameters
// other than sign, sorted by name and joined as k=v&k=v with raw values, the
// signature in standard base64 in sign.
//
// The answer is JSON, {"alipay_trade_query_response":{...},"sign":"..."} (or
// an "error_response" node from the gateway itself). The signature covers
// the raw bytes of the *_response node exactly as they were sent, never a
// re-encoding, and is checked with Alipay's public key before anything in
// the node is believed. A node that does not verify is an error wrapping
// channel.ErrBadSignature. A node without a signature is never a result: a
// success or not-found answer without one is a bad signature; another
// unsigned failure is reported with its code, so that a misconfigured key
// (isv.invalid-signature, isv.invalid-app-id) is visible as such.
//
// # How answers map
//
//	code 10000, trade_status TRADE_SUCCESS, TRADE_FINISHED   PAID
//	code 10000, trade_status WAIT_BUYER_PAY                  PENDING
//	code 10000, trade_status TRADE_CLOSED                    CLOSED
//	sub_code ACQ.TRADE_NOT_EXIST (code 40004)                NOT_FOUND (a QR order never scanned)
//
// Alipay has no failed state: a payment attempt that fails leaves the trade
// WAIT_BUYER_PAY until it is paid or closed (by timeout or by
// alipay.trade.close), so this adapter never answers FAILED; an order whose
// payment failed ends CLOSED. The simulator renders recon's FAILED as
// TRADE_CLOSED for the same reason.
//
// total_amount (a decimal string, or a JSON number in Alipay's documented
// examples) is parsed exactly into minor units, never through a float; more
// decimals than the currency has is malformed. The currency is
// trans_currency when the answer has one (cross-border merchants price in it)
// and CNY otherwise, so an order in another currency answered in yuan is a
// currency mismatch. trade_no is the transaction id; send_pay_date (Beijing
// time) is the paid time, in UTC.
//
// # Refunds
//
// LookupRefund asks alipay.trade.fastpay.refund.query with
// biz_content {"out_trade_no":"<order_no>","out_request_no":"<refund_no>",
// "query_options":["gmt_refund_pay"]} (the refund number is the
// out_request_no the payment service sent with alipay.trade.refund), signed
// and verified as above:
//
//	code 10000, refund_status REFUND_SUCCESS    SUCCEEDED (refund_amount, yuan, exact; gmt_refund_pay)
//	code 10000 without refund_status            NOT_FOUND: "退款请求未收到或者退款失败"
//	sub_code ACQ.TRADE_NOT_EXIST                NOT_FOUND
//
// Code 10000 only says the query was made. Without refund_status Alipay
// has not received the refund, or it failed, and does not say which: the
// answer is NOT_FOUND (asked again, REFUND_STUCK past max_age), never FAILED,
// so recon never marks failed a refund that may yet be paid out. The query
// has no currency field: refund_amount is read as yuan (CNY). A business
// error comes back signed inside the node with an HTTP 200 (SDK clients
// such as smartwalle's return it with a nil error): its code and sub_code
// are classified like a trade query's. An answer naming another
// out_request_no or out_trade_no is malformed.
//
// # Errors
//
// HTTP 429 is rate-limited with the Retry-After; HTTP 5xx, network failures
// and the per-request timeout are transient; other HTTP statuses are
// permanent. A signed business failure is a normal HTTP 200 answer: code
// 20000 (isp.unknow-error), sub_code ACQ.SYSTEM_ERROR and other isp.* sub
// codes are transient; isv.*, the other 4000x codes and everything else are
// permanent. For alipay.trade.close, code 10000 is success;
// ACQ.TRADE_STATUS_ERROR (already paid or finished) and ACQ.TRADE_NOT_EXIST
// are permanent. A body that cannot be parsed wraps channel.ErrMalformed.
// Errors quote the channel's code, msg, sub_code and sub_msg and a bounded
// snippet of the body with any sign value blanked; keys and signatures never
// appear in them.
//
// # Statements
//
// FetchStatement asks alipay.data.dataservice.bill.downloadurl.query
// (bill_type trade, bill_date YYYY-MM-DD) for the day's trade bill, verifies
// the answer like a lookup's (isp.bill_not_exist is channel.ErrNoStatement)
// and downloads bill_download_url at once, as it expires in about 30 s,
// over https on that host only (Config.Insecure aside). The file is a zip of
// GBK-encoded CSVs with GBK names; ParseBill streams its detail
// (…_业务明细.csv) by column name, checks that it is of the channel's
// account (#账号) and day (#起始日期, 终止日期, every row's time), bounds it
// (Config.StatementLimits), and checks the rows against the footer totals
// (see ParseBill). WriteBill writes the same format for the simulator and
// the tests.
//
// The pure pieces (Sign, Verify, SignContent, SplitResponse, ParseQuery,
// ParseClose, ParseAmount, FormatAmount and the wire structs) are exported so
// that the simulator renders exactly the bytes the gateway sends.
//
// github.com/smartwalle/alipay/v3 is used in the tests only, as the
// independent signer and verifier: it decodes total_amount into a Go string,
// so it cannot read the gateway's documented answers, which carry it as a
// JSON number, and it hides the HTTP status (and Retry-After) of a reply.
package alipay
