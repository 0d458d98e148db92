package channel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/time/rate"

	"github.com/recon-dev/recon"
)

// Gate is consulted by Guarded before every attempt of a call whose context
// carries it (WithGate): a pass keeps one per channel, holding the
// channel's circuit breaker. Implementations must be safe for concurrent
// use.
type Gate interface {
	// Allow reports whether an attempt may be made now, and whether it is
	// the probe of a paused channel.
	Allow() (ok, probe bool)
	// Done reports the outcome of an attempt Allow let through.
	Done(probe bool, err error)
}

// PauseNotifier is implemented by gates that tell when they pause, so that a
// call waiting to retry stops at once instead of after its wait.
type PauseNotifier interface {
	// Paused returns a channel closed when the gate pauses (already closed
	// while it is paused).
	Paused() <-chan struct{}
}

// ErrPaused is wrapped by the error of a call that was not made, or whose
// retries were stopped, because its channel's Gate refused it.
var ErrPaused = errors.New("channel paused by its circuit breaker")

type gateKey struct{}

// WithGate returns ctx carrying g for the guarded calls made with it.
func WithGate(ctx context.Context, g Gate) context.Context {
	return context.WithValue(ctx, gateKey{}, g)
}

func gateOf(ctx context.Context) Gate {
	g, _ := ctx.Value(gateKey{}).(Gate)
	return g
}

// pausedError is ErrPaused with the channel's last answer, if any.
type pausedError struct{ last error }

func (e *pausedError) Error() string {
	if e.last == nil {
		return ErrPaused.Error()
	}
	return ErrPaused.Error() + " (last error: " + e.last.Error() + ")"
}

func (e *pausedError) Is(target error) bool { return target == ErrPaused }

func (e *pausedError) Unwrap() error { return e.last }

// RetryPolicy bounds the retries of one call within a run
// (reconcile.lookup_retry).
type RetryPolicy struct {
	InitialInterval time.Duration
	MaxInterval     time.Duration
	MaxElapsed      time.Duration
}

// Guarded wraps a channel adapter with its rate limit and retries. It is what
// the jobs call; adapters themselves make exactly one request per call.
type Guarded struct {
	Name    string
	Inner   Lookup
	Limiter *rate.Limiter // nil: unlimited
	Retry   RetryPolicy
	// OnAttempt, if set, is told the outcome of every single attempt (for
	// metrics); err is nil on success.
	OnAttempt func(op string, d time.Duration, err error)
	// timer and clock are replaced in tests to observe the waits and
	// measure MaxElapsed on them; nil means real time.
	timer backoff.Timer
	clock backoff.Clock
}

// NewGuarded returns a Guarded with ratePerSecond requests per second (0 for
// unlimited) and a burst of one second's worth.
func NewGuarded(name string, inner Lookup, ratePerSecond float64, retry RetryPolicy) *Guarded {
	g := &Guarded{Name: name, Inner: inner, Retry: retry}
	if ratePerSecond > 0 {
		burst := int(ratePerSecond)
		if burst < 1 {
			burst = 1
		}
		g.Limiter = rate.NewLimiter(rate.Limit(ratePerSecond), burst)
	}
	return g
}

// CanClose reports whether the wrapped adapter has a close API.
func (g *Guarded) CanClose() bool {
	_, ok := g.Inner.(Closer)
	return ok
}

// Lookup calls the adapter under the rate limit, retrying transient and
// rate-limited errors with exponential backoff until Retry.MaxElapsed.
func (g *Guarded) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	var res recon.LookupResult
	err := g.do(ctx, "lookup", func(ctx context.Context) error {
		r, err := g.Inner.Lookup(ctx, o)
		if err != nil {
			return err
		}
		// Whatever the adapter, an answer that cannot be true or stored
		// never reaches a decision.
		if verr := r.Validate(); verr != nil {
			return Permanent(fmt.Errorf("%s: lookup %s: %w: %v", g.Name, o.OrderNo, ErrMalformed, verr))
		}
		res = r
		return nil
	})
	return res, err
}

// CloseOrder calls the adapter's close API with the same limit and retries.
// It returns a permanent error when the adapter cannot close.
func (g *Guarded) CloseOrder(ctx context.Context, o recon.Order) error {
	c, ok := g.Inner.(Closer)
	if !ok {
		return Permanent(errNoClose)
	}
	return g.do(ctx, "close", func(ctx context.Context) error { return c.CloseOrder(ctx, o) })
}

// CanLookupRefund reports whether the wrapped adapter can look refunds up
// (implements RefundLookup).
func (g *Guarded) CanLookupRefund() bool {
	_, ok := g.Inner.(RefundLookup)
	return ok
}

