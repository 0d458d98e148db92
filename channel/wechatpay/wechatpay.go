package wechatpay

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Defaults of Config.
const (
	DefaultBaseURL = "https://api.mch.weixin.qq.com"
	DefaultTimeout = 10 * time.Second
)

// TransactionsPath is the path of the transaction query; the order number
// follows it, and "/close" follows that for the close API.
const TransactionsPath = "/v3/pay/transactions/out-trade-no/"

// MaxBodyBytes is the largest response body read; a longer one is
// malformed.
const MaxBodyBytes = 1 << 20

// minKeyBits is the smallest RSA key the scheme (RSA2048) allows.
const minKeyBits = 2048

// Config describes one wechatpay channel. The names in the comments are the
// keys of a channels entry in config.yaml.
type Config struct {
	// Name is the channel's name, used in errors.
	Name string
	// BaseURL is the API's absolute http(s) URL (base_url, default
	// DefaultBaseURL).
	BaseURL string
	// MchID is the merchant number (mch_id).
	MchID string
	// CertSerial is the serial number of the merchant API certificate
	// (cert_serial), announced as serial_no in every request.
	CertSerial string
	// PrivateKey is the merchant API private key (private_key_file) that
	// signs the requests. It is never logged.
	PrivateKey *rsa.PrivateKey `json:"-"`
	// PublicKey is the WeChat Pay public key (public_key_file) that verifies
	// the responses.
	PublicKey *rsa.PublicKey
	// PublicKeyID is its ID (public_key_id, PUB_KEY_ID_…, or a platform
	// certificate's serial): responses must announce it in Wechatpay-Serial.
	PublicKeyID string
	// APIv3Key is the merchant's APIv3 key (api_v3_key, 32 bytes) that
	// decrypts the resource of a notification; "" receives none. It is
	// never logged.
	APIv3Key string `json:"-"`
	// Timeout bounds one request (timeout, default DefaultTimeout).
	Timeout time.Duration
	// HTTPClient sends the requests (default channel.NewHTTPClient(); Timeout
	// applies per request through the context).
	HTTPClient *http.Client
	// Now is the clock of request timestamps, response freshness and
	// Retry-After dates (default: the system clock).
	Now func() time.Time
	// Insecure lets a bill download_url stay plain http (a simulator or test
	// server without TLS); otherwise http links are fetched over https.
	Insecure bool
	// StatementLimits bound a day's bill (statements.max_bytes, max_lines;
	// zero fields are the defaults).
	StatementLimits channel.StatementLimits
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "wechatpay"
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Now == nil {
		c.Now = recon.SystemClock{}.Now
	}
	return c
}

// Validate reports the first invalid setting, naming its config key.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("wechatpay channel %q: %s", c.Name, fmt.Sprintf(format, args...))
	}
	if _, err := baseURL(c.BaseURL); err != nil {
		return bad("%v", err)
	}
	switch {
	case strings.TrimSpace(c.MchID) == "":
		return bad("mch_id is required")
	case strings.TrimSpace(c.CertSerial) == "":
		return bad("cert_serial is required (the serial number of the merchant API certificate)")
	case c.PrivateKey == nil:
		return bad("private_key_file: no merchant API private key")
	case c.PrivateKey.N.BitLen() < minKeyBits:
		return bad("private_key_file: the RSA key has %d bits, want at least %d", c.PrivateKey.N.BitLen(), minKeyBits)
	case c.PublicKey == nil:
		return bad("public_key_file: no WeChat Pay public key")
	case c.PublicKey.N.BitLen() < minKeyBits:
		return bad("public_key_file: the RSA key has %d bits, want at least %d", c.PublicKey.N.BitLen(), minKeyBits)
	case strings.TrimSpace(c.PublicKeyID) == "":
		return bad("public_key_id is required (the Wechatpay-Serial of the WeChat Pay public key, PUB_KEY_ID_...)")
	case c.Timeout < 0:
		return bad("timeout %s must not be negative", c.Timeout)
	case c.APIv3Key != "" && len(c.APIv3Key) != 32:
		// AEAD_AES_256_GCM takes a 32-byte key; the length is no secret.
		return bad("api_v3_key must be 32 bytes (got %d)", len(c.APIv3Key))
	}
	return nil
}

// baseURL parses an absolute http(s) URL without query or fragment.
func baseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The raw value may hold credentials: do not echo it.
		return nil, errors.New("base_url is not an absolute http(s) URL")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u, nil
}

