package recon

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const (
		ok      = CallSucceeded
		fail    = CallFailed
		neutral = CallNeutral
	)
	// A step either asks Allow at t0+at (want ok, probe) or Records out
	// (with probe) at t0+at (want paused, resumed); state is the state
	// after the step.
	type step struct {
		at             time.Duration
		allow          bool
		wantOK, wantPr bool
		out            CallOutcome
		probe          bool
		paused, resume bool
		state          BreakerState
	}
	allow := func(at time.Duration, ok, probe bool, st BreakerState) step {
		return step{at: at, allow: true, wantOK: ok, wantPr: probe, state: st}
	}
	rec := func(at time.Duration, out CallOutcome, probe, paused, resumed bool, st BreakerState) step {
		return step{at: at, out: out, probe: probe, paused: paused, resume: resumed, state: st}
	}
	s := time.Second
	cases := []struct {
		name   string
		policy BreakerPolicy
		steps  []step
	}{
		{"failures below the threshold keep it closed; a success resets the count", BreakerPolicy{Failures: 3, ProbeInterval: 5 * s}, []step{
			rec(0, fail, false, false, false, BreakerClosed),
			rec(0, fail, false, false, false, BreakerClosed),
			rec(0, ok, false, false, false, BreakerClosed),
			rec(0, fail, false, false, false, BreakerClosed),
			rec(0, fail, false, false, false, BreakerClosed),
			allow(0, true, false, BreakerClosed),
		}},
		{"neutral outcomes neither count nor reset", BreakerPolicy{Failures: 2, ProbeInterval: 5 * s}, []step{
			rec(0, fail, false, false, false, BreakerClosed),
			rec(0, neutral, false, false, false, BreakerClosed),
			rec(0, fail, false, true, false, BreakerOpen),
		}},
		{"opens at the threshold, refuses until the probe is due, one probe at a time", BreakerPolicy{Failures: 3, ProbeInterval: 5 * s}, []step{
			rec(0, fail, false, false, false, BreakerClosed),
			rec(0, fail, false, false, false, BreakerClosed),
			rec(s, fail, false, true, false, BreakerOpen),
			allow(s, false, false, BreakerOpen),
			allow(6*s-1, false, false, BreakerOpen),
			allow(6*s, true, true, BreakerHalfOpen),
			allow(6*s, false, false, BreakerHalfOpen),
			allow(7*s, false, false, BreakerHalfOpen),
		}},
		{"a failed probe opens it for another interval; a good one closes it", BreakerPolicy{Failures: 1, ProbeInterval: 5 * s}, []step{
			rec(0, fail, false, true, false, BreakerOpen),
			allow(5*s, true, true, BreakerHalfOpen),
			rec(7*s, fail, true, false, false, BreakerOpen),
			allow(11*s, false, false, BreakerOpen),
			allow(12*s, true, true, BreakerHalfOpen),
			rec(12*s, ok, true, false, true, BreakerClosed),
			allow(12*s, true, false, BreakerClosed),
			rec(12*s, fail, false, true, false, BreakerOpen), // the count restarted at 0
		}},
		{"a probe answered short of a failure (rate limited, refused request) closes it", BreakerPolicy{Failures: 1, ProbeInterval: s}, []step{
			rec(0, fail, false, true, false, BreakerOpen),
			allow(s, true, true, BreakerHalfOpen),
			rec(s, neutral, true, false, true, BreakerClosed),
		}},
		{"late calls: a failure changes nothing, a success closes it", BreakerPolicy{Failures: 1, ProbeInterval: 10 * s}, []step{
			rec(0, fail, false, true, false, BreakerOpen),
			rec(s, fail, false, false, false, BreakerOpen),
			rec(s, neutral, false, false, false, BreakerOpen),
			rec(2*s, ok, false, false, true, BreakerClosed),
		}},
		{"a late failure during the probe does not reopen it; the probe decides", BreakerPolicy{Failures: 1, ProbeInterval: s}, []step{
			rec(0, fail, false, true, false, BreakerOpen),
			allow(s, true, true, BreakerHalfOpen),
			rec(s, fail, false, false, false, BreakerHalfOpen),
			rec(2*s, ok, true, false, true, BreakerClosed),
		}},
		{"no probe interval: open for good", BreakerPolicy{Failures: 2}, []step{
			rec(0, fail, false, false, false, BreakerClosed),
			rec(0, fail, false, true, false, BreakerOpen),
			allow(time.Hour, false, false, BreakerOpen),
		}},
		{"zero failures: never opens", BreakerPolicy{}, []step{
			rec(0, fail, false, false, false, BreakerClosed),
			rec(0, fail, false, false, false, BreakerClosed),
			allow(0, true, false, BreakerClosed),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := Breaker{Policy: c.policy}
			for i, st := range c.steps {
				now := t0.Add(st.at)
				if st.allow {
					ok, probe := b.Allow(now)
					if ok != st.wantOK || probe != st.wantPr {
						t.Fatalf("step %d: Allow = %v, %v; want %v, %v", i, ok, probe, st.wantOK, st.wantPr)
					}
				} else {
					paused, resumed := b.Record(now, st.probe, st.out)
					if paused != st.paused || resumed != st.resume {
						t.Fatalf("step %d: Record = paused %v resumed %v; want %v %v", i, paused, resumed, st.paused, st.resume)
					}
				}
				if b.State() != st.state || b.Paused() != (st.state != BreakerClosed) {
					t.Fatalf("step %d: state %s, want %s", i, b.State(), st.state)
				}
			}
		})
	}
}
