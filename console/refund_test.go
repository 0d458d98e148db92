package console_test

import (
	"context"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// TestRefundMismatch: a refund's mismatch is found by its refund number,
// shows the refund and its transitions, and offers no change of the order.
func TestRefundMismatch(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		e := newEnv(t, db, nil)
		o := repotest.Order("o-refunded", t0)
		db.Seed(t, &o) // PENDING: a refund of it is REFUND_MISMATCH
		r := repotest.Refund("rf-1", o, t0)
		repotest.SeedRefunds(t, db.Store, &r)
		ok := recon.RefundLookup{Status: recon.RefundChannelSucceeded, Amount: r.Amount, Currency: r.Currency, ChannelRefundID: "RF-CH-1"}
		reps, err := db.Store.CommitRefundBatch(ctx, []recon.RefundOutcome{recon.DecideRefund(r, ok, recon.Policy{}, t0)},
			repo.CommitMeta{Source: "reconcile", Now: t0})
		if err != nil || reps[0].OrderMismatch == nil {
			t.Fatalf("commit: %+v %v", reps, err)
		}
		ms, err := db.Store.ListMismatches(ctx, repo.MismatchFilter{RefundNo: "rf-1"})
		if err != nil || len(ms) != 1 {
			t.Fatalf("mismatches of rf-1: %+v %v", ms, err)
		}

		w := e.get("/mismatches?refund=rf-1", viewer)
		has(t, w, 200, "o-refunded", "refund rf-1", "REFUND_MISMATCH")
		lacks(t, w, "o-amt", "o-stuck")

		w = e.get(path(ms[0].ID), admin)
		has(t, w, 200, "Refund <strong>rf-1</strong> of order <strong>o-refunded</strong>", `id="refund"`, "RF-CH-1",
			`id="refund-transitions"`, "<td>PENDING</td><td>SUCCEEDED</td>", `id="resolve"`)
		// The admin's changes move the order; from a refund's row they are
		// not offered.
		lacks(t, w, `id="accept"`, `id="close"`)
	})
}
