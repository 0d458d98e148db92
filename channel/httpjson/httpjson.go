// Package httpjson is the generic lookup adapter (channel kind "httpjson") for
// channels without a public SDK. It speaks the classic get_result protocol of
// CONTRACT §6:
//
//	GET {base_url}/order/get_result?orderId={order_no}
//	200 {"code":"0000","msg":"success","data":{"order":"<order_no>","status":"PAID",
//	     "amount":100,"currency":"CNY","txn_id":"T123","paid_at":"<RFC3339>"}}
//
// with paths, codes and status values configurable per channel, and an
// optional HMAC-SHA256 signature of the raw body in X-Signature.
//
// The pure pieces (Sign, Verify, ParseResponse, Decode and the wire structs)
// are exported so that the simulator renders and decodes exactly the same
// bytes a real server sends.
package httpjson

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Defaults of the protocol, used for the zero values of Config.
const (
	DefaultLookupPath   = "/order/get_result"
	DefaultOrderParam   = "orderId"
	DefaultSuccessCode  = "0000"
	DefaultNotFoundCode = "1004"
	// DefaultRefundLookupPath and DefaultRefundParam ask about a refund
	// (CONTRACT §10): GET {base_url}/refund/get_result?refundId={refund_no}.
	DefaultRefundLookupPath = "/refund/get_result"
	DefaultRefundParam      = "refundId"
	DefaultTimeout          = 10 * time.Second
	// SignatureHeader carries hex(HMAC-SHA256(secret, raw body)).
	SignatureHeader = "X-Signature"
	// MaxBodyBytes is the largest response body read; a longer one is
	// malformed.
	MaxBodyBytes = 1 << 20
)

// Config describes one httpjson channel. The yaml names are those of a
// channels entry in config.yaml.
type Config struct {
	// Name is the channel's name from config, used in errors.
	Name string `yaml:"name"`
	// BaseURL is the absolute http(s) URL the lookup path is appended to.
	BaseURL string `yaml:"base_url"`
	// Secret, when set, requires every result response to carry a valid
	// X-Signature. It is never logged or put in an error.
	Secret string `yaml:"secret" json:"-"`
	// Timeout bounds one request (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// LookupPath is appended to BaseURL (default "/order/get_result").
	LookupPath string `yaml:"lookup_path"`
	// OrderParam is the query parameter carrying the order number (default
	// "orderId").
	OrderParam string `yaml:"order_param"`
	// SuccessCode is the body code of an answer (default "0000").
	SuccessCode string `yaml:"success_code"`
	// NotFoundCode is the body code of an unknown order (default "1004").
	NotFoundCode string `yaml:"not_found_code"`
	// StatusMap maps the channel's data.status values to normalised
	// statuses. It replaces the default, which maps PAID, PENDING, FAILED
	// and CLOSED to themselves.
	StatusMap map[string]recon.ChannelStatus `yaml:"status_map"`
	// RefundLookupPath is appended to BaseURL to look a refund up (default
	// "/refund/get_result"); the refund number goes in refundId.
	RefundLookupPath string `yaml:"refund_lookup_path"`
	// StatementPath is appended to BaseURL for the daily statement
	// (default "/statement").
	StatementPath string `yaml:"statement_path"`
	// HTTPClient sends the requests (default: a client with no timeout of
	// its own; Timeout applies per request through the context).
	HTTPClient *http.Client `yaml:"-" json:"-"`
	// Now is the clock for Retry-After dates (default: the system clock).
	Now func() time.Time `yaml:"-" json:"-"`
	// StatementLimits bound a day's statement file (statements.max_bytes,
	// max_lines; zero fields are the defaults).
	StatementLimits channel.StatementLimits `yaml:"-" json:"-"`
}

var defaultStatusMap = map[string]recon.ChannelStatus{
	"PAID":    recon.ChannelPaid,
	"PENDING": recon.ChannelPending,
	"FAILED":  recon.ChannelFailed,
	"CLOSED":  recon.ChannelClosed,
}

// withDefaults fills the zero fields of c.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "httpjson"
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.LookupPath == "" {
		c.LookupPath = DefaultLookupPath
	}
	if c.OrderParam == "" {
		c.OrderParam = DefaultOrderParam
	}
	if c.SuccessCode == "" {
		c.SuccessCode = DefaultSuccessCode
	}
	if c.NotFoundCode == "" {
		c.NotFoundCode = DefaultNotFoundCode
	}
	if len(c.StatusMap) == 0 {
		c.StatusMap = defaultStatusMap
	}
	if c.StatementPath == "" {
		c.StatementPath = DefaultStatementPath
	}
	if c.RefundLookupPath == "" {
		c.RefundLookupPath = DefaultRefundLookupPath
	}
	if c.Now == nil {
		c.Now = recon.SystemClock{}.Now
	}
	return c
}

