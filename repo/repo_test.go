package repo_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestMigrateIsIdempotent(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		applied, err := db.Store.Migrate(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 0 {
			t.Fatalf("second migrate applied %d migrations, want 0", len(applied))
		}
		pending, err := db.Store.Pending(ctx)
		if err != nil || len(pending) != 0 {
			t.Fatalf("pending after migrate = %v, %v", pending, err)
		}
	})
}

// TestMigrateResumesAnInterruptedMigration: a migrate killed after two of
// the five columns of 0021_run_refunds were added (MySQL commits each
// schema change by itself; the version was not recorded) is finished by
// the next migrate, which must not stop at the first column it finds.
func TestMigrateResumesAnInterruptedMigration(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		for _, q := range []string{"DELETE FROM schema_migrations WHERE version = 21",
			"ALTER TABLE recon_runs DROP COLUMN refunds_failed", "ALTER TABLE recon_runs DROP COLUMN refunds_rescheduled",
			"ALTER TABLE recon_runs DROP COLUMN refunds_unsupported"} {
			if err := db.Store.DB().Exec(q).Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Store.CheckSchema(ctx); !errors.Is(err, repo.ErrNotMigrated) || !strings.Contains(err.Error(), "0021_run_refunds") {
			t.Fatalf("check before: %v", err)
		}
		applied, err := db.Store.Migrate(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 1 || applied[0].Name != "0021_run_refunds" || applied[0].Resumed != 2 {
			t.Fatalf("applied %+v, want 0021_run_refunds with 2 statements resumed", applied)
		}
		var n int64
		if err := db.Store.DB().Raw("SELECT COUNT(refunds_failed + refunds_rescheduled + refunds_unsupported) FROM recon_runs").Scan(&n).Error; err != nil {
			t.Fatalf("the columns after migrate: %v", err)
		}
		if err := db.Store.CheckSchema(ctx); err != nil {
			t.Fatalf("check after: %v", err)
		}
	})
}

// TestMigrationThatFailsHalfWay: a migration whose second statement fails
// leaves nothing of itself on SQLite (one transaction with its record); on
// MySQL its first statement stays, and the migrate after the fix finds it
// applied and goes on.
func TestMigrationThatFailsHalfWay(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Open(t)
		repo.AddMigration(s, repo.Migration{Version: 9001, Name: "9001_test", SQL: "CREATE TABLE t_half (x INT);\nCREATE TABLE t_other (x INT NOT NULL REFERENCES;\n"})
		if _, err := s.Migrate(ctx, now); err == nil || !strings.Contains(err.Error(), "9001_test, statement 2") {
			t.Fatalf("migrate of a broken migration: %v", err)
		}
		half := s.DB().Migrator().HasTable("t_half")
		if half != (db.Dialect == repo.MySQL) {
			t.Fatalf("%s: t_half there after the failed migration: %v", db.Dialect, half)
		}
		if pending, err := s.Pending(ctx); err != nil || len(pending) != 1 {
			t.Fatalf("pending after the failure: %v, %v", pending, err)
		}
		fixed := db.Open(t)
		repo.AddMigration(fixed, repo.Migration{Version: 9001, Name: "9001_test", SQL: "CREATE TABLE t_half (x INT);\nCREATE TABLE t_other (x INT);\n"})
		applied, err := fixed.Migrate(ctx, now)
		if err != nil || len(applied) != 1 {
			t.Fatalf("migrate after the fix: %v, %v", applied, err)
		}
		if want := map[repo.Dialect]int{repo.MySQL: 1, repo.SQLite: 0}[db.Dialect]; applied[0].Resumed != want {
			t.Fatalf("%s: %d statements found applied, want %d", db.Dialect, applied[0].Resumed, want)
		}
	})
}

