// Package channeltest is the contract every channel adapter passes: the same
// cases (paid, pending, closed, failed, not found, tampered amounts, faults,
// bad signatures, stale timestamps, malformed bodies, timeouts, close) run
// against the simulator server speaking the adapter's wire format over real
// HTTP.
package channeltest

import (
	"context"
	"errors"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
)

// Env is what an adapter under test is pointed at.
type Env struct {
	// BaseURL is the simulator server's URL.
	BaseURL string
	// Keys are the server's keys; KeyFiles the same keys as PEM files, for
	// adapters configured with key file paths.
	Keys     simulator.Keys
	KeyFiles simulator.KeyFiles
	// Secret signs httpjson answers.
	Secret string
	// Timeout is the per-request timeout the adapter must apply.
	Timeout time.Duration
	// Sim is the simulated channel behind the server, for the in-process
	// simulator's own run of the suite.
	Sim *simulator.Sim
}

// Harness describes one adapter to the suite.
type Harness struct {
	// New builds the adapter for env. If Closes is set it must also be a
	// channel.Closer.
	New func(t testing.TB, env Env) channel.Lookup
	// Order adapts a test order to what the adapter needs (Stripe looks
	// orders up by channel_txn_id, say); nil keeps it as is.
	Order func(o recon.Order) recon.Order
	// Signed: the wire format signs answers (a forged signature must be
	// refused).
	Signed bool
	// Timestamped: the signature covers a timestamp (a stale one must be
	// refused).
	Timestamped bool
	// Closes: the adapter has a close API.
	Closes bool
	// Currency is the test orders' currency (default CNY).
	Currency string
	// Statuses maps a status the simulator answers to the one the wire
	// format can express, for providers that lack it (Alipay has no failed
	// state and answers a failed payment's trade as closed). Unlisted
	// statuses are expected as they are.
	Statuses map[recon.ChannelStatus]recon.ChannelStatus

	// Refunds: the adapter is a channel.RefundLookup, and the refund part
	// of the suite runs (see runRefunds).
	Refunds bool
	// Refund adapts a test refund to what the adapter needs (Stripe looks
	// refunds up by their re_… id); nil keeps it as is.
	Refund func(r recon.Refund) recon.Refund
	// RefundStatuses maps a refund answer the simulator gives to the one
	// the wire format expresses, for providers that lack it (Alipay tells
	// only success and "not received"). Unlisted answers are expected as
	// they are.
	RefundStatuses map[recon.RefundChannelStatus]recon.RefundChannelStatus
}

// Timeout is the per-request timeout Env asks for: one no answer of the
// suite's server on loopback reaches, however loaded the machine (the
// timeout case waits it out).
const Timeout = 2 * time.Second

