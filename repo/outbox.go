package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// Outbox row statuses (merchant_notifications.status).
const (
	NotifyPending   = "PENDING"
	NotifyDelivered = "DELIVERED"
	NotifyDead      = "DEAD"
)

// Claim says which outbox rows a dispatcher takes and for how long.
type Claim struct {
	// Owner names the dispatcher (host/pid); the guarded state changes
	// only apply while the row is still locked by the same owner.
	Owner string
	// DueBefore: rows whose next_attempt_at is at or before it are due. A
	// pass passes its start time, so a row it reschedules is not taken again
	// by the same pass.
	DueBefore time.Time
	// Now is the current time; leases that ended before it are free.
	Now time.Time
	// Lease is how long the claim holds: a dispatcher that dies leaves its
	// rows to be claimed again once it has passed.
	Lease time.Duration
	// Limit is the most rows to take.
	Limit int
	// SkipMerchants lists merchants whose rows this claim leaves alone
	// (merchants paused by the dispatcher's breaker).
	SkipMerchants []string
	// PerMerchant, when positive, caps the rows of one merchant the caller
	// holds: a claim takes at most PerMerchant - Holding[m] rows of
	// merchant m, so one merchant's backlog cannot fill a claim.
	PerMerchant int
	// Holding counts the rows of each merchant the caller still holds from
	// earlier claims.
	Holding map[string]int
}

// skipped returns the merchants c takes no row of: those it skips and those
// the caller already holds PerMerchant rows of.
func (c Claim) skipped() []string {
	out := append([]string(nil), c.SkipMerchants...)
	if c.PerMerchant > 0 {
		for m, n := range c.Holding {
			if n >= c.PerMerchant {
				out = append(out, m)
			}
		}
	}
	return out
}

// pick keeps, in order, the rows c may take: at most PerMerchant rows of a
// merchant, counting those held already.
func (c Claim) pick(rows []notificationRow) []notificationRow {
	if c.PerMerchant <= 0 {
		return rows
	}
	taken := map[string]int{}
	out := rows[:0]
	for _, r := range rows {
		if c.Holding[r.MerchantID]+taken[r.MerchantID] < c.PerMerchant {
			taken[r.MerchantID]++
			out = append(out, r)
		}
	}
	return out
}

