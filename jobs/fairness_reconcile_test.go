package jobs_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// fairnessOrders is how many due orders each channel gets in the dead
// channel test: RECON_TEST_FAIRNESS_ORDERS, 200 by default (1000 for the
// figures in the README).
func fairnessOrders(t testing.TB) int {
	if v := os.Getenv("RECON_TEST_FAIRNESS_ORDERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("RECON_TEST_FAIRNESS_ORDERS=%q", v)
		}
		return n
	}
	return 200
}

// countingServer serves h and counts the requests and the answers; once
// releaseAt answers are given (when set) it runs onRelease and closes
// released.
type countingServer struct {
	srv       *httptest.Server
	requests  atomic.Int64
	answered  atomic.Int64
	releaseAt atomic.Int64
	onRelease func()
	released  chan struct{}
	once      sync.Once
}

func newCountingServer(t testing.TB, h http.Handler) *countingServer {
	c := &countingServer{released: make(chan struct{})}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		h.ServeHTTP(w, r)
		if n, at := c.answered.Add(1), c.releaseAt.Load(); at > 0 && n >= at {
			c.once.Do(func() {
				if c.onRelease != nil {
					c.onRelease()
				}
				close(c.released)
			})
		}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// twoChannels is a reconciler over two httpjson channels: "ok" served by
// the simulator (5 ms a lookup), "dead" answering 503 to everything, but
// only once ok has given all the answers the test waits for.
type twoChannels struct {
	t        testing.TB
	db       repotest.DB
	clock    *recon.FakeClock
	orders   *simulator.Orders
	ok, dead *countingServer
	// deadAnsweredBeforeOK is how many answers the dead channel had given
	// when the healthy one gave its last awaited answer.
	deadAnsweredBeforeOK atomic.Int64
	seq                  int
}

func newTwoChannels(t testing.TB, db repotest.DB) *twoChannels {
	e := &twoChannels{t: t, db: db, clock: recon.NewFakeClock(t0), orders: simulator.NewOrders()}
	sim := simulator.New(simulator.Config{Seed: 1, Secret: "s3cret", PaidRate: 0.5, Latency: 5 * time.Millisecond})
	e.ok = newCountingServer(t, sim.Handler(e.orders))
	e.dead = newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-e.ok.released:
		case <-r.Context().Done():
		}
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
	}))
	e.ok.onRelease = func() { e.deadAnsweredBeforeOK.Store(e.dead.answered.Load()) }
	return e
}

// seed inserts n due orders of each named channel, alternating channels so
// that a scan meets them interleaved.
func (e *twoChannels) seed(n int, channels ...string) {
	e.t.Helper()
	var orders []recon.Order
	for i := 0; i < n; i++ {
		for _, ch := range channels {
			e.seq++
			o := repotest.Order(fmt.Sprintf("fair-%s-%d", ch, e.seq), t0.Add(-10*time.Minute))
			o.Channel = ch
			orders = append(orders, o)
		}
	}
	if err := e.db.Store.InsertOrders(context.Background(), orders); err != nil {
		e.t.Fatal(err)
	}
	e.orders.Add(orders...)
}