// LookupRefund looks refund r up with the same gate, limit, retries and
// answer validation as Lookup. Guarded always has the method, so that jobs
// hold one type for every channel; for an adapter without a refund lookup
// it makes no request and returns a permanent error wrapping
// ErrNoRefundLookup (ask CanLookupRefund first to skip such channels).
func (g *Guarded) LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	rl, ok := g.Inner.(RefundLookup)
	if !ok {
		return recon.RefundLookup{}, Permanent(fmt.Errorf("%s: refund %s: %w", g.Name, r.RefundNo, ErrNoRefundLookup))
	}
	var res recon.RefundLookup
	err := g.do(ctx, "refund_lookup", func(ctx context.Context) error {
		a, err := rl.LookupRefund(ctx, r)
		if err != nil {
			return err
		}
		// As for orders: an answer that cannot be true or stored never
		// reaches a decision, whatever the adapter.
		if verr := a.Validate(); verr != nil {
			return Permanent(fmt.Errorf("%s: refund lookup %s: %w: %v", g.Name, r.RefundNo, ErrMalformed, verr))
		}
		res = a
		return nil
	})
	return res, err
}

// ErrNoRefundLookup is wrapped by the error of Guarded.LookupRefund on a
// channel whose adapter cannot look refunds up.
var ErrNoRefundLookup = errors.New("channel has no refund lookup")

type noCloseError struct{}

func (noCloseError) Error() string { return "channel has no close API" }

var errNoClose error = noCloseError{}

func (g *Guarded) do(ctx context.Context, op string, call func(context.Context) error) error {
	eb := backoff.NewExponentialBackOff()
	if g.Retry.InitialInterval > 0 {
		eb.InitialInterval = g.Retry.InitialInterval
	}
	if g.Retry.MaxInterval > 0 {
		eb.MaxInterval = g.Retry.MaxInterval
	}
	eb.MaxElapsedTime = g.Retry.MaxElapsed
	if g.clock != nil {
		eb.Clock = g.clock // the retries reset the elapsed time on it
	}
	gate := gateOf(ctx)
	// Waits between attempts end early when the gate pauses; the attempts
	// themselves run on ctx.
	wait := ctx
	if pn, ok := gate.(PauseNotifier); ok {
		var cancel context.CancelFunc
		wait, cancel = context.WithCancel(ctx)
		defer cancel()
		paused := pn.Paused()
		go func() {
			select {
			case <-paused:
				cancel()
			case <-wait.Done():
			}
		}()
	}
	b := &retryAfterBackOff{BackOffContext: backoff.WithContext(eb, wait), exp: eb}
	var last error // the channel's most recent answer
	attempt := func() error {
		probe := false
		if gate != nil {
			var ok bool
			if ok, probe = gate.Allow(); !ok {
				// Paused: no request, and no more retries of this call.
				return backoff.Permanent(&pausedError{last: last})
			}
		}
		if g.Limiter != nil {
			if err := g.Limiter.Wait(ctx); err != nil {
				if gate != nil {
					gate.Done(probe, err)
				}
				return backoff.Permanent(err)
			}
		}
		start := time.Now()
		err := cleanError(call(ctx))
		last = err
		if g.OnAttempt != nil {
			g.OnAttempt(op, time.Since(start), err)
		}
		if gate != nil {
			gate.Done(probe, err)
		}
		switch {
		case err == nil:
			return nil
		case probe && ClassOf(err) == ClassTransient:
			// A failed probe is not retried: the channel stays paused
			// until the next probe.
			return backoff.Permanent(&pausedError{last: err})
		case ClassOf(err) == ClassPermanent:
			return backoff.Permanent(err)
		case ClassOf(err) == ClassRateLimited:
			b.after = RetryAfterOf(err)
		}
		return err
	}
	err := backoff.RetryNotifyWithTimer(attempt, b, nil, g.timer)
	if err != nil && last != nil && ctx.Err() == nil && wait.Err() != nil {
		// The gate paused while this call waited to retry.
		return &pausedError{last: last}
	}
	if err != nil && last != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// Cancelled while waiting to retry: report what the channel said.
		return last
	}
	return err
}

// retryAfterBackOff stretches the next wait to a rate-limited answer's
// Retry-After when that is longer than the exponential step. A Retry-After
// that would end past MaxElapsed stops the retries instead: waiting it out
// would overrun the budget the caller set for this call. It must stay a
// backoff.BackOffContext: backoff only stops a wait early on cancellation
// when it can see the context.
type retryAfterBackOff struct {
	backoff.BackOffContext
	exp   *backoff.ExponentialBackOff
	after time.Duration
}

func (b *retryAfterBackOff) NextBackOff() time.Duration {
	d := b.BackOffContext.NextBackOff()
	after := b.after
	b.after = 0
	if d == backoff.Stop || after <= d {
		return d
	}
	if budget := b.exp.MaxElapsedTime; budget > 0 && b.exp.GetElapsedTime()+after > budget {
		return backoff.Stop
	}
	return after
}

// cleanError keeps err (errors.Is and As see through it) but renders its
// text with recon.CleanText: whatever an adapter quoted from the channel, no
// terminal escape reaches last_query_error, a log or recon check.
func cleanError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := recon.CleanText(msg); clean != msg {
		return &cleanedError{msg: clean, err: err}
	}
	return err
}

type cleanedError struct {
	msg string
	err error
}

func (e *cleanedError) Error() string { return e.msg }
func (e *cleanedError) Unwrap() error { return e.err }

var _ Lookup = (*Guarded)(nil)
var _ Closer = (*Guarded)(nil)
var _ RefundLookup = (*Guarded)(nil)
