package stripe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v82"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
)

// Defaults for the zero values of Config.
const (
	DefaultBaseURL = "https://api.stripe.com"
	DefaultTimeout = 10 * time.Second
)

// CancellationReason is sent with every cancel: recon closes orders whose
// customers abandoned the payment.
const CancellationReason = "abandoned"

// Config describes one Stripe channel. The yaml names are those of a
// channels entry in config.yaml.
type Config struct {
	// Name is the channel's name from config, used in errors.
	Name string `yaml:"name"`
	// BaseURL is the API's absolute http(s) URL (default
	// https://api.stripe.com); /v1/... is appended.
	BaseURL string `yaml:"base_url"`
	// APIKey is the secret (sk_…) or restricted (rk_…) key. It is never
	// logged or put in an error.
	APIKey string `yaml:"api_key" json:"-"`
	// WebhookSecret (whsec_…) verifies the Stripe-Signature of the
	// webhook events recon receives; "" receives none. It is never logged.
	WebhookSecret string `yaml:"webhook_secret" json:"-"`
	// Timeout bounds one request (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// HTTPClient sends the requests (default channel.NewHTTPClient()); Timeout applies per request through the context.
	HTTPClient *http.Client `yaml:"-" json:"-"`
	// Now is the clock for Retry-After dates (default: the system clock).
	Now func() time.Time `yaml:"-" json:"-"`
	// StatementZone is the time zone of a statement day (statements.timezone;
	// default UTC): a day's statement is the balance transactions created
	// between its midnights there.
	StatementZone *time.Location `yaml:"-" json:"-"`
	// StatementLimits bound a day's statement file (statements.max_bytes,
	// max_lines; zero fields are the defaults).
	StatementLimits channel.StatementLimits `yaml:"-" json:"-"`
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "stripe"
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
	if c.StatementZone == nil {
		c.StatementZone = time.UTC
	}
	return c
}

// Validate reports the first invalid setting, naming its key. It never
// quotes the API key.
func (c Config) Validate() error {
	c = c.withDefaults()
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The raw value may hold credentials: do not echo it.
		return errors.New("base_url: not an absolute http(s) URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("base_url: must not have a query or fragment")
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout: %s must not be negative", c.Timeout)
	}
	key := c.APIKey
	switch {
	case strings.TrimSpace(key) == "":
		return errors.New("api_key: is required")
	case strings.HasPrefix(key, "pk_"):
		return errors.New("api_key: a publishable key (pk_…) cannot read payment intents; use a secret (sk_…) or restricted (rk_…) key")
	case !strings.HasPrefix(key, "sk_") && !strings.HasPrefix(key, "rk_"):
		return errors.New("api_key: not a Stripe secret (sk_…) or restricted (rk_…) key")
	}
	if c.WebhookSecret != "" && !strings.HasPrefix(c.WebhookSecret, "whsec_") {
		return errors.New("webhook_secret: not a Stripe webhook signing secret (whsec_…)")
	}
	for _, r := range key {
		if r <= ' ' || r > '~' {
			return errors.New("api_key: contains whitespace or non-ASCII characters")
		}
	}
	return nil
}

// Client looks PaymentIntents up and cancels them at one Stripe account. It
// makes exactly one request per call; retries and rate limits belong to
// channel.Guarded.
type Client struct {
	cfg Config
	sc  *stripego.Client
}

var (
	_ channel.Lookup       = (*Client)(nil)
	_ channel.Closer       = (*Client)(nil)
	_ channel.RefundLookup = (*Client)(nil)
)

