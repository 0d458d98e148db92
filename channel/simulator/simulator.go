// Package simulator is an in-process, deterministic payment channel for tests
// and the demo (channel kind "simulator").
//
// Every answer is real: the simulator renders it as the httpjson wire body
// (CONTRACT §6), signs it, and decodes it again with httpjson.Decode, so a
// tampered signature is caught by verification exactly as it would be for a
// remote channel. Handler serves the same answers over HTTP.
//
// What happens to an order is chosen from hash(seed, order_no), so a seed
// always gives the same answers; Set forces a Behaviour for one order.
// Refunds are answered alike (LookupRefund; SetRefund forces a
// RefundBehaviour for one refund; see refund.go).
package simulator

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
)

// DefaultSecret signs the answers when Config.Secret is empty, so signatures
// are always checked. An httpjson client of Handler must use the same secret.
const DefaultSecret = "recon-simulator"

// Defaults for the zero values of Config.
const (
	DefaultLateAfter  = 2
	DefaultRetryAfter = time.Second
)

// Config shapes the simulated channel. The yaml names are those of the
// `simulator:` block of a channel in config.yaml.
//
// The order rates are fractions of orders, each order falling into at most
// one bucket chosen from hash(seed, order_no), in the order the fields are
// listed; orders in no bucket stay PENDING. Rates that sum to more than 1
// starve the later buckets. The call rates apply to each Lookup call,
// chosen from hash(seed, order_no, call number).
type Config struct {
	// Seed makes the choices; the same seed gives the same answers.
	Seed int64 `yaml:"seed"`
	// Latency is added to every call (context-aware).
	Latency time.Duration `yaml:"latency"`
	// Secret signs the answers (default DefaultSecret).
	Secret string `yaml:"secret" json:"-"`

	// PaidRate answer PAID with the order's amount and currency.
	PaidRate float64 `yaml:"paid_rate"`
	// FailedRate answer FAILED.
	FailedRate float64 `yaml:"failed_rate"`
	// ClosedRate answer CLOSED.
	ClosedRate float64 `yaml:"closed_rate"`
	// NotFoundRate are unknown to the channel (HTTP 404).
	NotFoundRate float64 `yaml:"not_found_rate"`
	// LateRate answer PENDING for their first LateAfter lookups, then PAID.
	LateRate float64 `yaml:"late_rate"`
	// AmountTamperRate answer PAID with the order's amount plus one.
	AmountTamperRate float64 `yaml:"amount_tamper_rate"`
	// CurrencyTamperRate answer PAID in another currency.
	CurrencyTamperRate float64 `yaml:"currency_tamper_rate"`
	// BadSignatureRate answer PAID with a signature that does not verify.
	BadSignatureRate float64 `yaml:"bad_signature_rate"`
	// RefundAbnormalRate of refunds answer ABNORMAL (the refund needs the
	// merchant's action at the channel); refunds share the other rates with
	// orders (see SetRefund).
	RefundAbnormalRate float64 `yaml:"refund_abnormal_rate"`
	// LateAfter is how many lookups a late order stays PENDING (default 2).
	LateAfter int `yaml:"late_after"`

	// TransientRate of calls fail with HTTP 500 (transient).
	TransientRate float64 `yaml:"transient_rate"`
	// RateLimitRate of calls answer HTTP 429 with RetryAfter.
	RateLimitRate float64 `yaml:"rate_limit_rate"`
	// RetryAfter is the Retry-After of a 429 (default 1s). Handler sends it
	// rounded up to whole seconds, as HTTP carries it.
	RetryAfter time.Duration `yaml:"retry_after"`

	// FeeRate is the share of each payment the channel keeps as its fee in
	// statements (default DefaultFeeRate).
	FeeRate float64 `yaml:"-"`
	// CleanStatements leaves the planted discrepancies out of statements
	// (see StatementLines).
	CleanStatements bool `yaml:"clean_statements"`
	// StatementZone is the time zone of a statement day (default UTC).
	StatementZone *time.Location `yaml:"-" json:"-"`

	// Clock dates the paid_at of orders without a created_at (default: the
	// system clock). Orders with one are paid a deterministic few seconds
	// after it.
	Clock recon.Clock `yaml:"-" json:"-"`
}

