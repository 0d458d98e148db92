package channel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/time/rate"

	"github.com/recon-dev/recon"
)

// recordingTimer is a backoff.Timer that fires at once but remembers every
// wait it was asked for, so tests observe the backoff without sleeping.
type recordingTimer struct {
	mu      sync.Mutex
	waits   []time.Duration
	c       chan time.Time
	onStart func(d time.Duration) // optional; runs before the timer fires
	silent  bool                  // never fire (the caller must give up another way)
}

func newRecordingTimer() *recordingTimer { return &recordingTimer{c: make(chan time.Time, 1)} }

func (t *recordingTimer) Start(d time.Duration) {
	t.mu.Lock()
	t.waits = append(t.waits, d)
	onStart, silent := t.onStart, t.silent
	t.mu.Unlock()
	if onStart != nil {
		onStart(d)
	}
	if !silent {
		select {
		case t.c <- time.Time{}:
		default:
		}
	}
}

func (t *recordingTimer) Stop() {}

func (t *recordingTimer) C() <-chan time.Time { return t.c }

func (t *recordingTimer) Waits() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.waits...)
}

var _ backoff.Timer = (*recordingTimer)(nil)

// scripted is a Lookup (and Closer) answering call i with errs[i], and with
// result once the script runs out.
type scripted struct {
	mu     sync.Mutex
	calls  int
	errs   []error
	always error // when set, every call beyond the script fails with it
	result recon.LookupResult
	refund recon.RefundLookup // LookupRefund's answer
	onCall func(n int)        // optional; runs at the start of call n (1-based)
}

func (s *scripted) next() error {
	s.mu.Lock()
	s.calls++
	n := s.calls
	onCall := s.onCall
	var err error
	switch {
	case n <= len(s.errs):
		err = s.errs[n-1]
	case s.always != nil:
		err = s.always
	}
	s.mu.Unlock()
	if onCall != nil {
		onCall(n)
	}
	return err
}

func (s *scripted) Lookup(context.Context, recon.Order) (recon.LookupResult, error) {
	if err := s.next(); err != nil {
		return recon.LookupResult{}, err
	}
	return s.result, nil
}

func (s *scripted) CloseOrder(context.Context, recon.Order) error { return s.next() }

func (s *scripted) LookupRefund(context.Context, recon.Refund) (recon.RefundLookup, error) {
	if err := s.next(); err != nil {
		return recon.RefundLookup{}, err
	}
	return s.refund, nil
}

func (s *scripted) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

var (
	testOrder  = recon.Order{ID: 1, OrderNo: "O-1", Amount: 100, Currency: "CNY", Status: recon.StatusPending}
	paidResult = recon.LookupResult{Status: recon.ChannelPaid, Amount: 100, Currency: "CNY", TxnID: "T1"}
	errBoom    = errors.New("boom")
	testRetry  = RetryPolicy{InitialInterval: 10 * time.Millisecond, MaxInterval: 100 * time.Millisecond, MaxElapsed: time.Hour}
)

func guarded(inner Lookup, retry RetryPolicy) (*Guarded, *recordingTimer) {
	g := NewGuarded("test", inner, 0, retry)
	tm := newRecordingTimer()
	g.timer = tm
	return g, tm
}

func TestGuardedRetriesTransientThenSucceeds(t *testing.T) {
	t.Parallel()
	inner := &scripted{errs: []error{Transient(errBoom), Transient(errBoom), errBoom}, result: paidResult}
	g, tm := guarded(inner, testRetry)
	var attempts []error
	g.OnAttempt = func(op string, _ time.Duration, err error) {
		if op != "lookup" {
			t.Errorf("OnAttempt op = %q, want lookup", op)
		}
		attempts = append(attempts, err)
	}

	got, err := g.Lookup(context.Background(), testOrder)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if got != paidResult {
		t.Errorf("Lookup = %+v, want %+v", got, paidResult)
	}
	if n := inner.Calls(); n != 4 {
		t.Errorf("inner called %d times, want 4 (3 failures, unclassified counts as transient, then success)", n)
	}
	if n := len(tm.Waits()); n != 3 {
		t.Errorf("waited %d times, want 3", n)
	}
	if len(attempts) != 4 || attempts[3] != nil {
		t.Errorf("OnAttempt saw %v, want 3 errors then nil", attempts)
	}
	for i, w := range tm.Waits() {
		if w <= 0 || w > testRetry.MaxInterval {
			t.Errorf("wait %d = %s, want in (0, %s]", i, w, testRetry.MaxInterval)
		}
	}
}

