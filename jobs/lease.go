package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// LeaseStore is what Leaser needs from the database. Lease times are the
// database's: a pod whose clock runs ahead cannot take a lease early.
type LeaseStore interface {
	// AcquireLease reports whether owner got the lease for ttl, and the
	// lease as it stands (the holder's when refused).
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (repo.Lease, bool, error)
	// RenewLease reports false, with a nil error, when owner no longer
	// holds the lease.
	RenewLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) (bool, error)
	// FailRunsOf closes the RUNNING runs (not dry runs) of kind and shard
	// as FAILED with reason, and returns how many.
	FailRunsOf(ctx context.Context, kind, shard string, now time.Time, reason string) (int64, error)
}

// DefaultLeaseTTL is the lease a pass holds, renewed every third of it
// (5s): a holder killed outright blocks the next pass for at most this long.
const DefaultLeaseTTL = 15 * time.Second

var _ LeaseStore = (*repo.Store)(nil)

// ErrLeaseLost is the cause with which a pass is cancelled when its lease was
// taken over, or could not be renewed before it expired: another process
// may be running the same pass now. The cause is a *LeaseLostError, which
// says which of the two happened.
var ErrLeaseLost = errors.New("lease lost")

// LeaseLostError is why a pass stopped for its lease: taken over by another
// process, or not renewed in time (the database did not answer, or failed,
// until the lease was about to expire: nobody is known to hold it, but
// someone may take it as soon as it expires). It matches ErrLeaseLost.
type LeaseLostError struct {
	Name string
	// TakenOver: another owner holds the lease now.
	TakenOver bool
	// Err is the last renewal's error when the lease was not renewed in time.
	Err error
	// Expires is when the lease runs out at the earliest, by this
	// process's clock, when it was not renewed in time.
	Expires time.Time
}

func (e *LeaseLostError) Error() string {
	if e.TakenOver {
		return fmt.Sprintf("lease %s was taken over by another process", e.Name)
	}
	return fmt.Sprintf("lease %s could not be renewed before it expires at %s: %v", e.Name,
		e.Expires.UTC().Format(time.RFC3339Nano), e.Err)
}

// Is makes a *LeaseLostError match ErrLeaseLost.
func (e *LeaseLostError) Is(target error) bool { return target == ErrLeaseLost }

// Unwrap returns the last renewal's error.
func (e *LeaseLostError) Unwrap() error { return e.Err }

// LeaseHeldError is returned by Leaser.Run when another owner holds the
// lease: the pass did not run.
type LeaseHeldError struct {
	Lease repo.Lease
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("lease %s is held by %s until %s", e.Lease.Name, e.Lease.Owner,
		e.Lease.ExpiresAt.UTC().Format(time.RFC3339))
}

// LeaseName names the lease of a pass kind over a shard: "reconcile" or
// "reconcile:0/4". Passes of different kinds or shards do not exclude each
// other.
func LeaseName(kind string, shard repo.Shard) string {
	if shard.Count <= 1 {
		return kind
	}
	return fmt.Sprintf("%s:%d/%d", kind, shard.Index, shard.Count)
}

// leaseRuns is the kind and shard (as recon_runs.shard holds it) of the
// runs that run under lease name: the inverse of LeaseName.
func leaseRuns(name string) (kind, shard string) {
	kind, shard, _ = strings.Cut(name, ":")
	return kind, shard
}

// diedReason is recorded on the runs of a lease's earlier holder when the
// lease is taken over.
const diedReason = "holder died: its lease expired unrenewed and was taken over by the next pass"

// Leaser runs passes under database leases, so one pass of a kind and shard
// runs at a time across processes (CronJobs, recon schedule, manual runs).
type Leaser struct {
	Store  LeaseStore
	Clock  recon.Clock
	Logger *slog.Logger
	// Owner names this process in the lease (host/pid).
	Owner string
	// TTL is how long the lease holds without renewal (by the database's
	// clock): a holder that dies blocks the next pass for at most this long.
	TTL time.Duration
	// RenewEvery is how often a held lease is renewed; default TTL/3.
	RenewEvery time.Duration
}

