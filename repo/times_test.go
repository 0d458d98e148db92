package repo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// Time text as other writers put it in a row: the schema's DEFAULT
// CURRENT_TIMESTAMP ('2026-11-23 11:00:00') and ISO-8601
// ('2026-11-23T11:00:00Z'; MariaDB refuses the Z, so there it is without).
func spaceForm(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func isoForm(db repotest.DB, t time.Time) string {
	if db.Dialect == repo.MySQL {
		return t.UTC().Format("2006-01-02T15:04:05")
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// insertRaw inserts a PENDING order the way the payment service does, with
// its times as text. nextQueryAt "" leaves it NULL.
func insertRaw(t *testing.T, db repotest.DB, no, createdAt, nextQueryAt string) {
	t.Helper()
	var next any
	attempts := 0
	if nextQueryAt != "" {
		next, attempts = nextQueryAt, 1
	}
	if err := db.Store.DB().Exec(`INSERT INTO payment_orders
		(order_no, merchant_id, channel, amount, currency, status, query_attempts, next_query_at, created_at, updated_at)
		VALUES (?, 'm1', 'sim', 1000, 'CNY', 'PENDING', ?, ?, ?, ?)`, no, attempts, next, createdAt, createdAt).Error; err != nil {
		t.Fatalf("insert %s: %v", no, err)
	}
}

// The case: five orders written in one statement with the schema's
// default time, a backfill in pages of two over a wide window.
func TestBackfillScansOrdersWrittenWithTheDefaultTime(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		if err := db.Store.DB().Exec(`INSERT INTO payment_orders (order_no, merchant_id, channel, amount, currency)
			VALUES ('d1', 'm1', 'sim', 100, 'CNY'), ('d2', 'm1', 'sim', 100, 'CNY'), ('d3', 'm1', 'sim', 100, 'CNY'),
			       ('d4', 'm1', 'sim', 100, 'CNY'), ('d5', 'm1', 'sim', 100, 'CNY')`).Error; err != nil {
			t.Fatal(err)
		}
		from, to := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		sc := repo.Scan{Backfill: true, From: from, To: to}
		if got := scanAll(t, db.Store, sc, 2); len(got) != 5 {
			t.Fatalf("backfill in pages of 2 saw %v, want the 5 orders", nos(got))
		}
		if n, err := db.Store.CountBackfill(context.Background(), sc); err != nil || n != 5 {
			t.Fatalf("CountBackfill = %d, %v; want 5", n, err)
		}
	})
}

// Every order of a due scan and a backfill is found, whatever form its times
// were written in, and orders still in their grace period or scheduled later
// are not.
func TestScansCompareEveryTimeFormAsAnInstant(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		hourAgo, old := now.Add(-time.Hour), now.Add(-19*time.Hour)
		young := now.Add(-10 * time.Second)
		past, later := now.Add(-30*time.Minute), now.Add(30*time.Second)
		insertRaw(t, db, "space-new", spaceForm(hourAgo), "")
		insertRaw(t, db, "iso-new", isoForm(db, old), "")
		insertRaw(t, db, "space-young", spaceForm(young), "")
		insertRaw(t, db, "iso-young", isoForm(db, young), "")
		// Three orders due at the same second, in pages of two.
		insertRaw(t, db, "iso-sched-1", isoForm(db, old), isoForm(db, past))
		insertRaw(t, db, "space-sched-2", spaceForm(old), spaceForm(past))
		insertRaw(t, db, "space-sched-3", spaceForm(hourAgo), spaceForm(past))
		insertRaw(t, db, "space-later", spaceForm(old), spaceForm(later))
		insertRaw(t, db, "iso-later", isoForm(db, old), isoForm(db, later))
		// And one written by recon itself, between them.
		own := repotest.Order("own", now)
		own.NextQueryAt, own.QueryAttempts = &past, 1
		repotest.Seed(t, db.Store, &own)

		sc := repo.Scan{Now: now, CreatedBefore: now.Add(-time.Minute)}
		want := []string{"space-new", "iso-new", "iso-sched-1", "space-sched-2", "space-sched-3", "own"}
		for _, page := range []int{1, 2, 100} {
			got := nos(scanAll(t, db.Store, sc, page))
			if len(got) != len(want) {
				t.Fatalf("due scan in pages of %d = %v, want %v", page, got, want)
			}
			for _, no := range want {
				if !got[no] {
					t.Fatalf("due scan in pages of %d = %v, missing %s", page, got, no)
				}
			}
		}
		n, oldest, err := db.Store.CountDue(ctx, now, now.Add(-time.Minute))
		if err != nil || n != int64(len(want)) || oldest == nil || !oldest.Equal(old) {
			t.Fatalf("CountDue = %d, %v, %v; want %d, %s", n, oldest, err, len(want), old)
		}

		// A backfill window that starts between the forms of one day.
		bf := repo.Scan{Backfill: true, From: old.Add(-time.Second), To: now.Add(-time.Minute)}
		got := nos(scanAll(t, db.Store, bf, 2))
		for _, no := range []string{"space-new", "iso-new", "iso-sched-1", "space-sched-2", "space-sched-3", "space-later", "iso-later", "own"} {
			if !got[no] {
				t.Fatalf("backfill = %v, missing %s", got, no)
			}
		}
		if len(got) != 8 {
			t.Fatalf("backfill = %v, want 8 orders (not the two in their grace period)", got)
		}
		if c, err := db.Store.CountBackfill(ctx, bf); err != nil || c != 8 {
			t.Fatalf("CountBackfill = %d, %v; want 8", c, err)
		}
		// The window's end is exclusive in every form.
		bf.From, bf.To = old, old.Add(time.Second)
		if got := nos(scanAll(t, db.Store, bf, 2)); len(got) != 5 || got["space-new"] {
			t.Fatalf("backfill of the one second %s = %v, want the 5 orders created then", old, got)
		}
	})
}

