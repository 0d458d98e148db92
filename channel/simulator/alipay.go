package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/alipay"
)

// AlipayGatewayPath is where Server serves Alipay's OpenAPI gateway: an
// alipay channel's base_url is the server's URL plus this path.
const AlipayGatewayPath = "/gateway.do"

func init() { mounts["alipay"] = mountAlipay }

func mountAlipay(s *Sim, mux *http.ServeMux, orders OrderSource, keys Keys) {
	mux.Handle(AlipayGatewayPath, s.AlipayHandler(orders, keys))
	mux.HandleFunc("GET "+AlipayBillPath, s.alipayBill(keys))
}

// AlipayHandler serves alipay.trade.query and alipay.trade.close as Alipay's
// gateway does (GET or form POST), from the same answers as every other
// wire format:
//
//   - the request must carry keys.AlipayAppID, sign_type RSA2, a timestamp
//     and a valid RSA2 signature by the app's key (keys.AlipayAppKey);
//     otherwise the answer is the gateway's isv.* error (unsigned when the
//     app is unknown);
//   - answers are signed with keys.AlipayKey over the raw bytes of the
//     *_response node; a BadSignature answer is signed with the app's key
//     instead, which Alipay's public key does not verify;
//   - PAID is TRADE_SUCCESS, PENDING WAIT_BUYER_PAY, CLOSED TRADE_CLOSED,
//     NOT_FOUND ACQ.TRADE_NOT_EXIST; FAILED is TRADE_CLOSED, as Alipay has
//     no failed state; a currency other than CNY is sent as trans_currency;
//   - a transient fault is the documented code 20000 isp.unknow-error, a
//     permanent one code 40006 isv.insufficient-isv-permissions, both
//     signed HTTP 200 answers; a rate limit is HTTP 429 with Retry-After;
//   - a Malformed answer is correctly signed but its total_amount is not a
//     number. Alipay's answers carry no timestamp: StaleTimestamp changes
//     nothing.
//
// Close is backed by Sim.CloseOrder: ACQ.TRADE_NOT_EXIST for an unknown
// order, ACQ.TRADE_STATUS_ERROR for one already paid or failed.
func (s *Sim) AlipayHandler(orders OrderSource, keys Keys) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		g := alipayGateway{s: s, keys: keys, w: w, base: requestBase(r)}
		g.serve(r.Context(), r.Form, orders)
	})
}

// alipayGateway answers one gateway request.
type alipayGateway struct {
	s    *Sim
	keys Keys
	w    http.ResponseWriter
	base string // scheme and host the request came to, for download URLs
}

// The gateway's msg for each code.
var alipayMsg = map[string]string{
	alipay.CodeSuccess:                 "Success",
	alipay.CodeUnavailable:             "Service Currently Unavailable",
	alipay.CodeMissingArguments:        "Missing Required Arguments",
	alipay.CodeInvalidArguments:        "Invalid Arguments",
	alipay.CodeBusinessFailed:          "Business Failed",
	alipay.CodeInsufficientPermissions: "Insufficient Permissions",
}

func alipayResult(code, subCode, subMsg string) alipay.Result {
	return alipay.Result{Code: code, Msg: alipayMsg[code], SubCode: subCode, SubMsg: subMsg}
}

func (g alipayGateway) serve(ctx context.Context, form map[string][]string, orders OrderSource) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	method := get("method")
	node := alipay.ResponseNode(method)
	switch method {
	case alipay.MethodQuery, alipay.MethodClose, alipay.MethodBillDownloadURL, alipay.MethodRefundQuery:
	case "":
		g.unsigned(alipay.ErrorNode, alipayResult(alipay.CodeMissingArguments, "isv.missing-method", "缺少方法名参数"))
		return
	default:
		g.unsigned(alipay.ErrorNode, alipayResult(alipay.CodeInvalidArguments, "isv.invalid-method", "不存在的方法名"))
		return
	}
	switch app := get("app_id"); {
	case app == "":
		g.unsigned(node, alipayResult(alipay.CodeMissingArguments, "isv.missing-app-id", "缺少AppID参数"))
		return
	case app != g.keys.AlipayAppID:
		// The gateway cannot tell which key would sign for an unknown app.
		g.unsigned(node, alipayResult(alipay.CodeInvalidArguments, "isv.invalid-app-id", "无效的AppID参数"))
		return
	}
	if res, ok := g.checkRequest(form, get); !ok {
		g.signed(node, res, false)
		return
	}
	if method == alipay.MethodBillDownloadURL {
		g.billURL(ctx, node, get("biz_content"))
		return
	}
	if method == alipay.MethodRefundQuery {
		g.refundQuery(ctx, node, orders, get("biz_content"))
		return
	}
	var biz struct {
		OutTradeNo string `json:"out_trade_no"`
	}
	if err := json.Unmarshal([]byte(get("biz_content")), &biz); err != nil || biz.OutTradeNo == "" {
		g.signed(node, alipayResult(alipay.CodeBusinessFailed, alipay.SubInvalidParameter, "参数无效"), false)
		return
	}
	if method == alipay.MethodClose {
		g.close(ctx, node, orders, biz.OutTradeNo)
		return
	}
	o, a, err := g.s.AnswerFor(ctx, orders, biz.OutTradeNo)
	if err != nil {
		if ctx.Err() == nil {
			g.signed(node, alipayResult(alipay.CodeUnavailable, "isp.unknow-error", "系统繁忙"), false)
		}
		return
	}
	g.answer(node, o, a)
}

