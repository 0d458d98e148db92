package repo_test

import (
	"context"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// TestCallbackHealth: per channel and day, orders settled by a callback and
// those settled by a lookup whose callback never came, the duplicates, the
// refused notifications and the callbacks' lateness from the paid time.
func TestCallbackHealth(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		ord := seedRead(t, db, "H", 4)
		paidAt := now.Add(-2 * time.Second)
		// H-000 by callback (3 s after its payment), delivered twice.
		out := paid(ord[0])
		rec := callbackRecord(ord[0], "EV-H0", recon.CallbackSettled)
		rec.PaidAt, rec.ReceivedAt = &paidAt, now.Add(time.Second)
		for range 2 {
			if _, err := db.Store.CommitCallback(ctx, &out, rec, callbackMeta); err != nil {
				t.Fatal(err)
			}
		}
		// H-001 by a lookup, its callback came later (unchanged).
		if _, err := db.Store.CommitBatch(ctx, []recon.Outcome{paid(ord[1])}, repo.CommitMeta{Source: "reconcile", Now: now}); err != nil {
			t.Fatal(err)
		}
		late := callbackRecord(ord[1], "EV-H1", recon.CallbackUnchanged)
		late.PaidAt, late.ReceivedAt = &paidAt, now.Add(time.Minute)
		if _, err := db.Store.CommitCallback(ctx, nil, late, callbackMeta); err != nil {
			t.Fatal(err)
		}
		// H-002 by a lookup; no callback ever came.
		if _, err := db.Store.CommitBatch(ctx, []recon.Outcome{paid(ord[2])}, repo.CommitMeta{Source: "reconcile", Now: now}); err != nil {
			t.Fatal(err)
		}
		// A notification for an order recon does not know.
		if _, err := db.Store.CommitCallback(ctx, nil, repo.CallbackRecord{Channel: "sim", EventID: "EV-X", OrderNo: "X",
			Outcome: recon.CallbackOrderUnknown, ReceivedAt: now}, callbackMeta); err != nil {
			t.Fatal(err)
		}
		days, err := db.Store.CallbackHealth(ctx, now.Add(-time.Hour), now.Add(time.Hour), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		ch := ord[0].Channel
		var d *repo.ChannelDay
		for i := range days {
			if days[i].Channel == ch {
				d = &days[i]
			}
		}
		if d == nil {
			t.Fatalf("no day for channel %q in %+v", ch, days)
		}
		if d.ByCallback != 1 || d.WithoutCallback != 1 || d.Settled["reconcile"] != 2 || d.Duplicates != 1 ||
			d.LatenessN != 2 || d.LatenessP50 != 3*time.Second || d.LatenessP99 != 62*time.Second {
			t.Fatalf("health %+v", *d)
		}
		refused := int64(0)
		for _, x := range days {
			refused += x.Refused
		}
		if refused != 1 {
			t.Fatalf("refused %d, want 1 (%+v)", refused, days)
		}
		by, err := db.Store.SettledBySource(ctx, now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if by[[2]string{ch, "callback"}] != 1 || by[[2]string{ch, "reconcile"}] != 2 {
			t.Fatalf("settled by source %v", by)
		}
	})
}
