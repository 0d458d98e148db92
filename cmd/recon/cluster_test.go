package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// conflictCounters reads, on each server of db that is up, how many
// transactions the database aborted as conflicts so far: deadlocks on one
// server; on a cluster also the write sets that failed certification and the
// local transactions a replicated one aborted. A restarted node counts from
// zero.
func conflictCounters(t *testing.T, db repotest.DB, alive func(int) bool) []int64 {
	t.Helper()
	out := make([]int64, db.Nodes())
	for i := range db.Nodes() {
		if !alive(i) {
			continue
		}
		s := db.OpenNode(t, i)
		var rows []struct {
			VariableName string `gorm:"column:Variable_name"`
			Value        int64  `gorm:"column:Value"`
		}
		if err := s.DB().Raw(`SHOW GLOBAL STATUS WHERE Variable_name IN
			('Innodb_deadlocks', 'wsrep_local_cert_failures', 'wsrep_local_bf_aborts')`).Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			out[i] += r.Value
		}
		_ = s.Close()
	}
	return out
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// TestClusterPassesSurviveANodeKill: three pods, each on its own node of a
// cluster (on one server, all on it), run `recon run` over and over on the
// same due orders while a callback writer on the first node moves a
// quarter of them. On a cluster the second node is SIGKILLed while passes
// run and restarted (it rejoins by incremental state transfer). No pass on
// a live node exits non-zero, every order ends where the channel puts it,
// once, with its outbox row, and the nodes agree row for row.
func TestClusterPassesSurviveANodeKill(t *testing.T) {
	orders := 3000
	if testing.Short() {
		orders = 600
	}
	repotest.ForEachDBAndCluster(t, func(t *testing.T, db repotest.DB) {
		if db.Dialect == repo.SQLite {
			t.Skip("pods on database servers: MySQL and a cluster")
		}
		ctx := context.Background()
		seed := repotest.RandSeed(t)
		rng := rand.New(rand.NewPCG(seed, 3))
		sim := crashSim(int64(seed >> 1))
		truth := seedCrashOrders(t, db.Store, orders, sim)
		cfg := crashConfig(t, db, sim, 4)
		db.Settle(t)

		var down atomic.Int64 // the node killed (1-based), 0 while all run
		alive := func(i int) bool { return down.Load() != int64(i+1) }
		before := conflictCounters(t, db, alive)

		// The payment service: callbacks for a quarter of the orders, on
		// the first node.
		var moved atomic.Int64
		nos := make([]string, 0, orders)
		for no := range truth {
			nos = append(nos, no)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k, i := range rng.Perm(len(nos))[:orders/4] {
				select {
				case <-stop:
					return
				default:
				}
				to := []recon.Status{recon.StatusPaid, recon.StatusFailed, recon.StatusClosed}[k%3]
				won, err := repotest.LandCallback(ctx, db.Store, nos[i], to, time.Now().UTC())
				if err != nil {
					t.Errorf("callback for %s: %v", nos[i], err)
					return
				}
				if won {
					moved.Add(1)
				}
			}
		}()

		// Three pods, pod k on node k, each running passes until one of
		// them finds nothing left to do.
		start := time.Now()
		var done atomic.Bool
		var mu sync.Mutex
		var failedLive, failedDown, passes, skipped int
		var failures []string
		for k := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				env := []string{"RECON_DATABASE_DRIVER=mysql", "RECON_DATABASE_DSN=" + db.NodeDSN(k)}
				for !done.Load() {
					wasDown := !alive(k)
					p := startRecon(t, env, "run", "--config", cfg, "--output", "json")
					code := p.wait()
					mu.Lock()
					passes++
					switch {
					case code != 0 && (wasDown || !alive(k)):
						failedDown++ // its node died: the pod's database is gone
					case code != 0:
						failedLive++
						failures = append(failures, fmt.Sprintf("pod %d exited %d: %s", k+1, code, strings.TrimSpace(p.stderr.String())))
					default:
						sum := passSummary(t, p)
						if sum["status"] == "SKIPPED" {
							skipped++
						} else if sum["status"] == repo.RunSucceeded && sum["scanned"] == 0.0 {
							done.Store(true)
						}
					}
					mu.Unlock()
					if code != 0 {
						time.Sleep(200 * time.Millisecond) // the pod's restart back-off
					}
				}
			}()
		}

		if db.Cluster != nil {
			// Kill the second node once a third of the orders are settled,
			// while passes run, and restart it once a further tenth are.
			waitSettled(t, db.Store, int64(orders/3), &done)
			// What the node counted before it dies is kept; after its
			// restart it counts from zero.
			died := conflictCounters(t, db, alive)[1] - before[1]
			before[1] = -died
			down.Store(2)
			repotest.GaleraCtl(t, "kill", "2")
			waitSettled(t, db.Store, int64(orders/3+orders/10), &done)
			repotest.GaleraCtl(t, "restart", "2")
			down.Store(0)
		}
		for !done.Load() && !t.Failed() {
			waitSettled(t, db.Store, int64(orders), &done)
		}
		settle := time.Since(start)
		close(stop)
		wg.Wait()
		db.Settle(t)
		conflicts := sum(conflictCounters(t, db, alive)) - sum(before)

		led := repotest.CheckLedger(t, db.Store, truth, true)
		t.Log(led)
		t.Logf("%d orders, %d nodes: settled in %s; %d passes (%d skipped: lease held), %d exited non-zero on live nodes, %d on the killed node; %d transactions aborted as conflicts and retried; %d callbacks landed",
			orders, db.Nodes(), settle.Round(time.Millisecond), passes, skipped, failedLive, failedDown, conflicts, moved.Load())
		if failedLive > 0 {
			t.Fatalf("passes on live nodes failed:\n%s", strings.Join(failures, "\n"))
		}
		if db.Cluster != nil {
			nodesAgree(t, db)
		}
	})
}

// waitSettled returns once n orders have left PENDING, or the pods are done.
func waitSettled(t *testing.T, s *repo.Store, n int64, done *atomic.Bool) {
	t.Helper()
	pollUntil(t, 3*time.Minute, fmt.Sprintf("%d orders settled", n), func() bool { return done.Load() || countSettled(t, s) >= n })
}

// nodesAgree checks that every node holds the same orders, transitions and
// outbox rows.
func nodesAgree(t *testing.T, db repotest.DB) {
	t.Helper()
	digest := func(s *repo.Store) string {
		var parts []string
		for _, q := range []string{
			"SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id, status, version))), 0) FROM payment_orders",
			"SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(order_id, to_status, source))), 0) FROM order_transitions",
			"SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id, order_id, event))), 0) FROM merchant_notifications",
		} {
			var n, sum int64
			if err := s.DB().Raw(q).Row().Scan(&n, &sum); err != nil {
				t.Fatal(err)
			}
			parts = append(parts, fmt.Sprint(n, "/", sum))
		}
		return strings.Join(parts, " ")
	}
	want := digest(db.Store)
	for i := 1; i < db.Nodes(); i++ {
		s := db.OpenNode(t, i)
		db.Settle(t)
		if got := digest(s); got != want {
			t.Fatalf("node %d holds %s, node 1 %s", i+1, got, want)
		}
	}
}