func (e *twoChannels) reconciler() *jobs.Reconciler {
	e.t.Helper()
	retry := channel.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaxInterval: 5 * time.Second, MaxElapsed: 5 * time.Second}
	chans := map[string]jobs.Channel{}
	for name, srv := range map[string]*countingServer{"ok": e.ok, "dead": e.dead} {
		// A timeout no lookup reaches: the dead channel's requests wait
		// for the healthy channel, however slow the machine.
		c, err := httpjson.New(httpjson.Config{Name: name, BaseURL: srv.srv.URL, Secret: "s3cret", Timeout: 5 * time.Minute})
		if err != nil {
			e.t.Fatal(err)
		}
		chans[name] = channel.NewGuarded(name, c, 0, retry)
	}
	breaker := recon.BreakerPolicy{Failures: 10, ProbeInterval: 5 * time.Second}
	return &jobs.Reconciler{
		Store: e.db.Store, Channels: chans, Clock: e.clock,
		Logger: slog.New(slog.NewTextHandler(tWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Policy: policy, GracePeriod: time.Minute, BatchSize: 500, Concurrency: 8,
		ChannelPolicies: map[string]jobs.ChannelPolicy{"ok": {Breaker: breaker}, "dead": {Breaker: breaker}},
		ShutdownGrace:   time.Second, Heartbeat: time.Minute, Owner: "test",
	}
}

// TestDeadChannelDoesNotStallTheOthers: two httpjson channels with due
// orders, one answering 503 to everything, concurrency 8, lookup retries up
// to 5s. The dead channel holds back every answer until the healthy channel
// has answered all its lookups: the healthy channel needs nothing from the
// dead one to settle. Then the dead channel is paused by its breaker after
// a bounded number of requests, and its orders are deferred: no error, no
// mismatch, schedule untouched.
func TestDeadChannelDoesNotStallTheOthers(t *testing.T) {
	n := fairnessOrders(t)
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newTwoChannels(t, db)
		e.seed(n, "ok", "dead")
		e.ok.releaseAt.Store(int64(n))
		res, err := e.reconciler().Run(context.Background(), jobs.Window{})
		if err != nil {
			t.Fatalf("pass: %v; result %+v", err, res)
		}
		dead := e.dead.requests.Load()
		t.Logf("%d orders a channel on %s: dead channel requests %d; result %+v", n, db.Dialect, dead, res)
		if res.Status != repo.RunSucceeded {
			t.Fatalf("pass status %s: %s", res.Status, res.Error)
		}
		select {
		case <-e.ok.released:
		default:
			t.Fatalf("the healthy channel answered %d lookups, want %d", e.ok.answered.Load(), n)
		}
		if n := e.deadAnsweredBeforeOK.Load(); n != 0 {
			t.Fatalf("the dead channel had answered %d requests before the healthy channel was done; want none", n)
		}
		if dead > 100 {
			t.Fatalf("the dead channel received %d requests for %d orders; want a bounded number (≤ 100)", dead, n)
		}
		if res.Paid+res.Rescheduled != int64(n) || res.Errors > 10 || res.Mismatches != 0 ||
			res.Deferred < int64(n)-10 || res.Scanned != int64(2*n) {
			t.Fatalf("result %+v: want the %d healthy orders settled and the dead channel's deferred", res, n)
		}
		run, err := db.Store.GetRun(context.Background(), res.RunID)
		if err != nil || run.Deferred != res.Deferred {
			t.Fatalf("run row %+v, %v", run, err)
		}
		// Deferred orders are left as they were: still due, never queried.
		due, _, err := db.Store.CountDue(context.Background(), e.clock.Now(), e.clock.Now().Add(-time.Minute))
		if err != nil || due != res.Deferred {
			t.Fatalf("due after the pass %d, %v; want the %d deferred", due, err, res.Deferred)
		}
	})
}

// flaky fails every lookup with a transient error while down.
type flaky struct {
	inner channel.Lookup
	down  atomic.Bool
	calls atomic.Int64
}

func (f *flaky) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return recon.LookupResult{}, channel.Transient(fmt.Errorf("lookup %s: HTTP 503", o.OrderNo))
	}
	return f.inner.Lookup(ctx, o)
}

// pauseWatcher is an observer that records the breaker's changes and runs
// a hook on each, and on each deferral.
type pauseWatcher struct {
	mu         sync.Mutex
	changes    []bool
	deferred   int
	onChange   func(paused bool)
	onDeferred func()
}

func (w *pauseWatcher) ChannelPaused(_ string, paused bool) {
	w.mu.Lock()
	w.changes = append(w.changes, paused)
	w.mu.Unlock()
	if w.onChange != nil {
		w.onChange(paused)
	}
}
func (w *pauseWatcher) Deferred(string) {
	w.mu.Lock()
	w.deferred++
	w.mu.Unlock()
	if w.onDeferred != nil {
		w.onDeferred()
	}
}
func (w *pauseWatcher) Lookup(string, string, time.Duration)                 {}
func (w *pauseWatcher) Transition(recon.Status)                              {}
func (w *pauseWatcher) Mismatch(recon.MismatchKind)                          {}
func (w *pauseWatcher) Conflict()                                            {}
func (w *pauseWatcher) RunFinished(string, string, time.Duration, time.Time) {}
func (w *pauseWatcher) Processed(time.Duration)                              {}