func scanAll(t *testing.T, s *repo.Store, sc repo.Scan, page int) []recon.Order {
	t.Helper()
	var all []recon.Order
	var cur repo.Cursor
	for !cur.Done() {
		orders, next, err := s.ScanPage(context.Background(), sc, cur, page)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, orders...)
		cur = next
	}
	return all
}

func nos(orders []recon.Order) map[string]bool {
	m := map[string]bool{}
	for _, o := range orders {
		m[o.OrderNo] = true
	}
	return m
}

func TestScanDueSelectsExactlyTheDueOrders(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		past, future := now.Add(-time.Minute), now.Add(time.Minute)
		newDue := repotest.Order("new-due", now)
		inGrace := repotest.Order("in-grace", now)
		inGrace.CreatedAt = now.Add(-10 * time.Second)
		scheduledDue := repotest.Order("sched-due", now)
		scheduledDue.NextQueryAt, scheduledDue.QueryAttempts = &past, 1
		scheduledLater := repotest.Order("sched-later", now)
		scheduledLater.NextQueryAt, scheduledLater.QueryAttempts = &future, 1
		parked := repotest.Order("parked", now)
		parked.QueryAttempts = 3 // next_query_at NULL after a query: auto-querying stopped
		paid := repotest.Order("paid", now)
		paid.Status = recon.StatusPaid
		other := repotest.Order("other-channel", now)
		other.Channel = "other"
		db.Seed(t, &newDue, &inGrace, &scheduledDue, &scheduledLater, &parked, &paid, &other)

		sc := repo.Scan{Now: now, CreatedBefore: now.Add(-time.Minute)}
		got := nos(scanAll(t, db.Store, sc, 2))
		want := map[string]bool{"new-due": true, "sched-due": true, "other-channel": true}
		if len(got) != len(want) {
			t.Fatalf("due = %v, want %v", got, want)
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("due = %v, missing %s", got, k)
			}
		}
		sc.Channel = "sim"
		if got := nos(scanAll(t, db.Store, sc, 1)); len(got) != 2 || got["other-channel"] {
			t.Fatalf("channel filter: %v", got)
		}
	})
}

func TestScanPagesAndShardsCoverEveryOrderOnce(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		var orders []*recon.Order
		for i := 0; i < 57; i++ {
			o := repotest.Order("o"+string(rune('a'+i%26))+time.Duration(i).String(), now)
			if i%2 == 0 {
				at := now.Add(-time.Duration(i%5) * time.Second) // ties on next_query_at
				o.NextQueryAt, o.QueryAttempts = &at, 1
			}
			orders = append(orders, &o)
		}
		db.Seed(t, orders...)
		seen := map[int64]int{}
		for shard := 0; shard < 4; shard++ {
			sc := repo.Scan{Now: now, CreatedBefore: now, Shard: repo.Shard{Index: shard, Count: 4}}
			for _, o := range scanAll(t, db.Store, sc, 5) {
				if int(o.ID%4) != shard {
					t.Fatalf("order %d in shard %d", o.ID, shard)
				}
				seen[o.ID]++
			}
		}
		if len(seen) != len(orders) {
			t.Fatalf("shards saw %d orders, want %d", len(seen), len(orders))
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("order %d seen %d times", id, n)
			}
		}
		bf := scanAll(t, db.Store, repo.Scan{Backfill: true, From: now.Add(-2 * time.Hour), To: now}, 7)
		if len(bf) != len(orders) {
			t.Fatalf("backfill saw %d, want %d", len(bf), len(orders))
		}
	})
}