// ClaimNotifications takes up to c.Limit due PENDING rows, oldest
// next_attempt_at first, that no live lease holds, and leases them to
// c.Owner until c.Now+c.Lease. It returns the rows as claimed. With
// c.PerMerchant set it looks at c.Limit candidates and leases only the rows
// within each merchant's share; the others stay free.
//
// The candidates are read without locks, and each is then taken by its own
// guarded update (still PENDING, lease free): the rows that update changed
// are the claim. Row locks are not shared between the nodes of a Galera
// cluster, so no claim relies on them: two dispatchers on two nodes that
// update the same row conflict at commit and one transaction is rolled
// back. On MySQL the claim is first tried as one transaction; when that
// conflicts, each candidate is tried in a transaction of its own and one
// that conflicts is left (another dispatcher, or an operator's resend, wrote
// it at the same moment; if it is still free a later claim takes it). On
// one server a concurrent claim waits for the row and then finds the guard
// false; on SQLite the transaction holds the write lock (BEGIN IMMEDIATE)
// from its first statement, and is run again while the file is busy.
func (s *Store) ClaimNotifications(ctx context.Context, c Claim) ([]Notification, error) {
	if c.Limit <= 0 || c.Owner == "" || c.Lease <= 0 {
		return nil, fmt.Errorf("claim notifications: need an owner, a positive lease and limit (owner %q, lease %s, limit %d)",
			c.Owner, c.Lease, c.Limit)
	}
	until := dbTime(c.Now.Add(c.Lease))
	dueSQL, dueArgs := s.timeCmp("next_attempt_at", "<=", c.DueBefore)
	freeSQL, freeArgs := s.timeCmp("locked_until", "<", c.Now)
	skip, args := "", append(append([]any{NotifyPending}, dueArgs...), freeArgs...)
	if sk := c.skipped(); len(sk) > 0 {
		skip = " AND merchant_id NOT IN ?"
		args = append(args, sk)
	}
	args = append(args, c.Limit)
	take := func(tx *gorm.DB, r notificationRow) (bool, error) {
		n, err := exec(tx, `UPDATE merchant_notifications SET locked_until = ?, locked_by = ?
			WHERE id = ? AND status = ? AND (locked_until IS NULL OR `+freeSQL+`)`,
			append([]any{until, c.Owner, r.ID, NotifyPending}, freeArgs...)...)
		return n == 1, err
	}
	var cands, rows []notificationRow
	batch := func(tx *gorm.DB) error {
		cands, rows = nil, nil
		if err := tx.Raw(`SELECT * FROM merchant_notifications
			WHERE status = ? AND `+dueSQL+` AND (locked_until IS NULL OR `+freeSQL+`)`+skip+`
			ORDER BY `+s.at("next_attempt_at")+`, id LIMIT ?`, args...).Scan(&cands).Error; err != nil {
			return err
		}
		cands = c.pick(cands)
		for _, r := range cands {
			ok, err := take(tx, r)
			if err != nil {
				return err
			}
			if ok {
				rows = append(rows, r)
			}
		}
		return nil
	}
	var err error
	if s.dialect == SQLite {
		err = s.retryTx(ctx, "outbox_claim", batch)
	} else if err = s.db.WithContext(ctx).Transaction(batch, readCommitted(s.dialect)...); err != nil && retryable(err) && len(cands) > 0 {
		s.conflicted("outbox_claim")
		rows, err = nil, nil
		for _, r := range cands {
			var ok bool
			terr := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				var err error
				ok, err = take(tx, r)
				return err
			})
			switch {
			case terr != nil && retryable(terr):
				s.conflicted("outbox_claim")
			case terr != nil:
				err = terr
			case ok:
				rows = append(rows, r)
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("claim notifications for %s: %w", c.Owner, err)
	}
	out := make([]Notification, len(rows))
	for i, r := range rows {
		n := r.toDomain()
		u := until
		n.LockedUntil, n.LockedBy = &u, c.Owner
		out[i] = n
	}
	return out, nil
}

// guarded is the condition every dispatcher state change carries: the row is
// still PENDING and still leased to the caller. A dispatcher whose lease ran
// out and was taken over changes nothing.
const guarded = " WHERE id = ? AND locked_by = ? AND status = 'PENDING'"

// MarkDelivered records a 2xx answer: DELIVERED at now, one more attempt,
// lease released. It reports false (and changes nothing) when the row is no
// longer PENDING and leased to owner.
func (s *Store) MarkDelivered(ctx context.Context, id, owner string, now time.Time) (bool, error) {
	n, err := s.writeOne(ctx, "outbox", `UPDATE merchant_notifications SET status = 'DELIVERED',
		attempts = attempts + 1, delivered_at = ?, last_error = NULL, locked_until = NULL, locked_by = NULL`+guarded,
		dbTime(now), id, owner)
	if err != nil {
		return false, fmt.Errorf("mark notification %s delivered: %w", id, err)
	}
	return n == 1, nil
}

// MarkRetry records a failed attempt: attempts (the new total), the next
// attempt's time and the error (cut to 1024 bytes), lease released. It
// reports false when the row is no longer PENDING and leased to owner.
func (s *Store) MarkRetry(ctx context.Context, id, owner string, attempts int, nextAt time.Time, lastErr string) (bool, error) {
	n, err := s.writeOne(ctx, "outbox", `UPDATE merchant_notifications SET attempts = ?, next_attempt_at = ?,
		last_error = ?, locked_until = NULL, locked_by = NULL`+guarded,
		attempts, dbTime(nextAt), truncate(lastErr, 1024), id, owner)
	if err != nil {
		return false, fmt.Errorf("reschedule notification %s: %w", id, err)
	}
	return n == 1, nil
}

