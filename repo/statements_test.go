package repo_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

func stmtLine(no int, kind recon.StatementLineKind, orderNo, txn, refund string, amount int64) recon.StatementLine {
	return recon.StatementLine{LineNo: no, Kind: kind, OrderNo: orderNo, ChannelTxnID: txn, RefundNo: refund,
		Amount: amount, Fee: amount / 100, Currency: "CNY", OccurredAt: now.Add(time.Duration(no) * time.Minute)}
}

func linesOf(ls ...recon.StatementLine) repo.LineSource {
	return func(emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
		for _, l := range ls {
			if err := emit(l); err != nil {
				return recon.StatementTotals{}, err
			}
		}
		return recon.StatementTotals{Present: true, PaymentsCount: 9, PaymentsAmount: 99}, nil
	}
}

func TestImportStatementReplacesTheDayAtomically(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		known := repotest.Order("known", now)
		byTxn := repotest.Order("by-txn", now)
		byTxn.ChannelTxnID = "pi_123"
		elsewhere := repotest.Order("elsewhere", now)
		elsewhere.Channel = "other"
		repotest.Seed(t, s, &known, &byTxn, &elsewhere)
		imp := repo.StatementImport{Channel: "sim", Day: "2026-11-22", Source: repo.SourceFile, Origin: "/tmp/x.csv", SHA256: strings.Repeat("a", 64), Size: 10}
		first := []recon.StatementLine{
			stmtLine(2, recon.LinePayment, "known", "T1", "", 1000),
			stmtLine(3, recon.LinePayment, "", "pi_123", "", 1000),
			stmtLine(4, recon.LinePayment, "elsewhere", "T3", "", 1000),
			stmtLine(5, recon.LineRefund, "known", "T1", "R1", 300),
		}
		st, err := s.ImportStatement(ctx, imp, now, linesOf(first...))
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != repo.StatementImported || st.Lines != 4 || st.Payments != 3 || st.Refunds != 1 || st.Fees != 33 ||
			!st.Totals.Present || st.Totals.PaymentsCount != 9 || st.Day != "2026-11-22" || st.SHA256 != imp.SHA256 || st.Origin != "/tmp/x.csv" {
			t.Fatalf("statement %+v", st)
		}
		pays, err := s.StatementPayments(ctx, st.ID, 0, 10)
		if err != nil || len(pays) != 3 {
			t.Fatalf("payments %v %v", pays, err)
		}
		if pays[0].Order == nil || pays[0].Order.ID != known.ID || pays[1].Order == nil || pays[1].Order.ID != byTxn.ID || pays[2].Order != nil {
			t.Errorf("matched orders: %+v %+v %+v", pays[0].Order, pays[1].Order, pays[2].Order)
		}
		if pays[0].Line != first[0] {
			t.Errorf("line read back %+v, want %+v", pays[0].Line, first[0])
		}
		refunds, err := s.StatementRefunds(ctx, st.ID, 0, 10)
		if err != nil || len(refunds) != 1 || refunds[0].Facts.Total != 300 || refunds[0].Facts.Count != 1 || refunds[0].Order.ID != known.ID || refunds[0].Facts.Line.RefundNo != "R1" {
			t.Fatalf("refunds %+v %v", refunds, err)
		}

		// An import of another day that never completed (its process was
		// killed) left a refund of the same order behind a row readers do not
		// see: it is not part of the order's refunds.
		if err := s.DB().Exec(`INSERT INTO channel_statements (channel, bill_date, status, source, origin, file_sha256, file_size,
			live, imported_at, updated_at) VALUES ('sim', '2026-11-23', ?, 'file', '', '', 0, NULL, ?, ?)`,
			repo.StatementImporting, now, now).Error; err != nil {
			t.Fatal(err)
		}
		if err := s.DB().Exec(`INSERT INTO channel_statement_lines (statement_id, channel, bill_date, line_no, kind, order_no,
			channel_txn_id, refund_no, amount, fee, currency, occurred_at, order_id)
			SELECT id, 'sim', '2026-11-23', 2, ?, 'known', 'T1', 'R2', 700, 0, 'CNY', ?, ? FROM channel_statements WHERE status = ?`,
			recon.LineRefund, now, known.ID, repo.StatementImporting).Error; err != nil {
			t.Fatal(err)
		}
		if refunds, err = s.StatementRefunds(ctx, st.ID, 0, 10); err != nil || len(refunds) != 1 || refunds[0].Facts.Total != 300 {
			t.Fatalf("refunds with an unfinished import beside: %+v %v", refunds, err)
		}
		if err := s.DB().Exec(`DELETE FROM channel_statement_lines WHERE bill_date = '2026-11-23'`).Error; err != nil {
			t.Fatal(err)
		}
		if err := s.DB().Exec(`DELETE FROM channel_statements WHERE bill_date = '2026-11-23'`).Error; err != nil {
			t.Fatal(err)
		}

		// The same day again: the lines are replaced, not duplicated.
		second := []recon.StatementLine{stmtLine(2, recon.LinePayment, "known", "T1", "", 1000), stmtLine(3, recon.LinePayment, "late", "T9", "", 500)}
		if st, err = s.ImportStatement(ctx, imp, now.Add(time.Hour), linesOf(second...)); err != nil || st.Lines != 2 {
			t.Fatalf("re-import: %+v %v", st, err)
		}
		if n := countLines(t, s); n != 2 {
			t.Fatalf("%d lines after re-import, want 2", n)
		}
		// An order inserted after the import is matched before reconciling.
		late := repotest.Order("late", now)
		repotest.Seed(t, s, &late)
		if n, err := s.MatchStatementLines(ctx, st.ID); err != nil || n != 1 {
			t.Fatalf("matched %d, %v", n, err)
		}

		// A failing source keeps nothing of the new file, and the day's
		// earlier import stands, with the reason noted.
		boom := errors.New("line 7: bad amount")
		bad := func(emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
			for i := 0; i < 1200; i++ { // past a multi-row insert
				if err := emit(stmtLine(i+2, recon.LinePayment, fmt.Sprintf("n%d", i), fmt.Sprintf("X%d", i), "", 100)); err != nil {
					return recon.StatementTotals{}, err
				}
			}
			return recon.StatementTotals{}, boom
		}
		if _, err := s.ImportStatement(ctx, imp, now, bad); !errors.Is(err, boom) {
			t.Fatalf("failing import: %v", err)
		}
		if err := s.FailStatement(ctx, imp, boom.Error(), now); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.GetStatement(ctx, "sim", "2026-11-22"); st.Status != repo.StatementImported || st.Lines != 2 || st.Error != boom.Error() || countLines(t, s) != 2 {
			t.Fatalf("after a failed re-import: %+v, %d lines", st, countLines(t, s))
		}
		// A day never imported is FAILED with the reason, and has no lines.
		other := imp
		other.Day = "2026-11-23"
		if _, err := s.ImportStatement(ctx, other, now, bad); err == nil {
			t.Fatal("failing import succeeded")
		}
		_ = s.FailStatement(ctx, other, boom.Error(), now)
		if st, err := s.GetStatement(ctx, "sim", "2026-11-23"); err != nil || st.Status != repo.StatementFailed || st.Error != boom.Error() || st.Lines != 0 {
			t.Fatalf("failed day: %+v %v", st, err)
		}
		if n := countLines(t, s); n != 2 {
			t.Fatalf("%d lines, want 2", n)
		}
		// A duplicate line fails the import, naming the lines.
		dup := []recon.StatementLine{stmtLine(2, recon.LinePayment, "a", "D1", "", 1), stmtLine(3, recon.LinePayment, "b", "D1", "", 1)}
		if _, err := s.ImportStatement(ctx, other, now, linesOf(dup...)); err == nil || !strings.Contains(err.Error(), "lines 1-2") {
			t.Fatalf("duplicate: %v", err)
		}
		list, err := s.ListStatements(ctx, repo.StatementFilter{Channel: "sim"})
		if err != nil || len(list) != 2 || list[0].Day != "2026-11-23" {
			t.Fatalf("list %+v %v", list, err)
		}
	})
}

