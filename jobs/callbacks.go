package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/repo"
)

// SourceCallback is the source of the commits a channel notification makes
// (order_transitions.source).
const SourceCallback = "callback"

// Callback answers beyond the recorded outcomes (recon_callbacks_total's
// outcome label): a duplicate, a notification that did not verify or could
// not be read, and a failure of recon's own (database down).
const (
	CallbackDuplicate    = "duplicate"
	CallbackBadSignature = "bad_signature"
	CallbackMalformed    = "malformed"
	CallbackError        = "error"
	CallbackNoChannel    = "unknown_channel"
	// CallbackLookupFailed is a notification that a refund was made whose
	// confirming lookup failed: nothing recorded, the refund made due for
	// the next pass, the notification refused so that the channel retries.
	CallbackLookupFailed = "lookup_failed"
)

// CallbackStore is what receiving notifications needs of repo.
type CallbackStore interface {
	GetOrderByNo(ctx context.Context, orderNo string) (recon.Order, error)
	GetOrderByTxnID(ctx context.Context, txnID string) (recon.Order, error)
	CommitCallback(ctx context.Context, out *recon.Outcome, rec repo.CallbackRecord, meta repo.CommitMeta) (repo.CommitReport, error)
	GetRefundByNo(ctx context.Context, refundNo string) (recon.Refund, error)
	GetRefundByChannelID(ctx context.Context, id string) (recon.Refund, error)
	CommitRefundCallback(ctx context.Context, out *recon.RefundOutcome, rec repo.CallbackRecord, meta repo.CommitMeta) (repo.RefundCommitReport, error)
	CommitRefundsCallback(ctx context.Context, outs []recon.RefundOutcome, rec repo.CallbackRecord, meta repo.CommitMeta) (repo.RefundsCallbackReport, error)
	CallbackHandled(ctx context.Context, channel, eventID string) (bool, error)
	PendingRefundsOf(ctx context.Context, o recon.Order) ([]recon.Refund, error)
	MakeRefundsDue(ctx context.Context, refunds []recon.Refund, reason string, now time.Time) (int64, error)
}

var _ CallbackStore = (*repo.Store)(nil)

// CallbackObserver receives every notification's answer, for metrics.
type CallbackObserver interface {
	// Callback is one notification: outcome is a recon.CallbackOutcome in
	// lower case or one of the Callback* answers above.
	Callback(channel, outcome string, d time.Duration)
}

// Callbacks receives the channels' notifications: verify (the channel's
// adapter), find the order, decide (recon.DecideCallback) and commit through
// the guarded path with the notification's record (repo.CommitCallback).
type Callbacks struct {
	Store CallbackStore
	// Notifiers are the channels that receive notifications, by name.
	Notifiers map[string]channel.Notifier
	// RefundLookups are the channels' verified refund lookups with their
	// rate limits and retries (the *channel.Guarded of the passes), by
	// name: a notification that only claims a refund made (an Alipay
	// refund notification) is settled on their answer alone. A channel
	// without one leaves such notifications to the next pass.
	RefundLookups map[string]channel.RefundLookup
	// RefundLookupTimeout bounds the lookups of one notification, so that
	// its answer and the failure path fit in the listener's timeout
	// (default DefaultRefundLookupTimeout).
	RefundLookupTimeout time.Duration
	Policy              recon.Policy
	Clock               recon.Clock
	Logger              *slog.Logger
	Observer            CallbackObserver
}

// CallbackResult is what became of one notification.
type CallbackResult struct {
	// Handled: answer the channel that the notification is taken (it
	// stops sending it). Otherwise it is refused and the channel retries.
	Handled bool
	// Outcome is the recorded outcome or one of the Callback* answers.
	Outcome string
	// Status is a refusal's HTTP class: 400 malformed, 401 bad signature,
	// 404 unknown channel, 503 order not visible yet or recon's own
	// failure (worth the channel's retry).
	Status int
	// EventID and OrderNo of a verified notification.
	EventID, OrderNo string
}

// maxCallbackTries bounds the decisions of one notification whose order
// another writer keeps moving: each try is one guarded transaction that
// wrote nothing.
const maxCallbackTries = 3

// Handle takes one notification for channel name: the raw body and the
// request's headers. Nothing is read from the database before the
// notification verifies. Errors of recon's own are logged and returned as
// a refused result (the channel retries); the error is for the caller's
// logs only, never for the answer.
func (c *Callbacks) Handle(ctx context.Context, name string, body []byte, header http.Header) (CallbackResult, error) {
	start := time.Now()
	res, err := c.handle(ctx, name, body, header)
	if c.Observer != nil {
		c.Observer.Callback(name, res.Outcome, time.Since(start))
	}
	log := c.logger().With("channel", name, "outcome", res.Outcome, "event_id", res.EventID, "order_no", res.OrderNo)
	switch {
	case err != nil && res.Outcome == CallbackError:
		log.Error("notification failed", "err", err)
	case err != nil:
		log.Warn("notification refused", "err", err)
	default:
		log.Debug("notification handled")
	}
	return res, err
}