// Validate reports the first invalid setting, naming its key.
func (c Config) Validate() error {
	_, err := c.lookupURL()
	if err != nil {
		return err
	}
	c = c.withDefaults()
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("httpjson channel %q: timeout %s must not be negative", c.Name, c.Timeout)
	case !strings.HasPrefix(c.LookupPath, "/"):
		return fmt.Errorf("httpjson channel %q: lookup_path %q must start with /", c.Name, c.LookupPath)
	case !strings.HasPrefix(c.RefundLookupPath, "/"):
		return fmt.Errorf("httpjson channel %q: refund_lookup_path %q must start with /", c.Name, c.RefundLookupPath)
	case !strings.HasPrefix(c.StatementPath, "/"):
		return fmt.Errorf("httpjson channel %q: statement_path %q must start with /", c.Name, c.StatementPath)
	case c.SuccessCode == c.NotFoundCode:
		return fmt.Errorf("httpjson channel %q: success_code and not_found_code must differ", c.Name)
	}
	for k, v := range c.StatusMap {
		if !v.Valid() {
			return fmt.Errorf("httpjson channel %q: status_map[%q] = %q is not one of PAID, PENDING, FAILED, CLOSED, NOT_FOUND", c.Name, k, v)
		}
	}
	return nil
}

// lookupURL is BaseURL with the lookup path appended and the order parameter
// still to be set.
func (c Config) lookupURL() (*url.URL, error) {
	path := c.LookupPath
	if path == "" {
		path = DefaultLookupPath
	}
	return c.endpoint(path)
}

// endpoint is BaseURL with path appended.
func (c Config) endpoint(path string) (*url.URL, error) {
	name := c.Name
	if name == "" {
		name = "httpjson"
	}
	if c.BaseURL == "" {
		return nil, fmt.Errorf("httpjson channel %q: base_url is required", name)
	}
	u, err := channel.ParseBaseURL(c.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("httpjson channel %q: base_url: %w", name, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.Fragment = ""
	return u, nil
}

// Client looks orders up at one httpjson channel. It makes exactly one
// request per call; retries and rate limits belong to channel.Guarded.
type Client struct {
	cfg    Config
	base   *url.URL // the order lookup URL
	refund *url.URL // the refund lookup URL
}

var _ channel.Lookup = (*Client)(nil)

// New validates cfg and returns a client for it.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new httpjson client: %w", err)
	}
	base, _ := cfg.lookupURL() // validated above
	cfg = cfg.withDefaults()
	refund, _ := cfg.endpoint(cfg.RefundLookupPath)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = channel.NewHTTPClient()
	}
	return &Client{cfg: cfg, base: base, refund: refund}, nil
}

// Lookup asks the channel about o. A not-found order is a result; errors are
// classified: 429 rate-limited (with Retry-After), 5xx and network failures
// transient, other 4xx, unknown codes, bad signatures (channel.ErrBadSignature)
// and malformed answers (channel.ErrMalformed) permanent.
func (c *Client) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	r, err := c.get(ctx, c.base, c.cfg.OrderParam, o.OrderNo, opLookup)
	if err != nil {
		return recon.LookupResult{}, err
	}
	return Decode(c.cfg, r, o.OrderNo)
}

// LookupRefund asks the channel about refund r at RefundLookupPath, by
// refund number. The answer is verified and classified as Lookup's is; a
// not-found refund (404 or the not-found code) is a NOT_FOUND result, and
// an answer about another refund or order is malformed.
func (c *Client) LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	rep, err := c.get(ctx, c.refund, DefaultRefundParam, r.RefundNo, opRefund)
	if err != nil {
		return recon.RefundLookup{}, err
	}
	return DecodeRefund(c.cfg, rep, r.RefundNo, r.OrderNo)
}

// Operation names in errors.
const (
	opLookup = "lookup"
	opRefund = "refund lookup"
)

