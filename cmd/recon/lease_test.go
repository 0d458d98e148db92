package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// opsEnv is a database with due orders and a config for recon child
// processes that reconcile them against a slow simulator.
type opsEnv struct {
	t   *testing.T
	db  repotest.DB
	cfg string
	env []string
}

// opsConfig is the config of the process tests: a simulator channel with
// latency, so that a pass lasts long enough to be overlapped, signalled or
// killed. extra is YAML appended at the top level.
func newOpsEnv(t *testing.T, db repotest.DB, orders int, reconcile, extra string) *opsEnv {
	t.Helper()
	cfg := writeConfig(t, "reconcile: {"+reconcile+"}\n"+
		"log: {level: debug, format: json}\n"+
		"channels:\n  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 0.5, latency: 50ms}}\n"+extra)
	e := &opsEnv{t: t, db: db, cfg: cfg,
		env: []string{"RECON_DATABASE_DRIVER=" + string(db.Dialect), "RECON_DATABASE_DSN=" + db.DSN}}
	now := time.Now().UTC()
	seed := make([]*recon.Order, orders)
	for i := range seed {
		o := repotest.Order(fmt.Sprintf("ops-%04d", i), now)
		seed[i] = &o
	}
	repotest.Seed(t, db.Store, seed...)
	return e
}

func (e *opsEnv) start(args ...string) *proc {
	e.t.Helper()
	return startRecon(e.t, e.env, append(args, "--config", e.cfg)...)
}

// finish waits for p and returns its exit code, logging its output.
func (e *opsEnv) finish(name string, p *proc) int {
	e.t.Helper()
	code := p.wait()
	e.t.Logf("%s exited %d\nstdout: %s\nstderr: %s", name, code, p.stdout.String(), lastLines(p.stderr.String(), 12))
	return code
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// passSummary decodes the --output json line of a finished pass.
func passSummary(t *testing.T, p *proc) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(p.stdout.Bytes(), &m); err != nil {
		t.Fatalf("summary %q: %v", p.stdout.String(), err)
	}
	return m
}