// checkRequest checks the common parameters and the request's signature as
// the gateway does, answering the isv.* error when they do not hold.
func (g alipayGateway) checkRequest(form map[string][]string, get func(string) string) (alipay.Result, bool) {
	switch {
	case get("sign") == "":
		return alipayResult(alipay.CodeMissingArguments, "isv.missing-signature", "缺少签名参数"), false
	case get("sign_type") != alipay.SignType:
		return alipayResult(alipay.CodeInvalidArguments, "isv.invalid-signature-type", "无效的签名类型"), false
	case !strings.EqualFold(get("charset"), alipay.Charset):
		return alipayResult(alipay.CodeInvalidArguments, "isv.invalid-charset", "字符集错误"), false
	}
	if _, err := time.ParseInLocation(alipay.TimeLayout, get("timestamp"), alipay.Beijing); err != nil {
		return alipayResult(alipay.CodeInvalidArguments, "isv.invalid-timestamp", "非法的时间戳参数"), false
	}
	if err := alipay.Verify(&g.keys.AlipayAppKey.PublicKey, alipay.SignContent(form), get("sign")); err != nil {
		return alipayResult(alipay.CodeInvalidArguments, "isv.invalid-signature", "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配"), false
	}
	return alipay.Result{}, true
}

// answer renders one lookup answer.
func (g alipayGateway) answer(node string, o recon.Order, a Answer) {
	switch a.Kind {
	case AnswerTransient:
		g.signed(node, alipayResult(alipay.CodeUnavailable, "isp.unknow-error", "系统繁忙"), a.BadSignature)
		return
	case AnswerPermanent:
		g.signed(node, alipayResult(alipay.CodeInsufficientPermissions, "isv.insufficient-isv-permissions", "ISV权限不足，建议在开发者中心检查签约是否已经生效"), a.BadSignature)
		return
	case AnswerRateLimited:
		g.w.Header().Set("Retry-After", RetryAfterHeader(a.RetryAfter))
		http.Error(g.w, "Too Many Requests", http.StatusTooManyRequests)
		return
	}
	if a.Status == recon.ChannelNotFound {
		g.signed(node, alipayResult(alipay.CodeBusinessFailed, alipay.SubTradeNotExist, "交易不存在"), a.BadSignature)
		return
	}
	q := alipay.TradeQuery{
		Result:       alipayResult(alipay.CodeSuccess, "", ""),
		TradeNo:      g.s.TxnID(o.OrderNo),
		OutTradeNo:   o.OrderNo,
		BuyerLogonID: "159****5620",
		TradeStatus:  string(a.Status),
		TotalAmount:  alipay.Amount(alipay.FormatAmount(a.Amount, a.Currency)),
	}
	if a.Currency != alipay.DefaultCurrency {
		q.TransCurrency = a.Currency
	}
	switch a.Status {
	case recon.ChannelPaid:
		q.TradeStatus = alipay.TradeSuccess
		q.TradeNo = a.TxnID
		q.SendPayDate = a.PaidAt.In(alipay.Beijing).Format(alipay.TimeLayout)
	case recon.ChannelPending:
		q.TradeStatus = alipay.TradeWaitBuyerPay
	case recon.ChannelClosed, recon.ChannelFailed:
		q.TradeStatus = alipay.TradeClosed
	}
	if a.Malformed {
		q.TotalAmount = "¥" + q.TotalAmount
	}
	g.signed(node, q, a.BadSignature)
}

