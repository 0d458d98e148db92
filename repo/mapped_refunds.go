package repo

import (
	"context"
	"fmt"
	"strconv"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// A mapped refunds table (config key refunds) is read, scanned and guarded
// by the code of a mapped orders table, run on a view of the store whose
// mapping is the refunds' (refundView): a refund is read as an order whose
// number is the refund number, then made a recon.Refund whose order is
// found through the mapped orders table by the order_id column. recon's
// bookkeeping of the refunds is recon_refund_state.

// refundView is the store as the mapped-table code sees the refunds table
// (it shares the connection, and reports the conflicts of its bookkeeping
// writes to the store's ObserveConflicts function).
func (s *Store) refundView() *Store {
	v := &Store{db: s.db, dialect: s.dialect, orders: s.refunds}
	v.conflicts.Store(s.conflicts.Load())
	return v
}

// mappedRefunds makes refunds of rows read through refundView: their
// orders' refs (registered if new; in a dry run, 0 for an order without
// one) and numbers come from the orders table, in two queries a page.
func (s *Store) mappedRefunds(db *gorm.DB, rows []recon.Order, dryRun bool) ([]recon.Refund, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	rm, om := s.refunds, s.orders
	nos := make([]string, len(rows))
	for i, r := range rows {
		nos[i] = r.OrderNo
	}
	var links []struct{ No, Parent string }
	for start := 0; start < len(nos); start += rowsPerInsert {
		var page []struct{ No, Parent string }
		if err := db.Raw("SELECT "+rm.no+" AS no, "+rm.parent+" AS parent FROM "+rm.table+" WHERE "+rm.no+" IN ?",
			nos[start:min(start+rowsPerInsert, len(nos))]).Scan(&page).Error; err != nil {
			return nil, fmt.Errorf("read the orders of refunds in %s: %w", rm.m.Table, err)
		}
		links = append(links, page...)
	}
	parentOf := make(map[string]string, len(links))
	keys := make([]string, 0, len(links))
	for _, l := range links {
		parentOf[l.No] = l.Parent
		keys = append(keys, l.Parent)
	}
	var orders []teamRow
	for start := 0; start < len(keys); start += rowsPerInsert {
		page, err := s.readTeam(db, "WHERE "+om.id+" IN ?", om.keyArgs(keys[start:min(start+rowsPerInsert, len(keys))]))
		if err != nil {
			return nil, fmt.Errorf("read the orders of refunds in %s: %w", om.m.Table, err)
		}
		orders = append(orders, page...)
	}
	var states map[string]stateRow
	var err error
	if dryRun {
		states, err = s.readState(db, keys)
	} else {
		states, err = s.stateOf(db, orders)
	}
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]teamRow, len(orders))
	for _, o := range orders {
		byKey[o.key] = o
	}
	out := make([]recon.Refund, len(rows))
	for i, r := range rows {
		parent := parentOf[r.OrderNo]
		out[i] = recon.Refund{
			ID: r.ID, RefundNo: r.OrderNo, OrderID: states[parent].ID, OrderNo: byKey[parent].order.OrderNo,
			MerchantID: r.MerchantID, Channel: r.Channel, ChannelRefundID: r.ChannelTxnID,
			Amount: r.Amount, Currency: r.Currency, Status: recon.RefundStatus(r.Status), Version: r.Version,
			QueryAttempts: r.QueryAttempts, NextQueryAt: r.NextQueryAt, LastQueryError: r.LastQueryError,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, SucceededAt: r.PaidAt, StoredStatus: r.StoredStatus,
		}
	}
	return out, nil
}

