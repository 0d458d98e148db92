package simulator

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
)

func refund(no string) recon.Refund {
	return recon.Refund{RefundNo: no, OrderNo: "O-" + no, Amount: 300, Currency: "CNY", Status: recon.RefundPending, CreatedAt: t0}
}

// refundOutcome is one refund lookup's answer in comparable form.
type refundOutcome struct {
	Status   recon.RefundChannelStatus
	Amount   int64
	Currency string
	ID       string
	At       string
	Class    string // "" on success
}

func lookupRefund(t *testing.T, rl channel.RefundLookup, r recon.Refund) refundOutcome {
	t.Helper()
	a, err := rl.LookupRefund(context.Background(), r)
	if err != nil {
		return refundOutcome{Class: channel.ClassOf(err).String()}
	}
	out := refundOutcome{Status: a.Status, Amount: a.Amount, Currency: a.Currency, ID: a.ChannelRefundID}
	if a.SucceededAt != nil {
		out.At = a.SucceededAt.String()
	}
	return out
}

// TestRefundsOverHTTPMatchInProcess: the httpjson refund endpoint answers
// what the in-process simulator answers, call for call, for forced and
// seeded refunds, and a refund the source does not know is NOT_FOUND.
func TestRefundsOverHTTPMatchInProcess(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 3, Secret: "k", PaidRate: 0.3, FailedRate: 0.1, NotFoundRate: 0.1, LateRate: 0.1,
		AmountTamperRate: 0.05, BadSignatureRate: 0.05, RefundAbnormalRate: 0.1, TransientRate: 0.1, RateLimitRate: 0.05}
	local, remoteSim := New(cfg), New(cfg)
	orders := NewOrders()
	srv := httptest.NewServer(remoteSim.Server(orders, Keys{}))
	t.Cleanup(srv.Close)
	remote, err := httpjson.New(httpjson.Config{Name: "sim-http", BaseURL: srv.URL, Secret: "k"})
	if err != nil {
		t.Fatal(err)
	}
	forced := []RefundBehaviour{
		{}, {Status: recon.RefundChannelSucceeded}, {Status: recon.RefundChannelFailed},
		{Status: recon.RefundChannelAbnormal}, {Status: recon.RefundChannelNotFound},
		{Status: recon.RefundChannelSucceeded, Amount: 301}, {SucceedAfterLookups: 2},
		{Status: recon.RefundChannelSucceeded, TransientFailures: 1, RateLimits: 1},
		{Status: recon.RefundChannelSucceeded, BadSignature: true}, {Status: "REVERSED"},
	}
	var refunds []recon.Refund
	for i := range 100 {
		r := refund(fmt.Sprintf("RF-%d", i))
		r.Amount += int64(i)
		if i < len(forced) {
			local.SetRefund(r.RefundNo, forced[i])
			remoteSim.SetRefund(r.RefundNo, forced[i])
		}
		orders.AddRefund(r)
		refunds = append(refunds, r)
	}
	for _, r := range refunds {
		for n := range 4 {
			if l, h := lookupRefund(t, local, r), lookupRefund(t, remote, r); l != h {
				t.Errorf("%s call %d: in process %+v, over HTTP %+v", r.RefundNo, n+1, l, h)
			}
		}
		if local.RefundCalls(r.RefundNo) != 4 || remoteSim.RefundCalls(r.RefundNo) != 4 {
			t.Errorf("%s: %d calls in process, %d over HTTP, want 4", r.RefundNo, local.RefundCalls(r.RefundNo), remoteSim.RefundCalls(r.RefundNo))
		}
	}
	unknown := refund("RF-unknown")
	if got := lookupRefund(t, remote, unknown); got.Status != recon.RefundChannelNotFound {
		t.Errorf("refund unknown to the source: %+v, want NOT_FOUND", got)
	}
	if remoteSim.RefundCalls(unknown.RefundNo) != 1 {
		t.Errorf("the unknown refund's call was not counted")
	}
}

