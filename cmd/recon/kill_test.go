package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// crashSim is the channel of the crash tests: most orders end paid, some
// failed, closed or tampered, the rest stay pending. Latency keeps a pass
// long enough to be interrupted many times.
func crashSim(seed int64) simulator.Config {
	return simulator.Config{Seed: seed, Secret: "crash-secret", Latency: 2 * time.Millisecond,
		PaidRate: 0.7, FailedRate: 0.1, ClosedRate: 0.1, AmountTamperRate: 0.05}
}

// crashConfig is the config file of a recon child process running against
// db with the simulator sim.
func crashConfig(t *testing.T, db repotest.DB, sim simulator.Config, concurrency int) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`database: {driver: %s, dsn: '%s'}
reconcile:
  grace_period: 1s
  max_age: 240h
  batch_size: 200
  concurrency: %d
  query_schedule: [1h]
  jitter: 0
  close_on_expiry: false
  lookup_retry: {initial_interval: 1ms, max_interval: 5ms, max_elapsed: 100ms}
  shutdown_grace: 1s
  heartbeat: 200ms
log: {level: warn, format: json}
channels:
  - name: sim
    kind: simulator
    secret: %s
    simulator: {seed: %d, latency: %s, paid_rate: %g, failed_rate: %g, closed_rate: %g, amount_tamper_rate: %g}
`, db.Dialect, db.DSN, concurrency, sim.Secret, sim.Seed, sim.Latency, sim.PaidRate, sim.FailedRate, sim.ClosedRate, sim.AmountTamperRate))
}

// seedCrashOrders inserts n due orders K000000… and returns what the
// channel finally says about each, asking a twin of the child's simulator.
func seedCrashOrders(t *testing.T, s *repo.Store, n int, sim simulator.Config) map[string]repotest.Truth {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	orders := make([]recon.Order, n)
	for i := range orders {
		orders[i] = repotest.Order(fmt.Sprintf("K%06d", i), now)
		orders[i].Amount = int64(100 + i%5000)
	}
	if s.Dialect() == repo.SQLite {
		// The same rows generated inside SQLite: binding them one by one
		// through the pure-Go driver is slow under the race detector.
		o := orders[0]
		if err := s.DB().Exec(`INSERT INTO payment_orders (order_no, merchant_id, channel, amount, currency, status, created_at, updated_at)
			WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
			SELECT printf('K%06d', i), ?, ?, 100 + i % 5000, ?, 'PENDING', ?, ? FROM seq`,
			n-1, o.MerchantID, o.Channel, o.Currency, o.CreatedAt, o.UpdatedAt).Error; err != nil {
			t.Fatal(err)
		}
	} else if err := s.InsertOrders(ctx, orders); err != nil {
		t.Fatal(err)
	}
	sim.Latency = 0
	twin := simulator.New(sim)
	truth := make(map[string]repotest.Truth, n)
	for _, o := range orders {
		res, err := twin.Lookup(ctx, o)
		if err != nil {
			t.Fatalf("twin lookup %s: %v", o.OrderNo, err)
		}
		truth[o.OrderNo] = repotest.Truth{Status: res.Status,
			Tampered: res.Status == recon.ChannelPaid && (res.Amount != o.Amount || res.Currency != o.Currency)}
	}
	return truth
}

// runStatus reads the status of a `recon run --output json` summary.
func runStatus(out string) string {
	var res struct {
		Status string `json:"status"`
	}
	for _, line := range strings.Split(out, "\n") {
		if json.Unmarshal([]byte(line), &res) == nil && res.Status != "" {
			return res.Status
		}
	}
	return ""
}

