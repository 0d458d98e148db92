package recon

import "time"

// CallbackOutcome is what one channel notification did (recon_callbacks.outcome).
type CallbackOutcome string

// The outcomes of a verified notification. All but CallbackOrderUnknown
// are answered as handled: the channel's retrying cannot change them.
const (
	// CallbackSettled moved the order out of PENDING.
	CallbackSettled CallbackOutcome = "SETTLED"
	// CallbackMismatch recorded a mismatch: the notification's facts
	// disagree with the order (another amount or currency, or a terminal
	// order the channel sees otherwise).
	CallbackMismatch CallbackOutcome = "MISMATCH"
	// CallbackUnchanged changed nothing: the channel reports no final
	// state yet, or the order already agrees with it.
	CallbackUnchanged CallbackOutcome = "UNCHANGED"
	// CallbackOrderUnknown is a notification for an order recon cannot
	// find (yet): refused, so the channel retries; a retry is handled as
	// new once the order exists.
	CallbackOrderUnknown CallbackOutcome = "ORDER_UNKNOWN"
	// CallbackIgnored is a verified notification of an event recon does
	// not act on (a Stripe charge event, an Alipay notification without a
	// trade status).
	CallbackIgnored CallbackOutcome = "IGNORED"
)

// CallbackOutcomes lists every outcome, in the order pages show them.
var CallbackOutcomes = []CallbackOutcome{CallbackSettled, CallbackMismatch, CallbackUnchanged, CallbackOrderUnknown, CallbackIgnored}

// DecideCallback is Decide for a channel's verified notification r about
// order o. A notification is the channel's word like a lookup answer, with
// two differences: a notification that the order is not final yet (PENDING,
// NOT_FOUND) changes nothing, not even the query schedule, since recon's
// own lookups keep their pace; and a terminal order is only verified (a
// callback never moves it). The returned outcome's Action is ActionNone
// when nothing is to be written about the order.
func DecideCallback(o Order, r LookupResult, p Policy, now time.Time) (Outcome, CallbackOutcome) {
	if o.Status.Terminal() {
		out := Verify(o, r)
		if out.Action == ActionReport {
			return out, CallbackMismatch
		}
		return out, CallbackUnchanged
	}
	if r.Status != ChannelPaid && r.Status != ChannelFailed && r.Status != ChannelClosed {
		return Outcome{Action: ActionNone, Order: o, Lookup: &r}, CallbackUnchanged
	}
	out := Decide(o, r, p, now, false)
	switch out.Action {
	case ActionTransition:
		return out, CallbackSettled
	case ActionHold:
		return out, CallbackMismatch
	}
	return Outcome{Action: ActionNone, Order: o, Lookup: &r}, CallbackUnchanged
}

// CallbackLost is the outcome of a notification about an order that
// another writer (a lookup, another notification) moved first: current is
// the order as it is now. If the winner disagrees with the channel it is a
// STATUS_CONFLICT (or an amount, currency) mismatch to report (CONTRACT §1);
// otherwise nothing is to be written.
func CallbackLost(current Order, r LookupResult) (Outcome, CallbackOutcome) {
	if m := ClassifyConflict(current, r); m != nil {
		return Outcome{Action: ActionReport, Order: current, Lookup: &r, Mismatch: m}, CallbackMismatch
	}
	return Outcome{Action: ActionNone, Order: current, Lookup: &r}, CallbackUnchanged
}

// DecideRefundCallback is DecideRefund for a channel's verified
// notification l about refund r, as DecideCallback is for orders: a final
// answer (SUCCEEDED, FAILED) decides as a lookup's does; one that is not
// final changes nothing, the lookups keep their pace (an ABNORMAL refund
// is reported by them); a terminal refund is only verified.
func DecideRefundCallback(r Refund, l RefundLookup, p Policy, now time.Time) (RefundOutcome, CallbackOutcome) {
	if r.Status.Terminal() {
		out := VerifyRefund(r, l)
		if out.Action == ActionReport {
			return out, CallbackMismatch
		}
		return out, CallbackUnchanged
	}
	if l.Status != RefundChannelSucceeded && l.Status != RefundChannelFailed {
		return RefundOutcome{Action: ActionNone, Refund: r, Lookup: &l}, CallbackUnchanged
	}
	out := DecideRefund(r, l, p, now)
	switch out.Action {
	case ActionTransition:
		return out, CallbackSettled
	case ActionHold:
		return out, CallbackMismatch
	}
	return RefundOutcome{Action: ActionNone, Refund: r, Lookup: &l}, CallbackUnchanged
}

// RefundCallbackLost is CallbackLost for a refund another writer moved
// first (current is the refund as it is now).
func RefundCallbackLost(current Refund, l RefundLookup) (RefundOutcome, CallbackOutcome) {
	if m := ClassifyRefundConflict(current, l); m != nil {
		return RefundOutcome{Action: ActionReport, Refund: current, Lookup: &l, Mismatch: m}, CallbackMismatch
	}
	return RefundOutcome{Action: ActionNone, Refund: current, Lookup: &l}, CallbackUnchanged
}

// CombineCallbackOutcomes is the one outcome recorded for a notification
// decided about several refunds (an Alipay refund notification that names
// only its order, each of whose PENDING refunds was looked up): MISMATCH if
// any of them is one (finance must look), else SETTLED if any refund moved,
// else UNCHANGED (also for none).
func CombineCallbackOutcomes(ocs []CallbackOutcome) CallbackOutcome {
	out := CallbackUnchanged
	for _, oc := range ocs {
		switch oc {
		case CallbackMismatch:
			return CallbackMismatch
		case CallbackSettled:
			out = CallbackSettled
		}
	}
	return out
}
