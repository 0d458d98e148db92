package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

var nt0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const merchantSecret = "whsec-test-1"

// merchant is a loopback merchant server that verifies what it receives as
// a merchant would, and records it.
type merchant struct {
	t      testing.TB
	srv    *httptest.Server
	clock  recon.Clock
	secret string

	// respond decides the answer to the n-th post (from 1) of id; nil: 200.
	respond func(w http.ResponseWriter, r *http.Request, id string, n int)

	mu       sync.Mutex
	posts    map[string]int
	inflight map[string]bool
	overlaps []string
	problems []string
	bodies   map[string]string
	total    atomic.Int64
}

func newMerchant(t testing.TB, clock recon.Clock) *merchant {
	m := &merchant{t: t, clock: clock, secret: merchantSecret, posts: map[string]int{},
		inflight: map[string]bool{}, bodies: map[string]string{}}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *merchant) url() string { return m.srv.URL + "/notify" }

func (m *merchant) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	id := r.Header.Get(recon.IdempotencyHeader)
	var note recon.Notification
	problem := ""
	switch {
	case r.Method != http.MethodPost:
		problem = "method " + r.Method
	case r.Header.Get("Content-Type") != "application/json":
		problem = "content type " + r.Header.Get("Content-Type")
	case recon.VerifySignature(m.secret, r.Header.Get(recon.SignatureHeader), body, m.clock.Now(), 5*time.Minute) != nil:
		problem = "bad signature on " + id
	case json.Unmarshal(body, &note) != nil || note.ID != id:
		problem = "body id does not match Idempotency-Key " + id
	}
	m.mu.Lock()
	if problem != "" {
		m.problems = append(m.problems, problem)
		m.mu.Unlock()
		http.Error(w, problem, http.StatusUnauthorized)
		return
	}
	if m.inflight[id] {
		m.overlaps = append(m.overlaps, id)
	}
	m.inflight[id] = true
	m.posts[id]++
	n := m.posts[id]
	m.bodies[id] = string(body)
	m.mu.Unlock()
	m.total.Add(1)
	defer func() {
		m.mu.Lock()
		delete(m.inflight, id)
		m.mu.Unlock()
	}()
	if m.respond != nil {
		m.respond(w, r, id, n)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"ok":true}`)
}

func (m *merchant) count(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.posts[id]
}

func (m *merchant) check() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.problems) > 0 {
		m.t.Fatalf("merchant saw bad requests: %v", m.problems)
	}
	if len(m.overlaps) > 0 {
		m.t.Fatalf("notifications posted twice at the same moment: %v", m.overlaps)
	}
}

// notifyEnv is one notify test's database, clock and merchant.
type notifyEnv struct {
	t     testing.TB
	db    repotest.DB
	clock *recon.FakeClock
}

func newNotifyEnv(t testing.TB, db repotest.DB) *notifyEnv {
	return &notifyEnv{t: t, db: db, clock: recon.NewFakeClock(nt0)}
}

func (e *notifyEnv) addMerchant(id, url, secret string) {
	e.t.Helper()
	if err := e.db.Store.UpsertMerchant(context.Background(),
		repo.Merchant{ID: id, Name: id, NotifyURL: url, NotifySecret: secret}, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
}

// seed inserts n PAID orders of merchant with their order.paid outbox rows,
// due now, and returns the notification ids.
func (e *notifyEnv) seed(merchantID string, n int) []string {
	e.t.Helper()
	ctx := context.Background()
	now := e.clock.Now()
	orders := make([]recon.Order, n)
	for i := range orders {
		o := repotest.Order(fmt.Sprintf("%s-%d-%d", merchantID, now.UnixNano(), i), now)
		o.MerchantID, o.Status = merchantID, recon.StatusPaid
		orders[i] = o
	}
	if err := e.db.Store.InsertOrders(ctx, orders); err != nil {
		e.t.Fatal(err)
	}
	ids := make([]string, n)
	for i, o := range orders {
		note := recon.NewNotification(o, recon.StatusPaid, "T"+o.OrderNo, &now, now)
		if _, err := e.db.Store.EnqueueNotification(ctx, o.ID, note, now); err != nil {
			e.t.Fatal(err)
		}
		ids[i] = note.ID
	}
	return ids
}

func (e *notifyEnv) dispatcher(store *repo.Store, owner string) *jobs.Dispatcher {
	return &jobs.Dispatcher{
		Store: store, Clock: e.clock, Owner: owner,
		Logger: slog.New(slog.NewTextHandler(tWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// A timeout no answer of a merchant server on loopback reaches,
		// however slow the machine; tests of timeouts set their own.
		Concurrency: 8, BatchSize: 50, Timeout: 20 * time.Second, Lease: time.Minute,
		RetrySchedule: []time.Duration{15 * time.Second, 30 * time.Second},
		// The merchant servers of these tests listen on loopback.
		AllowPrivateNetworks: true,
	}
}

func (e *notifyEnv) run(d *jobs.Dispatcher) jobs.NotifyResult {
	e.t.Helper()
	res, err := d.Run(context.Background())
	if err != nil {
		e.t.Fatalf("notify pass: %v", err)
	}
	return res
}

func (e *notifyEnv) get(id string) repo.Notification {
	e.t.Helper()
	n, err := e.db.Store.GetNotification(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestNotifySignedBodyIsTheStoredPayload(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		m := newMerchant(t, e.clock)
		e.addMerchant("m1", m.url(), merchantSecret)
		// Enqueued the way a reconcile pass does: a committed transition.
		o := repotest.Order("sig-1", nt0)
		repotest.Seed(t, db.Store, &o)
		paidAt := nt0.Add(-time.Minute)
		out := recon.Outcome{Action: recon.ActionTransition, Order: o, To: recon.StatusPaid, Event: recon.EventPaid,
			Lookup: &recon.LookupResult{Status: recon.ChannelPaid, Amount: o.Amount, Currency: o.Currency, TxnID: "T1", PaidAt: &paidAt}}
		if _, err := db.Store.Commit(context.Background(), out, repo.CommitMeta{Source: "test", Now: nt0}); err != nil {
			t.Fatal(err)
		}
		id := recon.NotificationID("sig-1", recon.EventPaid)
		stored := e.get(id)

		res := e.run(e.dispatcher(db.Store, "d1"))
		m.check()
		if res.Delivered != 1 || res.Claimed != 1 || m.count(id) != 1 {
			t.Fatalf("result %+v, posts %d", res, m.count(id))
		}
		if m.bodies[id] != stored.Payload {
			t.Fatalf("posted body\n%s\nwant the stored payload\n%s", m.bodies[id], stored.Payload)
		}
		got := e.get(id)
		if got.Status != repo.NotifyDelivered || got.Attempts != 1 || got.DeliveredAt == nil || !got.DeliveredAt.Equal(nt0) ||
			got.LockedBy != "" || got.LockedUntil != nil {
			t.Fatalf("row after delivery: %+v", got)
		}
		run, err := db.Store.GetRun(context.Background(), res.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if run.Kind != jobs.KindNotify || run.Status != repo.RunSucceeded || run.Delivered != 1 || run.FinishedAt == nil {
			t.Fatalf("run row: %+v", run)
		}

		// A merchant checking a tampered body rejects it.
		sig := recon.SignPayload(merchantSecret, nt0, []byte(stored.Payload))
		tampered := strings.Replace(stored.Payload, `"amount":1000`, `"amount":1`, 1)
		if tampered == stored.Payload {
			t.Fatal("tamper did not change the body")
		}
		if err := recon.VerifySignature(merchantSecret, sig, []byte(tampered), nt0, time.Minute); err == nil {
			t.Fatal("tampered body verified")
		}
	})
}

func TestNotifyFailsTwiceThenDelivers(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		m := newMerchant(t, e.clock)
		m.respond = func(w http.ResponseWriter, _ *http.Request, _ string, n int) {
			if n <= 2 {
				http.Error(w, "try later", http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
		e.addMerchant("m1", m.url(), merchantSecret)
		id := e.seed("m1", 1)[0]
		d := e.dispatcher(db.Store, "d1")

		if r := e.run(d); r.Retried != 1 || r.Delivered != 0 {
			t.Fatalf("pass 1: %+v", r)
		}
		row := e.get(id)
		if row.Status != repo.NotifyPending || row.Attempts != 1 || !row.NextAttemptAt.Equal(nt0.Add(15*time.Second)) ||
			!strings.Contains(row.LastError, "HTTP 503") || !strings.Contains(row.LastError, "try later") {
			t.Fatalf("after pass 1: %+v", row)
		}
		if r := e.run(d); r.Claimed != 0 {
			t.Fatalf("a row not yet due was claimed: %+v", r)
		}
		e.clock.Advance(15 * time.Second)
		if r := e.run(d); r.Retried != 1 {
			t.Fatalf("pass 2: %+v", r)
		}
		if row := e.get(id); row.Attempts != 2 || !row.NextAttemptAt.Equal(e.clock.Now().Add(30*time.Second)) {
			t.Fatalf("after pass 2: %+v", row)
		}
		e.clock.Advance(30 * time.Second)
		if r := e.run(d); r.Delivered != 1 {
			t.Fatalf("pass 3: %+v", r)
		}
		m.check()
		row = e.get(id)
		if m.count(id) != 3 || row.Status != repo.NotifyDelivered || row.Attempts != 3 || row.LastError != "" {
			t.Fatalf("posts %d, row %+v", m.count(id), row)
		}
	})
}

func TestNotifyAlwaysFailingEndsDeadAndResendRevives(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		m := newMerchant(t, e.clock)
		var down atomic.Bool
		down.Store(true)
		m.respond = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
			if down.Load() {
				http.Error(w, "boom", http.StatusInternalServerError)
			}
		}
		e.addMerchant("m1", m.url(), merchantSecret)
		e.addMerchant("m2", m.url(), merchantSecret)
		ids := e.seed("m1", 2)
		other := e.seed("m2", 1)[0]
		d := e.dispatcher(db.Store, "d1")
		var total jobs.NotifyResult
		for i := 0; i < 5; i++ {
			r := e.run(d)
			total.Retried += r.Retried
			total.Dead += r.Dead
			e.clock.Advance(time.Minute)
		}
		if total.Retried != 6 || total.Dead != 3 {
			t.Fatalf("retried %d dead %d, want 6 and 3", total.Retried, total.Dead)
		}
		for _, id := range append(ids, other) {
			row := e.get(id)
			if row.Status != repo.NotifyDead || row.Attempts != 3 || m.count(id) != 3 || !strings.Contains(row.LastError, "HTTP 500") {
				t.Fatalf("row %+v after %d posts", row, m.count(id))
			}
		}

		// The merchant is back: the operator resends one row, then the dead
		// rows of merchant m2 in a window.
		down.Store(false)
		if err := db.Store.Resend(context.Background(), ids[0], e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		row := e.get(ids[0])
		if row.Status != repo.NotifyPending || row.Attempts != 0 || !strings.HasPrefix(row.LastError, "resent by operator (was DEAD after 3 attempts): HTTP 500") {
			t.Fatalf("resent row: %+v", row)
		}
		n, err := db.Store.ResendDead(context.Background(), "m2", nt0.Add(-time.Hour), nt0.Add(time.Hour), e.clock.Now())
		if err != nil || n != 1 {
			t.Fatalf("resend dead of m2: %d, %v", n, err)
		}
		if n, _ := db.Store.ResendDead(context.Background(), "m2", nt0.Add(time.Hour), nt0.Add(2*time.Hour), e.clock.Now()); n != 0 {
			t.Fatalf("window outside the rows resent %d", n)
		}
		if err := db.Store.Resend(context.Background(), "ntf_nope", e.clock.Now()); err == nil {
			t.Fatal("resend of an unknown id succeeded")
		}
		if r := e.run(d); r.Delivered != 2 {
			t.Fatalf("after resend: %+v", r)
		}
		if row := e.get(ids[1]); row.Status != repo.NotifyDead {
			t.Fatalf("a row not resent moved: %+v", row)
		}
		if row := e.get(ids[0]); row.Status != repo.NotifyDelivered || row.Attempts != 1 {
			t.Fatalf("resent row after delivery: %+v", row)
		}
		m.check()
	})
}

func TestNotifyTimeoutRefusedSlowBodyAreRetriedNotHangs(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		// No answer until the client gives up.
		hang := newMerchant(t, e.clock)
		hang.respond = func(_ http.ResponseWriter, r *http.Request, _ string, _ int) { <-r.Context().Done() }
		// Headers at once, then a body that never ends.
		slow := newMerchant(t, e.clock)
		slow.respond = func(w http.ResponseWriter, r *http.Request, _ string, _ int) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"ok":`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
		// A port nobody listens on.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		refused := "http://" + ln.Addr().String() + "/notify"
		_ = ln.Close()
		// A redirect to another host, which must not be followed.
		elsewhere := newMerchant(t, e.clock)
		redirect := newMerchant(t, e.clock)
		redirect.respond = func(w http.ResponseWriter, r *http.Request, _ string, _ int) {
			http.Redirect(w, r, elsewhere.url(), http.StatusTemporaryRedirect)
		}
		// A huge answer is read only up to the limit.
		huge := newMerchant(t, e.clock)
		huge.respond = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
		}
		// An answer that would drive a terminal is stored without its escapes.
		escapes := newMerchant(t, e.clock)
		escapes.respond = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "\x1b[2J\x1b[HALL OK")
		}
		e.addMerchant("escapes", escapes.url(), merchantSecret)
		e.addMerchant("hang", hang.url(), merchantSecret)
		e.addMerchant("slow", slow.url(), merchantSecret)
		e.addMerchant("refused", refused, merchantSecret)
		e.addMerchant("redirect", redirect.url(), merchantSecret)
		e.addMerchant("huge", huge.url(), merchantSecret)
		e.addMerchant("nourl", "", merchantSecret)
		e.addMerchant("badurl", "ftp://example.com/x?token=sekrit", merchantSecret)
		want := map[string]string{
			e.seed("hang", 1)[0]:     "timeout after",
			e.seed("slow", 1)[0]:     "timeout after",
			e.seed("refused", 1)[0]:  "connection refused",
			e.seed("redirect", 1)[0]: "redirect to another host",
			e.seed("huge", 1)[0]:     "HTTP 502: xxx",
			e.seed("escapes", 1)[0]:  "HTTP 500: ALL OK",
			e.seed("nourl", 1)[0]:    "no notify_url",
			e.seed("badurl", 1)[0]:   "scheme must be http or https",
			e.seed("unknown", 1)[0]:  `merchant "unknown" is not in the merchants table`,
		}
		d := e.dispatcher(db.Store, "d1")
		// What the hung and slow merchants wait for; the others answer
		// well within it.
		d.Timeout = 2 * time.Second
		done := make(chan jobs.NotifyResult)
		go func() {
			res, err := d.Run(context.Background())
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		var res jobs.NotifyResult
		select {
		case res = <-done:
		case <-time.After(2 * time.Minute): // generous: the slowest post gives up after 2s
			t.Fatal("notify pass hangs")
		}
		if res.Retried != int64(len(want)) || res.Errors != 3 || res.Delivered != 0 {
			t.Fatalf("result %+v", res)
		}
		for id, msg := range want {
			row := e.get(id)
			if row.Status != repo.NotifyPending || row.Attempts != 1 || !strings.Contains(row.LastError, msg) ||
				len(row.LastError) > 1024 || strings.Contains(row.LastError, "sekrit") || strings.Contains(row.LastError, merchantSecret) {
				t.Fatalf("%s: row %+v, want last_error containing %q", row.MerchantID, row, msg)
			}
		}
		if elsewhere.total.Load() != 0 {
			t.Fatal("redirect to another host was followed")
		}
	})
}

