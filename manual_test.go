package recon

import (
	"errors"
	"testing"
)

func TestAcceptAndCloseLocally(t *testing.T) {
	pending := Order{ID: 1, OrderNo: "A", Amount: 100, Currency: "CNY", Status: StatusPending}
	paid := pending
	paid.Status = StatusPaid
	for _, c := range []struct {
		name string
		o    Order
		r    ChannelStatus
		want Status
	}{
		{"paid with another amount", pending, ChannelPaid, StatusPaid},
		{"failed", pending, ChannelFailed, StatusFailed},
		{"closed", pending, ChannelClosed, StatusClosed},
		{"still pending", pending, ChannelPending, ""},
		{"not found", pending, ChannelNotFound, ""},
		{"terminal order", paid, ChannelClosed, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := Accept(c.o, LookupResult{Status: c.r, Amount: 150, Currency: "CNY"})
			if c.want == "" {
				if !errors.Is(err, ErrNotApplicable) {
					t.Fatalf("Accept: err %v, want ErrNotApplicable", err)
				}
				return
			}
			if err != nil || out.Action != ActionTransition || out.To != c.want || out.Event != EventFor(c.want) || out.Lookup == nil {
				t.Fatalf("Accept = %+v, %v; want transition to %s", out, err, c.want)
			}
		})
	}
	if out, err := CloseLocally(pending); err != nil || out.To != StatusClosed || out.Event != EventClosed {
		t.Fatalf("CloseLocally(pending) = %+v, %v", out, err)
	}
	if _, err := CloseLocally(paid); !errors.Is(err, ErrNotApplicable) {
		t.Fatalf("CloseLocally(paid): err %v, want ErrNotApplicable", err)
	}
}
