package simulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
)

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func order(no string) recon.Order {
	return recon.Order{OrderNo: no, Amount: 1000, Currency: "CNY", Status: recon.StatusPending, CreatedAt: t0}
}

// outcome is one call's answer in comparable form.
type outcome struct {
	Status     recon.ChannelStatus
	Amount     int64
	Currency   string
	TxnID      string
	PaidAt     string
	Class      string // "" on success
	BadSig     bool
	RetryAfter time.Duration
}

func (o outcome) String() string { return fmt.Sprintf("%+v", struct{ outcome }{o}) }

func toOutcome(r recon.LookupResult, err error) outcome {
	if err != nil {
		return outcome{Class: channel.ClassOf(err).String(), BadSig: errors.Is(err, channel.ErrBadSignature), RetryAfter: channel.RetryAfterOf(err)}
	}
	o := outcome{Status: r.Status, Amount: r.Amount, Currency: r.Currency, TxnID: r.TxnID}
	if r.PaidAt != nil {
		o.PaidAt = r.PaidAt.Format(time.RFC3339)
	}
	return o
}

func call(t *testing.T, l channel.Lookup, o recon.Order) outcome {
	t.Helper()
	return toOutcome(l.Lookup(context.Background(), o))
}

var (
	pending  = outcome{Status: recon.ChannelPending, Amount: 1000, Currency: "CNY"}
	failed   = outcome{Status: recon.ChannelFailed, Amount: 1000, Currency: "CNY"}
	closed   = outcome{Status: recon.ChannelClosed, Amount: 1000, Currency: "CNY"}
	notFound = outcome{Status: recon.ChannelNotFound}
	transErr = outcome{Class: "transient"}
	permErr  = outcome{Class: "permanent"}
	badSig   = outcome{Class: "permanent", BadSig: true}
)

// paid is a PAID answer; txn id and paid_at are checked apart.
func paid(amount int64, currency string) outcome {
	return outcome{Status: recon.ChannelPaid, Amount: amount, Currency: currency}
}

func rateLimited(d time.Duration) outcome { return outcome{Class: "rate_limited", RetryAfter: d} }

// strip removes the fields checked apart.
func strip(o outcome) outcome { o.TxnID, o.PaidAt = "", ""; return o }

func TestBehaviours(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 7, Secret: "k", RetryAfter: 2 * time.Second}
	for _, tc := range []struct {
		name string
		b    Behaviour
		want []outcome
	}{
		{"zero is pending", Behaviour{}, []outcome{pending, pending}},
		{"paid", Behaviour{Status: recon.ChannelPaid}, []outcome{paid(1000, "CNY"), paid(1000, "CNY")}},
		{"failed", Behaviour{Status: recon.ChannelFailed}, []outcome{failed}},
		{"closed", Behaviour{Status: recon.ChannelClosed}, []outcome{closed}},
		{"not found", Behaviour{Status: recon.ChannelNotFound}, []outcome{notFound}},
		{"amount", Behaviour{Status: recon.ChannelPaid, Amount: 999}, []outcome{paid(999, "CNY")}},
		{"currency", Behaviour{Status: recon.ChannelPaid, Currency: "USD"}, []outcome{paid(1000, "USD")}},
		{"amount only when paid", Behaviour{Status: recon.ChannelPending, Amount: 5, PaidAfterLookups: 1}, []outcome{pending, paid(5, "CNY")}},
		{"transient first", Behaviour{Status: recon.ChannelPaid, TransientFailures: 2}, []outcome{transErr, transErr, paid(1000, "CNY")}},
		{"rate limits next", Behaviour{Status: recon.ChannelFailed, TransientFailures: 1, RateLimits: 2},
			[]outcome{transErr, rateLimited(2 * time.Second), rateLimited(2 * time.Second), failed}},
		{"permanent", Behaviour{Status: recon.ChannelPaid, PermanentError: true}, []outcome{permErr, permErr}},
		{"permanent after transient", Behaviour{Status: recon.ChannelPaid, TransientFailures: 1, PermanentError: true}, []outcome{transErr, permErr}},
		{"bad signature", Behaviour{Status: recon.ChannelPaid, BadSignature: true}, []outcome{badSig, badSig}},
		{"bad signature on not found", Behaviour{Status: recon.ChannelNotFound, BadSignature: true}, []outcome{badSig}},
		{"paid after lookups", Behaviour{PaidAfterLookups: 2}, []outcome{pending, pending, paid(1000, "CNY"), paid(1000, "CNY")}},
		{"not found then paid", Behaviour{Status: recon.ChannelNotFound, PaidAfterLookups: 1}, []outcome{notFound, paid(1000, "CNY")}},
		{"faults do not count as lookups", Behaviour{PaidAfterLookups: 1, TransientFailures: 1}, []outcome{transErr, pending, paid(1000, "CNY")}},
		{"unknown status is malformed", Behaviour{Status: "REFUNDED"}, []outcome{permErr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := New(cfg)
			o := order("B-1")
			sim.Set(o.OrderNo, tc.b)
			for i, want := range tc.want {
				got := call(t, sim, o)
				if strip(got) != want {
					t.Errorf("call %d = %v, want %v", i+1, got, want)
				}
				if got.Status == recon.ChannelPaid && (!strings.HasPrefix(got.TxnID, "SIM") || got.PaidAt == "") {
					t.Errorf("call %d: paid answer without txn id or paid_at: %v", i+1, got)
				}
			}
			if n := sim.Calls(o.OrderNo); n != len(tc.want) {
				t.Errorf("Calls = %d, want %d", n, len(tc.want))
			}
		})
	}
}

