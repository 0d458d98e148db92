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

// TestClaimSharesAndSkipsMerchants: a claim takes at most PerMerchant rows
// of a merchant, counting those the caller holds, leaves the candidates it
// did not take free for the next claim, and never takes rows of a skipped
// merchant.
func TestClaimSharesAndSkipsMerchants(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		// Merchant a's rows are the oldest: a claim in due order meets them first.
		for i, m := range []string{"a", "a", "a", "a", "a", "b", "b", "c"} {
			o := repotest.Order(fmt.Sprintf("claim-%d", i), now)
			o.MerchantID, o.Status = m, recon.StatusPaid
			repotest.Seed(t, db.Store, &o)
			at := now.Add(time.Duration(i) * time.Second)
			if _, err := db.Store.EnqueueNotification(ctx, o.ID, recon.NewNotification(o, recon.StatusPaid, "T", &at, at), at); err != nil {
				t.Fatal(err)
			}
		}
		claim := func(owner string, per int, holding map[string]int, skip ...string) map[string]int {
			t.Helper()
			rows, err := db.Store.ClaimNotifications(ctx, repo.Claim{Owner: owner, DueBefore: now.Add(time.Hour), Now: now,
				Lease: time.Minute, Limit: 5, PerMerchant: per, Holding: holding, SkipMerchants: skip})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, r := range rows {
				got[r.MerchantID]++
			}
			return got
		}
		if got := claim("d1", 2, map[string]int{"a": 1}); fmt.Sprint(got) != "map[a:1]" {
			t.Fatalf("first claim (5 candidates, all of a; a holds 1 of 2) took %v", got)
		}
		if got := claim("d1", 2, map[string]int{"a": 2}, "c"); fmt.Sprint(got) != "map[b:2]" {
			t.Fatalf("second claim (a full, c skipped) took %v", got)
		}
		// The candidates of a not taken were left free.
		if got := claim("d2", 0, nil); fmt.Sprint(got) != "map[a:4 c:1]" {
			t.Fatalf("claim without shares took %v", got)
		}
	})
}