// Run runs the contract suite against h.
func Run(t *testing.T, h Harness) {
	keys, files := KeyFiles(t)
	currency := h.Currency
	if currency == "" {
		currency = "CNY"
	}
	sim := simulator.New(simulator.Config{Seed: 1, Secret: "contract-secret", RetryAfter: 2 * time.Second})
	orders := simulator.NewOrders()
	srv := httptest.NewServer(sim.Server(orders, keys))
	t.Cleanup(srv.Close)
	env := Env{BaseURL: srv.URL, Keys: keys, KeyFiles: files, Secret: "contract-secret", Timeout: Timeout, Sim: sim}
	ch := h.New(t, env)
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)

	// order registers an order with behaviour b and returns it.
	order := func(t *testing.T, b simulator.Behaviour) recon.Order {
		o := recon.Order{OrderNo: "ct" + sanitize(t.Name()), MerchantID: "m1", Channel: "c",
			Amount: 12345, Currency: currency, Status: recon.StatusPending, CreatedAt: created}
		if h.Order != nil {
			o = h.Order(o)
		}
		orders.Add(o)
		sim.Set(o.OrderNo, b)
		return o
	}
	lookup := func(t *testing.T, o recon.Order) (recon.LookupResult, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return ch.Lookup(ctx, o)
	}
	mustStatus := func(t *testing.T, o recon.Order, want recon.ChannelStatus) recon.LookupResult {
		t.Helper()
		if s, ok := h.Statuses[want]; ok {
			want = s
		}
		r, err := lookup(t, o)
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if r.Status != want {
			t.Fatalf("status %s, want %s (%+v)", r.Status, want, r)
		}
		return r
	}
	mustFail := func(t *testing.T, o recon.Order, class channel.Class, is error) error {
		t.Helper()
		r, err := lookup(t, o)
		if err == nil {
			t.Fatalf("lookup answered %+v, want a %s error", r, class)
		}
		if got := channel.ClassOf(err); got != class {
			t.Fatalf("error class %s, want %s: %v", got, class, err)
		}
		if is != nil && !errors.Is(err, is) {
			t.Fatalf("error %v does not wrap %v", err, is)
		}
		return err
	}

	t.Run("paid", func(t *testing.T) {
		o := order(t, simulator.Behaviour{Status: recon.ChannelPaid})
		r := mustStatus(t, o, recon.ChannelPaid)
		if r.Amount != o.Amount || r.Currency != o.Currency || r.TxnID == "" {
			t.Fatalf("paid answer %+v for order amount %d %s", r, o.Amount, o.Currency)
		}
		if out := recon.Decide(o, r, recon.Policy{}, time.Now(), false); out.Action != recon.ActionTransition || out.To != recon.StatusPaid {
			t.Fatalf("decision on a good paid answer: %+v", out)
		}
	})
	t.Run("pending", func(t *testing.T) {
		mustStatus(t, order(t, simulator.Behaviour{Status: recon.ChannelPending}), recon.ChannelPending)
	})
	t.Run("closed", func(t *testing.T) {
		mustStatus(t, order(t, simulator.Behaviour{Status: recon.ChannelClosed}), recon.ChannelClosed)
	})
	t.Run("failed", func(t *testing.T) {
		mustStatus(t, order(t, simulator.Behaviour{Status: recon.ChannelFailed}), recon.ChannelFailed)
	})
	t.Run("not_found", func(t *testing.T) {
		mustStatus(t, order(t, simulator.Behaviour{Status: recon.ChannelNotFound}), recon.ChannelNotFound)
	})
	t.Run("amount_tampered", func(t *testing.T) {
		o := order(t, simulator.Behaviour{Status: recon.ChannelPaid, Amount: 12346})
		r := mustStatus(t, o, recon.ChannelPaid)
		if r.Amount != 12346 {
			t.Fatalf("amount %d, want the channel's 12346", r.Amount)
		}
		out := recon.Decide(o, r, recon.Policy{}, time.Now(), false)
		if out.Mismatch == nil || out.Mismatch.Kind != recon.MismatchAmount || out.To == recon.StatusPaid {
			t.Fatalf("decision on a tampered amount: %+v", out)
		}
	})
	t.Run("transient_then_success", func(t *testing.T) {
		o := order(t, simulator.Behaviour{Status: recon.ChannelPaid, TransientFailures: 1})
		mustFail(t, o, channel.ClassTransient, nil)
		mustStatus(t, o, recon.ChannelPaid)
	})
	t.Run("rate_limited", func(t *testing.T) {
		o := order(t, simulator.Behaviour{Status: recon.ChannelPaid, RateLimits: 1})
		err := mustFail(t, o, channel.ClassRateLimited, nil)
		if ra := channel.RetryAfterOf(err); ra != 2*time.Second {
			t.Fatalf("retry after %s, want the server's 2s: %v", ra, err)
		}
		mustStatus(t, o, recon.ChannelPaid)
	})
	t.Run("permanent", func(t *testing.T) {
		mustFail(t, order(t, simulator.Behaviour{Status: recon.ChannelPaid, PermanentError: true}), channel.ClassPermanent, nil)
	})
	if h.Signed {
		t.Run("bad_signature", func(t *testing.T) {
			mustFail(t, order(t, simulator.Behaviour{Status: recon.ChannelPaid, BadSignature: true}), channel.ClassPermanent, channel.ErrBadSignature)
		})
	}
	if h.Timestamped {
		t.Run("stale_timestamp", func(t *testing.T) {
			mustFail(t, order(t, simulator.Behaviour{Status: recon.ChannelPaid, StaleTimestamp: true}), channel.ClassPermanent, channel.ErrBadSignature)
		})
	}
	t.Run("malformed", func(t *testing.T) {
		mustFail(t, order(t, simulator.Behaviour{Status: recon.ChannelPaid, Malformed: true}), channel.ClassPermanent, channel.ErrMalformed)
	})
	t.Run("amount_out_of_range", func(t *testing.T) {
		// An amount near 2^63 is a malformed answer, whether the adapter
		// refuses it or the guard every job looks up through does.
		o := order(t, simulator.Behaviour{Status: recon.ChannelPaid, Amount: math.MaxInt64 - 807})
		g := channel.NewGuarded("c", ch, 0, channel.RetryPolicy{MaxElapsed: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := g.Lookup(ctx, o)
		if err == nil {
			t.Fatalf("lookup answered %+v, want a malformed answer", r)
		}
		if channel.ClassOf(err) != channel.ClassPermanent || !errors.Is(err, channel.ErrMalformed) {
			t.Fatalf("error %v: want a permanent malformed answer", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		// The answer comes after 20s, inside the suite's own bound: only
		// the adapter's timeout makes the lookup fail.
		o := order(t, simulator.Behaviour{Status: recon.ChannelPaid, Delay: 20 * time.Second})
		mustFail(t, o, channel.ClassTransient, nil)
	})
	if h.Closes {
		t.Run("close", func(t *testing.T) {
			cl, ok := ch.(channel.Closer)
			if !ok {
				t.Fatalf("%T has no CloseOrder", ch)
			}
			ctx := context.Background()
			o := order(t, simulator.Behaviour{Status: recon.ChannelPending})
			if err := cl.CloseOrder(ctx, o); err != nil {
				t.Fatalf("close a pending order: %v", err)
			}
			mustStatus(t, o, recon.ChannelClosed)
		})
		t.Run("close_paid_refused", func(t *testing.T) {
			cl := ch.(channel.Closer)
			o := order(t, simulator.Behaviour{Status: recon.ChannelPaid})
			err := cl.CloseOrder(context.Background(), o)
			if err == nil || channel.ClassOf(err) != channel.ClassPermanent {
				t.Fatalf("close a paid order: %v, want a permanent error", err)
			}
			mustStatus(t, o, recon.ChannelPaid)
		})
	}
	if h.Refunds {
		t.Run("refund", func(t *testing.T) { runRefunds(t, h, ch, sim, orders, currency, created) })
	}
}

// KeyFiles returns the simulator's test keys (generated once per process)
// and the same keys written as PEM files in a temporary directory.
func KeyFiles(t testing.TB) (simulator.Keys, simulator.KeyFiles) {
	t.Helper()
	keys, err := simulator.TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	files, err := keys.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return keys, files
}

// sanitize turns a subtest name into an order-number suffix of letters,
// digits and underscores.
func sanitize(name string) string {
	b := []byte(name)
	out := b[:0]
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			out = append(out, c)
		default:
			out = append(out, '_')
		}
	}
	return string(out)
}

// CheckNotification is the property every notification decoder's fuzz
// target asserts: a failure is a bad signature or a malformed notification
// (so the listener can answer it without internals), and whatever is
// accepted is a notification recon can act on and store.
func CheckNotification(t testing.TB, n channel.Notification, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, channel.ErrMalformed) && !errors.Is(err, channel.ErrBadSignature) {
			t.Fatalf("error %v is neither malformed nor a bad signature", err)
		}
		return
	}
	if err := n.Validate(); err != nil {
		t.Fatalf("accepted an invalid notification %+v: %v", n, err)
	}
}