// Behaviour forces what the channel does with one order (see Sim.Set).
type Behaviour struct {
	// Status is the answer (empty: PENDING). An invalid value is sent as is,
	// and the decoder rejects it as malformed.
	Status recon.ChannelStatus
	// Amount of a PAID answer (0: the order's amount).
	Amount int64
	// Currency of a PAID answer ("": the order's).
	Currency string
	// TransientFailures makes the order's first N calls fail with HTTP 500.
	TransientFailures int
	// RateLimits makes the next N calls answer HTTP 429 with RetryAfter.
	RateLimits int
	// PermanentError makes every later call fail with HTTP 400, and
	// CloseOrder fail permanently.
	PermanentError bool
	// BadSignature sends answers with a signature that does not verify.
	BadSignature bool
	// PaidAfterLookups, when positive, answers Status for the first N
	// lookups and PAID afterwards.
	PaidAfterLookups int
	// PayOnClose makes CloseOrder find the order paid: the close fails and
	// later lookups answer PAID.
	PayOnClose bool
	// Malformed answers a correctly signed body that cannot be parsed.
	Malformed bool
	// StaleTimestamp signs answers with a timestamp far in the past, for the
	// wire formats whose signature covers one (WeChat Pay).
	StaleTimestamp bool
	// Delay is added to every call of the order, after Config.Latency: a
	// delay longer than the client's timeout is a timeout.
	Delay time.Duration
}

// OrderSource supplies the orders Handler answers about: an HTTP request
// carries only the order number.
type OrderSource interface {
	// OrderByNo returns the order numbered orderNo, or false when there is
	// none.
	OrderByNo(ctx context.Context, orderNo string) (recon.Order, bool, error)
}

// OrderSourceFunc adapts a function to OrderSource.
type OrderSourceFunc func(ctx context.Context, orderNo string) (recon.Order, bool, error)

// OrderByNo calls f.
func (f OrderSourceFunc) OrderByNo(ctx context.Context, orderNo string) (recon.Order, bool, error) {
	return f(ctx, orderNo)
}

// Sim is a simulated channel. It is safe for concurrent use.
type Sim struct {
	cfg    Config
	decode httpjson.Config // how answers are verified and parsed

	mu              sync.Mutex
	overrides       map[string]Behaviour
	orders          map[string]*orderState
	refundOverrides map[string]RefundBehaviour
	refunds         map[string]*orderState
	stmtOrders      StatementOrders
}

// orderState is what the channel remembers about one order.
type orderState struct {
	calls   int  // Lookup calls, faults included
	answers int  // lookups answered with a status
	closed  bool // closed by CloseOrder
	paid    bool // found paid by CloseOrder (PayOnClose)
}

var (
	_ channel.Lookup = (*Sim)(nil)
	_ channel.Closer = (*Sim)(nil)
)

// New returns a simulator for cfg.
func New(cfg Config) *Sim {
	if cfg.Secret == "" {
		cfg.Secret = DefaultSecret
	}
	if cfg.LateAfter <= 0 {
		cfg.LateAfter = DefaultLateAfter
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Clock == nil {
		cfg.Clock = recon.SystemClock{}
	}
	if cfg.StatementZone == nil {
		cfg.StatementZone = time.UTC
	}
	return &Sim{
		cfg:             cfg,
		decode:          httpjson.Config{Name: "simulator", Secret: cfg.Secret},
		overrides:       map[string]Behaviour{},
		orders:          map[string]*orderState{},
		refundOverrides: map[string]RefundBehaviour{},
		refunds:         map[string]*orderState{},
	}
}

// Set forces behaviour b for orderNo instead of the seeded choice, and turns
// off the random per-call faults for it. Call counts start at the order's
// first call, whenever Set is called.
func (s *Sim) Set(orderNo string, b Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overrides[orderNo] = b
}

// Calls returns how many Lookup calls (in process or over HTTP) orderNo got.
func (s *Sim) Calls(orderNo string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.orders[orderNo]; st != nil {
		return st.calls
	}
	return 0
}

// Lookup answers about o like a remote httpjson channel: the answer is
// rendered, signed, verified and parsed. Faults are channel.Transient (500),
// channel.RateLimited (429, with Config.RetryAfter) and channel.Permanent
// (400); a bad signature wraps channel.ErrBadSignature.
func (s *Sim) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	a, err := s.Next(ctx, o)
	if err != nil {
		return recon.LookupResult{}, fmt.Errorf("simulator: lookup %s: %w", o.OrderNo, err)
	}
	if a.Kind == AnswerRateLimited {
		// The exact wait: a header would round it to whole seconds.
		return recon.LookupResult{}, channel.RateLimited(a.RetryAfter,
			fmt.Errorf("simulator: lookup %s: HTTP 429 too many requests", o.OrderNo))
	}
	return httpjson.Decode(s.decode, s.render(o, a), o.OrderNo)
}

