package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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

// statementEnv seeds the orders of 2026-11-22 (Shanghai) as callbacks left
// them: the channel's paid orders PAID (every fifth still PENDING), failed
// and closed ones terminal, the rest PENDING.
type statementEnv struct {
	db      repotest.DB
	sim     *simulator.Sim
	jobs    *jobs.Statements
	ch      jobs.StatementChannel
	loc     *time.Location
	pending map[string]bool // paid at the channel, PENDING locally
}

func newStatementEnv(t *testing.T, db repotest.DB) *statementEnv {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	sim := simulator.New(simulator.Config{Seed: 5, PaidRate: 0.6, FailedRate: 0.1, ClosedRate: 0.1, LateRate: 0.1,
		FeeRate: 0.006, StatementZone: loc})
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, loc)
	ctx := context.Background()
	e := &statementEnv{db: db, sim: sim, loc: loc, pending: map[string]bool{}}
	var orders []*recon.Order
	src := simulator.NewOrders()
	for i := 0; i < 120; i++ {
		o := repotest.Order(fmt.Sprintf("S%04d", i), t0)
		o.Amount = int64(1000 + 37*i)
		o.CreatedAt = start.Add(time.Duration(i) * 12 * time.Minute).UTC()
		if i == 119 {
			o.CreatedAt = start.Add(24*time.Hour - 20*time.Second).UTC() // paid after midnight
		}
		o.UpdatedAt = o.CreatedAt
		var r recon.LookupResult
		for k := 0; k < 5; k++ {
			if r, err = sim.Lookup(ctx, o); err == nil && r.Status != recon.ChannelPending {
				break
			}
		}
		switch r.Status {
		case recon.ChannelPaid:
			if i%5 == 0 {
				e.pending[o.OrderNo] = true
				break
			}
			o.Status, o.PaidAt, o.ChannelTxnID = recon.StatusPaid, r.PaidAt, r.TxnID
			o.Amount = r.Amount // a callback saw the channel's amount
		case recon.ChannelFailed:
			o.Status = recon.StatusFailed
		case recon.ChannelClosed:
			o.Status = recon.StatusClosed
		}
		src.Add(o)
		orders = append(orders, &o)
	}
	db.Seed(t, orders...)
	sim.SetStatementOrders(src)
	e.ch = jobs.StatementChannel{Name: "sim", Source: sim, FeeRate: 0.006,
		Lookup: channel.NewGuarded("sim", sim, 0, channel.RetryPolicy{InitialInterval: time.Millisecond, MaxElapsed: time.Second})}
	e.jobs = &jobs.Statements{Store: db.Store, Clock: recon.NewFakeClock(start.AddDate(0, 0, 3)), Zone: loc, Owner: "test",
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), PageSize: 7, CommitBatch: 3}
	return e
}

