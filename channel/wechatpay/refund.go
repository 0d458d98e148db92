package wechatpay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// RefundsPath is the path of the refund query by the merchant's refund
// number (查询单笔退款（通过商户退款单号）), which follows it:
//
//	GET {base_url}/v3/refund/domestic/refunds/{out_refund_no}
//
// (wechatpay-go services/refunddomestic RefundsApiService.QueryByOutRefundNo;
// sub_mchid is for service providers only, and the query carries no mchid:
// the Authorization names the merchant).
const RefundsPath = "/v3/refund/domestic/refunds/"

// CodeResourceNotExists is the 404 code of a refund number WeChat Pay does
// not know (退款单不存在).
const CodeResourceNotExists = "RESOURCE_NOT_EXISTS"

// Refund is the body of a refund query answer: the fields recon reads or
// the simulator sends (wechatpay-go refunddomestic.Refund). Unknown fields
// are ignored.
type Refund struct {
	Amount              *RefundAmount `json:"amount,omitempty"`
	Channel             string        `json:"channel,omitempty"`
	CreateTime          string        `json:"create_time,omitempty"`
	FundsAccount        string        `json:"funds_account,omitempty"`
	OutRefundNo         string        `json:"out_refund_no"`
	OutTradeNo          string        `json:"out_trade_no,omitempty"`
	RefundID            string        `json:"refund_id,omitempty"`
	Status              string        `json:"status"`
	SuccessTime         string        `json:"success_time,omitempty"` // RFC 3339, SUCCESS only
	TransactionID       string        `json:"transaction_id,omitempty"`
	UserReceivedAccount string        `json:"user_received_account,omitempty"`
}

// RefundAmount is a refund's amounts in fen: refund is what was asked back
// (退款标价金额), total the order's; currency is CNY (目前只支持人民币).
type RefundAmount struct {
	Currency    string `json:"currency,omitempty"`
	PayerRefund *int64 `json:"payer_refund,omitempty"`
	PayerTotal  *int64 `json:"payer_total,omitempty"`
	Refund      *int64 `json:"refund,omitempty"`
	Total       *int64 `json:"total,omitempty"`
}

// RefundStatuses maps every status of a refund to recon's refund answers:
// SUCCESS 退款成功, CLOSED 退款关闭 (failed), PROCESSING 退款处理中,
// ABNORMAL 退款异常 (the buyer's card was cancelled or frozen: the merchant
// must handle it in the merchant platform; not final).
var RefundStatuses = map[string]recon.RefundChannelStatus{
	"SUCCESS":    recon.RefundChannelSucceeded,
	"CLOSED":     recon.RefundChannelFailed,
	"PROCESSING": recon.RefundChannelPending,
	"ABNORMAL":   recon.RefundChannelAbnormal,
}

// LookupRefund queries refund r by its refund number (out_refund_no),
// verified and classified exactly as Lookup: an unknown refund (404
// RESOURCE_NOT_EXISTS, signed) is a NOT_FOUND answer.
func (c *Client) LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	const op = "refund lookup"
	if r.RefundNo == "" {
		return recon.RefundLookup{}, channel.Permanent(c.errorf(op, r.RefundNo, "no refund number"))
	}
	rep, err := c.do(ctx, op, r.RefundNo, http.MethodGet, RefundsPath+url.PathEscape(r.RefundNo), nil)
	if err != nil {
		return recon.RefundLookup{}, err
	}
	return c.DecodeRefund(rep, r.RefundNo, r.OrderNo)
}

// DecodeRefund turns a raw answer of the refund query about refundNo (of
// order orderNo, "" to skip that check) into an answer or a classified
// error, exactly as LookupRefund does.
func (c *Client) DecodeRefund(r Reply, refundNo, orderNo string) (recon.RefundLookup, error) {
	const op = "refund lookup"
	switch notFound, err := c.open(r, op, refundNo, CodeResourceNotExists); {
	case err != nil:
		return recon.RefundLookup{}, err
	case notFound:
		return recon.RefundLookup{Status: recon.RefundChannelNotFound}, nil
	}
	res, err := ParseRefund(r.Body, refundNo, orderNo)
	if err != nil {
		return recon.RefundLookup{}, channel.Permanent(c.errorf(op, refundNo, "%w", err))
	}
	return res, nil
}

// ParseRefund parses a verified 200 answer about refund refundNo of order
// orderNo ("" skips that check). A SUCCESS answer must have amount.refund
// (whole fen, the refund's amount) and refund_id; currency is upper-cased;
// success_time becomes SucceededAt in UTC; an ABNORMAL answer's
// user_received_account is its Detail. Every error wraps
// channel.ErrMalformed and quotes at most 200 bytes of the body.
func ParseRefund(body []byte, refundNo, orderNo string) (recon.RefundLookup, error) {
	malformed := func(format string, args ...any) (recon.RefundLookup, error) {
		return recon.RefundLookup{}, fmt.Errorf("parse refund: %w: %s: %s", channel.ErrMalformed, fmt.Sprintf(format, args...), channel.Snippet(body))
	}
	var rf Refund
	if err := json.Unmarshal(body, &rf); err != nil {
		return malformed("%v", err)
	}
	switch {
	case rf.OutRefundNo != refundNo:
		return malformed("answer is about out_refund_no %q, not %q", channel.Truncate(rf.OutRefundNo), refundNo)
	case orderNo != "" && rf.OutTradeNo != "" && rf.OutTradeNo != orderNo:
		return malformed("answer is about out_trade_no %q, not %q", channel.Truncate(rf.OutTradeNo), orderNo)
	}
	status, ok := RefundStatuses[rf.Status]
	if !ok {
		return malformed("unknown status %q", channel.Truncate(rf.Status))
	}
	res := recon.RefundLookup{Status: status, ChannelRefundID: rf.RefundID}
	if a := rf.Amount; a != nil {
		for _, f := range []struct {
			name string
			v    *int64
		}{{"refund", a.Refund}, {"total", a.Total}, {"payer_refund", a.PayerRefund}, {"payer_total", a.PayerTotal}} {
			if f.v != nil && *f.v < 0 {
				return malformed("negative amount.%s %d", f.name, *f.v)
			}
		}
		if a.Refund != nil {
			res.Amount = *a.Refund
		}
		if a.Currency != "" {
			res.Currency = strings.ToUpper(a.Currency)
			if !recon.ValidCurrency(res.Currency) {
				return malformed("invalid amount.currency %q", channel.Truncate(a.Currency))
			}
		}
	}
	switch status {
	case recon.RefundChannelAbnormal:
		res.Detail = rf.UserReceivedAccount
	case recon.RefundChannelSucceeded:
		switch {
		case rf.Amount == nil || rf.Amount.Refund == nil:
			return malformed("%s without amount.refund", rf.Status)
		case rf.RefundID == "":
			return malformed("%s without refund_id", rf.Status)
		}
		if rf.SuccessTime != "" {
			at, err := time.Parse(time.RFC3339, rf.SuccessTime)
			if err != nil {
				return malformed("invalid success_time %q", channel.Truncate(rf.SuccessTime))
			}
			at = at.UTC()
			res.SucceededAt = &at
		}
	}
	return res, nil
}
