package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/repo"
)

// DefaultRefundLookupTimeout bounds the refund lookups of one notification
// when Callbacks.RefundLookupTimeout is 0: well inside the listener's
// callback.HandleTimeout, so that a failed lookup still makes the refund
// due and answers the channel.
const DefaultRefundLookupTimeout = 8 * time.Second

// claimWriteTimeout bounds the writes that follow lookups that used up the
// notification's time (making the refunds due).
const claimWriteTimeout = 5 * time.Second

// refundClaims is what a notification claiming refunds made decided about
// each refund it was looked up for, on the lookups' answers.
type refundClaims struct {
	refunds []recon.Refund
	answers []recon.RefundLookup
	outs    []recon.RefundOutcome
	ocs     []recon.CallbackOutcome
}

// handleRefundClaim is handle for a notification that a refund was made
// without being the refund's answer (channel.Notification.RefundClaim: an
// Alipay refund notification, whose refund_fee is the trade's refunded
// total). Like a statement line it is evidence, not a verdict (CONTRACT §8,
// §11): the refund it names (RefundNo), or else every PENDING refund of the
// order it names, is looked up at once through the channel's verified
// refund lookup, and only the answers are decided on
// (recon.DecideRefundCallback) and committed with the notification's record
// (repo.CommitRefundsCallback, source callback), as any refund
// notification's. A lookup that fails records nothing: its refund is made
// due for the next pass and the notification is refused, so that the
// channel retries.
func (c *Callbacks) handleRefundClaim(ctx context.Context, name string, n channel.Notification, rec repo.CallbackRecord, res CallbackResult,
	meta repo.CommitMeta, fail func(error) (CallbackResult, error)) (CallbackResult, error) {
	rec.RefundNo = n.RefundNo
	rl := c.RefundLookups[name]
	if rl == nil {
		c.logger().Warn("refund notification not confirmed: the channel has no refund lookup here; the next pass settles the refund",
			"channel", name, "event_id", n.EventID, "refund_no", n.RefundNo, "order_no", n.OrderNo)
		rec.Outcome = recon.CallbackIgnored
		return c.commit(ctx, nil, rec, meta, res, fail)
	}
	var claims refundClaims
	// A duplicate of a handled notification costs no lookup: committed
	// with nothing to write, it is only counted.
	handled, err := c.Store.CallbackHandled(ctx, name, n.EventID)
	if err != nil {
		return fail(err)
	}
	if !handled {
		claims.refunds, err = c.claimedRefunds(ctx, name, n)
		if errors.Is(err, recon.ErrNotFound) {
			return c.unknownRefund(ctx, rec, res, meta, fail, err)
		}
		if err != nil {
			return fail(err)
		}
		if len(claims.refunds) == 1 {
			rec.RefundNo, rec.OrderNo = claims.refunds[0].RefundNo, claims.refunds[0].OrderNo
			res.OrderNo = rec.OrderNo
		}
		if failed, err := c.lookUpClaims(ctx, name, rl, &claims); err != nil {
			res.Outcome, res.Status, res.Handled = CallbackLookupFailed, http.StatusServiceUnavailable, false
			return res, c.claimLookupFailed(ctx, name, n, failed, err, meta.Now)
		}
	}
	now := meta.Now
	for i, r := range claims.refunds {
		out, oc := recon.DecideRefundCallback(r, claims.answers[i], c.Policy, now)
		claims.outs, claims.ocs = append(claims.outs, out), append(claims.ocs, oc)
	}
	if len(claims.answers) == 1 {
		rec.PaidAt = claims.answers[0].SucceededAt
	}
	return settle(res, fail, "refunds of notification "+n.EventID, claims, recon.CombineCallbackOutcomes(claims.ocs),
		func(cl refundClaims, oc recon.CallbackOutcome) (repo.CommitResult, repo.RefundsCallbackReport, error) {
			rec.Outcome = oc
			var writes []recon.RefundOutcome
			for _, out := range cl.outs {
				if out.Action != recon.ActionNone {
					writes = append(writes, out)
				}
			}
			rep, err := c.Store.CommitRefundsCallback(ctx, writes, rec, meta)
			return rep.Result, rep, err
		},
		func(rep repo.RefundsCallbackReport, lost bool) (refundClaims, recon.CallbackOutcome) {
			// The refund that moved (rep.Current) is decided again as it
			// is now; the others keep their decisions.
			for i, r := range claims.refunds {
				if r.ID != rep.Current.ID {
					continue
				}
				if lost {
					claims.outs[i], claims.ocs[i] = recon.RefundCallbackLost(rep.Current, claims.answers[i])
				} else {
					claims.outs[i], claims.ocs[i] = recon.DecideRefundCallback(rep.Current, claims.answers[i], c.Policy, now)
				}
			}
			return claims, recon.CombineCallbackOutcomes(claims.ocs)
		})
}

