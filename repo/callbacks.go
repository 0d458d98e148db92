package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// Duplicate is CommitCallback's result for a notification whose event was
// already handled: nothing was written but its delivery count.
const Duplicate CommitResult = "duplicate"

// CallbackRecord is one verified channel notification as recon_callbacks
// keeps it (CONTRACT §11).
type CallbackRecord struct {
	Channel string
	// EventID is unique per channel; a second delivery is a duplicate.
	EventID  string
	OrderNo  string
	RefundNo string
	// OrderID is recon's ref of the order; 0 while it is unknown.
	OrderID int64
	Outcome recon.CallbackOutcome
	// PaidAt is the channel's paid time, if the notification has one.
	PaidAt     *time.Time
	ReceivedAt time.Time
}

// errCallbackMoved rolls back a notification's transaction whose guarded
// update found the order moved.
var errCallbackMoved = errors.New("order moved under a notification")

// CommitCallback records a verified notification and commits what it
// decided, in one transaction: the recon_callbacks row, then out (nil:
// nothing about the order, as for a notification that is not final yet,
// ignored or about an unknown order) through the same guarded writes as
// CommitBatch, with meta's source. A notification whose event is already
// recorded with a handled outcome is Duplicate and writes nothing but its
// delivery count; one recorded as ORDER_UNKNOWN is taken as new. When the
// guard finds the order moved, nothing at all is written and the report is
// Lost or Stale with the order as it is now: decide again and call again.
// With out nil, the result is Recorded.
func (s *Store) CommitCallback(ctx context.Context, out *recon.Outcome, rec CallbackRecord, meta CommitMeta) (CommitReport, error) {
	var outs []recon.Outcome
	var ids []int64
	if out != nil {
		switch out.Action {
		case recon.ActionTransition, recon.ActionHold, recon.ActionReport:
		default:
			return CommitReport{}, fmt.Errorf("commit notification %s/%s: nothing to commit for action %s", rec.Channel, rec.EventID, out.Action)
		}
		outs, ids = []recon.Outcome{*out}, []int64{out.Order.ID}
	}
	var rep CommitReport
	dup := false
	_, err := s.commitRows(ctx, meta, ids,
		func(w *batchWriter) error {
			// The notification's row first: its unique key makes a
			// duplicate delivered at the same time wait here, and find the
			// event handled once this transaction commits.
			isNew, err := s.claimCallback(w.tx, rec)
			if err != nil || !isNew {
				dup = err == nil
				return err
			}
			dup = false
			return w.loadKeys(outs)
		},
		func(w *batchWriter, i int) (bool, error) {
			if dup {
				return true, nil
			}
			var ok bool
			var err error
			rep, ok, err = w.apply(outs[i])
			if err == nil && !ok {
				// The record must say what the notification did: undo the
				// claim too, so that it is decided again on the order as
				// it is now.
				return false, errCallbackMoved
			}
			return ok, err
		})
	switch {
	case errors.Is(err, errCallbackMoved):
		return s.movedReport(ctx, out.Order.ID)
	case err != nil:
		return CommitReport{}, fmt.Errorf("commit notification %s/%s: %w", rec.Channel, rec.EventID, err)
	case dup:
		return CommitReport{Result: Duplicate}, nil
	case out == nil:
		return CommitReport{Result: Recorded}, nil
	}
	return rep, nil
}

// claimCallback writes rec's row and reports whether the event is new: not
// recorded before, or recorded only as refused (ORDER_UNKNOWN), whose retry
// is handled as new. A handled event only has its duplicates counted.
func (s *Store) claimCallback(tx *gorm.DB, rec CallbackRecord) (bool, error) {
	now := dbTime(rec.ReceivedAt)
	paid := nullTime(dbTimePtr(rec.PaidAt))
	orderID := any(nil)
	if rec.OrderID != 0 {
		orderID = rec.OrderID
	}
	n, err := exec(tx, s.insertIgnore("recon_callbacks",
		"channel, event_id, order_no, refund_no, order_id, outcome, duplicates, paid_at, received_at, handled_at",
		"?, ?, ?, ?, ?, ?, 0, ?, ?, ?"),
		rec.Channel, rec.EventID, truncate(rec.OrderNo, 64), nullString(truncate(rec.RefundNo, 64)), orderID, rec.Outcome, paid, now, now)
	if err != nil {
		return false, fmt.Errorf("record notification: %w", err)
	}
	if n == 1 {
		return true, nil
	}
	n, err = exec(tx, `UPDATE recon_callbacks SET order_no = ?, order_id = ?, outcome = ?, paid_at = ?, handled_at = ?,
		duplicates = duplicates + 1 WHERE channel = ? AND event_id = ? AND outcome = ?`,
		truncate(rec.OrderNo, 64), orderID, rec.Outcome, paid, now, rec.Channel, rec.EventID, recon.CallbackOrderUnknown)
	if err != nil {
		return false, fmt.Errorf("record notification: %w", err)
	}
	if n == 1 {
		return true, nil
	}
	if _, err := exec(tx, "UPDATE recon_callbacks SET duplicates = duplicates + 1 WHERE channel = ? AND event_id = ?",
		rec.Channel, rec.EventID); err != nil {
		return false, fmt.Errorf("count duplicate notification: %w", err)
	}
	return false, nil
}

