package repo

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// CommitBatch writes many outcomes in one transaction, as Commit does for
// one: each order still has its own guarded update (status PENDING and the
// version read), and a transition its own outbox and audit row. An order
// whose guard finds it moved gets nothing written and is reported Lost or
// Stale (re-read) without affecting the others. The batch is all or nothing:
// on an error no order of it is written; a deadlock reruns the whole batch.
// The reports are in the order of outs.
//
// One transaction for many orders saves a commit (a log flush) and most
// round trips per order, which is where a pass spends its time.
func (s *Store) CommitBatch(ctx context.Context, outs []recon.Outcome, meta CommitMeta) ([]CommitReport, error) {
	return commitOutcomes(ctx, s, meta, outs, "order",
		func(out recon.Outcome) (int64, recon.Action) { return out.Order.ID, out.Action },
		func(w *batchWriter) error { return w.loadKeys(outs) }, (*batchWriter).apply, s.movedReport)
}

// commitOutcomes is CommitBatch and CommitRefundBatch: it refuses an
// outcome with nothing to commit, runs the guarded writes of the batch in
// one transaction (commitRows: prepare, then apply for each outcome) and
// re-reads (moved) each item whose guard found it moved. what names the
// items in errors; item gives an outcome's row id and action.
func commitOutcomes[O, R any](ctx context.Context, s *Store, meta CommitMeta, outs []O, what string,
	item func(O) (int64, recon.Action), prepare func(*batchWriter) error,
	apply func(*batchWriter, O) (R, bool, error), moved func(context.Context, int64) (R, error)) ([]R, error) {
	ids := make([]int64, len(outs))
	for i, out := range outs {
		id, action := item(out)
		switch action {
		case recon.ActionTransition, recon.ActionReschedule, recon.ActionHold, recon.ActionReport:
		default:
			return nil, fmt.Errorf("commit %s %d: nothing to commit for action %s", what, id, action)
		}
		ids[i] = id
	}
	reps := make([]R, len(outs))
	wasMoved, err := s.commitRows(ctx, meta, ids, prepare, func(w *batchWriter, i int) (bool, error) {
		rep, ok, err := apply(w, outs[i])
		reps[i] = rep
		return ok, err
	})
	if err != nil {
		return nil, err
	}
	for i, m := range wasMoved {
		if m {
			if reps[i], err = moved(ctx, ids[i]); err != nil {
				return nil, err
			}
		}
	}
	return reps, nil
}

// movedReport re-reads an order whose guard found it moved: Lost when it is
// not PENDING any more (terminal, or on a mapped table a status recon never
// touches, other_terminal), else Stale.
func (s *Store) movedReport(ctx context.Context, id int64) (CommitReport, error) {
	cur, err := s.GetOrder(ctx, id)
	if err != nil {
		return CommitReport{}, err
	}
	rep := CommitReport{Result: Stale, Current: cur}
	if cur.Status != recon.StatusPending {
		rep.Result = Lost
	}
	return rep, nil
}

// commitRows runs the guarded writes of a batch of items (ids[i] is item
// i's row) in one transaction: prepare once, then apply(w, i) for every
// item in id order, so that concurrent batches lock rows in the same order
// and do not deadlock, then the gathered inserts. A deadlock reruns the
// whole transaction. moved[i] is true when apply found item i moved and
// wrote nothing for it.
func (s *Store) commitRows(ctx context.Context, meta CommitMeta, ids []int64,
	prepare func(w *batchWriter) error, apply func(w *batchWriter, i int) (bool, error)) ([]bool, error) {
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ids[idx[a]] < ids[idx[b]] })
	moved := make([]bool, len(ids))
	err := s.retryTx(ctx, "commit", func(tx *gorm.DB) error {
		w := newBatchWriter(ctx, s, tx, meta)
		defer w.close()
		if err := prepare(w); err != nil {
			return err
		}
		for _, i := range idx {
			ok, err := apply(w, i)
			if err != nil {
				return err
			}
			moved[i] = !ok
		}
		return w.flush()
	})
	if err != nil {
		return nil, err
	}
	return moved, nil
}