// pollUntil calls cond until it reports true, failing the test after limit.
func pollUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count runs a COUNT(*) query.
func (e *opsEnv) count(query string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Store.DB().Raw(query, args...).Scan(&n).Error; err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// checkEveryOrderWholeAndOnce checks that no order is half committed or
// processed twice: a terminal order has exactly one transition and one
// outbox row, a PENDING one none; every order was looked up at most once
// (exactly once when all is true).
func (e *opsEnv) checkEveryOrderWholeAndOnce(all bool) {
	e.t.Helper()
	type row struct {
		ID            int64
		Status        string
		QueryAttempts int
		Transitions   int
		Outbox        int
	}
	var rows []row
	err := e.db.Store.DB().Raw(`SELECT o.id, o.status, o.query_attempts,
		(SELECT COUNT(*) FROM order_transitions t WHERE t.order_id = o.id) AS transitions,
		(SELECT COUNT(*) FROM merchant_notifications n WHERE n.order_id = o.id) AS outbox
		FROM payment_orders o ORDER BY o.id`).Scan(&rows).Error
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range rows {
		terminal := r.Status != string(recon.StatusPending)
		switch {
		case terminal && (r.Transitions != 1 || r.Outbox != 1):
			e.t.Errorf("order %d %s has %d transitions and %d outbox rows, want 1 and 1", r.ID, r.Status, r.Transitions, r.Outbox)
		case !terminal && (r.Transitions != 0 || r.Outbox != 0):
			e.t.Errorf("PENDING order %d has %d transitions and %d outbox rows", r.ID, r.Transitions, r.Outbox)
		case r.QueryAttempts > 1 || (all && r.QueryAttempts != 1):
			e.t.Errorf("order %d was looked up %d times", r.ID, r.QueryAttempts)
		}
	}
}

// holder returns the owner of lease name, or "" when nobody holds it.
func (e *opsEnv) holder(name string) (repo.Lease, bool) {
	e.t.Helper()
	l, err := e.db.Store.GetLease(context.Background(), name)
	if errors.Is(err, recon.ErrNotFound) {
		return repo.Lease{}, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return l, true
}

func TestTwoRunsStartedTogetherOneWorksOneSkips(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		// 80 orders, 2 at a time, 50ms each: the pass lasts about 2s, far
		// longer than starting a process.
		e := newOpsEnv(t, db, 80, "concurrency: 2, lease_ttl: 30s", "")
		a := e.start("run", "--output", "json")
		b := e.start("run", "--output", "json")
		codeA, codeB := e.finish("a", a), e.finish("b", b)
		if codeA != 0 || codeB != 0 {
			t.Fatalf("exit codes %d and %d, want 0 and 0", codeA, codeB)
		}
		worked, skipped := a, b
		if passSummary(t, a)["status"] == "SKIPPED" {
			worked, skipped = b, a
		}
		w, s := passSummary(t, worked), passSummary(t, skipped)
		if w["status"] != repo.RunSucceeded || w["scanned"] != 80.0 {
			t.Fatalf("working run = %v", w)
		}
		if s["status"] != "SKIPPED" || s["lease"] != "reconcile" || s["run_id"] != 0.0 || s["scanned"] != 0.0 {
			t.Fatalf("skipped run = %v", s)
		}
		holder := fmt.Sprintf("/%d", worked.cmd.Process.Pid)
		if h, _ := s["lease_holder"].(string); !strings.HasSuffix(h, holder) {
			t.Fatalf("skipped run names holder %v, want the working process (…%s)", s["lease_holder"], holder)
		}
		log := skipped.stderr.String()
		if !strings.Contains(log, "lease held by another process; skipping this pass") ||
			!strings.Contains(log, `"holder":"`) || !strings.Contains(log, `"expires_at":"`) {
			t.Fatalf("skipping run logged:\n%s", log)
		}
		if n := e.count("SELECT COUNT(*) FROM recon_runs"); n != 1 {
			t.Fatalf("%d run rows, want 1", n)
		}
		if _, held := e.holder("reconcile"); held {
			t.Fatal("lease not released after the pass")
		}
		e.checkEveryOrderWholeAndOnce(true)
	})
}

func TestKilledHolderBlocksNoLongerThanTheLeaseTTL(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		// One order at a time, 50ms each: the pass would take 10s; it is
		// killed well before.
		e := newOpsEnv(t, db, 200, "concurrency: 1, lease_ttl: 2s, heartbeat: 300ms", "")
		holder := e.start("run")
		pid := holder.cmd.Process.Pid
		var lease repo.Lease
		pollUntil(t, 2*time.Minute, "the first run to take the lease and commit an order", func() bool {
			var ok bool
			lease, ok = e.holder("reconcile")
			return ok && strings.HasSuffix(lease.Owner, fmt.Sprintf("/%d", pid)) &&
				e.count("SELECT COUNT(*) FROM payment_orders WHERE query_attempts > 0") > 0
		})
		if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		e.finish("killed holder", holder)
		lease, _ = e.holder("reconcile") // the last renewal's expiry

		// While the dead holder's lease lasts, a run skips.
		startedAt := time.Now()
		early := e.start("run", "--output", "json")
		if code := e.finish("early run", early); code != 0 {
			t.Fatalf("run during the dead holder's lease exited %d", code)
		}
		if st := passSummary(t, early)["status"]; st != "SKIPPED" {
			if startedAt.Before(lease.ExpiresAt) {
				t.Fatalf("run started before the lease expired (%s) has status %v, want SKIPPED", lease.ExpiresAt, st)
			}
			t.Logf("the machine is slow: the early run started after the lease expired (status %v)", st)
		}

		// Once it has expired the next run takes it over and does the work.
		time.Sleep(time.Until(lease.ExpiresAt.Add(10 * time.Millisecond)))
		next := e.start("run", "--limit", "5", "--output", "json")
		if code := e.finish("next run", next); code != 0 {
			t.Fatalf("run after the lease expired exited %d", code)
		}
		res := passSummary(t, next)
		if res["status"] != repo.RunSucceeded || res["scanned"].(float64) == 0 {
			t.Fatalf("run after the lease expired = %v", res)
		}
		var killed repo.Run
		runs, err := db.Store.ListRuns(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if strings.HasSuffix(r.Owner, "/"+strconv.Itoa(pid)) {
				killed = r
			}
		}
		if killed.Status != repo.RunFailed || killed.FinishedAt == nil {
			t.Fatalf("killed run = %+v, want closed as FAILED by the next pass", killed)
		}
		e.checkEveryOrderWholeAndOnce(false)
	})
}

