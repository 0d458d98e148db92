package jobs

import (
	"context"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// item is one pending thing a pass settles: an order, or a refund (refund
// non-nil). Both travel the same way: scanned by the window, queued in
// their channel's lane (its workers, breaker and rate limit), looked up,
// decided, and committed in batches through the guarded update.
type item struct {
	order  recon.Order
	refund *recon.Refund
}

// itemKey identifies an item among both kinds.
type itemKey struct {
	refund bool
	id     int64
}

func (it item) channel() string {
	if it.refund != nil {
		return it.refund.Channel
	}
	return it.order.Channel
}

func (it item) key() itemKey {
	if it.refund != nil {
		return itemKey{refund: true, id: it.refund.ID}
	}
	return itemKey{id: it.order.ID}
}

// source is one kind of item a pass scans: the page of at most limit items
// of sc after cur, and the cursor after it.
type source func(ctx context.Context, sc repo.Scan, cur repo.Cursor, limit int) ([]item, repo.Cursor, error)

// sources are the kinds of item a pass scans, in order: orders, then
// refunds.
func (p *pass) sources() []source {
	return []source{
		func(ctx context.Context, sc repo.Scan, cur repo.Cursor, limit int) ([]item, repo.Cursor, error) {
			orders, next, err := p.r.Store.ScanPage(ctx, sc, cur, limit)
			items := make([]item, len(orders))
			for i, o := range orders {
				items[i] = item{order: o}
			}
			return items, next, err
		},
		func(ctx context.Context, sc repo.Scan, cur repo.Cursor, limit int) ([]item, repo.Cursor, error) {
			refunds, next, err := p.r.Store.ScanRefundPage(ctx, sc, cur, limit)
			items := make([]item, len(refunds))
			for i := range refunds {
				items[i] = item{refund: &refunds[i]}
			}
			return items, next, err
		},
	}
}
