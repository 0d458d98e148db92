package jobs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// lookupEnv is a statement day whose every payment line claims a local
// PENDING order paid, each order's lookup answering as the case needs.
type lookupEnv struct {
	sim    *simulator.Sim
	jobs   *jobs.Statements
	ch     jobs.StatementChannel
	orders map[string]*recon.Order
	lines  map[string]recon.StatementLine
	now    time.Time
}

const lookupDay = "2026-11-22"

// newLookupEnv seeds one PENDING order per case of cases (order number ->
// the simulator's behaviour, nil: never looked up) and imports the day's
// statement: one payment line per order with the order's amount and
// currency, the transaction id the channel gives it (txn overrides it).
func newLookupEnv(t *testing.T, db repotest.DB, cases map[string]*simulator.Behaviour, txn map[string]string, known map[string]string) *lookupEnv {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 22, 0, 0, 0, 0, loc)
	e := &lookupEnv{sim: simulator.New(simulator.Config{Seed: 9, StatementZone: loc}), orders: map[string]*recon.Order{},
		lines: map[string]recon.StatementLine{}, now: start.AddDate(0, 0, 2).UTC()}
	var seed []*recon.Order
	i := 0
	for no, b := range cases {
		i++
		o := repotest.Order(no, e.now)
		o.Amount = int64(1000 + 10*i)
		o.CreatedAt = start.Add(time.Duration(i) * time.Hour).UTC()
		o.UpdatedAt = o.CreatedAt
		o.ChannelTxnID = known[no]
		later := e.now.Add(time.Hour)
		o.NextQueryAt = &later // not due before the statement
		o.QueryAttempts = 1
		if b != nil {
			e.sim.Set(no, *b)
		}
		e.orders[no] = &o
		seed = append(seed, &o)
		l := recon.StatementLine{Kind: recon.LinePayment, OrderNo: no, ChannelTxnID: e.sim.TxnID(no), Amount: o.Amount,
			Currency: o.Currency, OccurredAt: o.CreatedAt.Add(30 * time.Minute)}
		if v, ok := txn[no]; ok {
			l.ChannelTxnID = v
		}
		e.lines[no] = l
	}
	db.Seed(t, seed...)
	var lines []recon.StatementLine
	for _, l := range e.lines {
		lines = append(lines, l)
	}
	path := writeStatement(t, lines)
	e.ch = jobs.StatementChannel{Name: "sim", Source: e.sim,
		Lookup: channel.NewGuarded("sim", e.sim, 0, channel.RetryPolicy{InitialInterval: time.Millisecond, MaxElapsed: time.Second})}
	e.jobs = &jobs.Statements{Store: db.Store, Clock: recon.NewFakeClock(e.now), Zone: loc, Owner: "test", Logger: testLogger(t)}
	if _, err := e.jobs.Import(context.Background(), e.ch, lookupDay, path); err != nil {
		t.Fatal(err)
	}
	return e
}

