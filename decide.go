package recon

import (
	"fmt"
	"hash/fnv"
	"time"
)

// Policy is the part of the configuration Decide needs.
type Policy struct {
	// MaxAge is how old a still-pending order may get before it expires.
	// Zero disables expiry.
	MaxAge time.Duration
	// Schedule is the wait before each next query; the last step repeats.
	Schedule []time.Duration
	// Jitter spreads each wait by up to ±Jitter of itself (0.1 = ±10%) so a
	// backlog created together is not queried together again.
	Jitter float64
	// CloseOnExpiry closes an expired order at the channel when it can.
	CloseOnExpiry bool
}

// Action is what the job does with an order after a lookup.
type Action string

// The actions Decide chooses between.
const (
	// ActionTransition moves the order to Outcome.To and enqueues Outcome.Event.
	ActionTransition Action = "TRANSITION"
	// ActionReschedule counts the query and sets the next one from the schedule.
	ActionReschedule Action = "RESCHEDULE"
	// ActionHold records Outcome.Mismatch and stops auto-querying the order.
	ActionHold Action = "HOLD"
	// ActionClose asks the channel to close an expired order; the job then
	// looks it up again and decides with canClose false.
	ActionClose Action = "CLOSE"
	// ActionReport records Outcome.Mismatch about a terminal order and
	// changes nothing else (verification).
	ActionReport Action = "REPORT"
	// ActionNone means the local terminal state agrees with the channel.
	ActionNone Action = "NONE"
)

// Outcome is Decide's verdict about one order.
type Outcome struct {
	Action      Action
	Order       Order         // the order as read
	Lookup      *LookupResult // nil when the lookup failed
	To          Status        // ActionTransition only
	Event       Event         // ActionTransition only
	Mismatch    *Mismatch     // ActionHold, ActionReport
	NextQueryAt *time.Time    // ActionReschedule only; nil otherwise
	QueryError  string        // why the lookup failed, for last_query_error
}

// Decide chooses what to do with order o given the channel's verified answer
// r at time now. canClose says whether the order's channel has a close API and
// the order has not just been closed there. Decide is pure.
func Decide(o Order, r LookupResult, p Policy, now time.Time, canClose bool) Outcome {
	if o.Status.Terminal() {
		return Verify(o, r)
	}
	out := Outcome{Order: o, Lookup: &r}
	switch r.Status {
	case ChannelPaid:
		if m := comparePaid(o, r); m != nil {
			out.Action, out.Mismatch = ActionHold, m
			return out
		}
		return transition(out, StatusPaid)
	case ChannelFailed:
		return transition(out, StatusFailed)
	case ChannelClosed:
		return transition(out, StatusClosed)
	case ChannelPending, ChannelNotFound:
		if !Expired(o, p, now) {
			out.Action = ActionReschedule
			next := NextQueryAt(o, p, now)
			out.NextQueryAt = &next
			return out
		}
		if r.Status == ChannelPending && p.CloseOnExpiry && canClose {
			out.Action = ActionClose
			return out
		}
		kind := MismatchStuckPending
		if r.Status == ChannelNotFound {
			kind = MismatchNotFoundAtChannel
		}
		out.Action = ActionHold
		out.Mismatch = newMismatch(kind, o, r,
			fmt.Sprintf("still %s at the channel after %s (max_age %s)", r.Status, now.Sub(o.CreatedAt).Round(time.Second), p.MaxAge))
		return out
	}
	// An adapter that returns an unknown status has a bug; treat it like a
	// failed lookup so nothing moves.
	return Failed(o, fmt.Sprintf("channel returned unknown status %q", r.Status), p, now)
}

// Failed is the outcome of a lookup that failed after its retries, or whose
// response did not verify: nothing moves, the error is kept and the order is
// queried again later.
func Failed(o Order, reason string, p Policy, now time.Time) Outcome {
	next := NextQueryAt(o, p, now)
	// The reason often quotes the channel: it is stored and printed clean.
	return Outcome{Action: ActionReschedule, Order: o, NextQueryAt: &next, QueryError: CleanText(reason)}
}

