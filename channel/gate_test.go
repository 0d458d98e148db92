package channel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/recon-dev/recon"
)

// testGate is a Gate over a recon.Breaker on a settable clock.
type testGate struct {
	mu  sync.Mutex
	now time.Time
	b   recon.Breaker
	log []string
}

func (g *testGate) Allow() (bool, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ok, probe := g.b.Allow(g.now)
	switch {
	case probe:
		g.log = append(g.log, "probe")
	case !ok:
		g.log = append(g.log, "refused")
	}
	return ok, probe
}

func (g *testGate) Done(probe bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := recon.CallSucceeded
	if err != nil {
		out = recon.CallFailed
	}
	g.b.Record(g.now, probe, out)
}

func TestGuardedStopsRetryingWhenItsGatePauses(t *testing.T) {
	gate := &testGate{now: time.Unix(0, 0), b: recon.Breaker{Policy: recon.BreakerPolicy{Failures: 3, ProbeInterval: time.Second}}}
	ctx := WithGate(context.Background(), gate)
	inner := &scripted{always: Transient(errBoom), result: paidResult}
	g, _ := guarded(inner, testRetry)

	// The third failure in a row pauses the channel: the call's retries
	// stop there, with ErrPaused carrying the channel's last answer.
	_, err := g.Lookup(ctx, testOrder)
	if !errors.Is(err, ErrPaused) || !errors.Is(err, errBoom) || inner.Calls() != 3 {
		t.Fatalf("err %v after %d calls; want ErrPaused after 3", err, inner.Calls())
	}
	// Paused: no request at all.
	if _, err := g.Lookup(ctx, testOrder); !errors.Is(err, ErrPaused) || inner.Calls() != 3 {
		t.Fatalf("paused lookup: %v, %d calls", err, inner.Calls())
	}
	// The probe falls due; it fails and is not retried.
	gate.now = gate.now.Add(time.Second)
	if _, err := g.Lookup(ctx, testOrder); !errors.Is(err, ErrPaused) || inner.Calls() != 4 {
		t.Fatalf("failed probe: %v, %d calls", err, inner.Calls())
	}
	// The channel is back: the next probe succeeds and closes the gate.
	inner.mu.Lock()
	inner.always = nil
	inner.mu.Unlock()
	gate.now = gate.now.Add(time.Second)
	if res, err := g.Lookup(ctx, testOrder); err != nil || res != paidResult || inner.Calls() != 5 || gate.b.Paused() {
		t.Fatalf("good probe: %v, %v, %d calls", res, err, inner.Calls())
	}
	// Refused: the first call's fourth attempt, then the paused call.
	if got := fmt.Sprint(gate.log); got != "[refused refused probe probe]" {
		t.Fatalf("gate saw %v", got)
	}
	// Without a gate in the context, nothing changes.
	if _, err := g.Lookup(context.Background(), testOrder); err != nil {
		t.Fatal(err)
	}
}

// notifyingGate lets every attempt through and pauses when told.
type notifyingGate struct{ paused chan struct{} }

func (g *notifyingGate) Allow() (bool, bool)     { return true, false }
func (g *notifyingGate) Done(bool, error)        {}
func (g *notifyingGate) Paused() <-chan struct{} { return g.paused }

func TestGuardedWaitingToRetryStopsWhenItsGatePauses(t *testing.T) {
	gate := &notifyingGate{paused: make(chan struct{})}
	inner := &scripted{always: Transient(errBoom)}
	g, timer := guarded(inner, testRetry)
	timer.silent = true // the wait before the second attempt never ends by itself
	timer.onStart = func(time.Duration) { close(gate.paused) }
	_, err := g.Lookup(WithGate(context.Background(), gate), testOrder)
	if !errors.Is(err, ErrPaused) || !errors.Is(err, errBoom) || inner.Calls() != 1 {
		t.Fatalf("err %v after %d calls; want ErrPaused with the last answer after 1", err, inner.Calls())
	}
}
