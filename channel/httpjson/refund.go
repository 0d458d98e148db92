package httpjson

import (
	"encoding/json"
	"fmt"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// RefundResponse is the body of a refund lookup answer (CONTRACT §10):
//
//	200 {"code":"0000","data":{"refund":"<refund_no>","order":"<order_no>",
//	     "status":"SUCCEEDED","amount":100,"currency":"CNY",
//	     "refund_txn_id":"...","succeeded_at":"<RFC3339>"}}
//
// signed in X-Signature like an order's answer. The codes are the channel's
// success_code and not_found_code.
type RefundResponse struct {
	Code string      `json:"code"`
	Msg  string      `json:"msg"`
	Data *RefundData `json:"data,omitempty"`
}

// RefundData is the refund part of a refund lookup answer.
type RefundData struct {
	// Refund is the refund number the answer is about.
	Refund string `json:"refund"`
	// Order is the paid order's number; when present it must be the
	// refund's.
	Order string `json:"order,omitempty"`
	// Status is one of RefundStatuses' keys.
	Status string `json:"status"`
	// Amount is in minor units; required when the status is SUCCEEDED.
	Amount *int64 `json:"amount,omitempty"`
	// Currency is an ISO 4217 code; case is normalised.
	Currency    string `json:"currency,omitempty"`
	RefundTxnID string `json:"refund_txn_id,omitempty"`
	// SucceededAt is RFC 3339.
	SucceededAt string `json:"succeeded_at,omitempty"`
}

// RefundStatuses maps data.status of a refund answer to recon's refund
// answers: the contract's SUCCEEDED, PENDING and FAILED, and ABNORMAL (a
// refund that needs the merchant's action at the channel, as WeChat Pay has
// them), which the simulator answers through this format too.
var RefundStatuses = map[string]recon.RefundChannelStatus{
	"SUCCEEDED": recon.RefundChannelSucceeded,
	"PENDING":   recon.RefundChannelPending,
	"FAILED":    recon.RefundChannelFailed,
	"ABNORMAL":  recon.RefundChannelAbnormal,
}

// DecodeRefund turns a raw reply of the refund lookup into an answer about
// refund refundNo (of order orderNo, "" to skip that check) or a classified
// error, exactly as Client.LookupRefund does: HTTP statuses and signatures
// are handled as Decode handles them, a verified 404 is NOT_FOUND, and a 200
// body is parsed by ParseRefundResponse.
func DecodeRefund(cfg Config, r Reply, refundNo, orderNo string) (recon.RefundLookup, error) {
	cfg = cfg.withDefaults()
	switch notFound, err := check(cfg, r, opRefund, refundNo); {
	case err != nil:
		return recon.RefundLookup{}, err
	case notFound:
		return recon.RefundLookup{Status: recon.RefundChannelNotFound}, nil
	}
	res, err := ParseRefundResponse(r.Body, refundNo, orderNo, cfg)
	if err != nil {
		return recon.RefundLookup{}, channel.Permanent(errorf(cfg, opRefund, refundNo, "%w", err))
	}
	return res, nil
}

// ParseRefundResponse parses a verified 200 body answering about refund
// refundNo of order orderNo ("" skips the order check) under the codes of
// cfg. The not-found code is a NOT_FOUND answer; another non-success code is
// an error naming the code and msg. An answer about another refund or
// order, an unknown status, a SUCCEEDED answer without an amount and every
// other failure wrap channel.ErrMalformed. Errors quote at most 200 bytes of
// the body.
func ParseRefundResponse(body []byte, refundNo, orderNo string, cfg Config) (recon.RefundLookup, error) {
	cfg = cfg.withDefaults()
	var r RefundResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return recon.RefundLookup{}, fmt.Errorf("parse refund response: %w: %v: %s", channel.ErrMalformed, err, channel.Snippet(body))
	}
	switch r.Code {
	case cfg.SuccessCode:
	case cfg.NotFoundCode:
		return recon.RefundLookup{Status: recon.RefundChannelNotFound}, nil
	default:
		return recon.RefundLookup{}, fmt.Errorf("parse refund response: channel answered code %q: %s", channel.Truncate(r.Code), channel.Truncate(r.Msg))
	}
	malformed := func(format string, args ...any) (recon.RefundLookup, error) {
		return recon.RefundLookup{}, fmt.Errorf("parse refund response: %w: %s: %s", channel.ErrMalformed, fmt.Sprintf(format, args...), channel.Snippet(body))
	}
	d := r.Data
	switch {
	case d == nil:
		return malformed("no data")
	case d.Refund != refundNo:
		return malformed("answer is about refund %q, not %q", channel.Truncate(d.Refund), refundNo)
	case orderNo != "" && d.Order != "" && d.Order != orderNo:
		return malformed("answer is about order %q, not %q", channel.Truncate(d.Order), orderNo)
	}
	status, ok := RefundStatuses[d.Status]
	if !ok {
		return malformed("unknown status %q", channel.Truncate(d.Status))
	}
	required := ""
	if status == recon.RefundChannelSucceeded {
		required = "SUCCEEDED"
	}
	f, problem := readFields(d.Amount, required, d.Currency, d.SucceededAt, "succeeded_at")
	if problem != "" {
		return malformed("%s", problem)
	}
	return recon.RefundLookup{Status: status, ChannelRefundID: d.RefundTxnID, Amount: f.amount, Currency: f.currency, SucceededAt: f.at}, nil
}