// claimedRefunds reads the refunds a claim names: the refund of number
// n.RefundNo (of this channel, and of order n.OrderNo when the notification
// names one), else the PENDING refunds of order n.OrderNo. A refund or
// order recon cannot find is recon.ErrNotFound.
func (c *Callbacks) claimedRefunds(ctx context.Context, name string, n channel.Notification) ([]recon.Refund, error) {
	if n.RefundNo == "" {
		o, err := c.find(ctx, name, n)
		if err != nil {
			return nil, err
		}
		return c.Store.PendingRefundsOf(ctx, o)
	}
	r, err := c.Store.GetRefundByNo(ctx, n.RefundNo)
	if err == nil {
		err = refundOfChannel(r, name)
	}
	switch {
	case err != nil:
		return nil, err
	case n.OrderNo != "" && r.OrderNo != n.OrderNo:
		return nil, fmt.Errorf("refund %s is of order %q, not %q: %w", r.RefundNo, r.OrderNo, n.OrderNo, recon.ErrNotFound)
	}
	return []recon.Refund{r}, nil
}

// lookUpClaims looks every claimed refund up, one after the other (a
// notification names one refund, or the few PENDING ones of an order),
// within the lookup timeout. It returns the refunds whose lookup failed and
// the first failure.
func (c *Callbacks) lookUpClaims(ctx context.Context, name string, rl channel.RefundLookup, cl *refundClaims) ([]recon.Refund, error) {
	d := c.RefundLookupTimeout
	if d <= 0 {
		d = DefaultRefundLookupTimeout
	}
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cl.answers = make([]recon.RefundLookup, len(cl.refunds))
	var failed []recon.Refund
	var first error
	for i, r := range cl.refunds {
		a, err := rl.LookupRefund(lctx, r)
		if err != nil {
			failed = append(failed, r)
			if first == nil {
				first = fmt.Errorf("channel %s: refund lookup %s: %w", name, r.RefundNo, err)
			}
			continue
		}
		cl.answers[i] = a
	}
	return failed, first
}

// claimLookupFailed makes the refunds whose confirming lookup failed due
// for the next pass, keeping why, and returns the error the notification
// is refused with.
func (c *Callbacks) claimLookupFailed(ctx context.Context, name string, n channel.Notification, failed []recon.Refund, err error, now time.Time) error {
	c.logger().Warn("the lookup of a refund a notification shows made failed; the refund is due for the next pass",
		"channel", name, "event_id", n.EventID, "refunds", len(failed), "error", err)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimWriteTimeout)
	defer cancel()
	reason := "a channel notification shows it made; its lookup failed: " + err.Error()
	if _, derr := c.Store.MakeRefundsDue(wctx, failed, reason, now); derr != nil {
		return fmt.Errorf("notification %s: %w; making the refunds due: %w", n.EventID, err, derr)
	}
	return fmt.Errorf("notification %s: %w", n.EventID, err)
}
