package repo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// Open mismatches are the OPEN and ACKNOWLEDGED ones, counted by kind with
// the oldest detection; RESOLVED ones are left out, and a reopened one
// counts again from its new detection time (when its facts changed).
func TestCountOpenMismatches(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		got, err := s.CountOpenMismatches(ctx)
		if err != nil || len(got) != 0 {
			t.Fatalf("empty database: %v, %v", got, err)
		}

		detect := func(o recon.Order, m recon.Mismatch, at time.Time) {
			t.Helper()
			if _, err := s.RecordMismatch(ctx, o, m, repo.CommitMeta{Source: "test", Now: at}); err != nil {
				t.Fatal(err)
			}
		}
		record := func(no string, kind recon.MismatchKind, at time.Time) (recon.Order, recon.Mismatch) {
			t.Helper()
			o := repotest.Order(no, now)
			repotest.Seed(t, s, &o)
			m := recon.Mismatch{Kind: kind, LocalStatus: o.Status, ChannelStatus: recon.ChannelPaid,
				LocalAmount: o.Amount, ChannelAmount: o.Amount + 1, LocalCurrency: o.Currency}
			detect(o, m, at)
			return o, m
		}
		idOf := func(o recon.Order) int64 {
			t.Helper()
			ms, err := s.ListMismatches(ctx, repo.MismatchFilter{OrderID: o.ID})
			if err != nil || len(ms) != 1 {
				t.Fatalf("mismatches of %s = %v, %v", o.OrderNo, ms, err)
			}
			return ms[0].ID
		}
		// AMOUNT_MISMATCH: one resolved (the oldest), one acknowledged, one open.
		resolved, rm := record("gauge-a1", recon.MismatchAmount, now.Add(-3*time.Hour))
		acked, _ := record("gauge-a2", recon.MismatchAmount, now.Add(-2*time.Hour))
		record("gauge-a3", recon.MismatchAmount, now.Add(-time.Hour))
		stuck, sm := record("gauge-s1", recon.MismatchStuckPending, now.Add(-30*time.Minute))
		if err := s.Acknowledge(ctx, idOf(acked), "bob", now); err != nil {
			t.Fatal(err)
		}
		if err := s.Resolve(ctx, idOf(resolved), "ann", "refunded", now); err != nil {
			t.Fatal(err)
		}
		// Seen again while open: still one, detected when it was first.
		detect(stuck, sm, now)

		want := func(want ...repo.OpenMismatches) {
			t.Helper()
			got, err := s.CountOpenMismatches(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("open mismatches =\n%v\nwant\n%v", got, want)
			}
		}
		want(repo.OpenMismatches{Kind: recon.MismatchAmount, Count: 2, Oldest: now.Add(-2 * time.Hour)},
			repo.OpenMismatches{Kind: recon.MismatchStuckPending, Count: 1, Oldest: now.Add(-30 * time.Minute)})

		// The resolved one seen again with the same facts stays resolved;
		// with other facts it reopens: it counts, as detected now.
		detect(resolved, rm, now.Add(time.Minute))
		want(repo.OpenMismatches{Kind: recon.MismatchAmount, Count: 2, Oldest: now.Add(-2 * time.Hour)},
			repo.OpenMismatches{Kind: recon.MismatchStuckPending, Count: 1, Oldest: now.Add(-30 * time.Minute)})
		rm.ChannelAmount++
		detect(resolved, rm, now.Add(time.Minute))
		want(repo.OpenMismatches{Kind: recon.MismatchAmount, Count: 3, Oldest: now.Add(-2 * time.Hour)},
			repo.OpenMismatches{Kind: recon.MismatchStuckPending, Count: 1, Oldest: now.Add(-30 * time.Minute)})
	})
}
