package repo_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// teamRow reads columns of the team's row of order no as text.
func teamRow(t *testing.T, db repotest.DB, no string, cols ...string) []string {
	t.Helper()
	m := db.Schema.Mapping
	out := make([]string, len(cols))
	dest := make([]any, len(cols))
	for i := range out {
		dest[i] = new(any)
	}
	q := "SELECT "
	for i, c := range cols {
		if i > 0 {
			q += ", "
		}
		q += c
	}
	if err := db.Store.DB().Raw(q+" FROM "+m.Table+" WHERE "+m.Columns.OrderNo+" = ?", no).Row().Scan(dest...); err != nil {
		t.Fatal(err)
	}
	for i, d := range dest {
		switch v := (*d.(*any)).(type) {
		case nil:
			out[i] = "NULL"
		case []byte:
			out[i] = string(v)
		case time.Time:
			out[i] = v.UTC().Format("2006-01-02 15:04:05.000")
		case float64:
			out[i] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			out[i] = fmt.Sprint(v)
		}
	}
	return out
}

// TestMappedTableIsWrittenAsMapped commits a PAID transition on each mapped
// schema and reads the team's row as the team would: its own status value,
// version bumped where there is one, updated_at and paid_at set, the
// transaction id filled; amounts read exactly (12.34 yuan is 1234), a
// lower-case currency equal to the channel's; other_terminal orders never
// scanned, verified or moved.
func TestMappedTableIsWrittenAsMapped(t *testing.T) {
	for _, sc := range []repotest.Schema{repotest.SchemaA, repotest.SchemaB} {
		t.Run(sc.Name, func(t *testing.T) {
			for _, newDB := range []func(testing.TB, repotest.Schema) repotest.DB{repotest.NewSQLiteSchema, repotest.NewMySQLSchema} {
				db := newDB(t, sc)
				t.Run(string(db.Dialect), func(t *testing.T) {
					ctx := context.Background()
					o := repotest.Order("W1", now)
					o.Amount = 1234
					refunded := repotest.Order("W2", now)
					db.Seed(t, &o, &refunded)
					m := sc.Mapping
					if len(m.OtherTerminal) > 0 {
						if err := db.Store.DB().Exec("UPDATE "+m.Table+" SET "+m.Columns.Status+" = ? WHERE "+m.Columns.OrderNo+" = 'W2'",
							m.OtherTerminal[1]).Error; err != nil {
							t.Fatal(err)
						}
					}
					read, err := db.Store.GetOrder(ctx, o.ID)
					if err != nil || read.Amount != 1234 || read.Currency != "CNY" || read.Status != recon.StatusPending {
						t.Fatalf("read = %+v, %v", read, err)
					}
					paidAt := now.Add(-time.Minute)
					out := recon.Decide(read, recon.LookupResult{Status: recon.ChannelPaid, Amount: 1234, Currency: "CNY", TxnID: "TX1", PaidAt: &paidAt},
						recon.Policy{}, now, false)
					if out.Action != recon.ActionTransition {
						t.Fatalf("a lower-case currency did not match: %+v", out)
					}
					if rep, err := db.Store.Commit(ctx, out, repo.CommitMeta{Source: "test", Now: now}); err != nil || rep.Result != repo.Applied {
						t.Fatalf("commit = %+v, %v", rep, err)
					}
					c := m.Columns
					got := teamRow(t, db, "W1", c.Status, c.ChannelTxnID, c.UpdatedAt, c.PaidAt, c.Amount)
					amount := map[int]string{0: "1234", 2: "12.34"}[m.AmountScale]
					want := []string{m.StatusValues["PAID"][0], "TX1", now.Format("2006-01-02 15:04:05.000"), paidAt.Format("2006-01-02 15:04:05.000"), amount}
					for i, w := range want {
						if got[i] != w {
							t.Fatalf("team row %v = %v, want %v", []string{c.Status, c.ChannelTxnID, c.UpdatedAt, c.PaidAt}, got, want)
						}
					}
					if c.Version != "" {
						if v := teamRow(t, db, "W1", c.Version)[0]; v != "1" {
							t.Fatalf("version = %s, want 1", v)
						}
					}
					after, _ := db.Store.GetOrder(ctx, o.ID)
					if after.Status != recon.StatusPaid || after.Amount != 1234 || after.PaidAt == nil || !after.PaidAt.Equal(paidAt) {
						t.Fatalf("after = %+v", after)
					}
					if len(m.OtherTerminal) == 0 {
						return
					}
					// W2 is refunded: never in a due scan or a verification
					// backfill, and a commit for it finds it moved.
					due := scanAll(t, db.Store, repo.Scan{Now: now, CreatedBefore: now}, 10)
					bf := scanAll(t, db.Store, repo.Scan{Backfill: true, IncludeTerminal: true, From: now.Add(-2 * time.Hour), To: now}, 10)
					if len(due) != 0 || len(bf) != 1 || bf[0].OrderNo != "W1" {
						t.Fatalf("due %+v, backfill %+v", due, bf)
					}
					stale := refunded
					stale.Status, stale.StoredStatus = recon.StatusPending, m.StatusValues["PENDING"][0]
					closed := recon.Decide(stale, recon.LookupResult{Status: recon.ChannelClosed}, recon.Policy{}, now, false)
					if rep, err := db.Store.Commit(ctx, closed, repo.CommitMeta{Source: "test", Now: now}); err != nil || rep.Result != repo.Lost {
						t.Fatalf("commit on a refunded order = %+v, %v", rep, err)
					}
					if st := teamRow(t, db, "W2", m.Columns.Status)[0]; st != m.OtherTerminal[1] {
						t.Fatalf("refunded order now %s", st)
					}
				})
			}
		})
	}
}