func TestBadSignatureIsCaughtByVerification(t *testing.T) {
	t.Parallel()
	sim := New(Config{Secret: "k"})
	o := order("SIG-1")
	sim.Set(o.OrderNo, Behaviour{Status: recon.ChannelPaid, BadSignature: true})
	srv := httptest.NewServer(sim.Handler(source(o)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/order/get_result?orderId=SIG-1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	// The body itself is a perfectly good PAID answer...
	r, err := httpjson.ParseResponse(body, o.OrderNo, httpjson.Config{})
	if err != nil || r.Status != recon.ChannelPaid || r.Amount != o.Amount {
		t.Fatalf("body %s parses to %+v, %v; want a valid PAID answer", body, r, err)
	}
	// ...whose signature does not verify with the channel's secret.
	sig := resp.Header.Get(httpjson.SignatureHeader)
	if sig == "" {
		t.Fatal("no signature header")
	}
	if err := httpjson.Verify("k", body, sig); !errors.Is(err, channel.ErrBadSignature) {
		t.Errorf("Verify = %v, want ErrBadSignature", err)
	}
	// A good answer's signature does verify.
	sim.Set(o.OrderNo, Behaviour{Status: recon.ChannelPaid})
	resp2, err := http.Get(srv.URL + "/order/get_result?orderId=SIG-1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	body2, _ := io.ReadAll(resp2.Body)
	if err := httpjson.Verify("k", body2, resp2.Header.Get(httpjson.SignatureHeader)); err != nil {
		t.Errorf("Verify(good answer) = %v", err)
	}
}

func TestPaidAnswerDetails(t *testing.T) {
	t.Parallel()
	sim := New(Config{Seed: 3})
	o := order("P-1")
	sim.Set(o.OrderNo, Behaviour{Status: recon.ChannelPaid})
	r, err := sim.Lookup(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.TxnID, "SIM") || len(r.TxnID) != 19 {
		t.Errorf("txn id = %q, want SIM + 16 hex digits", r.TxnID)
	}
	if r.PaidAt == nil || !r.PaidAt.After(t0) || r.PaidAt.After(t0.Add(time.Minute)) {
		t.Errorf("paid_at = %v, want within a minute after created_at %v", r.PaidAt, t0)
	}
	// Without created_at, the clock dates the payment.
	clockSim := New(Config{Clock: fixedClock(t0.Add(time.Hour))})
	o2 := order("P-2")
	o2.CreatedAt = time.Time{}
	clockSim.Set(o2.OrderNo, Behaviour{Status: recon.ChannelPaid})
	r2, err := clockSim.Lookup(context.Background(), o2)
	if err != nil || r2.PaidAt == nil || r2.PaidAt.Before(t0.Add(time.Hour)) || r2.PaidAt.After(t0.Add(time.Hour+time.Minute)) {
		t.Errorf("paid_at without created_at = %v, %v; want from the clock", r2.PaidAt, err)
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestCloseOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		b         Behaviour
		before    int // lookups before closing
		wantErr   bool
		wantAfter outcome
	}{
		{"pending closes", Behaviour{Status: recon.ChannelPending}, 1, false, closed},
		{"closed again", Behaviour{Status: recon.ChannelClosed}, 0, false, closed},
		{"late not yet paid closes", Behaviour{PaidAfterLookups: 2}, 1, false, closed},
		{"late already paid", Behaviour{PaidAfterLookups: 1}, 2, true, paid(1000, "CNY")},
		{"paid", Behaviour{Status: recon.ChannelPaid}, 1, true, paid(1000, "CNY")},
		{"failed", Behaviour{Status: recon.ChannelFailed}, 0, true, failed},
		{"not found", Behaviour{Status: recon.ChannelNotFound}, 0, true, notFound},
		{"pay on close", Behaviour{Status: recon.ChannelPending, PayOnClose: true}, 1, true, paid(1000, "CNY")},
		{"pay on close with amount", Behaviour{Status: recon.ChannelPending, PayOnClose: true, Amount: 7}, 0, true, paid(7, "CNY")},
		{"permanent", Behaviour{Status: recon.ChannelPending, PermanentError: true}, 0, true, permErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := New(Config{})
			o := order("C-1")
			sim.Set(o.OrderNo, tc.b)
			for range tc.before {
				_, _ = sim.Lookup(ctx, o)
			}
			err := sim.CloseOrder(ctx, o)
			if (err != nil) != tc.wantErr {
				t.Fatalf("CloseOrder = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && channel.ClassOf(err) != channel.ClassPermanent {
				t.Errorf("CloseOrder error %v is not permanent", err)
			}
			if got := strip(call(t, sim, o)); got != tc.wantAfter {
				t.Errorf("lookup after close = %v, want %v", got, tc.wantAfter)
			}
			// Closing again changes nothing.
			err2 := sim.CloseOrder(ctx, o)
			if (err2 != nil) != tc.wantErr {
				t.Errorf("second CloseOrder = %v", err2)
			}
			if got := strip(call(t, sim, o)); got != tc.wantAfter {
				t.Errorf("lookup after second close = %v, want %v", got, tc.wantAfter)
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 11, PaidRate: 0.3, FailedRate: 0.1, ClosedRate: 0.1, NotFoundRate: 0.1, LateRate: 0.1,
		AmountTamperRate: 0.05, CurrencyTamperRate: 0.05, BadSignatureRate: 0.05, TransientRate: 0.2, RateLimitRate: 0.1}
	run := func(cfg Config) []outcome {
		sim := New(cfg)
		var out []outcome
		for i := range 300 {
			o := order(fmt.Sprintf("D-%d", i))
			for range 4 {
				out = append(out, call(t, sim, o))
			}
		}
		return out
	}
	a, b := run(cfg), run(cfg)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("answer %d differs between runs with the same seed: %v vs %v", i, a[i], b[i])
		}
	}
	cfg.Seed = 12
	c := run(cfg)
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same == len(a) {
		t.Error("another seed gives exactly the same answers")
	}
}

func TestDistributionFollowsRates(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 5, PaidRate: 0.4, FailedRate: 0.1, ClosedRate: 0.05, NotFoundRate: 0.05, LateRate: 0.1,
		AmountTamperRate: 0.03, CurrencyTamperRate: 0.02, BadSignatureRate: 0.05, LateAfter: 1}
	sim := New(cfg)
	const n = 10000
	counts := map[string]int{}
	for i := range n {
		o := order(fmt.Sprintf("R-%05d", i))
		first := strip(call(t, sim, o))
		var kind string
		switch {
		case first == paid(1000, "CNY"):
			kind = "paid"
		case first == failed:
			kind = "failed"
		case first == closed:
			kind = "closed"
		case first == notFound:
			kind = "not_found"
		case first == badSig:
			kind = "bad_signature"
		case first.Status == recon.ChannelPaid && first.Amount != 1000:
			kind = "amount_tamper"
		case first.Status == recon.ChannelPaid && first.Currency != "CNY":
			kind = "currency_tamper"
		case first == pending:
			kind = "pending"
			if strip(call(t, sim, o)) == paid(1000, "CNY") {
				kind = "late"
			}
		default:
			t.Fatalf("unexpected answer %v", first)
		}
		counts[kind]++
	}
	want := map[string]float64{"paid": 0.4, "failed": 0.1, "closed": 0.05, "not_found": 0.05, "late": 0.1,
		"amount_tamper": 0.03, "currency_tamper": 0.02, "bad_signature": 0.05, "pending": 0.2}
	for kind, rate := range want {
		if got := float64(counts[kind]) / n; math.Abs(got-rate) > 0.015 {
			t.Errorf("%s: %.3f of orders, want %.3f", kind, got, rate)
		}
	}
}

func TestCallFaultRates(t *testing.T) {
	t.Parallel()
	sim := New(Config{Seed: 9, PaidRate: 1, TransientRate: 0.1, RateLimitRate: 0.05, RetryAfter: 30 * time.Millisecond})
	const n = 10000
	counts := map[string]int{}
	for i := range n {
		o := order(fmt.Sprintf("F-%d", i%500))
		got := call(t, sim, o)
		counts[got.Class]++
		if got.Class == "rate_limited" && got.RetryAfter != 30*time.Millisecond {
			t.Fatalf("RetryAfter = %s, want 30ms", got.RetryAfter)
		}
	}
	for class, rate := range map[string]float64{"transient": 0.1, "rate_limited": 0.05, "": 0.85} {
		if got := float64(counts[class]) / n; math.Abs(got-rate) > 0.015 {
			t.Errorf("class %q: %.3f of calls, want %.3f", class, got, rate)
		}
	}
	if sim.Calls("F-0") != n/500 {
		t.Errorf("Calls(F-0) = %d, want %d", sim.Calls("F-0"), n/500)
	}
}

func TestSetTurnsOffRandomFaults(t *testing.T) {
	t.Parallel()
	sim := New(Config{Seed: 1, TransientRate: 1})
	o := order("S-1")
	if got := call(t, sim, o); got != transErr {
		t.Fatalf("random order = %v, want transient", got)
	}
	sim.Set(o.OrderNo, Behaviour{Status: recon.ChannelFailed})
	if got := call(t, sim, o); got != failed {
		t.Errorf("forced order = %v, want FAILED", got)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	const latency = 30 * time.Millisecond
	sim := New(Config{Latency: latency, PaidRate: 1})
	start := time.Now()
	if _, err := sim.Lookup(context.Background(), order("L-1")); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < latency {
		t.Errorf("Lookup took %s, want >= %s", elapsed, latency)
	}
	slow := New(Config{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	_, err := slow.Lookup(ctx, order("L-2"))
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Minute {
		t.Errorf("cancelled Lookup = %v after %s, want context.Canceled at once", err, time.Since(start))
	}
	if err := slow.CloseOrder(ctx, order("L-2")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled CloseOrder = %v, want context.Canceled", err)
	}
	if n := slow.Calls("L-2"); n != 0 {
		t.Errorf("a cancelled call was counted: %d", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	sim := New(Config{Seed: 2, PaidRate: 0.5, LateRate: 0.2, TransientRate: 0.1, RateLimitRate: 0.1})
	const workers, perWorker, orders = 16, 200, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				o := order(fmt.Sprintf("CC-%d", (w+i)%orders))
				switch i % 10 {
				case 0:
					sim.Set(fmt.Sprintf("CX-%d", w), Behaviour{Status: recon.ChannelPaid, TransientFailures: 1})
				case 1:
					_ = sim.CloseOrder(context.Background(), order(fmt.Sprintf("CX-%d", w)))
				case 2:
					_ = sim.Calls(o.OrderNo)
				}
				_, _ = sim.Lookup(context.Background(), o)
			}
		}()
	}
	wg.Wait()
	total := 0
	for i := range orders {
		total += sim.Calls(fmt.Sprintf("CC-%d", i))
	}
	if total != workers*perWorker {
		t.Errorf("counted %d calls, want %d", total, workers*perWorker)
	}
}

func TestConfigYAMLNames(t *testing.T) {
	t.Parallel()
	src := `
seed: 42
latency: 15ms
secret: s
paid_rate: 0.6
failed_rate: 0.05
closed_rate: 0.04
not_found_rate: 0.03
late_rate: 0.1
late_after: 3
amount_tamper_rate: 0.02
currency_tamper_rate: 0.01
bad_signature_rate: 0.02
refund_abnormal_rate: 0.03
transient_rate: 0.1
rate_limit_rate: 0.02
retry_after: 100ms
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{Seed: 42, Latency: 15 * time.Millisecond, Secret: "s", PaidRate: 0.6, FailedRate: 0.05, ClosedRate: 0.04,
		NotFoundRate: 0.03, LateRate: 0.1, LateAfter: 3, AmountTamperRate: 0.02, CurrencyTamperRate: 0.01,
		BadSignatureRate: 0.02, RefundAbnormalRate: 0.03, TransientRate: 0.1, RateLimitRate: 0.02, RetryAfter: 100 * time.Millisecond}
	if c != want {
		t.Errorf("decoded %+v, want %+v", c, want)
	}
}

// source serves the given orders to Handler.
func source(orders ...recon.Order) OrderSource {
	m := map[string]recon.Order{}
	for _, o := range orders {
		m[o.OrderNo] = o
	}
	return OrderSourceFunc(func(_ context.Context, no string) (recon.Order, bool, error) {
		o, ok := m[no]
		return o, ok, nil
	})
}

// pair is an in-process simulator and an identical one behind HTTP.
func pair(t *testing.T, cfg Config, clientSecret string, orders ...recon.Order) (local, remoteSim *Sim, remote channel.Lookup) {
	t.Helper()
	local, remoteSim = New(cfg), New(cfg)
	srv := httptest.NewServer(remoteSim.Handler(source(orders...)))
	t.Cleanup(srv.Close)
	c, err := httpjson.New(httpjson.Config{Name: "sim-http", BaseURL: srv.URL, Secret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	return local, remoteSim, c
}

func TestHandlerMatchesInProcess(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 4, Secret: "k", RetryAfter: 2 * time.Second}
	behaviours := []Behaviour{
		{}, {Status: recon.ChannelPaid}, {Status: recon.ChannelFailed}, {Status: recon.ChannelClosed},
		{Status: recon.ChannelNotFound}, {Status: recon.ChannelPaid, Amount: 1},
		{Status: recon.ChannelPaid, Currency: "EUR"}, {Status: recon.ChannelPaid, TransientFailures: 2},
		{Status: recon.ChannelPaid, RateLimits: 2}, {Status: recon.ChannelPaid, PermanentError: true},
		{Status: recon.ChannelPaid, BadSignature: true}, {PaidAfterLookups: 2}, {PayOnClose: true},
		{Status: "REFUNDED"},
	}
	var orders []recon.Order
	for i := range behaviours {
		orders = append(orders, order(fmt.Sprintf("H-%d", i)))
	}
	local, remoteSim, remote := pair(t, cfg, "k", orders...)
	for i, b := range behaviours {
		o := orders[i]
		local.Set(o.OrderNo, b)
		remoteSim.Set(o.OrderNo, b)
		for n := range 5 {
			l, r := call(t, local, o), call(t, remote, o)
			if l != r {
				t.Errorf("%+v call %d: in process %v, over HTTP %v", b, n+1, l, r)
			}
		}
		if local.Calls(o.OrderNo) != remoteSim.Calls(o.OrderNo) {
			t.Errorf("%+v: calls %d in process, %d over HTTP", b, local.Calls(o.OrderNo), remoteSim.Calls(o.OrderNo))
		}
	}
}

func TestHandlerMatchesInProcessSeeded(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 8, PaidRate: 0.3, FailedRate: 0.1, ClosedRate: 0.1, NotFoundRate: 0.1, LateRate: 0.1,
		AmountTamperRate: 0.05, CurrencyTamperRate: 0.05, BadSignatureRate: 0.05, TransientRate: 0.1, RateLimitRate: 0.1,
		RetryAfter: 3 * time.Second}
	var orders []recon.Order
	for i := range 200 {
		o := order(fmt.Sprintf("HS-%d", i))
		o.Amount = int64(100 + i)
		orders = append(orders, o)
	}
	local, _, remote := pair(t, cfg, DefaultSecret, orders...)
	for _, o := range orders {
		for n := range 3 {
			if l, r := call(t, local, o), call(t, remote, o); l != r {
				t.Errorf("%s call %d: in process %v, over HTTP %v", o.OrderNo, n+1, l, r)
			}
		}
	}
}

func TestHandlerEdges(t *testing.T) {
	t.Parallel()
	known, limited := order("E-1"), order("E-2")
	sim := New(Config{Secret: "k", PaidRate: 1, RetryAfter: 1500 * time.Millisecond})
	failing := OrderSourceFunc(func(context.Context, string) (recon.Order, bool, error) {
		return recon.Order{}, false, errors.New("db down")
	})
	mux := http.NewServeMux()
	mux.Handle("/ok/", http.StripPrefix("/ok", sim.Handler(source(known, limited))))
	mux.Handle("/broken/", http.StripPrefix("/broken", sim.Handler(failing)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := func(base, secret string) channel.Lookup {
		c, err := httpjson.New(httpjson.Config{BaseURL: srv.URL + base, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := strip(call(t, client("/ok", "k"), known)); got != paid(1000, "CNY") {
		t.Errorf("known order = %v, want PAID", got)
	}
	if got := call(t, client("/ok", "k"), order("E-unknown")); got != notFound {
		t.Errorf("order unknown to the source = %v, want NOT_FOUND", got)
	}
	if got := call(t, client("/ok", "wrong"), known); got != badSig {
		t.Errorf("client with another secret = %v, want bad signature", got)
	}
	if got := call(t, client("/broken", "k"), known); got != transErr {
		t.Errorf("failing source = %v, want transient", got)
	}
	if got := call(t, client("/ok", "k"), order("")); got != permErr {
		t.Errorf("missing orderId = %v, want permanent", got)
	}
	// 429's Retry-After goes out in whole seconds, rounded up.
	sim.Set(limited.OrderNo, Behaviour{RateLimits: 1})
	resp, err := http.Get(srv.URL + "/ok/order/get_result?orderId=E-2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("429 answer: %d Retry-After %q, want 429 and 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resp, err = http.Post(srv.URL+"/ok/order/get_result?orderId=E-1", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", resp.StatusCode)
	}
}

func TestDefaultSecretSigns(t *testing.T) {
	t.Parallel()
	o := order("DS-1")
	_, remoteSim, remote := pair(t, Config{}, DefaultSecret, o)
	remoteSim.Set(o.OrderNo, Behaviour{Status: recon.ChannelPaid})
	if got := strip(call(t, remote, o)); got != paid(1000, "CNY") {
		t.Errorf("lookup with DefaultSecret = %v, want PAID", got)
	}
}