// AnswerKind says what kind of reply one call gets.
type AnswerKind int

// Answer kinds.
const (
	// AnswerStatus is an answer about the order (Answer.Status).
	AnswerStatus AnswerKind = iota
	// AnswerTransient is a server fault (HTTP 5xx or the provider's
	// system-error code).
	AnswerTransient
	// AnswerRateLimited asks the caller to slow down (HTTP 429 with
	// Answer.RetryAfter).
	AnswerRateLimited
	// AnswerPermanent is a request the channel refuses (HTTP 4xx or the
	// provider's business error), whatever the retries.
	AnswerPermanent
)

// Answer is what the simulated channel decided for one call, before it is
// rendered in a provider's wire format. The wire renderers (httpjson here,
// and one per provider kind in this package) turn it into bytes, signed as
// the provider signs.
type Answer struct {
	Kind       AnswerKind
	Status     recon.ChannelStatus // AnswerStatus
	Amount     int64               // minor units
	Currency   string              // ISO 4217, upper case
	TxnID      string              // set when PAID
	PaidAt     time.Time           // set when PAID
	RetryAfter time.Duration       // AnswerRateLimited

	// BadSignature: sign with a key that is not the channel's.
	BadSignature bool
	// Malformed: send a correctly signed body that cannot be parsed.
	Malformed bool
	// StaleTimestamp: sign with a timestamp far in the past.
	StaleTimestamp bool
}

// Next waits the configured latency (and the order's Delay), counts one
// call about o and decides its answer. It returns ctx's error if ctx ends
// first. Every wire format shares it, so they all fail alike.
func (s *Sim) Next(ctx context.Context, o recon.Order) (Answer, error) {
	s.mu.Lock()
	b, _ := s.behaviour(o)
	s.mu.Unlock()
	if err := s.sleep(ctx, b.Delay); err != nil {
		return Answer{}, err
	}
	a := s.step(o)
	if a.Kind == AnswerStatus && a.Status == recon.ChannelPaid {
		a.TxnID = s.TxnID(o.OrderNo)
		a.PaidAt = s.paidAt(o)
	}
	return a, nil
}

// NotFound counts one call about an order number the order source does not
// know, and returns the NOT_FOUND answer for it.
func (s *Sim) NotFound(orderNo string) Answer {
	s.mu.Lock()
	s.state(orderNo).calls++
	s.mu.Unlock()
	return Answer{Kind: AnswerStatus, Status: recon.ChannelNotFound}
}

// TxnID is the channel's transaction id for a paid order, the same for the
// same seed and order number.
func (s *Sim) TxnID(orderNo string) string {
	return fmt.Sprintf("SIM%016X", s.hash(orderNo, "txn"))
}

// Why CloseOrder refuses, for the wire renderers to pick the provider's
// error code: the error CloseOrder returns wraps one of them.
var (
	// ErrCloseRefused: a simulated permanent failure (Behaviour.PermanentError).
	ErrCloseRefused = errors.New("simulated permanent failure")
	// ErrClosePaid: the order is paid and cannot be closed.
	ErrClosePaid = errors.New("order already paid")
	// ErrCloseFailed: the order's payment failed and it cannot be closed.
	ErrCloseFailed = errors.New("order already failed")
	// ErrCloseNotFound: the channel does not know the order.
	ErrCloseNotFound = errors.New("order does not exist")
)