func countLines(t *testing.T, s *repo.Store) int64 {
	t.Helper()
	var n int64
	if err := s.DB().Raw("SELECT COUNT(*) FROM channel_statement_lines").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestChannelOnlyMismatchesAreOnePerTransaction(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		l := stmtLine(2, recon.LinePayment, "ghost", "G1", "", 100)
		f := func(txn string) repo.Finding {
			l.ChannelTxnID = txn
			return repo.Finding{Order: recon.Order{OrderNo: "ghost", Channel: "sim"}, Mismatch: recon.ChannelOnly(l)}
		}
		meta := repo.CommitMeta{Now: now, Source: "statement"}
		n, err := db.Store.RecordFindings(ctx, []repo.Finding{f("G1"), f("G2"), f("G1")}, meta)
		if err != nil || n != 2 {
			t.Fatalf("new %d, %v", n, err)
		}
		if n, _ := db.Store.RecordFindings(ctx, []repo.Finding{f("G1")}, meta); n != 0 {
			t.Fatalf("seen again counted new")
		}
		ms, _ := db.Store.ListMismatches(ctx, repo.MismatchFilter{Kind: recon.MismatchChannelOnly})
		if len(ms) != 2 || ms[0].Occurrences+ms[1].Occurrences != 4 {
			t.Fatalf("%+v", ms)
		}
	})
}

