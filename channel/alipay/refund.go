package alipay

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// MethodRefundQuery asks about one refund (统一收单交易退款查询). Its
// request names the trade (out_trade_no) and the refund (out_request_no, the
// refund number sent with alipay.trade.refund); query_options
// ["gmt_refund_pay"] asks for the refund's time, which is otherwise not
// returned.
const MethodRefundQuery = "alipay.trade.fastpay.refund.query"

// RefundSuccess is the only refund_status of the refund query: "REFUND_SUCCESS
// 退款处理成功；未返回该字段表示退款请求未收到或者退款失败" (smartwalle/alipay
// TradeFastPayRefundQueryRsp; the method's documentation). Code 10000
// alone only says that the query was made.
const RefundSuccess = "REFUND_SUCCESS"

// OptionGmtRefundPay is the query option asking for gmt_refund_pay.
const OptionGmtRefundPay = "gmt_refund_pay"

// RefundQuery is the alipay_trade_fastpay_refund_query_response node: the
// fields recon reads or the simulator sends.
type RefundQuery struct {
	Result
	TradeNo      string `json:"trade_no,omitempty"`
	OutTradeNo   string `json:"out_trade_no,omitempty"`
	OutRequestNo string `json:"out_request_no,omitempty"`
	// TotalAmount is the trade's amount; RefundAmount this refund's, in
	// yuan.
	TotalAmount  Amount `json:"total_amount,omitempty"`
	RefundAmount Amount `json:"refund_amount,omitempty"`
	RefundStatus string `json:"refund_status,omitempty"`
	// GmtRefundPay is the refund's time (TimeLayout, Beijing), sent only
	// when query_options asks for it.
	GmtRefundPay string `json:"gmt_refund_pay,omitempty"`
}

// RefundQueryBiz is the biz_content of a refund query.
type RefundQueryBiz struct {
	OutTradeNo   string   `json:"out_trade_no"`
	OutRequestNo string   `json:"out_request_no"`
	QueryOptions []string `json:"query_options,omitempty"`
}

// RefundRequest returns the signed form of a refund query about refund
// refundNo of the trade orderNo, timestamped now.
func RefundRequest(appID string, key *rsa.PrivateKey, orderNo, refundNo string, now time.Time) (url.Values, error) {
	return signedForm(appID, key, MethodRefundQuery,
		RefundQueryBiz{OutTradeNo: orderNo, OutRequestNo: refundNo, QueryOptions: []string{OptionGmtRefundPay}}, now)
}

// LookupRefund asks alipay.trade.fastpay.refund.query about refund r (by
// out_trade_no and out_request_no). The answer is opened and verified as
// Lookup's is; see ParseRefundQuery for what it means.
func (c *Client) LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	res, err := c.lookupRefund(ctx, r)
	if err != nil {
		return recon.RefundLookup{}, fmt.Errorf("alipay %s: refund lookup %s: %w", c.cfg.Name, r.RefundNo, err)
	}
	return res, nil
}

func (c *Client) lookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	if r.OrderNo == "" || r.RefundNo == "" {
		return recon.RefundLookup{}, channel.Permanent(fmt.Errorf("the refund query needs the order number (out_trade_no) and the refund number (out_request_no)"))
	}
	form, err := RefundRequest(c.cfg.AppID, c.cfg.PrivateKey, r.OrderNo, r.RefundNo, c.cfg.Now())
	if err != nil {
		return recon.RefundLookup{}, channel.Permanent(err)
	}
	node, err := c.post(ctx, MethodRefundQuery, form)
	if err != nil {
		return recon.RefundLookup{}, err
	}
	return ParseRefundQuery(node, r.RefundNo, r.OrderNo)
}

// ParseRefundQuery reads a verified alipay_trade_fastpay_refund_query_response
// node about refund refundNo of trade orderNo:
//
//   - code 10000 with refund_status REFUND_SUCCESS is SUCCEEDED, with
//     refund_amount (yuan, read exactly into fen: CNY, the query carries no
//     currency) and gmt_refund_pay; out_request_no must be refundNo, and
//     out_trade_no, when sent, orderNo;
//   - code 10000 without refund_status is NOT_FOUND: Alipay did not receive
//     the refund, or it failed, and the two cannot be told apart, so it is
//     never taken as FAILED (the refund is asked again; past max_age it is
//     REFUND_STUCK);
//   - ACQ.TRADE_NOT_EXIST (the trade, hence the refund, is unknown) is
//     NOT_FOUND; other failures are classified *Error values. They come back
//     signed inside the node with code 40004 and a sub_code, never as an
//     HTTP error.
//
// Another refund_status, or an answer about another refund, wraps
// channel.ErrMalformed (permanent).
func ParseRefundQuery(node []byte, refundNo, orderNo string) (recon.RefundLookup, error) {
	var q RefundQuery
	if err := json.Unmarshal(node, &q); err != nil {
		return recon.RefundLookup{}, malformed(node, "%v", err)
	}
	switch {
	case q.Code == CodeSuccess:
	case q.SubCode == SubTradeNotExist:
		return recon.RefundLookup{Status: recon.RefundChannelNotFound}, nil
	case q.Code == "":
		return recon.RefundLookup{}, malformed(node, "no code")
	default:
		return recon.RefundLookup{}, classify(&Error{Method: MethodRefundQuery, Result: q.Result})
	}
	switch {
	case q.OutRequestNo != "" && q.OutRequestNo != refundNo:
		return recon.RefundLookup{}, malformed(node, "answer is about out_request_no %q, not %q", channel.Truncate(q.OutRequestNo), refundNo)
	case q.OutTradeNo != "" && q.OutTradeNo != orderNo:
		return recon.RefundLookup{}, malformed(node, "answer is about out_trade_no %q, not %q", channel.Truncate(q.OutTradeNo), orderNo)
	}
	switch q.RefundStatus {
	case "":
		return recon.RefundLookup{Status: recon.RefundChannelNotFound}, nil
	case RefundSuccess:
	default:
		return recon.RefundLookup{}, malformed(node, "unknown refund_status %q", channel.Truncate(q.RefundStatus))
	}
	switch {
	case q.OutRequestNo == "":
		// A success must say which refund succeeded.
		return recon.RefundLookup{}, malformed(node, "%s without out_request_no", RefundSuccess)
	case q.RefundAmount == "":
		return recon.RefundLookup{}, malformed(node, "%s without refund_amount", RefundSuccess)
	}
	amount, err := ParseAmount(string(q.RefundAmount), DefaultCurrency)
	if err != nil {
		return recon.RefundLookup{}, malformed(node, "refund_amount: %v", err)
	}
	res := recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: amount, Currency: DefaultCurrency}
	if q.GmtRefundPay != "" {
		t, err := time.ParseInLocation(TimeLayout, q.GmtRefundPay, Beijing)
		if err != nil {
			return recon.RefundLookup{}, malformed(node, "invalid gmt_refund_pay %q", channel.Truncate(q.GmtRefundPay))
		}
		t = t.UTC()
		res.SucceededAt = &t
	}
	return res, nil
}
