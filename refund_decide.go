package recon

import (
	"fmt"
	"time"
)

// RefundOutcome is DecideRefund's verdict about one refund. Its actions are
// those of Outcome: TRANSITION (to To, enqueueing Event), RESCHEDULE (the
// next query at NextQueryAt; with a Mismatch, that mismatch is recorded and
// the refund still queried), HOLD (Mismatch recorded, no more automatic
// queries), REPORT (a terminal refund's mismatch) and NONE.
type RefundOutcome struct {
	Action      Action
	Refund      Refund        // the refund as read
	Lookup      *RefundLookup // nil when the lookup failed
	To          RefundStatus  // ActionTransition only
	Event       Event         // ActionTransition only
	Mismatch    *Mismatch
	NextQueryAt *time.Time // ActionReschedule only
	QueryError  string     // why the lookup failed, for last_query_error
}

// RefundEventFor returns the notification event announcing refund status s.
func RefundEventFor(s RefundStatus) Event {
	switch s {
	case RefundSucceeded:
		return EventRefundSucceeded
	case RefundFailed:
		return EventRefundFailed
	}
	return ""
}

// DecideRefund chooses what to do with refund r given the channel's verified
// answer l at time now (CONTRACT §10). A terminal refund is only verified
// (VerifyRefund). DecideRefund is pure.
func DecideRefund(r Refund, l RefundLookup, p Policy, now time.Time) RefundOutcome {
	if r.Status.Terminal() {
		return VerifyRefund(r, l)
	}
	out := RefundOutcome{Refund: r, Lookup: &l}
	switch l.Status {
	case RefundChannelSucceeded:
		if m := compareRefund(r, l); m != nil {
			out.Action, out.Mismatch = ActionHold, m
			return out
		}
		out.Action, out.To, out.Event = ActionTransition, RefundSucceeded, EventRefundSucceeded
		return out
	case RefundChannelFailed:
		out.Action, out.To, out.Event = ActionTransition, RefundFailed, EventRefundFailed
		return out
	case RefundChannelPending, RefundChannelNotFound, RefundChannelAbnormal:
		if p.MaxAge > 0 && now.Sub(r.CreatedAt) >= p.MaxAge {
			out.Action = ActionHold
			out.Mismatch = newRefundMismatch(MismatchRefundStuck, r, l,
				fmt.Sprintf("still %s at the channel after %s (max_age %s)", l.Status, now.Sub(r.CreatedAt).Round(time.Second), p.MaxAge))
			return out
		}
		out.Action = ActionReschedule
		next := NextRefundQueryAt(r, p, now)
		out.NextQueryAt = &next
		if l.Status == RefundChannelAbnormal {
			// Not final: the merchant must act at the channel, and the
			// refund may still succeed, so it stays queried.
			detail := "the channel reports the refund ABNORMAL: it needs the merchant's action at the channel"
			if l.Detail != "" {
				detail += " (" + CleanText(l.Detail) + ")"
			}
			out.Mismatch = newRefundMismatch(MismatchRefundAbnormal, r, l, detail)
		}
		return out
	}
	return RefundLookupFailed(r, fmt.Sprintf("channel returned unknown refund status %q", l.Status), p, now)
}

// RefundLookupFailed is the outcome of a refund lookup that failed after its
// retries, or whose answer did not verify: nothing moves, the error is kept
// and the refund is queried again later.
func RefundLookupFailed(r Refund, reason string, p Policy, now time.Time) RefundOutcome {
	next := NextRefundQueryAt(r, p, now)
	return RefundOutcome{Action: ActionReschedule, Refund: r, NextQueryAt: &next, QueryError: CleanText(reason)}
}

// VerifyRefund compares a terminal local refund with the channel's view. It
// never proposes a change, only a mismatch to report: a local FAILED refund
// the channel made is CHANNEL_REFUNDED_LOCAL_FAILED (the team may refund
// again and pay twice); a local SUCCEEDED refund the channel did not make is
// LOCAL_REFUNDED_CHANNEL_NOT.
func VerifyRefund(r Refund, l RefundLookup) RefundOutcome {
	out := RefundOutcome{Refund: r, Lookup: &l, Action: ActionNone}
	switch {
	case r.Status == RefundSucceeded && l.Status == RefundChannelSucceeded:
		out.Mismatch = compareRefund(r, l)
	case r.Status == RefundSucceeded:
		out.Mismatch = newRefundMismatch(MismatchLocalRefundedChannelNot, r, l,
			fmt.Sprintf("local SUCCEEDED, channel %s", l.Status))
	case r.Status == RefundFailed && l.Status == RefundChannelSucceeded:
		out.Mismatch = newRefundMismatch(MismatchChannelRefundedLocalFail, r, l,
			fmt.Sprintf("channel refunded %d %s, local FAILED: do not refund again", l.Amount, l.Currency))
	}
	if out.Mismatch != nil {
		out.Action = ActionReport
	}
	return out
}