// manyLines is a source of n payment lines of orders that do not exist;
// during calls beyond the first, at is called after each line.
func manyLines(n int, prefix string, at func(pass, line int) error) repo.LineSource {
	pass := 0
	return func(emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
		pass++
		for i := range n {
			if err := emit(stmtLine(i+2, recon.LinePayment, fmt.Sprintf("%s%d", prefix, i), fmt.Sprintf("%sT%d", prefix, i), "", 100)); err != nil {
				return recon.StatementTotals{}, err
			}
			if at != nil {
				if err := at(pass, i+1); err != nil {
					return recon.StatementTotals{}, err
				}
			}
		}
		return recon.StatementTotals{}, nil
	}
}

// An import reads the file through before it writes anything (other writers
// are not held up while a long file is parsed), stores its lines in chunks
// that no reader sees, and replaces the day's statement only when complete:
// during the import a reader sees the previous statement whole, and an import
// that fails half-way leaves nothing of itself.
func TestImportStatementInChunksIsAllOrNothingForReaders(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		imp := repo.StatementImport{Channel: "sim", Day: "2026-11-22", Source: repo.SourceFile, Origin: "f.csv", SHA256: strings.Repeat("b", 64)}
		if _, err := s.ImportStatement(ctx, imp, now, manyLines(3, "old", nil)); err != nil {
			t.Fatal(err)
		}
		other := impatient(t, db)
		const n = 25000 // three chunks
		seen := false
		st, err := s.ImportStatement(ctx, imp, now, manyLines(n, "new", func(pass, line int) error {
			switch {
			case pass == 1 && line == n:
				// The file is being read before anything is stored: another
				// process writes at once.
				if _, _, err := other.AcquireLease(ctx, "statement:other", "another", time.Minute); err != nil {
					return fmt.Errorf("a writer waiting on the parse: %w", err)
				}
			case pass == 2 && line == n:
				// Two chunks are stored; a reader still sees the old day.
				seen = true
				cur, err := other.GetStatement(ctx, "sim", "2026-11-22")
				if err != nil {
					return err
				}
				pays, err := other.StatementPayments(ctx, cur.ID, 0, 10)
				if err != nil {
					return err
				}
				if cur.Lines != 3 || len(pays) != 3 || pays[0].Line.OrderNo != "old0" || countLines(t, other) < 20003 {
					return fmt.Errorf("mid-import a reader sees %+v with %d payments, %d lines stored", cur, len(pays), countLines(t, other))
				}
			}
			return nil
		}))
		if err != nil || !seen {
			t.Fatalf("import: %v (reader looked: %v)", err, seen)
		}
		if st.Lines != n || countLines(t, s) != n {
			t.Fatalf("after the import: %+v, %d lines stored; want %d", st, countLines(t, s), n)
		}

		// Failing half-way through storing: nothing of it stays, the day
		// is the complete import.
		boom := errors.New("connection lost")
		_, err = s.ImportStatement(ctx, imp, now, manyLines(n, "half", func(pass, line int) error {
			if pass == 2 && line == 15000 {
				return boom
			}
			return nil
		}))
		if !errors.Is(err, boom) {
			t.Fatalf("half import: %v", err)
		}
		cur, err := s.GetStatement(ctx, "sim", "2026-11-22")
		if err != nil || cur.ID != st.ID || cur.Lines != n || countLines(t, s) != n {
			t.Fatalf("after a failed import: %+v %v, %d lines stored", cur, err, countLines(t, s))
		}
		var rows int64
		if err := s.DB().Raw("SELECT COUNT(*) FROM channel_statements").Scan(&rows).Error; err != nil || rows != 1 {
			t.Fatalf("%d statement rows, %v; want the day's one", rows, err)
		}
	})
}

