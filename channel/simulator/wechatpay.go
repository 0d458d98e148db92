package simulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/wechatpay"
)

func init() { mounts["wechatpay"] = mountWechatPay }

// TestWechatAppID is the appid of the simulated transactions (the one of
// WeChat Pay's documented examples).
const TestWechatAppID = "wxd678efh567hg6787"

// wechatStaleBy is how old a StaleTimestamp answer's timestamp is.
const wechatStaleBy = time.Hour

// chinaTime is the zone WeChat Pay writes its times in.
var chinaTime = time.FixedZone("CST", 8*3600)

// mountWechatPay serves WeChat Pay API v3's transaction query and close on
// mux: requests must carry a WECHATPAY2-SHA256-RSA2048 Authorization signed
// by keys.WechatMerchantKey (401 SIGN_ERROR otherwise), and every answer is
// signed with keys.WechatPlatformKey as keys.WechatPlatformKeyID.
func mountWechatPay(s *Sim, mux *http.ServeMux, orders OrderSource, keys Keys) {
	w := &wechatServer{sim: s, orders: orders, keys: keys, bills: map[string][]byte{}}
	mux.HandleFunc("GET "+wechatpay.TransactionsPath+"{out_trade_no}", w.query)
	mux.HandleFunc("POST "+wechatpay.TransactionsPath+"{out_trade_no}/close", w.close)
	mux.HandleFunc("GET "+wechatpay.RefundsPath+"{out_refund_no}", w.refund)
	mux.HandleFunc("GET "+wechatpay.TradeBillPath, w.tradeBill)
	mux.HandleFunc("GET "+WechatBillDownloadPath, w.downloadBill)
}

type wechatServer struct {
	sim    *Sim
	orders OrderSource
	keys   Keys

	mu    sync.Mutex
	bills map[string][]byte // rendered bills by download token
	order []string          // tokens, oldest first
}

// wechatReply is one answer before it is signed.
type wechatReply struct {
	status int
	header http.Header
	body   []byte
	// badSig signs with a key that is not the platform's; stale signs with a
	// timestamp wechatStaleBy in the past.
	badSig, stale bool
}

func wechatError(status int, code, msg string) wechatReply {
	body, _ := json.Marshal(wechatpay.APIError{Code: code, Message: msg}) // two strings always encode
	return wechatReply{status: status, body: body}
}

// query answers GET …/out-trade-no/{out_trade_no}?mchid=.
func (w *wechatServer) query(rw http.ResponseWriter, r *http.Request) {
	if _, ok := w.authenticate(rw, r); !ok {
		return
	}
	if r.URL.Query().Get("mchid") != w.keys.WechatMchID {
		w.write(rw, wechatError(http.StatusBadRequest, "PARAM_ERROR", "参数错误: mchid"))
		return
	}
	o, a, err := w.sim.AnswerFor(r.Context(), w.orders, r.PathValue("out_trade_no"))
	if err != nil {
		if r.Context().Err() == nil {
			w.write(rw, wechatError(http.StatusInternalServerError, wechatpay.CodeSystemError, "系统异常，请稍后重试"))
		}
		return
	}
	w.write(rw, w.render(o, a))
}

// refund answers GET /v3/refund/domestic/refunds/{out_refund_no} about the
// refunds of the order source (when it is a RefundSource): faults as for
// orders, an unknown refund 404 RESOURCE_NOT_EXISTS, SUCCESS, CLOSED (failed),
// PROCESSING and ABNORMAL as WeChat Pay sends them.
func (w *wechatServer) refund(rw http.ResponseWriter, r *http.Request) {
	if _, ok := w.authenticate(rw, r); !ok {
		return
	}
	rf, a, err := w.sim.RefundAnswerFor(r.Context(), refundsOf(w.orders), r.PathValue("out_refund_no"))
	if err != nil {
		if r.Context().Err() == nil {
			w.write(rw, wechatError(http.StatusInternalServerError, wechatpay.CodeSystemError, "系统异常，请稍后重试"))
		}
		return
	}
	w.write(rw, w.renderRefund(rf, a))
}

// renderRefund turns a refund answer into WeChat Pay's reply.
func (w *wechatServer) renderRefund(r recon.Refund, a RefundAnswer) wechatReply {
	var rep wechatReply
	switch {
	case a.Kind != AnswerStatus:
		rep = w.render(recon.Order{}, Answer{Kind: a.Kind, RetryAfter: a.RetryAfter})
	case a.Malformed:
		rep = wechatReply{status: http.StatusOK, body: []byte(`{"amount":{"refund":`)}
	case a.Status == recon.RefundChannelNotFound:
		rep = wechatError(http.StatusNotFound, wechatpay.CodeResourceNotExists, "退款单不存在")
	default:
		body, _ := json.Marshal(w.refundBody(r, a)) // strings and numbers always encode
		rep = wechatReply{status: http.StatusOK, body: body}
	}
	rep.badSig, rep.stale = a.BadSignature, a.StaleTimestamp
	return rep
}