// Two dispatchers (on two nodes of a cluster) deliver the same outbox at
// once: every row is posted exactly once.
func TestNotifyRacingDispatchers(t *testing.T) {
	repotest.ForEachDBAndCluster(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		m := newMerchant(t, e.clock)
		e.addMerchant("m1", m.url(), merchantSecret)
		// 300 rows claimed 3 at a time: as many claims to collide as
		// 1000 rows 7 at a time, at a third of the posts (the test's
		// cost on a loaded machine under the race detector).
		const n = 300
		ids := e.seed("m1", n)
		db.Settle(t)
		d1 := e.dispatcher(db.Open(t), "d1")
		d2 := e.dispatcher(db.Open(t), "d2")
		d1.BatchSize, d2.BatchSize = 3, 3 // many small claims: many chances to collide
		var wg sync.WaitGroup
		results := make([]jobs.NotifyResult, 2)
		for i, d := range []*jobs.Dispatcher{d1, d2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := d.Run(context.Background())
				if err != nil {
					t.Error(err)
				}
				results[i] = res
			}()
		}
		wg.Wait()
		m.check()
		r1, r2 := results[0], results[1]
		t.Logf("d1 delivered %d, d2 delivered %d", r1.Delivered, r2.Delivered)
		if r1.Delivered+r2.Delivered != n || r1.Claimed+r2.Claimed != n || r1.LeaseLost+r2.LeaseLost != 0 {
			t.Fatalf("results %+v / %+v", r1, r2)
		}
		for _, id := range ids {
			if m.count(id) != 1 {
				t.Fatalf("%s posted %d times", id, m.count(id))
			}
		}
		counts, due, err := db.Store.OutboxCounts(context.Background(), e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if counts[repo.NotifyDelivered] != n || len(counts) != 1 || due != 0 {
			t.Fatalf("outbox %v, due %d", counts, due)
		}
		for _, id := range ids[:50] {
			if row := e.get(id); row.Attempts != 1 || row.LockedBy != "" {
				t.Fatalf("row %+v", row)
			}
		}
	})
}