// CloseOrder closes o at the channel. Closing a pending order makes later
// lookups answer CLOSED; closing a closed one succeeds again. An order that
// is paid (or PayOnClose), failed or unknown cannot be closed: the error is
// permanent and wraps ErrClosePaid, ErrCloseFailed, ErrCloseNotFound or
// ErrCloseRefused.
func (s *Sim) CloseOrder(ctx context.Context, o recon.Order) error {
	if err := s.sleep(ctx, 0); err != nil {
		return fmt.Errorf("simulator: close %s: %w", o.OrderNo, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := s.behaviour(o)
	st := s.state(o.OrderNo)
	fail := func(why error) error {
		return channel.Permanent(fmt.Errorf("simulator: close %s: %w", o.OrderNo, why))
	}
	switch {
	case b.PermanentError:
		return fail(ErrCloseRefused)
	case st.paid:
		return fail(ErrClosePaid)
	case st.closed:
		return nil
	case b.PayOnClose:
		st.paid = true
		return fail(ErrClosePaid)
	}
	switch currentStatus(b, st.answers) {
	case recon.ChannelPending:
		st.closed = true
		return nil
	case recon.ChannelClosed:
		return nil
	case recon.ChannelNotFound:
		return fail(ErrCloseNotFound)
	case recon.ChannelPaid:
		return fail(ErrClosePaid)
	default:
		return fail(ErrCloseFailed)
	}
}

// Handler serves the simulator over HTTP as an httpjson channel:
// GET /order/get_result?orderId=… answers with the signed httpjson body,
// 429 with Retry-After, 500 for a transient fault, 400 for a permanent one and
// 404 for an order unknown to the channel or to orders. GET
// /refund/get_result?refundId=… answers about the refunds of orders when it
// is also a RefundSource (404 for every refund otherwise).
func (s *Sim) Handler(orders OrderSource) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+httpjson.DefaultRefundLookupPath, s.serveRefund(refundsOf(orders)))
	mux.HandleFunc("GET "+httpjson.DefaultStatementPath, s.serveStatement)
	mux.HandleFunc("GET "+httpjson.DefaultLookupPath, func(w http.ResponseWriter, r *http.Request) {
		no := r.URL.Query().Get(httpjson.DefaultOrderParam)
		if no == "" {
			writeReply(w, s.errorReply(http.StatusBadRequest, "4001", "missing "+httpjson.DefaultOrderParam))
			return
		}
		o, a, err := s.AnswerFor(r.Context(), orders, no)
		if err != nil {
			if r.Context().Err() == nil {
				writeReply(w, s.errorReply(http.StatusInternalServerError, "5001", "order source unavailable"))
			}
			return
		}
		writeReply(w, s.render(o, a))
	})
	return mux
}

// AnswerFor finds the order numbered orderNo in orders and decides the
// answer to one call about it, like Next; an order orders does not know is
// NOT_FOUND. It fails when orders fails or ctx ends.
func (s *Sim) AnswerFor(ctx context.Context, orders OrderSource, orderNo string) (recon.Order, Answer, error) {
	o, ok, err := orders.OrderByNo(ctx, orderNo)
	if err != nil {
		return recon.Order{}, Answer{}, fmt.Errorf("simulator: find order %s: %w", orderNo, err)
	}
	if !ok {
		if err := s.sleep(ctx, 0); err != nil {
			return recon.Order{}, Answer{}, err
		}
		return recon.Order{OrderNo: orderNo}, s.NotFound(orderNo), nil
	}
	o.OrderNo = orderNo
	a, err := s.Next(ctx, o)
	return o, a, err
}

func writeReply(w http.ResponseWriter, r httpjson.Reply) {
	for k, vs := range r.Header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.StatusCode)
	_, _ = w.Write(r.Body)
}

// sleep waits Config.Latency plus extra, or until ctx is done.
func (s *Sim) sleep(ctx context.Context, extra time.Duration) error {
	d := s.cfg.Latency + extra
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// step counts one Lookup call of o and decides its answer (without the
// paid answer's txn id and time, which Next adds).
func (s *Sim) step(o recon.Order) Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, forced := s.behaviour(o)
	st := s.state(o.OrderNo)
	if k, ok := s.fault(st, callFaults{b.TransientFailures, b.RateLimits, b.PermanentError}, forced, o.OrderNo); ok {
		// Faults carry the order's wire flags too, but never a bad signature.
		a := Answer{Kind: k, Malformed: b.Malformed, StaleTimestamp: b.StaleTimestamp}
		if k == AnswerRateLimited {
			a.RetryAfter = s.cfg.RetryAfter
		}
		return a
	}
	st.answers++
	a := Answer{Kind: AnswerStatus, Amount: o.Amount, Currency: o.Currency,
		BadSignature: b.BadSignature, Malformed: b.Malformed, StaleTimestamp: b.StaleTimestamp}
	switch {
	case st.paid:
		a.Status = recon.ChannelPaid
	case st.closed:
		a.Status = recon.ChannelClosed
	default:
		a.Status = currentStatus(b, st.answers)
	}
	if a.Status == recon.ChannelPaid {
		if b.Amount != 0 {
			a.Amount = b.Amount
		}
		if b.Currency != "" {
			a.Currency = b.Currency
		}
	}
	return a
}

