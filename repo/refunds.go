package repo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// Refunds are the second kind of pending item (CONTRACT §10): refund_orders
// is scanned like payment_orders (the same streams, keysets and filters,
// scanOwn) and committed through the same batch writer (commitRows), each
// refund with its own guarded update, audit row and outbox row.

// refundRow is a refund_orders row.
type refundRow struct {
	ID              int64
	RefundNo        string
	OrderID         int64
	MerchantID      string
	Channel         string
	ChannelRefundID sql.NullString
	Amount          int64
	Currency        string
	Status          string
	Version         int64
	QueryAttempts   int
	NextQueryAt     sql.NullTime
	LastQueryError  sql.NullString
	CreatedAt       time.Time
	UpdatedAt       time.Time
	SucceededAt     sql.NullTime
}

func (refundRow) TableName() string { return "refund_orders" }

func (r refundRow) keyset() (int64, time.Time, sql.NullTime) { return r.ID, r.CreatedAt, r.NextQueryAt }

func (r refundRow) toDomain() recon.Refund {
	f := recon.Refund{
		ID: r.ID, RefundNo: r.RefundNo, OrderID: r.OrderID, MerchantID: r.MerchantID, Channel: r.Channel,
		ChannelRefundID: r.ChannelRefundID.String, Amount: r.Amount, Currency: r.Currency,
		Status: recon.RefundStatus(r.Status), Version: r.Version, QueryAttempts: r.QueryAttempts,
		LastQueryError: r.LastQueryError.String, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.NextQueryAt.Valid {
		t := r.NextQueryAt.Time.UTC()
		f.NextQueryAt = &t
	}
	if r.SucceededAt.Valid {
		t := r.SucceededAt.Time.UTC()
		f.SucceededAt = &t
	}
	return f
}

func refundFromDomain(f recon.Refund) refundRow {
	r := refundRow{
		ID: f.ID, RefundNo: f.RefundNo, OrderID: f.OrderID, MerchantID: f.MerchantID, Channel: f.Channel,
		ChannelRefundID: nullString(f.ChannelRefundID), Amount: f.Amount, Currency: f.Currency,
		Status: string(f.Status), Version: f.Version, QueryAttempts: f.QueryAttempts,
		LastQueryError: nullString(f.LastQueryError), CreatedAt: dbTime(f.CreatedAt), UpdatedAt: dbTime(f.UpdatedAt),
		NextQueryAt: nullTime(f.NextQueryAt), SucceededAt: nullTime(f.SucceededAt),
	}
	if r.Status == "" {
		r.Status = string(recon.RefundPending)
	}
	if f.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	return r
}

// ScanRefundPage is ScanPage for refunds: the next page of at most limit
// refunds of sc after cur (due PENDING refunds, or those created in a
// backfill's window), with their orders' numbers.
func (s *Store) ScanRefundPage(ctx context.Context, sc Scan, cur Cursor, limit int) ([]recon.Refund, Cursor, error) {
	if s.refunds != nil {
		rows, next, err := s.refundView().mappedScanPage(ctx, sc, cur, limit)
		if err != nil {
			return nil, cur, fmt.Errorf("refunds: %w", err)
		}
		out, err := s.mappedRefunds(s.db.WithContext(ctx), rows, sc.DryRun)
		if err != nil {
			return nil, cur, fmt.Errorf("scan refunds: %w", err)
		}
		return out, next, nil
	}
	rows, next, err := scanOwn[refundRow](ctx, s, &refundRow{}, sc, cur, limit)
	if err != nil {
		return nil, cur, fmt.Errorf("scan refunds: %w", err)
	}
	out := make([]recon.Refund, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain()
	}
	if err := s.fillOrderNos(s.db.WithContext(ctx), out); err != nil {
		return nil, cur, err
	}
	return out, next, nil
}

// fillOrderNos sets the OrderNo of refunds from their orders, in one query
// per page: Alipay looks a refund up by its order's number.
func (s *Store) fillOrderNos(db *gorm.DB, refunds []recon.Refund) error {
	if len(refunds) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(refunds))
	for _, r := range refunds {
		ids = append(ids, r.OrderID)
	}
	if s.orders != nil {
		// With a mapped orders table, order_id is recon's ref of the order
		// (recon_order_state.id).
		no := map[int64]string{}
		for i := range refunds {
			id := refunds[i].OrderID
			if _, ok := no[id]; !ok {
				o, err := s.mappedGetOrder(db, id)
				if err != nil && !errors.Is(err, recon.ErrNotFound) {
					return fmt.Errorf("read the order of refund %s: %w", refunds[i].RefundNo, err)
				}
				no[id] = o.OrderNo
			}
			refunds[i].OrderNo = no[id]
		}
		return nil
	}
	var rows []struct {
		ID      int64
		OrderNo string
	}
	for start := 0; start < len(ids); start += rowsPerInsert {
		var page []struct {
			ID      int64
			OrderNo string
		}
		if err := db.Raw("SELECT id, order_no FROM payment_orders WHERE id IN ?", ids[start:min(start+rowsPerInsert, len(ids))]).
			Scan(&page).Error; err != nil {
			return fmt.Errorf("read the orders of refunds: %w", err)
		}
		rows = append(rows, page...)
	}
	no := make(map[int64]string, len(rows))
	for _, r := range rows {
		no[r.ID] = r.OrderNo
	}
	for i := range refunds {
		refunds[i].OrderNo = no[refunds[i].OrderID]
	}
	return nil
}