// assertOneCallNoWait checks that the channel was asked once and never
// retried.
func assertOneCallNoWait(t *testing.T, inner *scripted, tm *recordingTimer) {
	t.Helper()
	if n := inner.Calls(); n != 1 {
		t.Errorf("inner called %d times, want exactly 1", n)
	}
	if w := tm.Waits(); len(w) != 0 {
		t.Errorf("waited %v, want no wait", w)
	}
}

func TestGuardedDoesNotRetryPermanent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"permanent", Permanent(errBoom)},
		{"bad signature", fmt.Errorf("verify: %w", ErrBadSignature)},
		{"malformed", fmt.Errorf("parse: %w", ErrMalformed)},
		{"permanent bad signature", Permanent(fmt.Errorf("verify: %w", ErrBadSignature))},
		{"canceled", fmt.Errorf("call: %w", context.Canceled)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inner := &scripted{always: tc.err}
			g, tm := guarded(inner, testRetry)
			_, err := g.Lookup(context.Background(), testOrder)
			if !errors.Is(err, tc.err) && err != tc.err {
				t.Errorf("Lookup error = %v, want %v", err, tc.err)
			}
			if ClassOf(err) != ClassPermanent {
				t.Errorf("ClassOf(%v) = %s, want permanent", err, ClassOf(err))
			}
			assertOneCallNoWait(t, inner, tm)
		})
	}
}

func TestGuardedRateLimitedWaitsRetryAfter(t *testing.T) {
	t.Parallel()
	const after = 7 * time.Second
	inner := &scripted{errs: []error{RateLimited(after, errBoom)}, result: paidResult}
	g, tm := guarded(inner, testRetry)

	got, err := g.Lookup(context.Background(), testOrder)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if got != paidResult {
		t.Errorf("Lookup = %+v, want %+v", got, paidResult)
	}
	if n := inner.Calls(); n != 2 {
		t.Errorf("inner called %d times, want 2", n)
	}
	waits := tm.Waits()
	if len(waits) != 1 || waits[0] < after {
		t.Errorf("waits = %v, want one wait >= %s", waits, after)
	}
}

func TestGuardedRateLimitedWithoutRetryAfterUsesBackoff(t *testing.T) {
	t.Parallel()
	inner := &scripted{errs: []error{RateLimited(0, errBoom), RateLimited(time.Millisecond, errBoom)}, result: paidResult}
	g, tm := guarded(inner, testRetry)
	if _, err := g.Lookup(context.Background(), testOrder); err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	waits := tm.Waits()
	if len(waits) != 2 {
		t.Fatalf("waits = %v, want 2", waits)
	}
	for _, w := range waits {
		// Randomised exponential step around InitialInterval (±50%).
		if w < testRetry.InitialInterval/2 {
			t.Errorf("wait %s shorter than the backoff step", w)
		}
	}
}

func TestGuardedRetryAfterBeyondMaxElapsedGivesUp(t *testing.T) {
	t.Parallel()
	inner := &scripted{always: RateLimited(time.Hour, errBoom)}
	g, tm := guarded(inner, RetryPolicy{InitialInterval: time.Millisecond, MaxElapsed: time.Minute})
	_, err := g.Lookup(context.Background(), testOrder)
	if ClassOf(err) != ClassRateLimited || RetryAfterOf(err) != time.Hour {
		t.Errorf("Lookup error = %v, want the rate-limited answer", err)
	}
	assertOneCallNoWait(t, inner, tm)
}

// waitClock is a backoff.Clock that moves only by the waits a
// recordingTimer is asked for.
type waitClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *waitClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *waitClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestGuardedMaxElapsedBoundsRetries(t *testing.T) {
	t.Parallel()
	// The budget is measured on a clock that moves by the waits alone, so
	// however slowly the calls run, the retries stop exactly when the next
	// wait would overrun it.
	const budget, maxWait = 60 * time.Millisecond, 5 * time.Millisecond
	inner := &scripted{always: Transient(errBoom)}
	g, tm := guarded(inner, RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: maxWait, MaxElapsed: budget})
	clock := &waitClock{now: time.Unix(0, 0)}
	g.clock, tm.onStart = clock, clock.advance
	_, err := g.Lookup(context.Background(), testOrder)
	if !errors.Is(err, errBoom) || ClassOf(err) != ClassTransient {
		t.Errorf("Lookup error = %v, want the last transient error", err)
	}
	var waited time.Duration
	for _, w := range tm.Waits() {
		waited += w
	}
	if n := inner.Calls(); n < 2 || n != len(tm.Waits())+1 {
		t.Errorf("inner called %d times after %d waits, want retries, one after each wait", n, len(tm.Waits()))
	}
	// A wait is at most MaxInterval and 50% of randomisation.
	if waited > budget || waited < budget-maxWait*3/2 {
		t.Errorf("gave up after waiting %s, want the waits that fit in %s", waited, budget)
	}
}

