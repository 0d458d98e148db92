package jobs_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

var leaseStart = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestLeaseNames(t *testing.T) {
	if got := jobs.LeaseName(jobs.KindReconcile, repo.Shard{}); got != "reconcile" {
		t.Errorf("unsharded = %q", got)
	}
	if got := jobs.LeaseName(jobs.KindBackfill, repo.Shard{Index: 2, Count: 4}); got != "backfill:2/4" {
		t.Errorf("sharded = %q", got)
	}
}

func TestLeaserRunsHeldSkipsAndReleases(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		clock := recon.NewFakeClock(leaseStart)
		a := &jobs.Leaser{Store: db.Store, Clock: clock, Logger: testLogger(t), Owner: "a", TTL: time.Minute}
		b := &jobs.Leaser{Store: db.Open(t), Clock: clock, Logger: testLogger(t), Owner: "b", TTL: time.Minute}
		ran := false
		err := a.Run(ctx, "notify", func(ctx context.Context) error {
			ran = true
			l, err := db.Store.GetLease(ctx, "notify")
			if err != nil || l.Owner != "a" || l.ExpiresAt.Sub(l.AcquiredAt) != time.Minute {
				t.Errorf("lease during the pass = %+v, %v", l, err)
			}
			err = b.Run(ctx, "notify", func(context.Context) error {
				t.Error("second pass ran while the lease was held")
				return nil
			})
			var held *jobs.LeaseHeldError
			if !errors.As(err, &held) || held.Lease.Owner != "a" {
				t.Errorf("second pass = %v, want held by a", err)
			}
			return nil
		})
		if err != nil || !ran {
			t.Fatalf("pass = %v (ran %v)", err, ran)
		}
		if _, err := db.Store.GetLease(ctx, "notify"); !errors.Is(err, recon.ErrNotFound) {
			t.Fatalf("lease not released: %v", err)
		}
		want := errors.New("pass failed")
		if err := b.Run(ctx, "notify", func(context.Context) error { return want }); !errors.Is(err, want) {
			t.Fatalf("pass error = %v, want %v", err, want)
		}
		if _, err := db.Store.GetLease(ctx, "notify"); !errors.Is(err, recon.ErrNotFound) {
			t.Fatalf("lease of a failed pass not released: %v", err)
		}
	})
}

// A holder whose lease expired and was taken over learns it at its next
// renewal and stops its pass.
func TestLeaserStopsThePassWhenTheLeaseIsTakenOver(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		clock := recon.NewFakeClock(leaseStart)
		const ttl = time.Minute
		a := &jobs.Leaser{Store: db.Store, Clock: clock, Logger: testLogger(t), Owner: "a", TTL: ttl,
			RenewEvery: 50 * time.Millisecond}
		other := db.Open(t)
		err := a.Run(ctx, "reconcile:1/2", func(ctx context.Context) error {
			// The lease ran out unrenewed (as when this process hangs).
			// The thief is another process: not under this pass's context,
			// which its own takeover may cancel before the call returns.
			var ok bool
			var err error
			for try := 0; try < 20 && err == nil && !ok; try++ { // a renewal may come in between
				repotest.ExpireLease(t, other, "reconcile:1/2")
				_, ok, err = other.AcquireLease(context.Background(), "reconcile:1/2", "thief", ttl)
			}
			if err != nil || !ok {
				t.Errorf("takeover = %v, %v", ok, err)
				return nil
			}
			select {
			case <-ctx.Done():
				if !errors.Is(context.Cause(ctx), jobs.ErrLeaseLost) {
					t.Errorf("cause = %v", context.Cause(ctx))
				}
				return ctx.Err()
			case <-time.After(2 * time.Minute): // generous: renewals come every 50ms
				t.Error("pass not stopped after its lease was taken over")
				return nil
			}
		})
		var lost *jobs.LeaseLostError
		if !errors.Is(err, jobs.ErrLeaseLost) || !errors.As(err, &lost) || !lost.TakenOver {
			t.Fatalf("Run = %v, want the lease taken over", err)
		}
		if l, err := db.Store.GetLease(ctx, "reconcile:1/2"); err != nil || l.Owner != "thief" {
			t.Fatalf("lease after loss = %+v, %v (the loser must not release it)", l, err)
		}
	})
}

// failingRenewals is a lease store whose renewals fail, as when the database
// is unreachable.
type failingRenewals struct{ jobs.LeaseStore }

func (failingRenewals) RenewLease(context.Context, string, string, time.Duration) (bool, error) {
	return false, errors.New("connection refused")
}

