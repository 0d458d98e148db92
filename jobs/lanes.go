package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/repo"
)

// ChannelPolicy is how a pass schedules one channel's orders.
type ChannelPolicy struct {
	// Concurrency is the channel's own number of workers (default: the
	// Reconciler's Concurrency shared evenly among the pass's channels,
	// at least 1). A slow or failing channel holds only its own workers.
	Concurrency int
	// Breaker pauses the channel for the rest of the pass after failures
	// in a row, probing it again every ProbeInterval (zero: never paused).
	// The orders of a paused channel are deferred: left due, unqueried,
	// their schedule untouched.
	Breaker recon.BreakerPolicy
}

// ChannelObserver is implemented by observers that also want to know when
// a pass pauses or resumes a channel and what it defers (Metrics does).
type ChannelObserver interface {
	ChannelPaused(channel string, paused bool)
	Deferred(channel string)
}

// lane is one channel's share of a pass: its queue, its workers and its
// breaker. Orders of channels not in the configuration have a lane of
// their own with one worker and no channel (process counts them).
type lane struct {
	name    string
	workers int
	queue   chan item
	gate    *laneGate // nil: no breaker

	// feeders counts who still sends to queue (the pass's scan, and the
	// lane's own scan once detached); the last one closes it.
	feeders atomic.Int32
	// detached is set by the pass's scan when this lane got its own scan:
	// the pass's scan then leaves this lane's orders alone.
	detached bool
	// fed: the lane has been given an order; waiting: its workers blocked
	// on an empty queue. A fed lane with waiting workers is hungry.
	fed     atomic.Bool
	waiting atomic.Int32
	// closed: nothing more will be queued; helpable: the lane's workers
	// are its default share, so workers of lanes that are done may join.
	closed   atomic.Bool
	helpable bool
}

func (ln *lane) feederDone() {
	if ln.feeders.Add(-1) == 0 {
		ln.closed.Store(true)
		close(ln.queue)
	}
}

// hungry reports whether the lane's workers wait for orders.
func (ln *lane) hungry() bool { return ln.fed.Load() && ln.waiting.Load() > 0 }

// laneGate is a channel's circuit breaker for one pass (a reconcile pass's
// lane, or a statement reconciliation's lookups), consulted by
// channel.Guarded before every attempt (channel.WithGate).
type laneGate struct {
	name     string
	clock    recon.Clock
	logger   *slog.Logger
	observer any // told of pauses when it is a ChannelObserver

	mu sync.Mutex
	b  recon.Breaker
	// pausedCh is closed when the breaker opens, and replaced when it
	// closes again.
	pausedCh chan struct{}
}

// newLaneGate returns the breaker of channel name under policy, for one pass.
func newLaneGate(name string, policy recon.BreakerPolicy, clock recon.Clock, logger *slog.Logger, observer any) *laneGate {
	return &laneGate{name: name, clock: clock, logger: logger, observer: observer, b: recon.Breaker{Policy: policy}}
}

var (
	_ channel.Gate          = (*laneGate)(nil)
	_ channel.PauseNotifier = (*laneGate)(nil)
)

// Paused implements channel.PauseNotifier.
func (g *laneGate) Paused() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pausedCh == nil {
		g.pausedCh = make(chan struct{})
		if g.b.Paused() {
			close(g.pausedCh)
		}
	}
	return g.pausedCh
}

func (g *laneGate) Allow() (ok, probe bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.Allow(g.clock.Now())
}

func (g *laneGate) Done(probe bool, err error) {
	// The observer hears of a pause or resume before the lock is released,
	// so no other worker defers an order (or asks the channel) on a
	// change that is not yet observed.
	g.mu.Lock()
	defer g.mu.Unlock()
	paused, resumed := g.b.Record(g.clock.Now(), probe, breakerOutcome(err))
	switch {
	case paused && g.pausedCh != nil:
		close(g.pausedCh)
	case resumed:
		g.pausedCh = nil // the next Paused call makes a fresh one
	}
	switch {
	case paused:
		g.logger.Warn("channel paused for this pass: too many failed lookups in a row; its orders are deferred (left due, not queried) and it is probed again",
			"channel", g.name, "failures", g.b.Policy.Failures, "probe_interval", g.b.Policy.ProbeInterval.String(), "last_error", errString(err))
	case resumed:
		g.logger.Info("channel resumed: it answers again", "channel", g.name)
	default:
		return
	}
	if o, ok := g.observer.(ChannelObserver); ok {
		o.ChannelPaused(g.name, paused)
	}
}