func mismatchCount(t *testing.T, s *repo.Store) map[recon.MismatchKind]int {
	t.Helper()
	ms, err := s.ListMismatches(context.Background(), repo.MismatchFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[recon.MismatchKind]int{}
	for _, m := range ms {
		out[m.Kind]++
	}
	return out
}

func TestStatementReconcileBothWays(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		e := newStatementEnv(t, db)
		ctx := context.Background()
		s := db.Store
		day, next := "2026-11-22", "2026-11-23"
		lines, err := e.sim.StatementLines(ctx, day, e.loc)
		if err != nil {
			t.Fatal(err)
		}
		imp, err := e.jobs.Fetch(ctx, e.ch, day)
		if err != nil || imp.Lines != int64(len(lines)) || imp.Status != repo.StatementImported || len(imp.SHA256) != 64 {
			t.Fatalf("fetch: %+v %v", imp, err)
		}
		// Matched: payments of local PAID orders that agree, fee included.
		var wantMatched int64
		for _, l := range lines {
			o, err := s.GetOrderByNo(ctx, l.OrderNo)
			if l.Kind == recon.LinePayment && err == nil && o.Status == recon.StatusPaid && o.Amount == l.Amount &&
				o.Currency == l.Currency {
				wantMatched++
			}
		}
		// A dry run says what it would do and writes nothing.
		dry, err := e.jobs.Reconcile(ctx, e.ch, day, true)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(mismatchCount(t, s)); n != 0 {
			t.Fatalf("dry run wrote %d mismatch kinds", n)
		}
		res, err := e.jobs.Reconcile(ctx, e.ch, day, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Matched != wantMatched {
			t.Errorf("matched %d, want %d", res.Matched, wantMatched)
		}
		if dry.Settled != res.Settled || dry.ChannelOnly != res.ChannelOnly || dry.Matched != res.Matched || dry.StatementConflicts != res.StatementConflicts {
			t.Errorf("dry run %+v differs from the run %+v", dry.StatementCounts, res.StatementCounts)
		}
		// Every planted case is found: the short payment (amount), the fee
		// off the rate, the over-refund and the refund of an unpaid order,
		// the unknown order, the payment the channel's lookup does not
		// confirm; PENDING orders the channel has paid are settled by their
		// lookups.
		if res.ChannelOnly != 1 || res.AmountMismatches != 1 || res.FeeMismatches != 1 || res.RefundMismatches != 2 || res.LocalOnly != 0 ||
			res.StatementConflicts != 1 || res.LookupsFailed != 0 {
			t.Errorf("findings %+v", res.StatementCounts)
		}
		settledWant := 0
		for _, l := range lines {
			if l.Kind == recon.LinePayment && e.pending[l.OrderNo] {
				o, _ := s.GetOrderByNo(ctx, l.OrderNo)
				if o.Amount == l.Amount {
					settledWant++
				}
				if o.Amount == l.Amount && (o.Status != recon.StatusPaid || o.PaidAt == nil || !o.PaidAt.Equal(l.OccurredAt) || o.ChannelTxnID != l.ChannelTxnID) {
					t.Errorf("order %s not settled from line %d: %+v", o.OrderNo, l.LineNo, o)
				}
				if tr, _ := s.Transitions(ctx, o.ID); o.Status == recon.StatusPaid && (len(tr) != 1 || tr[0].Source != "statement") {
					t.Errorf("order %s: transitions %+v", o.OrderNo, tr)
				}
				if n, _ := s.NotificationsOf(ctx, o.ID); o.Status == recon.StatusPaid && len(n) != 1 {
					t.Errorf("order %s: %d notifications", o.OrderNo, len(n))
				}
			}
		}
		if settledWant == 0 || res.Settled != int64(settledWant) || res.Lookups != int64(settledWant+1) || res.NewMismatches != 6 {
			t.Errorf("settled %d, want %d; new %d", res.Settled, settledWant, res.NewMismatches)
		}
		before := mismatchCount(t, s)

		// Again, and the same day imported again: nothing doubles.
		if _, err := e.jobs.Fetch(ctx, e.ch, day); err != nil {
			t.Fatal(err)
		}
		again, err := e.jobs.Reconcile(ctx, e.ch, day, false)
		if err != nil || again.NewMismatches != 0 || again.Settled != 0 || again.Lines != int64(len(lines)) {
			t.Fatalf("again: %+v %v", again, err)
		}
		if after := mismatchCount(t, s); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("mismatches %v after the re-import, %v before", after, before)
		}

		// The next day: the order left out of the first is LOCAL_ONLY now.
		if _, err := e.jobs.Fetch(ctx, e.ch, next); err != nil {
			t.Fatal(err)
		}
		res2, err := e.jobs.Reconcile(ctx, e.ch, next, false)
		if err != nil {
			t.Fatal(err)
		}
		if res2.LocalOnly != 1 || mismatchCount(t, s)[recon.MismatchLocalOnly] != 1 {
			t.Errorf("next day: %+v", res2.StatementCounts)
		}
		st, _ := s.GetStatement(ctx, "sim", next)
		if st.Status != repo.StatementReconciled || st.LocalOnly != 1 || st.RunID != res2.RunID {
			t.Errorf("statement row %+v", st)
		}
	})
}

