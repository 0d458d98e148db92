package alipay

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	smartalipay "github.com/smartwalle/alipay/v3"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Defaults for the zero values of Config.
const (
	DefaultGateway = "https://openapi.alipay.com/gateway.do"
	DefaultTimeout = 10 * time.Second
	// MaxBodyBytes is the largest answer read; a longer one is malformed.
	MaxBodyBytes = 1 << 20
)

// Config describes one Alipay channel.
type Config struct {
	// Name is the channel's name from config, used in errors.
	Name string
	// BaseURL is the gateway URL (default DefaultGateway).
	BaseURL string
	// AppID is the app the requests are made for.
	AppID string
	// PrivateKey is the app's private key; requests are signed with it.
	PrivateKey *rsa.PrivateKey
	// AlipayPublicKey is Alipay's public key; answers are verified with it.
	AlipayPublicKey *rsa.PublicKey
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// HTTPClient sends the requests (default: a client that follows no
	// redirect, as the gateway sends none; Timeout applies per request
	// through the context).
	HTTPClient *http.Client
	// Now is the clock for the timestamp parameter and Retry-After dates
	// (default: the system clock).
	Now func() time.Time
	// PID is the merchant's partner ID (2088 and 12 digits), or the account
	// its bills name (#账号: the partner ID followed by 0156): a bill of
	// another account is refused. Empty, a fetched bill is checked against
	// the account of the signed download URL only, and a bill imported by
	// hand is not checked.
	PID string
	// Insecure lets a bill download link stay plain http (a simulator or
	// test server without TLS); otherwise http links are fetched over https.
	Insecure bool
	// StatementLimits bound a day's bill (statements.max_bytes, max_lines;
	// zero fields are the defaults).
	StatementLimits channel.StatementLimits
}

// Client looks orders up and closes them at one Alipay app. It makes exactly
// one request per call; retries and rate limits belong to channel.Guarded.
type Client struct {
	cfg Config

	// The verifier of notifications, made on first use (notify.go).
	notifyOnce sync.Once
	notifier   *smartalipay.Client
	notifyErr  error
}

var (
	_ channel.Lookup       = (*Client)(nil)
	_ channel.Closer       = (*Client)(nil)
	_ channel.RefundLookup = (*Client)(nil)
)

// New validates cfg and returns a client for it. Its errors name the config
// key at fault (base_url, app_id, private_key_file, public_key_file,
// timeout).
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		cfg.Name = "alipay"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultGateway
	}
	if err := checkURL(cfg.BaseURL); err != nil {
		return nil, err
	}
	switch {
	case strings.TrimSpace(cfg.AppID) == "":
		return nil, errors.New("app_id: is required")
	case cfg.PrivateKey == nil:
		return nil, errors.New("private_key_file: no app private key")
	case cfg.AlipayPublicKey == nil:
		return nil, errors.New("public_key_file: no Alipay public key")
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("timeout: must not be negative (got %s)", cfg.Timeout)
	case cfg.PID != "" && !ValidPID(cfg.PID):
		return nil, errors.New("pid: " + PIDRule)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = channel.NewHTTPClient()
		// A signed request is for the gateway only: a redirect is answered
		// as it is, and a 3xx is a permanent error.
		cfg.HTTPClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	if cfg.Now == nil {
		cfg.Now = recon.SystemClock{}.Now
	}
	return &Client{cfg: cfg}, nil
}

func checkURL(s string) error {
	if _, err := channel.ParseBaseURL(s); err != nil {
		return fmt.Errorf("base_url: %w", err)
	}
	return nil
}

// Lookup asks alipay.trade.query about o (by out_trade_no). An unknown trade
// is a NOT_FOUND result; errors are classified as the package doc says.
func (c *Client) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	node, err := c.call(ctx, MethodQuery, o.OrderNo)
	if err == nil {
		var res recon.LookupResult
		if res, err = ParseQuery(node, o.OrderNo); err == nil {
			return res, nil
		}
	}
	return recon.LookupResult{}, fmt.Errorf("alipay %s: query %s: %w", c.cfg.Name, o.OrderNo, err)
}