// refundQuery answers alipay.trade.fastpay.refund.query from the refund
// answers of the order source's refunds (when it is a RefundSource):
// SUCCEEDED is refund_status REFUND_SUCCESS with refund_amount in yuan (and
// gmt_refund_pay when query_options asks for it); PENDING, FAILED, ABNORMAL
// and NOT_FOUND are code 10000 without refund_status, as Alipay tells a
// refund it has not (yet) made; a refund of another trade is the same; an
// unknown refund of an unknown trade is ACQ.TRADE_NOT_EXIST. Faults and
// fault flags are rendered as for trade queries; WrongRefundNo names
// another out_request_no.
func (g alipayGateway) refundQuery(ctx context.Context, node string, orders OrderSource, bizContent string) {
	var biz alipay.RefundQueryBiz
	if err := json.Unmarshal([]byte(bizContent), &biz); err != nil || biz.OutTradeNo == "" || biz.OutRequestNo == "" {
		g.signed(node, alipayResult(alipay.CodeBusinessFailed, alipay.SubInvalidParameter, "参数无效"), false)
		return
	}
	busy := func() {
		if ctx.Err() == nil {
			g.signed(node, alipayResult(alipay.CodeUnavailable, "isp.unknow-error", "系统繁忙"), false)
		}
	}
	r, a, err := g.s.RefundAnswerFor(ctx, refundsOf(orders), biz.OutRequestNo)
	if err != nil {
		busy()
		return
	}
	if a.Kind != AnswerStatus {
		g.answer(node, recon.Order{}, Answer{Kind: a.Kind, RetryAfter: a.RetryAfter})
		return
	}
	o, orderKnown, err := orders.OrderByNo(ctx, biz.OutTradeNo)
	if err != nil {
		busy()
		return
	}
	notReceived := alipay.RefundQuery{Result: alipayResult(alipay.CodeSuccess, "", "")}
	switch {
	case r.OrderNo != "" && r.OrderNo != biz.OutTradeNo:
		g.signed(node, notReceived, a.BadSignature)
		return
	case a.Status == recon.RefundChannelNotFound && r.OrderNo == "" && !orderKnown:
		g.signed(node, alipayResult(alipay.CodeBusinessFailed, alipay.SubTradeNotExist, "交易不存在"), a.BadSignature)
		return
	case a.Status != recon.RefundChannelSucceeded && !a.Malformed:
		g.signed(node, notReceived, a.BadSignature)
		return
	}
	q := alipay.RefundQuery{
		Result:       alipayResult(alipay.CodeSuccess, "", ""),
		TradeNo:      g.s.TxnID(biz.OutTradeNo),
		OutTradeNo:   biz.OutTradeNo,
		OutRequestNo: a.AnsweredNo(biz.OutRequestNo),
		RefundAmount: alipay.Amount(alipay.FormatAmount(a.Amount, alipay.DefaultCurrency)),
		RefundStatus: alipay.RefundSuccess,
	}
	if orderKnown {
		q.TotalAmount = alipay.Amount(alipay.FormatAmount(o.Amount, alipay.DefaultCurrency))
	}
	if slices.Contains(biz.QueryOptions, alipay.OptionGmtRefundPay) {
		q.GmtRefundPay = a.SucceededAt.In(alipay.Beijing).Format(alipay.TimeLayout)
	}
	if a.Malformed {
		q.RefundAmount = "¥" + q.RefundAmount
	}
	g.signed(node, q, a.BadSignature)
}

// close closes the order at the simulated channel.
func (g alipayGateway) close(ctx context.Context, node string, orders OrderSource, orderNo string) {
	o, ok, err := orders.OrderByNo(ctx, orderNo)
	switch {
	case err != nil:
		g.signed(node, alipayResult(alipay.CodeUnavailable, "isp.unknow-error", "系统繁忙"), false)
		return
	case !ok:
		g.signed(node, alipayResult(alipay.CodeBusinessFailed, alipay.SubTradeNotExist, "交易不存在"), false)
		return
	}
	o.OrderNo = orderNo
	err = g.s.CloseOrder(ctx, o)
	switch {
	case err == nil:
		g.signed(node, alipay.TradeClose{Result: alipayResult(alipay.CodeSuccess, "", ""),
			TradeNo: g.s.TxnID(orderNo), OutTradeNo: orderNo}, false)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
	case errors.Is(err, ErrCloseNotFound):
		g.signed(node, alipayResult(alipay.CodeBusinessFailed, alipay.SubTradeNotExist, "交易不存在"), false)
	case errors.Is(err, ErrCloseRefused):
		g.signed(node, alipayResult(alipay.CodeInsufficientPermissions, "isv.insufficient-isv-permissions", "ISV权限不足，建议在开发者中心检查签约是否已经生效"), false)
	default: // already paid or failed
		g.signed(node, alipayResult(alipay.CodeBusinessFailed, alipay.SubTradeStatusError, "交易状态不合法"), false)
	}
}

// signed writes {"<node>":<v>,"sign":"..."}: the signature covers the node's
// bytes exactly as written. bad signs with the app's key, which Alipay's
// public key does not verify.
func (g alipayGateway) signed(node string, v any, bad bool) {
	b, _ := json.Marshal(v) // plain strings always encode
	key := g.keys.AlipayKey
	if bad {
		key = g.keys.AlipayAppKey
	}
	sig, err := alipay.Sign(key, b)
	if err != nil {
		http.Error(g.w, "sign: "+err.Error(), http.StatusInternalServerError)
		return
	}
	g.write(node, b, sig)
}

// unsigned writes {"<node>":<v>} without a signature, as the gateway does
// when it cannot tell which app is asking.
func (g alipayGateway) unsigned(node string, v any) {
	b, _ := json.Marshal(v)
	g.write(node, b, "")
}

func (g alipayGateway) write(node string, b []byte, sig string) {
	name, _ := json.Marshal(node)
	out := append(append([]byte("{"), name...), ':')
	out = append(out, b...)
	if sig != "" {
		out = append(out, `,"sign":"`...)
		out = append(out, sig...)
		out = append(out, '"')
	}
	out = append(out, '}')
	g.w.Header().Set("Content-Type", "text/html;charset=utf-8")
	_, _ = g.w.Write(out)
}
