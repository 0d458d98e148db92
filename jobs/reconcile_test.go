package jobs_test

import (
	"context"
	"fmt"
	"log/slog"
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

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

var policy = recon.Policy{
	MaxAge:        24 * time.Hour,
	Schedule:      []time.Duration{5 * time.Second, 30 * time.Second, time.Minute},
	CloseOnExpiry: true,
}

// env is one test's database, simulator and clock.
type env struct {
	t     *testing.T
	db    repotest.DB
	sim   *simulator.Sim
	clock *recon.FakeClock
	// retry is the lookups' retry policy: a budget no retried lookup of
	// these tests needs, however loaded the machine (tests of giving up
	// set a short one).
	retry channel.RetryPolicy
}

func newEnv(t *testing.T, db repotest.DB) *env {
	// Orders no behaviour names stay PENDING at the channel.
	return &env{t: t, db: db, sim: simulator.New(simulator.Config{Seed: 1, Secret: "s3cret", RetryAfter: 50 * time.Millisecond}),
		clock: recon.NewFakeClock(t0),
		retry: channel.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxElapsed: time.Minute}}
}

func (e *env) reconciler(store *repo.Store, look channel.Lookup) *jobs.Reconciler {
	if look == nil {
		look = e.sim
	}
	g := channel.NewGuarded("sim", look, 0, e.retry)
	return &jobs.Reconciler{
		Store: store, Channels: map[string]jobs.Channel{"sim": g}, Clock: e.clock,
		Logger: slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Policy: policy, GracePeriod: time.Minute, BatchSize: 7, Concurrency: 4,
		ShutdownGrace: time.Second, Heartbeat: time.Minute, Owner: "test",
	}
}

func (e *env) run(w jobs.Window) jobs.Result {
	e.t.Helper()
	res, err := e.reconciler(e.db.Store, nil).Run(context.Background(), w)
	if err != nil {
		e.t.Fatalf("run: %v", err)
	}
	return res
}

func (e *env) order(no string) recon.Order {
	e.t.Helper()
	o, err := e.db.Store.GetOrderByNo(context.Background(), no)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *env) seed(orders ...*recon.Order) { e.db.Seed(e.t, orders...) }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestDecisionTable drives every row of the decision table through the real