// asMappedOrder is refund f as the mapped-table code reads and writes it.
func asMappedOrder(f recon.Refund) recon.Order {
	return recon.Order{
		ID: f.ID, OrderNo: f.RefundNo, MerchantID: f.MerchantID, Channel: f.Channel, ChannelTxnID: f.ChannelRefundID,
		Amount: f.Amount, Currency: f.Currency, Status: recon.Status(f.Status), Version: f.Version,
		QueryAttempts: f.QueryAttempts, NextQueryAt: f.NextQueryAt, LastQueryError: f.LastQueryError,
		CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt, PaidAt: f.SucceededAt, StoredStatus: f.StoredStatus,
	}
}

// mappedGetRefund reads one refund of the mapped table by recon's ref (byCol
// "") or by a mapped column.
func (s *Store) mappedGetRefund(db *gorm.DB, id int64, byCol string, arg any) (recon.Refund, error) {
	v := s.refundView()
	var o recon.Order
	var err error
	if byCol == "" {
		o, err = v.mappedGetOrder(db, id)
	} else {
		o, err = v.mappedGetOrderBy(db, byCol, arg)
	}
	if err != nil {
		return recon.Refund{}, fmt.Errorf("refund: %w", err)
	}
	out, err := s.mappedRefunds(db, []recon.Order{o}, false)
	if err != nil {
		return recon.Refund{}, err
	}
	return out[0], nil
}

// mappedInsertRefunds inserts refunds into the mapped table as the team's
// payment service would (tests, seeding), each with its order's key, and
// sets their refs.
func (s *Store) mappedInsertRefunds(ctx context.Context, refunds []recon.Refund) error {
	db := s.db.WithContext(ctx)
	ids := make([]int64, 0, len(refunds))
	for _, f := range refunds {
		ids = append(ids, f.OrderID)
	}
	var states []stateRow
	if err := db.Table(s.orders.kind.state).Where("id IN ?", ids).Find(&states).Error; err != nil {
		return fmt.Errorf("read the orders of refunds: %w", err)
	}
	keyOf := make(map[int64]string, len(states))
	for _, st := range states {
		keyOf[st.ID] = st.OrderKey
	}
	rows := make([]recon.Order, len(refunds))
	parents := make([]string, len(refunds))
	for i, f := range refunds {
		if parents[i] = keyOf[f.OrderID]; parents[i] == "" {
			return fmt.Errorf("insert refund %s: order %d: %w", f.RefundNo, f.OrderID, recon.ErrNotFound)
		}
		rows[i] = asMappedOrder(f)
	}
	if err := s.refundView().mappedInsertOrders(ctx, rows, parents); err != nil {
		return err
	}
	rm := s.refunds
	for i := range refunds {
		refunds[i].ID = rows[i].ID
		// As a read of the row would give it: the guard is this value.
		if st := recon.Status(refunds[i].Status); st == recon.StatusPending || st == "" {
			refunds[i].StoredStatus = canonValue(rm.pending[0])
		} else {
			refunds[i].StoredStatus = canonValue(rm.write[st])
		}
	}
	return nil
}

