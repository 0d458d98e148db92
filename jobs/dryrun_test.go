package jobs_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// gate holds every lookup until released, and says when the first began.
type gate struct {
	inner interface {
		Lookup(context.Context, recon.Order) (recon.LookupResult, error)
	}
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gate) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.release
	return g.inner.Lookup(ctx, o)
}

// beats is the real store, telling the time of each heartbeat it wrote.
type beats struct {
	*repo.Store
	beat chan time.Time
}

func (b beats) HeartbeatRun(ctx context.Context, id int64, c repo.RunCounters, now time.Time) error {
	err := b.Store.HeartbeatRun(ctx, id, c, now)
	if err == nil {
		select {
		case b.beat <- now:
		default:
		}
	}
	return err
}

// awaitBeatAt waits for a heartbeat written at or after at: one already
// buffered, or in flight when the clock moved, carries an older time and
// would prove nothing.
func awaitBeatAt(beat <-chan time.Time, at time.Time) bool {
	timeout := time.After(2 * time.Minute) // generous: only a missing heartbeat reaches it
	for {
		select {
		case t := <-beat:
			if !t.Before(at) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// A dry run heartbeats like any pass, so a concurrent pass leaves it
// running; and a dry run whose row another pass closed does not flip it
// back to SUCCEEDED.
func TestDryRunHeartbeatsAndItsRunIsClosedOnce(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		o := repotest.Order("DRY1", t0)
		e.seed(&o)

		start := func() (*gate, chan jobs.Result, chan error, beats) {
			g := &gate{inner: e.sim, entered: make(chan struct{}), release: make(chan struct{})}
			r := e.reconciler(db.Store, g)
			r.Heartbeat = 10 * time.Millisecond
			b := beats{Store: db.Store, beat: make(chan time.Time, 1)}
			r.Store = b
			res, errc := make(chan jobs.Result, 1), make(chan error, 1)
			go func() {
				out, err := r.Run(ctx, jobs.Window{DryRun: true})
				res <- out
				errc <- err
			}()
			select {
			case <-g.entered:
			case <-time.After(2 * time.Minute): // generous: a loaded database is slow
				t.Fatal("the dry run never looked the order up")
			}
			return g, res, errc, b
		}

		// The dry run is looking up; time passes; it heartbeats at the new
		// time, so a concurrent pass's sweep leaves it RUNNING.
		g, res, errc, b := start()
		e.clock.Advance(time.Hour)
		if !awaitBeatAt(b.beat, e.clock.Now()) {
			t.Fatal("the dry run sent no heartbeat")
		}
		if n, err := db.Store.FailAbandonedRuns(ctx, e.clock.Now().Add(-time.Minute), e.clock.Now()); err != nil || n != 0 {
			t.Fatalf("a concurrent sweep closed %d runs, %v; want the dry run left RUNNING", n, err)
		}
		close(g.release)
		if out, err := <-res, <-errc; err != nil || out.Status != repo.RunSucceeded {
			t.Fatalf("dry run = %+v, %v", out, err)
		}

		// Closed by another pass while it ran (its database connection was
		// lost for minutes, say): it stays FAILED.
		g, res, errc, _ = start()
		if n, err := db.Store.FailAbandonedRuns(ctx, e.clock.Now().Add(time.Hour), e.clock.Now()); err != nil || n != 1 {
			t.Fatalf("sweep = %d, %v", n, err)
		}
		close(g.release)
		out, err := <-res, <-errc
		if err == nil || out.Status != repo.RunFailed || !strings.Contains(out.Error, "already closed") {
			t.Fatalf("dry run closed by another pass = %+v, %v; want FAILED", out, err)
		}
		if run, err := db.Store.GetRun(ctx, out.RunID); err != nil || run.Status != repo.RunFailed || !strings.Contains(run.Error, "abandoned") {
			t.Fatalf("run row = %+v, %v; want FAILED as the sweep left it", run, err)
		}
	})
}

// slowStatement is the real store whose first read of a statement's
// payments (PaymentsToCheck) waits until released, telling each heartbeat of a run.
type slowStatement struct {
	*repo.Store
	entered, release chan struct{}
	once             sync.Once
	beat             chan time.Time
}

func (s *slowStatement) PaymentsToCheck(ctx context.Context, id, afterID int64, limit int, feeRate float64) ([]repo.StatementPayment, error) {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	return s.Store.PaymentsToCheck(ctx, id, afterID, limit, feeRate)
}

func (s *slowStatement) HeartbeatRun(ctx context.Context, id int64, c repo.RunCounters, now time.Time) error {
	err := s.Store.HeartbeatRun(ctx, id, c, now)
	if err == nil {
		select {
		case s.beat <- now:
		default:
		}
	}
	return err
}

// A statement reconciliation heartbeats while it works, so a concurrent
// pass does not take it for dead and close its run.
func TestStatementReconcileHeartbeats(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newStatementEnv(t, db)
		ctx := context.Background()
		day := "2026-11-22"
		if _, err := e.jobs.Fetch(ctx, e.ch, day); err != nil {
			t.Fatal(err)
		}
		slow := &slowStatement{Store: db.Store, entered: make(chan struct{}), release: make(chan struct{}), beat: make(chan time.Time, 1)}
		e.jobs.Store, e.jobs.Heartbeat = slow, 10*time.Millisecond
		clock := e.jobs.Clock.(*recon.FakeClock)
		type result struct {
			res jobs.StatementResult
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := e.jobs.Reconcile(ctx, e.ch, day, false)
			done <- result{res, err}
		}()
		<-slow.entered
		clock.Advance(time.Hour)
		if !awaitBeatAt(slow.beat, clock.Now()) {
			close(slow.release)
			t.Fatal("the statement reconciliation sent no heartbeat")
		}
		if n, err := db.Store.FailAbandonedRuns(ctx, clock.Now().Add(-time.Minute), clock.Now()); err != nil || n != 0 {
			t.Fatalf("a concurrent sweep closed %d runs, %v; want the reconciliation left RUNNING", n, err)
		}
		close(slow.release)
		if r := <-done; r.err != nil || r.res.Status != repo.StatementReconciled {
			t.Fatalf("reconcile = %+v, %v", r.res, r.err)
		}
	})
}
