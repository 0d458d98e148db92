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
	NewMismatches    int64 `json:"new_mismatches"`
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
	amount_mismatches, refund_mismatches, fee_mismatches, status_mismatches, new_mismatches,
	run_id, error, imported_at, reconciled_at, updated_at`

// scanStatement reads one row of statementCols.
func scanStatement(rows *sql.Rows) (Statement, error) {
	var st Statement
	var day dayValue
	var pc, pa, rc, ra, fa, runID sql.NullInt64
	var imported, reconciled sql.NullTime
	err := rows.Scan(&st.ID, &st.Channel, &day, &st.Status, &st.Source, &st.Origin, &st.SHA256, &st.Size, &st.Lines,
		&pc, &pa, &rc, &ra, &fa, &st.Payments, &st.Refunds, &st.Fees, &st.Matched, &st.Settled, &st.ChannelOnly, &st.LocalOnly,
		&st.AmountMismatches, &st.RefundMismatches, &st.FeeMismatches, &st.StatusMismatches, &st.NewMismatches,
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
	q := "SELECT " + statementCols + " FROM channel_statements WHERE " + where + " ORDER BY bill_date DESC, channel"
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

// LineSource produces a statement's lines: it calls emit for each, in file
// order, and returns the file's own totals. Its error fails the import.
type LineSource func(emit func(recon.StatementLine) error) (recon.StatementTotals, error)

// ImportStatement stores the statement of imp.Channel for imp.Day in one
// transaction: the statement row (IMPORTED, its counters reset), the day's
// previous lines deleted, and every line of src inserted with multi-row
// inserts, each matched to its local order by order number (or, lacking one,
// by transaction id) on the channel. When src fails, or a line cannot be
// stored (a line that belongs to another day's statement already), nothing
// of the import is kept and the error is returned; record it with
// FailStatement.
func (s *Store) ImportStatement(ctx context.Context, imp StatementImport, now time.Time, src LineSource) (Statement, error) {
	fail := func(err error) (Statement, error) {
		return Statement{}, fmt.Errorf("import statement %s %s: %w", imp.Channel, imp.Day, err)
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		id, err := s.claimStatement(tx, imp, now)
		if err != nil {
			return err
		}
		if err := tx.Exec("DELETE FROM channel_statement_lines WHERE statement_id = ?", id).Error; err != nil {
			return fmt.Errorf("delete previous lines: %w", err)
		}
		w := &lineWriter{ctx: ctx, s: s, tx: tx, id: id, imp: imp}
		if sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx); ok {
			w.sqlTx = sqlTx
		}
		defer w.close()
		tot, err := src(w.add)
		if err != nil {
			return err
		}
		if err := w.flush(); err != nil {
			return err
		}
		set := `status = ?, line_count = ?, lines_payments = ?, lines_refunds = ?, lines_fees = ?,
			payments_count = ?, payments_amount = ?, refunds_count = ?, refunds_amount = ?, fees_amount = ?`
		args := []any{StatementImported, w.n, w.payments, w.refunds, w.fees}
		if tot.Present {
			args = append(args, tot.PaymentsCount, tot.PaymentsAmount, tot.RefundsCount, tot.RefundsAmount, tot.FeesAmount)
		} else {
			args = append(args, nil, nil, nil, nil, nil)
		}
		return tx.Exec("UPDATE channel_statements SET "+set+" WHERE id = ?", append(args, id)...).Error
	})
	if err != nil {
		return fail(err)
	}
	st, err := s.GetStatement(ctx, imp.Channel, imp.Day)
	if err != nil {
		return fail(err)
	}
	if s.orders != nil {
		// A mapped table's lines are matched after they are stored.
		if _, err := s.mappedMatchStatementLines(ctx, st.ID); err != nil {
			return fail(err)
		}
	}
	return st, nil
}

// claimStatement creates or resets the statement row of imp inside tx and
// returns its id.
func (s *Store) claimStatement(tx *gorm.DB, imp StatementImport, now time.Time) (int64, error) {
	t := dbTime(now)
	reset := `status = ?, source = ?, origin = ?, file_sha256 = ?, file_size = ?, line_count = 0,
		payments_count = NULL, payments_amount = NULL, refunds_count = NULL, refunds_amount = NULL, fees_amount = NULL,
		lines_payments = 0, lines_refunds = 0, lines_fees = 0, matched = 0, settled = 0, channel_only = 0, local_only = 0,
		amount_mismatches = 0, refund_mismatches = 0, fee_mismatches = 0, status_mismatches = 0, new_mismatches = 0,
		run_id = NULL, error = '', imported_at = ?, reconciled_at = NULL, updated_at = ?`
	args := []any{StatementImported, imp.Source, truncate(imp.Origin, 1024), imp.SHA256, imp.Size, t, t}
	n, err := exec(tx, "UPDATE channel_statements SET "+reset+" WHERE channel = ? AND bill_date = ?", append(args, imp.Channel, imp.Day)...)
	if err != nil {
		return 0, fmt.Errorf("reset statement row: %w", err)
	}
	if n == 0 {
		if err := tx.Exec(`INSERT INTO channel_statements (channel, bill_date, status, source, origin, file_sha256, file_size, imported_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, imp.Channel, imp.Day, StatementImported, imp.Source, truncate(imp.Origin, 1024),
			imp.SHA256, imp.Size, t, t).Error; err != nil {
			return 0, fmt.Errorf("insert statement row: %w", err)
		}
	}
	var id int64
	if err := tx.Raw("SELECT id FROM channel_statements WHERE channel = ? AND bill_date = ?", imp.Channel, imp.Day).Scan(&id).Error; err != nil {
		return 0, fmt.Errorf("read statement id: %w", err)
	}
	return id, nil
}