// callFaults are the per-call faults a forced behaviour injects.
type callFaults struct {
	transient, rateLimits int
	permanent             bool
}

// fault counts one call in st and returns the fault it gets, if any: a
// forced behaviour's first transient and rate-limited calls and its
// permanent error, otherwise the seeded per-call faults, chosen from
// hash(seed, key, call number). s.mu must be held.
func (s *Sim) fault(st *orderState, f callFaults, forced bool, key string) (AnswerKind, bool) {
	st.calls++
	n := st.calls
	if forced {
		switch {
		case n <= f.transient:
			return AnswerTransient, true
		case n <= f.transient+f.rateLimits:
			return AnswerRateLimited, true
		case f.permanent:
			return AnswerPermanent, true
		}
		return AnswerStatus, false
	}
	u := s.unit(key, "call", strconv.Itoa(n))
	switch {
	case u < s.cfg.TransientRate:
		return AnswerTransient, true
	case u < s.cfg.TransientRate+s.cfg.RateLimitRate:
		return AnswerRateLimited, true
	}
	return AnswerStatus, false
}

// currentStatus is what b answers at its k-th lookup, before any close.
func currentStatus(b Behaviour, k int) recon.ChannelStatus {
	if b.PaidAfterLookups > 0 && k > b.PaidAfterLookups {
		return recon.ChannelPaid
	}
	if b.Status == "" {
		return recon.ChannelPending
	}
	return b.Status
}

// state returns the state of orderNo, creating it. s.mu must be held.
func (s *Sim) state(orderNo string) *orderState {
	st := s.orders[orderNo]
	if st == nil {
		st = &orderState{}
		s.orders[orderNo] = st
	}
	return st
}

// behaviour returns the forced behaviour of o, or the one its seeded bucket
// gives. s.mu must be held.
func (s *Sim) behaviour(o recon.Order) (b Behaviour, forced bool) {
	if b, ok := s.overrides[o.OrderNo]; ok {
		return b, true
	}
	u := s.unit(o.OrderNo, "bucket")
	buckets := []struct {
		rate float64
		b    func() Behaviour
	}{
		{s.cfg.PaidRate, func() Behaviour { return Behaviour{Status: recon.ChannelPaid} }},
		{s.cfg.FailedRate, func() Behaviour { return Behaviour{Status: recon.ChannelFailed} }},
		{s.cfg.ClosedRate, func() Behaviour { return Behaviour{Status: recon.ChannelClosed} }},
		{s.cfg.NotFoundRate, func() Behaviour { return Behaviour{Status: recon.ChannelNotFound} }},
		{s.cfg.LateRate, func() Behaviour {
			return Behaviour{Status: recon.ChannelPending, PaidAfterLookups: s.cfg.LateAfter}
		}},
		{s.cfg.AmountTamperRate, func() Behaviour { return Behaviour{Status: recon.ChannelPaid, Amount: o.Amount + 1} }},
		{s.cfg.CurrencyTamperRate, func() Behaviour {
			return Behaviour{Status: recon.ChannelPaid, Currency: s.otherCurrency(o)}
		}},
		{s.cfg.BadSignatureRate, func() Behaviour { return Behaviour{Status: recon.ChannelPaid, BadSignature: true} }},
	}
	var edge float64
	for _, bk := range buckets {
		edge += bk.rate
		if u < edge {
			return bk.b(), false
		}
	}
	return Behaviour{Status: recon.ChannelPending}, false
}

var currencies = []string{"USD", "EUR", "CNY", "GBP", "JPY", "HKD"}