func TestGuardedHonoursRateLimiter(t *testing.T) {
	t.Parallel()
	t.Run("tokens gate every attempt", func(t *testing.T) {
		t.Parallel()
		// No refill and 3 tokens: the fourth attempt cannot get one before
		// the deadline, so the limiter ends the retries.
		inner := &scripted{always: Transient(errBoom)}
		g, _ := guarded(inner, testRetry)
		g.Limiter = rate.NewLimiter(0, 3)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := g.Lookup(ctx, testOrder)
		if err == nil {
			t.Fatal("Lookup succeeded, want the limiter to stop it")
		}
		if n := inner.Calls(); n != 3 {
			t.Errorf("inner called %d times, want 3 (one per token)", n)
		}
	})
	t.Run("rate spaces calls", func(t *testing.T) {
		t.Parallel()
		inner := &scripted{result: paidResult}
		g := NewGuarded("test", inner, 50, testRetry) // burst 50
		g.Limiter = rate.NewLimiter(100, 1)
		start := time.Now()
		for range 6 {
			if _, err := g.Lookup(context.Background(), testOrder); err != nil {
				t.Fatalf("Lookup: %v", err)
			}
		}
		// The first call takes the burst token, five more wait 10ms each.
		if elapsed := time.Since(start); elapsed < 45*time.Millisecond {
			t.Errorf("6 calls at 100/s took %s, want >= 50ms", elapsed)
		}
		if n := inner.Calls(); n != 6 {
			t.Errorf("inner called %d times, want 6", n)
		}
	})
	t.Run("NewGuarded builds a limiter", func(t *testing.T) {
		t.Parallel()
		if g := NewGuarded("x", &scripted{}, 0.5, testRetry); g.Limiter == nil || g.Limiter.Burst() != 1 || g.Limiter.Limit() != 0.5 {
			t.Errorf("limiter = %+v, want 0.5/s burst 1", g.Limiter)
		}
		if g := NewGuarded("x", &scripted{}, 20, testRetry); g.Limiter == nil || g.Limiter.Burst() != 20 {
			t.Errorf("limiter = %+v, want burst 20", g.Limiter)
		}
		if g := NewGuarded("x", &scripted{}, 0, testRetry); g.Limiter != nil {
			t.Errorf("limiter = %+v, want none", g.Limiter)
		}
	})
}

func TestGuardedContextCancelStopsRetries(t *testing.T) {
	t.Parallel()
	t.Run("cancelled during a call", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		second := Transient(errors.New("second"))
		inner := &scripted{errs: []error{Transient(errBoom), second}, always: Transient(errBoom)}
		inner.onCall = func(n int) {
			if n == 2 {
				cancel()
			}
		}
		g, _ := guarded(inner, testRetry)
		_, err := g.Lookup(ctx, testOrder)
		if n := inner.Calls(); n != 2 {
			t.Errorf("inner called %d times, want 2", n)
		}
		if err != second {
			t.Errorf("Lookup error = %v, want the channel's last answer %v", err, second)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		inner := &scripted{always: Transient(errBoom)}
		g, tm := guarded(inner, testRetry)
		tm.silent = true
		tm.onStart = func(time.Duration) { cancel() }
		_, err := g.Lookup(ctx, testOrder)
		if n := inner.Calls(); n != 1 {
			t.Errorf("inner called %d times, want 1", n)
		}
		if !errors.Is(err, errBoom) {
			t.Errorf("Lookup error = %v, want the channel's answer", err)
		}
	})
	t.Run("deadline cuts a long real wait", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		inner := &scripted{always: RateLimited(time.Hour, errBoom)}
		g := NewGuarded("test", inner, 0, RetryPolicy{InitialInterval: time.Millisecond, MaxElapsed: 2 * time.Hour})
		start := time.Now()
		_, err := g.Lookup(ctx, testOrder)
		if elapsed := time.Since(start); elapsed > 10*time.Second {
			t.Errorf("Lookup returned after %s, want soon after the 50ms deadline", elapsed)
		}
		if ClassOf(err) != ClassRateLimited || inner.Calls() != 1 {
			t.Errorf("Lookup error = %v after %d calls, want the rate-limited answer after 1", err, inner.Calls())
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		inner := &scripted{result: paidResult}
		g, _ := guarded(inner, testRetry)
		g.Limiter = rate.NewLimiter(1, 1)
		_, err := g.Lookup(ctx, testOrder)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Lookup error = %v, want context.Canceled", err)
		}
		if n := inner.Calls(); n != 0 {
			t.Errorf("inner called %d times, want 0", n)
		}
	})
}

