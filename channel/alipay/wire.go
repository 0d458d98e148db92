package alipay

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// API methods.
const (
	MethodQuery = "alipay.trade.query"
	MethodClose = "alipay.trade.close"
)

// Common parameter values.
const (
	Format   = "JSON"
	Charset  = "utf-8"
	SignType = "RSA2"
	Version  = "1.0"
	// TimeLayout is the layout of timestamp and send_pay_date, in Beijing
	// time.
	TimeLayout = "2006-01-02 15:04:05"
	// ErrorNode is the node the gateway answers with when it cannot tell
	// which method was called.
	ErrorNode = "error_response"
)

// Beijing is the gateway's time zone (UTC+8; China has no daylight saving
// time).
var Beijing = time.FixedZone("CST", 8*60*60)

// Gateway codes (code) and business sub codes (sub_code).
const (
	CodeSuccess                 = "10000"
	CodeUnavailable             = "20000" // Service Currently Unavailable
	CodeInvalidAuthToken        = "20001"
	CodeMissingArguments        = "40001"
	CodeInvalidArguments        = "40002"
	CodeBusinessFailed          = "40004"
	CodeInsufficientPermissions = "40006"

	SubTradeNotExist    = "ACQ.TRADE_NOT_EXIST"
	SubSystemError      = "ACQ.SYSTEM_ERROR"
	SubTradeStatusError = "ACQ.TRADE_STATUS_ERROR"
	SubInvalidParameter = "ACQ.INVALID_PARAMETER"
)

// Trade statuses (trade_status).
const (
	TradeWaitBuyerPay = "WAIT_BUYER_PAY"
	TradeSuccess      = "TRADE_SUCCESS"
	TradeFinished     = "TRADE_FINISHED"
	TradeClosed       = "TRADE_CLOSED"
)

// DefaultCurrency is the currency of amounts without trans_currency.
const DefaultCurrency = "CNY"

// ResponseNode is the name of the node answering method:
// alipay.trade.query answers in alipay_trade_query_response.
func ResponseNode(method string) string {
	return strings.ReplaceAll(method, ".", "_") + "_response"
}

// SignContent is the string a request's signature covers: every non-empty
// parameter but sign, sorted by name, as name=value joined by &, the values
// raw (not URL-encoded).
func SignContent(params url.Values) []byte {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "sign" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		for _, v := range params[k] {
			if v == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	return b.Bytes()
}

// Sign returns the RSA2 signature of content (SHA256withRSA, PKCS #1 v1.5)
// in standard base64.
func Sign(key *rsa.PrivateKey, content []byte) (string, error) {
	sum := sha256.Sum256(content)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks that sig is the RSA2 signature of content under pub. Its
// errors wrap channel.ErrBadSignature and never quote the signature.
func Verify(pub *rsa.PublicKey, content []byte, sig string) error {
	sig = strings.TrimSpace(sig)
	if sig == "" {
		return fmt.Errorf("verify signature: no sign: %w", channel.ErrBadSignature)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("verify signature: sign is not base64: %w", channel.ErrBadSignature)
	}
	sum := sha256.Sum256(content)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], raw); err != nil {
		return fmt.Errorf("verify signature: %w", channel.ErrBadSignature)
	}
	return nil
}

// SplitResponse takes a gateway answer to method apart: the raw bytes of its
// *_response node (or of error_response, when that is all there is), exactly
// as sent, and the sign ("" when the answer has none). Errors wrap
// channel.ErrMalformed.
func SplitResponse(body []byte, method string) (node []byte, sign string, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, "", fmt.Errorf("%w: %v: %s", channel.ErrMalformed, err, snippet(body))
	}
	node = top[ResponseNode(method)]
	if len(node) == 0 {
		node = top[ErrorNode]
	}
	if len(node) == 0 || node[0] != '{' {
		return nil, "", fmt.Errorf("%w: no %s object: %s", channel.ErrMalformed, ResponseNode(method), snippet(body))
	}
	if raw, ok := top["sign"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &sign); err != nil {
			return nil, "", fmt.Errorf("%w: sign is not a string", channel.ErrMalformed)
		}
	}
	return node, sign, nil
}

// Result is the part every *_response node shares.
type Result struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code,omitempty"`
	SubMsg  string `json:"sub_msg,omitempty"`
}

// TradeQuery is the alipay_trade_query_response node: the fields recon
// reads, and buyer_logon_id, which the simulator sends as the gateway does.
type TradeQuery struct {
	Result
	TradeNo      string `json:"trade_no,omitempty"`
	OutTradeNo   string `json:"out_trade_no,omitempty"`
	BuyerLogonID string `json:"buyer_logon_id,omitempty"`
	TradeStatus  string `json:"trade_status,omitempty"`
	TotalAmount  Amount `json:"total_amount,omitempty"`
	// TransCurrency is the currency total_amount is priced in; absent for
	// yuan.
	TransCurrency string `json:"trans_currency,omitempty"`
	SendPayDate   string `json:"send_pay_date,omitempty"`
}