// New validates cfg and returns a client for it.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new stripe client: %w", err)
	}
	cfg = cfg.withDefaults()
	if cfg.HTTPClient == nil {
		// Here, not in withDefaults: Validate would build a pool for nothing.
		cfg.HTTPClient = channel.NewHTTPClient()
	}
	// Stripe's API does not redirect: a redirect off https or to another host
	// is refused, so that no answer or statement page comes from elsewhere.
	hc := *channel.DownloadClient(cfg.HTTPClient, strings.HasPrefix(cfg.BaseURL, "http:"))
	hc.Transport = recorder{next: hc.Transport}
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	backend := stripego.GetBackendWithConfig(stripego.APIBackend, &stripego.BackendConfig{
		URL:               stripego.String(base),
		HTTPClient:        &hc,
		MaxNetworkRetries: stripego.Int64(0),
		LeveledLogger:     &stripego.LeveledLogger{Level: stripego.LevelNull},
		EnableTelemetry:   stripego.Bool(false),
	})
	sc := stripego.NewClient(cfg.APIKey, stripego.WithBackends(&stripego.Backends{
		API: backend, Connect: backend, Uploads: backend, MeterEvents: backend,
	}))
	return &Client{cfg: cfg, sc: sc}, nil
}

// Lookup retrieves the PaymentIntent named by o.ChannelTxnID. A missing
// intent (404 resource_missing) is a NOT_FOUND result; errors are classified
// as the package doc says.
func (c *Client) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	id, err := intentID(o)
	if err != nil {
		return recon.LookupResult{}, channel.Permanent(c.errorf("lookup", o.OrderNo, "%w", err))
	}
	params := &stripego.PaymentIntentRetrieveParams{}
	params.AddExpand("latest_charge")
	rec, sdkErr := c.call(ctx, func(ctx context.Context) error {
		_, err := c.sc.V1PaymentIntents.Retrieve(ctx, id, params)
		return err
	})
	if rec == nil {
		return recon.LookupResult{}, c.networkError(ctx, "lookup", o.OrderNo, sdkErr)
	}
	if rec.tooLarge {
		return recon.LookupResult{}, channel.Permanent(c.errorf("lookup", o.OrderNo, "%w: body larger than %d bytes", channel.ErrMalformed, MaxBodyBytes))
	}
	res, err := Decode(rec.reply, id, c.cfg.Now())
	if err != nil {
		return recon.LookupResult{}, c.wrap("lookup", o.OrderNo, err)
	}
	if rec.reply.StatusCode == http.StatusOK && sdkErr != nil {
		return recon.LookupResult{}, channel.Permanent(c.errorf("lookup", o.OrderNo,
			"%w: the Stripe SDK cannot decode the payment intent: %s", channel.ErrMalformed, snippet(rec.reply.Body)))
	}
	return res, nil
}

// CloseOrder cancels the PaymentIntent named by o.ChannelTxnID. An intent
// that is already canceled counts as closed; one that succeeded, is
// unknown, or cannot be cancelled fails permanently.
func (c *Client) CloseOrder(ctx context.Context, o recon.Order) error {
	id, err := intentID(o)
	if err != nil {
		return channel.Permanent(c.errorf("close", o.OrderNo, "%w", err))
	}
	params := &stripego.PaymentIntentCancelParams{CancellationReason: stripego.String(CancellationReason)}
	rec, sdkErr := c.call(ctx, func(ctx context.Context) error {
		_, err := c.sc.V1PaymentIntents.Cancel(ctx, id, params)
		return err
	})
	if rec == nil {
		return c.networkError(ctx, "close", o.OrderNo, sdkErr)
	}
	if rec.tooLarge {
		return channel.Permanent(c.errorf("close", o.OrderNo, "%w: body larger than %d bytes", channel.ErrMalformed, MaxBodyBytes))
	}
	if err := DecodeCancel(rec.reply, id, c.cfg.Now()); err != nil {
		return c.wrap("close", o.OrderNo, err)
	}
	if rec.reply.StatusCode == http.StatusOK && sdkErr != nil {
		return channel.Permanent(c.errorf("close", o.OrderNo,
			"%w: the Stripe SDK cannot decode the payment intent: %s", channel.ErrMalformed, snippet(rec.reply.Body)))
	}
	return nil
}