// The guarded updates, one per action. Each is prepared once per batch. A
// reschedule or hold leaves the version alone (only a state change bumps
// it), so it is guarded by query_attempts too: a pass that looked the order
// up before another pass wrote its schedule or hold finds it stale, and never
// undoes a hold.
const (
	sqlTransition = `UPDATE payment_orders SET status = ?, version = version + 1,
		query_attempts = query_attempts + 1, next_query_at = NULL, last_query_error = NULL,
		channel_txn_id = COALESCE(channel_txn_id, ?), paid_at = ?, updated_at = ?
		WHERE id = ? AND version = ? AND status = ?`
	sqlReschedule = `UPDATE payment_orders SET query_attempts = query_attempts + 1, next_query_at = ?,
		last_query_error = ?, updated_at = ? WHERE id = ? AND version = ? AND status = ? AND query_attempts = ?`
	sqlHold = `UPDATE payment_orders SET query_attempts = query_attempts + 1, next_query_at = NULL,
		last_query_error = ?, updated_at = ? WHERE id = ? AND version = ? AND status = ? AND query_attempts = ?`
)

// The bookkeeping of a mapped table's order: reschedule and hold are
// guarded by query_attempts, as on payment_orders.
const (
	sqlStateReschedule = `UPDATE recon_order_state SET query_attempts = query_attempts + 1, next_query_at = ?,
		last_query_error = ? WHERE id = ? AND query_attempts = ?`
	sqlStateHold = `UPDATE recon_order_state SET query_attempts = query_attempts + 1, next_query_at = NULL,
		last_query_error = ? WHERE id = ? AND query_attempts = ?`
	sqlStateSettled = `UPDATE recon_order_state SET active = ?, version = version + 1, query_attempts = query_attempts + 1,
		next_query_at = NULL, last_query_error = NULL WHERE id = ?`
)

// stateSQL is a bookkeeping statement of recon_order_state on another state
// table (recon_refund_state).
func stateSQL(q, table string) string { return strings.Replace(q, "recon_order_state", table, 1) }

const (
	// refund_id is 0 on an order's event, the refund's id on a refund's.
	outboxCols = "id, order_id, refund_id, merchant_id, event, payload, status, attempts, next_attempt_at, created_at"
	outboxVals = "?, ?, ?, ?, ?, ?, 'PENDING', 0, ?, ?"
	auditCols  = "order_id, from_status, to_status, from_version, to_version, source, run_id, created_at"
	auditVals  = "?, ?, ?, ?, ?, ?, ?, ?"
	// rowsPerInsert bounds a multi-row INSERT well under every dialect's
	// limit on bound parameters.
	rowsPerInsert = 500
)

// batchWriter writes the outcomes of one batch inside its transaction: the
// guarded updates one by one through prepared statements, the outbox and
// audit rows of the transitions gathered into multi-row inserts at the end.
type batchWriter struct {
	ctx   context.Context
	s     *Store
	tx    *gorm.DB
	sqlTx *sql.Tx // nil when GORM does not expose it: statements go through tx
	meta  CommitMeta
	stmts map[string]*sql.Stmt

	outbox, audit []any
	nOutbox       int
	nAudit        int
	// refundAudit holds the refund_transitions rows of the batch.
	refundAudit  []any
	nRefundAudit int
	// A refund batch: the orders of the refunds it settles, and what
	// their succeeded refunds add up to so far (loadRefundOrders).
	refundOrders map[int64]recon.Order
	refunded     map[int64]int64

	// A mapped table: the keys of the batch's orders, and the state rows of
	// the orders or refunds it moved (settled at flush), by state table.
	keys    map[int64]string
	settled map[string][]int64
}

func newBatchWriter(ctx context.Context, s *Store, tx *gorm.DB, meta CommitMeta) *batchWriter {
	sqlTx, _ := tx.Statement.ConnPool.(*sql.Tx)
	return &batchWriter{ctx: ctx, s: s, tx: tx, sqlTx: sqlTx, meta: meta, stmts: map[string]*sql.Stmt{}}
}

