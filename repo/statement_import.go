package repo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// StatementImporting is the status of a statement row whose lines are still
// being stored: no reader sees it (live is NULL) until the import completes.
// StatementReplaced is the status of the row an import replaced, whose lines
// are being removed.
const (
	StatementImporting = "IMPORTING"
	StatementReplaced  = "REPLACED"
)

// statementChunkLines is how many lines one transaction of an import stores:
// a Galera cluster replicates a transaction as one write set, which its
// limits (wsrep_max_ws_rows, wsrep_max_ws_size) bound and which stalls the
// other nodes' commits while it is applied, so a day of a million lines is
// never one transaction.
const statementChunkLines = 10000

// LineSource produces a statement's lines: it calls emit for each, in file
// order, and returns the file's own totals. Its error fails the import. It
// is called twice (the file is read through once before anything is
// written), and must produce the same lines each time.
type LineSource func(emit func(recon.StatementLine) error) (recon.StatementTotals, error)

// ImportStatement stores the statement of imp.Channel for imp.Day, each line
// matched to its local order by order number on the channel (or, lacking
// one, by transaction id).
//
// src is read through once and every line checked before anything is
// written, so a file that does not parse holds no database lock while it is
// read and leaves nothing behind. The lines are then stored in transactions
// of statementChunkLines lines under a new statement row that no reader sees
// (status IMPORTING, live NULL); the last transaction makes it the day's
// statement (IMPORTED) in place of the previous one, whose lines are then
// removed, again in chunks. A reader therefore sees the previous import
// whole until the new one is complete, then the new one whole; an import
// that fails or dies half-way leaves nothing visible, and its rows are
// removed by the next import of the channel.
//
// When src fails, or a line cannot be stored (the same transaction and
// refund number twice in the file, or in another day's statement already),
// nothing of the import is kept and the error is returned; record it with
// FailStatement. Imports of one channel must not run at the same time (the
// statement lease of the channel keeps them apart).
func (s *Store) ImportStatement(ctx context.Context, imp StatementImport, now time.Time, src LineSource) (Statement, error) {
	fail := func(err error) (Statement, error) {
		return Statement{}, fmt.Errorf("import statement %s %s: %w", imp.Channel, imp.Day, err)
	}
	if _, err := src(checkLine); err != nil {
		return fail(err)
	}
	if err := s.dropUnpublished(ctx, imp.Channel); err != nil {
		return fail(err)
	}
	id, err := s.startImport(ctx, imp, now)
	if err != nil {
		return fail(err)
	}
	published := false
	defer func() {
		if !published {
			// What was stored is invisible; remove it now rather than at
			// the next import.
			_ = s.dropStatement(context.WithoutCancel(ctx), id)
		}
	}()
	w := &lineWriter{ctx: ctx, s: s, id: id, imp: imp}
	tot, err := src(w.add)
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		return fail(err)
	}
	old, err := s.liveStatementID(ctx, imp)
	if err != nil {
		return fail(err)
	}
	if err := s.checkDuplicateLines(ctx, id, old); err != nil {
		return fail(err)
	}
	if s.orders != nil {
		// A mapped table's lines are matched after they are stored.
		if _, err := s.mappedMatchStatementLines(ctx, id); err != nil {
			return fail(err)
		}
	}
	if err := s.publishStatement(ctx, imp, id, old, w, tot, now); err != nil {
		return fail(err)
	}
	published = true
	if old != 0 {
		if err := s.dropStatement(ctx, old); err != nil {
			return fail(fmt.Errorf("imported, but removing the lines of the statement it replaced failed (the next import removes them): %w", err))
		}
	}
	st, err := s.GetStatement(ctx, imp.Channel, imp.Day)
	if err != nil {
		return fail(err)
	}
	return st, nil
}

// checkLine is what ImportStatement checks of each line before it stores
// any.
func checkLine(l recon.StatementLine) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if len(l.OrderNo) > 64 || len(l.ChannelTxnID) > 128 || len(l.RefundNo) > 128 {
		return fmt.Errorf("line %d: order number, transaction id or refund number too long", l.LineNo)
	}
	return nil
}

