package recon

import "time"

// BreakerPolicy says when a circuit breaker opens and when it tries again.
// A pass keeps one breaker per channel (and per merchant when delivering
// notifications), so that one failing dependency is left alone instead of
// holding up the rest.
type BreakerPolicy struct {
	// Failures is how many failed calls in a row open the breaker; 0 never
	// opens it.
	Failures int
	// ProbeInterval is how long an open breaker waits before it lets one
	// call through (half-open): that call's success closes it, its failure
	// opens it for another interval. 0: an open breaker stays open.
	ProbeInterval time.Duration
}

// BreakerState is where a breaker is.
type BreakerState int

// Breaker states.
const (
	// BreakerClosed: calls go through.
	BreakerClosed BreakerState = iota
	// BreakerOpen: calls are refused until the next probe is due.
	BreakerOpen
	// BreakerHalfOpen: one probe is out; other calls are refused.
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "closed"
}

// CallOutcome is what a call told the breaker about its dependency.
type CallOutcome int

// Call outcomes.
const (
	// CallSucceeded: the dependency answered.
	CallSucceeded CallOutcome = iota
	// CallFailed: the dependency failed (a timeout, a refused connection,
	// a 5xx): the kind of failure that says it is down.
	CallFailed
	// CallNeutral says nothing about the dependency's health (a call
	// cancelled by us, a rate-limit answer to a call that was not a probe).
	CallNeutral
)

// Breaker is the state of one circuit breaker. It is a pure state machine:
// the caller passes the time and serializes the calls.
type Breaker struct {
	Policy BreakerPolicy

	state    BreakerState
	failures int // failed calls in a row while closed
	probeAt  time.Time
}

// State returns the breaker's state.
func (b *Breaker) State() BreakerState { return b.state }

// Paused reports whether the breaker refuses ordinary calls (open or
// half-open).
func (b *Breaker) Paused() bool { return b.state != BreakerClosed }

// Allow reports whether a call may be made at now, and whether that call is
// the probe of an open breaker. Allow moves an open breaker whose probe is
// due to half-open: the caller must make the probe and Record its outcome.
func (b *Breaker) Allow(now time.Time) (ok, probe bool) {
	switch b.state {
	case BreakerClosed:
		return true, false
	case BreakerOpen:
		if b.Policy.ProbeInterval > 0 && !now.Before(b.probeAt) {
			b.state = BreakerHalfOpen
			return true, true
		}
	}
	return false, false
}

// Record records the outcome of a call allowed at an earlier Allow (probe as
// Allow said) and reports whether the breaker was paused or resumed by it.
//
// Closed, failures in a row reaching Policy.Failures open it. A probe's
// success, or any answer to a probe short of a failure, closes it; a
// failed probe opens it for another ProbeInterval. A success of a call
// that was already in flight when the breaker opened closes it too: the
// dependency answers again.
func (b *Breaker) Record(now time.Time, probe bool, out CallOutcome) (paused, resumed bool) {
	switch b.state {
	case BreakerClosed:
		switch out {
		case CallSucceeded:
			b.failures = 0
		case CallFailed:
			b.failures++
			if b.Policy.Failures > 0 && b.failures >= b.Policy.Failures {
				b.open(now)
				return true, false
			}
		}
	case BreakerOpen, BreakerHalfOpen:
		switch {
		case out == CallSucceeded || (probe && out == CallNeutral):
			b.state, b.failures = BreakerClosed, 0
			return false, true
		case probe:
			b.open(now)
		}
	}
	return false, false
}

func (b *Breaker) open(now time.Time) {
	b.state, b.failures = BreakerOpen, 0
	b.probeAt = now.Add(b.Policy.ProbeInterval)
}