// TestRefundDistributionFollowsRates: seeded refunds fall in the buckets the
// rates give, apart from the orders of the same numbers.
func TestRefundDistributionFollowsRates(t *testing.T) {
	t.Parallel()
	sim := New(Config{Seed: 5, PaidRate: 0.4, FailedRate: 0.1, ClosedRate: 0.05, NotFoundRate: 0.05, LateRate: 0.1,
		AmountTamperRate: 0.05, BadSignatureRate: 0.05, RefundAbnormalRate: 0.1, LateAfter: 1})
	const n = 10000
	counts := map[string]int{}
	sameAsOrder := 0
	for i := range n {
		r := refund(fmt.Sprintf("S-%05d", i))
		first := lookupRefund(t, sim, r)
		var kind string
		switch {
		case first.Class != "":
			kind = "bad_signature"
		case first.Status == recon.RefundChannelSucceeded && first.Amount != r.Amount:
			kind = "amount_tamper"
		case first.Status == recon.RefundChannelPending:
			kind = "pending"
			if lookupRefund(t, sim, r).Status == recon.RefundChannelSucceeded {
				kind = "late"
			}
		default:
			kind = string(first.Status)
		}
		counts[kind]++
		o := order(r.RefundNo)
		if res, err := sim.Lookup(context.Background(), o); err == nil && string(res.Status) == string(first.Status) {
			sameAsOrder++
		}
	}
	want := map[string]float64{"SUCCEEDED": 0.4, "FAILED": 0.15, "NOT_FOUND": 0.05, "late": 0.1,
		"amount_tamper": 0.05, "bad_signature": 0.05, "ABNORMAL": 0.1, "pending": 0.1}
	for kind, rate := range want {
		if got := float64(counts[kind]) / n; math.Abs(got-rate) > 0.015 {
			t.Errorf("%s: %.3f of refunds, want %.3f", kind, got, rate)
		}
	}
	// Refund and order buckets are drawn apart: a refund numbered like an
	// order does not copy its answer.
	if sameAsOrder > n/2 {
		t.Errorf("%d of %d refunds answered like the order of the same number", sameAsOrder, n)
	}
}

func TestRefundAnswerDetails(t *testing.T) {
	t.Parallel()
	sim := New(Config{Seed: 1})
	r := refund("RF-D")
	sim.SetRefund(r.RefundNo, RefundBehaviour{Status: recon.RefundChannelSucceeded})
	a, err := sim.LookupRefund(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if a.ChannelRefundID != sim.RefundID(r.RefundNo) || a.SucceededAt == nil || !a.SucceededAt.After(t0) {
		t.Errorf("answer %+v: want the simulator's refund id and a time after creation", a)
	}
	// A refund that has the channel's id already (Stripe's re_…) is
	// answered with it.
	r.ChannelRefundID = "re_123"
	if a, err := sim.LookupRefund(context.Background(), r); err != nil || a.ChannelRefundID != "re_123" {
		t.Errorf("answer %+v, %v: want the refund's own id re_123", a, err)
	}
}

// TestStripeRefundIDConvention: over Stripe's wire a refund without an id of
// its own is re_{refund_no}, as in the simulator's statements; one whose id
// is another is not found under re_{refund_no}.
func TestStripeRefundIDConvention(t *testing.T) {
	t.Parallel()
	keys, err := TestKeys()
	if err != nil {
		t.Fatal(err)
	}
	sim := New(Config{Seed: 1, PaidRate: 1})
	orders := NewOrders()
	srv := httptest.NewServer(sim.Server(orders, keys))
	t.Cleanup(srv.Close)
	plain, own := refund("RFA"), refund("RFB")
	own.ChannelRefundID = "re_own"
	orders.AddRefund(plain, own)
	get := func(id string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/refunds/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+keys.StripeAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for id, want := range map[string]int{"re_RFA": 200, "re_own": 200, "re_RFB": 404, "re_nobody": 404} {
		if got := get(id); got != want {
			t.Errorf("GET /v1/refunds/%s: HTTP %d, want %d", id, got, want)
		}
	}
}