// ClassifyRefundConflict judges a refund someone else moved first (current
// is the re-read row) against what the channel said. It returns nil when
// the winner agrees with the channel.
func ClassifyRefundConflict(current Refund, l RefundLookup) *Mismatch {
	if !current.Status.Terminal() {
		return nil
	}
	var want RefundStatus
	switch l.Status {
	case RefundChannelSucceeded:
		want = RefundSucceeded
	case RefundChannelFailed:
		want = RefundFailed
	}
	if want != "" && want != current.Status {
		return newRefundMismatch(MismatchStatusConflict, current, l,
			fmt.Sprintf("refund was set to %s by another writer; channel says %s", current.Status, l.Status))
	}
	if current.Status == RefundSucceeded && l.Status == RefundChannelSucceeded {
		return compareRefund(current, l)
	}
	return nil
}

// CheckRefundOrder judges a refund the channel made against the order it
// refunds: refunding an order that is not PAID locally, in another currency,
// or past what was paid (refundedBefore is the order's other succeeded
// refunds) is REFUND_MISMATCH. The channel's word still settles the refund;
// this row tells finance. It returns nil when the refund fits the order.
func CheckRefundOrder(o Order, refundedBefore int64, r Refund) *Mismatch {
	var detail string
	switch {
	case o.Status != StatusPaid:
		detail = fmt.Sprintf("refund of order %s, which is %s locally, not PAID", o.OrderNo, o.Status)
	case o.Currency != r.Currency:
		detail = fmt.Sprintf("refund in %s of order %s paid in %s", r.Currency, o.OrderNo, o.Currency)
	case refundedBefore+r.Amount > o.Amount:
		detail = fmt.Sprintf("refunds of order %s add up to %d, more than the %d paid (over by %d)",
			o.OrderNo, refundedBefore+r.Amount, o.Amount, refundedBefore+r.Amount-o.Amount)
	default:
		return nil
	}
	return &Mismatch{
		Kind: MismatchRefund, LocalStatus: o.Status, ChannelStatus: ChannelStatus(RefundChannelSucceeded),
		LocalAmount: o.Amount, ChannelAmount: refundedBefore + r.Amount,
		LocalCurrency: o.Currency, ChannelCurrency: r.Currency,
		ChannelTxnID: r.ChannelRefundID, Detail: detail, RefundNo: r.RefundNo,
	}
}

// NextRefundQueryAt returns when r should be queried next, from the same
// schedule as orders, its jitter derived from the refund.
func NextRefundQueryAt(r Refund, p Policy, now time.Time) time.Time {
	return scheduleAt("refund/", r.ID, r.QueryAttempts, p, now)
}

// compareRefund checks amount and currency of a succeeded answer against the
// refund. A missing currency is a mismatch: success is never assumed.
func compareRefund(r Refund, l RefundLookup) *Mismatch {
	switch {
	case l.Currency != r.Currency:
		return newRefundMismatch(MismatchRefundAmount, r, l,
			fmt.Sprintf("channel refunded in currency %q, local %q", l.Currency, r.Currency))
	case l.Amount != r.Amount:
		return newRefundMismatch(MismatchRefundAmount, r, l,
			fmt.Sprintf("channel refunded %d, local %d (difference %d)", l.Amount, r.Amount, l.Amount-r.Amount))
	}
	return nil
}

func newRefundMismatch(kind MismatchKind, r Refund, l RefundLookup, detail string) *Mismatch {
	id := l.ChannelRefundID
	if id == "" {
		id = r.ChannelRefundID
	}
	return &Mismatch{
		Kind:            kind,
		LocalStatus:     Status(r.Status),
		ChannelStatus:   ChannelStatus(l.Status),
		LocalAmount:     r.Amount,
		ChannelAmount:   l.Amount,
		LocalCurrency:   r.Currency,
		ChannelCurrency: l.Currency,
		ChannelTxnID:    id,
		Detail:          detail,
		RefundNo:        r.RefundNo,
	}
}