// A line already in another day's statement of the channel is refused, and
// names that day.
func TestImportStatementRefusesALineOfAnotherDay(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		day1 := repo.StatementImport{Channel: "sim", Day: "2026-11-22", Source: repo.SourceFile}
		day2 := day1
		day2.Day = "2026-11-23"
		if _, err := db.Store.ImportStatement(ctx, day1, now, linesOf(stmtLine(2, recon.LinePayment, "a", "T1", "", 1))); err != nil {
			t.Fatal(err)
		}
		_, err := db.Store.ImportStatement(ctx, day2, now, linesOf(stmtLine(2, recon.LinePayment, "b", "T2", "", 1), stmtLine(3, recon.LinePayment, "a", "T1", "", 1)))
		if err == nil || !strings.Contains(err.Error(), "line 3 is already stored in the statement of 2026-11-22") {
			t.Fatalf("import of a line of another day: %v", err)
		}
		if _, err := db.Store.GetStatement(ctx, "sim", "2026-11-23"); !errors.Is(err, recon.ErrNotFound) {
			t.Fatalf("the refused day: %v", err)
		}
		if n := countLines(t, db.Store); n != 1 {
			t.Fatalf("%d lines stored, want 1", n)
		}
		// The same day again replaces its own lines.
		if _, err := db.Store.ImportStatement(ctx, day1, now, linesOf(stmtLine(2, recon.LinePayment, "a", "T1", "", 1))); err != nil {
			t.Fatal(err)
		}
	})
}

// On a cluster that bounds a transaction's rows (wsrep_max_ws_rows=20000,
// as .ci/galera sets it), a 100,000-line day is imported, in chunks, and a
// reader on another node sees it whole, then a re-import in its place.
func TestImportStatementWithinAClustersWriteSetLimit(t *testing.T) {
	db := repotest.NewGalera(t)
	ctx := context.Background()
	var limit int64
	if err := db.Store.DB().Raw("SELECT @@wsrep_max_ws_rows").Scan(&limit).Error; err != nil {
		t.Fatal(err)
	}
	if limit == 0 || limit > 20000 {
		t.Fatalf("wsrep_max_ws_rows is %d on the cluster; the test needs at most 20000 (SET GLOBAL wsrep_max_ws_rows = 20000)", limit)
	}
	importer := db.Open(t)
	imp := repo.StatementImport{Channel: "sim", Day: "2026-11-22", Source: repo.SourceFile}
	const n = 100000
	start := time.Now()
	for _, lines := range []int{n, n / 4} { // the second replaces the first
		st, err := importer.ImportStatement(ctx, imp, now, manyLines(lines, fmt.Sprint(lines), nil))
		if err != nil || st.Lines != int64(lines) {
			t.Fatalf("import of %d lines: %+v %v", lines, st, err)
		}
		t.Logf("%d lines imported in %s", lines, time.Since(start).Round(time.Millisecond))
		start = time.Now()
	}
	st, err := db.Store.GetStatement(ctx, "sim", "2026-11-22")
	if err != nil || st.Lines != n/4 || countLines(t, db.Store) != n/4 {
		t.Fatalf("the reader sees %+v %v, %d lines stored", st, err, countLines(t, db.Store))
	}
	pays, err := db.Store.StatementPayments(ctx, st.ID, 0, 1)
	if err != nil || len(pays) != 1 || pays[0].Line.OrderNo != "250000" {
		t.Fatalf("first payment %+v %v", pays, err)
	}
}