func TestNotifyLeaseOfAKilledDispatcherExpires(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		m := newMerchant(t, e.clock)
		e.addMerchant("m1", m.url(), merchantSecret)
		id := e.seed("m1", 1)[0]
		ctx := context.Background()
		// A dispatcher claims the row and dies before posting it.
		claimed, err := db.Store.ClaimNotifications(ctx, repo.Claim{Owner: "dead-pod", DueBefore: e.clock.Now(),
			Now: e.clock.Now(), Lease: time.Minute, Limit: 10})
		if err != nil || len(claimed) != 1 || claimed[0].ID != id {
			t.Fatalf("claim: %v, %v", claimed, err)
		}
		d := e.dispatcher(db.Open(t), "live-pod")
		if r := e.run(d); r.Claimed != 0 {
			t.Fatalf("a leased row was claimed: %+v", r)
		}
		e.clock.Advance(time.Minute + time.Second)
		if r := e.run(d); r.Delivered != 1 {
			t.Fatalf("after the lease: %+v", r)
		}
		// The dead pod comes back: its guarded writes change nothing.
		for _, f := range []func() (bool, error){
			func() (bool, error) { return db.Store.MarkDelivered(ctx, id, "dead-pod", e.clock.Now()) },
			func() (bool, error) { return db.Store.MarkRetry(ctx, id, "dead-pod", 1, e.clock.Now(), "late") },
			func() (bool, error) { return db.Store.MarkDead(ctx, id, "dead-pod", 1, "late", e.clock.Now()) },
		} {
			if ok, err := f(); ok || err != nil {
				t.Fatalf("stale owner's write applied: %v, %v", ok, err)
			}
		}
		if row := e.get(id); row.Status != repo.NotifyDelivered || row.Attempts != 1 || m.count(id) != 1 {
			t.Fatalf("row %+v, posts %d", row, m.count(id))
		}
	})
}

