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
package simulator

import (
	"context"
	"encoding/binary"
	"encoding/json"
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
	// LateAfter is how many lookups a late order stays PENDING (default 2).
	LateAfter int `yaml:"late_after"`

	// TransientRate of calls fail with HTTP 500 (transient).
	TransientRate float64 `yaml:"transient_rate"`
	// RateLimitRate of calls answer HTTP 429 with RetryAfter.
	RateLimitRate float64 `yaml:"rate_limit_rate"`
	// RetryAfter is the Retry-After of a 429 (default 1s). Handler sends it
	// rounded up to whole seconds, as HTTP carries it.
	RetryAfter time.Duration `yaml:"retry_after"`

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

	mu        sync.Mutex
	overrides map[string]Behaviour
	orders    map[string]*orderState
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
	return &Sim{
		cfg:       cfg,
		decode:    httpjson.Config{Name: "simulator", Secret: cfg.Secret},
		overrides: map[string]Behaviour{},
		orders:    map[string]*orderState{},
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
	if err := s.sleep(ctx); err != nil {
		return recon.LookupResult{}, fmt.Errorf("simulator: lookup %s: %w", o.OrderNo, err)
	}
	p := s.step(o)
	if p.kind == replyRateLimited {
		// The exact wait: a header would round it to whole seconds.
		return recon.LookupResult{}, channel.RateLimited(s.cfg.RetryAfter,
			fmt.Errorf("simulator: lookup %s: HTTP 429 too many requests", o.OrderNo))
	}
	return httpjson.Decode(s.decode, s.render(o, p), o.OrderNo)
}

// CloseOrder closes o at the channel. Closing a pending order makes later
// lookups answer CLOSED; closing a closed one succeeds again. An order that
// is paid (or PayOnClose), failed or unknown cannot be closed: the error is
// permanent.
func (s *Sim) CloseOrder(ctx context.Context, o recon.Order) error {
	if err := s.sleep(ctx); err != nil {
		return fmt.Errorf("simulator: close %s: %w", o.OrderNo, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := s.behaviour(o)
	st := s.state(o.OrderNo)
	fail := func(why string) error {
		return channel.Permanent(fmt.Errorf("simulator: close %s: %s", o.OrderNo, why))
	}
	switch {
	case b.PermanentError:
		return fail("simulated permanent failure")
	case st.paid:
		return fail("order already paid")
	case st.closed:
		return nil
	case b.PayOnClose:
		st.paid = true
		return fail("order already paid")
	}
	switch status := currentStatus(b, st.answers); status {
	case recon.ChannelPending:
		st.closed = true
		return nil
	case recon.ChannelClosed:
		return nil
	case recon.ChannelNotFound:
		return fail("order does not exist")
	default:
		return fail(fmt.Sprintf("order already %s", status))
	}
}

// Handler serves the simulator over HTTP as an httpjson channel:
// GET /order/get_result?orderId=… answers with the signed httpjson body,
// 429 with Retry-After, 500 for a transient fault, 400 for a permanent one and
// 404 for an order unknown to the channel or to orders.
func (s *Sim) Handler(orders OrderSource) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+httpjson.DefaultLookupPath, func(w http.ResponseWriter, r *http.Request) {
		no := r.URL.Query().Get(httpjson.DefaultOrderParam)
		if no == "" {
			writeReply(w, s.errorReply(http.StatusBadRequest, "4001", "missing "+httpjson.DefaultOrderParam))
			return
		}
		if err := s.sleep(r.Context()); err != nil {
			return // the client is gone
		}
		o, ok, err := orders.OrderByNo(r.Context(), no)
		if err != nil {
			writeReply(w, s.errorReply(http.StatusInternalServerError, "5001", "order source unavailable"))
			return
		}
		if !ok {
			s.mu.Lock()
			s.state(no).calls++
			s.mu.Unlock()
			writeReply(w, s.render(recon.Order{OrderNo: no}, plan{kind: replyAnswer, status: recon.ChannelNotFound}))
			return
		}
		o.OrderNo = no
		writeReply(w, s.render(o, s.step(o)))
	})
	return mux
}

func writeReply(w http.ResponseWriter, r httpjson.Reply) {
	for k, vs := range r.Header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.StatusCode)
	_, _ = w.Write(r.Body)
}