// writeStatement writes lines as an httpjson statement file and returns its
// path.
func writeStatement(t *testing.T, lines []recon.StatementLine) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "statement.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := httpjson.NewStatementWriter(f)
	for _, l := range lines {
		if err := w.Write(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// A statement line is evidence, never a verdict: only the channel's lookup
// settles the order it claims paid, on the lookup's facts; a lookup that
// does not confirm the line is STATEMENT_CONFLICT and moves nothing; a line
// whose transaction id is not the order's is never looked up nor settled; a
// failed lookup makes the order due at once. A dry run looks up and says
// so, and writes nothing.
func TestStatementLinesSettleOnlyThroughTheLookup(t *testing.T) {
	repotest.ForEachSchema(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		s := db.Store
		e := newLookupEnv(t, db, map[string]*simulator.Behaviour{
			"L-PAID":     {Status: recon.ChannelPaid},
			"L-PENDING":  {Status: recon.ChannelPending},
			"L-NOTFOUND": {Status: recon.ChannelNotFound},
			"L-FAILED":   {Status: recon.ChannelFailed},
			"L-AMOUNT":   {Status: recon.ChannelPaid, Amount: 1},
			"L-OTHERTXN": {Status: recon.ChannelPaid},
			"L-DOWN":     {PermanentError: true},
			"pi_REAL":    {Status: recon.ChannelPaid},
		}, map[string]string{"L-OTHERTXN": "T-FORGED", "pi_REAL": "pi_OTHER"}, map[string]string{"pi_REAL": "pi_REAL"})
		conflicts := []string{"L-PENDING", "L-NOTFOUND", "L-FAILED", "L-AMOUNT", "L-OTHERTXN", "pi_REAL"}
		before := map[string]recon.Order{}
		for no := range e.orders {
			o, err := s.GetOrderByNo(ctx, no)
			if err != nil {
				t.Fatal(err)
			}
			before[no] = o
		}
		unchanged := func(t *testing.T, no string) {
			t.Helper()
			b, o := before[no], mustOrder(t, s, no)
			if o.Status != recon.StatusPending || o.Version != b.Version || o.QueryAttempts != b.QueryAttempts ||
				!sameTime(o.NextQueryAt, b.NextQueryAt) || o.PaidAt != nil || o.ChannelTxnID != b.ChannelTxnID {
				t.Errorf("order %s moved: %+v, was %+v", no, o, b)
			}
		}

		dry, err := e.jobs.Reconcile(ctx, e.ch, lookupDay, true)
		if err != nil {
			t.Fatal(err)
		}
		if dry.Settled != 1 || dry.StatementConflicts != int64(len(conflicts)) || dry.LookupsFailed != 1 || dry.Lookups != 7 {
			t.Errorf("dry run: settled %d, statement conflicts %d, lookups %d (%d failed)", dry.Settled, dry.StatementConflicts, dry.Lookups, dry.LookupsFailed)
		}
		for no := range e.orders {
			unchanged(t, no)
		}
		if n := len(mismatchCount(t, s)); n != 0 {
			t.Fatalf("the dry run wrote %d mismatch kinds", n)
		}

		res, err := e.jobs.Reconcile(ctx, e.ch, lookupDay, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Settled != 1 || res.StatementConflicts != int64(len(conflicts)) || res.LookupsFailed != 1 || res.Lookups != 7 ||
			res.Matched != 0 || res.AmountMismatches != 0 || res.NewMismatches != int64(len(conflicts)) {
			t.Errorf("run: %+v", res)
		}
		if st, err := s.GetStatement(ctx, "sim", lookupDay); err != nil || st.StatementConflicts != int64(len(conflicts)) || st.Settled != 1 {
			t.Errorf("statement row %+v %v", st.StatementCounts, err)
		}
		if e.sim.Calls("pi_REAL") != 0 {
			t.Errorf("the line for another PaymentIntent was looked up %d times", e.sim.Calls("pi_REAL"))
		}

		// Settled on the lookup's facts, through the guarded path.
		paid := mustOrder(t, s, "L-PAID")
		want, err := e.sim.Lookup(ctx, paid)
		if err != nil {
			t.Fatal(err)
		}
		if paid.Status != recon.StatusPaid || paid.PaidAt == nil || !paid.PaidAt.Equal(*want.PaidAt) ||
			paid.PaidAt.Equal(e.lines["L-PAID"].OccurredAt) || paid.ChannelTxnID != want.TxnID {
			t.Errorf("settled order %+v, want the lookup's %+v", paid, want)
		}
		if tr, _ := s.Transitions(ctx, paid.ID); len(tr) != 1 || tr[0].Source != "statement" || tr[0].ToStatus != recon.StatusPaid {
			t.Errorf("transitions %+v", tr)
		}
		if n, _ := s.NotificationsOf(ctx, paid.ID); len(n) != 1 || n[0].Event != recon.EventPaid {
			t.Errorf("notifications %+v", n)
		}

		// Not confirmed: a conflict each, and the order as it was.
		ms, err := s.ListMismatches(ctx, repo.MismatchFilter{})
		if err != nil {
			t.Fatal(err)
		}
		byOrder := map[string]repo.MismatchRecord{}
		for _, m := range ms {
			byOrder[m.OrderNo] = m
		}
		for _, no := range conflicts {
			unchanged(t, no)
			m, ok := byOrder[no]
			if !ok || m.Kind != recon.MismatchStatementConflict || m.ChannelTxnID != e.lines[no].ChannelTxnID || !strings.Contains(m.Detail, "statement line") {
				t.Errorf("order %s: mismatch %+v", no, m)
			}
		}
		if m := byOrder["pi_REAL"]; !strings.Contains(m.Detail, "pi_OTHER") || !strings.Contains(m.Detail, "pi_REAL") {
			t.Errorf("the PaymentIntent conflict does not name both: %q", m.Detail)
		}
		if m := byOrder["L-FAILED"]; m.ChannelStatus != recon.ChannelFailed || !strings.Contains(m.Detail, "lookup says FAILED") {
			t.Errorf("conflict of a FAILED lookup: %+v", m)
		}

		// The failed lookup: due at once for the next pass, nothing else.
		down := mustOrder(t, s, "L-DOWN")
		if down.Status != recon.StatusPending || down.NextQueryAt == nil || !down.NextQueryAt.Equal(e.now) ||
			down.QueryAttempts != before["L-DOWN"].QueryAttempts || !strings.Contains(down.LastQueryError, "lookup failed") {
			t.Errorf("order whose lookup failed: %+v", down)
		}
		if _, ok := byOrder["L-DOWN"]; ok {
			t.Errorf("a failed lookup is a mismatch: %+v", byOrder["L-DOWN"])
		}
		due, _, err := s.ScanPage(ctx, repo.Scan{Now: e.now, CreatedBefore: e.now}, repo.Cursor{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 1 || due[0].OrderNo != "L-DOWN" {
			t.Errorf("due for the next pass: %v", due)
		}

		// Again: nothing new, nothing settled twice.
		again, err := e.jobs.Reconcile(ctx, e.ch, lookupDay, false)
		if err != nil || again.Settled != 0 || again.NewMismatches != 0 || again.Matched != 1 {
			t.Errorf("again: %+v %v", again, err)
		}
	})
}

// A channel whose breaker opens stops being looked up for the rest of the
// reconciliation: its orders are made due for the next pass, not settled.
func TestStatementLookupsStopWhenTheChannelIsPaused(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		cases := map[string]*simulator.Behaviour{}
		for _, no := range []string{"P1", "P2", "P3", "P4", "P5", "P6"} {
			cases[no] = &simulator.Behaviour{Status: recon.ChannelPaid, TransientFailures: 1000}
		}
		e := newLookupEnv(t, db, cases, nil, nil)
		e.ch.Policy = jobs.ChannelPolicy{Concurrency: 1, Breaker: recon.BreakerPolicy{Failures: 2}}
		m := jobs.NewMetrics()
		e.jobs.Observer = m
		res, err := e.jobs.Reconcile(ctx, e.ch, lookupDay, false)
		if err != nil {
			t.Fatal(err)
		}
		// The statement job's series are pushed and outlive it: a paused
		// gauge left among them would say paused until the next day's run.
		if v, ok := series(gather(t, m), "recon_channel_paused", map[string]string{"channel": "sim"}); ok && v != 0 {
			t.Errorf("recon_channel_paused{channel=sim} = %v after the statement job", v)
		}
		if res.Settled != 0 || res.LookupsFailed != 6 || res.StatementConflicts != 0 {
			t.Errorf("result %+v", res)
		}
		calls := 0
		for no := range cases {
			calls += e.sim.Calls(no)
			o := mustOrder(t, db.Store, no)
			if o.Status != recon.StatusPending || o.NextQueryAt == nil || !o.NextQueryAt.Equal(e.now) {
				t.Errorf("order %s: %+v", no, o)
			}
			// The orders never looked up share one reason (made due together).
			if e.sim.Calls(no) == 0 && o.LastQueryError != "a statement line claims it paid; not looked up: "+channel.ErrPaused.Error() {
				t.Errorf("order %s not looked up: last_query_error %q", no, o.LastQueryError)
			}
		}
		if calls != 2 {
			t.Errorf("%d calls to a channel paused after 2 failures", calls)
		}
	})
}

func mustOrder(t *testing.T, s *repo.Store, no string) recon.Order {
	t.Helper()
	o, err := s.GetOrderByNo(context.Background(), no)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// STATEMENT_CONFLICT is counted in the metrics of the reconciliation and of
// the open mismatches, and reported like every kind: totals, CSV, and the
// report's kind filter.
func TestStatementConflictInMetricsAndReports(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		e := newLookupEnv(t, db, map[string]*simulator.Behaviour{
			"C-UNPAID": {Status: recon.ChannelPending},
			"C-PAID":   {Status: recon.ChannelPaid},
		}, nil, nil)
		m := jobs.NewMetrics()
		e.jobs.Observer = m
		if _, err := e.jobs.Reconcile(ctx, e.ch, lookupDay, false); err != nil {
			t.Fatal(err)
		}
		if err := m.RefreshMismatches(ctx, db.Store, e.now); err != nil {
			t.Fatal(err)
		}
		fams := gather(t, m)
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"recon_mismatches_total", map[string]string{"kind": "STATEMENT_CONFLICT"}, 1},
			{"recon_open_mismatches", map[string]string{"kind": "STATEMENT_CONFLICT"}, 1},
			{"recon_transitions_total", map[string]string{"to": "PAID"}, 1},
			{"recon_lookups_total", map[string]string{"channel": "sim", "outcome": "PENDING"}, 1},
			{"recon_lookups_total", map[string]string{"channel": "sim", "outcome": "PAID"}, 1},
		} {
			if got, ok := series(fams, c.name, c.labels); !ok || got != c.want {
				t.Errorf("%s%v = %v (exposed %v), want %v", c.name, c.labels, got, ok, c.want)
			}
		}

		mf, _, err := jobs.ReportQuery{Kind: "statement_conflict"}.Filter(time.UTC, nil)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Store.ListMismatches(ctx, mf)
		if err != nil || len(rows) != 1 || rows[0].OrderNo != "C-UNPAID" {
			t.Fatalf("rows of kind=statement_conflict: %+v %v", rows, err)
		}
		r := jobs.Report{Rows: rows, GeneratedAt: e.now}
		if tot := r.Totals(); len(tot.ByKind) != 1 || tot.ByKind[0].Kind != recon.MismatchStatementConflict || tot.ByKind[0].Count != 1 {
			t.Errorf("totals %+v", tot.ByKind)
		}
		var b strings.Builder
		if err := r.WriteCSV(&b); err != nil || !strings.Contains(b.String(), "STATEMENT_CONFLICT") || !strings.Contains(b.String(), "C-UNPAID") {
			t.Errorf("CSV %q %v", b.String(), err)
		}
	})
}