// The other time comparisons: outbox due time, run staleness, lease expiry,
// the report's detection window.
func TestOtherTimeComparisonsReadEveryForm(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		raw := func(sql string, args ...any) {
			t.Helper()
			if err := db.Store.DB().Exec(sql, args...).Error; err != nil {
				t.Fatalf("%s: %v", strings.Fields(sql)[0], err)
			}
		}
		past := now.Add(-10 * time.Minute)

		// Outbox: due in ISO form.
		raw(`INSERT INTO merchant_notifications (id, order_id, merchant_id, event, payload, status, attempts, next_attempt_at, created_at)
			VALUES ('n1', 1, 'm1', 'order.paid', '{}', 'PENDING', 0, ?, ?)`, isoForm(db, past), isoForm(db, past))
		claimed, err := db.Store.ClaimNotifications(ctx, repo.Claim{Owner: "d1", DueBefore: now, Now: now, Lease: time.Minute, Limit: 10})
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim of an ISO-dated due row = %v, %v", claimed, err)
		}
		if _, due, err := db.Store.OutboxCounts(ctx, now); err != nil || due != 1 {
			t.Fatalf("due outbox rows = %d, %v; want 1", due, err)
		}

		// Runs: a RUNNING run whose heartbeat, in ISO form, stopped long ago.
		raw(`INSERT INTO recon_runs (kind, status, started_at, heartbeat_at) VALUES ('reconcile', 'RUNNING', ?, ?)`,
			isoForm(db, past), isoForm(db, past))
		if n, err := db.Store.FailAbandonedRuns(ctx, now.Add(-time.Minute), now); err != nil || n != 1 {
			t.Fatalf("FailAbandonedRuns = %d, %v; want the ISO-dated run closed", n, err)
		}

		// Leases: an expired lease written in ISO form is taken over.
		raw(`INSERT INTO recon_leases (name, owner, acquired_at, expires_at) VALUES ('reconcile', 'dead/1', ?, ?)`,
			isoForm(db, past), isoForm(db, past.Add(time.Minute)))
		if _, ok, err := db.Store.AcquireLease(ctx, "reconcile", "me/2", time.Minute); err != nil || !ok {
			t.Fatalf("AcquireLease over an expired ISO-dated lease = %v, %v", ok, err)
		}

		// Report window: a mismatch detected in space form on the window's last second.
		raw(`INSERT INTO recon_mismatches (order_id, order_no, merchant_id, channel, kind, local_status, channel_status,
			local_amount, channel_amount, local_currency, detected_at, last_seen_at)
			VALUES (1, 'o1', 'm1', 'sim', 'STUCK_PENDING', 'PENDING', 'PENDING', 1, 1, 'CNY', ?, ?)`,
			spaceForm(now.Add(-time.Second)), spaceForm(now.Add(-time.Second)))
		raw(`INSERT INTO recon_mismatches (order_id, order_no, merchant_id, channel, kind, local_status, channel_status,
			local_amount, channel_amount, local_currency, detected_at, last_seen_at)
			VALUES (2, 'o2', 'm1', 'sim', 'STUCK_PENDING', 'PENDING', 'PENDING', 1, 1, 'CNY', ?, ?)`,
			isoForm(db, now.Add(-time.Hour)), isoForm(db, now.Add(-time.Hour)))
		ms, err := db.Store.ListMismatches(ctx, repo.MismatchFilter{From: now.Add(-30 * time.Minute), To: now})
		if err != nil || len(ms) != 1 || ms[0].OrderNo != "o1" {
			t.Fatalf("mismatches in the last 30 minutes = %+v, %v; want o1 only", ms, err)
		}
		ms, err = db.Store.ListMismatches(ctx, repo.MismatchFilter{From: now.Add(-2 * time.Hour), To: now.Add(-time.Second)})
		if err != nil || len(ms) != 1 || ms[0].OrderNo != "o2" {
			t.Fatalf("mismatches before the last second = %+v, %v; want o2 only", ms, err)
		}
		if ms, _ := db.Store.ListMismatches(ctx, repo.MismatchFilter{}); len(ms) != 2 || ms[0].OrderNo != "o2" {
			t.Fatalf("mismatches oldest first = %+v", ms)
		}
	})
}