func TestFourShardsProcessEveryOrderExactlyOnce(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newOpsEnv(t, db, 120, "concurrency: 4", "")
		procs := make([]*proc, 4)
		for i := range procs {
			procs[i] = e.start("run", "--shard", fmt.Sprintf("%d/4", i), "--output", "json")
		}
		total := 0.0
		for i, p := range procs {
			if code := e.finish(fmt.Sprintf("shard %d/4", i), p); code != 0 {
				t.Fatalf("shard %d exited %d", i, code)
			}
			res := passSummary(t, p)
			if res["status"] != repo.RunSucceeded {
				t.Fatalf("shard %d = %v", i, res)
			}
			want := e.count("SELECT COUNT(*) FROM payment_orders WHERE id % 4 = ?", i)
			if res["scanned"] != float64(want) {
				t.Errorf("shard %d scanned %v, want its %d orders", i, res["scanned"], want)
			}
			total += res["scanned"].(float64)
		}
		if total != 120 {
			t.Fatalf("shards scanned %v orders, want 120", total)
		}
		// Every transition was made by the run of the order's own shard.
		var made []struct {
			OrderID int64
			Shard   string
		}
		if err := db.Store.DB().Raw(`SELECT t.order_id, r.shard FROM order_transitions t
			JOIN recon_runs r ON r.id = t.run_id`).Scan(&made).Error; err != nil {
			t.Fatal(err)
		}
		for _, m := range made {
			if want := fmt.Sprintf("%d/4", m.OrderID%4); m.Shard != want {
				t.Errorf("order %d committed by the run of shard %s, want %s", m.OrderID, m.Shard, want)
			}
		}
		e.checkEveryOrderWholeAndOnce(true)
	})
}

func TestSIGTERMDuringAPassAbortsWithinTheGrace(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		// 1000 orders, 50ms each, four at a time: 12s of lookups, so that
		// the signal comes part way however slowly the test sees the first
		// commits.
		const grace = 5 * time.Second
		e := newOpsEnv(t, db, 1000, "concurrency: 4, shutdown_grace: 5s", "")
		p := e.start("run")
		pollUntil(t, 2*time.Minute, "the pass to commit some orders", func() bool {
			return e.count("SELECT COUNT(*) FROM payment_orders WHERE query_attempts > 0") >= 8
		})
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		exited := make(chan int, 1)
		go func() { exited <- p.wait() }()
		select {
		case code := <-exited:
			if code != exitFailed || !strings.Contains(p.stderr.String(), "stopped by signal") {
				t.Fatalf("exit %d after SIGTERM, want %d\n%s", code, exitFailed, lastLines(p.stderr.String(), 10))
			}
		case <-time.After(grace + time.Minute): // generous: a loaded machine exits slowly
			_ = p.cmd.Process.Kill()
			<-exited
			t.Fatalf("still running %s after SIGTERM (shutdown_grace %s)", grace+time.Minute, grace)
		}
		runs, err := db.Store.ListRuns(context.Background(), 10)
		if err != nil || len(runs) != 1 {
			t.Fatalf("runs = %+v, %v", runs, err)
		}
		if r := runs[0]; r.Status != repo.RunAborted || r.FinishedAt == nil || r.Scanned == 0 || r.Scanned >= 1000 {
			t.Fatalf("run after SIGTERM = %+v, want ABORTED part way", r)
		}
		if _, held := e.holder("reconcile"); held {
			t.Fatal("lease not released after SIGTERM")
		}
		e.checkEveryOrderWholeAndOnce(false)
		if n := e.count("SELECT COUNT(*) FROM payment_orders WHERE query_attempts = 0"); n == 0 {
			t.Fatal("every order was processed: the signal came too late to test anything")
		}
	})
}