// waitsForSettlement is a channel whose second lookup answers only once the
// order of the first is PAID in the database: a reconciliation that commits
// its settlements only after its lookups never gets that answer.
type waitsForSettlement struct {
	inner channel.Lookup
	s     *repo.Store
	mu    sync.Mutex
	first string
}

func (w *waitsForSettlement) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	w.mu.Lock()
	first := w.first
	if first == "" {
		w.first = o.OrderNo
	}
	w.mu.Unlock()
	if first != "" {
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
			if got, err := w.s.GetOrderByNo(ctx, first); err == nil && got.Status == recon.StatusPaid {
				break
			}
			if time.Now().After(deadline) {
				return recon.LookupResult{}, channel.Permanent(errors.New("the first settlement was not committed while the lookups went on"))
			}
		}
	}
	return w.inner.Lookup(ctx, o)
}

// Settlements commit while the next lines are looked up: a rate-limited
// channel's lookups, not the database, bound the reconciliation.
func TestStatementSettlementsCommitWhileLookupsGoOn(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newLookupEnv(t, db, map[string]*simulator.Behaviour{
			"W-1": {Status: recon.ChannelPaid},
			"W-2": {Status: recon.ChannelPaid},
		}, nil, nil)
		e.ch.Lookup = &waitsForSettlement{inner: e.ch.Lookup, s: db.Store}
		e.jobs.PageSize, e.jobs.CommitBatch = 1, 1
		res, err := e.jobs.Reconcile(context.Background(), e.ch, lookupDay, false)
		if err != nil || res.Settled != 2 || res.LookupsFailed != 0 {
			t.Fatalf("settled %d, lookups failed %d: %v", res.Settled, res.LookupsFailed, err)
		}
	})
}