// A statement with more unmatched lines than one transaction of
// MatchStatementLines takes (3 here) is matched entirely, each line to its
// own order, as one UPDATE over the statement would match it. On a cluster
// the write-set limit (wsrep_max_ws_rows) is lowered below the statement's
// lines meanwhile: one transaction over them all would be refused.
func TestMatchStatementLinesInChunks(t *testing.T) {
	repotest.ForSchemasAndCluster(t, repotest.Schemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		early := repotest.Order("early", now)
		db.Seed(t, &early)
		lines := []recon.StatementLine{stmtLine(2, recon.LinePayment, "early", "TE", "", 1000)}
		for i := range 10 {
			lines = append(lines, stmtLine(i+3, recon.LinePayment, fmt.Sprintf("late%d", i), fmt.Sprintf("TL%d", i), "", 1000))
		}
		lines = append(lines, stmtLine(13, recon.LinePayment, "ghost", "TG", "", 1000))
		imp := repo.StatementImport{Channel: "sim", Day: "2026-11-22", Source: repo.SourceFile}
		st, err := db.Store.ImportStatement(ctx, imp, now, linesOf(lines...))
		if err != nil {
			t.Fatal(err)
		}
		// Orders the payment service wrote after the import.
		late := make([]*recon.Order, 10)
		for i := range late {
			o := repotest.Order(fmt.Sprintf("late%d", i), now)
			late[i] = &o
		}
		db.Seed(t, late...)
		db.Settle(t)
		if db.Cluster != nil {
			lowerWriteSetLimit(t, db, 5)
		}
		s := db.Open(t)
		repo.SetMatchChunkLines(s, 3)
		if n, err := s.MatchStatementLines(ctx, st.ID); err != nil || n != 10 {
			t.Fatalf("matched %d lines, %v; want the 10 late orders'", n, err)
		}
		pays, err := db.Store.StatementPayments(ctx, st.ID, 0, 100)
		if err != nil || len(pays) != len(lines) {
			t.Fatalf("payments %+v %v", pays, err)
		}
		for _, p := range pays {
			switch {
			case p.Line.OrderNo == "ghost" && p.Order != nil:
				t.Errorf("the ghost line matched %+v", p.Order)
			case p.Line.OrderNo != "ghost" && (p.Order == nil || p.Order.OrderNo != p.Line.OrderNo):
				t.Errorf("line %s matched %+v", p.Line.OrderNo, p.Order)
			}
		}
		if n, err := s.MatchStatementLines(ctx, st.ID); err != nil || n != 0 {
			t.Fatalf("matched %d lines again, %v", n, err)
		}
	})
}

// lowerWriteSetLimit sets wsrep_max_ws_rows to rows on every node of db's
// cluster until the test ends. The variable is global: the cluster tests
// run one at a time (.ci/run).
func lowerWriteSetLimit(t *testing.T, db repotest.DB, rows int64) {
	t.Helper()
	for i := range db.Nodes() {
		node := db.OpenNode(t, i).DB()
		var was int64
		if err := node.Raw("SELECT @@GLOBAL.wsrep_max_ws_rows").Row().Scan(&was); err != nil {
			t.Fatal(err)
		}
		if err := node.Exec("SET GLOBAL wsrep_max_ws_rows = ?", rows).Error; err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := node.Exec("SET GLOBAL wsrep_max_ws_rows = ?", was).Error; err != nil {
				t.Errorf("restore wsrep_max_ws_rows on node %d: %v", i+1, err)
			}
		})
	}
}
