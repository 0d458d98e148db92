package repo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// Statement reconciliation on a mapped orders table: lines are stored
// unmatched and matched afterwards in Go (MatchStatementLines), reading the
// team's table by order number or transaction id; the joined reads join
// recon_order_state for the order's ref and read the orders after.

// lineInsertQuery is the INSERT of n statement lines, matched to their
// orders in the same statement on recon's own table.
func (s *Store) lineInsertQuery(n int) string {
	if s.orders == nil {
		return lineInsert + lineFirst + strings.Repeat(lineNext, n-1) + lineTail
	}
	return `INSERT INTO channel_statement_lines (statement_id, channel, bill_date, line_no, kind, order_no,
	channel_txn_id, refund_no, amount, fee, currency, occurred_at, order_id)
	SELECT v.statement_id, v.channel, v.bill_date, v.line_no, v.kind, v.order_no, v.channel_txn_id, v.refund_no,
	       v.amount, v.fee, v.currency, v.occurred_at, NULL FROM (` + lineFirst + strings.Repeat(lineNext, n-1) + `) v`
}

// orderColsOf is orderCols for a query that joins orderJoinOf(idExpr).
func (s *Store) orderColsOf() string {
	if s.orders == nil {
		return orderCols
	}
	return "o.id" + strings.Repeat(", NULL", 14)
}

// orderJoinOf joins the order whose ref is idExpr as o.
func (s *Store) orderJoinOf(idExpr string) string {
	if s.orders == nil {
		return "LEFT JOIN payment_orders o ON o.id = " + idExpr
	}
	return "LEFT JOIN recon_order_state o ON o.id = " + idExpr
}

// fillMapped replaces each order that has only its ref (a joined read on a
// mapped table) with the order as the mapped table holds it.
func (s *Store) fillMapped(ctx context.Context, orders []*recon.Order) error {
	if s.orders == nil || len(orders) == 0 {
		return nil
	}
	var ids []int64
	for _, o := range orders {
		if o != nil {
			ids = append(ids, o.ID)
		}
	}
	byID, err := s.mappedOrdersByID(ctx, ids)
	if err != nil {
		return err
	}
	for _, o := range orders {
		if o == nil {
			continue
		}
		if got, ok := byID[o.ID]; ok {
			*o = got
		}
	}
	return nil
}

// mappedOrdersByID reads orders of the mapped table by their refs.
func (s *Store) mappedOrdersByID(ctx context.Context, ids []int64) (map[int64]recon.Order, error) {
	om := s.orders
	db := s.db.WithContext(ctx)
	out := map[int64]recon.Order{}
	for start := 0; start < len(ids); start += rowsPerInsert {
		var states []stateRow
		if err := db.Where("id IN ?", ids[start:min(start+rowsPerInsert, len(ids))]).Find(&states).Error; err != nil {
			return nil, fmt.Errorf("read order state: %w", err)
		}
		if len(states) == 0 {
			continue
		}
		byKey, err := s.teamRowsOf(db, states)
		if err != nil {
			return nil, err
		}
		for _, st := range states {
			if r, ok := byKey[st.OrderKey]; ok {
				out[st.ID] = om.withState(r, st)
			}
		}
	}
	return out, nil
}

