package repo

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// Statement statuses (channel_statements.status).
const (
	StatementImported   = "IMPORTED"
	StatementReconciled = "RECONCILED"
	StatementFailed     = "FAILED"
)

// Statement sources (channel_statements.source).
const (
	SourceFetch = "fetch"
	SourceFile  = "file"
)

// StatementImport says which day's statement is stored and where its file
// came from.
type StatementImport struct {
	Channel string
	Day     string // YYYY-MM-DD
	Source  string // SourceFetch or SourceFile
	Origin  string // URL (without secrets) or file path
	SHA256  string // hex of the raw file
	Size    int64
}

// StatementCounts are the findings of a statement's last reconciliation.
type StatementCounts struct {
	Lines            int64 `json:"lines"`
	Matched          int64 `json:"matched"`
	Settled          int64 `json:"settled"`
	ChannelOnly      int64 `json:"channel_only"`
	LocalOnly        int64 `json:"local_only"`
	AmountMismatches int64 `json:"amount_mismatches"`
	RefundMismatches int64 `json:"refund_mismatches"`
	FeeMismatches    int64 `json:"fee_mismatches"`
	StatusMismatches int64 `json:"status_mismatches"`
	// StatementConflicts counts the lines the channel's lookup did not
	// confirm, and those whose transaction id is not their order's.
	StatementConflicts int64 `json:"statement_conflicts"`
	NewMismatches      int64 `json:"new_mismatches"`
}

// Statement is a channel_statements row.
type Statement struct {
	ID           int64
	Channel      string
	Day          string
	Status       string
	Source       string
	Origin       string
	SHA256       string
	Size         int64
	Totals       recon.StatementTotals // the file's own, Present when it has them
	Payments     int64                 // payment lines
	Refunds      int64                 // refund lines
	Fees         int64                 // sum of the lines' fees
	RunID        int64
	Error        string
	ImportedAt   *time.Time
	ReconciledAt *time.Time
	UpdatedAt    time.Time
	StatementCounts
}

const statementCols = `id, channel, bill_date, status, source, origin, file_sha256, file_size, line_count,
	payments_count, payments_amount, refunds_count, refunds_amount, fees_amount,
	lines_payments, lines_refunds, lines_fees, matched, settled, channel_only, local_only,
	amount_mismatches, refund_mismatches, fee_mismatches, status_mismatches, statement_conflicts, new_mismatches,
	run_id, error, imported_at, reconciled_at, updated_at`

// scanStatement reads one row of statementCols.
func scanStatement(rows *sql.Rows) (Statement, error) {
	var st Statement
	var day dayValue
	var pc, pa, rc, ra, fa, runID sql.NullInt64
	var imported, reconciled sql.NullTime
	err := rows.Scan(&st.ID, &st.Channel, &day, &st.Status, &st.Source, &st.Origin, &st.SHA256, &st.Size, &st.Lines,
		&pc, &pa, &rc, &ra, &fa, &st.Payments, &st.Refunds, &st.Fees, &st.Matched, &st.Settled, &st.ChannelOnly, &st.LocalOnly,
		&st.AmountMismatches, &st.RefundMismatches, &st.FeeMismatches, &st.StatusMismatches, &st.StatementConflicts, &st.NewMismatches,
		&runID, &st.Error, &imported, &reconciled, &st.UpdatedAt)
	if err != nil {
		return st, err
	}
	st.Day = string(day)
	if pc.Valid {
		st.Totals = recon.StatementTotals{Present: true, PaymentsCount: pc.Int64, PaymentsAmount: pa.Int64,
			RefundsCount: rc.Int64, RefundsAmount: ra.Int64, FeesAmount: fa.Int64}
	}
	st.RunID = runID.Int64
	if imported.Valid {
		t := imported.Time.UTC()
		st.ImportedAt = &t
	}
	if reconciled.Valid {
		t := reconciled.Time.UTC()
		st.ReconciledAt = &t
	}
	st.UpdatedAt = st.UpdatedAt.UTC()
	return st, nil
}