// CountRefundBackfill counts the refunds a backfill's window holds.
func (s *Store) CountRefundBackfill(ctx context.Context, sc Scan) (int64, error) {
	if s.refunds != nil {
		return s.refundView().mappedCountBackfill(ctx, sc)
	}
	var n int64
	q := s.backfillRange(s.db.WithContext(ctx).Model(&refundRow{}), sc)
	if err := scanFilters(q, sc).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count backfill refunds: %w", err)
	}
	return n, nil
}

// GetRefund reads one refund by id. It returns recon.ErrNotFound if absent.
func (s *Store) GetRefund(ctx context.Context, id int64) (recon.Refund, error) {
	if s.refunds != nil {
		return s.mappedGetRefund(s.db.WithContext(ctx), id, "", nil)
	}
	return s.getRefund(s.db.WithContext(ctx), "id = ?", id)
}

// GetRefundByNo reads one refund by its refund number.
func (s *Store) GetRefundByNo(ctx context.Context, refundNo string) (recon.Refund, error) {
	if s.refunds != nil {
		return s.mappedGetRefund(s.db.WithContext(ctx), 0, s.refunds.no, refundNo)
	}
	return s.getRefund(s.db.WithContext(ctx), "refund_no = ?", refundNo)
}

// MaxPendingRefundsOf bounds PendingRefundsOf: an order with more PENDING
// refunds than this has the oldest read.
const MaxPendingRefundsOf = 100

// PendingRefundsOf reads the PENDING refunds of order o (as GetOrderByNo
// reads it) on o's channel, oldest first, at most MaxPendingRefundsOf: the
// refunds a notification that names only the order may be about (an Alipay
// refund notification without out_biz_no).
func (s *Store) PendingRefundsOf(ctx context.Context, o recon.Order) ([]recon.Refund, error) {
	db := s.db.WithContext(ctx)
	if s.refunds != nil {
		return s.mappedPendingRefundsOf(db, o)
	}
	var rows []refundRow
	if err := db.Where("order_id = ? AND channel = ? AND status = ?", o.ID, o.Channel, recon.RefundPending).
		Order("id").Limit(MaxPendingRefundsOf).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read the pending refunds of order %s: %w", o.OrderNo, err)
	}
	out := make([]recon.Refund, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain()
	}
	if err := s.fillOrderNos(db, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) getRefund(db *gorm.DB, where string, arg any) (recon.Refund, error) {
	var r refundRow
	err := db.Where(where, arg).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return recon.Refund{}, fmt.Errorf("refund %v: %w", arg, recon.ErrNotFound)
	}
	if err != nil {
		return recon.Refund{}, fmt.Errorf("read refund %v: %w", arg, err)
	}
	out := []recon.Refund{r.toDomain()}
	if err := s.fillOrderNos(db, out); err != nil {
		return recon.Refund{}, err
	}
	return out[0], nil
}

// InsertRefunds inserts refunds as the payment service would, in batches,
// and sets their ids. It is for seeding, tests and benchmarks.
func (s *Store) InsertRefunds(ctx context.Context, refunds []recon.Refund) error {
	if s.refunds != nil {
		return s.mappedInsertRefunds(ctx, refunds)
	}
	return insertOwn(ctx, s, "refunds", refunds, refundFromDomain, func(f *recon.Refund, r refundRow) { f.ID = r.ID })
}