// refundBody is the refund query answer about r. The simulator knows the
// refund, not its order: the order's total is sent as the refund's amount,
// a full refund.
func (w *wechatServer) refundBody(r recon.Refund, a RefundAnswer) wechatpay.Refund {
	currency := a.Currency
	if currency == "" {
		currency = "CNY"
	}
	amount, total := a.Amount, r.Amount
	created := r.CreatedAt
	if created.IsZero() {
		created = w.sim.cfg.Clock.Now()
	}
	rf := wechatpay.Refund{
		Amount:  &wechatpay.RefundAmount{Currency: currency, Refund: &amount, PayerRefund: &amount, Total: &total, PayerTotal: &total},
		Channel: "ORIGINAL", CreateTime: created.In(chinaTime).Format(time.RFC3339),
		FundsAccount: "AVAILABLE", OutRefundNo: a.AnsweredNo(r.RefundNo), OutTradeNo: r.OrderNo, RefundID: a.RefundID,
		Status: string(a.Status), TransactionID: w.sim.TxnID(r.OrderNo), UserReceivedAccount: "支付用户零钱",
	}
	switch a.Status {
	case recon.RefundChannelSucceeded:
		rf.Status, rf.SuccessTime = "SUCCESS", a.SucceededAt.In(chinaTime).Format(time.RFC3339)
	case recon.RefundChannelFailed:
		rf.Status = "CLOSED"
	case recon.RefundChannelPending:
		rf.Status = "PROCESSING"
	case recon.RefundChannelAbnormal:
		rf.Status, rf.UserReceivedAccount = "ABNORMAL", "招商银行信用卡0403"
	}
	return rf
}

// close answers POST …/out-trade-no/{out_trade_no}/close with 204, or the
// error WeChat Pay gives for an order that cannot be closed.
func (w *wechatServer) close(rw http.ResponseWriter, r *http.Request) {
	body, ok := w.authenticate(rw, r)
	if !ok {
		return
	}
	var req struct {
		MchID string `json:"mchid"`
	}
	if json.Unmarshal(body, &req) != nil || req.MchID != w.keys.WechatMchID {
		w.write(rw, wechatError(http.StatusBadRequest, "PARAM_ERROR", "参数错误: mchid"))
		return
	}
	no := r.PathValue("out_trade_no")
	o, found, err := w.orders.OrderByNo(r.Context(), no)
	switch {
	case err != nil:
		w.write(rw, wechatError(http.StatusInternalServerError, wechatpay.CodeSystemError, "系统异常，请稍后重试"))
		return
	case !found:
		w.write(rw, wechatError(http.StatusNotFound, wechatpay.CodeOrderNotExist, "订单不存在"))
		return
	}
	o.OrderNo = no
	err = w.sim.CloseOrder(r.Context(), o)
	switch {
	case err == nil:
		w.write(rw, wechatReply{status: http.StatusNoContent})
	case r.Context().Err() != nil:
		// the client is gone: nobody to answer
	case errors.Is(err, ErrClosePaid):
		w.write(rw, wechatError(http.StatusBadRequest, wechatpay.CodeOrderPaid, "订单已支付"))
	case errors.Is(err, ErrCloseNotFound):
		w.write(rw, wechatError(http.StatusNotFound, wechatpay.CodeOrderNotExist, "订单不存在"))
	case channel.ClassOf(err) != channel.ClassPermanent:
		w.write(rw, wechatError(http.StatusInternalServerError, wechatpay.CodeSystemError, "系统异常，请稍后重试"))
	default:
		w.write(rw, wechatError(http.StatusForbidden, "TRADE_ERROR", "交易错误"))
	}
}

// authenticate checks the request's Authorization as WeChat Pay does and
// returns the request body. On failure it answers 401 SIGN_ERROR (or 400 for
// an unreadable body) and returns false.
func (w *wechatServer) authenticate(rw http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, wechatpay.MaxBodyBytes))
	if err != nil {
		w.write(rw, wechatError(http.StatusBadRequest, "INVALID_REQUEST", "无法读取请求"))
		return nil, false
	}
	a, err := wechatpay.VerifyRequest(&w.keys.WechatMerchantKey.PublicKey, r.Header.Get("Authorization"),
		r.Method, r.RequestURI, body, w.sim.cfg.Clock.Now())
	if err == nil {
		switch {
		case a.MchID != w.keys.WechatMchID:
			err = errors.New("unknown mchid")
		case a.SerialNo != w.keys.WechatMerchantSerial:
			err = errors.New("serial_no is not the merchant certificate's")
		}
	}
	if err != nil {
		w.write(rw, wechatError(http.StatusUnauthorized, wechatpay.CodeSignError, "签名错误: "+err.Error()))
		return nil, false
	}
	return body, true
}