// lookup and commit path.
func TestDecisionTable(t *testing.T) {
	type want struct {
		status       recon.Status
		event        recon.Event // "" : no outbox row
		mismatch     recon.MismatchKind
		rescheduled  bool // next_query_at set in the future
		parked       bool // next_query_at NULL, attempts > 0
		errContains  string
		expired      bool // order older than max_age
		noClose      bool // policy without close_on_expiry
		calls        int  // lookups the channel saw (0: don't check)
		counterCheck func(jobs.Result) bool
	}
	cases := []struct {
		name string
		b    simulator.Behaviour
		want want
	}{
		{"paid, amounts equal", simulator.Behaviour{Status: recon.ChannelPaid},
			want{status: recon.StatusPaid, event: recon.EventPaid, counterCheck: func(r jobs.Result) bool { return r.Paid == 1 }}},
		{"paid, amount differs", simulator.Behaviour{Status: recon.ChannelPaid, Amount: 999},
			want{status: recon.StatusPending, mismatch: recon.MismatchAmount, parked: true, counterCheck: func(r jobs.Result) bool { return r.Mismatches == 1 && r.NewMismatches == 1 }}},
		{"paid, currency differs", simulator.Behaviour{Status: recon.ChannelPaid, Currency: "USD"},
			want{status: recon.StatusPending, mismatch: recon.MismatchCurrency, parked: true}},
		{"failed", simulator.Behaviour{Status: recon.ChannelFailed},
			want{status: recon.StatusFailed, event: recon.EventFailed, counterCheck: func(r jobs.Result) bool { return r.Failed == 1 }}},
		{"closed", simulator.Behaviour{Status: recon.ChannelClosed},
			want{status: recon.StatusClosed, event: recon.EventClosed, counterCheck: func(r jobs.Result) bool { return r.Closed == 1 }}},
		{"pending", simulator.Behaviour{Status: recon.ChannelPending},
			want{status: recon.StatusPending, rescheduled: true, counterCheck: func(r jobs.Result) bool { return r.Rescheduled == 1 }}},
		{"not found", simulator.Behaviour{Status: recon.ChannelNotFound},
			want{status: recon.StatusPending, rescheduled: true}},
		{"transient errors beyond the retry budget", simulator.Behaviour{Status: recon.ChannelPaid, TransientFailures: 1000},
			want{status: recon.StatusPending, rescheduled: true, errContains: "transient", counterCheck: func(r jobs.Result) bool { return r.Errors == 1 }}},
		{"permanent error", simulator.Behaviour{Status: recon.ChannelPaid, PermanentError: true},
			want{status: recon.StatusPending, rescheduled: true, errContains: "permanent", calls: 1}},
		{"bad signature", simulator.Behaviour{Status: recon.ChannelPaid, BadSignature: true},
			want{status: recon.StatusPending, rescheduled: true, errContains: "signature", calls: 1}},
		{"expired, pending, closed at the channel", simulator.Behaviour{Status: recon.ChannelPending},
			want{status: recon.StatusClosed, event: recon.EventClosed, expired: true}},
		{"expired, paid while closing", simulator.Behaviour{Status: recon.ChannelPending, PayOnClose: true},
			want{status: recon.StatusPaid, event: recon.EventPaid, expired: true}},
		{"expired, pending, no close", simulator.Behaviour{Status: recon.ChannelPending},
			want{status: recon.StatusPending, mismatch: recon.MismatchStuckPending, parked: true, expired: true, noClose: true}},
		{"expired, not found", simulator.Behaviour{Status: recon.ChannelNotFound},
			want{status: recon.StatusPending, mismatch: recon.MismatchNotFoundAtChannel, parked: true, expired: true}},
	}
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, db)
				if tc.b.TransientFailures > 0 {
					e.retry.MaxElapsed = 200 * time.Millisecond // given up on, however soon
				}
				no := fmt.Sprintf("DT-%s-%d", db.Dialect, i)
				o := repotest.Order(no, t0)
				if tc.want.expired {
					o.CreatedAt = t0.Add(-25 * time.Hour)
				}
				e.seed(&o)
				e.sim.Set(no, tc.b)
				rec := e.reconciler(db.Store, nil)
				if tc.want.noClose {
					rec.Policy.CloseOnExpiry = false
				}
				// Earlier cases' orders are terminal, parked or scheduled after
				// t0, so the due set is exactly this order.
				res, err := rec.Run(context.Background(), jobs.Window{})
				if err != nil {
					t.Fatal(err)
				}
				if res.Scanned != 1 {
					t.Fatalf("scanned %d orders, want 1", res.Scanned)
				}
				got := e.order(no)
				w := tc.want
				if got.Status != w.status {
					t.Fatalf("status = %s, want %s (last error %q)", got.Status, w.status, got.LastQueryError)
				}
				notes, _ := db.Store.NotificationsOf(context.Background(), got.ID)
				switch {
				case w.event == "" && len(notes) != 0:
					t.Fatalf("outbox = %+v, want none", notes)
				case w.event != "" && (len(notes) != 1 || notes[0].Event != w.event):
					t.Fatalf("outbox = %+v, want one %s", notes, w.event)
				}
				trs, _ := db.Store.Transitions(context.Background(), got.ID)
				if wantTr := w.status.Terminal(); wantTr != (len(trs) == 1) || len(trs) > 1 {
					t.Fatalf("audit rows = %+v", trs)
				}
				if w.status.Terminal() && got.Version != 1 {
					t.Fatalf("version = %d, want 1", got.Version)
				}
				if !w.status.Terminal() && got.Version != 0 {
					t.Fatalf("version of a non-transitioned order = %d, want 0", got.Version)
				}
				ms, _ := db.Store.ListMismatches(context.Background(), repo.MismatchFilter{OrderID: got.ID})
				if w.mismatch == "" && len(ms) != 0 {
					t.Fatalf("mismatches = %+v, want none", ms)
				}
				if w.mismatch != "" && (len(ms) != 1 || ms[0].Kind != w.mismatch) {
					t.Fatalf("mismatches = %+v, want %s", ms, w.mismatch)
				}
				if w.rescheduled && (got.NextQueryAt == nil || !got.NextQueryAt.After(t0) || got.QueryAttempts != 1) {
					t.Fatalf("not rescheduled: next %v attempts %d", got.NextQueryAt, got.QueryAttempts)
				}
				if w.parked && (got.NextQueryAt != nil || got.QueryAttempts != 1) {
					t.Fatalf("not parked: next %v attempts %d", got.NextQueryAt, got.QueryAttempts)
				}
				if w.errContains != "" && !strings.Contains(got.LastQueryError, w.errContains) {
					t.Fatalf("last_query_error = %q, want it to mention %q", got.LastQueryError, w.errContains)
				}
				if w.errContains == "" && got.LastQueryError != "" && w.mismatch == "" {
					t.Fatalf("unexpected last_query_error %q", got.LastQueryError)
				}
				if w.calls > 0 && e.sim.Calls(no) != w.calls {
					t.Fatalf("channel saw %d lookups, want %d", e.sim.Calls(no), w.calls)
				}
				if w.counterCheck != nil && !w.counterCheck(res) {
					t.Fatalf("counters = %+v", res.RunCounters)
				}
			})
		}
	})
}
