package repo_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// impatient opens db again with lock waits of a fraction of a second, so
// that a write blocked by another transaction fails as a conflict (MySQL
// 1205, SQLite busy) instead of waiting.
func impatient(t *testing.T, db repotest.DB) *repo.Store {
	t.Helper()
	sep := "?"
	if strings.Contains(db.DSN, "?") {
		sep = "&"
	}
	dsn := db.DSN + sep + "_pragma=busy_timeout(200)"
	if db.Dialect == repo.MySQL {
		dsn = db.DSN + sep + "innodb_lock_wait_timeout=1"
	}
	s, err := repo.Open(context.Background(), db.Dialect, dsn, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// A transaction the database aborts as a conflict (here a lock wait timeout,
// or SQLite busy, behind another process's open write) is run again whole:
// what its first attempt wrote before it failed is gone, the rerun's writes
// are there once, and the conflict is reported once under its operation.
func TestRetryTxRerunsAConflictWhole(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		if _, ok, err := db.Store.AcquireLease(ctx, "held", "a", time.Minute); err != nil || !ok {
			t.Fatalf("seed lease: %v %v", ok, err)
		}
		other, err := db.Open(t).DB().DB()
		if err != nil {
			t.Fatal(err)
		}
		blocker, err := other.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = blocker.Rollback() }()
		if _, err := blocker.ExecContext(ctx, "UPDATE recon_leases SET owner = 'blocker' WHERE name = 'held'"); err != nil {
			t.Fatal(err)
		}

		s := impatient(t, db)
		var mu sync.Mutex
		var ops []string
		s.ObserveConflicts(func(op string) {
			mu.Lock()
			defer mu.Unlock()
			ops = append(ops, op)
			if len(ops) == 1 {
				// The other process finishes: the rerun gets through.
				if err := blocker.Commit(); err != nil {
					t.Error(err)
				}
			}
		})
		var attempts atomic.Int64
		err = s.RetryTx(ctx, "lease", func(tx *gorm.DB) error {
			attempts.Add(1)
			if err := tx.Exec("INSERT INTO recon_leases (name, owner, acquired_at, expires_at) VALUES (?, 'rerun', ?, ?)",
				fmt.Sprintf("mark-%d", attempts.Load()), now, now).Error; err != nil {
				return err
			}
			return tx.Exec("UPDATE recon_leases SET owner = 'rerun' WHERE name = 'held'").Error
		})
		if err != nil {
			t.Fatalf("retryTx: %v", err)
		}
		if fmt.Sprint(ops) != "[lease]" {
			t.Fatalf("conflicts reported %v, want one under lease", ops)
		}
		var marks []string
		if err := db.Store.DB().Raw("SELECT name FROM recon_leases WHERE owner = 'rerun' ORDER BY name").Scan(&marks).Error; err != nil {
			t.Fatal(err)
		}
		// SQLite refuses the first attempt at BEGIN, MySQL at its update:
		// either way only the last attempt's writes remain.
		want := fmt.Sprintf("[held mark-%d]", attempts.Load())
		if fmt.Sprint(marks) != want {
			t.Fatalf("rows written %v after %d attempts, want %s (the last attempt's only)", marks, attempts.Load(), want)
		}
	})
}

// An error that is not a conflict is returned at once, unretried.
func TestRetryTxReturnsOtherErrorsAtOnce(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		var conflicts, attempts atomic.Int64
		db.Store.ObserveConflicts(func(string) { conflicts.Add(1) })
		defer db.Store.ObserveConflicts(nil)
		boom := errors.New("boom")
		err := db.Store.RetryTx(context.Background(), "commit", func(tx *gorm.DB) error {
			attempts.Add(1)
			if err := tx.Exec("SELECT no_such_column FROM recon_leases").Error; err == nil {
				t.Error("a query of a missing column succeeded")
			}
			return boom
		})
		if !errors.Is(err, boom) || attempts.Load() != 1 || conflicts.Load() != 0 {
			t.Fatalf("err %v after %d attempts, %d conflicts; want boom after 1, none", err, attempts.Load(), conflicts.Load())
		}
	})
}

// Dispatchers in separate processes claim the same outbox over and over at
// once: every row is claimed by exactly one of them, and none is left.
// Claims decide by the rows their guarded updates changed, not by row locks,
// so this holds across the nodes of a cluster as on one server.
func TestClaimRaceTakesEveryRowOnce(t *testing.T) {
	repotest.ForEachDBAndCluster(t, func(t *testing.T, db repotest.DB) {
		claimRace(t, db, []*repo.Store{db.Open(t), db.Open(t), db.Open(t)})
	})
}

// claimRace seeds 120 due outbox rows and lets one claimer per store race
// for them until none is left.
func claimRace(t *testing.T, db repotest.DB, stores []*repo.Store) {
	t.Helper()
	ctx := context.Background()
	const rows = 120
	for i := range rows {
		o := repotest.Order(fmt.Sprintf("race-%d", i), now)
		o.MerchantID, o.Status = fmt.Sprintf("m%d", i%7), recon.StatusPaid
		repotest.Seed(t, db.Store, &o)
		if _, err := db.Store.EnqueueNotification(ctx, o.ID, recon.NewNotification(o, recon.StatusPaid, "T", &now, now), now); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	owner := map[string]string{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, len(stores))
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := fmt.Sprintf("d%d", i)
			<-start
			for {
				got, err := s.ClaimNotifications(ctx, repo.Claim{Owner: me, DueBefore: now, Now: now, Lease: time.Hour, Limit: 7})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, n := range got {
					if prev, ok := owner[n.ID]; ok {
						errs <- fmt.Errorf("row %s claimed by %s and by %s", n.ID, prev, me)
					}
					owner[n.ID] = me
				}
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(owner) != rows {
		t.Fatalf("%d of %d rows claimed", len(owner), rows)
	}
	var unclaimed int64
	if err := db.Store.DB().Raw("SELECT COUNT(*) FROM merchant_notifications WHERE locked_by IS NULL").Scan(&unclaimed).Error; err != nil {
		t.Fatal(err)
	}
	var mismatched int64
	for id, who := range owner {
		n, err := db.Store.GetNotification(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if n.LockedBy != who {
			mismatched++
		}
	}
	if unclaimed != 0 || mismatched != 0 {
		t.Fatalf("%d rows unclaimed, %d held by another than the claimer told", unclaimed, mismatched)
	}
}