// startImport inserts the invisible statement row the lines of imp are
// stored under, and returns its id.
func (s *Store) startImport(ctx context.Context, imp StatementImport, now time.Time) (int64, error) {
	t := dbTime(now)
	var id int64
	err := s.retryTx(ctx, "statement", func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO channel_statements (channel, bill_date, status, source, origin, file_sha256, file_size,
			live, imported_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`, imp.Channel, imp.Day, StatementImporting,
			imp.Source, truncate(imp.Origin, 1024), imp.SHA256, imp.Size, t, t).Error; err != nil {
			return err
		}
		last := "SELECT last_insert_rowid()"
		if s.dialect == MySQL {
			last = "SELECT LAST_INSERT_ID()"
		}
		return tx.Raw(last).Scan(&id).Error
	})
	if err != nil {
		return 0, fmt.Errorf("insert statement row: %w", err)
	}
	return id, nil
}

// liveStatementID is the id of the statement readers see for imp's day, 0
// when there is none.
func (s *Store) liveStatementID(ctx context.Context, imp StatementImport) (int64, error) {
	var ids []int64
	if err := s.db.WithContext(ctx).Raw("SELECT id FROM channel_statements WHERE channel = ? AND bill_date = ? AND live = 1",
		imp.Channel, imp.Day).Scan(&ids).Error; err != nil {
		return 0, fmt.Errorf("read the current statement: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return ids[0], nil
}

// checkDuplicateLines fails when a line of statement id has the same
// transaction and refund number as a line of another statement of the
// channel that readers see (other than old, which id replaces). The same
// key twice within id is refused by the unique key as the lines are stored.
func (s *Store) checkDuplicateLines(ctx context.Context, id, old int64) error {
	var dup []struct {
		LineNo int64
		Day    dayValue
	}
	err := s.db.WithContext(ctx).Raw(`SELECT n.line_no, st.bill_date AS day FROM channel_statement_lines n
		JOIN channel_statement_lines o ON o.channel = n.channel AND o.kind = n.kind AND o.channel_txn_id = n.channel_txn_id
		     AND o.refund_no = n.refund_no AND o.statement_id <> n.statement_id
		JOIN channel_statements st ON st.id = o.statement_id AND st.live = 1
		WHERE n.statement_id = ? AND o.statement_id <> ? LIMIT 1`, id, old).Scan(&dup).Error
	if err != nil {
		return fmt.Errorf("look for lines stored already: %w", err)
	}
	if len(dup) > 0 {
		return fmt.Errorf("line %d is already stored in the statement of %s (the same transaction and refund number)", dup[0].LineNo, string(dup[0].Day))
	}
	return nil
}

// publishStatement makes statement id, with its counts and the file's
// totals, the statement of imp's day in one transaction, in place of old
// (0: none), which readers no longer see from then on.
func (s *Store) publishStatement(ctx context.Context, imp StatementImport, id, old int64, w *lineWriter, tot recon.StatementTotals, now time.Time) error {
	set := `status = ?, live = 1, line_count = ?, lines_payments = ?, lines_refunds = ?, lines_fees = ?,
		payments_count = ?, payments_amount = ?, refunds_count = ?, refunds_amount = ?, fees_amount = ?, updated_at = ?`
	args := []any{StatementImported, w.n, w.payments, w.refunds, w.fees}
	if tot.Present {
		args = append(args, tot.PaymentsCount, tot.PaymentsAmount, tot.RefundsCount, tot.RefundsAmount, tot.FeesAmount)
	} else {
		args = append(args, nil, nil, nil, nil, nil)
	}
	args = append(args, dbTime(now), id)
	return s.retryTx(ctx, "statement", func(tx *gorm.DB) error {
		if old != 0 {
			n, err := exec(tx, "UPDATE channel_statements SET live = NULL, status = ? WHERE id = ? AND live = 1", StatementReplaced, old)
			if err != nil {
				return fmt.Errorf("retire the previous statement: %w", err)
			}
			if n != 1 {
				return errors.New("another import of the same day completed meanwhile")
			}
		}
		if err := tx.Exec("UPDATE channel_statements SET "+set+" WHERE id = ?", args...).Error; err != nil {
			if isDuplicate(err) {
				return errors.New("another import of the same day completed meanwhile")
			}
			return fmt.Errorf("publish the statement: %w", err)
		}
		return nil
	})
}

// dropUnpublished removes the statement rows of channel that readers do not
// see (imports that died, statements replaced whose lines were not all
// removed), with their lines.
func (s *Store) dropUnpublished(ctx context.Context, channel string) error {
	var ids []int64
	if err := s.db.WithContext(ctx).Raw("SELECT id FROM channel_statements WHERE channel = ? AND live IS NULL", channel).
		Scan(&ids).Error; err != nil {
		return fmt.Errorf("read unfinished imports: %w", err)
	}
	for _, id := range ids {
		if err := s.dropStatement(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// dropStatement removes an unpublished statement row and its lines, the
// lines in transactions of statementChunkLines.
func (s *Store) dropStatement(ctx context.Context, id int64) error {
	for {
		n, err := s.writeOne(ctx, "statement", `DELETE FROM channel_statement_lines WHERE id IN
			(SELECT id FROM (SELECT id FROM channel_statement_lines WHERE statement_id = ? LIMIT ?) chunk)`, id, statementChunkLines)
		if err != nil {
			return fmt.Errorf("remove the lines of statement row %d: %w", id, err)
		}
		if n == 0 {
			break
		}
	}
	if _, err := s.writeOne(ctx, "statement", "DELETE FROM channel_statements WHERE id = ? AND live IS NULL", id); err != nil {
		return fmt.Errorf("remove statement row %d: %w", id, err)
	}
	return nil
}

// FailStatement records that the statement of imp could not be imported. A
// day that has no stored statement gets a FAILED row with reason; a day whose
// earlier import stands keeps it (lines and status) and only notes reason in
// its error.
func (s *Store) FailStatement(ctx context.Context, imp StatementImport, reason string, now time.Time) error {
	t, reason := dbTime(now), truncate(reason, 1024)
	err := s.retryTx(ctx, "statement", func(tx *gorm.DB) error {
		n, err := exec(tx, "UPDATE channel_statements SET error = ?, updated_at = ? WHERE channel = ? AND bill_date = ? AND live = 1 AND status <> ?",
			reason, t, imp.Channel, imp.Day, StatementFailed)
		if err != nil || n == 1 {
			return err
		}
		n, err = exec(tx, `UPDATE channel_statements SET status = ?, source = ?, origin = ?, file_sha256 = ?, file_size = ?,
			error = ?, updated_at = ? WHERE channel = ? AND bill_date = ? AND live = 1`,
			StatementFailed, imp.Source, truncate(imp.Origin, 1024), imp.SHA256, imp.Size, reason, t, imp.Channel, imp.Day)
		if err != nil || n == 1 {
			return err
		}
		return tx.Exec(`INSERT INTO channel_statements (channel, bill_date, status, source, origin, file_sha256, file_size, error, updated_at, live)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`, imp.Channel, imp.Day, StatementFailed, imp.Source, truncate(imp.Origin, 1024),
			imp.SHA256, imp.Size, reason, t).Error
	})
	if err != nil {
		return fmt.Errorf("record failed statement %s %s: %w", imp.Channel, imp.Day, err)
	}
	return nil
}

// lineWriter gathers lines into chunks of statementChunkLines, each stored
// in its own transaction with multi-row inserts.
type lineWriter struct {
	ctx context.Context
	s   *Store
	id  int64
	imp StatementImport

	args                 []any // of the chunk's lines, lineParams each
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
	if err := checkLine(l); err != nil {
		return err
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
	if w.pending == statementChunkLines {
		return w.flush()
	}
	return nil
}

// flush stores the chunk in one transaction, run again whole when the
// database aborts it as a conflict.
func (w *lineWriter) flush() error {
	if w.pending == 0 {
		return nil
	}
	per := w.s.linesPerInsert()
	first := w.n - int64(w.pending) + 1
	err := w.s.retryTx(w.ctx, "statement", func(tx *gorm.DB) error {
		sqlTx, _ := tx.Statement.ConnPool.(*sql.Tx)
		var full *sql.Stmt
		defer func() {
			if full != nil {
				_ = full.Close()
			}
		}()
		for at := 0; at < w.pending; at += per {
			k := min(per, w.pending-at)
			args := w.args[at*lineParams : (at+k)*lineParams]
			q := w.s.lineInsertQuery(k)
			var err error
			switch {
			case sqlTx == nil:
				err = tx.Exec(q, args...).Error
			case k == per:
				if full == nil {
					if full, err = sqlTx.PrepareContext(w.ctx, q); err != nil {
						return err
					}
				}
				_, err = full.ExecContext(w.ctx, args...)
			default:
				_, err = sqlTx.ExecContext(w.ctx, q, args...)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if isDuplicate(err) {
			return fmt.Errorf("a line of lines %d-%d is already stored (the same transaction and refund number twice in this file): %w",
				first, w.n, err)
		}
		return fmt.Errorf("insert lines: %w", err)
	}
	w.args, w.pending = w.args[:0], 0
	return nil
}

// isDuplicate recognises a unique key violation.
func isDuplicate(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Error 1062") || strings.Contains(msg, "UNIQUE constraint failed")
}
