package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// startHeartbeat refreshes run runID with its counters every `every` until
// the returned stop is called or ctx ends, so later passes can tell it is
// alive. stop waits for a heartbeat in flight, so none is written (or logged)
// after the pass has returned.
func startHeartbeat(ctx context.Context, every time.Duration,
	beat func(context.Context, int64, repo.RunCounters, time.Time) error,
	runID int64, counters func() repo.RunCounters, clock recon.Clock, log *slog.Logger) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := beat(ctx, runID, counters(), clock.Now()); err != nil && ctx.Err() == nil {
					log.Warn("heartbeat failed", "run_id", runID, "error", err)
				}
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-stopped
	}
}

// runObserver is the part of Observer and NotifyObserver that hears how a
// run ended.
type runObserver interface {
	RunFinished(kind, status string, d time.Duration, at time.Time)
}

// finishRun records how pass runID of kind ended and tells the observer
// (nil: none). A pass that failed because ctx ended was stopped by a
// shutdown: it is ABORTED and its error becomes ErrShutdown. The run row is
// written even after ctx ended, but only once: a row another pass already
// closed stays as it is, and the pass reports it FAILED. It returns the run's status and error text,
// and the pass's error, or the error of recording it when the pass had none.
func finishRun(ctx context.Context, store RunStore, obs runObserver, kind string, runID int64,
	start, end time.Time, c repo.RunCounters, passErr error) (status, errText string, err error) {
	status = repo.RunSucceeded
	switch {
	case passErr != nil && ctx.Err() != nil:
		status, errText, passErr = repo.RunAborted, "aborted by shutdown", ErrShutdown
	case passErr != nil:
		status, errText = repo.RunFailed, passErr.Error()
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ferr := store.FinishRun(fctx, runID, status, c, errText, end)
	if errors.Is(ferr, repo.ErrRunClosed) {
		// Another pass closed the row first: the record stands, and the
		// pass reports what it says.
		status, errText, passErr = repo.RunFailed, ferr.Error(), ferr
	} else if ferr != nil && passErr == nil {
		passErr = ferr
	}
	if obs != nil {
		obs.RunFinished(kind, status, end.Sub(start), end)
	}
	return status, errText, passErr
}