// TestPausedChannelIsProbedAndResumedInTheSamePass: a channel that fails
// is paused after 10 failures in a row; once it answers again, the probe
// due 5s (on the pass's clock) after the pause resumes it, and the rest of
// its orders are looked up in the same pass.
func TestPausedChannelIsProbedAndResumedInTheSamePass(t *testing.T) {
	for _, concurrency := range []int{1, 2} {
		t.Run(fmt.Sprint("concurrency ", concurrency), func(t *testing.T) {
			repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
				pausedAndResumed(t, db, concurrency)
			})
		})
	}
}

// pausedAndResumed runs the pass of TestPausedChannelIsProbedAndResumedInTheSamePass
// with concurrency workers. The probe falls due as the pause is observed,
// before any worker acts on it, so the next lookup is the probe: only the
// orders in flight when the pause came (their retries cut short) are
// deferred before it. While the probe is in flight the other workers defer
// orders, as many as they get to before its answer (how fast they run, not
// what the pass does), so past a few deferrals they wait for the answer,
// and the rest of the orders are looked up after it.
func pausedAndResumed(t *testing.T, db repotest.DB, concurrency int) {
	{
		e := newEnv(t, db)
		const n = 100
		for i := 0; i < n; i++ {
			o := repotest.Order(fmt.Sprintf("probe%d-%d", concurrency, i), t0.Add(-10*time.Minute))
			e.seed(&o)
		}
		resumed := make(chan struct{})
		ch := &flaky{inner: e.sim}
		ch.down.Store(true)
		w := &pauseWatcher{}
		w.onChange = func(paused bool) {
			switch {
			case paused:
				// The channel comes back, and the probe falls due.
				ch.down.Store(false)
				e.clock.Advance(5 * time.Second)
			case !ch.down.Load():
				close(resumed)
			}
		}
		// Past each worker's cut-short order and one denied while the
		// probe was granted, a deferral waits for the probe's answer.
		var deferrals atomic.Int64
		w.onDeferred = func() {
			if deferrals.Add(1) > int64(2*concurrency) {
				<-resumed
			}
		}
		r := e.reconciler(db.Store, ch)
		r.Concurrency = concurrency
		r.Observer = w
		r.ChannelPolicies = map[string]jobs.ChannelPolicy{"sim": {Breaker: recon.BreakerPolicy{Failures: 10, ProbeInterval: 5 * time.Second}}}
		res, err := r.Run(context.Background(), jobs.Window{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("result %+v; breaker changes %v; %d lookups", res, w.changes, ch.calls.Load())
		if fmt.Sprint(w.changes) != "[false true false]" {
			t.Fatalf("breaker changes %v, want reset at the start, paused, resumed", w.changes)
		}
		// One worker: the order whose retry the pause cut short. More: at
		// most those the deferrals above let through, and one more of each
		// worker but the probe's.
		maxDeferred := int64(1)
		if concurrency > 1 {
			maxDeferred = int64(3*concurrency - 1)
		}
		if w.deferred != int(res.Deferred) || res.Deferred > maxDeferred || res.Mismatches != 0 ||
			res.Scanned != n || res.Paid+res.Failed+res.Closed+res.Rescheduled+res.Errors+res.Deferred != n ||
			res.Rescheduled < int64(n)-maxDeferred || ch.calls.Load() <= 11 {
			t.Fatalf("result %+v: want the orders looked up after the channel resumed (at most %d deferred)", res, maxDeferred)
		}
	}
}

// slowLookup answers lookups, counting them per order. A slow one holds
// every lookup until after is closed; doneAt answers close done.
type slowLookup struct {
	inner channel.Lookup
	after <-chan struct{} // nil: answer at once
	// doneAt, when above zero, is the number of answers that closes done.
	doneAt int
	done   chan struct{}

	mu       sync.Mutex
	calls    map[string]int
	answered int
	early    int // answers given because after stayed open for a minute
}

func (s *slowLookup) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	if s.after != nil {
		select {
		case <-s.after:
		case <-ctx.Done():
			return recon.LookupResult{}, ctx.Err()
		case <-time.After(time.Minute): // only when the scan waits for this channel
			s.mu.Lock()
			s.early++
			s.mu.Unlock()
		}
	}
	res, err := s.inner.Lookup(ctx, o)
	s.mu.Lock()
	s.calls[o.OrderNo]++
	if s.answered++; s.answered == s.doneAt {
		close(s.done)
	}
	s.mu.Unlock()
	return res, err
}

// TestSlowChannelDoesNotHoldUpTheScan: a channel that does not answer
// fills its queue; the scan then leaves its orders to a scan of its own and
// goes on feeding the fast channel: the slow channel answers nothing until
// the fast one has answered all its lookups.
// Every order is looked up exactly once, in a due pass, a backfill, a dry
// run, and within a pass's limit.
func TestSlowChannelDoesNotHoldUpTheScan(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newEnv(t, db)
		const n = 40 // four times what a slow channel's queue and workers hold
		// Each case has its own orders, created a second apart: the due
		// pass comes first, the others are backfills of their own second.
		cases := []struct {
			name  string
			w     jobs.Window
			limit int
		}{
			{name: "due pass"},
			{name: "backfill", w: jobs.Window{Backfill: true}},
			{name: "limit", w: jobs.Window{Backfill: true, Limit: 50}, limit: 50},
			{name: "dry run", w: jobs.Window{Backfill: true, DryRun: true}},
		}
		for i, c := range cases {
			created := t0.Add(-10*time.Minute + time.Duration(i)*time.Second)
			for j := 0; j < n; j++ {
				for _, ch := range []string{"slow", "fast"} {
					o := repotest.Order(fmt.Sprintf("hol%d-%s-%03d", i, ch, j), created)
					o.Channel = ch
					e.seed(&o)
				}
			}
			w := c.w
			if w.Backfill {
				w.From = created.Add(-time.Hour) // repotest.Order is created an hour before its time
				w.To = w.From.Add(time.Second)
			}
			fast := &slowLookup{inner: e.sim, calls: map[string]int{}, done: make(chan struct{})}
			slow := &slowLookup{inner: e.sim, calls: map[string]int{}}
			if c.limit == 0 {
				// Which orders a limited pass takes is the scan's order;
				// the others take every order of both channels.
				fast.doneAt, slow.after = n, fast.done
			}
			r := e.reconciler(db.Store, nil)
			retry := channel.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxElapsed: 200 * time.Millisecond}
			r.Channels = map[string]jobs.Channel{"slow": channel.NewGuarded("slow", slow, 0, retry), "fast": channel.NewGuarded("fast", fast, 0, retry)}
			r.Concurrency, r.BatchSize = 4, 10 // two workers and a queue of 10 a channel; pages of 10
			res, err := r.Run(context.Background(), w)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			want := 2 * n
			if c.limit > 0 {
				want = c.limit
			}
			if res.Scanned != int64(want) || res.Rescheduled != int64(want) || res.Conflicts != 0 || res.Errors != 0 {
				t.Fatalf("%s: result %+v: want %d orders looked up once and rescheduled", c.name, res, want)
			}
			seen := 0
			for _, l := range []*slowLookup{slow, fast} {
				for no, calls := range l.calls {
					if calls != 1 || !strings.HasPrefix(no, fmt.Sprintf("hol%d-", i)) {
						t.Fatalf("%s: %s looked up %d times", c.name, no, calls)
					}
					seen++
				}
			}
			if seen != want {
				t.Fatalf("%s: %d orders looked up, want %d", c.name, seen, want)
			}
			// Fed in step with the slow channel, the fast one would wait for
			// answers the slow one gives only after it.
			if slow.early != 0 {
				t.Fatalf("%s: the fast channel was not fed while the slow one held its lookups", c.name)
			}
		}
	})
}