func TestCommitTransitionIsGuarded(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		o := repotest.Order("c1", now)
		db.Seed(t, &o)
		read, err := db.Store.GetOrder(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		lookup := recon.LookupResult{Status: recon.ChannelPaid, Amount: 1000, Currency: "CNY", TxnID: "T1", PaidAt: &now}
		out := recon.Decide(read, lookup, recon.Policy{}, now, false)
		meta := repo.CommitMeta{Source: "test", Now: now}
		rep, err := db.Store.Commit(ctx, out, meta)
		if err != nil || rep.Result != repo.Applied {
			t.Fatalf("first commit = %+v, %v", rep, err)
		}
		rep, err = db.Store.Commit(ctx, out, meta)
		if err != nil || rep.Result != repo.Lost || rep.Current.Status != recon.StatusPaid {
			t.Fatalf("second commit = %+v, %v; want lost to PAID", rep, err)
		}
		got, _ := db.Store.GetOrder(ctx, o.ID)
		if got.Status != recon.StatusPaid || got.Version != 1 || got.ChannelTxnID != "T1" || got.PaidAt == nil || !got.PaidAt.Equal(now) {
			t.Fatalf("order after commit = %+v", got)
		}
		notes, _ := db.Store.NotificationsOf(ctx, o.ID)
		if len(notes) != 1 || notes[0].Event != recon.EventPaid || notes[0].ID != recon.NotificationID("c1", recon.EventPaid) {
			t.Fatalf("outbox = %+v", notes)
		}
		trs, _ := db.Store.Transitions(ctx, o.ID)
		if len(trs) != 1 || trs[0].FromVersion != 0 || trs[0].ToVersion != 1 || trs[0].ToStatus != recon.StatusPaid {
			t.Fatalf("audit = %+v", trs)
		}
		if _, err := db.Store.GetOrder(ctx, 999999); !errors.Is(err, recon.ErrNotFound) {
			t.Fatalf("missing order: %v", err)
		}
	})
}

func TestMismatchUpsertKeepsOneRowAndReopens(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		o := repotest.Order("m1", now)
		o.Status = recon.StatusPaid
		db.Seed(t, &o)
		m := recon.Mismatch{Kind: recon.MismatchLocalPaidChannelUnpaid, LocalStatus: recon.StatusPaid,
			ChannelStatus: recon.ChannelNotFound, LocalAmount: 1000, LocalCurrency: "CNY", Detail: "x"}
		meta := repo.CommitMeta{Source: "test", Now: now}
		if isNew, err := db.Store.RecordMismatch(ctx, o, m, meta); err != nil || !isNew {
			t.Fatalf("first = %v, %v", isNew, err)
		}
		meta.Now = now.Add(time.Minute)
		if isNew, err := db.Store.RecordMismatch(ctx, o, m, meta); err != nil || isNew {
			t.Fatalf("second = %v, %v", isNew, err)
		}
		if err := db.Store.DB().Exec("UPDATE recon_mismatches SET resolution = 'RESOLVED', resolved_by = 'ann'").Error; err != nil {
			t.Fatal(err)
		}
		// The same facts keep it resolved; other facts reopen it.
		if isNew, err := db.Store.RecordMismatch(ctx, o, m, meta); err != nil || isNew {
			t.Fatalf("after resolve, same facts = %v, %v", isNew, err)
		}
		if ms, _ := db.Store.ListMismatches(ctx, repo.MismatchFilter{}); len(ms) != 1 || ms[0].Resolution != recon.ResolutionResolved {
			t.Fatalf("after resolve, same facts: %+v", ms)
		}
		m.ChannelStatus = recon.ChannelFailed
		if isNew, err := db.Store.RecordMismatch(ctx, o, m, meta); err != nil || !isNew {
			t.Fatalf("after resolve, other facts = %v, %v", isNew, err)
		}
		ms, err := db.Store.ListMismatches(ctx, repo.MismatchFilter{})
		if err != nil || len(ms) != 1 {
			t.Fatalf("mismatches = %+v, %v", ms, err)
		}
		// Reopened: a new detection, with the resolver's columns cleared.
		if ms[0].Occurrences != 4 || ms[0].Resolution != recon.ResolutionOpen || ms[0].ResolvedBy != "" ||
			!ms[0].DetectedAt.Equal(now.Add(time.Minute)) || !ms[0].LastSeenAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("mismatch = %+v", ms[0])
		}
	})
}