// otherCurrency picks a currency other than o's, deterministically.
func (s *Sim) otherCurrency(o recon.Order) string {
	i := int(s.hash(o.OrderNo, "currency") % uint64(len(currencies)))
	for currencies[i] == o.Currency {
		i = (i + 1) % len(currencies)
	}
	return currencies[i]
}

// render turns an answer into the HTTP reply a real httpjson channel would
// send: body, status code and headers, signed with the secret.
func (s *Sim) render(o recon.Order, a Answer) httpjson.Reply {
	switch a.Kind {
	case AnswerTransient:
		return s.errorReply(http.StatusInternalServerError, "5000", "simulated transient failure")
	case AnswerPermanent:
		return s.errorReply(http.StatusBadRequest, "4000", "simulated permanent failure")
	case AnswerRateLimited:
		r := s.errorReply(http.StatusTooManyRequests, "4290", "too many requests")
		r.Header.Set("Retry-After", RetryAfterHeader(a.RetryAfter))
		return r
	}
	if a.Malformed {
		return s.signedBytes(http.StatusOK, []byte(`{"code":"0000","data":{"status":`), a.BadSignature)
	}
	if a.Status == recon.ChannelNotFound {
		return s.signed(http.StatusNotFound, httpjson.Response{Code: httpjson.DefaultNotFoundCode, Msg: "order not exist"}, a.BadSignature)
	}
	amount := a.Amount
	d := &httpjson.Data{Order: o.OrderNo, Status: string(a.Status), Amount: &amount, Currency: a.Currency}
	if a.Status == recon.ChannelPaid {
		d.TxnID = a.TxnID
		d.PaidAt = a.PaidAt.Format(time.RFC3339)
	}
	return s.signed(http.StatusOK, httpjson.Response{Code: httpjson.DefaultSuccessCode, Msg: "success", Data: d}, a.BadSignature)
}

// RetryAfterHeader renders d as an HTTP Retry-After value: whole seconds,
// rounded up.
func RetryAfterHeader(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// paidAt is a deterministic few seconds after the order was created.
func (s *Sim) paidAt(o recon.Order) time.Time {
	return s.shortlyAfter(o.CreatedAt, o.OrderNo, "paid_at")
}

// shortlyAfter is a deterministic 1 to 60 seconds after created (or after
// now, when created is zero), chosen from hash(seed, parts).
func (s *Sim) shortlyAfter(created time.Time, parts ...string) time.Time {
	if created.IsZero() {
		created = s.cfg.Clock.Now()
	}
	return created.UTC().Truncate(time.Second).Add(time.Duration(1+s.hash(parts...)%60) * time.Second)
}

func (s *Sim) errorReply(code int, bodyCode, msg string) httpjson.Reply {
	body, _ := json.Marshal(httpjson.Response{Code: bodyCode, Msg: msg})
	return httpjson.Reply{StatusCode: code, Header: http.Header{}, Body: body}
}

// signed encodes resp and signs it; a bad signature is made with another
// key, as a forger without the secret would.
func (s *Sim) signed(code int, resp httpjson.Response, bad bool) httpjson.Reply {
	return s.signedJSON(code, resp, bad)
}

// signedJSON encodes v (an httpjson answer of plain strings and numbers)
// and signs it like signed.
func (s *Sim) signedJSON(code int, v any, bad bool) httpjson.Reply {
	body, _ := json.Marshal(v) // plain strings and numbers always encode
	return s.signedBytes(code, body, bad)
}

func (s *Sim) signedBytes(code int, body []byte, bad bool) httpjson.Reply {
	key := s.cfg.Secret
	if bad {
		key = "forged-" + key
	}
	h := http.Header{}
	h.Set(httpjson.SignatureHeader, httpjson.Sign(key, body))
	return httpjson.Reply{StatusCode: code, Header: h, Body: body}
}

// hash mixes the seed and parts into 64 well-spread bits.
func (s *Sim) hash(parts ...string) uint64 {
	h := fnv.New64a()
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(s.cfg.Seed))
	h.Write(seed[:])
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	// splitmix64 finaliser: FNV's high bits are poorly mixed for similar keys.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// unit maps hash(seed, parts) to [0, 1).
func (s *Sim) unit(parts ...string) float64 {
	return float64(s.hash(parts...)>>11) / (1 << 53)
}
