package repotest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// EnvGaleraDSNs names the variable holding the DSNs of the nodes of a
// MariaDB Galera cluster, comma-separated, e.g.
// root@tcp(127.0.0.1:3311)/test,root@tcp(127.0.0.1:3312)/test,... (.ci/galera
// dsns prints them). With it set, the tests that run ForEachDBAndCluster
// also run against the cluster, their processes on different nodes.
const EnvGaleraDSNs = "RECON_TEST_GALERA_DSNS"

// EnvGaleraCtl names the variable holding the command that kills and
// restarts a node of that cluster ("<ctl> kill N", "<ctl> restart N");
// default: the repository's .ci/galera.
const EnvGaleraCtl = "RECON_TEST_GALERA_CTL"

// Cluster is the Galera cluster a DB lives on: the DSN of the test's
// database on each node, and where the next Open goes.
type Cluster struct {
	Nodes []string
	next  atomic.Int64
}

// ForEachDBAndCluster is ForEachDB plus a subtest "galera" on the cluster of
// RECON_TEST_GALERA_DSNS (skipped, saying so, when it is not set), whose
// DB.Open spreads the test's processes over the nodes.
func ForEachDBAndCluster(t *testing.T, body func(t *testing.T, db DB)) {
	t.Helper()
	ForEachDB(t, body)
	t.Run("galera", func(t *testing.T) {
		body(t, NewGalera(t))
	})
}