// RefundCommitReport is CommitRefundBatch's answer about one refund.
type RefundCommitReport struct {
	Result CommitResult
	// Current is the re-read refund when Result is Lost or Stale.
	Current recon.Refund
	// NewMismatch is true when a mismatch of the outcome (or the
	// REFUND_MISMATCH of its order) was not already open.
	NewMismatch bool
	// OrderMismatch is the REFUND_MISMATCH recorded beside a success: the
	// refunded order is not PAID, or its refunds add up to more than it.
	OrderMismatch *recon.Mismatch
}

// CommitRefundBatch writes refund outcomes in one transaction, as
// CommitBatch does for orders: each refund's guarded update (status PENDING
// and the version read), a transition's outbox row (refund.succeeded |
// refund.failed) and audit row, and the outcome's mismatch. A success that
// does not fit its order also records REFUND_MISMATCH. A refund whose guard
// finds it moved gets nothing written and is reported Lost or Stale.
func (s *Store) CommitRefundBatch(ctx context.Context, outs []recon.RefundOutcome, meta CommitMeta) ([]RefundCommitReport, error) {
	return commitOutcomes(ctx, s, meta, outs, "refund",
		func(out recon.RefundOutcome) (int64, recon.Action) { return out.Refund.ID, out.Action },
		func(w *batchWriter) error { return w.loadRefundOrders(outs) }, (*batchWriter).applyRefund, s.movedRefundReport)
}

// movedRefundReport re-reads a refund whose guard found it moved: Lost when
// it is not PENDING any more, else Stale.
func (s *Store) movedRefundReport(ctx context.Context, id int64) (RefundCommitReport, error) {
	cur, err := s.GetRefund(ctx, id)
	if err != nil {
		return RefundCommitReport{}, err
	}
	rep := RefundCommitReport{Result: Stale, Current: cur}
	if cur.Status != recon.RefundPending {
		rep.Result = Lost
	}
	return rep, nil
}

// RecordRefundMismatch upserts one mismatch of refund r outside any change
// of it (a lost race judged against the channel, a verification finding).
// It reports whether the mismatch is new or reopened.
func (s *Store) RecordRefundMismatch(ctx context.Context, r recon.Refund, m recon.Mismatch, meta CommitMeta) (bool, error) {
	m.RefundNo = r.RefundNo
	return s.RecordMismatch(ctx, refundSubject(r), m, meta)
}

// refundSubject is the order a refund's mismatch rows name: the refunded
// order, with the refund's merchant and channel.
func refundSubject(r recon.Refund) recon.Order {
	return recon.Order{ID: r.OrderID, OrderNo: r.OrderNo, MerchantID: r.MerchantID, Channel: r.Channel}
}

// The guarded updates of refund_orders, as those of payment_orders.
const (
	sqlRefundTransition = `UPDATE refund_orders SET status = ?, version = version + 1,
		query_attempts = query_attempts + 1, next_query_at = NULL, last_query_error = NULL,
		channel_refund_id = COALESCE(channel_refund_id, ?), succeeded_at = ?, updated_at = ?
		WHERE id = ? AND version = ? AND status = ?`
	sqlRefundReschedule = `UPDATE refund_orders SET query_attempts = query_attempts + 1, next_query_at = ?,
		last_query_error = ?, updated_at = ? WHERE id = ? AND version = ? AND status = ? AND query_attempts = ?`
	sqlRefundHold = `UPDATE refund_orders SET query_attempts = query_attempts + 1, next_query_at = NULL,
		last_query_error = ?, updated_at = ? WHERE id = ? AND version = ? AND status = ? AND query_attempts = ?`
	refundAuditCols = "refund_id, from_status, to_status, from_version, to_version, source, run_id, created_at"
)

