package simulator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
)

// TestCallbacks: failures and pending orders are never notified; the others
// are, but for the lost share; duplicates repeat the body; forged ones do
// not verify; late ones come last.
func TestCallbacks(t *testing.T) {
	s := simulator.New(simulator.Config{Seed: 7, PaidRate: 0.5, FailedRate: 0.2, ClosedRate: 0.1})
	var orders []recon.Order
	for i := range 400 {
		orders = append(orders, recon.Order{OrderNo: fmt.Sprintf("CB-%03d", i), Amount: 100, Currency: "CNY", Status: recon.StatusPending})
	}
	plan := simulator.CallbackPlan{LostRate: 0.2, LateRate: 0.3, LateDelay: time.Second, DuplicateRate: 0.25, ForgedRate: 0.1}
	cbs := s.Callbacks(orders, plan)
	bodies := map[string][]byte{}
	for _, cb := range cbs {
		if !cb.Forged && !cb.Duplicate {
			bodies[cb.OrderNo] = cb.Body
		}
	}
	var late, dups, forged int
	seenLate := false
	for _, cb := range cbs {
		n, err := s.VerifyNotification(context.Background(), cb.Body, cb.Header)
		if cb.Forged {
			forged++
			if !errors.Is(err, channel.ErrBadSignature) {
				t.Fatalf("forged notification verified: %+v %v", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", cb.OrderNo, err)
		}
		if n.Result.Status == recon.ChannelFailed || n.Result.Status == recon.ChannelPending {
			t.Fatalf("%s notified %s", cb.OrderNo, n.Result.Status)
		}
		if cb.After > 0 {
			late, seenLate = late+1, true
		} else if seenLate {
			t.Fatalf("an on-time notification after a late one")
		}
		if cb.Duplicate {
			dups++
			if !bytes.Equal(bodies[cb.OrderNo], cb.Body) {
				t.Fatalf("%s: the duplicate differs", cb.OrderNo)
			}
		}
	}
	// 60% of 400 orders are final and notified but for a fifth: ~192.
	if n := len(bodies); n < 150 || n > 230 || late == 0 || dups == 0 || forged == 0 {
		t.Fatalf("%d orders notified, %d late, %d duplicates, %d forged", n, late, dups, forged)
	}
}