// dayValue scans a bill_date: a DATE (time) on MySQL, text on SQLite.
type dayValue string

func (d *dayValue) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		*d = dayValue(x.Format(time.DateOnly))
	case string:
		*d = dayValue(x[:min(len(x), 10)])
	case []byte:
		*d = dayValue(string(x[:min(len(x), 10)]))
	default:
		return fmt.Errorf("bill_date of type %T", v)
	}
	return nil
}

// GetStatement reads the statement of channel for day. It returns
// recon.ErrNotFound if none was imported or tried.
func (s *Store) GetStatement(ctx context.Context, channel, day string) (Statement, error) {
	list, err := s.listStatements(s.db.WithContext(ctx), "channel = ? AND bill_date = ?", []any{channel, day}, 1)
	if err != nil {
		return Statement{}, fmt.Errorf("read statement %s %s: %w", channel, day, err)
	}
	if len(list) == 0 {
		return Statement{}, fmt.Errorf("statement %s %s: %w", channel, day, recon.ErrNotFound)
	}
	return list[0], nil
}

// StatementFilter selects statements; zero fields select everything.
type StatementFilter struct {
	Channel  string
	From, To string // bill_date in [From, To], YYYY-MM-DD
	Limit    int
}

// ListStatements returns the statements matching f, latest day first.
func (s *Store) ListStatements(ctx context.Context, f StatementFilter) ([]Statement, error) {
	var where []string
	var args []any
	if f.Channel != "" {
		where, args = append(where, "channel = ?"), append(args, f.Channel)
	}
	if f.From != "" {
		where, args = append(where, "bill_date >= ?"), append(args, f.From)
	}
	if f.To != "" {
		where, args = append(where, "bill_date <= ?"), append(args, f.To)
	}
	if len(where) == 0 {
		where = []string{"1 = 1"}
	}
	list, err := s.listStatements(s.db.WithContext(ctx), strings.Join(where, " AND "), args, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list statements: %w", err)
	}
	return list, nil
}