// get makes one GET of base with param=no within the timeout and reads the
// answer; no names the order or refund in errors.
func (c *Client) get(ctx context.Context, base *url.URL, param, no, op string) (Reply, error) {
	u := *base
	q := u.Query()
	q.Set(param, no)
	u.RawQuery = q.Encode()

	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Reply{}, channel.Permanent(c.errorf(op, no, "build request: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return Reply{}, c.networkError(ctx, op, no, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return Reply{}, c.networkError(ctx, op, no, fmt.Errorf("read body: %w", err))
	}
	if len(body) > MaxBodyBytes {
		return Reply{}, channel.Permanent(c.errorf(op, no, "%w: body larger than %d bytes", channel.ErrMalformed, MaxBodyBytes))
	}
	return Reply{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// networkError classifies a failed round trip (channel.NetworkError),
// naming the channel and order inside the class.
func (c *Client) networkError(ctx context.Context, op, no string, err error) error {
	return channel.NetworkError(ctx, err, func(err error) error { return c.errorf(op, no, "%w", err) })
}

func (c *Client) errorf(op, no, format string, args ...any) error {
	return errorf(c.cfg, op, no, format, args...)
}

func errorf(cfg Config, op, no, format string, args ...any) error {
	return fmt.Errorf("httpjson %s: %s %s: %w", cfg.Name, op, no, fmt.Errorf(format, args...))
}

// Reply is one raw HTTP answer of the lookup endpoint.
type Reply struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Decode turns a raw reply about orderNo into a result or a classified error,
// exactly as Client.Lookup does: 429 is rate-limited with the reply's
// Retry-After, 5xx transient, 404 (signed, when cfg.Secret is set) a NOT_FOUND
// result, other non-200 statuses permanent; a 200 body is verified with
// cfg.Secret and parsed by ParseResponse.
//
// A 404 must be signed too when a secret is set: an unsigned 404 may come
// from a misrouted proxy, and NOT_FOUND is a result, which only a verified
// response may give.
func Decode(cfg Config, r Reply, orderNo string) (recon.LookupResult, error) {
	cfg = cfg.withDefaults()
	switch notFound, err := check(cfg, r, opLookup, orderNo); {
	case err != nil:
		return recon.LookupResult{}, err
	case notFound:
		return recon.LookupResult{Status: recon.ChannelNotFound}, nil
	}
	res, err := ParseResponse(r.Body, orderNo, cfg)
	if err != nil {
		return recon.LookupResult{}, channel.Permanent(errorf(cfg, opLookup, orderNo, "%w", err))
	}
	return res, nil
}

// check classifies a raw reply's HTTP status and verifies its signature:
// notFound for a verified 404, an error for a reply that is no answer, and
// neither for a verified 200 whose body is still to be parsed.
func check(cfg Config, r Reply, op, no string) (notFound bool, err error) {
	switch {
	case r.StatusCode == http.StatusTooManyRequests:
		after := channel.ParseRetryAfter(r.Header.Get("Retry-After"), cfg.Now())
		return false, channel.RateLimited(after, errorf(cfg, op, no, "HTTP 429: %s", channel.Snippet(r.Body)))
	case r.StatusCode >= 500:
		return false, channel.Transient(errorf(cfg, op, no, "HTTP %d: %s", r.StatusCode, channel.Snippet(r.Body)))
	case r.StatusCode != http.StatusOK && r.StatusCode != http.StatusNotFound:
		return false, channel.Permanent(errorf(cfg, op, no, "HTTP %d: %s", r.StatusCode, channel.Snippet(r.Body)))
	}
	if cfg.Secret != "" {
		if err := Verify(cfg.Secret, r.Body, r.Header.Get(SignatureHeader)); err != nil {
			return false, channel.Permanent(errorf(cfg, op, no, "HTTP %d: %w", r.StatusCode, err))
		}
	}
	return r.StatusCode == http.StatusNotFound, nil
}

// Sign returns hex(HMAC-SHA256(secret, body)), the X-Signature of body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks that sig is the X-Signature of body under secret, in constant
// time. Its errors wrap channel.ErrBadSignature and never contain the secret
// or the signature.
func Verify(secret string, body []byte, sig string) error {
	sig = strings.TrimSpace(sig)
	if sig == "" {
		return fmt.Errorf("verify signature: missing %s header: %w", SignatureHeader, channel.ErrBadSignature)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("verify signature: %s is not hex: %w", SignatureHeader, channel.ErrBadSignature)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("verify signature: %w", channel.ErrBadSignature)
	}
	return nil
}

// Response is the body of a lookup answer.
type Response struct {
	Code string `json:"code"`
	Msg  string `json:"msg"`
	Data *Data  `json:"data,omitempty"`
}

// Data is the order part of a lookup answer.
type Data struct {
	// Order is the order number the answer is about.
	Order string `json:"order"`
	// Status is the channel's own status value, mapped by Config.StatusMap.
	Status string `json:"status"`
	// Amount is in minor units; required when the status maps to PAID.
	Amount *int64 `json:"amount,omitempty"`
	// Currency is an ISO 4217 code; case is normalised.
	Currency string `json:"currency,omitempty"`
	TxnID    string `json:"txn_id,omitempty"`
	// PaidAt is RFC 3339.
	PaidAt string `json:"paid_at,omitempty"`
}

// ParseResponse parses a verified 200 body answering about orderNo under the
// codes and status map of cfg (zero fields take the defaults). The not-found
// code is a NOT_FOUND result. Another non-success code is an error naming the
// code and msg. Every other failure wraps channel.ErrMalformed. Errors quote at
// most 200 bytes of the body.
func ParseResponse(body []byte, orderNo string, cfg Config) (recon.LookupResult, error) {
	cfg = cfg.withDefaults()
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		return recon.LookupResult{}, fmt.Errorf("parse response: %w: %v: %s", channel.ErrMalformed, err, channel.Snippet(body))
	}
	switch r.Code {
	case cfg.SuccessCode:
	case cfg.NotFoundCode:
		return recon.LookupResult{Status: recon.ChannelNotFound}, nil
	default:
		return recon.LookupResult{}, fmt.Errorf("parse response: channel answered code %q: %s", channel.Truncate(r.Code), channel.Truncate(r.Msg))
	}
	if r.Data == nil {
		return recon.LookupResult{}, fmt.Errorf("parse response: %w: no data: %s", channel.ErrMalformed, channel.Snippet(body))
	}
	if r.Data.Order != orderNo {
		return recon.LookupResult{}, fmt.Errorf("parse response: %w: answer is about order %q, not %q: %s", channel.ErrMalformed,
			channel.Truncate(r.Data.Order), orderNo, channel.Snippet(body))
	}
	return r.Data.result(cfg, "parse response", body)
}

// result reads d under cfg's status map; errors wrap channel.ErrMalformed,
// start with op and quote at most 200 bytes of body.
func (d *Data) result(cfg Config, op string, body []byte) (recon.LookupResult, error) {
	malformed := func(format string, args ...any) (recon.LookupResult, error) {
		return recon.LookupResult{}, fmt.Errorf("%s: %w: %s: %s", op, channel.ErrMalformed, fmt.Sprintf(format, args...), channel.Snippet(body))
	}
	status, ok := cfg.StatusMap[d.Status]
	if !ok || !status.Valid() {
		return malformed("unknown status %q", channel.Truncate(d.Status))
	}
	required := ""
	if status == recon.ChannelPaid {
		required = "PAID"
	}
	f, problem := readFields(d.Amount, required, d.Currency, d.PaidAt, "paid_at")
	if problem != "" {
		return malformed("%s", problem)
	}
	return recon.LookupResult{Status: status, TxnID: d.TxnID, Amount: f.amount, Currency: f.currency, PaidAt: f.at}, nil
}

// fields are the amount, currency and time an order's and a refund's
// answers share.
type fields struct {
	amount   int64
	currency string
	at       *time.Time
}

// readFields reads the shared fields of an answer: amount, when present,
// must not be negative, and must be present when required names the final
// status that needs it; currency is upper-cased and must be ISO 4217; at,
// named atKey, is RFC 3339 and becomes UTC. problem describes the first
// field at fault ("" when none).
func readFields(amount *int64, required, currency, at, atKey string) (f fields, problem string) {
	switch {
	case amount != nil && *amount < 0:
		return f, fmt.Sprintf("negative amount %d", *amount)
	case amount != nil:
		f.amount = *amount
	case required != "":
		return f, required + " without amount"
	}
	if currency != "" {
		f.currency = strings.ToUpper(currency)
		if !recon.ValidCurrency(f.currency) {
			return f, fmt.Sprintf("invalid currency %q", channel.Truncate(currency))
		}
	}
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return f, fmt.Sprintf("invalid %s %q", atKey, channel.Truncate(at))
		}
		t = t.UTC()
		f.at = &t
	}
	return f, ""
}

var _ channel.IdleCloser = (*Client)(nil)

// CloseIdleConnections closes the idle connections of the client's HTTP
// client (statement downloads share its transport).
func (c *Client) CloseIdleConnections() { c.cfg.HTTPClient.CloseIdleConnections() }