func TestStatementThatDoesNotParseKeepsNothing(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newStatementEnv(t, db)
		ctx := context.Background()
		dir := t.TempDir()
		good := filepath.Join(dir, "good.csv")
		var buf bytes.Buffer
		if _, err := e.sim.FetchStatement(ctx, "2026-11-22", &buf); err != nil {
			t.Fatal(err)
		}
		body := buf.String()
		if err := os.WriteFile(good, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		// A row that does not parse, after a few good ones.
		rows := strings.Split(body, "\n")
		rows[5] = strings.Replace(rows[5], ",CNY,", ",CNY,not-a-time", 1)
		bad := filepath.Join(dir, "bad.csv")
		_ = os.WriteFile(bad, []byte(strings.Join(rows, "\n")), 0o600)
		res, err := e.jobs.Import(ctx, e.ch, "2026-11-22", bad)
		if !errors.Is(err, channel.ErrBadStatement) || res.Status != repo.StatementFailed || !strings.Contains(err.Error(), "line 6") {
			t.Fatalf("bad file: %+v %v", res, err)
		}
		st, err := db.Store.GetStatement(ctx, "sim", "2026-11-22")
		if err != nil || st.Status != repo.StatementFailed || !strings.Contains(st.Error, "line 6") || st.Lines != 0 {
			t.Fatalf("statement %+v %v", st, err)
		}
		if _, err := e.jobs.Reconcile(ctx, e.ch, "2026-11-22", false); err == nil || !strings.Contains(err.Error(), "FAILED") {
			t.Fatalf("reconcile of a failed statement: %v", err)
		}
		// Lines that do not add up to the file's own totals.
		e.ch.Source = sumMismatch{e.sim}
		if _, err := e.jobs.Import(ctx, e.ch, "2026-11-22", good); err == nil || !strings.Contains(err.Error(), "do not add up") {
			t.Fatalf("totals: %v", err)
		}
		var n int64
		db.Store.DB().Raw("SELECT COUNT(*) FROM channel_statement_lines").Scan(&n)
		if n != 0 {
			t.Fatalf("%d lines kept", n)
		}
		e.ch.Source = e.sim
		if res, err := e.jobs.Import(ctx, e.ch, "2026-11-22", good); err != nil || res.Status != repo.StatementImported {
			t.Fatalf("good file: %+v %v", res, err)
		}
		if _, err := e.jobs.Reconcile(ctx, e.ch, "2026-11-21", false); !errors.Is(err, recon.ErrNotFound) {
			t.Fatalf("a day never stored: %v", err)
		}
	})
}

// sumMismatch parses like the simulator, then finds the lines do not add up
// to the file's summary, as the Alipay and WeChat Pay parsers check.
type sumMismatch struct{ *simulator.Sim }

func (s sumMismatch) ParseStatement(r io.ReaderAt, size int64, day string, loc *time.Location, emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
	tot, err := s.Sim.ParseStatement(r, size, day, loc, emit)
	if err != nil {
		return tot, err
	}
	return tot, fmt.Errorf("%w: line 40: lines do not add up to the summary (payments %d, summary %d)", channel.ErrBadStatement, tot.PaymentsAmount, tot.PaymentsAmount+1)
}

// diesBeforeClosingRuns is a process killed before it closes its run.
type diesBeforeClosingRuns struct{ *repo.Store }

func (diesBeforeClosingRuns) FinishRun(context.Context, int64, string, repo.RunCounters, string, time.Time) error {
	return errors.New("killed")
}

// The next statement pass of a channel closes at once the run its dead
// holder left RUNNING, as reconcile passes do; other channels' runs stay.
func TestStatementPassClosesTheRunOfItsDeadHolder(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newStatementEnv(t, db)
		ctx := context.Background()
		day := "2026-11-22"
		e.ch.Name = "sim-" + strings.Repeat("x", 40) // channel names are not short
		if _, err := e.jobs.Fetch(ctx, e.ch, day); err != nil {
			t.Fatal(err)
		}
		dead := &jobs.Statements{Store: diesBeforeClosingRuns{db.Store}, Clock: e.jobs.Clock, Zone: e.loc, Owner: "dead-host/1",
			Logger: e.jobs.Logger}
		var deadRun int64
		lease := jobs.StatementLease(e.ch.Name)
		first := &jobs.Leaser{Store: db.Store, Clock: e.jobs.Clock, Logger: testLogger(t), Owner: "dead-host/1", TTL: time.Minute}
		if err := first.Run(ctx, lease, func(ctx context.Context) error {
			res, err := dead.Reconcile(ctx, e.ch, day, false)
			deadRun = res.RunID
			if err == nil {
				t.Error("the killed pass closed its run")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		other, err := db.Store.StartRun(ctx, jobs.KindStatement, false, "other", "dead-host/1", leaseStart)
		if err != nil {
			t.Fatal(err)
		}
		// The dead holder's lease is taken as if it had expired unrenewed.
		if _, ok, err := db.Store.AcquireLease(ctx, lease, "dead-host/1", time.Minute); err != nil || !ok {
			t.Fatal(ok, err)
		}
		repotest.ExpireLease(t, db.Store, lease)
		next := &jobs.Leaser{Store: db.Store, Clock: e.jobs.Clock, Logger: testLogger(t), Owner: "next", TTL: time.Minute}
		if err := next.Run(ctx, lease, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[int64]string{deadRun: repo.RunFailed, other: repo.RunRunning} {
			r, err := db.Store.GetRun(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != want || (want == repo.RunFailed && !strings.Contains(r.Error, "holder died")) {
				t.Errorf("run %d (shard %q) = %s %q, want %s", id, r.Shard, r.Status, r.Error, want)
			}
		}
	})
}