// MarkDead records the last failed attempt: DEAD, attempts (the new total)
// and the error; next_attempt_at becomes now, the time it gave up. It reports
// false when the row is no longer PENDING and leased to owner.
func (s *Store) MarkDead(ctx context.Context, id, owner string, attempts int, lastErr string, now time.Time) (bool, error) {
	n, err := s.writeOne(ctx, "outbox", `UPDATE merchant_notifications SET status = 'DEAD', attempts = ?,
		next_attempt_at = ?, last_error = ?, locked_until = NULL, locked_by = NULL`+guarded,
		attempts, dbTime(now), truncate(lastErr, 1024), id, owner)
	if err != nil {
		return false, fmt.Errorf("mark notification %s dead: %w", id, err)
	}
	return n == 1, nil
}

// ReleaseNotification gives a claimed row back without an attempt (a
// dispatcher shutting down before it posted it), so another can take it at
// once. It reports false when the row is not leased to owner.
func (s *Store) ReleaseNotification(ctx context.Context, id, owner string) (bool, error) {
	n, err := s.writeOne(ctx, "outbox", `UPDATE merchant_notifications SET locked_until = NULL, locked_by = NULL`+guarded,
		id, owner)
	if err != nil {
		return false, fmt.Errorf("release notification %s: %w", id, err)
	}
	return n == 1, nil
}

// resendSet puts a row back to PENDING, due at once, with a fresh retry
// schedule. attempts restarts at 0 because the schedule is indexed by it (a
// DEAD row kept at its old count would die on its first new failure); the
// history is kept in last_error, which notes the status and attempt count
// the row had and its previous error until the next attempt overwrites it
// (and in the operator's log line). A live lease is cleared too: a
// dispatcher still posting the row then loses its guard, and its result is
// dropped in favour of the fresh attempt (delivery is at-least-once anyway).
//
// last_error comes first in the SET list: MySQL evaluates assignments left
// to right and later ones see the new values.
const resendSet = `UPDATE merchant_notifications SET
	last_error = SUBSTR(CONCAT('resent by operator (was ', status, ' after ', attempts, ' attempts)',
		CASE WHEN last_error IS NULL THEN '' ELSE CONCAT(': ', last_error) END), 1, 1024),
	status = 'PENDING', next_attempt_at = ?, attempts = 0,
	delivered_at = NULL, locked_until = NULL, locked_by = NULL`

func (s *Store) resendSQL() string {
	if s.dialect == MySQL {
		return resendSet
	}
	// SQLite has || instead of CONCAT (CONCAT only since 3.44).
	return `UPDATE merchant_notifications SET
	last_error = SUBSTR('resent by operator (was ' || status || ' after ' || attempts || ' attempts)' ||
		CASE WHEN last_error IS NULL THEN '' ELSE ': ' || last_error END, 1, 1024),
	status = 'PENDING', next_attempt_at = ?, attempts = 0,
	delivered_at = NULL, locked_until = NULL, locked_by = NULL`
}