// Client looks orders up at, and closes them with, WeChat Pay API v3. It
// makes exactly one request per call; retries and rate limits belong to
// channel.Guarded.
type Client struct {
	cfg      Config
	base     string // BaseURL without a trailing slash
	verifier Verifier
}

var (
	_ channel.Lookup       = (*Client)(nil)
	_ channel.Closer       = (*Client)(nil)
	_ channel.RefundLookup = (*Client)(nil)
)

// New validates cfg and returns a client for it.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.HTTPClient == nil {
		// Here, not in withDefaults: Validate would build a pool for nothing.
		cfg.HTTPClient = channel.NewHTTPClient()
	}
	u, _ := baseURL(cfg.BaseURL) // validated above
	return &Client{cfg: cfg, base: u.String(),
		verifier: Verifier{KeyID: cfg.PublicKeyID, Key: cfg.PublicKey, Now: cfg.Now}}, nil
}

// Reply is one raw HTTP answer.
type Reply struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Lookup queries the transaction of o by its order number (out_trade_no).
// The answer must be signed by the configured WeChat Pay key and fresh. An
// unknown order (404 ORDER_NOT_EXIST, signed) is a NOT_FOUND result. Errors:
// 429 rate-limited (with Retry-After), 5xx and network failures transient,
// other 4xx, bad signatures (channel.ErrBadSignature) and malformed answers
// (channel.ErrMalformed) permanent.
func (c *Client) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	if o.OrderNo == "" {
		return recon.LookupResult{}, channel.Permanent(c.errorf("lookup", o.OrderNo, "no order number"))
	}
	q := url.Values{"mchid": {c.cfg.MchID}}
	r, err := c.do(ctx, "lookup", o.OrderNo, http.MethodGet, TransactionsPath+url.PathEscape(o.OrderNo)+"?"+q.Encode(), nil)
	if err != nil {
		return recon.LookupResult{}, err
	}
	return c.Decode(r, o.OrderNo)
}

// Decode turns a raw answer of the query about orderNo into a result or a
// classified error, exactly as Lookup does.
func (c *Client) Decode(r Reply, orderNo string) (recon.LookupResult, error) {
	const op = "lookup"
	switch notFound, err := c.open(r, op, orderNo, CodeOrderNotExist); {
	case err != nil:
		return recon.LookupResult{}, err
	case notFound:
		return recon.LookupResult{Status: recon.ChannelNotFound}, nil
	}
	res, err := ParseTransaction(r.Body, orderNo, c.cfg.MchID)
	if err != nil {
		return recon.LookupResult{}, channel.Permanent(c.errorf(op, orderNo, "%w", err))
	}
	return res, nil
}

// open classifies a raw answer about no and verifies it: an error for an
// answer that is no answer (a fault, a refusal, a signature that does not
// verify), notFound for a verified 404 with notFoundCode, and neither for a
// verified 200 whose body is still to be parsed. A 404 is verified too:
// "not found" is a result, which only a response from WeChat Pay may give
// (a misrouted proxy also answers 404).
func (c *Client) open(r Reply, op, no, notFoundCode string) (notFound bool, err error) {
	if err := c.fault(r, op, no); err != nil {
		return false, err
	}
	if r.StatusCode != http.StatusOK && r.StatusCode != http.StatusNotFound {
		return false, channel.Permanent(c.errorf(op, no, "HTTP %d: %s", r.StatusCode, channel.Snippet(r.Body)))
	}
	if err := c.verifier.Verify(r.Header, r.Body); err != nil {
		return false, channel.Permanent(c.errorf(op, no, "HTTP %d: %w: %s", r.StatusCode, err, channel.Snippet(r.Body)))
	}
	if r.StatusCode != http.StatusNotFound {
		return false, nil
	}
	e, err := ParseAPIError(r.Body)
	if err != nil {
		return false, channel.Permanent(c.errorf(op, no, "HTTP 404: %w", err))
	}
	if e.Code != notFoundCode {
		return false, channel.Permanent(c.errorf(op, no, "HTTP 404: %s", channel.Snippet(r.Body)))
	}
	return true, nil
}

