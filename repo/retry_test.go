package repo_test

import (
	"context"
	"database/sql"
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
	s, err := repo.Open(context.Background(), db.Dialect, dsn, repo.Options{Orders: db.Schema.Mapping, Refunds: db.Schema.Refunds})
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
		var attempts atomic.Int64
		pastABlocker(t, db, "lease", "UPDATE recon_leases SET owner = 'blocker' WHERE name = 'held'", nil, commitTx,
			func(s *repo.Store) error {
				return s.RetryTx(ctx, "lease", func(tx *gorm.DB) error {
					attempts.Add(1)
					if err := tx.Exec("INSERT INTO recon_leases (name, owner, acquired_at, expires_at) VALUES (?, 'rerun', ?, ?)",
						fmt.Sprintf("mark-%d", attempts.Load()), now, now).Error; err != nil {
						return err
					}
					return tx.Exec("UPDATE recon_leases SET owner = 'rerun' WHERE name = 'held'").Error
				})
			})
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

// pastABlocker runs write on an impatient store while another process holds,
// in an open transaction that ran block, the row that write needs: the
// write fails as a conflict, which is reported once under op; the other
// process then ends its transaction (end: commit or rollback), and the
// write, run again whole, gets through.
func pastABlocker(t *testing.T, db repotest.DB, op, block string, blockArgs []any, end func(*sql.Tx) error, write func(s *repo.Store) error) {
	t.Helper()
	ctx := context.Background()
	other, err := db.Open(t).DB().DB()
	if err != nil {
		t.Fatal(err)
	}
	blocker, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = blocker.Rollback() }()
	if _, err := blocker.ExecContext(ctx, block, blockArgs...); err != nil {
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
			if err := end(blocker); err != nil {
				t.Error(err)
			}
		}
	})
	if err := write(s); err != nil {
		t.Fatalf("a write behind another process's transaction: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(ops) != "["+op+"]" {
		t.Fatalf("conflicts reported %v, want one under %s", ops, op)
	}
}

func commitTx(tx *sql.Tx) error   { return tx.Commit() }
func rollbackTx(tx *sql.Tx) error { return tx.Rollback() }

// A notification enqueued directly while another process inserts the same
// row is retried (op outbox): once that process rolls back, the rerun
// inserts it, once.
func TestEnqueueNotificationRetriesAConflict(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		o := repotest.Order("O1", now)
		o.Status = recon.StatusPaid
		repotest.Seed(t, db.Store, &o)
		n := recon.NewNotification(o, recon.StatusPaid, "T1", &now, now)
		pastABlocker(t, db, "outbox", `INSERT INTO merchant_notifications (id, order_id, merchant_id, event, payload, status, attempts,
			next_attempt_at, created_at) VALUES (?, ?, 'other', ?, '{}', 'PENDING', 0, ?, ?)`,
			[]any{n.ID, o.ID, n.Event, now, now}, rollbackTx, func(s *repo.Store) error {
				inserted, err := s.EnqueueNotification(ctx, o.ID, n, now)
				if err == nil && !inserted {
					err = errors.New("the rerun inserted nothing")
				}
				return err
			})
		got, err := db.Store.GetNotification(ctx, n.ID)
		if err != nil || got.Status != repo.NotifyPending {
			t.Fatalf("notification %+v %v", got, err)
		}
	})
}

// A statement's reconciliation counts, written while another process
// updates the statement's row, are retried (op statement) and land whole.
func TestFinishStatementRetriesAConflict(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		imp := repo.StatementImport{Channel: "sim", Day: "2026-11-22", Source: repo.SourceFile}
		st, err := db.Store.ImportStatement(ctx, imp, now, linesOf(stmtLine(2, recon.LinePayment, "a", "T1", "", 100)))
		if err != nil {
			t.Fatal(err)
		}
		pastABlocker(t, db, "statement", "UPDATE channel_statements SET error = 'held' WHERE id = ?", []any{st.ID}, commitTx,
			func(s *repo.Store) error {
				return s.FinishStatement(ctx, st.ID, repo.StatementCounts{Matched: 1, ChannelOnly: 1, NewMismatches: 1}, 0, now)
			})
		got, err := db.Store.GetStatement(ctx, "sim", "2026-11-22")
		if err != nil || got.Status != repo.StatementReconciled || got.Error != "" || got.Matched != 1 || got.ChannelOnly != 1 {
			t.Fatalf("statement %+v %v", got, err)
		}
	})
}

// Orders made due by a statement while another process updates one of them
// are retried (op make_due): with recon's own table, and with recon's
// bookkeeping of a mapped one.
func TestMakeDueRetriesAConflict(t *testing.T) {
	repotest.ForSchemas(t, []repotest.Schema{repotest.Own, repotest.SchemaA}, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		o := repotest.Order("O1", now)
		db.Seed(t, &o)
		block := "UPDATE payment_orders SET last_query_error = 'held' WHERE id = ?"
		if db.Schema.Mapping != nil {
			block = "UPDATE recon_order_state SET last_query_error = 'held' WHERE id = ?"
		}
		pastABlocker(t, db, "make_due", block, []any{o.ID}, commitTx, func(s *repo.Store) error {
			n, err := s.MakeDue(ctx, []recon.Order{o}, "statement line", now)
			if err == nil && n != 1 {
				err = fmt.Errorf("%d orders made due, want 1", n)
			}
			return err
		})
		got, err := db.Store.GetOrder(ctx, o.ID)
		if err != nil || got.NextQueryAt == nil || !got.NextQueryAt.Equal(now) || got.LastQueryError != "statement line" {
			t.Fatalf("order %+v %v", got, err)
		}
	})
}

// recon's bookkeeping row of a mapped table's order, registered while
// another process inserts the same one, is retried (op order_state): once
// that process rolls back, the rerun registers the order.
func TestMappedRegistrationRetriesAConflict(t *testing.T) {
	repotest.ForSchemas(t, []repotest.Schema{repotest.SchemaA}, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		o := repotest.Order("O1", now)
		db.Seed(t, &o)
		var key string
		if err := db.Store.DB().Raw("SELECT order_key FROM recon_order_state WHERE id = ?", o.ID).Row().Scan(&key); err != nil {
			t.Fatal(err)
		}
		// As if the payment service had just written the order.
		if err := db.Store.DB().Exec("DELETE FROM recon_order_state WHERE id = ?", o.ID).Error; err != nil {
			t.Fatal(err)
		}
		var got recon.Order
		pastABlocker(t, db, "order_state", "INSERT INTO recon_order_state (order_key, active, query_attempts, created_at) VALUES (?, ?, 0, ?)",
			[]any{key, true, now}, rollbackTx, func(s *repo.Store) error {
				var err error
				got, err = s.GetOrderByNo(ctx, "O1")
				return err
			})
		if got.OrderNo != "O1" || got.ID == 0 || got.ID == o.ID {
			t.Fatalf("registered order %+v, want a new ref", got)
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