// TradeClose is the alipay_trade_close_response node.
type TradeClose struct {
	Result
	TradeNo    string `json:"trade_no,omitempty"`
	OutTradeNo string `json:"out_trade_no,omitempty"`
}

// Amount is a decimal amount in major units ("88.88") as the gateway sends
// it: a JSON string, or a JSON number in the documented examples. It keeps
// the literal text; ParseAmount reads it exactly. It is written as a string.
type Amount string

// UnmarshalJSON keeps the text of a JSON string or number.
func (a *Amount) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*a = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Amount(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("amount %s is neither a string nor a number", channel.Truncate(string(b)))
	}
	*a = Amount(n)
	return nil
}

// Error is a failure the gateway answered (any code but 10000).
type Error struct {
	Method string
	Result
	// Unsigned: the answer carried no signature.
	Unsigned bool
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s answered code %s %s", e.Method, channel.Truncate(e.Code), channel.Truncate(e.Msg))
	if e.SubCode != "" || e.SubMsg != "" {
		s += fmt.Sprintf(", sub_code %s %s", channel.Truncate(e.SubCode), channel.Truncate(e.SubMsg))
	}
	if e.Unsigned {
		s += " (unsigned)"
	}
	return s
}

// Transient reports whether the failure may go away by itself: the gateway
// being unavailable (code 20000), ACQ.SYSTEM_ERROR and the other isp.*
// (Alipay-side) sub codes.
func (e *Error) Transient() bool {
	return e.Code == CodeUnavailable || e.SubCode == SubSystemError || strings.HasPrefix(e.SubCode, "isp.")
}

// classify marks a gateway failure transient or permanent.
func classify(e *Error) error {
	if e.Transient() {
		return channel.Transient(e)
	}
	return channel.Permanent(e)
}

// ParseQuery reads a verified alipay_trade_query_response node about
// orderNo. ACQ.TRADE_NOT_EXIST is a NOT_FOUND result; other failures are
// classified *Error values; a node that cannot be read wraps
// channel.ErrMalformed (permanent).
func ParseQuery(node []byte, orderNo string) (recon.LookupResult, error) {
	var q TradeQuery
	if err := json.Unmarshal(node, &q); err != nil {
		return recon.LookupResult{}, malformed(node, "%v", err)
	}
	switch {
	case q.Code == CodeSuccess:
	case q.SubCode == SubTradeNotExist:
		return recon.LookupResult{Status: recon.ChannelNotFound}, nil
	case q.Code == "":
		return recon.LookupResult{}, malformed(node, "no code")
	default:
		return recon.LookupResult{}, classify(&Error{Method: MethodQuery, Result: q.Result})
	}
	if q.OutTradeNo == "" || q.OutTradeNo != orderNo {
		return recon.LookupResult{}, malformed(node, "answer is about out_trade_no %q, not %q", channel.Truncate(q.OutTradeNo), orderNo)
	}
	var res recon.LookupResult
	var ok bool
	if res.Status, ok = TradeStatus(q.TradeStatus); !ok {
		return recon.LookupResult{}, malformed(node, "unknown trade_status %q", channel.Truncate(q.TradeStatus))
	}
	res.TxnID = q.TradeNo
	if q.TotalAmount != "" {
		cur := DefaultCurrency
		if q.TransCurrency != "" {
			cur = strings.ToUpper(q.TransCurrency)
			if !recon.ValidCurrency(cur) {
				return recon.LookupResult{}, malformed(node, "invalid trans_currency %q", channel.Truncate(q.TransCurrency))
			}
		}
		amount, err := ParseAmount(string(q.TotalAmount), cur)
		if err != nil {
			return recon.LookupResult{}, malformed(node, "total_amount: %v", err)
		}
		res.Amount, res.Currency = amount, cur
	}
	if res.Status == recon.ChannelPaid {
		if q.TotalAmount == "" {
			return recon.LookupResult{}, malformed(node, "%s without total_amount", q.TradeStatus)
		}
		if q.TradeNo == "" {
			return recon.LookupResult{}, malformed(node, "%s without trade_no", q.TradeStatus)
		}
	}
	if q.SendPayDate != "" {
		t, err := time.ParseInLocation(TimeLayout, q.SendPayDate, Beijing)
		if err != nil {
			return recon.LookupResult{}, malformed(node, "invalid send_pay_date %q", channel.Truncate(q.SendPayDate))
		}
		t = t.UTC()
		res.PaidAt = &t
	}
	return res, nil
}