// countSettled counts the orders no longer PENDING. The tests poll it
// every few milliseconds: written as two ranges, SQLite counts only the
// settled orders in an index that starts with status, where status <>
// 'PENDING' made it scan every order.
func countSettled(t *testing.T, s *repo.Store) int64 {
	t.Helper()
	var n int64
	if err := s.DB().Raw("SELECT COUNT(*) FROM payment_orders WHERE status < 'PENDING' OR status > 'PENDING'").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// expireLeases removes the leases of dead processes: a killed pass holds its
// lease until it expires, which the test need not wait for.
func expireLeases(t *testing.T, s *repo.Store) {
	t.Helper()
	if err := s.DB().Exec("DELETE FROM recon_leases").Error; err != nil {
		t.Fatal(err)
	}
}

// closeAbandonedRuns runs passes until no run row is left RUNNING (at most
// a few: the pass that takes the lease marks the rows of killed passes
// FAILED at once).
func closeAbandonedRuns(t *testing.T, s *repo.Store, env []string, cfg string) []repo.Run {
	t.Helper()
	for passes := 1; ; passes++ {
		if code := startRecon(t, env, "run", "--config", cfg).wait(); code != 0 {
			t.Fatalf("pass after the work was done exited %d", code)
		}
		runs, err := s.ListRuns(context.Background(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, r := range runs {
			if r.Status == repo.RunRunning {
				running++
			}
		}
		if running == 0 {
			return runs
		}
		if passes == 3 {
			t.Fatalf("%d runs still RUNNING after %d passes", running, passes)
		}
	}
}

// killOnceSettled SIGKILLs p once at least target orders are settled, after
// pause, unless p exits first (exited delivers its exit code). It reports
// the exit code when p exited by itself, and whether it was killed.
func killOnceSettled(t *testing.T, s *repo.Store, p *proc, exited <-chan int, target int64, pause time.Duration) (int, bool) {
	t.Helper()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case code := <-exited:
			return code, false
		case <-poll.C:
		}
		if countSettled(t, s) < target {
			continue
		}
		time.Sleep(pause) // where in its work the process dies, not whether
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-exited
		return 0, true
	}
}

// TestKilledRunsLoseNothing runs `recon run` over 20k orders (5k on SQLite;
// on a cluster each start on the next node),
// SIGKILLs it at random moments (seeded: RECON_TEST_SEED replays a run) at
// least 20 times, restarts it until a pass completes, and checks the ledger:
// every order the channel says is paid is PAID exactly once with one outbox
// row, nothing regressed or was half written, audit rows and versions agree,
// and every killed run is closed as FAILED by a later pass.
func TestKilledRunsLoseNothing(t *testing.T) {
	// Lookups take 2ms each, so concurrency bounds how much of the pass one
	// life of the process can do: 20 kills leave work for the last run.
	orders, wantKills, concurrency := 20000, 20, 4
	if testing.Short() {
		orders, wantKills, concurrency = 2000, 5, 1
	}
	repotest.ForEachDBAndCluster(t, func(t *testing.T, db repotest.DB) {
		orders, concurrency := orders, concurrency
		if db.Dialect == repo.SQLite {
			// An embedded file crashes the same way with fewer orders
			// (the 20k run is the production database's), looked up more
			// slowly so that the kills still land before the pass is done.
			orders, concurrency = min(orders, 5000), max(concurrency/2, 1)
		}
		seed := repotest.RandSeed(t)
		rng := rand.New(rand.NewPCG(seed, 2))
		sim := crashSim(int64(seed >> 1))
		truth := seedCrashOrders(t, db.Store, orders, sim)
		cfg := crashConfig(t, db, sim, concurrency)
		env := []string{"RECON_DATABASE_DRIVER=" + string(db.Dialect), "RECON_DATABASE_DSN=" + db.DSN}

		// Each life of the process is killed once it has settled a random
		// number of orders more than the last one left (zero: during
		// start-up), then after a random pause (mid-lookup, mid-commit or
		// in the run's bookkeeping). The kills wait on the orders settled,
		// never on the wall clock, so a loaded machine slows the test down
		// but cannot make the kills miss the pass. A life settles at most
		// step orders and a commit's batch before it dies, so 20 lives
		// leave work for the last one.
		step := int64(orders / (4 * wantKills))

		kills, midPass, starts := 0, 0, 0
		var progress []string
		var lastSettled int64
		db.Settle(t)
		for {
			starts++
			// On a cluster each start is a pod on the next node.
			p := startRecon(t, append(env, "RECON_DATABASE_DSN="+db.NodeDSN(starts)), "run", "--config", cfg, "--output", "json")
			exited := make(chan int, 1)
			go func() { exited <- p.wait() }()
			var code int
			if kills < wantKills {
				target := lastSettled + rng.Int64N(step+1)
				pause := time.Duration(rng.IntN(20)) * time.Millisecond
				var killed bool
				if code, killed = killOnceSettled(t, db.Store, p, exited, target, pause); killed {
					kills++
					settled := countSettled(t, db.Store)
					if settled > 0 && settled < int64(orders) {
						midPass++
					}
					lastSettled = settled
					progress = append(progress, fmt.Sprint(settled))
					expireLeases(t, db.Store)
					continue
				}
			} else {
				code = <-exited
			}
			if code != 0 {
				t.Fatalf("recon run exited %d:\n%s%s", code, p.stdout.String(), p.stderr.String())
			}
			if st := runStatus(p.stdout.String()); st == repo.RunSucceeded {
				break
			} else if starts > 10*wantKills {
				t.Fatalf("no pass completed after %d starts (last status %q)", starts, st)
			}
		}
		t.Logf("%d kills (%d mid-pass), %d starts; orders settled at each kill: %s", kills, midPass, starts, strings.Join(progress, " "))
		if kills < wantKills || midPass == 0 {
			t.Fatalf("%d kills, %d of them mid-pass; want at least %d and some mid-pass", kills, midPass, wantKills)
		}
		led := repotest.CheckLedger(t, db.Store, truth, true)
		t.Log(led)

		runs := closeAbandonedRuns(t, db.Store, env, cfg)
		failed := 0
		for _, r := range runs {
			if r.Status == repo.RunFailed {
				failed++
				if r.FinishedAt == nil {
					t.Fatalf("failed run %d without finished_at", r.ID)
				}
			}
		}
		if failed == 0 {
			t.Fatalf("no killed run was marked FAILED: %+v", runs)
		}
	})
}