// paused reports whether the lane's channel is paused now.
func (g *laneGate) paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.Paused()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// breakerOutcome says what one attempt tells the breaker: an answer is a
// success; a transient failure (timeout, refused connection, 5xx) is a
// failure; a rate-limit answer, a refused request or our own cancellation
// say nothing about the channel's health.
func breakerOutcome(err error) recon.CallOutcome {
	switch {
	case err == nil:
		return recon.CallSucceeded
	case errors.Is(err, context.Canceled):
		return recon.CallNeutral
	case channel.ClassOf(err) == channel.ClassTransient:
		return recon.CallFailed
	}
	return recon.CallNeutral
}

// lanes makes the pass's lanes: one per channel it covers, and one for
// orders whose channel is not configured.
func (p *pass) lanes() map[string]*lane {
	r := p.r
	names := make([]string, 0, len(r.Channels))
	for name := range r.Channels {
		if p.w.Channel == "" || p.w.Channel == name {
			names = append(names, name)
		}
	}
	share := max(1, r.Concurrency/max(1, len(names)))
	out := make(map[string]*lane, len(names)+1)
	for _, name := range names {
		pol := r.ChannelPolicies[name]
		ln := &lane{name: name, workers: share, helpable: true}
		if pol.Concurrency > 0 {
			ln.workers, ln.helpable = pol.Concurrency, false
		}
		if pol.Breaker.Failures > 0 {
			ln.gate = newLaneGate(name, pol.Breaker, r.Clock, r.Logger, r.Observer)
		}
		out[name] = ln
	}
	if co, ok := r.Observer.(ChannelObserver); ok {
		for _, ln := range out {
			if ln.gate != nil {
				co.ChannelPaused(ln.name, false) // every pass starts with its channels in use
			}
		}
	}
	out[otherLane] = &lane{name: otherLane, workers: 1}
	for _, ln := range out {
		ln.queue = make(chan item, max(r.BatchSize, 2*ln.workers))
		ln.feeders.Store(1)
	}
	return out
}

// otherLane is the lane of orders whose channel is not configured.
const otherLane = ""

func (p *pass) laneOf(lanes map[string]*lane, it item) *lane {
	if ln, ok := lanes[it.channel()]; ok {
		return ln
	}
	return lanes[otherLane]
}

// work runs one worker of ln until its queue is closed. Then, unless the
// lane has a concurrency of its own, the worker helps the lane with the
// most orders waiting among those that share the default concurrency, so
// that the pass uses all its workers once a channel is done.
func (p *pass) work(ctx, work context.Context, ln *lane, lanes map[string]*lane) {
	p.drain(ctx, work, ln)
	if !ln.helpable {
		return
	}
	for {
		var next *lane
		for _, other := range lanes {
			if other.helpable && !other.closed.Load() && (next == nil || len(other.queue) > len(next.queue)) {
				next = other
			}
		}
		if next == nil {
			return
		}
		p.drain(ctx, work, next)
	}
}

// drain processes ln's orders until its queue is closed.
func (p *pass) drain(ctx, work context.Context, ln *lane) {
	if ln.gate != nil {
		work = channel.WithGate(work, ln.gate)
	}
	for {
		var it item
		var ok bool
		select {
		case it, ok = <-ln.queue:
		default:
			ln.waiting.Add(1)
			select {
			case p.hungry <- struct{}{}:
			default:
			}
			it, ok = <-ln.queue
			ln.waiting.Add(-1)
		}
		if !ok {
			return
		}
		if ctx.Err() != nil || p.stopped() {
			continue // shutting down or failed: take no new orders
		}
		if err := p.process(work, it); err != nil {
			p.abort(err)
		}
	}
}

