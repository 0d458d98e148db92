package channeltest

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
)

// runRefunds is the refund part of the contract (CONTRACT §10): every
// answer a refund lookup can give, in the adapter's wire format, verified
// as lookups are.
func runRefunds(t *testing.T, h Harness, ch channel.Lookup, sim *simulator.Sim, orders *simulator.Orders, currency string, created time.Time) {
	rl, ok := ch.(channel.RefundLookup)
	if !ok {
		t.Fatalf("%T has no LookupRefund", ch)
	}
	// refund registers a refund of amount with behaviour b and returns it.
	refund := func(t *testing.T, amount int64, b simulator.RefundBehaviour) recon.Refund {
		name := sanitize(t.Name())
		r := recon.Refund{RefundNo: "rf" + name, OrderNo: "ct" + name, MerchantID: "m1", Channel: "c",
			Amount: amount, Currency: currency, Status: recon.RefundPending, CreatedAt: created}
		if h.Refund != nil {
			r = h.Refund(r)
		}
		orders.AddRefund(r)
		sim.SetRefund(r.RefundNo, b)
		return r
	}
	lookup := func(r recon.Refund) (recon.RefundLookup, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return rl.LookupRefund(ctx, r)
	}
	mustStatus := func(t *testing.T, r recon.Refund, want recon.RefundChannelStatus) recon.RefundLookup {
		t.Helper()
		if s, ok := h.RefundStatuses[want]; ok {
			want = s
		}
		a, err := lookup(r)
		if err != nil {
			t.Fatalf("refund lookup: %v", err)
		}
		if a.Status != want {
			t.Fatalf("status %s, want %s (%+v)", a.Status, want, a)
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("answer %+v does not validate: %v", a, err)
		}
		return a
	}
	mustFail := func(t *testing.T, r recon.Refund, class channel.Class, is error) error {
		t.Helper()
		a, err := lookup(r)
		if err == nil {
			t.Fatalf("refund lookup answered %+v, want a %s error", a, class)
		}
		if got := channel.ClassOf(err); got != class {
			t.Fatalf("error class %s, want %s: %v", got, class, err)
		}
		if is != nil && !errors.Is(err, is) {
			t.Fatalf("error %v does not wrap %v", err, is)
		}
		return err
	}
	succeeded := func(t *testing.T, amount int64) {
		r := refund(t, amount, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded})
		a := mustStatus(t, r, recon.RefundChannelSucceeded)
		if a.Amount != r.Amount || a.Currency != r.Currency || a.SucceededAt == nil {
			t.Fatalf("succeeded answer %+v for refund amount %d %s", a, r.Amount, r.Currency)
		}
	}

	t.Run("succeeded", func(t *testing.T) { succeeded(t, 12345) })
	// Amounts are exact to the minor unit, whatever the wire writes them as.
	t.Run("succeeded_one_minor_unit", func(t *testing.T) { succeeded(t, 1) })
	t.Run("succeeded_round", func(t *testing.T) { succeeded(t, 1000000) })
	t.Run("pending", func(t *testing.T) {
		mustStatus(t, refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelPending}), recon.RefundChannelPending)
	})
	t.Run("failed", func(t *testing.T) {
		mustStatus(t, refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelFailed}), recon.RefundChannelFailed)
	})
	t.Run("abnormal", func(t *testing.T) {
		mustStatus(t, refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelAbnormal}), recon.RefundChannelAbnormal)
	})
	t.Run("not_found", func(t *testing.T) {
		mustStatus(t, refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelNotFound}), recon.RefundChannelNotFound)
	})
	t.Run("late_success", func(t *testing.T) {
		r := refund(t, 700, simulator.RefundBehaviour{Status: recon.RefundChannelPending, SucceedAfterLookups: 1})
		mustStatus(t, r, recon.RefundChannelPending)
		if a := mustStatus(t, r, recon.RefundChannelSucceeded); a.Amount != 700 {
			t.Fatalf("late success answered amount %d, want 700", a.Amount)
		}
	})
	t.Run("amount_tampered", func(t *testing.T) {
		r := refund(t, 12345, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, Amount: 12346})
		if a := mustStatus(t, r, recon.RefundChannelSucceeded); a.Amount != 12346 {
			t.Fatalf("amount %d, want the channel's 12346", a.Amount)
		}
	})
	t.Run("refund_no_mismatch", func(t *testing.T) {
		r := refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, WrongRefundNo: true})
		mustFail(t, r, channel.ClassPermanent, channel.ErrMalformed)
	})
	t.Run("transient_then_success", func(t *testing.T) {
		r := refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, TransientFailures: 1})
		mustFail(t, r, channel.ClassTransient, nil)
		mustStatus(t, r, recon.RefundChannelSucceeded)
	})
	t.Run("rate_limited", func(t *testing.T) {
		r := refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, RateLimits: 1})
		err := mustFail(t, r, channel.ClassRateLimited, nil)
		if ra := channel.RetryAfterOf(err); ra != 2*time.Second {
			t.Fatalf("retry after %s, want the server's 2s: %v", ra, err)
		}
		mustStatus(t, r, recon.RefundChannelSucceeded)
	})
	t.Run("permanent", func(t *testing.T) {
		mustFail(t, refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, PermanentError: true}), channel.ClassPermanent, nil)
	})
	if h.Signed {
		t.Run("bad_signature", func(t *testing.T) {
			r := refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, BadSignature: true})
			mustFail(t, r, channel.ClassPermanent, channel.ErrBadSignature)
		})
		t.Run("bad_signature_not_found", func(t *testing.T) {
			// "No such refund" is a result too: only a verified answer may
			// give it.
			r := refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelNotFound, BadSignature: true})
			mustFail(t, r, channel.ClassPermanent, channel.ErrBadSignature)
		})
	}
	if h.Timestamped {
		t.Run("stale_timestamp", func(t *testing.T) {
			r := refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, StaleTimestamp: true})
			mustFail(t, r, channel.ClassPermanent, channel.ErrBadSignature)
		})
	}
	t.Run("malformed", func(t *testing.T) {
		r := refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, Malformed: true})
		mustFail(t, r, channel.ClassPermanent, channel.ErrMalformed)
	})
	t.Run("timeout", func(t *testing.T) {
		// The answer comes after 20s, inside the suite's own bound: only
		// the adapter's timeout makes the lookup fail.
		r := refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, Delay: 20 * time.Second})
		mustFail(t, r, channel.ClassTransient, nil)
	})
	t.Run("amount_out_of_range", func(t *testing.T) {
		// An amount near 2^63 is a malformed answer, whether the adapter
		// refuses it or the guard every job looks up through does.
		r := refund(t, 500, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, Amount: math.MaxInt64 - 807})
		g := channel.NewGuarded("c", ch, 0, channel.RetryPolicy{MaxElapsed: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if a, err := g.LookupRefund(ctx, r); channel.ClassOf(err) != channel.ClassPermanent || !errors.Is(err, channel.ErrMalformed) {
			t.Fatalf("refund lookup answered %+v, %v; want a permanent malformed answer", a, err)
		}
	})
	t.Run("guarded", func(t *testing.T) {
		// The guard every job looks up through forwards to the adapter.
		r := refund(t, 4321, simulator.RefundBehaviour{Status: recon.RefundChannelSucceeded, TransientFailures: 1})
		g := channel.NewGuarded("c", ch, 0, channel.RetryPolicy{InitialInterval: time.Millisecond, MaxElapsed: 5 * time.Second})
		if !g.CanLookupRefund() {
			t.Fatal("the guard hides the adapter's refund lookup")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a, err := g.LookupRefund(ctx, r)
		if err != nil || a.Status != recon.RefundChannelSucceeded || a.Amount != 4321 {
			t.Fatalf("guarded refund lookup: %+v, %v", a, err)
		}
	})
}