// TradeStatus maps a trade_status to recon's status; ok is false for a
// value Alipay does not document.
func TradeStatus(s string) (status recon.ChannelStatus, ok bool) {
	switch s {
	case TradeSuccess, TradeFinished:
		return recon.ChannelPaid, true
	case TradeWaitBuyerPay:
		return recon.ChannelPending, true
	case TradeClosed:
		return recon.ChannelClosed, true
	}
	return "", false
}

// ParseClose reads a verified alipay_trade_close_response node about
// orderNo: nil for code 10000, a classified *Error otherwise (trade already
// paid, ACQ.TRADE_STATUS_ERROR, and unknown, ACQ.TRADE_NOT_EXIST, are
// permanent). A node that cannot be read wraps channel.ErrMalformed.
func ParseClose(node []byte, orderNo string) error {
	var c TradeClose
	if err := json.Unmarshal(node, &c); err != nil {
		return malformed(node, "%v", err)
	}
	switch {
	case c.Code == "":
		return malformed(node, "no code")
	case c.Code != CodeSuccess:
		return classify(&Error{Method: MethodClose, Result: c.Result})
	case c.OutTradeNo != "" && c.OutTradeNo != orderNo:
		return malformed(node, "answer is about out_trade_no %q, not %q", channel.Truncate(c.OutTradeNo), orderNo)
	}
	return nil
}

// unsignedError turns an answer without a signature into an error: never a
// result, but the gateway's own reason when it is a failure.
func unsignedError(node []byte, method string) error {
	var r Result
	if err := json.Unmarshal(node, &r); err != nil || r.Code == "" {
		return channel.Permanent(fmt.Errorf("unsigned answer: %w", channel.ErrBadSignature))
	}
	// ACQ.TRADE_NOT_EXIST answers a query as "not found", a result: only a
	// signed answer may give it.
	notFound := (method == MethodQuery || method == MethodRefundQuery) && r.SubCode == SubTradeNotExist
	if r.Code == CodeSuccess || notFound {
		return channel.Permanent(fmt.Errorf("unsigned %s %s answer: %w", r.Code, channel.Truncate(r.SubCode), channel.ErrBadSignature))
	}
	return classify(&Error{Method: method, Result: r, Unsigned: true})
}

// malformed is a permanent error wrapping channel.ErrMalformed that quotes
// the node.
func malformed(node []byte, format string, args ...any) error {
	return channel.Permanent(fmt.Errorf("%w: %s: %s", channel.ErrMalformed, fmt.Sprintf(format, args...), snippet(node)))
}

// ErrAmount is wrapped by ParseAmount's errors.
var ErrAmount = errors.New("invalid amount")

// Exponent is the number of decimals of currency's minor unit (ISO 4217):
// 2 unless listed otherwise.
func Exponent(currency string) int {
	switch currency {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	}
	return 2
}

// maxAmountDigits keeps an amount's minor units well inside int64.
const maxAmountDigits = 15

// ParseAmount reads a decimal amount in major units ("88.88", "100", "0.5")
// of currency exactly into minor units. It accepts digits with an optional
// fraction of at most Exponent(currency) significant digits (trailing zeros
// beyond them, as in "500.00" JPY, change nothing and are accepted); signs,
// exponents, spaces, thousands separators and more significant decimals
// than the currency has are errors wrapping ErrAmount.
func ParseAmount(s, currency string) (int64, error) {
	exp := Exponent(currency)
	whole, frac, dot := strings.Cut(s, ".")
	if dot && len(frac) > exp && digits(frac) && strings.TrimRight(frac[exp:], "0") == "" {
		frac = frac[:exp]
		dot = frac != ""
	}
	switch {
	case whole == "" || !digits(whole) || (dot && (frac == "" || !digits(frac))):
		return 0, fmt.Errorf("%w %q: not a decimal number", ErrAmount, channel.Truncate(s))
	case len(frac) > exp:
		return 0, fmt.Errorf("%w %q: more than %d decimals for %s", ErrAmount, channel.Truncate(s), exp, currency)
	}
	minor := strings.TrimLeft(whole+frac+strings.Repeat("0", exp-len(frac)), "0")
	if len(minor) > maxAmountDigits {
		return 0, fmt.Errorf("%w %q: too large", ErrAmount, channel.Truncate(s))
	}
	if minor == "" {
		return 0, nil
	}
	return strconv.ParseInt(minor, 10, 64)
}

// FormatAmount writes minor units of currency as the gateway's decimal
// string: 8888 CNY is "88.88", 500 JPY is "500".
func FormatAmount(minor int64, currency string) string {
	return channel.FormatDecimal(minor, Exponent(currency))
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// signField matches a sign value in a body quoted in an error, to blank it.
var signField = regexp.MustCompile(`("sign"\s*:\s*")[^"]*`)

// snippet quotes a bounded piece of a body for an error (channel.Snippet),
// with any sign value blanked first.
func snippet(body []byte) string {
	return channel.Snippet(signField.ReplaceAll(body, []byte(`${1}…`)))
}
