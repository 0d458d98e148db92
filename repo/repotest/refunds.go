package repotest

import (
	"context"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// Refund returns a due PENDING refund of o (which must be seeded: its ID
// is set) for 300 of o's currency, created an hour before now; mutate the
// copy for the case at hand.
func Refund(no string, o recon.Order, now time.Time) recon.Refund {
	return recon.Refund{
		RefundNo: no, OrderID: o.ID, OrderNo: o.OrderNo, MerchantID: o.MerchantID, Channel: o.Channel,
		Amount: 300, Currency: o.Currency, Status: recon.RefundPending,
		CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour),
	}
}

// SeedRefunds inserts refunds and fails the test on error.
func SeedRefunds(t testing.TB, s *repo.Store, refunds ...*recon.Refund) {
	t.Helper()
	vals := make([]recon.Refund, len(refunds))
	for i, r := range refunds {
		vals[i] = *r
	}
	if err := s.InsertRefunds(context.Background(), vals); err != nil {
		t.Fatal(err)
	}
	for i := range refunds {
		refunds[i].ID, refunds[i].StoredStatus = vals[i].ID, vals[i].StoredStatus
	}
}
