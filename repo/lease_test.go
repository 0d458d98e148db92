package repo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

func TestLeaseAcquireHeldExpireRenewRelease(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		const name, ttl = "reconcile:0/4", time.Minute

		before, err := s.Now(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l, ok, err := s.AcquireLease(ctx, name, "a", ttl)
		if err != nil || !ok || l.Owner != "a" || l.ExpiresAt.Sub(l.AcquiredAt) != ttl || l.AcquiredAt.Before(before) {
			t.Fatalf("acquire free lease = %+v, %v, %v (database clock before: %s)", l, ok, err, before)
		}
		first := l
		// Held: another owner, and the holder itself (not re-entrant), are
		// refused and told who holds it until when.
		for _, who := range []string{"b", "a"} {
			l, ok, err = s.AcquireLease(ctx, name, who, ttl)
			if err != nil || ok || l.Owner != "a" || !l.ExpiresAt.Equal(first.ExpiresAt) {
				t.Fatalf("%s acquiring a held lease = %+v, %v, %v", who, l, ok, err)
			}
		}
		// Other names are independent.
		if _, ok, err := s.AcquireLease(ctx, "reconcile:1/4", "b", ttl); err != nil || !ok {
			t.Fatalf("other shard = %v, %v", ok, err)
		}

		// Renew moves the expiry; a non-holder cannot renew.
		if ok, err := s.RenewLease(ctx, name, "a", 2*ttl); err != nil || !ok {
			t.Fatalf("renew by holder = %v, %v", ok, err)
		}
		if got, err := s.GetLease(ctx, name); err != nil || !got.ExpiresAt.After(first.ExpiresAt) {
			t.Fatalf("renewed lease = %+v, %v; first expiry %s", got, err, first.ExpiresAt)
		}
		if ok, err := s.RenewLease(ctx, name, "b", ttl); err != nil || ok {
			t.Fatalf("renew by non-holder = %v, %v", ok, err)
		}

		// Expired (by the database's clock): taken over; the old holder can
		// neither renew nor release it.
		repotest.ExpireLease(t, s, name)
		l, ok, err = s.AcquireLease(ctx, name, "b", ttl)
		if err != nil || !ok || l.Owner != "b" {
			t.Fatalf("takeover at expiry = %+v, %v, %v", l, ok, err)
		}
		if ok, err := s.RenewLease(ctx, name, "a", ttl); err != nil || ok {
			t.Fatalf("renew by the old holder = %v, %v", ok, err)
		}
		if ok, err := s.ReleaseLease(ctx, name, "a"); err != nil || ok {
			t.Fatalf("release by the old holder = %v, %v", ok, err)
		}
		if got, err := s.GetLease(ctx, name); err != nil || got.Owner != "b" || !got.AcquiredAt.Equal(l.AcquiredAt) {
			t.Fatalf("lease after takeover = %+v, %v", got, err)
		}

		// Released: gone, and free for anyone at once.
		if ok, err := s.ReleaseLease(ctx, name, "b"); err != nil || !ok {
			t.Fatalf("release = %v, %v", ok, err)
		}
		if _, err := s.GetLease(ctx, name); !errors.Is(err, recon.ErrNotFound) {
			t.Fatalf("released lease read = %v", err)
		}
		if ok, err := s.RenewLease(ctx, name, "b", ttl); err != nil || ok {
			t.Fatalf("renew of a released lease = %v, %v", ok, err)
		}
		if _, ok, err := s.AcquireLease(ctx, name, "c", ttl); err != nil || !ok {
			t.Fatalf("acquire after release = %v, %v", ok, err)
		}
		if _, _, err := s.AcquireLease(ctx, name, "", ttl); err == nil {
			t.Fatal("acquire without an owner succeeded")
		}
	})
}

// The database's clock is UTC and current, whatever this process's zone.
func TestStoreNowIsTheDatabaseClock(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		now, err := db.Store.Now(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if now.Location() != time.UTC || now.Sub(time.Now()).Abs() > time.Minute {
			t.Fatalf("database clock %s, this machine %s", now, time.Now().UTC())
		}
	})
}

// leaseConn is one contender: its own connection pool, as another process
// would have.
type leaseConn struct {
	s     *repo.Store
	owner string
}

// Many processes race for one lease, free and then expired: exactly one wins
// each round.
func TestLeaseRaceHasExactlyOneWinner(t *testing.T) {
	repotest.ForEachDBAndCluster(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		const racers = 12
		conns := make([]*leaseConn, racers)
		for i := range conns {
			conns[i] = &leaseConn{s: db.Open(t), owner: fmt.Sprintf("p%02d", i)}
		}
		for round := range 2 {
			if round == 1 {
				repotest.ExpireLease(t, db.Store, "notify")
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			wins := make(chan string, racers)
			errs := make(chan error, racers)
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					l, ok, err := c.s.AcquireLease(ctx, "notify", c.owner, time.Minute)
					switch {
					case err != nil:
						errs <- err
					case ok:
						wins <- c.owner
					case l.Owner == c.owner:
						errs <- fmt.Errorf("%s refused but reported as holder", c.owner)
					}
				}()
			}
			close(start)
			wg.Wait()
			close(wins)
			close(errs)
			for err := range errs {
				t.Fatalf("round %d: %v", round, err)
			}
			var winners []string
			for w := range wins {
				winners = append(winners, w)
			}
			if len(winners) != 1 {
				t.Fatalf("round %d: winners %v, want exactly one", round, winners)
			}
			if got, err := db.Store.GetLease(ctx, "notify"); err != nil || got.Owner != winners[0] {
				t.Fatalf("round %d: lease %+v, %v; winner %s", round, got, err, winners[0])
			}
		}
	})
}