// mappedSumRefunded is sumRefunded on the mapped tables: what the
// succeeded refunds of orders ids add up to, leaving refund exclude out, by
// the orders' refs.
func (w *batchWriter) mappedSumRefunded(ids []int64, exclude int64) error {
	rm, lock := w.s.refunds, ""
	if w.s.dialect == MySQL {
		lock = " FOR UPDATE"
	}
	var states []stateRow
	if err := w.tx.Table(w.s.orders.kind.state).Select("id, order_key").Where("id IN ?", ids).Find(&states).Error; err != nil {
		return fmt.Errorf("sum the refunds of orders: %w", err)
	}
	if len(states) == 0 {
		return nil
	}
	refOf := make(map[string]int64, len(states))
	keys := make([]string, 0, len(states))
	for _, st := range states {
		refOf[st.OrderKey] = st.ID
		keys = append(keys, st.OrderKey)
	}
	var succeeded []any
	for v, st := range rm.toStatus {
		if st == recon.Status(recon.RefundSucceeded) {
			succeeded = append(succeeded, v)
			if rm.intStatus {
				n, _ := strconv.ParseInt(v, 10, 64)
				succeeded[len(succeeded)-1] = n
			}
		}
	}
	excludeKey := ""
	if exclude != 0 {
		var err error
		if excludeKey, err = w.orderKey(rm, exclude); err != nil {
			return err
		}
	}
	var sums []struct {
		Parent string
		Total  string
	}
	if err := w.tx.Raw("SELECT "+rm.parent+" AS parent, SUM("+rm.amount+") AS total FROM "+rm.table+
		" WHERE "+rm.parent+" IN ? AND "+rm.status+" IN ? AND "+rm.id+" <> ? GROUP BY "+rm.parent+lock,
		keys, succeeded, rm.keyArg(excludeKey)).Scan(&sums).Error; err != nil {
		return fmt.Errorf("sum the refunds of orders in %s: %w", rm.m.Table, err)
	}
	for _, sm := range sums {
		n, err := minorUnits(sm.Total, rm.m.AmountScale)
		if err != nil {
			return fmt.Errorf("sum the refunds of order %s: %w", sm.Parent, err)
		}
		w.refunded[refOf[sm.Parent]] += n
	}
	return nil
}

// mappedRefundsByNo reads the refunds of channel whose refund number, or
// channel refund id, is one of nos (a statement's refund lines), giving
// those recon has no bookkeeping row for yet their own.
func (s *Store) mappedRefundsByNo(db *gorm.DB, channel string, nos []string) ([]recon.Refund, error) {
	v, rm := s.refundView(), s.refunds
	where := "WHERE " + rm.channel + " IN ? AND (" + rm.no + " IN ?"
	args := []any{append([]string{channel}, rm.chanIn[channel]...), nos}
	if rm.txn != "" {
		where += " OR " + rm.txn + " IN ?"
		args = append(args, nos)
	}
	rows, err := v.readTeam(db, where+")", args...)
	if err != nil {
		return nil, fmt.Errorf("read refunds of %s: %w", rm.m.Table, err)
	}
	return s.mappedRefundsOfRows(db, rows)
}

// mappedPendingRefundsOf is PendingRefundsOf on the mapped tables: the
// refunds whose order column is o's key in the orders table, in a pending
// status value, on o's channel.
func (s *Store) mappedPendingRefundsOf(db *gorm.DB, o recon.Order) ([]recon.Refund, error) {
	v, rm, om := s.refundView(), s.refunds, s.orders
	var key string
	if err := db.Raw("SELECT order_key FROM "+om.kind.state+" WHERE id = ?", o.ID).Row().Scan(&key); err != nil {
		return nil, fmt.Errorf("find order %s in %s: %w", o.OrderNo, om.kind.state, err)
	}
	rows, err := v.readTeam(db, "WHERE "+rm.parent+" = ? AND "+rm.channel+" IN ? AND "+rm.status+" IN ? ORDER BY "+rm.id+" LIMIT ?",
		om.keyArg(key), append([]string{o.Channel}, rm.chanIn[o.Channel]...), rm.pending, MaxPendingRefundsOf)
	if err != nil {
		return nil, fmt.Errorf("read the pending refunds of order %s in %s: %w", o.OrderNo, rm.m.Table, err)
	}
	return s.mappedRefundsOfRows(db, rows)
}

// mappedRefundsOfRows makes refunds of rows read from the refunds table,
// giving those recon has no bookkeeping row for yet their own.
func (s *Store) mappedRefundsOfRows(db *gorm.DB, rows []teamRow) ([]recon.Refund, error) {
	v, rm := s.refundView(), s.refunds
	states, err := v.stateOf(db, rows)
	if err != nil {
		return nil, err
	}
	found := make([]recon.Order, len(rows))
	for i, r := range rows {
		found[i] = rm.withState(r, states[r.key])
	}
	return s.mappedRefunds(db, found, false)
}
