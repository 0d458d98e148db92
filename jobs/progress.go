package jobs

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recon-dev/recon"
)

// Progress shows how far a long pass (a backfill over many orders) has got:
// orders done out of the total, the rate and the time left. On a terminal it
// redraws one bar line in place; otherwise it logs a plain line every
// Interval. It is an Observer: set it as Reconciler.Observer (wrapping the
// metrics observer, if any, in Inner) and call Start before Run.
type Progress struct {
	// Inner receives every observation too; nil for none.
	Inner Observer
	// Total is the number of orders the pass will see; 0 if unknown (no
	// percentage or ETA then).
	Total int64
	// Out is where the bar is drawn when Terminal is true.
	Out      io.Writer
	Terminal bool
	// Logger receives the periodic lines when Terminal is false.
	Logger   *slog.Logger
	Clock    recon.Clock
	Interval time.Duration // default 1s on a terminal, 30s otherwise

	done, mismatches, errs atomic.Int64
	start                  time.Time
	stopOnce               sync.Once
	stop                   chan struct{}
	stopFn                 func()
	wg                     sync.WaitGroup
}

var _ Observer = (*Progress)(nil)

// Start begins drawing or logging, until the returned function is called;
// that function draws the final state and returns once drawing stopped.
func (p *Progress) Start() (stop func()) {
	if p.Clock == nil {
		p.Clock = recon.SystemClock{}
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Interval <= 0 {
		p.Interval = 30 * time.Second
		if p.Terminal {
			p.Interval = time.Second
		}
	}
	p.start = p.Clock.Now()
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.Interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw(false)
			case <-p.stop:
				return
			}
		}
	}()
	p.stopFn = func() {
		p.stopOnce.Do(func() {
			close(p.stop)
			p.wg.Wait()
			p.draw(true)
		})
	}
	return p.stopFn
}

func (p *Progress) draw(final bool) {
	line := p.Line(p.Clock.Now())
	if p.Terminal && p.Out != nil {
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprintf(p.Out, "\r\033[K%s%s", line, end)
		return
	}
	done, elapsed := p.done.Load(), p.Clock.Now().Sub(p.start)
	args := []any{"done", done, "mismatches", p.mismatches.Load(), "errors", p.errs.Load(),
		"elapsed", elapsed.Round(time.Second).String(), "rate_per_s", fmt.Sprintf("%.1f", rate(done, elapsed))}
	if p.Total > 0 {
		args = append(args, "total", p.Total, "eta", eta(done, p.Total, elapsed).String())
	}
	msg := "pass progress"
	if final {
		msg = "pass progress (final)"
	}
	p.Logger.Info(msg, args...)
}

// Line renders the progress at now as one line: a bar when the total is
// known, counts, rate and ETA.
func (p *Progress) Line(now time.Time) string {
	done, elapsed := p.done.Load(), now.Sub(p.start)
	var b strings.Builder
	if p.Total > 0 {
		const width = 30
		frac := min(float64(done)/float64(p.Total), 1)
		n := int(frac * width)
		fmt.Fprintf(&b, "[%s%s] %d/%d %5.1f%%", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, p.Total, frac*100)
	} else {
		fmt.Fprintf(&b, "%d orders", done)
	}
	fmt.Fprintf(&b, "  %.1f/s", rate(done, elapsed))
	if p.Total > 0 {
		fmt.Fprintf(&b, "  ETA %s", eta(done, p.Total, elapsed))
	}
	fmt.Fprintf(&b, "  mismatches %d  errors %d", p.mismatches.Load(), p.errs.Load())
	return b.String()
}

func rate(done int64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(done) / elapsed.Seconds()
}

func eta(done, total int64, elapsed time.Duration) time.Duration {
	if done <= 0 || done >= total {
		return 0
	}
	return (time.Duration(float64(elapsed) / float64(done) * float64(total-done))).Round(time.Second)
}

// Lookup implements Observer; failed lookups count as errors.
func (p *Progress) Lookup(channel, outcome string, d time.Duration) {
	if strings.HasPrefix(outcome, "error_") || outcome == "bad_signature" {
		p.errs.Add(1)
	}
	if p.Inner != nil {
		p.Inner.Lookup(channel, outcome, d)
	}
}

// Transition implements Observer.
func (p *Progress) Transition(to recon.Status) {
	if p.Inner != nil {
		p.Inner.Transition(to)
	}
}

// Mismatch implements Observer.
func (p *Progress) Mismatch(kind recon.MismatchKind) {
	p.mismatches.Add(1)
	if p.Inner != nil {
		p.Inner.Mismatch(kind)
	}
}

// Conflict implements Observer.
func (p *Progress) Conflict() {
	if p.Inner != nil {
		p.Inner.Conflict()
	}
}

// RunFinished implements Observer. It draws the final state at once, so
// that the pass's own summary line is not written onto the bar.
func (p *Progress) RunFinished(kind, status string, d time.Duration, at time.Time) {
	if p.stopFn != nil {
		p.stopFn()
	}
	if p.Inner != nil {
		p.Inner.RunFinished(kind, status, d, at)
	}
}

// ChannelPaused implements ChannelObserver.
func (p *Progress) ChannelPaused(channel string, paused bool) {
	if co, ok := p.Inner.(ChannelObserver); ok {
		co.ChannelPaused(channel, paused)
	}
}

// Deferred implements ChannelObserver.
func (p *Progress) Deferred(channel string) {
	if co, ok := p.Inner.(ChannelObserver); ok {
		co.Deferred(channel)
	}
}

// Processed implements Observer: one order is done.
func (p *Progress) Processed(d time.Duration) {
	p.done.Add(1)
	if p.Inner != nil {
		p.Inner.Processed(d)
	}
}