// Run acquires lease name, runs fn under it and releases it. When another
// owner holds the lease fn does not run: Run logs that it skips and returns
// a *LeaseHeldError. While fn runs the lease is renewed every RenewEvery; if
// it is lost, fn's context is cancelled with cause ErrLeaseLost and Run
// returns an error wrapping ErrLeaseLost. Otherwise it returns fn's error.
func (l *Leaser) Run(ctx context.Context, name string, fn func(context.Context) error) error {
	if l.Clock == nil {
		l.Clock = recon.SystemClock{}
	}
	if l.Logger == nil {
		l.Logger = slog.New(slog.DiscardHandler)
	}
	if l.TTL <= 0 {
		return fmt.Errorf("lease %s: ttl must be positive (got %s)", name, l.TTL)
	}
	every := l.RenewEvery
	if every <= 0 {
		every = l.TTL / 3
	}
	log := l.Logger.With("lease", name, "owner", l.Owner)
	// The lease lasts TTL from when the database granted it, which is after
	// asked: by this process's clock it is ours until at least asked+TTL.
	asked := l.Clock.Now()
	lease, ok, err := l.Store.AcquireLease(ctx, name, l.Owner, l.TTL)
	if err != nil {
		return err
	}
	if !ok {
		log.Info("lease held by another process; skipping this pass", "holder", lease.Owner,
			"expires_at", lease.ExpiresAt.UTC().Format(time.RFC3339Nano))
		return &LeaseHeldError{Lease: lease}
	}
	log.Debug("lease acquired", "expires_at", lease.ExpiresAt.UTC().Format(time.RFC3339Nano))
	// Whoever held the lease before is gone: its runs are not running.
	kind, shard := leaseRuns(name)
	if n, err := l.Store.FailRunsOf(ctx, kind, shard, l.Clock.Now(), diedReason); err != nil {
		log.Warn("closing the runs of the lease's earlier holder failed; a later pass closes them", "error", err)
	} else if n > 0 {
		log.Warn("closed the runs of the lease's earlier holder as FAILED: it died holding the lease", "count", n)
	}

	passCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.renew(ctx, name, asked.Add(l.TTL), every, done, cancel, log)
	}()
	fnErr := fn(passCtx)
	close(done)
	wg.Wait()

	if cause := context.Cause(passCtx); errors.Is(cause, ErrLeaseLost) {
		if fnErr == nil {
			return fmt.Errorf("pass under lease %s: %w", name, cause)
		}
		return fmt.Errorf("pass under lease %s: %w (%w)", name, cause, fnErr)
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer rcancel()
	if released, err := l.Store.ReleaseLease(rctx, name, l.Owner); err != nil {
		log.Warn("releasing the lease failed; it expires by itself", "error", err)
	} else if !released {
		log.Warn("lease was no longer ours at release")
	}
	return fnErr
}

// renewMargin is kept between the end of a renewal's wait and the expiry of
// the lease by this process's clock: the pass is stopped while the lease is
// still its own.
const renewMargin = 250 * time.Millisecond

// renew extends the lease every `every` until done is closed. expires is
// when the lease runs out at the earliest, by this process's clock. It cancels the
// pass when another owner took the lease, or when renewals kept failing
// until the lease expired. Renewals outlive a shutdown signal (ctx), so the
// lease holds while the pass finishes its in-flight work.
//
// A renewal may wait for the database until shortly before the lease
// expires, not a fixed share of the TTL: a cluster that pauses commits for
// a few seconds (a Galera node died and the others are re-forming) delays
// the renewal, and every other writer, without taking the lease from
// anyone, and the pass goes on once the database answers.
func (l *Leaser) renew(ctx context.Context, name string, expires time.Time, every time.Duration,
	done <-chan struct{}, cancel context.CancelCauseFunc, log *slog.Logger) {
	bg := context.WithoutCancel(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := l.Clock.Now()
		budget := expires.Sub(now) - renewMargin
		var ok bool
		err := context.DeadlineExceeded
		if budget > 0 {
			rctx, rcancel := context.WithTimeout(bg, budget)
			ok, err = l.Store.RenewLease(rctx, name, l.Owner, l.TTL)
			rcancel()
		}
		switch {
		case err == nil && ok:
			expires = now.Add(l.TTL) // at least: renewed after now
		case err == nil:
			log.Error("lease taken over by another process; stopping this pass")
			cancel(&LeaseLostError{Name: name, TakenOver: true})
			return
		case !l.Clock.Now().Add(every).Before(expires):
			// The next try would come after the lease ran out, when another
			// process may already hold it: stop while it is still ours.
			log.Error("lease about to expire and it could not be renewed; stopping this pass", "error", err,
				"expires_at", expires.UTC().Format(time.RFC3339Nano))
			cancel(&LeaseLostError{Name: name, Err: err, Expires: expires})
			return
		default:
			log.Warn("renewing the lease failed; retrying", "error", err,
				"expires_at", expires.UTC().Format(time.RFC3339Nano))
		}
	}
}