// apply writes one outcome. ok is false when the guard found the order moved
// and nothing was written for it.
func (w *batchWriter) apply(out recon.Outcome) (rep CommitReport, ok bool, err error) {
	o, now := out.Order, dbTime(w.meta.Now)
	var n int64
	switch out.Action {
	case recon.ActionTransition:
		n, err = w.transition(out)
	case recon.ActionReschedule:
		if w.s.orders != nil {
			n, err = w.exec(sqlStateReschedule, nullTime(out.NextQueryAt), nullString(truncate(out.QueryError, 1024)), o.ID, o.QueryAttempts)
			break
		}
		n, err = w.exec(sqlReschedule, nullTime(out.NextQueryAt), nullString(truncate(out.QueryError, 1024)), now,
			o.ID, o.Version, recon.StatusPending, o.QueryAttempts)
	case recon.ActionHold:
		if w.s.orders != nil {
			n, err = w.exec(sqlStateHold, nullString(truncate(string(out.Mismatch.Kind)+": "+out.Mismatch.Detail, 1024)), o.ID, o.QueryAttempts)
		} else {
			n, err = w.exec(sqlHold, nullString(truncate(string(out.Mismatch.Kind)+": "+out.Mismatch.Detail, 1024)), now,
				o.ID, o.Version, recon.StatusPending, o.QueryAttempts)
		}
		if err == nil && n == 1 {
			rep.NewMismatch, err = w.s.upsertMismatch(w.tx, o, *out.Mismatch, w.meta)
		}
	case recon.ActionReport:
		rep.Result = Recorded
		rep.NewMismatch, err = w.s.upsertMismatch(w.tx, o, *out.Mismatch, w.meta)
		return rep, err == nil, err
	}
	if err != nil {
		return rep, false, fmt.Errorf("commit order %d (%s): %w", o.ID, out.Action, err)
	}
	if n == 0 {
		return CommitReport{}, false, nil
	}
	rep.Result = Applied
	return rep, true, nil
}

// transition moves the order and queues its outbox and audit rows.
func (w *batchWriter) transition(out recon.Outcome) (int64, error) {
	o, now := out.Order, dbTime(w.meta.Now)
	var txnID string
	var paidAt *time.Time
	if out.Lookup != nil {
		txnID = out.Lookup.TxnID
		if out.To == recon.StatusPaid {
			paidAt = out.Lookup.PaidAt
			if paidAt == nil {
				paidAt = &w.meta.Now
			}
		}
	}
	var n int64
	var err error
	if om := w.s.orders; om != nil {
		n, err = w.mappedTransition(om, o, out.To, txnID, paidAt)
	} else {
		n, err = w.exec(sqlTransition, out.To, nullString(txnID), nullTime(paidAt), now, o.ID, o.Version, recon.StatusPending)
	}
	if err != nil || n == 0 {
		return n, err
	}
	note := recon.NewNotification(o, out.To, txnID, paidAt, w.meta.Now)
	w.outbox = append(w.outbox, note.ID, o.ID, 0, o.MerchantID, note.Event, string(note.Payload()), now, now)
	w.nOutbox++
	w.audit = append(w.audit, o.ID, o.Status, out.To, o.Version, o.Version+1, w.meta.Source, nullRunID(w.meta.RunID), now)
	w.nAudit++
	return n, nil
}

// flush writes the gathered outbox rows (insert-ignore: a notification
// already queued stays as it is) and audit rows.
func (w *batchWriter) flush() error {
	for table, ids := range w.settled {
		if _, err := w.execOnce(strings.Replace(stateSQL(sqlStateSettled, table), "id = ?", "id IN (?"+strings.Repeat(", ?", len(ids)-1)+")", 1),
			append([]any{false}, int64sAny(ids)...)...); err != nil {
			return fmt.Errorf("settle %s: %w", table, err)
		}
	}
	if err := w.insertRows(w.s.insertIgnore("merchant_notifications", outboxCols, outboxVals), outboxVals, w.outbox, w.nOutbox); err != nil {
		return fmt.Errorf("enqueue notifications: %w", err)
	}
	audit := "INSERT INTO order_transitions (" + auditCols + ") VALUES (" + auditVals + ")"
	if err := w.insertRows(audit, auditVals, w.audit, w.nAudit); err != nil {
		return fmt.Errorf("write audit rows: %w", err)
	}
	refundAudit := "INSERT INTO refund_transitions (" + refundAuditCols + ") VALUES (" + auditVals + ")"
	if err := w.insertRows(refundAudit, auditVals, w.refundAudit, w.nRefundAudit); err != nil {
		return fmt.Errorf("write refund audit rows: %w", err)
	}
	return nil
}

// insertRows runs the one-row INSERT query for n rows whose arguments are
// args, rowsPerInsert rows per statement: the VALUES tuple is repeated.
func (w *batchWriter) insertRows(query, vals string, args []any, n int) error {
	if n == 0 {
		return nil
	}
	per := len(args) / n
	tuple := "(" + vals + ")"
	head, tail, _ := strings.Cut(query, tuple)
	for start := 0; start < n; start += rowsPerInsert {
		end := min(start+rowsPerInsert, n)
		q := head + strings.Repeat(tuple+", ", end-start-1) + tuple + tail
		if _, err := w.execOnce(q, args[start*per:end*per]...); err != nil {
			return err
		}
	}
	return nil
}

