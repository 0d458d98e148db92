package recon

import (
	"errors"
	"fmt"
)

// ErrNotApplicable means a manual resolution does not fit the order as it is
// now (a terminal order, or a channel answer that is not terminal).
var ErrNotApplicable = errors.New("resolution does not apply to this order")

// Accept is the outcome of a person accepting the channel's fresh answer r
// about order o: the order moves to the channel's terminal state, even where
// the amount or currency differ (that is the person's call, kept with their
// note). Only a PENDING order can be moved: a terminal order belongs to the
// payment service, and recon never changes it.
func Accept(o Order, r LookupResult) (Outcome, error) {
	if o.Status != StatusPending {
		return Outcome{}, fmt.Errorf("%w: order is %s, and recon never changes a terminal order", ErrNotApplicable, o.Status)
	}
	to := statusFor(r.Status)
	if to == "" {
		return Outcome{}, fmt.Errorf("%w: the channel says %s, not a final state to accept", ErrNotApplicable, r.Status)
	}
	return transition(Outcome{Order: o, Lookup: &r}, to), nil
}

// CloseLocally is the outcome of a person closing PENDING order o without the
// channel (an order the channel never knew or keeps pending): CLOSED, with
// its order.closed notification.
func CloseLocally(o Order) (Outcome, error) {
	if o.Status != StatusPending {
		return Outcome{}, fmt.Errorf("%w: order is %s, and recon never changes a terminal order", ErrNotApplicable, o.Status)
	}
	return transition(Outcome{Order: o}, StatusClosed), nil
}
