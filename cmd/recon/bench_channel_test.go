package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
)

// TestBenchChannelLooksRefundsUp: the bench's channel settles refunds as it
// settles orders, across the simulators it replaces.
func TestBenchChannelLooksRefundsUp(t *testing.T) {
	g := channel.NewGuarded("bench", &forgetful{cfg: simulator.Config{Seed: 1, PaidRate: 1}}, 0, channel.RetryPolicy{MaxElapsed: time.Second})
	if !g.CanLookupRefund() {
		t.Fatal("the bench channel has no refund lookup")
	}
	for i := range 3 {
		r := recon.Refund{RefundNo: fmt.Sprintf("bench-rf-%d", i), OrderNo: "bench-o", Amount: 300, Currency: "CNY", Status: recon.RefundPending}
		got, err := g.LookupRefund(context.Background(), r)
		if err != nil || got.Status != recon.RefundChannelSucceeded || got.Amount != 300 {
			t.Fatalf("%s: %+v, %v; want SUCCEEDED 300", r.RefundNo, got, err)
		}
	}
}
