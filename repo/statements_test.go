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
