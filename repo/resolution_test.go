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

func actions(t *testing.T, s *repo.Store, id int64) string {
	t.Helper()
	evs, err := s.MismatchHistory(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Action)+":"+e.By)
	}
	return strings.Join(out, " ")
}

func TestResolutionWorkflowAndReopenKeepsHistory(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		o := repotest.Order("res-1", now)
		o.Status = recon.StatusPaid
		repotest.Seed(t, s, &o)
		m := recon.Mismatch{Kind: recon.MismatchLocalPaidChannelUnpaid, LocalStatus: recon.StatusPaid,
			ChannelStatus: recon.ChannelNotFound, LocalAmount: 1000, LocalCurrency: "CNY", Detail: "local PAID, channel NOT_FOUND"}
		if _, err := s.RecordMismatch(ctx, o, m, repo.CommitMeta{RunID: 7, Source: "test", Now: now}); err != nil {
			t.Fatal(err)
		}
		ms, err := s.ListMismatches(ctx, repo.MismatchFilter{OrderID: o.ID})
		if err != nil || len(ms) != 1 {
			t.Fatalf("mismatches = %v, %v", ms, err)
		}
		id := ms[0].ID

		if err := s.Resolve(ctx, id, "ann", "", now); err == nil {
			t.Fatal("resolve without a note succeeded")
		}
		if err := s.Acknowledge(ctx, id, "bob", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		err = s.Acknowledge(ctx, id, "bob", now.Add(time.Minute))
		if !errors.Is(err, repo.ErrWrongResolution) || !strings.Contains(err.Error(), "ACKNOWLEDGED") {
			t.Fatalf("second acknowledge = %v, want ErrWrongResolution naming ACKNOWLEDGED", err)
		}
		if err := s.Resolve(ctx, id, "ann", "refunded by the channel, ticket FIN-12", now.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		err = s.Resolve(ctx, id, "ann", "again", now.Add(2*time.Minute))
		if !errors.Is(err, repo.ErrWrongResolution) || !strings.Contains(err.Error(), "RESOLVED") {
			t.Fatalf("second resolve = %v, want ErrWrongResolution naming RESOLVED", err)
		}
		if err := s.Acknowledge(ctx, id, "bob", now); !errors.Is(err, repo.ErrWrongResolution) {
			t.Fatalf("acknowledge resolved = %v", err)
		}
		if err := s.Acknowledge(ctx, 999999, "bob", now); !errors.Is(err, recon.ErrNotFound) {
			t.Fatalf("acknowledge missing = %v", err)
		}
		got, err := s.GetMismatch(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Resolution != recon.ResolutionResolved || got.ResolvedBy != "ann" ||
			got.ResolutionNote != "refunded by the channel, ticket FIN-12" || got.ResolvedAt == nil ||
			!got.ResolvedAt.Equal(now.Add(2*time.Minute)) {
			t.Fatalf("resolved = %+v", got)
		}

		// Detected again with the same facts: it stays RESOLVED, only seen
		// later; no event.
		isNew, err := s.RecordMismatch(ctx, o, m, repo.CommitMeta{RunID: 8, Source: "test", Now: now.Add(30 * time.Minute)})
		if err != nil || isNew {
			t.Fatalf("same facts again = new %v, %v; want not new", isNew, err)
		}
		got, _ = s.GetMismatch(ctx, id)
		if got.Resolution != recon.ResolutionResolved || got.ResolvedBy != "ann" || got.ResolutionNote == "" ||
			!got.LastSeenAt.Equal(now.Add(30*time.Minute)) || !got.DetectedAt.Equal(now) {
			t.Fatalf("resolved row seen again with the same facts = %+v", got)
		}
		if h, want := actions(t, s, id), "OPENED:recon ACKNOWLEDGED:bob RESOLVED:ann"; h != want {
			t.Fatalf("history = %q, want %q", h, want)
		}

		// Detected again with other facts (the channel now has it
		// pending): reopened as a new detection, the resolver's columns
		// cleared; who resolved it and why stay in the history.
		m.ChannelStatus, m.Detail = recon.ChannelPending, "local PAID, channel PENDING"
		isNew, err = s.RecordMismatch(ctx, o, m, repo.CommitMeta{RunID: 8, Source: "test", Now: now.Add(time.Hour)})
		if err != nil || !isNew {
			t.Fatalf("reopen = %v, %v", isNew, err)
		}
		got, _ = s.GetMismatch(ctx, id)
		if got.Resolution != recon.ResolutionOpen || got.ResolvedBy != "" || got.ResolutionNote != "" || got.ResolvedAt != nil ||
			got.Occurrences != 3 || !got.DetectedAt.Equal(now.Add(time.Hour)) || got.ChannelStatus != recon.ChannelPending {
			t.Fatalf("reopened = %+v", got)
		}
		if h, want := actions(t, s, id), "OPENED:recon ACKNOWLEDGED:bob RESOLVED:ann REOPENED:recon"; h != want {
			t.Fatalf("history = %q, want %q", h, want)
		}
		evs, _ := s.MismatchHistory(ctx, id)
		if evs[2].Note != "refunded by the channel, ticket FIN-12" || evs[3].RunID != 8 || !evs[3].At.Equal(now.Add(time.Hour)) {
			t.Fatalf("events = %+v", evs)
		}
		// Seen again while open: no new event.
		if _, err := s.RecordMismatch(ctx, o, m, repo.CommitMeta{Source: "test", Now: now.Add(2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if h := actions(t, s, id); strings.Count(h, " ") != 3 {
			t.Fatalf("history after re-detection while open = %q", h)
		}
		// Resolvable again straight from OPEN.
		if err := s.Resolve(ctx, id, "cy", "duplicate of 12", now.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MismatchHistory(ctx, 999999); !errors.Is(err, recon.ErrNotFound) {
			t.Fatalf("history of missing = %v", err)
		}
	})
}

func TestListMismatchesFilters(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		a := repotest.Order("f-a", now)
		b := repotest.Order("f-b", now)
		b.Channel, b.MerchantID = "alipay", "m2"
		c := repotest.Order("f-c", now)
		repotest.Seed(t, s, &a, &b, &c)
		rec := func(o recon.Order, k recon.MismatchKind, at time.Time) {
			t.Helper()
			if _, err := s.RecordMismatch(ctx, o, recon.Mismatch{Kind: k, LocalStatus: o.Status, ChannelStatus: recon.ChannelPaid,
				LocalAmount: o.Amount, ChannelAmount: o.Amount + 1, LocalCurrency: o.Currency, ChannelCurrency: o.Currency},
				repo.CommitMeta{Source: "test", Now: at}); err != nil {
				t.Fatal(err)
			}
		}
		rec(a, recon.MismatchAmount, now.Add(-48*time.Hour))
		rec(b, recon.MismatchAmount, now.Add(-time.Hour))
		rec(c, recon.MismatchStuckPending, now)
		all, err := s.ListMismatches(ctx, repo.MismatchFilter{})
		if err != nil || len(all) != 3 {
			t.Fatalf("all = %d, %v", len(all), err)
		}
		if err := s.Resolve(ctx, all[1].ID, "ann", "ok", now); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			f    repo.MismatchFilter
			want string
		}{
			{"window", repo.MismatchFilter{From: now.Add(-2 * time.Hour), To: now}, "f-b"},
			{"kind", repo.MismatchFilter{Kind: recon.MismatchAmount}, "f-a f-b"},
			{"channel", repo.MismatchFilter{Channel: "alipay"}, "f-b"},
			{"merchant", repo.MismatchFilter{Merchant: "m1"}, "f-a f-c"},
			{"resolution", repo.MismatchFilter{Resolution: recon.ResolutionOpen}, "f-a f-c"},
			{"resolved", repo.MismatchFilter{Resolution: recon.ResolutionResolved}, "f-b"},
			{"combined", repo.MismatchFilter{Kind: recon.MismatchAmount, Resolution: recon.ResolutionOpen, To: now}, "f-a"},
		}
		for _, tc := range cases {
			ms, err := s.ListMismatches(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.OrderNo)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("%s: got %q, want %q", tc.name, g, tc.want)
			}
		}
	})
}

func TestMigrationBackfillsHistoryOfOlderMismatches(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		o := repotest.Order("old-1", now)
		repotest.Seed(t, s, &o)
		if _, err := s.RecordMismatch(ctx, o, recon.Mismatch{Kind: recon.MismatchStuckPending, LocalStatus: recon.StatusPending,
			ChannelStatus: recon.ChannelPending, LocalAmount: 1, LocalCurrency: "CNY"}, repo.CommitMeta{Now: now}); err != nil {
			t.Fatal(err)
		}
		ms, _ := s.ListMismatches(ctx, repo.MismatchFilter{})
		if err := s.Resolve(ctx, ms[0].ID, "ann", "written off", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		// Pretend the mismatch predates migration 2, then apply it again.
		if err := s.DB().Exec("DELETE FROM recon_mismatch_events").Error; err != nil {
			t.Fatal(err)
		}
		if err := s.DB().Exec("DELETE FROM schema_migrations WHERE version = 2").Error; err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(ctx, now); err != nil {
			t.Fatal(err)
		}
		if h, want := actions(t, s, ms[0].ID), "OPENED:recon RESOLVED:ann"; h != want {
			t.Fatalf("history = %q, want %q", h, want)
		}
		// Re-applying is harmless.
		_ = s.DB().Exec("DELETE FROM schema_migrations WHERE version = 2").Error
		if _, err := s.Migrate(ctx, now); err != nil {
			t.Fatal(err)
		}
		if h := actions(t, s, ms[0].ID); h != "OPENED:recon RESOLVED:ann" {
			t.Fatalf("history after re-apply = %q", h)
		}
	})
}