// TestKilledHolderWithTheDefaultsIsReplacedWithin30s kills a pass holding
// its lease, with the default lease settings: its lease expires at most 30s
// after the kill, passes started before that skip, and the first pass
// started after it takes the lease over (how long a loaded machine takes to
// start a process is not the lease's doing). The pass that takes the lease
// over closes the killed pass's run at once.
func TestKilledHolderWithTheDefaultsIsReplacedWithin30s(t *testing.T) {
	const limit, giveUp = 30 * time.Second, 150 * time.Second
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		// One order at a time, 50ms each: the pass would take 20s; it is
		// killed well before.
		e := newOpsEnv(t, db, 400, "concurrency: 1", "")
		holder := e.start("run")
		pid := holder.cmd.Process.Pid
		pollUntil(t, 2*time.Minute, "the first run to take the lease and commit an order", func() bool {
			lease, ok := e.holder("reconcile")
			return ok && strings.HasSuffix(lease.Owner, fmt.Sprintf("/%d", pid)) &&
				e.count("SELECT COUNT(*) FROM payment_orders WHERE query_attempts > 0") > 0
		})
		if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killedAt := time.Now()
		e.finish("killed holder", holder)
		lease, _ := e.holder("reconcile") // the last renewal's expiry
		if held := lease.ExpiresAt.Sub(killedAt); held > limit {
			t.Fatalf("the killed holder's lease lasts %s after the kill, want at most %s", held, limit)
		}

		var res map[string]any
		skips := 0
		for {
			startedAt := time.Now()
			next := e.start("run", "--limit", "5", "--output", "json")
			if code := next.wait(); code != 0 {
				e.finish("next run", next)
				t.Fatalf("run after the kill exited %d", code)
			}
			if res = passSummary(t, next); res["status"] != "SKIPPED" {
				break
			}
			// A second for the database's time granularity and clock.
			if startedAt.After(lease.ExpiresAt.Add(time.Second)) {
				t.Fatalf("a pass started %s after the killed holder's lease expired skipped", startedAt.Sub(lease.ExpiresAt))
			}
			skips++
			if time.Since(killedAt) > giveUp {
				t.Fatalf("passes still skip %s after the holder was killed", giveUp)
			}
			// The next CronJob tick, compressed. Until the last two seconds
			// of the dead holder's lease every pass skips as the first one
			// did, each a process start: the test sleeps through them.
			time.Sleep(max(250*time.Millisecond, time.Until(lease.ExpiresAt.Add(-2*time.Second))))
		}
		t.Logf("a pass worked %s after the holder was SIGKILLed, its lease expiring after %s (%d skipped before it)",
			time.Since(killedAt).Round(100*time.Millisecond), lease.ExpiresAt.Sub(killedAt).Round(100*time.Millisecond), skips)
		if res["status"] != repo.RunSucceeded || res["scanned"].(float64) == 0 {
			t.Fatalf("pass after the kill = %v", res)
		}
		runs, err := db.Store.ListRuns(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if r.Status == repo.RunRunning {
				t.Errorf("run %d (%s) still RUNNING after the pass that took the lease over", r.ID, r.Owner)
			}
			if strings.HasSuffix(r.Owner, "/"+strconv.Itoa(pid)) && (r.Status != repo.RunFailed || r.FinishedAt == nil || r.Error == "") {
				t.Errorf("killed run = %+v, want FAILED with finished_at and a reason", r)
			}
		}
		e.checkEveryOrderWholeAndOnce(false)
	})
}