// NewGalera returns a migrated, empty database on the cluster of
// RECON_TEST_GALERA_DSNS, or skips the test when it is not set. Its Store is
// on the first node and reads causally (wsrep_sync_wait=1: what any node
// committed before is seen), so that checks see every node's writes; Open
// returns stores on the other nodes in turn, reading as recon does.
func NewGalera(t testing.TB) DB {
	t.Helper()
	env := os.Getenv(EnvGaleraDSNs)
	if env == "" {
		t.Skipf("Galera tests skipped: set %s (.ci/galera start; .ci/galera dsns) to run them", EnvGaleraDSNs)
	}
	var nodes []string
	var name string
	for i, base := range strings.Split(env, ",") {
		cfg, err := mysqldrv.ParseDSN(strings.TrimSpace(base))
		if err != nil {
			t.Fatalf("%s: node %d: %v", EnvGaleraDSNs, i+1, err)
		}
		if i == 0 {
			// Created on one node, the database is on every node.
			name = createDatabase(t, cfg.FormatDSN(), cfg.DBName+"_g")
		}
		cfg.DBName = name
		nodes = append(nodes, cfg.FormatDSN())
	}
	checker, err := mysqldrv.ParseDSN(nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if checker.Params == nil {
		checker.Params = map[string]string{}
	}
	checker.Params["wsrep_sync_wait"] = "1"
	db := migrated(t, repo.MySQL, checker.FormatDSN())
	db.Cluster = &Cluster{Nodes: nodes}
	db.Cluster.next.Store(1)
	return db
}

// NodeDSN is the DSN of the database of db on node i (0-based, modulo the
// nodes); db.DSN on a single server.
func (d DB) NodeDSN(i int) string {
	if d.Cluster == nil {
		return d.DSN
	}
	return d.Cluster.Nodes[i%len(d.Cluster.Nodes)]
}

// Nodes is the number of database servers db is on: 1, or the cluster's.
func (d DB) Nodes() int {
	if d.Cluster == nil {
		return 1
	}
	return len(d.Cluster.Nodes)
}

// OpenNode returns a new connection to the database of db on node i.
func (d DB) OpenNode(t testing.TB, i int) *repo.Store {
	t.Helper()
	s, err := repo.Open(context.Background(), d.Dialect, d.NodeDSN(i), repo.Options{Orders: d.Schema.Mapping, Refunds: d.Schema.Refunds})
	if err != nil {
		t.Fatalf("open %s node %d: %v", d.Dialect, i%d.Nodes()+1, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// GaleraCtl runs the cluster's control script: "kill", "restart" a node
// (1-based), as .ci/galera does.
func GaleraCtl(t testing.TB, args ...string) {
	t.Helper()
	ctl := os.Getenv(EnvGaleraCtl)
	if ctl == "" {
		dir, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for ; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				ctl = filepath.Join(dir, ".ci", "galera")
				break
			}
			if filepath.Dir(dir) == dir {
				t.Fatalf("no go.mod above the test: set %s", EnvGaleraCtl)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, ctl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", ctl, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s: %s", filepath.Base(ctl), strings.Join(args, " "), strings.TrimSpace(string(out)))
}

// LandCallback moves order no to `to` the way the payment service does on a
// callback: guarded like recon, with its own audit and outbox rows, in one
// transaction, run again when the database aborts it as a conflict. It
// reports whether it moved the order (false: it had left PENDING already).
func LandCallback(ctx context.Context, s *repo.Store, no string, to recon.Status, now time.Time) (bool, error) {
	var won bool
	err := RetryConflicts(func() error {
		won = false
		return s.DB().WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			o, err := s.GetOrderByNo(ctx, no)
			if err != nil || o.Status != recon.StatusPending {
				return err
			}
			res := tx.Exec("UPDATE payment_orders SET status = ?, version = version + 1 WHERE id = ? AND version = ? AND status = 'PENDING'",
				to, o.ID, o.Version)
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			note := recon.NewNotification(o, to, "", nil, now)
			if err := tx.Exec(`INSERT INTO merchant_notifications (id, order_id, merchant_id, event, payload, status, attempts, next_attempt_at, created_at)
				VALUES (?, ?, ?, ?, ?, 'PENDING', 0, ?, ?)`, note.ID, o.ID, o.MerchantID, note.Event, string(note.Payload()), now, now).Error; err != nil {
				return err
			}
			if err := tx.Exec(`INSERT INTO order_transitions (order_id, from_status, to_status, from_version, to_version, source, created_at)
				VALUES (?, 'PENDING', ?, ?, ?, 'callback', ?)`, o.ID, to, o.Version, o.Version+1, now).Error; err != nil {
				return err
			}
			won = true
			return nil
		})
	})
	return won && err == nil, err
}

// RetryConflicts runs fn, again while the database aborts it as a conflict
// (a deadlock or, on a cluster, a failed certification: MySQL 1213; a lock
// wait timeout, 1205), up to 20 times: the retry the payment service's own
// writes need beside recon's on a cluster.
func RetryConflicts(fn func() error) error {
	var err error
	for i := range 20 {
		if err = fn(); err == nil {
			return nil
		}
		var me *mysqldrv.MySQLError
		if !errors.As(err, &me) || (me.Number != 1213 && me.Number != 1205) {
			return err
		}
		time.Sleep(time.Duration(i+1) * 5 * time.Millisecond)
	}
	return err
}

// Settle waits until every node of db's cluster has applied what any node
// committed before the call (a causal read on each), so that processes
// started next on any node see the rows a test seeded. It does nothing on
// one server.
func (d DB) Settle(t testing.TB) {
	t.Helper()
	if d.Cluster == nil {
		return
	}
	for i := range d.Cluster.Nodes {
		cfg, err := mysqldrv.ParseDSN(d.Cluster.Nodes[i])
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params["wsrep_sync_wait"] = "1"
		s, err := repo.Open(context.Background(), repo.MySQL, cfg.FormatDSN(), repo.Options{MaxOpenConns: 1})
		if err != nil {
			t.Fatalf("settle node %d: %v", i+1, err)
		}
		var n int64
		err = s.DB().Raw("SELECT COUNT(*) FROM schema_migrations").Scan(&n).Error
		_ = s.Close()
		if err != nil {
			t.Fatalf("settle node %d: %v", i+1, err)
		}
	}
}