func (s *Store) listStatements(db *gorm.DB, where string, args []any, limit int) ([]Statement, error) {
	// A statement being imported (live NULL) is not a statement yet.
	q := "SELECT " + statementCols + " FROM channel_statements WHERE live = 1 AND (" + where + ") ORDER BY bill_date DESC, channel"
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := db.Raw(q, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Statement
	for rows.Next() {
		st, err := scanStatement(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// MatchStatementLines matches the lines of statement id that have no order
// yet (an order inserted after the import) to their orders. It returns how
// many it matched.
//
// It works through the unmatched lines in id order, at most
// matchChunkLines of them per transaction, each transaction retried on a
// conflict: a big day's lines in one UPDATE would exceed a cluster's
// write-set limit (wsrep_max_ws_rows). A line is only ever matched (its
// order_id goes from NULL to the order's), so the chunks add up to what one
// UPDATE would have done, and a rerun chunk matches nothing twice.
func (s *Store) MatchStatementLines(ctx context.Context, id int64) (int64, error) {
	if s.orders != nil {
		return s.mappedMatchStatementLines(ctx, id)
	}
	var matched int64
	for after := int64(0); ; {
		var last sql.NullInt64
		var n int64
		err := s.retryTx(ctx, "statement", func(tx *gorm.DB) error {
			last, n = sql.NullInt64{}, 0
			if err := tx.Raw(`SELECT MAX(id) FROM (SELECT id FROM channel_statement_lines
				WHERE statement_id = ? AND order_id IS NULL AND id > ? ORDER BY id LIMIT ?) chunk`,
				id, after, s.matchChunkLines()).Row().Scan(&last); err != nil || !last.Valid {
				return err
			}
			var err error
			// Only the lines that find their order are written (and
			// counted: SQLite would count a NULL set to NULL).
			n, err = exec(tx, `UPDATE channel_statement_lines SET order_id = `+sqlLineOrder+`
				WHERE statement_id = ? AND order_id IS NULL AND id > ? AND id <= ? AND `+sqlLineOrder+` IS NOT NULL`,
				id, after, last.Int64)
			return err
		})
		if err != nil {
			return matched, fmt.Errorf("match lines of statement %d: %w", id, err)
		}
		if !last.Valid {
			return matched, nil
		}
		matched += n
		after = last.Int64
	}
}

// sqlLineOrder is the order of a statement line in an UPDATE of
// channel_statement_lines: by order number on the line's channel, or for a
// line without one, by transaction id (the first order of it).
const sqlLineOrder = `COALESCE(
	(SELECT o.id FROM payment_orders o WHERE o.order_no = channel_statement_lines.order_no AND o.channel = channel_statement_lines.channel),
	CASE WHEN channel_statement_lines.order_no = '' THEN (SELECT MIN(t.id) FROM payment_orders t
	 WHERE t.channel_txn_id = channel_statement_lines.channel_txn_id AND t.channel = channel_statement_lines.channel) END)`

// matchChunkLines is how many unmatched lines one transaction of
// MatchStatementLines takes at most: as many as one of an import stores.
func (s *Store) matchChunkLines() int {
	if s.matchChunk > 0 {
		return s.matchChunk
	}
	return statementChunkLines
}

// StatementPayment is a payment line of a statement with its local order.
type StatementPayment struct {
	LineID int64
	Line   recon.StatementLine
	Order  *recon.Order // nil when recon does not know the order
}

// orderCols are the payment_orders columns of a joined order, as o.
const orderCols = `o.id, o.order_no, o.merchant_id, o.channel, o.channel_txn_id, o.amount, o.currency, o.status,
	o.version, o.query_attempts, o.next_query_at, o.last_query_error, o.created_at, o.updated_at, o.paid_at`

// joinedOrder scans orderCols of a LEFT JOIN (all NULL when no order).
type joinedOrder struct {
	id, amount, version, attempts          sql.NullInt64
	no, merchant, channel, txn, cur, st, e sql.NullString
	next, created, updated, paid           sql.NullTime
}

func (j *joinedOrder) dest() []any {
	return []any{&j.id, &j.no, &j.merchant, &j.channel, &j.txn, &j.amount, &j.cur, &j.st,
		&j.version, &j.attempts, &j.next, &j.e, &j.created, &j.updated, &j.paid}
}

func (j *joinedOrder) order() *recon.Order {
	if !j.id.Valid {
		return nil
	}
	r := orderRow{ID: j.id.Int64, OrderNo: j.no.String, MerchantID: j.merchant.String, Channel: j.channel.String,
		ChannelTxnID: j.txn, Amount: j.amount.Int64, Currency: j.cur.String, Status: j.st.String,
		Version: j.version.Int64, QueryAttempts: int(j.attempts.Int64), NextQueryAt: j.next, LastQueryError: j.e,
		CreatedAt: j.created.Time, UpdatedAt: j.updated.Time, PaidAt: j.paid}
	o := r.toDomain()
	return &o
}

const lineCols = `l.id, l.line_no, l.kind, l.order_no, l.channel_txn_id, l.refund_no, l.amount, l.fee, l.currency, l.occurred_at`

func scanLine(rows *sql.Rows, extra ...any) (int64, recon.StatementLine, error) {
	var id int64
	var l recon.StatementLine
	var kind string
	err := rows.Scan(append([]any{&id, &l.LineNo, &kind, &l.OrderNo, &l.ChannelTxnID, &l.RefundNo, &l.Amount, &l.Fee, &l.Currency, &l.OccurredAt}, extra...)...)
	l.Kind = recon.StatementLineKind(kind)
	l.OccurredAt = l.OccurredAt.UTC()
	return id, l, err
}

// StatementPayments returns up to limit payment lines of statement id after
// line afterID, in line id order, each with its local order as it is now.
func (s *Store) StatementPayments(ctx context.Context, id, afterID int64, limit int) ([]StatementPayment, error) {
	return s.statementPayments(ctx, id, afterID, limit, "", nil)
}

// PaymentsToCheck is StatementPayments without the lines that certainly
// agree with their order: a local PAID order of the same amount, currency
// and (where both have one) transaction id, and (with feeRate set) a fee
// less than one minor unit from amount × feeRate, which
// recon.ComparePayment would find matched with nothing to report. Every
// line it skips is such a line; the lines it returns are decided by
// recon.ComparePayment. On a mapped orders table it skips nothing.
func (s *Store) PaymentsToCheck(ctx context.Context, id, afterID int64, limit int, feeRate float64) ([]StatementPayment, error) {
	if s.orders != nil {
		return s.StatementPayments(ctx, id, afterID, limit)
	}
	return s.statementPayments(ctx, id, afterID, limit,
		` AND (o.id IS NULL OR o.status <> ? OR o.amount <> l.amount OR o.currency <> l.currency
		       OR (o.channel_txn_id <> '' AND l.channel_txn_id <> '' AND o.channel_txn_id <> l.channel_txn_id)
		       OR (? > 0 AND ABS(ABS(l.fee) - l.amount * ?) >= 1))`,
		[]any{recon.StatusPaid, feeRate, feeRate})
}

// MakeDue makes the PENDING orders among orders due at once (next_query_at
// = now, unless they are due earlier already), keeping reason in
// last_query_error: a statement line asked for their lookup, and the lookup
// failed, so the next pass looks them up. Their status, version and attempts
// are left alone. On a mapped table the bookkeeping is recon_order_state's.
// It returns how many orders it made due.
func (s *Store) MakeDue(ctx context.Context, orders []recon.Order, reason string, now time.Time) (int64, error) {
	reason = truncate(recon.CleanText(reason), 1024)
	ids := make([]int64, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	due := " AND (next_query_at IS NULL OR next_query_at > ?)"
	if s.orders != nil {
		return s.makeDue(ctx, s.orders.kind.key, ids, "UPDATE "+s.orders.kind.state+" SET next_query_at = ?, last_query_error = ? WHERE active = ?"+due,
			[]any{dbTime(now), reason, true, dbTime(now)})
	}
	return s.makeDue(ctx, "orders", ids, "UPDATE payment_orders SET next_query_at = ?, last_query_error = ?, updated_at = ? WHERE status = ?"+due,
		[]any{dbTime(now), reason, dbTime(now), recon.StatusPending, dbTime(now)})
}

// makeDue runs update (ending in a WHERE clause) for the rows ids, a bounded
// number of ids per statement, and returns how many rows it changed.
func (s *Store) makeDue(ctx context.Context, what string, ids []int64, update string, args []any) (int64, error) {
	var n int64
	for start := 0; start < len(ids); start += rowsPerInsert {
		part := ids[start:min(start+rowsPerInsert, len(ids))]
		in := " AND id IN (?" + strings.Repeat(", ?", len(part)-1) + ")"
		m, err := s.writeOne(ctx, "make_due", update+in, append(append([]any(nil), args...), int64sAny(part)...)...)
		if err != nil {
			return n, fmt.Errorf("make %d %s due (ids %d…%d): %w", len(part), what, part[0], part[len(part)-1], err)
		}
		n += m
	}
	return n, nil
}

func (s *Store) statementPayments(ctx context.Context, id, afterID int64, limit int, filter string, filterArgs []any) ([]StatementPayment, error) {
	args := append([]any{id, recon.LinePayment, afterID}, filterArgs...)
	rows, err := s.db.WithContext(ctx).Raw(`SELECT `+lineCols+`, `+s.orderColsOf()+`
		FROM channel_statement_lines l `+s.orderJoinOf("l.order_id")+`
		WHERE l.statement_id = ? AND l.kind = ? AND l.id > ?`+filter+` ORDER BY l.id LIMIT ?`, append(args, limit)...).Rows()
	if err != nil {
		return nil, fmt.Errorf("read payments of statement %d: %w", id, err)
	}
	defer rows.Close()
	out := make([]StatementPayment, 0, limit)
	for rows.Next() {
		var j joinedOrder
		lid, l, err := scanLine(rows, j.dest()...)
		if err != nil {
			return nil, fmt.Errorf("read payments of statement %d: %w", id, err)
		}
		out = append(out, StatementPayment{LineID: lid, Line: l, Order: j.order()})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	orders := make([]*recon.Order, len(out))
	for i := range out {
		orders[i] = out[i].Order
	}
	return out, s.fillMapped(ctx, orders)
}

// StatementRefund is a statement's refunds of one order (or one refund line
// of an order recon does not know) with the local order.
type StatementRefund struct {
	Facts   recon.RefundFacts
	Order   *recon.Order
	OrderID int64 // the keyset cursor of StatementRefunds
}

// StatementRefunds returns the refunds of statement id grouped by local
// order, for orders after afterOrderID in id order, up to limit orders.
// Facts.Total sums the order's refunds in every statement readers see (an
// import still under way, or one it replaced, is not counted). Refunds of
// orders recon does not know are read with UnmatchedRefunds.
func (s *Store) StatementRefunds(ctx context.Context, id, afterOrderID int64, limit int) ([]StatementRefund, error) {
	rows, err := s.db.WithContext(ctx).Raw(`SELECT `+lineCols+`, g.order_id, g.n, g.amount, g.cmin, g.cmax,
		(SELECT SUM(r.amount) FROM channel_statement_lines r JOIN channel_statements rs ON rs.id = r.statement_id AND rs.live = 1
		  WHERE r.order_id = g.order_id AND r.kind = ?),
		`+s.orderColsOf()+`
		FROM (SELECT order_id, MIN(id) AS first_id, COUNT(*) AS n, SUM(amount) AS amount,
		             MIN(currency) AS cmin, MAX(currency) AS cmax
		        FROM channel_statement_lines WHERE statement_id = ? AND kind = ? AND order_id > ?
		       GROUP BY order_id ORDER BY order_id LIMIT ?) g
		JOIN channel_statement_lines l ON l.id = g.first_id
		`+s.orderJoinOf("g.order_id")+`
		ORDER BY g.order_id`, recon.LineRefund, id, recon.LineRefund, afterOrderID, limit).Rows()
	if err != nil {
		return nil, fmt.Errorf("read refunds of statement %d: %w", id, err)
	}
	defer rows.Close()
	var out []StatementRefund
	for rows.Next() {
		var orderID, n, amount, total int64
		var cmin, cmax string
		var j joinedOrder
		_, l, err := scanLine(rows, append([]any{&orderID, &n, &amount, &cmin, &cmax, &total}, j.dest()...)...)
		if err != nil {
			return nil, fmt.Errorf("read refunds of statement %d: %w", id, err)
		}
		f := recon.RefundFacts{Line: l, Count: n, Amount: amount, Total: total, Currency: cmin}
		if cmin != cmax {
			f.Currency = ""
		}
		out = append(out, StatementRefund{Facts: f, Order: j.order(), OrderID: orderID})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	orders := make([]*recon.Order, len(out))
	for i := range out {
		orders[i] = out[i].Order
	}
	return out, s.fillMapped(ctx, orders)
}

// UnmatchedRefunds returns up to limit refund lines of statement id after
// line afterID whose order recon does not know, in line id order.
func (s *Store) UnmatchedRefunds(ctx context.Context, id, afterID int64, limit int) ([]StatementPayment, error) {
	rows, err := s.db.WithContext(ctx).Raw(`SELECT `+lineCols+` FROM channel_statement_lines l
		WHERE l.statement_id = ? AND l.kind = ? AND l.id > ? AND l.order_id IS NULL ORDER BY l.id LIMIT ?`,
		id, recon.LineRefund, afterID, limit).Rows()
	if err != nil {
		return nil, fmt.Errorf("read unmatched refunds of statement %d: %w", id, err)
	}
	defer rows.Close()
	var out []StatementPayment
	for rows.Next() {
		lid, l, err := scanLine(rows)
		if err != nil {
			return nil, fmt.Errorf("read unmatched refunds of statement %d: %w", id, err)
		}
		out = append(out, StatementPayment{LineID: lid, Line: l})
	}
	return out, rows.Err()
}

// LocalOnlyOrders returns up to limit orders of channel after afterID, in id
// order, that are PAID with paid_at in [from, to) and have no payment line in
// the statements statementIDs.
func (s *Store) LocalOnlyOrders(ctx context.Context, channel string, from, to time.Time, statementIDs []int64, afterID int64, limit int) ([]recon.Order, error) {
	if s.orders != nil {
		return s.mappedLocalOnlyOrders(ctx, channel, from, to, statementIDs, afterID, limit)
	}
	ids := make([]any, len(statementIDs))
	for i, v := range statementIDs {
		ids[i] = v
	}
	q := `SELECT ` + orderCols + ` FROM payment_orders o
		WHERE o.channel = ? AND o.paid_at >= ? AND o.paid_at < ? AND o.status = ? AND o.id > ?
		  AND NOT EXISTS (SELECT 1 FROM channel_statement_lines l WHERE l.order_id = o.id AND l.kind = ?
		                  AND l.statement_id IN (?` + strings.Repeat(", ?", len(ids)-1) + `))
		ORDER BY o.id LIMIT ?`
	args := append([]any{channel, dbTime(from), dbTime(to), recon.StatusPaid, afterID, recon.LinePayment}, ids...)
	rows, err := s.db.WithContext(ctx).Raw(q, append(args, limit)...).Rows()
	if err != nil {
		return nil, fmt.Errorf("read local-only orders of %s: %w", channel, err)
	}
	defer rows.Close()
	var out []recon.Order
	for rows.Next() {
		var j joinedOrder
		if err := rows.Scan(j.dest()...); err != nil {
			return nil, fmt.Errorf("read local-only orders of %s: %w", channel, err)
		}
		out = append(out, *j.order())
	}
	return out, rows.Err()
}

// Finding is one mismatch found by statement reconciliation, about order
// (for CHANNEL_ONLY an order recon does not know: ID 0, the line's order
// number and the statement's channel).
type Finding struct {
	Order    recon.Order
	Mismatch recon.Mismatch
}

// RecordFindings upserts findings in one transaction (one open row per
// order and kind; CHANNEL_ONLY one per channel and transaction id) and
// returns how many were new or reopened.
func (s *Store) RecordFindings(ctx context.Context, fs []Finding, meta CommitMeta) (int64, error) {
	var n int64
	err := s.retryTx(ctx, "record_findings", func(tx *gorm.DB) error {
		n = 0
		for _, f := range fs {
			isNew, err := s.upsertMismatch(tx, f.Order, f.Mismatch, meta)
			if err != nil {
				return err
			}
			if isNew {
				n++
			}
		}
		return nil
	})
	return n, err
}

// FinishStatement records the counts of a reconciliation of statement id
// and marks it RECONCILED.
func (s *Store) FinishStatement(ctx context.Context, id int64, c StatementCounts, runID int64, now time.Time) error {
	// One UPDATE that sets every count: rerun whole on a conflict.
	_, err := s.writeOne(ctx, "statement", `UPDATE channel_statements SET status = ?, matched = ?, settled = ?, channel_only = ?,
		local_only = ?, amount_mismatches = ?, refund_mismatches = ?, fee_mismatches = ?, status_mismatches = ?,
		statement_conflicts = ?, new_mismatches = ?, run_id = ?, error = '', reconciled_at = ?, updated_at = ? WHERE id = ?`,
		StatementReconciled, c.Matched, c.Settled, c.ChannelOnly, c.LocalOnly, c.AmountMismatches, c.RefundMismatches,
		c.FeeMismatches, c.StatusMismatches, c.StatementConflicts, c.NewMismatches, nullRunID(runID), dbTime(now), dbTime(now), id)
	if err != nil {
		return fmt.Errorf("finish statement %d: %w", id, err)
	}
	return nil
}