// applyRefund writes one refund outcome. ok is false when the guard found
// the refund moved and nothing was written for it.
func (w *batchWriter) applyRefund(out recon.RefundOutcome) (rep RefundCommitReport, ok bool, err error) {
	r, now := out.Refund, dbTime(w.meta.Now)
	var n int64
	switch out.Action {
	case recon.ActionTransition:
		n, err = w.refundTransition(out, &rep)
	case recon.ActionReschedule:
		if rm := w.s.refunds; rm != nil {
			n, err = w.exec(stateSQL(sqlStateReschedule, rm.kind.state), nullTime(out.NextQueryAt), nullString(truncate(out.QueryError, 1024)), r.ID, r.QueryAttempts)
			break
		}
		n, err = w.exec(sqlRefundReschedule, nullTime(out.NextQueryAt), nullString(truncate(out.QueryError, 1024)), now,
			r.ID, r.Version, recon.RefundPending, r.QueryAttempts)
	case recon.ActionHold:
		if rm := w.s.refunds; rm != nil {
			n, err = w.exec(stateSQL(sqlStateHold, rm.kind.state), nullString(truncate(string(out.Mismatch.Kind)+": "+out.Mismatch.Detail, 1024)), r.ID, r.QueryAttempts)
			break
		}
		n, err = w.exec(sqlRefundHold, nullString(truncate(string(out.Mismatch.Kind)+": "+out.Mismatch.Detail, 1024)), now,
			r.ID, r.Version, recon.RefundPending, r.QueryAttempts)
	case recon.ActionReport:
		n = 1
	}
	if err == nil && n == 1 && out.Mismatch != nil {
		var isNew bool
		isNew, err = w.s.upsertMismatch(w.tx, refundSubject(r), *out.Mismatch, w.meta)
		rep.NewMismatch = rep.NewMismatch || isNew
	}
	if err != nil {
		return rep, false, fmt.Errorf("commit refund %d (%s): %w", r.ID, out.Action, err)
	}
	if n == 0 {
		return RefundCommitReport{}, false, nil
	}
	rep.Result = Applied
	if out.Action == recon.ActionReport {
		rep.Result = Recorded
	}
	return rep, true, nil
}

// refundTransition moves the refund and queues its outbox and audit rows. A
// success is checked against its order (CONTRACT §10): the channel's word
// settles the refund, and REFUND_MISMATCH tells finance when the order is
// not PAID or its succeeded refunds exceed it.
func (w *batchWriter) refundTransition(out recon.RefundOutcome, rep *RefundCommitReport) (int64, error) {
	r, now := out.Refund, dbTime(w.meta.Now)
	var refundID string
	var succeededAt *time.Time
	if out.Lookup != nil {
		refundID = out.Lookup.ChannelRefundID
		if out.To == recon.RefundSucceeded {
			succeededAt = out.Lookup.SucceededAt
			if succeededAt == nil {
				succeededAt = &w.meta.Now
			}
		}
	}
	var n int64
	var err error
	if rm := w.s.refunds; rm != nil {
		n, err = w.mappedTransition(rm, asMappedOrder(r), recon.Status(out.To), refundID, succeededAt)
	} else {
		n, err = w.exec(sqlRefundTransition, out.To, nullString(refundID), nullTime(succeededAt), now, r.ID, r.Version, recon.RefundPending)
	}
	if err != nil || n == 0 {
		return n, err
	}
	note := recon.NewRefundNotification(r, out.To, refundID, succeededAt, w.meta.Now)
	w.outbox = append(w.outbox, note.ID, r.OrderID, r.ID, r.MerchantID, note.Event, string(note.Payload()), now, now)
	w.nOutbox++
	w.refundAudit = append(w.refundAudit, r.ID, r.Status, out.To, r.Version, r.Version+1, w.meta.Source, nullRunID(w.meta.RunID), now)
	w.nRefundAudit++
	if out.To != recon.RefundSucceeded {
		return n, nil
	}
	if r.ChannelRefundID == "" {
		r.ChannelRefundID = refundID // the REFUND_MISMATCH row names the channel's refund
	}
	m, err := w.checkRefundOrder(r)
	if err != nil || m == nil {
		return n, err
	}
	isNew, err := w.s.upsertMismatch(w.tx, refundSubject(r), *m, w.meta)
	rep.NewMismatch, rep.OrderMismatch = isNew, m
	return n, err
}

// loadRefundOrders reads, for the refunds of a batch that succeed, their
// orders and what the orders' succeeded refunds add up to, in two queries
// inside the batch's transaction (applyRefund then adds each refund it
// settles).
//
// Two refunds of one order settled at once must not each miss the other
// (sumRefunded says how).
func (w *batchWriter) loadRefundOrders(outs []recon.RefundOutcome) error {
	w.refundOrders, w.refunded = map[int64]recon.Order{}, map[int64]int64{}
	seen := map[int64]bool{}
	var ids []int64
	for _, out := range outs {
		if out.Action == recon.ActionTransition && out.To == recon.RefundSucceeded && !seen[out.Refund.OrderID] {
			seen[out.Refund.OrderID] = true
			ids = append(ids, out.Refund.OrderID)
		}
	}
	// Concurrent batches write their orders' settlement rows in the same
	// order, so they wait for each other rather than deadlock.
	slices.Sort(ids)
	for start := 0; start < len(ids); start += rowsPerInsert {
		page := ids[start:min(start+rowsPerInsert, len(ids))]
		if w.s.orders == nil {
			var rows []orderRow
			if err := w.tx.Where("id IN ?", page).Find(&rows).Error; err != nil {
				return fmt.Errorf("read the orders of refunds: %w", err)
			}
			for _, r := range rows {
				w.refundOrders[r.ID] = r.toDomain()
			}
		}
		if err := w.sumRefunded(page, 0); err != nil {
			return err
		}
	}
	if h := w.s.afterRefundSums; h != nil {
		h()
	}
	return nil
}