// CloseOrder closes the unpaid order o (POST …/close, 204 signed). An order
// already closed (400 ORDER_CLOSED, signed) counts as closed. A paid order
// (400 ORDERPAID), an unknown one and other 4xx are permanent errors; 429
// and 5xx are classified as for Lookup.
func (c *Client) CloseOrder(ctx context.Context, o recon.Order) error {
	const op = "close"
	if o.OrderNo == "" {
		return channel.Permanent(c.errorf(op, o.OrderNo, "no order number"))
	}
	body, _ := json.Marshal(struct {
		MchID string `json:"mchid"`
	}{c.cfg.MchID}) // a struct of one string always encodes
	r, err := c.do(ctx, op, o.OrderNo, http.MethodPost, TransactionsPath+url.PathEscape(o.OrderNo)+"/close", body)
	if err != nil {
		return err
	}
	if err := c.fault(r, op, o.OrderNo); err != nil {
		return err
	}
	closed := r.StatusCode == http.StatusNoContent || r.StatusCode == http.StatusOK
	if !closed && r.StatusCode == http.StatusBadRequest {
		e, err := ParseAPIError(r.Body)
		closed = err == nil && e.Code == CodeOrderClosed
	}
	if !closed {
		return channel.Permanent(c.errorf(op, o.OrderNo, "HTTP %d: %s", r.StatusCode, channel.Snippet(r.Body)))
	}
	// Only WeChat Pay may say that an order can no longer be paid.
	if err := c.verifier.Verify(r.Header, r.Body); err != nil {
		return channel.Permanent(c.errorf(op, o.OrderNo, "HTTP %d: %w", r.StatusCode, err))
	}
	return nil
}

// fault classifies the answers that are no answer: 429 (FREQUENCY_LIMITED)
// is rate-limited with its Retry-After, 5xx (SYSTEM_ERROR) transient.
func (c *Client) fault(r Reply, op, orderNo string) error {
	switch {
	case r.StatusCode == http.StatusTooManyRequests:
		after := channel.ParseRetryAfter(r.Header.Get("Retry-After"), c.cfg.Now())
		return channel.RateLimited(after, c.errorf(op, orderNo, "HTTP 429: %s", channel.Snippet(r.Body)))
	case r.StatusCode >= 500:
		return channel.Transient(c.errorf(op, orderNo, "HTTP %d: %s", r.StatusCode, channel.Snippet(r.Body)))
	}
	return nil
}

// do sends one signed request for uri (path and query, relative to the base
// URL) within the configured timeout and reads the answer.
func (c *Client) do(ctx context.Context, op, orderNo, method, uri string, body []byte) (Reply, error) {
	u, err := url.Parse(c.base + uri)
	if err != nil {
		return Reply{}, channel.Permanent(c.errorf(op, orderNo, "build request: %w", err))
	}
	// The signature covers exactly what goes on the request line.
	auth, err := SignRequest(c.cfg.PrivateKey, c.cfg.MchID, c.cfg.CertSerial, method, u.RequestURI(), body, c.cfg.Now().Unix(), NewNonce())
	if err != nil {
		return Reply{}, channel.Permanent(c.errorf(op, orderNo, "%w", err))
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, u.String(), rd)
	if err != nil {
		return Reply{}, channel.Permanent(c.errorf(op, orderNo, "build request: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", auth.String())
	req.Header.Set(HeaderSerial, c.cfg.PublicKeyID) // the key we verify answers with
	req.Header.Set("User-Agent", "recon-wechatpay")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return Reply{}, c.networkError(ctx, op, orderNo, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return Reply{}, c.networkError(ctx, op, orderNo, fmt.Errorf("read body: %w", err))
	}
	if len(b) > MaxBodyBytes {
		return Reply{}, channel.Permanent(c.errorf(op, orderNo, "%w: body larger than %d bytes", channel.ErrMalformed, MaxBodyBytes))
	}
	return Reply{StatusCode: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// networkError classifies a failed round trip (channel.NetworkError),
// naming the channel, operation and order inside the class.
func (c *Client) networkError(ctx context.Context, op, orderNo string, err error) error {
	return channel.NetworkError(ctx, err, func(err error) error { return c.errorf(op, orderNo, "%w", err) })
}

func (c *Client) errorf(op, orderNo, format string, args ...any) error {
	return fmt.Errorf("wechatpay %s: %s %s: %w", c.cfg.Name, op, orderNo, fmt.Errorf(format, args...))
}

var _ channel.IdleCloser = (*Client)(nil)

// CloseIdleConnections closes the idle connections of the client's HTTP
// client (statement downloads share its transport).
func (c *Client) CloseIdleConnections() { c.cfg.HTTPClient.CloseIdleConnections() }