// CloseOrder closes the unpaid trade of o with alipay.trade.close. A trade
// already paid (ACQ.TRADE_STATUS_ERROR) or unknown (ACQ.TRADE_NOT_EXIST)
// cannot be closed: the error is permanent.
func (c *Client) CloseOrder(ctx context.Context, o recon.Order) error {
	node, err := c.call(ctx, MethodClose, o.OrderNo)
	if err == nil {
		if err = ParseClose(node, o.OrderNo); err == nil {
			return nil
		}
	}
	return fmt.Errorf("alipay %s: close %s: %w", c.cfg.Name, o.OrderNo, err)
}

// Request returns the signed form of a call of method about out_trade_no
// orderNo, timestamped now.
func Request(appID string, key *rsa.PrivateKey, method, orderNo string, now time.Time) (url.Values, error) {
	return signedForm(appID, key, method, struct {
		OutTradeNo string `json:"out_trade_no"`
	}{orderNo}, now)
}

// signedForm returns the signed form of a call of method with biz as its
// biz_content, timestamped now.
func signedForm(appID string, key *rsa.PrivateKey, method string, bizContent any, now time.Time) (url.Values, error) {
	biz, err := json.Marshal(bizContent)
	if err != nil {
		return nil, fmt.Errorf("encode biz_content: %w", err)
	}
	v := url.Values{}
	v.Set("app_id", appID)
	v.Set("method", method)
	v.Set("format", Format)
	v.Set("charset", Charset)
	v.Set("sign_type", SignType)
	v.Set("timestamp", now.In(Beijing).Format(TimeLayout))
	v.Set("version", Version)
	v.Set("biz_content", string(biz))
	sig, err := Sign(key, SignContent(v))
	if err != nil {
		return nil, err
	}
	v.Set("sign", sig)
	return v, nil
}

// call makes one signed request about orderNo and returns the verified
// response node.
func (c *Client) call(ctx context.Context, method, orderNo string) ([]byte, error) {
	form, err := Request(c.cfg.AppID, c.cfg.PrivateKey, method, orderNo, c.cfg.Now())
	if err != nil {
		return nil, channel.Permanent(err)
	}
	return c.post(ctx, method, form)
}

// post sends one signed form to the gateway and returns the verified
// response node.
func (c *Client) post(ctx context.Context, method string, form url.Values) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.cfg.BaseURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, channel.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, channel.NetworkError(ctx, err, nil)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, channel.NetworkError(ctx, fmt.Errorf("read body: %w", err), nil)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		after := channel.ParseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Now())
		return nil, channel.RateLimited(after, fmt.Errorf("HTTP 429: %s", snippet(body)))
	case resp.StatusCode >= 500:
		return nil, channel.Transient(fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(body)))
	case resp.StatusCode != http.StatusOK:
		return nil, channel.Permanent(fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(body)))
	case len(body) > MaxBodyBytes:
		return nil, channel.Permanent(fmt.Errorf("%w: body larger than %d bytes", channel.ErrMalformed, MaxBodyBytes))
	}
	return Open(c.cfg.AlipayPublicKey, body, method)
}

// Open takes a 200 answer to method apart and verifies it with Alipay's
// public key, returning the node only when its signature holds. An answer
// without a signature is an error (see the package doc); a malformed one
// wraps channel.ErrMalformed; all errors are classified.
func Open(pub *rsa.PublicKey, body []byte, method string) ([]byte, error) {
	node, sign, err := SplitResponse(body, method)
	if err != nil {
		return nil, channel.Permanent(err)
	}
	if sign == "" {
		return nil, unsignedError(node, method)
	}
	if err := Verify(pub, node, sign); err != nil {
		return nil, channel.Permanent(err)
	}
	return node, nil
}

var _ channel.IdleCloser = (*Client)(nil)

// CloseIdleConnections closes the idle connections of the client's HTTP
// client (statement downloads share its transport).
func (c *Client) CloseIdleConnections() { c.cfg.HTTPClient.CloseIdleConnections() }