// FailStatement records that the statement of imp could not be imported. A
// day that has no stored statement gets a FAILED row with reason; a day whose
// earlier import stands keeps it (lines and status) and only notes reason in
// its error.
func (s *Store) FailStatement(ctx context.Context, imp StatementImport, reason string, now time.Time) error {
	t, reason := dbTime(now), truncate(reason, 1024)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		n, err := exec(tx, "UPDATE channel_statements SET error = ?, updated_at = ? WHERE channel = ? AND bill_date = ? AND status <> ?",
			reason, t, imp.Channel, imp.Day, StatementFailed)
		if err != nil || n == 1 {
			return err
		}
		n, err = exec(tx, `UPDATE channel_statements SET status = ?, source = ?, origin = ?, file_sha256 = ?, file_size = ?,
			error = ?, updated_at = ? WHERE channel = ? AND bill_date = ?`,
			StatementFailed, imp.Source, truncate(imp.Origin, 1024), imp.SHA256, imp.Size, reason, t, imp.Channel, imp.Day)
		if err != nil || n == 1 {
			return err
		}
		return tx.Exec(`INSERT INTO channel_statements (channel, bill_date, status, source, origin, file_sha256, file_size, error, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, imp.Channel, imp.Day, StatementFailed, imp.Source, truncate(imp.Origin, 1024),
			imp.SHA256, imp.Size, reason, t).Error
	})
	if err != nil {
		return fmt.Errorf("record failed statement %s %s: %w", imp.Channel, imp.Day, err)
	}
	return nil
}

// lineWriter gathers lines into multi-row inserts inside the import's
// transaction.
type lineWriter struct {
	ctx   context.Context
	s     *Store
	tx    *gorm.DB
	sqlTx *sql.Tx
	id    int64
	imp   StatementImport
	full  *sql.Stmt // the insert of linesPerInsert rows, prepared once

	args                 []any
	pending              int
	n, payments, refunds int64
	fees                 int64
}

// The lines of one INSERT are a derived table of SELECTs joined with the
// orders: each line is matched to its local order by order number on the
// channel (a unique index), or, for a line without one (Stripe), by
// transaction id. A subquery per VALUES row instead costs MariaDB
// milliseconds a line.
const (
	lineInsert = `INSERT INTO channel_statement_lines (statement_id, channel, bill_date, line_no, kind, order_no,
	channel_txn_id, refund_no, amount, fee, currency, occurred_at, order_id)
	SELECT v.statement_id, v.channel, v.bill_date, v.line_no, v.kind, v.order_no, v.channel_txn_id, v.refund_no,
	       v.amount, v.fee, v.currency, v.occurred_at, ` + orderIDOfLine + ` FROM (`
	lineFirst = `SELECT ? AS statement_id, ? AS channel, ? AS bill_date, ? AS line_no, ? AS kind, ? AS order_no,
	? AS channel_txn_id, ? AS refund_no, ? AS amount, ? AS fee, ? AS currency, ? AS occurred_at`
	lineNext   = ` UNION ALL SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`
	lineTail   = `) v LEFT JOIN payment_orders o ON o.order_no = v.order_no AND o.channel = v.channel`
	lineParams = 12
)

// orderIDOfLine is the matched order of line v joined with order o.
const orderIDOfLine = `COALESCE(o.id, CASE WHEN v.order_no = '' THEN
	(SELECT MIN(t.id) FROM payment_orders t WHERE t.channel_txn_id = v.channel_txn_id AND t.channel = v.channel) END)`

// linesPerInsert is the lines of one INSERT: SQLite allows 500 terms in a
// compound SELECT.
func (s *Store) linesPerInsert() int {
	if s.dialect == SQLite {
		return 250
	}
	return 500
}

func (w *lineWriter) add(l recon.StatementLine) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if len(l.OrderNo) > 64 || len(l.ChannelTxnID) > 128 || len(l.RefundNo) > 128 {
		return fmt.Errorf("line %d: order number, transaction id or refund number too long", l.LineNo)
	}
	w.args = append(w.args, w.id, w.imp.Channel, w.imp.Day, l.LineNo, string(l.Kind), l.OrderNo, l.ChannelTxnID, l.RefundNo,
		l.Amount, l.Fee, l.Currency, dbTime(l.OccurredAt))
	w.pending++
	w.n++
	if l.Kind == recon.LinePayment {
		w.payments++
	} else {
		w.refunds++
	}
	w.fees += l.Fee
	if w.pending == w.s.linesPerInsert() {
		return w.flush()
	}
	return nil
}

func (w *lineWriter) flush() error {
	if w.pending == 0 {
		return nil
	}
	q := w.s.lineInsertQuery(w.pending)
	var err error
	switch {
	case w.sqlTx == nil:
		err = w.tx.Exec(q, w.args...).Error
	case w.pending == w.s.linesPerInsert():
		if w.full == nil {
			if w.full, err = w.sqlTx.PrepareContext(w.ctx, q); err != nil {
				break
			}
		}
		_, err = w.full.ExecContext(w.ctx, w.args...)
	default:
		_, err = w.sqlTx.ExecContext(w.ctx, q, w.args...)
	}
	if err != nil {
		if isDuplicate(err) {
			return fmt.Errorf("a line of lines %d-%d is already stored (the same transaction and refund number in this file twice, or in another day's statement): %w",
				w.n-int64(w.pending)+1, w.n, err)
		}
		return fmt.Errorf("insert lines: %w", err)
	}
	w.args, w.pending = w.args[:0], 0
	return nil
}

func (w *lineWriter) close() {
	if w.full != nil {
		_ = w.full.Close()
	}
}

// isDuplicate recognises a unique key violation.
func isDuplicate(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Error 1062") || strings.Contains(msg, "UNIQUE constraint failed")
}

// MatchStatementLines matches the lines of statement id that have no order
// yet (an order inserted after the import) to their orders. It returns how
// many it matched.
func (s *Store) MatchStatementLines(ctx context.Context, id int64) (int64, error) {
	if s.orders != nil {
		return s.mappedMatchStatementLines(ctx, id)
	}
	n, err := exec(s.db.WithContext(ctx), `UPDATE channel_statement_lines SET order_id = COALESCE(
		(SELECT o.id FROM payment_orders o WHERE o.order_no = channel_statement_lines.order_no AND o.channel = channel_statement_lines.channel),
		CASE WHEN channel_statement_lines.order_no = '' THEN (SELECT MIN(t.id) FROM payment_orders t
		 WHERE t.channel_txn_id = channel_statement_lines.channel_txn_id AND t.channel = channel_statement_lines.channel) END)
		WHERE statement_id = ? AND order_id IS NULL`, id)
	if err != nil {
		return 0, fmt.Errorf("match lines of statement %d: %w", id, err)
	}
	return n, nil
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
// agree with their order: a local PAID order of the same amount and
// currency, and (with feeRate set) a fee less than one minor unit from
// amount × feeRate, which recon.ComparePayment would find matched with
// nothing to report. Every line it skips is such a line; the lines it
// returns are decided by recon.ComparePayment. On a mapped orders table it
// skips nothing.
func (s *Store) PaymentsToCheck(ctx context.Context, id, afterID int64, limit int, feeRate float64) ([]StatementPayment, error) {
	if s.orders != nil {
		return s.StatementPayments(ctx, id, afterID, limit)
	}
	return s.statementPayments(ctx, id, afterID, limit,
		` AND (o.id IS NULL OR o.status <> ? OR o.amount <> l.amount OR o.currency <> l.currency
		       OR (? > 0 AND ABS(ABS(l.fee) - l.amount * ?) >= 1))`,
		[]any{recon.StatusPaid, feeRate, feeRate})
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
// Facts.Total sums the order's refunds in every stored statement. Refunds of
// orders recon does not know are read with UnmatchedRefunds.
func (s *Store) StatementRefunds(ctx context.Context, id, afterOrderID int64, limit int) ([]StatementRefund, error) {
	rows, err := s.db.WithContext(ctx).Raw(`SELECT `+lineCols+`, g.order_id, g.n, g.amount, g.cmin, g.cmax,
		(SELECT SUM(r.amount) FROM channel_statement_lines r WHERE r.order_id = g.order_id AND r.kind = ?),
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
	err := s.db.WithContext(ctx).Exec(`UPDATE channel_statements SET status = ?, matched = ?, settled = ?, channel_only = ?,
		local_only = ?, amount_mismatches = ?, refund_mismatches = ?, fee_mismatches = ?, status_mismatches = ?,
		new_mismatches = ?, run_id = ?, error = '', reconciled_at = ?, updated_at = ? WHERE id = ?`,
		StatementReconciled, c.Matched, c.Settled, c.ChannelOnly, c.LocalOnly, c.AmountMismatches, c.RefundMismatches,
		c.FeeMismatches, c.StatusMismatches, c.NewMismatches, nullRunID(runID), dbTime(now), dbTime(now), id).Error
	if err != nil {
		return fmt.Errorf("finish statement %d: %w", id, err)
	}
	return nil
}