// Verify compares a terminal local order with the channel's view. It never
// proposes a change to the order, only a mismatch to report.
func Verify(o Order, r LookupResult) Outcome {
	out := Outcome{Order: o, Lookup: &r, Action: ActionNone}
	switch {
	case o.Status == StatusPaid && r.Status == ChannelPaid:
		out.Mismatch = comparePaid(o, r)
	case o.Status == StatusPaid:
		out.Mismatch = newMismatch(MismatchLocalPaidChannelUnpaid, o, r,
			fmt.Sprintf("local PAID, channel %s", r.Status))
	case r.Status == ChannelPaid:
		out.Mismatch = newMismatch(MismatchChannelPaidLocalUnpaid, o, r,
			fmt.Sprintf("channel PAID, local %s", o.Status))
	}
	if out.Mismatch != nil {
		out.Action = ActionReport
	}
	return out
}

// ClassifyConflict judges an order someone else moved first (current is the
// re-read row) against what the channel told us. It returns nil when the
// winner agrees with the channel.
func ClassifyConflict(current Order, r LookupResult) *Mismatch {
	if !current.Status.Terminal() {
		return nil
	}
	if want := statusFor(r.Status); want != "" && want != current.Status {
		return newMismatch(MismatchStatusConflict, current, r,
			fmt.Sprintf("order was set to %s by another writer; channel says %s", current.Status, r.Status))
	}
	if current.Status == StatusPaid && r.Status == ChannelPaid {
		return comparePaid(current, r)
	}
	return nil
}

// Expired reports whether o is older than the policy's max age.
func Expired(o Order, p Policy, now time.Time) bool {
	return p.MaxAge > 0 && now.Sub(o.CreatedAt) >= p.MaxAge
}

// NextQueryAt returns when o should be queried next: the schedule step for
// its attempt count (the last step repeats), spread by a jitter derived from
// the order id and attempt so that it is the same on every replica.
func NextQueryAt(o Order, p Policy, now time.Time) time.Time {
	return scheduleAt("", o.ID, o.QueryAttempts, p, now)
}

// scheduleAt is the next query time of item id (of a kind: "" for orders)
// after attempts queries.
func scheduleAt(kind string, id int64, attempts int, p Policy, now time.Time) time.Time {
	if len(p.Schedule) == 0 {
		return now
	}
	i := attempts
	if i >= len(p.Schedule) {
		i = len(p.Schedule) - 1
	}
	if i < 0 {
		i = 0
	}
	wait := p.Schedule[i]
	if p.Jitter > 0 {
		h := fnv.New64a()
		fmt.Fprintf(h, "%s%d/%d", kind, id, attempts)
		f := float64(h.Sum64()%20001)/10000 - 1 // [-1, 1]
		wait += time.Duration(f * p.Jitter * float64(wait))
	}
	return now.Add(wait)
}

func transition(out Outcome, to Status) Outcome {
	out.Action, out.To, out.Event = ActionTransition, to, EventFor(to)
	return out
}

// comparePaid checks amount and currency of a paid answer against the order.
// A missing currency is a mismatch: paid is never assumed.
func comparePaid(o Order, r LookupResult) *Mismatch {
	if r.Currency != o.Currency {
		return newMismatch(MismatchCurrency, o, r,
			fmt.Sprintf("channel currency %q, local %q", r.Currency, o.Currency))
	}
	if r.Amount != o.Amount {
		return newMismatch(MismatchAmount, o, r,
			fmt.Sprintf("channel amount %d, local %d (difference %d)", r.Amount, o.Amount, r.Amount-o.Amount))
	}
	return nil
}

func statusFor(c ChannelStatus) Status {
	switch c {
	case ChannelPaid:
		return StatusPaid
	case ChannelFailed:
		return StatusFailed
	case ChannelClosed:
		return StatusClosed
	}
	return ""
}

func newMismatch(kind MismatchKind, o Order, r LookupResult, detail string) *Mismatch {
	txn := r.TxnID
	if txn == "" {
		txn = o.ChannelTxnID
	}
	return &Mismatch{
		Kind:            kind,
		LocalStatus:     o.Status,
		ChannelStatus:   r.Status,
		LocalAmount:     o.Amount,
		ChannelAmount:   r.Amount,
		LocalCurrency:   o.Currency,
		ChannelCurrency: r.Currency,
		ChannelTxnID:    txn,
		Detail:          detail,
	}
}
