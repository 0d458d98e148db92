package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// A refund line is matched to its refund order by refund number (for
// Stripe, by the re_… id too). A PENDING refund the line shows made is
// looked up at once, and only the lookup settles it; a lookup that does not
// confirm the line is STATEMENT_CONFLICT with the refund number, a failed
// one makes the refund due at once; a line for a FAILED refund is
// CHANNEL_REFUNDED_LOCAL_FAILED and moves nothing; a line for a SUCCEEDED
// refund of its amount matches.
func TestStatementRefundLinesSettleOnlyThroughTheRefundLookup(t *testing.T) {
	repotest.ForSchemas(t, repotest.RefundSchemas, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 11, 22, 0, 0, 0, 0, loc)
		now := start.AddDate(0, 0, 2).UTC()
		sim := simulator.New(simulator.Config{Seed: 9, StatementZone: loc})
		paid := repotest.Order("O-REFUNDED", start.Add(2*time.Hour).UTC())
		paid.Status, paid.Amount = recon.StatusPaid, 10000
		paid.ChannelTxnID = sim.TxnID(paid.OrderNo)
		db.Seed(t, &paid)
		later := now.Add(time.Hour)
		refunds := map[string]*recon.Refund{}
		for _, no := range []string{"R-OK", "R-PEND", "R-DOWN", "R-FAILED", "R-DONE", "R-STRIPE"} {
			f := repotest.Refund(no, paid, start.Add(6*time.Hour).UTC())
			f.NextQueryAt = &later // not due before the statement
			f.QueryAttempts = 1
			refunds[no] = &f
		}
		refunds["R-FAILED"].Status = recon.RefundFailed
		refunds["R-DONE"].Status = recon.RefundSucceeded
		refunds["R-STRIPE"].Status = recon.RefundSucceeded
		refunds["R-STRIPE"].ChannelRefundID = "re_STRIPE"
		var seed []*recon.Refund
		for _, f := range refunds {
			seed = append(seed, f)
		}
		repotest.SeedRefunds(t, s, seed...)
		sim.SetRefund("R-OK", refundDone(300))
		sim.SetRefund("R-PEND", simulator.RefundBehaviour{Status: recon.RefundChannelPending})
		sim.SetRefund("R-DOWN", simulator.RefundBehaviour{PermanentError: true})

		var lines []recon.StatementLine
		for i, no := range []string{"R-OK", "R-PEND", "R-DOWN", "R-FAILED", "R-DONE", "re_STRIPE"} {
			lines = append(lines, recon.StatementLine{Kind: recon.LineRefund, OrderNo: paid.OrderNo, ChannelTxnID: paid.ChannelTxnID,
				RefundNo: no, Amount: 300, Currency: paid.Currency, OccurredAt: start.Add(time.Duration(8+i) * time.Hour).UTC()})
		}
		path := writeStatement(t, lines)
		ch := jobs.StatementChannel{Name: "sim", Source: sim,
			Lookup: channel.NewGuarded("sim", sim, 0, channel.RetryPolicy{InitialInterval: time.Millisecond, MaxElapsed: time.Second})}
		j := &jobs.Statements{Store: s, Clock: recon.NewFakeClock(now), Zone: loc, Owner: "test", Logger: testLogger(t)}
		if _, err := j.Import(ctx, ch, lookupDay, path); err != nil {
			t.Fatal(err)
		}
		before := map[string]recon.Refund{}
		for no := range refunds {
			before[no] = mustRefund(t, s, no)
		}
		unchanged := func(t *testing.T, no string) {
			t.Helper()
			b, r := before[no], mustRefund(t, s, no)
			if r.Status != b.Status || r.Version != b.Version || r.QueryAttempts != b.QueryAttempts ||
				!sameTime(r.NextQueryAt, b.NextQueryAt) || r.SucceededAt != nil {
				t.Errorf("refund %s moved: %+v, was %+v", no, r, b)
			}
		}

		dry, err := j.Reconcile(ctx, ch, lookupDay, true)
		if err != nil {
			t.Fatal(err)
		}
		if dry.RefundsSettled != 1 || dry.RefundsMatched != 2 || dry.Lookups != 3 || dry.LookupsFailed != 1 || dry.StatementConflicts != 1 {
			t.Errorf("dry run: %+v", dry)
		}
		for no := range refunds {
			unchanged(t, no)
		}

		res, err := j.Reconcile(ctx, ch, lookupDay, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.RefundsSettled != 1 || res.RefundsMatched != 2 || res.Lookups != 3 || res.LookupsFailed != 1 ||
			res.StatementConflicts != 1 || res.StatusMismatches != 1 || res.RefundMismatches != 0 || res.NewMismatches != 2 {
			t.Errorf("run: %+v", res)
		}
		if got := sim.RefundCalls("R-FAILED") + sim.RefundCalls("R-DONE") + sim.RefundCalls("R-STRIPE"); got != 0 {
			t.Errorf("terminal refunds were looked up %d times", got)
		}

		// Settled on the lookup's word, through the guarded path.
		ok := mustRefund(t, s, "R-OK")
		if ok.Status != recon.RefundSucceeded || ok.SucceededAt == nil {
			t.Errorf("settled refund %+v", ok)
		}
		if tr, err := s.RefundTransitions(ctx, ok.ID); err != nil || len(tr) != 1 || tr[0].Source != "statement" {
			t.Errorf("transitions of R-OK %+v %v", tr, err)
		}
		notes, err := s.NotificationsOf(ctx, paid.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(notes) != 1 || notes[0].Event != recon.EventRefundSucceeded || !strings.Contains(notes[0].Payload, "R-OK") {
			t.Errorf("outbox %+v", notes)
		}

		ms, err := s.ListMismatches(ctx, repo.MismatchFilter{})
		if err != nil {
			t.Fatal(err)
		}
		byRefund := map[string]repo.MismatchRecord{}
		for _, m := range ms {
			byRefund[m.RefundNo] = m
		}
		if len(ms) != 2 {
			t.Errorf("mismatches %+v", ms)
		}
		if m := byRefund["R-PEND"]; m.Kind != recon.MismatchStatementConflict || !strings.Contains(m.Detail, "statement line") {
			t.Errorf("R-PEND: %+v", m)
		}
		unchanged(t, "R-PEND")
		if m := byRefund["R-FAILED"]; m.Kind != recon.MismatchChannelRefundedLocalFail || !strings.Contains(m.Detail, "statement line") {
			t.Errorf("R-FAILED: %+v", m)
		}
		for _, no := range []string{"R-FAILED", "R-DONE", "R-STRIPE"} {
			unchanged(t, no)
		}

		// The failed lookup: due at once, nothing else.
		down := mustRefund(t, s, "R-DOWN")
		if down.Status != recon.RefundPending || down.NextQueryAt == nil || !down.NextQueryAt.Equal(now) ||
			down.QueryAttempts != before["R-DOWN"].QueryAttempts || !strings.Contains(down.LastQueryError, "lookup failed") {
			t.Errorf("refund whose lookup failed: %+v", down)
		}
		if _, ok := byRefund["R-DOWN"]; ok {
			t.Errorf("a failed lookup is a mismatch: %+v", byRefund["R-DOWN"])
		}

		// Again: nothing new, nothing settled twice.
		again, err := j.Reconcile(ctx, ch, lookupDay, false)
		if err != nil || again.RefundsSettled != 0 || again.NewMismatches != 0 || again.RefundsMatched != 3 {
			t.Errorf("again: %+v %v", again, err)
		}
	})
}

func mustRefund(t *testing.T, s *repo.Store, no string) recon.Refund {
	t.Helper()
	r, err := s.GetRefundByNo(context.Background(), no)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
