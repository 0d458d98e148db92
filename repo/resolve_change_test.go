package repo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// A person's change to an order and the resolution of its mismatch are one
// transaction through the guarded update, on every orders table; an order
// that moved meanwhile gets nothing written.
func TestResolveWithChange(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		a, b := repotest.Order("rwc-1", now), repotest.Order("rwc-2", now)
		db.Seed(t, &a, &b)
		mismatchOf := func(o recon.Order) int64 {
			t.Helper()
			m := recon.Mismatch{Kind: recon.MismatchStuckPending, LocalStatus: recon.StatusPending, ChannelStatus: recon.ChannelPending,
				LocalAmount: o.Amount, LocalCurrency: o.Currency, Detail: "still PENDING"}
			if _, err := s.RecordMismatch(ctx, o, m, repo.CommitMeta{Source: "test", Now: now}); err != nil {
				t.Fatal(err)
			}
			ms, err := s.ListMismatches(ctx, repo.MismatchFilter{OrderID: o.ID})
			if err != nil || len(ms) != 1 {
				t.Fatalf("%v %v", ms, err)
			}
			return ms[0].ID
		}
		ma, mb := mismatchOf(a), mismatchOf(b)
		meta := repo.CommitMeta{Source: "console", Now: now}

		ra, _ := s.GetOrder(ctx, a.ID)
		out, err := recon.CloseLocally(ra)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ResolveWithChange(ctx, ma, out, "ann", "abandoned", meta); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetOrder(ctx, a.ID)
		trs, _ := s.Transitions(ctx, a.ID)
		notes, _ := s.NotificationsOf(ctx, a.ID)
		m, _ := s.GetMismatch(ctx, ma)
		if got.Status != recon.StatusClosed || len(trs) != 1 || trs[0].Source != "console" || len(notes) != 1 ||
			notes[0].Event != recon.EventClosed || m.Resolution != recon.ResolutionResolved || m.ResolvedBy != "ann" ||
			actions(t, s, ma) != "OPENED:recon RESOLVED:ann" {
			t.Fatalf("order %+v audit %+v outbox %+v mismatch %+v", got, trs, notes, m)
		}
		// Again: the mismatch is resolved, the order terminal; nothing more.
		if err := s.ResolveWithChange(ctx, ma, out, "ann", "again", meta); err == nil {
			t.Fatal("a second change went through")
		}

		// b moves (a callback) after it was read: refused, nothing written.
		rb, _ := s.GetOrder(ctx, b.ID)
		if !db.Move(t, s, b.ID, recon.StatusPaid) {
			t.Fatal("the callback could not move rwc-2")
		}
		out, _ = recon.CloseLocally(rb)
		if err := s.ResolveWithChange(ctx, mb, out, "ann", "abandoned", meta); !errors.Is(err, recon.ErrConflict) {
			t.Fatalf("err %v, want ErrConflict", err)
		}
		got, _ = s.GetOrder(ctx, b.ID)
		trs, _ = s.Transitions(ctx, b.ID)
		m, _ = s.GetMismatch(ctx, mb)
		if got.Status != recon.StatusPaid || len(trs) != 0 || m.Resolution != recon.ResolutionOpen {
			t.Fatalf("after the refusal: order %+v audit %+v mismatch %+v", got, trs, m)
		}
		// The mismatch of another order: refused.
		out, _ = recon.CloseLocally(rb)
		if err := s.ResolveWithChange(ctx, ma, out, "ann", "x", meta); err == nil {
			t.Fatal("a change of another order resolved this mismatch")
		}
	})
}
