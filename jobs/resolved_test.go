package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// Finance resolves a mismatch; verification backfills that see the same
// facts leave it resolved, one that sees other facts reopens it.
func TestVerificationBackfillKeepsAResolvedMismatchResolved(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		o := repotest.Order("RV1", t0)
		o.Status = recon.StatusPaid
		e.seed(&o)
		e.sim.Set("RV1", simulator.Behaviour{Status: recon.ChannelNotFound})
		w := jobs.Window{Backfill: true, IncludeTerminal: true, From: t0.Add(-2 * time.Hour), To: t0}
		if res := e.run(w); res.NewMismatches != 1 {
			t.Fatalf("first verification = %+v", res)
		}
		ms, err := db.Store.ListMismatches(ctx, repo.MismatchFilter{OrderID: o.ID})
		if err != nil || len(ms) != 1 {
			t.Fatalf("mismatches = %+v, %v", ms, err)
		}
		id := ms[0].ID
		if err := db.Store.Resolve(ctx, id, "ann", "refunded, ticket FIN-1234", t0); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 2; i++ {
			e.clock.Advance(time.Hour)
			if res := e.run(w); res.NewMismatches != 0 || res.Mismatches != 1 {
				t.Fatalf("verification %d with the same facts = %+v", i, res)
			}
			got, _ := db.Store.GetMismatch(ctx, id)
			if got.Resolution != recon.ResolutionResolved || got.ResolvedBy != "ann" || !got.LastSeenAt.Equal(e.clock.Now()) {
				t.Fatalf("after verification %d: %+v, want still RESOLVED, seen now", i, got)
			}
		}
		// The channel now has it pending: other facts, reopened.
		e.sim.Set("RV1", simulator.Behaviour{Status: recon.ChannelPending})
		e.clock.Advance(time.Hour)
		if res := e.run(w); res.NewMismatches != 1 {
			t.Fatalf("verification with other facts = %+v", res)
		}
		got, _ := db.Store.GetMismatch(ctx, id)
		if got.Resolution != recon.ResolutionOpen || got.ChannelStatus != recon.ChannelPending {
			t.Fatalf("after the facts changed: %+v, want OPEN", got)
		}
		evs, err := db.Store.MismatchHistory(ctx, id)
		if err != nil || len(evs) != 3 || evs[1].Action != repo.ActionResolved || evs[1].By != "ann" ||
			evs[1].Note != "refunded, ticket FIN-1234" || evs[2].Action != repo.ActionReopened {
			t.Fatalf("history = %+v, %v", evs, err)
		}
	})
}