// Resend puts one notification back to PENDING, due at now, whatever its
// status (DEAD after an outage, DELIVERED when the merchant lost it, PENDING
// to try it now rather than at its scheduled time). It returns
// recon.ErrNotFound when no row has that id.
func (s *Store) Resend(ctx context.Context, id string, now time.Time) error {
	n, err := s.writeOne(ctx, "outbox_resend", s.resendSQL()+" WHERE id = ?", dbTime(now), id)
	if err != nil {
		return fmt.Errorf("resend notification %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("resend notification %s: %w", id, recon.ErrNotFound)
	}
	return nil
}

// ResendDead puts every DEAD notification of merchant (all merchants when
// empty) created in [from, to) (unbounded on a zero side) back to PENDING,
// due at now, and returns how many it moved. See Resend for what happens to
// attempts.
func (s *Store) ResendDead(ctx context.Context, merchant string, from, to, now time.Time) (int64, error) {
	where := " WHERE status = 'DEAD'"
	args := []any{dbTime(now)}
	if merchant != "" {
		where += " AND merchant_id = ?"
		args = append(args, merchant)
	}
	if !from.IsZero() {
		cond, a := s.timeCmp("created_at", ">=", from)
		where += " AND " + cond
		args = append(args, a...)
	}
	if !to.IsZero() {
		cond, a := s.timeCmp("created_at", "<", to)
		where += " AND " + cond
		args = append(args, a...)
	}
	n, err := s.writeOne(ctx, "outbox_resend", s.resendSQL()+where, args...)
	if err != nil {
		return 0, fmt.Errorf("resend dead notifications of merchant %q: %w", merchant, err)
	}
	return n, nil
}

// GetNotification reads one outbox row. It returns recon.ErrNotFound if
// absent.
func (s *Store) GetNotification(ctx context.Context, id string) (Notification, error) {
	var r notificationRow
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Notification{}, fmt.Errorf("notification %s: %w", id, recon.ErrNotFound)
	}
	if err != nil {
		return Notification{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	return r.toDomain(), nil
}

// OutboxCounts returns how many outbox rows are in each status, and how many
// PENDING rows are due at now (the backlog a dispatcher has to work off).
func (s *Store) OutboxCounts(ctx context.Context, now time.Time) (map[string]int64, int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	if err := s.db.WithContext(ctx).Model(&notificationRow{}).Select("status, COUNT(*) AS n").
		Group("status").Scan(&rows).Error; err != nil {
		return nil, 0, fmt.Errorf("count notifications: %w", err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	var due int64
	if err := s.db.WithContext(ctx).Model(&notificationRow{}).
		Where("status = ?", NotifyPending).Scopes(func(q *gorm.DB) *gorm.DB { return s.whereTime(q, "next_attempt_at", "<=", now) }).Count(&due).Error; err != nil {
		return nil, 0, fmt.Errorf("count due notifications: %w", err)
	}
	return out, due, nil
}

// EnqueueNotification inserts an outbox row for n directly, outside any order
// transition (seeding, tests, benchmarks); a row with the same (order_id,
// event) or id already there is left alone. It reports whether it inserted.
// A conflict reruns the insert-or-ignore, which a rerun cannot duplicate.
func (s *Store) EnqueueNotification(ctx context.Context, orderID int64, n recon.Notification, now time.Time) (bool, error) {
	c, err := s.writeOne(ctx, "outbox", s.insertIgnore("merchant_notifications",
		"id, order_id, merchant_id, event, payload, status, attempts, next_attempt_at, created_at",
		"?, ?, ?, ?, ?, 'PENDING', 0, ?, ?"),
		n.ID, orderID, n.Data.MerchantID, n.Event, string(n.Payload()), dbTime(now), dbTime(now))
	if err != nil {
		return false, fmt.Errorf("enqueue notification %s: %w", n.ID, err)
	}
	return c == 1, nil
}

// writeOne runs one write statement in its own transaction, run again
// when the database aborts it as a conflict (retryTx). On SQLite the
// transaction is BEGIN IMMEDIATE: an autocommit UPDATE starts as a reader,
// and in WAL mode a reader that must upgrade after another connection wrote
// gets SQLITE_BUSY at once instead of waiting for the busy timeout.
func (s *Store) writeOne(ctx context.Context, op, sql string, args ...any) (int64, error) {
	var n int64
	err := s.retryTx(ctx, op, func(tx *gorm.DB) error {
		var err error
		n, err = exec(tx, sql, args...)
		return err
	})
	return n, err
}