// take counts one more order sent to a lane; false when the window's limit
// is reached.
func (p *pass) take() bool {
	if p.w.Limit <= 0 || p.sent.Add(1) <= int64(p.w.Limit) {
		return true
	}
	p.limited.Store(true)
	return false
}

// produce scans the window, one source (orders, then refunds) after the
// other, and hands every item to its channel's lane. A lane whose queue is
// full makes the scan wait, as long as no other lane is waiting for work;
// when one is, the full lane is detached: it scans its own channel from
// this page on, and this scan leaves its items alone. So a slow channel
// never keeps work from the others.
func (p *pass) produce(ctx context.Context, sc repo.Scan, lanes map[string]*lane) error {
	defer func() {
		for _, ln := range lanes {
			ln.feederDone()
		}
	}()
	for si, src := range p.sources() {
		var cur repo.Cursor
		for !cur.Done() {
			page, next, err := src(ctx, sc, cur, p.r.BatchSize)
			if err != nil {
				return err
			}
			for i, it := range page {
				ln := p.laneOf(lanes, it)
				if ln.detached {
					continue
				}
				if !p.take() {
					return nil
				}
				sent, err := p.push(ctx, ln, it, lanes, si > 0 || cur != repo.Cursor{})
				if err != nil || p.stopped() {
					return err
				}
				if !sent {
					p.sent.Add(-1)
					p.detach(ctx, ln, sc, si, cur, page[:i])
				}
			}
			cur = next
		}
	}
	return nil
}

// push sends it to ln's queue. When the queue is full and another lane is
// hungry it gives up (false) if ln may be detached.
func (p *pass) push(ctx context.Context, ln *lane, it item, lanes map[string]*lane, detachable bool) (bool, error) {
	ln.fed.Store(true)
	select {
	case ln.queue <- it:
		return true, nil
	default:
	}
	detachable = detachable && ln.name != otherLane
	for {
		select {
		case <-p.hungry: // a fresh signal is waited for below
		default:
		}
		if detachable {
			for _, other := range lanes {
				if other != ln && other.hungry() {
					return false, nil
				}
			}
		}
		select {
		case ln.queue <- it:
			return true, nil
		case <-p.hungry:
		case <-ctx.Done():
			return false, ctx.Err()
		case <-p.stop:
			return true, nil
		}
	}
}

// detach gives ln a scan of its own channel from cur of source si, the
// start of the page whose items before are already handed out.
func (p *pass) detach(ctx context.Context, ln *lane, sc repo.Scan, si int, cur repo.Cursor, before []item) {
	ln.detached = true
	sent := map[itemKey]bool{}
	for _, it := range before {
		if it.channel() == ln.name {
			sent[it.key()] = true
		}
	}
	sc.Channel = ln.name
	ln.feeders.Add(1)
	p.scanners.Add(1)
	go func() {
		defer p.scanners.Done()
		defer ln.feederDone()
		if err := p.scanLane(ctx, ln, sc, si, cur, sent); err != nil && ctx.Err() == nil {
			p.abort(err)
		}
	}()
}

// scanLane feeds ln from its own scan, from cur of source si on, skipping
// the items already sent.
func (p *pass) scanLane(ctx context.Context, ln *lane, sc repo.Scan, si int, cur repo.Cursor, sent map[itemKey]bool) error {
	for _, src := range p.sources()[si:] {
		for !cur.Done() {
			page, next, err := src(ctx, sc, cur, p.r.BatchSize)
			if err != nil {
				return err
			}
			for _, it := range page {
				if sent[it.key()] {
					continue
				}
				if !p.take() {
					return nil
				}
				select {
				case ln.queue <- it:
				case <-ctx.Done():
					return ctx.Err()
				case <-p.stop:
					return nil
				}
			}
			cur = next
		}
		cur = repo.Cursor{}
	}
	return nil
}