// exec runs a statement of the batch through a statement prepared once per
// transaction, and returns the rows it affected.
func (w *batchWriter) exec(query string, args ...any) (int64, error) {
	if w.sqlTx == nil {
		return exec(w.tx, query, args...)
	}
	st := w.stmts[query]
	if st == nil {
		var err error
		if st, err = w.sqlTx.PrepareContext(w.ctx, query); err != nil {
			return 0, err
		}
		w.stmts[query] = st
	}
	res, err := st.ExecContext(w.ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execOnce runs a statement used once per transaction.
func (w *batchWriter) execOnce(query string, args ...any) (int64, error) {
	if w.sqlTx == nil {
		return exec(w.tx, query, args...)
	}
	res, err := w.sqlTx.ExecContext(w.ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (w *batchWriter) close() {
	for _, st := range w.stmts {
		_ = st.Close()
	}
}

// mappedTransition is the guarded update on a mapped table (the guard is
// orderMap.guard; a version column is incremented). updated_at and paid_at
// are set when mapped, a transaction id only where the row has none.
// recon's state row of the order is settled in the same transaction.
func (w *batchWriter) mappedTransition(om *orderMap, o recon.Order, toStatus recon.Status, txnID string, paidAt *time.Time) (int64, error) {
	key, err := w.orderKey(om, o.ID)
	if err != nil {
		return 0, err
	}
	to, ok := om.write[toStatus]
	if !ok {
		return 0, fmt.Errorf("no status value is mapped for %s", toStatus)
	}
	set := []string{om.status + " = ?"}
	args := []any{to}
	if om.version != "" {
		set = append(set, om.version+" = "+om.version+" + 1")
	}
	if om.updated != "" {
		set = append(set, om.updated+" = ?")
		args = append(args, dbTime(w.meta.Now))
	}
	if om.paid != "" && paidAt != nil {
		set = append(set, om.paid+" = ?")
		args = append(args, dbTime(*paidAt))
	}
	if om.txn != "" && txnID != "" {
		set = append(set, fmt.Sprintf("%s = COALESCE(NULLIF(%s, ''), ?)", om.txn, om.txn))
		args = append(args, txnID)
	}
	guard, guardArgs, ok := om.guard(o)
	if !ok {
		return 0, nil // not a pending value: the order was not read pending
	}
	q := "UPDATE " + om.table + " SET " + strings.Join(set, ", ") + " WHERE " + om.id + " = ? AND " + guard
	args = append(append(args, om.keyArg(key)), guardArgs...)
	n, err := w.exec(q, args...)
	if err != nil || n == 0 {
		return n, err
	}
	if w.settled == nil {
		w.settled = map[string][]int64{}
	}
	w.settled[om.kind.state] = append(w.settled[om.kind.state], o.ID)
	return n, nil
}

// loadKeys reads, on a mapped table, the keys of the orders of a batch that
// move, in one query.
func (w *batchWriter) loadKeys(outs []recon.Outcome) error {
	if w.s.orders == nil {
		return nil
	}
	w.keys = map[int64]string{}
	var ids []int64
	for _, out := range outs {
		if out.Action == recon.ActionTransition {
			ids = append(ids, out.Order.ID)
		}
	}
	for start := 0; start < len(ids); start += rowsPerInsert {
		var rows []stateRow
		if err := w.tx.Select("id, order_key").Where("id IN ?", ids[start:min(start+rowsPerInsert, len(ids))]).Find(&rows).Error; err != nil {
			return fmt.Errorf("read order keys: %w", err)
		}
		for _, r := range rows {
			w.keys[r.ID] = r.OrderKey
		}
	}
	return nil
}

// orderKey returns the mapped table's id of recon's order ref.
func (w *batchWriter) orderKey(om *orderMap, id int64) (string, error) {
	if key, ok := w.keys[id]; ok && om == w.s.orders {
		return key, nil
	}
	// Not loaded with the batch (a writer used outside CommitBatch, a
	// refund).
	var key string
	if err := w.tx.Raw("SELECT order_key FROM "+om.kind.state+" WHERE id = ?", id).Row().Scan(&key); err != nil {
		return "", fmt.Errorf("find %d in %s: %w", id, om.kind.state, err)
	}
	return key, nil
}

func int64sAny(v []int64) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}
