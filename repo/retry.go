package repo

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// Retry bounds for a write the database aborted. A Galera cluster reports a
// certification failure (a write set that lost to another node's) as a
// deadlock at commit; under three racing writers a transaction rarely loses
// more than twice, and the rounds below wait about 2.5 s in all at most, so
// a write that still loses is reported rather than retried for ever.
const (
	retryAttempts = 8
	retryBase     = 10 * time.Millisecond
	retryCap      = time.Second
)

// ConflictOps names the operations whose conflicts ObserveConflicts
// reports: order commits, mismatch and finding records, resolutions, leases,
// the run ledger, outbox claims, marks and direct enqueues, operator resends,
// statement imports, matching and counts, the bookkeeping of mapped orders
// and refunds (order_state), and orders made due by a statement (make_due).
var ConflictOps = []string{"commit", "record_mismatch", "record_findings", "resolve", "resolution", "lease", "run",
	"outbox_claim", "outbox", "outbox_resend", "statement", "order_state", "make_due"}

// ObserveConflicts makes fn hear of every write the database aborted as a
// conflict (deadlock, certification failure, lock wait timeout, SQLite busy)
// and that is retried, with the name of the operation ("commit", "lease",
// "run", "outbox_claim", ...). fn must be safe for concurrent use and quick;
// nil stops the reports. Metrics count contention between nodes with it.
func (s *Store) ObserveConflicts(fn func(op string)) {
	if fn == nil {
		s.conflicts.Store(nil)
		return
	}
	s.conflicts.Store(&fn)
}

// conflictObserver holds the function given to ObserveConflicts.
type conflictObserver = atomic.Pointer[func(op string)]

// retryTx runs fn in a transaction, and runs it whole again when the
// database aborted it as a conflict: a deadlock victim, a Galera write set
// that failed certification (both MySQL error 1213), a lock wait timeout
// (1205), a node not yet ready to take writes, or SQLite busy. The
// transaction was rolled back, so a rerun is safe, and every guard in fn
// re-checks the state it reads. Reruns back off exponentially with full
// jitter (so writers that collided do not collide again in step), up to
// retryAttempts in all; op names the operation for ObserveConflicts and
// nothing else. Every write of repo goes through here.
func (s *Store) retryTx(ctx context.Context, op string, fn func(tx *gorm.DB) error, opts ...*sql.TxOptions) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = s.db.WithContext(ctx).Transaction(fn, opts...)
		if err == nil || !retryable(err) || attempt == retryAttempts-1 {
			return err
		}
		s.conflicted(op)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retryDelay(attempt)):
		}
	}
}

// conflicted reports a conflict of op to the ObserveConflicts function.
func (s *Store) conflicted(op string) {
	if p := s.conflicts.Load(); p != nil {
		(*p)(op)
	}
}

// readCommitted is the isolation of a transaction that reads rows and then
// takes some with guarded updates: on MySQL it reads the latest committed
// rows and sets no gap locks; SQLite has one isolation.
func readCommitted(d Dialect) []*sql.TxOptions {
	if d == MySQL {
		return []*sql.TxOptions{{Isolation: sql.LevelReadCommitted}}
	}
	return nil
}

// retryDelay is the wait before rerun attempt+1: a random time up to
// retryBase·2^attempt, capped at retryCap, and never nothing.
func retryDelay(attempt int) time.Duration {
	ceil := min(retryBase<<attempt, retryCap)
	return time.Millisecond + rand.N(ceil)
}

// retryable recognises a write the database aborted as a conflict, which a
// rerun of the whole transaction may win: MySQL's deadlock (1213, also how
// Galera reports a certification failure or a brute-force abort) and lock
// wait timeout (1205), a Galera node that is not ready for writes while the
// cluster re-forms (1047 with a WSREP message), and SQLite's busy errors.
func retryable(err error) bool {
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1213, 1205:
			return true
		case 1047:
			return strings.Contains(me.Message, "WSREP")
		}
		return false
	}
	return isBusy(err)
}

// isBusy recognises SQLite reporting the database locked by another writer.
func isBusy(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}