// sumRefunded adds to w.refunded what the succeeded refunds of orders ids
// add up to, leaving refund exclude out.
//
// It first writes the orders' rows of recon_refund_settlements
// (markSettlements), so that two transactions settling refunds of one order
// always conflict on a row they both write: on one server the second waits
// for the first to commit, and its sum then sees the first's refund; on a
// Galera cluster, where a read lock taken on one node is not seen by the
// others, certification aborts one of two such transactions of different
// nodes, and retryTx reruns it whole, its sum then seeing the other's
// refund. On MySQL the sum is also a locking read, so that it reads the
// latest committed refunds rather than the transaction's snapshot.
func (w *batchWriter) sumRefunded(ids []int64, exclude int64) error {
	if err := w.markSettlements(ids); err != nil {
		return err
	}
	if w.s.refunds != nil {
		return w.mappedSumRefunded(ids, exclude)
	}
	lock := ""
	if w.s.dialect == MySQL {
		lock = " FOR UPDATE"
	}
	var sums []struct {
		OrderID int64
		Total   int64
	}
	if err := w.tx.Raw("SELECT order_id, SUM(amount) AS total FROM refund_orders WHERE order_id IN ? AND status = ? AND id <> ? GROUP BY order_id"+lock,
		ids, recon.RefundSucceeded, exclude).Scan(&sums).Error; err != nil {
		return fmt.Errorf("sum the refunds of orders: %w", err)
	}
	for _, sm := range sums {
		w.refunded[sm.OrderID] += sm.Total
	}
	return nil
}

// markSettlements counts a settlement on the recon_refund_settlements row
// of each of orders ids (recon's refs of them), creating the rows it lacks.
func (w *batchWriter) markSettlements(ids []int64) error {
	args := make([]any, 0, len(ids))
	for _, id := range ids {
		if id != 0 { // an order recon has no ref of has nothing to guard
			args = append(args, id)
		}
	}
	if len(args) == 0 {
		return nil
	}
	q := "INSERT INTO recon_refund_settlements (order_id, settlements) VALUES (?, 1)" + strings.Repeat(", (?, 1)", len(args)-1)
	if w.s.dialect == MySQL {
		q += " ON DUPLICATE KEY UPDATE settlements = settlements + 1"
	} else {
		q += " ON CONFLICT (order_id) DO UPDATE SET settlements = settlements + 1"
	}
	if _, err := w.execOnce(q, args...); err != nil {
		return fmt.Errorf("mark the refund settlements of orders: %w", err)
	}
	return nil
}

// checkRefundOrder judges refund r, which the batch has just settled as
// SUCCEEDED, against its order and the order's other succeeded refunds.
func (w *batchWriter) checkRefundOrder(r recon.Refund) (*recon.Mismatch, error) {
	if w.refunded == nil {
		// A writer whose batch did not load its refunds' orders (one
		// refund at a time): read them now, r itself left out.
		w.refundOrders, w.refunded = map[int64]recon.Order{}, map[int64]int64{}
		if err := w.sumRefunded([]int64{r.OrderID}, r.ID); err != nil {
			return nil, err
		}
		defer func() { w.refundOrders, w.refunded = nil, nil }()
	}
	o, ok := w.refundOrders[r.OrderID]
	if !ok {
		var err error
		o, err = w.s.orderIn(w.tx, r.OrderID) // a mapped orders table
		switch {
		case errors.Is(err, recon.ErrNotFound):
			o = recon.Order{ID: r.OrderID, OrderNo: r.OrderNo, Status: "UNKNOWN"}
		case err != nil:
			return nil, err
		}
	}
	before := w.refunded[r.OrderID]
	w.refunded[r.OrderID] = before + r.Amount
	return recon.CheckRefundOrder(o, before, r), nil
}