// render turns an answer into WeChat Pay's reply: faults are 500
// SYSTEM_ERROR, 429 FREQUENCY_LIMITED with Retry-After and 400
// INVALID_REQUEST; an unknown order 404 ORDER_NOT_EXIST; a status a
// transaction whose unpaid forms, like the real ones, have no currency and
// no transaction_id.
func (w *wechatServer) render(o recon.Order, a Answer) wechatReply {
	var rep wechatReply
	switch {
	case a.Kind == AnswerTransient:
		rep = wechatError(http.StatusInternalServerError, wechatpay.CodeSystemError, "系统异常，请稍后重试")
	case a.Kind == AnswerRateLimited:
		rep = wechatError(http.StatusTooManyRequests, wechatpay.CodeFrequencyLimited, "频率超限")
		rep.header = http.Header{"Retry-After": {RetryAfterHeader(a.RetryAfter)}}
	case a.Kind == AnswerPermanent:
		rep = wechatError(http.StatusBadRequest, "INVALID_REQUEST", "无效请求")
	case a.Malformed:
		rep = wechatReply{status: http.StatusOK, body: []byte(`{"amount":{"total":`)}
	case a.Status == recon.ChannelNotFound:
		rep = wechatError(http.StatusNotFound, wechatpay.CodeOrderNotExist, "订单不存在")
	default:
		body, _ := json.Marshal(w.transaction(o, a)) // strings and numbers always encode
		rep = wechatReply{status: http.StatusOK, body: body}
	}
	rep.badSig, rep.stale = a.BadSignature, a.StaleTimestamp
	return rep
}

// transaction is the query answer about o.
func (w *wechatServer) transaction(o recon.Order, a Answer) wechatpay.Transaction {
	currency := a.Currency
	if currency == "" {
		currency = "CNY"
	}
	total := a.Amount
	t := wechatpay.Transaction{
		Amount: &wechatpay.Amount{PayerCurrency: currency, Total: &total},
		AppID:  TestWechatAppID, MchID: w.keys.WechatMchID, OutTradeNo: o.OrderNo, TradeType: "NATIVE",
	}
	switch a.Status {
	case recon.ChannelPaid:
		t.TradeState, t.TradeStateDesc = "SUCCESS", "支付成功"
		t.Amount.Currency, t.Amount.PayerTotal = currency, &total
		t.TransactionID, t.SuccessTime = a.TxnID, a.PaidAt.In(chinaTime).Format(time.RFC3339)
		t.BankType, t.Payer = "OTHERS", &wechatpay.Payer{OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
	case recon.ChannelPending:
		t.TradeState, t.TradeStateDesc = "NOTPAY", "订单未支付"
	case recon.ChannelClosed:
		t.TradeState, t.TradeStateDesc = "CLOSED", "订单已关闭"
	case recon.ChannelFailed:
		t.TradeState, t.TradeStateDesc, t.TradeType = "PAYERROR", "支付失败，请重新下单支付", "MICROPAY"
	default:
		t.TradeState = string(a.Status) // an invalid forced status: the client must refuse it
	}
	return t
}

// write signs rep as WeChat Pay signs every answer and sends it.
func (w *wechatServer) write(rw http.ResponseWriter, rep wechatReply) {
	h := rw.Header()
	for k, vs := range rep.header {
		h[k] = vs
	}
	now := w.sim.cfg.Clock.Now()
	if rep.stale {
		now = now.Add(-wechatStaleBy)
	}
	key := w.keys.WechatPlatformKey
	if rep.badSig {
		key = w.keys.WechatMerchantKey // any key but the platform's
	}
	if err := wechatpay.SignResponse(h, key, w.keys.WechatPlatformKeyID, now.Unix(), wechatNonce(), rep.body); err != nil {
		http.Error(rw, "simulator: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h.Set("Request-ID", wechatNonce())
	if len(rep.body) > 0 {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	rw.WriteHeader(rep.status)
	_, _ = rw.Write(rep.body)
}

// wechatNonce is a response nonce as WeChat Pay sends them: 32 lower-case hex
// digits.
func wechatNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
