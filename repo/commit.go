package repo

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// CommitMeta says who commits an outcome and when.
type CommitMeta struct {
	RunID  int64
	Source string // "reconcile", "backfill", "check"
	Now    time.Time
}

// CommitResult says what Commit did.
type CommitResult string

// Commit results.
const (
	// Applied: the order row (and outbox, audit, mismatch rows) were written.
	Applied CommitResult = "applied"
	// Lost: someone else moved the order to a terminal state first; nothing
	// was written. CommitReport.Current is the order as it is now.
	Lost CommitResult = "lost"
	// Stale: the order is still PENDING but its version changed since it was
	// read; nothing was written. Decide again with CommitReport.Current.
	Stale CommitResult = "stale"
	// Recorded: an outcome that changes no order (a verification report) had
	// its mismatch recorded.
	Recorded CommitResult = "recorded"
)

// CommitReport is Commit's answer.
type CommitReport struct {
	Result CommitResult
	// Current is the re-read order when Result is Lost or Stale.
	Current recon.Order
	// NewMismatch is true when the outcome's mismatch was not already open.
	NewMismatch bool
}

// Commit writes an outcome in one transaction: the guarded order update
// (status PENDING and the version read, or nothing), the outbox row and audit
// row of a transition, and the outcome's mismatch. When the guard finds the
// order moved, nothing is written and the order is re-read for the caller.
// It is CommitBatch of one outcome.
func (s *Store) Commit(ctx context.Context, out recon.Outcome, meta CommitMeta) (CommitReport, error) {
	reps, err := s.CommitBatch(ctx, []recon.Outcome{out}, meta)
	if err != nil {
		return CommitReport{}, err
	}
	return reps[0], nil
}

// RecordMismatch upserts one mismatch outside any order change (a lost race
// judged as STATUS_CONFLICT, a verification finding). It reports whether the
// mismatch is new or reopened.
func (s *Store) RecordMismatch(ctx context.Context, o recon.Order, m recon.Mismatch, meta CommitMeta) (bool, error) {
	var isNew bool
	err := s.retryTx(ctx, "record_mismatch", func(tx *gorm.DB) error {
		var err error
		isNew, err = s.upsertMismatch(tx, o, m, meta)
		return err
	})
	return isNew, err
}

// upsertMismatch keeps one row per (order, kind): a first detection inserts,
// a later one updates what was seen. A RESOLVED row detected again with the
// same facts (statuses, amounts, currencies at both sides) stays resolved;
// with different facts it reopens as a new detection (detected_at now, so it
// is in the current period's report) with the resolver's columns cleared;
// who resolved it, when and why stay in its history (recon_mismatch_events).
func (s *Store) upsertMismatch(tx *gorm.DB, o recon.Order, m recon.Mismatch, meta CommitMeta) (bool, error) {
	now := dbTime(meta.Now)
	detail := truncate(m.Detail, 1024)
	subject := mismatchSubject(o, m)
	n, err := exec(tx, s.insertIgnore("recon_mismatches",
		`run_id, order_id, subject, order_no, merchant_id, channel, kind, local_status, channel_status,
		local_amount, channel_amount, local_currency, channel_currency, channel_txn_id, refund_no, detail,
		detected_at, last_seen_at, occurrences, resolution`,
		"?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 'OPEN'"),
		nullRunID(meta.RunID), o.ID, subject, truncate(o.OrderNo, 64), o.MerchantID, o.Channel, m.Kind, m.LocalStatus, m.ChannelStatus,
		m.LocalAmount, m.ChannelAmount, m.LocalCurrency, truncate(m.ChannelCurrency, 3), truncate(m.ChannelTxnID, 128),
		truncate(m.RefundNo, 64), detail, now, now)
	if err != nil {
		return false, fmt.Errorf("record mismatch %s for order %d: %w", m.Kind, o.ID, err)
	}
	if n == 1 {
		return true, recordMismatchEvent(tx, o.ID, subject, m.Kind, ActionOpened, detail, meta)
	}
	set := `run_id = ?, local_status = ?, channel_status = ?, local_amount = ?, channel_amount = ?,
		local_currency = ?, channel_currency = ?, channel_txn_id = ?, detail = ?, last_seen_at = ?,
		occurrences = occurrences + 1`
	args := []any{nullRunID(meta.RunID), m.LocalStatus, m.ChannelStatus, m.LocalAmount, m.ChannelAmount,
		m.LocalCurrency, truncate(m.ChannelCurrency, 3), truncate(m.ChannelTxnID, 128), detail, now}
	// A resolved row reopens only when what is seen differs from what was
	// resolved; seen again with the same facts it stays resolved and is
	// only updated below (last_seen_at, occurrences).
	facts := []any{m.LocalStatus, m.ChannelStatus, m.LocalAmount, m.ChannelAmount, m.LocalCurrency, truncate(m.ChannelCurrency, 3)}
	reopened, err := exec(tx, "UPDATE recon_mismatches SET resolution = 'OPEN', resolved_by = NULL, "+
		"resolution_note = NULL, resolved_at = NULL, detected_at = ?, "+set+
		" WHERE order_id = ? AND kind = ? AND subject = ? AND resolution = 'RESOLVED'"+
		" AND NOT (local_status = ? AND channel_status = ? AND local_amount = ? AND channel_amount = ?"+
		" AND local_currency = ? AND channel_currency = ?)",
		append(append(append([]any{now}, args...), o.ID, m.Kind, subject), facts...)...)
	if err != nil {
		return false, fmt.Errorf("reopen mismatch %s for order %d: %w", m.Kind, o.ID, err)
	}
	if reopened == 1 {
		return true, recordMismatchEvent(tx, o.ID, subject, m.Kind, ActionReopened, detail, meta)
	}
	if _, err := exec(tx, "UPDATE recon_mismatches SET "+set+" WHERE order_id = ? AND kind = ? AND subject = ?",
		append(args, o.ID, m.Kind, subject)...); err != nil {
		return false, fmt.Errorf("update mismatch %s for order %d: %w", m.Kind, o.ID, err)
	}
	return false, nil
}

// mismatchSubject tells apart the mismatches of one (order, kind): a
// CHANNEL_ONLY finding has no local order (order_id 0) and is kept one per
// (channel, transaction id); a refund's mismatch is kept one per (refund,
// kind), so two refunds of one order have a row each; every other kind is
// one per (order, kind).
func mismatchSubject(o recon.Order, m recon.Mismatch) string {
	switch {
	case m.RefundNo != "":
		return truncate("refund:"+m.RefundNo, 200)
	case m.Kind != recon.MismatchChannelOnly:
		return ""
	}
	return truncate(o.Channel+"/"+m.ChannelTxnID, 200)
}

// insertIgnore renders an INSERT that does nothing when a unique key already
// holds the row, in the dialect's words.
func (s *Store) insertIgnore(table, cols, vals string) string {
	if s.dialect == MySQL {
		// ON DUPLICATE KEY UPDATE with a no-op reports 0 rows, and unlike
		// INSERT IGNORE it does not turn other errors into warnings.
		return "INSERT INTO " + table + " (" + cols + ") VALUES (" + vals + ") ON DUPLICATE KEY UPDATE id = id"
	}
	return "INSERT INTO " + table + " (" + cols + ") VALUES (" + vals + ") ON CONFLICT DO NOTHING"
}

func exec(tx *gorm.DB, sql string, args ...any) (int64, error) {
	res := tx.Exec(sql, args...)
	return res.RowsAffected, res.Error
}

func nullRunID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}
