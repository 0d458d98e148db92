package wechatpay

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Transaction is the body of a transaction query answer: the fields recon
// reads or the simulator sends, in the alphabetical order WeChat Pay sends
// them. Answers carry more; unknown fields are ignored.
type Transaction struct {
	Amount         *Amount `json:"amount,omitempty"`
	AppID          string  `json:"appid,omitempty"`
	BankType       string  `json:"bank_type,omitempty"`
	MchID          string  `json:"mchid,omitempty"`
	OutTradeNo     string  `json:"out_trade_no"`
	Payer          *Payer  `json:"payer,omitempty"`
	SuccessTime    string  `json:"success_time,omitempty"` // RFC 3339, paid answers only
	TradeState     string  `json:"trade_state"`
	TradeStateDesc string  `json:"trade_state_desc,omitempty"`
	TradeType      string  `json:"trade_type,omitempty"`
	TransactionID  string  `json:"transaction_id,omitempty"` // paid answers only
}

// Amount is a transaction's amount in fen (minor units). An unpaid answer
// has total and payer_currency but no currency.
type Amount struct {
	Currency      string `json:"currency,omitempty"`
	PayerCurrency string `json:"payer_currency,omitempty"`
	PayerTotal    *int64 `json:"payer_total,omitempty"`
	Total         *int64 `json:"total,omitempty"`
}

// Payer identifies who paid.
type Payer struct {
	OpenID string `json:"openid,omitempty"`
}

// APIError is the body of every 4xx and 5xx answer.
type APIError struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// Error codes recon acts on.
const (
	CodeOrderNotExist    = "ORDER_NOT_EXIST"   // 404: the channel does not know the order
	CodeFrequencyLimited = "FREQUENCY_LIMITED" // 429
	CodeSystemError      = "SYSTEM_ERROR"      // 5xx
	CodeSignError        = "SIGN_ERROR"        // 401: the request's signature was refused
	CodeOrderClosed      = "ORDER_CLOSED"      // 400 from close: already closed
	CodeOrderPaid        = "ORDERPAID"         // 400 from close: paid, cannot be closed
)

// TradeStates maps every trade_state of a transaction to recon's status.
var TradeStates = map[string]recon.ChannelStatus{
	"SUCCESS":    recon.ChannelPaid,
	"REFUND":     recon.ChannelPaid, // paid, then (partly) refunded: the payment happened
	"NOTPAY":     recon.ChannelPending,
	"USERPAYING": recon.ChannelPending,
	"CLOSED":     recon.ChannelClosed,
	"REVOKED":    recon.ChannelClosed,
	"PAYERROR":   recon.ChannelFailed,
}

// ParseTransaction parses a verified 200 answer about orderNo from merchant
// mchID ("" skips that check). Amounts are whole fen, never fractions; a paid
// answer must have amount.total and transaction_id; currency is upper-cased
// and may be missing (unpaid answers lack it); success_time becomes PaidAt in
// UTC. Every error wraps channel.ErrMalformed and quotes at most 200 bytes of
// the body.
func ParseTransaction(body []byte, orderNo, mchID string) (recon.LookupResult, error) {
	malformed := func(format string, args ...any) (recon.LookupResult, error) {
		return recon.LookupResult{}, fmt.Errorf("parse transaction: %w: %s: %s", channel.ErrMalformed, fmt.Sprintf(format, args...), channel.Snippet(body))
	}
	var t Transaction
	if err := json.Unmarshal(body, &t); err != nil {
		return malformed("%v", err)
	}
	if t.OutTradeNo != orderNo {
		return malformed("answer is about out_trade_no %q, not %q", channel.Truncate(t.OutTradeNo), orderNo)
	}
	if mchID != "" && t.MchID != "" && t.MchID != mchID {
		return malformed("answer is for mchid %q, not %q", channel.Truncate(t.MchID), mchID)
	}
	status, ok := TradeStates[t.TradeState]
	if !ok {
		return malformed("unknown trade_state %q", channel.Truncate(t.TradeState))
	}
	res := recon.LookupResult{Status: status, TxnID: t.TransactionID}
	if a := t.Amount; a != nil {
		if a.Total != nil {
			if *a.Total < 0 {
				return malformed("negative amount.total %d", *a.Total)
			}
			res.Amount = *a.Total
		}
		if a.PayerTotal != nil && *a.PayerTotal < 0 {
			return malformed("negative amount.payer_total %d", *a.PayerTotal)
		}
		if a.Currency != "" {
			res.Currency = strings.ToUpper(a.Currency)
			if !recon.ValidCurrency(res.Currency) {
				return malformed("invalid amount.currency %q", channel.Truncate(a.Currency))
			}
		}
	}
	if status != recon.ChannelPaid {
		return res, nil
	}
	switch {
	case t.Amount == nil || t.Amount.Total == nil:
		return malformed("%s without amount.total", t.TradeState)
	case t.TransactionID == "":
		return malformed("%s without transaction_id", t.TradeState)
	}
	if t.SuccessTime != "" {
		paid, err := time.Parse(time.RFC3339, t.SuccessTime)
		if err != nil {
			return malformed("invalid success_time %q", channel.Truncate(t.SuccessTime))
		}
		paid = paid.UTC()
		res.PaidAt = &paid
	}
	return res, nil
}

// ParseAPIError parses an error answer's body. A body that is not the error
// shape, or has no code, wraps channel.ErrMalformed.
func ParseAPIError(body []byte) (APIError, error) {
	var e APIError
	if err := json.Unmarshal(body, &e); err != nil {
		return APIError{}, fmt.Errorf("parse error answer: %w: %v: %s", channel.ErrMalformed, err, channel.Snippet(body))
	}
	if e.Code == "" {
		return APIError{}, fmt.Errorf("parse error answer: %w: no code: %s", channel.ErrMalformed, channel.Snippet(body))
	}
	return e, nil
}