// sleep waits Config.Latency or until ctx is done.
func (s *Sim) sleep(ctx context.Context) error {
	if s.cfg.Latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(s.cfg.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type replyKind int

const (
	replyAnswer replyKind = iota
	replyTransient
	replyRateLimited
	replyPermanent
)

// plan is what one call answers, decided under the lock.
type plan struct {
	kind     replyKind
	status   recon.ChannelStatus
	amount   int64
	currency string
	badSig   bool
}

// step counts one Lookup call of o and decides its answer.
func (s *Sim) step(o recon.Order) plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, forced := s.behaviour(o)
	st := s.state(o.OrderNo)
	st.calls++
	n := st.calls
	if forced {
		switch {
		case n <= b.TransientFailures:
			return plan{kind: replyTransient}
		case n <= b.TransientFailures+b.RateLimits:
			return plan{kind: replyRateLimited}
		case b.PermanentError:
			return plan{kind: replyPermanent}
		}
	} else {
		u := s.unit(o.OrderNo, "call", strconv.Itoa(n))
		switch {
		case u < s.cfg.TransientRate:
			return plan{kind: replyTransient}
		case u < s.cfg.TransientRate+s.cfg.RateLimitRate:
			return plan{kind: replyRateLimited}
		}
	}
	st.answers++
	p := plan{kind: replyAnswer, badSig: b.BadSignature, amount: o.Amount, currency: o.Currency}
	switch {
	case st.paid:
		p.status = recon.ChannelPaid
	case st.closed:
		p.status = recon.ChannelClosed
	default:
		p.status = currentStatus(b, st.answers)
	}
	if p.status == recon.ChannelPaid {
		if b.Amount != 0 {
			p.amount = b.Amount
		}
		if b.Currency != "" {
			p.currency = b.Currency
		}
	}
	return p
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

// render turns a plan into the HTTP answer a real httpjson channel would
// send: body, status code and headers, signed with the secret.
func (s *Sim) render(o recon.Order, p plan) httpjson.Reply {
	switch p.kind {
	case replyTransient:
		return s.errorReply(http.StatusInternalServerError, "5000", "simulated transient failure")
	case replyPermanent:
		return s.errorReply(http.StatusBadRequest, "4000", "simulated permanent failure")
	case replyRateLimited:
		r := s.errorReply(http.StatusTooManyRequests, "4290", "too many requests")
		secs := (s.cfg.RetryAfter + time.Second - 1) / time.Second
		r.Header.Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		return r
	}
	if p.status == recon.ChannelNotFound {
		return s.signed(http.StatusNotFound, httpjson.Response{Code: httpjson.DefaultNotFoundCode, Msg: "order not exist"}, p.badSig)
	}
	amount := p.amount
	d := &httpjson.Data{Order: o.OrderNo, Status: string(p.status), Amount: &amount, Currency: p.currency}
	if p.status == recon.ChannelPaid {
		d.TxnID = fmt.Sprintf("SIM%016X", s.hash(o.OrderNo, "txn"))
		d.PaidAt = s.paidAt(o).Format(time.RFC3339)
	}
	return s.signed(http.StatusOK, httpjson.Response{Code: httpjson.DefaultSuccessCode, Msg: "success", Data: d}, p.badSig)
}

// paidAt is a deterministic few seconds after the order was created.
func (s *Sim) paidAt(o recon.Order) time.Time {
	base := o.CreatedAt
	if base.IsZero() {
		base = s.cfg.Clock.Now()
	}
	return base.UTC().Truncate(time.Second).Add(time.Duration(1+s.hash(o.OrderNo, "paid_at")%60) * time.Second)
}

func (s *Sim) errorReply(code int, bodyCode, msg string) httpjson.Reply {
	body, _ := json.Marshal(httpjson.Response{Code: bodyCode, Msg: msg})
	return httpjson.Reply{StatusCode: code, Header: http.Header{}, Body: body}
}

// signed encodes resp and signs it; a bad signature is made with another
// key, as a forger without the secret would.
func (s *Sim) signed(code int, resp httpjson.Response, bad bool) httpjson.Reply {
	body, _ := json.Marshal(resp) // plain strings and numbers always encode
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