// DecodeCancel judges the raw reply to a cancel of the intent id: a 200
// must be the canceled intent; a 400 payment_intent_unexpected_state about
// an intent that is already canceled is success too. Everything else is an
// error classified like a lookup's, a missing intent included.
func DecodeCancel(r Reply, id string, now time.Time) error {
	if r.StatusCode == http.StatusOK {
		in, err := ParsePaymentIntent(r.Body, id)
		if err != nil {
			return channel.Permanent(err)
		}
		if in.Status != StatusCanceled {
			return channel.Permanent(fmt.Errorf("cancel answered status %s", in.Status))
		}
		return nil
	}
	e := ParseError(r.Body)
	if e != nil && r.StatusCode == http.StatusBadRequest && e.Code == CodeUnexpectedState &&
		e.PaymentIntent != nil && e.PaymentIntent.ID == id && e.PaymentIntent.Status == stripego.PaymentIntentStatusCanceled {
		return nil
	}
	return ReplyError(r, e, now)
}

// intentID is the PaymentIntent id of o, checked so that nothing but an id
// reaches the request path.
func intentID(o recon.Order) (string, error) {
	if o.ChannelTxnID == "" {
		return "", errors.New("order has no channel_txn_id (the PaymentIntent id): Stripe cannot look it up")
	}
	return objectID(o.ChannelTxnID, "pi_", "channel_txn_id", "PaymentIntent")
}

// objectID checks that id, read from key, is the id of a Stripe object of
// kind (prefix and then letters, digits and underscores), so that nothing
// but an id reaches a request path.
func objectID(id, prefix, key, kind string) (string, error) {
	bad := fmt.Errorf("%s %q is not a %s id (%s…)", key, channel.Truncate(id), kind, prefix)
	if !strings.HasPrefix(id, prefix) || len(id) > 255 {
		return "", bad
	}
	for _, r := range id {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "", bad
		}
	}
	return id, nil
}

// call runs one SDK request under the per-request timeout and returns the
// raw reply it got, or nil when no reply came (network failure, timeout).
func (c *Client) call(ctx context.Context, do func(ctx context.Context) error) (*record, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rec := &record{}
	err := do(context.WithValue(rctx, recordKey{}, rec))
	if !rec.got {
		if err == nil {
			err = errors.New("no reply")
		}
		return nil, err
	}
	return rec, err
}

// networkError classifies a call that got no reply (channel.NetworkError),
// naming the channel, operation and order inside the class.
func (c *Client) networkError(ctx context.Context, op, no string, err error) error {
	return channel.NetworkError(ctx, err, func(err error) error { return c.errorf(op, no, "%w", err) })
}

// wrap names the channel and the order (or refund) numbered no in a
// classified error, keeping its class.
func (c *Client) wrap(op, no string, err error) error {
	var ce *channel.Error
	if errors.As(err, &ce) {
		return &channel.Error{Class: ce.Class, RetryAfter: ce.RetryAfter, Err: c.errorf(op, no, "%w", ce.Err)}
	}
	return c.errorf(op, no, "%w", err)
}

func (c *Client) errorf(op, no, format string, args ...any) error {
	return fmt.Errorf("stripe %s: %s %s: %w", c.cfg.Name, op, no, fmt.Errorf(format, args...))
}

// recordKey carries a *record in a request's context.
type recordKey struct{}

// record is the raw reply to one request, kept by recorder.
type record struct {
	got      bool
	tooLarge bool
	reply    Reply
}

// recorder is the SDK's transport: it reads each reply's body (bounded) and
// keeps status, headers and bytes in the request's record, then hands the
// SDK the same bytes.
type recorder struct{ next http.RoundTripper }

func (t recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rec, _ := req.Context().Value(recordKey{}).(*record)
	sink, _ := req.Context().Value(sinkKey{}).(func(Reply))
	if rec == nil && sink == nil {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	reply := Reply{StatusCode: resp.StatusCode, Header: resp.Header.Clone(), Body: body}
	if rec != nil {
		rec.got = true
		rec.tooLarge = len(body) > MaxBodyBytes
		rec.reply = reply
	}
	if sink != nil {
		sink(reply) // it judges a body longer than MaxBodyBytes
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

var _ channel.IdleCloser = (*Client)(nil)

// CloseIdleConnections closes the idle connections of the client's HTTP
// client (statement downloads share its transport).
func (c *Client) CloseIdleConnections() { c.cfg.HTTPClient.CloseIdleConnections() }