func (c *Callbacks) handle(ctx context.Context, name string, body []byte, header http.Header) (CallbackResult, error) {
	nt, ok := c.Notifiers[name]
	if !ok {
		return CallbackResult{Outcome: CallbackNoChannel, Status: http.StatusNotFound}, fmt.Errorf("no channel %q receives notifications", name)
	}
	n, err := nt.VerifyNotification(ctx, body, header)
	if err != nil {
		if errors.Is(err, channel.ErrBadSignature) {
			return CallbackResult{Outcome: CallbackBadSignature, Status: http.StatusUnauthorized}, err
		}
		if errors.Is(err, channel.ErrMalformed) {
			return CallbackResult{Outcome: CallbackMalformed, Status: http.StatusBadRequest}, err
		}
		return CallbackResult{Outcome: CallbackError, Status: http.StatusServiceUnavailable}, err
	}
	if err := n.Validate(); err != nil {
		return CallbackResult{Outcome: CallbackMalformed, Status: http.StatusBadRequest}, err
	}
	now := c.Clock.Now()
	rec := repo.CallbackRecord{Channel: name, EventID: n.EventID, OrderNo: n.OrderNo, PaidAt: n.Result.PaidAt, ReceivedAt: now}
	res := CallbackResult{EventID: n.EventID, OrderNo: n.OrderNo}
	fail := func(err error) (CallbackResult, error) {
		res.Outcome, res.Status, res.Handled = CallbackError, http.StatusServiceUnavailable, false
		return res, err
	}
	meta := repo.CommitMeta{Source: SourceCallback, Now: now}
	if n.Ignored {
		rec.Outcome = recon.CallbackIgnored
		return c.commit(ctx, nil, rec, meta, res, fail)
	}
	if n.RefundClaim {
		return c.handleRefundClaim(ctx, name, n, rec, res, meta, fail)
	}
	if n.Refund != nil {
		return c.handleRefund(ctx, name, n, rec, res, meta, fail)
	}
	o, err := c.find(ctx, name, n)
	if errors.Is(err, recon.ErrNotFound) {
		rec.Outcome = recon.CallbackOrderUnknown
		res, cerr := c.commit(ctx, nil, rec, meta, res, fail)
		if cerr != nil || res.Outcome == CallbackDuplicate {
			return res, cerr
		}
		res.Handled, res.Status = false, http.StatusServiceUnavailable
		return res, fmt.Errorf("notification %s: %w", n.EventID, err)
	}
	if err != nil {
		return fail(err)
	}
	res.OrderNo, rec.OrderNo, rec.OrderID = o.OrderNo, o.OrderNo, o.ID
	out, oc := recon.DecideCallback(o, n.Result, c.Policy, now)
	return settle(res, fail, "order "+o.OrderNo, out, oc,
		func(out recon.Outcome, oc recon.CallbackOutcome) (repo.CommitResult, recon.Order, error) {
			rec.Outcome = oc
			var op *recon.Outcome
			if out.Action != recon.ActionNone {
				op = &out
			}
			rep, err := c.Store.CommitCallback(ctx, op, rec, meta)
			return rep.Result, rep.Current, err
		},
		func(cur recon.Order, lost bool) (recon.Outcome, recon.CallbackOutcome) {
			if lost {
				return recon.CallbackLost(cur, n.Result)
			}
			return recon.DecideCallback(cur, n.Result, c.Policy, now)
		})
}

// settle commits a notification's first decision about its subject (an
// order, a refund) and, when another writer moved the subject first, the
// decision made again on it as it is now (lost: no longer pending), at most
// maxCallbackTries times.
func settle[S, O any](res CallbackResult, fail func(error) (CallbackResult, error), what string, out O, oc recon.CallbackOutcome,
	commit func(O, recon.CallbackOutcome) (repo.CommitResult, S, error), again func(cur S, lost bool) (O, recon.CallbackOutcome)) (CallbackResult, error) {
	for try := 1; ; try++ {
		result, cur, err := commit(out, oc)
		if err != nil {
			return fail(err)
		}
		switch result {
		case repo.Duplicate:
			res.Handled, res.Outcome = true, CallbackDuplicate
			return res, nil
		case repo.Lost, repo.Stale:
			if try >= maxCallbackTries {
				return fail(fmt.Errorf("notification %s: %s kept moving under %d tries", res.EventID, what, try))
			}
			out, oc = again(cur, result == repo.Lost)
			continue
		}
		res.Handled, res.Outcome = true, strings.ToLower(string(oc))
		return res, nil
	}
}