// CommitRefundCallback is CommitCallback for a notification about a refund:
// the recon_callbacks row (with its refund_no), then out (nil: nothing
// about the refund) through CommitRefundBatch's guarded writes, in one
// transaction; Duplicate for an event already handled; Lost or Stale, with
// nothing written, when the refund moved.
func (s *Store) CommitRefundCallback(ctx context.Context, out *recon.RefundOutcome, rec CallbackRecord, meta CommitMeta) (RefundCommitReport, error) {
	var outs []recon.RefundOutcome
	if out != nil {
		outs = []recon.RefundOutcome{*out}
	}
	rep, err := s.CommitRefundsCallback(ctx, outs, rec, meta)
	switch {
	case err != nil:
		return RefundCommitReport{}, err
	case len(rep.Refunds) == 1:
		return rep.Refunds[0], nil
	}
	return RefundCommitReport{Result: rep.Result, Current: rep.Current}, nil
}

// RefundsCallbackReport is CommitRefundsCallback's answer.
type RefundsCallbackReport struct {
	// Result is Duplicate (an event already handled: nothing written but
	// its delivery count), Lost or Stale (a refund of outs moved: nothing
	// at all written; Current is that refund as it is now), else Recorded,
	// with each outcome's report in Refunds.
	Result  CommitResult
	Current recon.Refund
	Refunds []RefundCommitReport
}

// CommitRefundsCallback is CommitRefundCallback for a notification decided
// about any number of refunds (an Alipay refund notification naming only
// its order, whose PENDING refunds were each looked up): the record and
// every outcome of outs in one transaction, each through
// CommitRefundBatch's guarded writes. When a refund's guard finds it moved,
// nothing at all is written: decide that refund again and call again.
func (s *Store) CommitRefundsCallback(ctx context.Context, outs []recon.RefundOutcome, rec CallbackRecord, meta CommitMeta) (RefundsCallbackReport, error) {
	ids := make([]int64, len(outs))
	for i, out := range outs {
		switch out.Action {
		case recon.ActionTransition, recon.ActionHold, recon.ActionReport:
		default:
			return RefundsCallbackReport{}, fmt.Errorf("commit notification %s/%s: nothing to commit for action %s", rec.Channel, rec.EventID, out.Action)
		}
		ids[i] = out.Refund.ID
	}
	reps := make([]RefundCommitReport, len(outs))
	dup, moved := false, -1
	_, err := s.commitRows(ctx, meta, ids,
		func(w *batchWriter) error {
			isNew, err := s.claimCallback(w.tx, rec)
			dup = err == nil && !isNew
			if err != nil || dup {
				return err
			}
			return w.loadRefundOrders(outs)
		},
		func(w *batchWriter, i int) (bool, error) {
			if dup {
				return true, nil
			}
			rep, ok, err := w.applyRefund(outs[i])
			reps[i] = rep
			if err == nil && !ok {
				moved = i
				return false, errCallbackMoved
			}
			return ok, err
		})
	switch {
	case errors.Is(err, errCallbackMoved):
		cur, err := s.movedRefundReport(ctx, outs[moved].Refund.ID)
		if err != nil {
			return RefundsCallbackReport{}, err
		}
		return RefundsCallbackReport{Result: cur.Result, Current: cur.Current}, nil
	case err != nil:
		return RefundsCallbackReport{}, fmt.Errorf("commit notification %s/%s: %w", rec.Channel, rec.EventID, err)
	case dup:
		return RefundsCallbackReport{Result: Duplicate}, nil
	}
	return RefundsCallbackReport{Result: Recorded, Refunds: reps}, nil
}

// CallbackHandled reports whether channel's notification eventID is
// already recorded with a handled outcome (anything but ORDER_UNKNOWN): a
// notification whose handling costs a lookup at the channel reads this
// first, so that a duplicate costs none.
func (s *Store) CallbackHandled(ctx context.Context, channel, eventID string) (bool, error) {
	var n int64
	if err := s.db.WithContext(ctx).Table("recon_callbacks").Where("channel = ? AND event_id = ? AND outcome <> ?",
		channel, eventID, recon.CallbackOrderUnknown).Count(&n).Error; err != nil {
		return false, fmt.Errorf("read notification %s/%s: %w", channel, eventID, err)
	}
	return n > 0, nil
}

// GetRefundByChannelID reads the refund whose channel_refund_id is id (a
// Stripe re_ id, by which Stripe's events name a refund).
func (s *Store) GetRefundByChannelID(ctx context.Context, id string) (recon.Refund, error) {
	if s.refunds != nil {
		return s.mappedGetRefund(s.db.WithContext(ctx), 0, s.refunds.txn, id)
	}
	return s.getRefund(s.db.WithContext(ctx), "channel_refund_id = ?", id)
}