func TestNotifyShutdownFinishesInFlightAndRecordsAbort(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		m := newMerchant(t, e.clock)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		m.respond = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
			cancel() // the signal arrives while the request is in flight
			w.WriteHeader(http.StatusOK)
		}
		e.addMerchant("m1", m.url(), merchantSecret)
		ids := e.seed("m1", 20)
		d := e.dispatcher(db.Store, "d1")
		d.Concurrency = 1
		res, err := d.Run(ctx)
		if err != jobs.ErrShutdown || res.Status != repo.RunAborted {
			t.Fatalf("run: %+v, %v", res, err)
		}
		if res.Delivered != 1 || res.Claimed != res.Delivered+res.Released {
			t.Fatalf("in-flight delivery not recorded or claimed rows not released: %+v", res)
		}
		for _, id := range ids {
			if row := e.get(id); row.LockedBy != "" {
				t.Fatalf("row left leased after shutdown: %+v", row)
			}
		}
		counts, _, err := db.Store.OutboxCounts(context.Background(), e.clock.Now())
		if err != nil || counts[repo.NotifyDelivered] != 1 || counts[repo.NotifyPending] != int64(len(ids)-1) {
			t.Fatalf("outbox after shutdown %v, %v", counts, err)
		}
		run, err := db.Store.GetRun(context.Background(), res.RunID)
		if err != nil || run.Status != repo.RunAborted || run.FinishedAt == nil {
			t.Fatalf("run row %+v, %v", run, err)
		}
	})
}

// A claimed row's lease defaults to twice the request timeout plus a margin
// (22s for a 10s timeout), so the rows of a dispatcher that died are posted
// by another soon after, not minutes later.
func TestNotifyRowLeaseDefaultsToTwiceTheTimeout(t *testing.T) {
	db := repotest.NewSQLite(t)
	e := newNotifyEnv(t, db)
	in, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	e.addMerchant("m1", srv.URL, merchantSecret)
	id := e.seed("m1", 1)[0]
	d := e.dispatcher(db.Store, "d1")
	d.Lease, d.Timeout = 0, 10*time.Second
	done := make(chan error, 1)
	go func() {
		_, err := d.Run(context.Background())
		done <- err
	}()
	select {
	case <-in:
	case err := <-done:
		t.Fatalf("the pass ended without posting: %v", err)
	}
	row := e.get(id) // while it is being posted
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if row.LockedUntil == nil || row.LockedUntil.Sub(e.clock.Now()) != 22*time.Second {
		t.Fatalf("row leased until %v, %s from now; want 22s", row.LockedUntil, row.LockedUntil.Sub(e.clock.Now()))
	}
}