// refundOfChannel is nil for a refund of channel name, and
// recon.ErrNotFound, saying why, for another channel's: a channel's
// notification never settles another channel's refund.
func refundOfChannel(r recon.Refund, name string) error {
	if r.Channel == name {
		return nil
	}
	return fmt.Errorf("refund %s is of channel %q: %w", r.RefundNo, r.Channel, recon.ErrNotFound)
}

// handleRefund is handle for a notification about a refund: find it by
// its channel key or refund number, decide (recon.DecideRefundCallback) and
// commit with the record (repo.CommitRefundCallback).
func (c *Callbacks) handleRefund(ctx context.Context, name string, n channel.Notification, rec repo.CallbackRecord, res CallbackResult,
	meta repo.CommitMeta, fail func(error) (CallbackResult, error)) (CallbackResult, error) {
	rec.RefundNo, rec.PaidAt = n.RefundNo, n.Refund.SucceededAt
	var r recon.Refund
	err := recon.ErrNotFound
	if n.RefundKey != "" {
		r, err = c.Store.GetRefundByChannelID(ctx, n.RefundKey)
	}
	if errors.Is(err, recon.ErrNotFound) && n.RefundNo != "" {
		r, err = c.Store.GetRefundByNo(ctx, n.RefundNo)
	}
	if err == nil {
		err = refundOfChannel(r, name)
	}
	if errors.Is(err, recon.ErrNotFound) {
		return c.unknownRefund(ctx, rec, res, meta, fail, err)
	}
	if err != nil {
		return fail(err)
	}
	rec.RefundNo, rec.OrderNo = r.RefundNo, r.OrderNo
	now := meta.Now
	out, oc := recon.DecideRefundCallback(r, *n.Refund, c.Policy, now)
	return settle(res, fail, "refund "+r.RefundNo, out, oc,
		func(out recon.RefundOutcome, oc recon.CallbackOutcome) (repo.CommitResult, recon.Refund, error) {
			rec.Outcome = oc
			var op *recon.RefundOutcome
			if out.Action != recon.ActionNone {
				op = &out
			}
			rep, err := c.Store.CommitRefundCallback(ctx, op, rec, meta)
			return rep.Result, rep.Current, err
		},
		func(cur recon.Refund, lost bool) (recon.RefundOutcome, recon.CallbackOutcome) {
			if lost {
				return recon.RefundCallbackLost(cur, *n.Refund)
			}
			return recon.DecideRefundCallback(cur, *n.Refund, c.Policy, now)
		})
}

// unknownRefund records a notification about a refund (or order) recon
// cannot find yet and refuses it, so that the channel retries; a duplicate
// of a handled one is answered as handled.
func (c *Callbacks) unknownRefund(ctx context.Context, rec repo.CallbackRecord, res CallbackResult, meta repo.CommitMeta,
	fail func(error) (CallbackResult, error), why error) (CallbackResult, error) {
	rec.Outcome = recon.CallbackOrderUnknown
	rep, err := c.Store.CommitRefundCallback(ctx, nil, rec, meta)
	if err != nil {
		return fail(err)
	}
	if rep.Result == repo.Duplicate {
		res.Handled, res.Outcome = true, CallbackDuplicate
		return res, nil
	}
	res.Outcome, res.Status = strings.ToLower(string(recon.CallbackOrderUnknown)), http.StatusServiceUnavailable
	return res, fmt.Errorf("notification %s: %w", rec.EventID, why)
}

// commit records a notification that changes no order.
func (c *Callbacks) commit(ctx context.Context, out *recon.Outcome, rec repo.CallbackRecord, meta repo.CommitMeta,
	res CallbackResult, fail func(error) (CallbackResult, error)) (CallbackResult, error) {
	rep, err := c.Store.CommitCallback(ctx, out, rec, meta)
	if err != nil {
		return fail(err)
	}
	res.Handled, res.Outcome = true, strings.ToLower(string(rec.Outcome))
	if rep.Result == repo.Duplicate {
		res.Outcome = CallbackDuplicate
	}
	return res, nil
}

// find reads the order a notification names: by its channel key (a Stripe
// PaymentIntent id) where it has one, else by order number; an order of
// another channel is not this notification's.
func (c *Callbacks) find(ctx context.Context, name string, n channel.Notification) (recon.Order, error) {
	var o recon.Order
	err := recon.ErrNotFound
	if n.TxnKey != "" {
		o, err = c.Store.GetOrderByTxnID(ctx, n.TxnKey)
	}
	if errors.Is(err, recon.ErrNotFound) && n.OrderNo != "" {
		o, err = c.Store.GetOrderByNo(ctx, n.OrderNo)
	}
	if err != nil {
		return recon.Order{}, err
	}
	if o.Channel != name {
		return recon.Order{}, fmt.Errorf("order %s is of channel %q: %w", o.OrderNo, o.Channel, recon.ErrNotFound)
	}
	return o, nil
}

func (c *Callbacks) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