func TestGuardedCloseOrder(t *testing.T) {
	t.Parallel()
	t.Run("retries transient", func(t *testing.T) {
		t.Parallel()
		inner := &scripted{errs: []error{Transient(errBoom)}}
		g, tm := guarded(inner, testRetry)
		if !g.CanClose() {
			t.Fatal("CanClose = false for a Closer")
		}
		var ops []string
		g.OnAttempt = func(op string, _ time.Duration, _ error) { ops = append(ops, op) }
		if err := g.CloseOrder(context.Background(), testOrder); err != nil {
			t.Fatalf("CloseOrder: %v", err)
		}
		if inner.Calls() != 2 || len(tm.Waits()) != 1 {
			t.Errorf("calls %d waits %v, want 2 calls 1 wait", inner.Calls(), tm.Waits())
		}
		if len(ops) != 2 || ops[0] != "close" {
			t.Errorf("OnAttempt ops = %v, want close twice", ops)
		}
	})
	t.Run("no close API", func(t *testing.T) {
		t.Parallel()
		g := NewGuarded("x", lookupOnly{}, 0, testRetry)
		if g.CanClose() {
			t.Error("CanClose = true for a Lookup without CloseOrder")
		}
		if err := g.CloseOrder(context.Background(), testOrder); ClassOf(err) != ClassPermanent {
			t.Errorf("CloseOrder error = %v, want permanent", err)
		}
	})
}

func TestGuardedLookupRefund(t *testing.T) {
	t.Parallel()
	refund := recon.Refund{RefundNo: "R-1", OrderNo: "O-1", Amount: 100, Currency: "CNY", Status: recon.RefundPending}
	t.Run("retries transient and rate-limited", func(t *testing.T) {
		t.Parallel()
		want := recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: 100, Currency: "CNY", ChannelRefundID: "RF1"}
		inner := &scripted{errs: []error{Transient(errBoom), RateLimited(3*time.Second, errBoom)}, refund: want}
		g, tm := guarded(inner, testRetry)
		if !g.CanLookupRefund() {
			t.Fatal("CanLookupRefund = false for a RefundLookup")
		}
		var ops []string
		g.OnAttempt = func(op string, _ time.Duration, _ error) { ops = append(ops, op) }
		got, err := g.LookupRefund(context.Background(), refund)
		if err != nil || got != want {
			t.Fatalf("LookupRefund = %+v, %v; want %+v", got, err, want)
		}
		if w := tm.Waits(); inner.Calls() != 3 || len(w) != 2 || w[1] != 3*time.Second {
			t.Errorf("calls %d waits %v, want 3 calls and the Retry-After as second wait", inner.Calls(), w)
		}
		if len(ops) != 3 || ops[0] != "refund_lookup" {
			t.Errorf("OnAttempt ops = %v, want refund_lookup thrice", ops)
		}
	})
	t.Run("permanent not retried", func(t *testing.T) {
		t.Parallel()
		inner := &scripted{errs: []error{Permanent(errBoom)}}
		g, _ := guarded(inner, testRetry)
		if _, err := g.LookupRefund(context.Background(), refund); !errors.Is(err, errBoom) || inner.Calls() != 1 {
			t.Errorf("err %v after %d calls, want errBoom after 1", err, inner.Calls())
		}
	})
	t.Run("impossible answer is malformed", func(t *testing.T) {
		t.Parallel()
		inner := &scripted{refund: recon.RefundLookup{Status: "REFUNDED", Amount: 100}}
		g, _ := guarded(inner, testRetry)
		_, err := g.LookupRefund(context.Background(), refund)
		if ClassOf(err) != ClassPermanent || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "R-1") {
			t.Errorf("err = %v, want a permanent malformed error naming R-1", err)
		}
	})
	t.Run("gate pauses refund lookups too", func(t *testing.T) {
		t.Parallel()
		inner := &scripted{}
		g, _ := guarded(inner, testRetry)
		ctx := WithGate(context.Background(), closedGate{})
		if _, err := g.LookupRefund(ctx, refund); !errors.Is(err, ErrPaused) || inner.Calls() != 0 {
			t.Errorf("err %v after %d calls, want ErrPaused and no call", err, inner.Calls())
		}
	})
	t.Run("no refund lookup", func(t *testing.T) {
		t.Parallel()
		g := NewGuarded("plain", lookupOnly{}, 0, testRetry)
		if g.CanLookupRefund() {
			t.Error("CanLookupRefund = true for a Lookup without LookupRefund")
		}
		_, err := g.LookupRefund(context.Background(), refund)
		if ClassOf(err) != ClassPermanent || !errors.Is(err, ErrNoRefundLookup) || !strings.Contains(err.Error(), "plain") {
			t.Errorf("err = %v, want a permanent ErrNoRefundLookup naming the channel", err)
		}
	})
}