// TestOrdersRegisteredOneByOneDoNotHideOlderOnes: an order read by number
// (recon check, a statement line) gets its bookkeeping row at once; older
// pending orders not yet registered are still found by the next pass.
func TestOrdersRegisteredOneByOneDoNotHideOlderOnes(t *testing.T) {
	for _, sc := range []repotest.Schema{repotest.SchemaA, repotest.SchemaB} {
		t.Run(sc.Name, func(t *testing.T) {
			for _, newDB := range []func(testing.TB, repotest.Schema) repotest.DB{repotest.NewSQLiteSchema, repotest.NewMySQLSchema} {
				db := newDB(t, sc)
				t.Run(string(db.Dialect), func(t *testing.T) {
					ctx := context.Background()
					sc := repo.Scan{Now: now, CreatedBefore: now.Add(-time.Minute)}
					old, young := repotest.Order("OLD", now), repotest.Order("YOUNG", now)
					old.CreatedAt = now.Add(-3 * time.Hour)
					db.Seed(t, &old, &young)
					// As written by the team's service: no bookkeeping rows yet.
					if err := db.Store.DB().Exec("DELETE FROM recon_order_state").Error; err != nil {
						t.Fatal(err)
					}
					if _, err := db.Store.GetOrderByNo(ctx, "YOUNG"); err != nil {
						t.Fatal(err)
					}
					if got := nos(scanAll(t, db.Store, sc, 10)); !got["OLD"] || !got["YOUNG"] || len(got) != 2 {
						t.Fatalf("due = %v, want OLD and YOUNG", got)
					}
				})
			}
		})
	}
}

// TestDryRunScanWritesNothingOnAMappedTable: a dry run's scan sees the new
// pending orders a pass would register, with provisional ids, and the
// backfill's, without writing a bookkeeping row; a real scan then
// registers them.
func TestDryRunScanWritesNothingOnAMappedTable(t *testing.T) {
	for _, sc := range []repotest.Schema{repotest.SchemaA, repotest.SchemaB} {
		t.Run(sc.Name, func(t *testing.T) {
			for _, newDB := range []func(testing.TB, repotest.Schema) repotest.DB{repotest.NewSQLiteSchema, repotest.NewMySQLSchema} {
				db := newDB(t, sc)
				t.Run(string(db.Dialect), func(t *testing.T) {
					var orders []*recon.Order
					for i := 0; i < 7; i++ {
						o := repotest.Order(fmt.Sprintf("D%d", i), now)
						orders = append(orders, &o)
					}
					db.Seed(t, orders...)
					if err := db.Store.DB().Exec("DELETE FROM recon_order_state WHERE id > ?", orders[2].ID).Error; err != nil {
						t.Fatal(err)
					}
					count := func() (n int64) {
						if err := db.Store.DB().Raw("SELECT COUNT(*) FROM recon_order_state").Scan(&n).Error; err != nil {
							t.Fatal(err)
						}
						return n
					}
					due := repo.Scan{Now: now, CreatedBefore: now.Add(-time.Minute), DryRun: true}
					bf := repo.Scan{Backfill: true, From: now.Add(-2 * time.Hour), To: now, DryRun: true}
					for _, scan := range []repo.Scan{due, bf} {
						got := scanAll(t, db.Store, scan, 2)
						if len(nos(got)) != 7 || len(got) != 7 || count() != 3 {
							t.Fatalf("dry scan (backfill %v) saw %d orders (%v), %d bookkeeping rows", scan.Backfill, len(got), nos(got), count())
						}
					}
					due.DryRun = false
					if got := scanAll(t, db.Store, due, 2); len(got) != 7 || count() != 7 {
						t.Fatalf("scan saw %d orders, %d bookkeeping rows", len(got), count())
					}
				})
			}
		})
	}
}
