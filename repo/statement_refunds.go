package repo

import (
	"context"
	"fmt"
	"time"

	"github.com/recon-dev/recon"
)

// StatementRefundLine is a refund line of a statement with the refund order
// its refund number names (CONTRACT §8, §10).
type StatementRefundLine struct {
	LineID int64
	Line   recon.StatementLine
	// Refund is the refund order of the line's refund number (for Stripe,
	// of its re_… id); nil when recon has none, and the line is matched to
	// its paid order only.
	Refund *recon.Refund
}

// StatementRefundLines returns up to limit refund lines of statement id
// after line afterID, in line id order, each with the refund order of
// channel whose refund_no, or channel_refund_id, is the line's refund number.
func (s *Store) StatementRefundLines(ctx context.Context, id int64, channel string, afterID int64, limit int) ([]StatementRefundLine, error) {
	db := s.db.WithContext(ctx)
	rows, err := db.Raw(`SELECT `+lineCols+` FROM channel_statement_lines l
		WHERE l.statement_id = ? AND l.kind = ? AND l.id > ? ORDER BY l.id LIMIT ?`,
		id, recon.LineRefund, afterID, limit).Rows()
	if err != nil {
		return nil, fmt.Errorf("read refund lines of statement %d: %w", id, err)
	}
	defer rows.Close()
	var out []StatementRefundLine
	var nos []string
	for rows.Next() {
		lid, l, err := scanLine(rows)
		if err != nil {
			return nil, fmt.Errorf("read refund lines of statement %d: %w", id, err)
		}
		out = append(out, StatementRefundLine{LineID: lid, Line: l})
		nos = append(nos, l.RefundNo)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read refund lines of statement %d: %w", id, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	var found []refundRow
	var refunds []recon.Refund
	for start := 0; start < len(nos); start += rowsPerInsert {
		part := nos[start:min(start+rowsPerInsert, len(nos))]
		if s.refunds != nil {
			page, err := s.mappedRefundsByNo(db, channel, part)
			if err != nil {
				return nil, fmt.Errorf("read the refund orders of statement %d: %w", id, err)
			}
			refunds = append(refunds, page...)
			continue
		}
		var page []refundRow
		if err := db.Where("channel = ? AND (refund_no IN ? OR channel_refund_id IN ?)", channel, part, part).
			Find(&page).Error; err != nil {
			return nil, fmt.Errorf("read the refund orders of statement %d: %w", id, err)
		}
		found = append(found, page...)
	}
	if s.refunds == nil {
		refunds = make([]recon.Refund, len(found))
		for i, r := range found {
			refunds[i] = r.toDomain()
		}
		if err := s.fillOrderNos(db, refunds); err != nil {
			return nil, err
		}
	}
	byNo := make(map[string]*recon.Refund, 2*len(refunds))
	for i := range refunds {
		if f := &refunds[i]; f.ChannelRefundID != "" {
			byNo[f.ChannelRefundID] = f
		}
	}
	for i := range refunds {
		byNo[refunds[i].RefundNo] = &refunds[i] // the refund number wins over another's channel id
	}
	for i := range out {
		if f, ok := byNo[out[i].Line.RefundNo]; ok {
			c := *f
			out[i].Refund = &c
		}
	}
	return out, nil
}

// MakeRefundsDue is MakeDue for refunds: the PENDING refunds among refunds
// are made due at once, keeping reason in last_query_error, their status,
// version and attempts left alone.
func (s *Store) MakeRefundsDue(ctx context.Context, refunds []recon.Refund, reason string, now time.Time) (int64, error) {
	ids := make([]int64, len(refunds))
	for i, f := range refunds {
		ids[i] = f.ID
	}
	if s.refunds != nil {
		orders := make([]recon.Order, len(refunds))
		for i, f := range refunds {
			orders[i] = asMappedOrder(f)
		}
		return s.refundView().MakeDue(ctx, orders, reason, now)
	}
	return s.makeDue(ctx, "refunds", ids,
		"UPDATE refund_orders SET next_query_at = ?, last_query_error = ?, updated_at = ? WHERE status = ? AND (next_query_at IS NULL OR next_query_at > ?)",
		[]any{dbTime(now), truncate(recon.CleanText(reason), 1024), dbTime(now), recon.RefundPending, dbTime(now)})
}