// mappedMatchStatementLines is MatchStatementLines on a mapped table: each
// unmatched line is matched by order number on its channel, or, without
// one, by transaction id; the order gets its ref if it has none. The lines
// are read a page at a time (at most 500, or matchChunkLines if fewer), and
// each page's matches are written in one transaction, retried on a conflict.
func (s *Store) mappedMatchStatementLines(ctx context.Context, id int64) (int64, error) {
	om := s.orders
	db := s.db.WithContext(ctx)
	page := min(500, s.matchChunkLines())
	var matched int64
	var after int64
	for {
		var lines []struct {
			ID           int64
			Channel      string
			OrderNo      string
			ChannelTxnID string
		}
		if err := db.Raw(`SELECT id, channel, order_no, channel_txn_id FROM channel_statement_lines
			WHERE statement_id = ? AND order_id IS NULL AND id > ? ORDER BY id LIMIT ?`, id, after, page).Scan(&lines).Error; err != nil {
			return matched, fmt.Errorf("match lines of statement %d: %w", id, err)
		}
		if len(lines) == 0 {
			return matched, nil
		}
		after = lines[len(lines)-1].ID
		var nos, txns []string
		for _, l := range lines {
			if l.OrderNo != "" {
				nos = append(nos, l.OrderNo)
			} else if l.ChannelTxnID != "" && om.txn != "" {
				txns = append(txns, l.ChannelTxnID)
			}
		}
		var rows []teamRow
		for _, q := range []struct {
			col  string
			vals []string
		}{{om.no, nos}, {om.txn, txns}} {
			if len(q.vals) == 0 {
				continue
			}
			got, err := s.readTeam(db, "WHERE "+q.col+" IN ?", q.vals)
			if err != nil {
				return matched, fmt.Errorf("match lines of statement %d: %w", id, err)
			}
			rows = append(rows, got...)
		}
		states, err := s.stateOf(db, rows)
		if err != nil {
			return matched, err
		}
		byNo, byTxn := map[string]int64{}, map[string]int64{}
		for _, r := range rows {
			ref := states[r.key].ID
			k := r.order.Channel + "\x00"
			byNo[k+r.order.OrderNo] = ref
			if t := k + r.order.ChannelTxnID; r.order.ChannelTxnID != "" && (byTxn[t] == 0 || ref < byTxn[t]) {
				byTxn[t] = ref
			}
		}
		var n int64
		err = s.retryTx(ctx, "statement", func(tx *gorm.DB) error {
			n = 0
			for _, l := range lines {
				ref := byNo[l.Channel+"\x00"+l.OrderNo]
				if l.OrderNo == "" {
					ref = byTxn[l.Channel+"\x00"+l.ChannelTxnID]
				}
				if ref == 0 {
					continue
				}
				// Guarded by order_id IS NULL: a rerun, or another
				// matcher, never matches a line twice.
				c, err := exec(tx, "UPDATE channel_statement_lines SET order_id = ? WHERE id = ? AND order_id IS NULL", ref, l.ID)
				if err != nil {
					return fmt.Errorf("match line %d of statement %d: %w", l.ID, id, err)
				}
				n += c
			}
			return nil
		})
		if err != nil {
			return matched, err
		}
		matched += n
	}
}

// mappedLocalOnlyOrders is LocalOnlyOrders on a mapped table; without a
// paid_at column no order can be placed on a day, and none is returned.
func (s *Store) mappedLocalOnlyOrders(ctx context.Context, channel string, from, to time.Time, statementIDs []int64, afterID int64, limit int) ([]recon.Order, error) {
	om := s.orders
	if om.paid == "" || len(statementIDs) == 0 {
		return nil, nil
	}
	db := s.db.WithContext(ctx)
	var paid []any
	for _, v := range om.m.StatusValues[string(recon.StatusPaid)] {
		paid = append(paid, v)
	}
	lo, loArgs := s.timeCmp(om.paid, ">=", from)
	hi, hiArgs := s.timeCmp(om.paid, "<", to)
	args := append(append(append([]any{append([]string{channel}, om.chanIn[channel]...)}, loArgs...), hiArgs...), paid)
	rows, err := s.readTeam(db, "WHERE "+om.channel+" IN ? AND "+lo+" AND "+hi+" AND "+om.status+" IN ?", args...)
	if err != nil {
		return nil, fmt.Errorf("read local-only orders of %s: %w", channel, err)
	}
	states, err := s.stateOf(db, rows)
	if err != nil {
		return nil, err
	}
	var cands []recon.Order
	for _, r := range rows {
		if st := states[r.key]; st.ID > afterID && r.order.Status == recon.StatusPaid {
			cands = append(cands, om.withState(r, st))
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].ID < cands[j].ID })
	var out []recon.Order
	for start := 0; start < len(cands) && len(out) < limit; start += limit {
		page := cands[start:min(start+limit, len(cands))]
		refs := make([]int64, len(page))
		for i, o := range page {
			refs[i] = o.ID
		}
		var seen []int64
		if err := db.Raw(`SELECT DISTINCT order_id FROM channel_statement_lines WHERE kind = ? AND statement_id IN ? AND order_id IN ?`,
			recon.LinePayment, statementIDs, refs).Scan(&seen).Error; err != nil {
			return nil, fmt.Errorf("read local-only orders of %s: %w", channel, err)
		}
		in := make(map[int64]bool, len(seen))
		for _, id := range seen {
			in[id] = true
		}
		for _, o := range page {
			if !in[o.ID] && len(out) < limit {
				out = append(out, o)
			}
		}
	}
	return out, nil
}
