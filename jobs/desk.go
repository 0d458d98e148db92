package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/repo"
)

// DeskStore is what the Desk reads and writes.
type DeskStore interface {
	GetMismatch(ctx context.Context, id int64) (repo.MismatchRecord, error)
	GetOrder(ctx context.Context, id int64) (recon.Order, error)
	ResolveWithChange(ctx context.Context, id int64, out recon.Outcome, by, note string, meta repo.CommitMeta) error
}

// Desk is what a person does with one order: look it up now and see what a
// pass would decide (Check, for `recon check` and the console's "check
// now"), and the resolutions that change an order (Accept, CloseLocally).
type Desk struct {
	Store    DeskStore
	Channels map[string]Channel
	Policy   recon.Policy
	Clock    recon.Clock
}

// Check is a fresh lookup of one order and the decision a pass would take on
// it; nothing is written.
type Check struct {
	Order recon.Order
	// Lookup is the channel's answer; nil when LookupErr is set.
	Lookup    *recon.LookupResult
	LookupErr error
	Outcome   recon.Outcome
}

// ErrNoChannel means the order's channel is not configured here.
var ErrNoChannel = errors.New("the order's channel is not configured")

// ErrLookup wraps a failed lookup that stopped a change: the channel could
// not be asked, or its answer did not verify.
var ErrLookup = errors.New("the channel could not be asked")

func (d *Desk) now() recon.Clock {
	if d.Clock == nil {
		return recon.SystemClock{}
	}
	return d.Clock
}

// Check looks order o up now through its channel and decides as a pass
// would, writing nothing. It returns ErrNoChannel when o's channel is not
// configured; a failed lookup is in Check.LookupErr.
func (d *Desk) Check(ctx context.Context, o recon.Order) (Check, error) {
	ch, ok := d.Channels[o.Channel]
	if !ok {
		return Check{}, fmt.Errorf("check order %s: channel %q: %w", o.OrderNo, o.Channel, ErrNoChannel)
	}
	now := d.now().Now()
	c := Check{Order: o}
	res, err := ch.Lookup(ctx, o)
	if err != nil {
		c.LookupErr = err
		c.Outcome = recon.Failed(o, err.Error(), d.Policy, now)
		return c, nil
	}
	c.Lookup = &res
	c.Outcome = recon.Decide(o, res, d.Policy, now, ch.CanClose())
	return c, nil
}

// RefundCheck is a fresh lookup of one refund and the decision a pass
// would take on it; nothing is written.
type RefundCheck struct {
	Refund recon.Refund
	// Lookup is the channel's answer; nil when LookupErr is set.
	Lookup    *recon.RefundLookup
	LookupErr error
	Outcome   recon.RefundOutcome
}

// CheckRefund looks refund f up now through its channel and decides as a
// pass would, writing nothing. It returns ErrNoChannel when f's channel is
// not configured and channel.ErrNoRefundLookup when it cannot look refunds
// up; a failed lookup is in RefundCheck.LookupErr.
func (d *Desk) CheckRefund(ctx context.Context, f recon.Refund) (RefundCheck, error) {
	ch, ok := d.Channels[f.Channel]
	if !ok {
		return RefundCheck{}, fmt.Errorf("check refund %s: channel %q: %w", f.RefundNo, f.Channel, ErrNoChannel)
	}
	rl := refundLookupOf(ch)
	if rl == nil {
		return RefundCheck{}, fmt.Errorf("check refund %s: channel %q: %w", f.RefundNo, f.Channel, channel.ErrNoRefundLookup)
	}
	now := d.now().Now()
	c := RefundCheck{Refund: f}
	res, err := rl.LookupRefund(ctx, f)
	if err != nil {
		c.LookupErr = err
		c.Outcome = recon.RefundLookupFailed(f, err.Error(), d.Policy, now)
		return c, nil
	}
	c.Lookup = &res
	c.Outcome = recon.DecideRefund(f, res, d.Policy, now)
	return c, nil
}

// Accept resolves mismatch id by accepting what the order's channel says
// now: the order is looked up again and moved to the channel's final state
// through the guarded update, with its outbox and audit rows (source
// "console"), and the mismatch is resolved by `by` with note, all at once.
// It returns recon.ErrNotApplicable when the order is terminal or the
// channel's answer is not final, recon.ErrConflict when the order moved
// meanwhile, ErrLookup (with the cause) when the channel could not be asked.
func (d *Desk) Accept(ctx context.Context, id int64, by, note, source string) (Check, error) {
	o, err := d.orderOf(ctx, id)
	if err != nil {
		return Check{}, err
	}
	c, err := d.Check(ctx, o)
	if err != nil {
		return c, err
	}
	if c.LookupErr != nil {
		return c, fmt.Errorf("accept the channel's answer for mismatch %d: %w: %w", id, ErrLookup, c.LookupErr)
	}
	out, err := recon.Accept(o, *c.Lookup)
	if err != nil {
		return c, fmt.Errorf("accept the channel's answer for mismatch %d: %w", id, err)
	}
	return c, d.Store.ResolveWithChange(ctx, id, out, by, note, repo.CommitMeta{Source: source, Now: d.now().Now()})
}

// CloseLocally resolves mismatch id by closing its PENDING order without the
// channel (guarded update, outbox order.closed, audit row), at once. It
// returns recon.ErrNotApplicable when the order is terminal and
// recon.ErrConflict when it moved since it was read.
func (d *Desk) CloseLocally(ctx context.Context, id int64, by, note, source string) error {
	o, err := d.orderOf(ctx, id)
	if err != nil {
		return err
	}
	out, err := recon.CloseLocally(o)
	if err != nil {
		return fmt.Errorf("close the order of mismatch %d: %w", id, err)
	}
	return d.Store.ResolveWithChange(ctx, id, out, by, note, repo.CommitMeta{Source: source, Now: d.now().Now()})
}

func (d *Desk) orderOf(ctx context.Context, id int64) (recon.Order, error) {
	m, err := d.Store.GetMismatch(ctx, id)
	if err != nil {
		return recon.Order{}, err
	}
	return d.Store.GetOrder(ctx, m.OrderID)
}