// closedGate refuses every attempt.
type closedGate struct{}

func (closedGate) Allow() (bool, bool) { return false, false }
func (closedGate) Done(bool, error)    {}

type lookupOnly struct{}

func (lookupOnly) Lookup(context.Context, recon.Order) (recon.LookupResult, error) {
	return recon.LookupResult{Status: recon.ChannelPending}, nil
}

func TestClassOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		{"plain", errBoom, ClassTransient},
		{"transient", Transient(errBoom), ClassTransient},
		{"permanent", Permanent(errBoom), ClassPermanent},
		{"rate limited", RateLimited(time.Second, errBoom), ClassRateLimited},
		{"wrapped permanent", fmt.Errorf("lookup: %w", Permanent(errBoom)), ClassPermanent},
		{"wrapped rate limited", fmt.Errorf("lookup: %w", RateLimited(0, errBoom)), ClassRateLimited},
		{"bad signature", ErrBadSignature, ClassPermanent},
		{"wrapped bad signature", fmt.Errorf("verify: %w", ErrBadSignature), ClassPermanent},
		{"malformed", fmt.Errorf("parse: %w", ErrMalformed), ClassPermanent},
		{"canceled", context.Canceled, ClassPermanent},
		{"deadline", context.DeadlineExceeded, ClassTransient},
		{"backoff permanent around transient", backoff.Permanent(Transient(errBoom)), ClassTransient},
	} {
		if got := ClassOf(tc.err); got != tc.want {
			t.Errorf("%s: ClassOf(%v) = %s, want %s", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestErrorFormatting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{Transient(errBoom), "transient: boom"},
		{Permanent(errBoom), "permanent: boom"},
		{RateLimited(2*time.Second, errBoom), "rate_limited (retry after 2s): boom"},
		{RateLimited(0, errBoom), "rate_limited: boom"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(tc.err, errBoom) {
			t.Errorf("%v does not unwrap to its cause", tc.err)
		}
	}
	if got := RetryAfterOf(fmt.Errorf("x: %w", RateLimited(3*time.Second, errBoom))); got != 3*time.Second {
		t.Errorf("RetryAfterOf = %s, want 3s", got)
	}
	if got := RetryAfterOf(errBoom); got != 0 {
		t.Errorf("RetryAfterOf(plain) = %s, want 0", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"5", 5 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"-3", 0},
		{"soon", 0},
		{"1.5", 0},
		{"5s", 0},
		{"99999999999999999999999", 24 * time.Hour},
		{"9999999999", 24 * time.Hour},
		{"-99999999999999999999999", 0},
		{"Fri, 01 Mar 2024 12:00:30 GMT", 30 * time.Second},
		{"Friday, 01-Mar-24 12:01:00 GMT", time.Minute}, // RFC 850
		{"Fri Mar  1 12:00:10 2024", 10 * time.Second},  // ANSI C
		{"Fri, 01 Mar 2024 11:59:00 GMT", 0},            // in the past
		{"Sat, 01 Mar 2025 12:00:00 GMT", 24 * time.Hour},
	} {
		if got := ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestClassString(t *testing.T) {
	t.Parallel()
	for c, want := range map[Class]string{ClassTransient: "transient", ClassPermanent: "permanent", ClassRateLimited: "rate_limited"} {
		if c.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), want)
		}
	}
}

func TestGuardedCleansChannelTextInErrors(t *testing.T) {
	t.Parallel()
	raw := Permanent(fmt.Errorf("channel said \x1b[2J\x1b[HALL ORDERS RECONCILED OK: %w", ErrBadSignature))
	inner := &scripted{always: raw}
	g, tm := guarded(inner, testRetry)
	_, err := g.Lookup(context.Background(), testOrder)
	if err == nil || strings.ContainsRune(err.Error(), 0x1b) || !strings.Contains(err.Error(), "ALL ORDERS RECONCILED OK") {
		t.Fatalf("Lookup error %q: want the text without its escapes", err)
	}
	if !errors.Is(err, ErrBadSignature) || ClassOf(err) != ClassPermanent {
		t.Fatalf("cleaning lost the error's meaning: %v (class %s)", err, ClassOf(err))
	}
	assertOneCallNoWait(t, inner, tm)
}