func TestLeaserStopsThePassBeforeAnUnrenewedLeaseExpires(t *testing.T) {
	db := repotest.NewSQLite(t)
	clock := recon.NewFakeClock(leaseStart)
	l := &jobs.Leaser{Store: failingRenewals{db.Store}, Clock: clock, Logger: testLogger(t), Owner: "a",
		TTL: time.Minute, RenewEvery: 5 * time.Millisecond}
	err := l.Run(context.Background(), "notify", func(ctx context.Context) error {
		// Still ours for 2ms, less than until the next renewal (5ms): the
		// pass stops before the lease can be taken by anyone else.
		clock.Advance(time.Minute - 2*time.Millisecond)
		<-ctx.Done() // bounded by the test timeout: renewals fail at once
		return ctx.Err()
	})
	var lost *jobs.LeaseLostError
	if !errors.Is(err, jobs.ErrLeaseLost) || !errors.As(err, &lost) || lost.TakenOver || lost.Err == nil {
		t.Fatalf("Run = %v, want a lease not renewed in time (not taken over), with why", err)
	}
}

// pausedRenewals is a lease store whose renewals report how long their
// caller lets them wait for the database.
type pausedRenewals struct {
	jobs.LeaseStore
	waits chan time.Duration
}

func (p pausedRenewals) RenewLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	d, _ := ctx.Deadline()
	p.waits <- time.Until(d)
	return p.LeaseStore.RenewLease(ctx, name, owner, ttl)
}

// A renewal may wait for the database until shortly before the lease
// expires, so a pause of the database shorter than what is left of the
// lease (6 s while a Galera cluster drops a dead node, with 10 s left) does
// not stop the pass.
func TestLeaserRenewalWaitsOutAPauseShorterThanTheLease(t *testing.T) {
	db := repotest.NewSQLite(t)
	clock := recon.NewFakeClock(leaseStart)
	store := pausedRenewals{LeaseStore: db.Store, waits: make(chan time.Duration, 1)}
	l := &jobs.Leaser{Store: store, Clock: clock, Logger: testLogger(t), Owner: "a", TTL: 15 * time.Second,
		RenewEvery: 5 * time.Millisecond}
	err := l.Run(context.Background(), "reconcile", func(ctx context.Context) error {
		// Renewed every 5 s of the lease's 15: 10 s are left at a renewal.
		clock.Advance(5 * time.Second)
		<-store.waits // the first renewal may have read the clock before it moved
		for range 2 {
			if wait := <-store.waits; wait < 6*time.Second {
				t.Errorf("a renewal with 10 s of lease left waits for the database %s, less than a cluster's pause", wait)
			}
		}
		return ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Lease expiry is the database's: a process whose clock runs hours ahead
// does not take a lease its holder still holds.
func TestLeaserClockAheadDoesNotTakeAHeldLease(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		a := &jobs.Leaser{Store: db.Store, Clock: recon.SystemClock{}, Logger: testLogger(t), Owner: "a", TTL: time.Minute}
		ahead := recon.NewFakeClock(time.Now().Add(3 * time.Hour))
		b := &jobs.Leaser{Store: db.Open(t), Clock: ahead, Logger: testLogger(t), Owner: "b", TTL: time.Minute}
		err := a.Run(ctx, "reconcile", func(ctx context.Context) error {
			var held *jobs.LeaseHeldError
			if err := b.Run(ctx, "reconcile", func(context.Context) error {
				t.Error("a process whose clock runs ahead took a held lease")
				return nil
			}); !errors.As(err, &held) || held.Lease.Owner != "a" {
				t.Errorf("pass with its clock ahead = %v, want held by a", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// The pass that takes a lease closes the runs its dead holder left RUNNING,
// and only those: not dry runs, not other kinds or shards.
func TestTakingALeaseClosesTheRunsOfItsDeadHolder(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		clock := recon.NewFakeClock(leaseStart)
		start := func(kind string, dry bool, shard string) int64 {
			id, err := db.Store.StartRun(ctx, kind, dry, shard, "dead-host/1", leaseStart.Add(-time.Second))
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		dead, deadShard := start(jobs.KindReconcile, false, ""), start(jobs.KindBackfill, false, "1/2")
		dry, otherShard, otherKind := start(jobs.KindReconcile, true, ""), start(jobs.KindBackfill, false, "0/2"), start(jobs.KindNotify, false, "")
		if _, ok, err := db.Store.AcquireLease(ctx, "reconcile", "dead-host/1", time.Minute); err != nil || !ok {
			t.Fatal(ok, err)
		}
		repotest.ExpireLease(t, db.Store, "reconcile")
		l := &jobs.Leaser{Store: db.Store, Clock: clock, Logger: testLogger(t), Owner: "next", TTL: time.Minute}
		for _, name := range []string{"reconcile", "backfill:1/2"} {
			if err := l.Run(ctx, name, func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		for id, want := range map[int64]string{dead: repo.RunFailed, deadShard: repo.RunFailed,
			dry: repo.RunRunning, otherShard: repo.RunRunning, otherKind: repo.RunRunning} {
			r, err := db.Store.GetRun(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != want {
				t.Errorf("run %d (%s %q dry %v) is %s, want %s", id, r.Kind, r.Shard, r.DryRun, r.Status, want)
			}
			if want == repo.RunFailed && (r.FinishedAt == nil || !r.FinishedAt.Equal(leaseStart) || !strings.Contains(r.Error, "holder died")) {
				t.Errorf("closed run %d = %+v, want finished now with the reason", id, r)
			}
		}
	})
}
