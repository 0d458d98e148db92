package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/repo"
)

// A refund goes through a pass as an order does (items.go): these are the
// few steps that differ, its lookup, decision, counters and conflict
// judgement.

// RefundObserver is implemented by observers that also count refund
// transitions (Metrics does).
type RefundObserver interface {
	RefundTransition(to recon.RefundStatus)
}

// refundLookupOf returns ch's refund lookup, or nil when its adapter has
// none (channel.RefundLookup is optional, like channel.Closer).
func refundLookupOf(ch Channel) channel.RefundLookup {
	rl, ok := ch.(channel.RefundLookup)
	if !ok {
		return nil
	}
	if c, ok := ch.(interface{ CanLookupRefund() bool }); ok && !c.CanLookupRefund() {
		return nil
	}
	return rl
}

// processRefund is process for a refund.
func (p *pass) processRefund(ctx context.Context, f recon.Refund) error {
	r := p.r
	p.refundsScanned.Add(1)
	log := r.Logger.With("refund_no", f.RefundNo, "refund_id", f.ID, "order_no", f.OrderNo, "channel", f.Channel)
	ch, ok := p.channelFor("refund", f.Channel, f.Validate(), log)
	if !ok {
		return nil
	}
	rl := refundLookupOf(ch)
	if rl == nil {
		p.skipUnsupported(f.Channel)
		return nil
	}
	it := commitItem{began: time.Now()}
	start := time.Now()
	lookup, lerr := rl.LookupRefund(ctx, f)
	if r.Observer != nil && !errors.Is(lerr, channel.ErrPaused) {
		r.Observer.Lookup(f.Channel, answerOutcome(string(lookup.Status), lerr), time.Since(start))
	}
	now := r.Clock.Now()
	var out recon.RefundOutcome
	switch {
	case lerr != nil && ctx.Err() != nil:
		return nil // abandoned at shutdown: nothing is written
	case errors.Is(lerr, channel.ErrPaused):
		p.deferOn(f.Channel)
		return nil
	case errors.Is(lerr, channel.ErrNoRefundLookup):
		p.skipUnsupported(f.Channel)
		return nil
	case lerr != nil && f.Status.Terminal():
		p.errs.Add(1)
		log.Warn("refund verification lookup failed", "error", lerr)
		p.processed(it.began)
		return nil
	case lerr != nil:
		p.errs.Add(1)
		log.Debug("refund lookup failed", "error", lerr)
		out = recon.RefundLookupFailed(f, lerr.Error(), r.Policy, now)
	default:
		out = recon.DecideRefund(f, lookup, r.Policy, now)
	}
	if out.Action == recon.ActionNone {
		p.processed(it.began)
		return nil
	}
	it.refund = &out
	return p.handOver(ctx, it)
}

// skipUnsupported counts a refund of a channel that cannot look refunds up:
// skipped, not an error, and said once per channel and pass.
func (p *pass) skipUnsupported(name string) {
	p.skipped.Add(1)
	p.refundsUnsupported.Add(1)
	if _, seen := p.noRefunds.LoadOrStore(name, true); !seen {
		p.r.Logger.Warn("skipping the refunds of a channel whose adapter cannot look refunds up; they stay due",
			"channel", name)
	}
}

// settleRefund is settle for a refund.
func (p *pass) settleRefund(ctx context.Context, out recon.RefundOutcome, rep repo.RefundCommitReport, meta repo.CommitMeta, attempt int) (*recon.RefundOutcome, error) {
	f := out.Refund
	switch rep.Result {
	case repo.Applied, repo.Recorded:
		p.countRefund(out, rep.NewMismatch)
		if rep.OrderMismatch != nil {
			p.noteMismatch(refundOrder(f), *rep.OrderMismatch, rep.NewMismatch)
		}
		p.r.Logger.Debug("committed", "refund_no", f.RefundNo, "refund_id", f.ID, "action", out.Action, "to", out.To)
	case repo.Lost:
		p.conflicts.Add(1)
		if p.r.Observer != nil {
			p.r.Observer.Conflict()
		}
		if out.Lookup == nil {
			return nil, nil
		}
		if m := recon.ClassifyRefundConflict(rep.Current, *out.Lookup); m != nil {
			isNew, err := p.r.Store.RecordRefundMismatch(ctx, rep.Current, *m, meta)
			if err != nil {
				return nil, err
			}
			p.noteMismatch(refundOrder(rep.Current), *m, isNew)
		}
		p.r.Logger.Debug("refund settled by another writer", "refund_no", f.RefundNo, "now", rep.Current.Status)
	case repo.Stale:
		if attempt >= 3 || out.Lookup == nil {
			p.conflicts.Add(1)
			return nil, nil
		}
		next := recon.DecideRefund(rep.Current, *out.Lookup, p.r.Policy, p.r.Clock.Now())
		if next.Action == recon.ActionNone {
			return nil, nil
		}
		return &next, nil
	}
	return nil, nil
}

// countRefund counts what a refund outcome did (or would do, in a dry run).
func (p *pass) countRefund(out recon.RefundOutcome, newMismatch bool) {
	switch out.Action {
	case recon.ActionTransition:
		if out.To == recon.RefundSucceeded {
			p.refundsSucceeded.Add(1)
		} else {
			p.refundsFailed.Add(1)
		}
		if o, ok := p.r.Observer.(RefundObserver); ok && !p.w.DryRun {
			o.RefundTransition(out.To)
		}
		return
	case recon.ActionReschedule:
		p.refundsRescheduled.Add(1)
	}
	if out.Mismatch != nil {
		p.noteMismatch(refundOrder(out.Refund), *out.Mismatch, newMismatch)
	}
}

func (p *pass) planRefund(out recon.RefundOutcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.planned) < maxPlanned {
		p.planned = append(p.planned, Planned{OrderNo: out.Refund.OrderNo, RefundNo: out.Refund.RefundNo, Action: out.Action,
			To: recon.Status(out.To), Detail: planDetail(out.Mismatch, out.QueryError, out.NextQueryAt)})
	}
}

// refundOrder is the order a refund's findings name.
func refundOrder(f recon.Refund) recon.Order {
	return recon.Order{ID: f.OrderID, OrderNo: f.OrderNo, MerchantID: f.MerchantID, Channel: f.Channel}
}

// ProcessRefund looks one refund up now and applies the decision through
// the same path as a pass (guarded commit, conflict classification), for
// `recon check --refund --commit`. A terminal refund is verified only,
// never changed. It records no recon_runs row.
func (r *Reconciler) ProcessRefund(ctx context.Context, f recon.Refund) (Result, error) {
	return r.processOne(ctx, item{refund: &f})
}
