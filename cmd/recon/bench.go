package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/glebarez/go-sqlite" // database/sql driver "sqlite" for the raw ceiling
	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/spf13/cobra"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

type benchOptions struct {
	orders      int
	concurrency int
	latency     time.Duration
	rateLimit   float64
	keep        bool
	cpuProfile  string
	rawOrders   int
	commitBatch int
	refunds     int
}

func (a *app) benchCommand() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the raw database ceiling and a full pass over N due orders in a scratch database",
		Long: `bench creates a scratch database next to the configured one (MySQL: <db>_bench;
SQLite: a temporary file), seeds N due orders, then measures
  (a) the raw ceiling: single-row guarded UPDATE + outbox INSERT transactions
      written directly with database/sql at the same concurrency, and
  (b) a full reconcile pass over the same orders against the in-process simulator,
and prints both rates, their ratio, lookup-to-commit latency and peak RSS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if o.orders < 1 || o.concurrency < 1 || o.refunds < 0 {
				return usageErr("--orders and --concurrency must be at least 1, --refunds at least 0")
			}
			if o.refunds > 0 && cfg.Orders != nil {
				return usageErr("bench --refunds measures recon's own refund_orders; the configuration maps an orders table (orders)")
			}
			return a.bench(cmd.Context(), cfg, o)
		},
	}
	cmd.Flags().IntVar(&o.orders, "orders", 100000, "due orders to seed")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", 32, "workers for both measurements")
	cmd.Flags().DurationVar(&o.latency, "latency", 0, "simulated channel latency per lookup")
	cmd.Flags().Float64Var(&o.rateLimit, "rate-limit", 0, "channel rate limit in lookups/second (0: none)")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "keep the scratch database")
	cmd.Flags().IntVar(&o.commitBatch, "commit-batch", 0, "orders per commit transaction (0: the job's default; 1: one order per transaction)")
	cmd.Flags().IntVar(&o.rawOrders, "raw-orders", 0, "measure the raw ceiling over the first N orders only (0: all); for large backlogs")
	cmd.Flags().StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the full pass to this file (go tool pprof)")
	cmd.Flags().IntVar(&o.refunds, "refunds", 0, "also measure N due refunds (of N paid orders): a pass over them alone, then one over the orders and refunds together")
	cmd.AddCommand(a.benchStatementCommand(), a.benchCallbacksCommand(), a.benchConsoleCommand())
	return cmd
}

func (a *app) bench(ctx context.Context, cfg Config, o benchOptions) error {
	driver := repo.Dialect(cfg.Database.Driver)
	store, dsn, cleanup, err := scratchStore(ctx, driver, cfg.Database.DSN, "_bench", o.keep, o.concurrency+4)
	if err != nil {
		return err
	}
	defer cleanup()
	fmt.Fprintf(a.stdout, "bench: %s, %d orders, concurrency %d, channel latency %s\n", driver, o.orders, o.concurrency, o.latency)

	var rawRate float64
	if cfg.Orders != nil {
		// A mapped table: an empty copy of it in the scratch database,
		// seeded as the team's service would; no raw ceiling.
		if store, err = a.benchMappedTable(ctx, cfg, driver, dsn, store, o); err != nil {
			return err
		}
		defer store.Close()
	} else {
		seedStart := time.Now()
		if err := seedBench(ctx, driver, dsn, o.orders); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "seeded in %s\n", time.Since(seedStart).Round(time.Millisecond))

		rawRate, err = rawCeiling(ctx, driver, dsn, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "raw ceiling (UPDATE + outbox INSERT per tx): %8.0f tx/s\n", rawRate)
		resetStart := time.Now()
		if err := resetBench(ctx, store); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "reset in %s\n", time.Since(resetStart).Round(time.Millisecond))
	}

	sim := &forgetful{cfg: simulator.Config{Seed: 1, PaidRate: 1, Latency: o.latency}}
	ch := channel.NewGuarded("bench", sim, o.rateLimit, channel.RetryPolicy{InitialInterval: 10 * time.Millisecond, MaxElapsed: time.Second})
	lat := &latencies{d: make([]time.Duration, 0, o.orders)}
	rec := a.reconciler(cfg, store, map[string]jobs.Channel{"bench": ch}, recon.SystemClock{})
	rec.Concurrency, rec.GracePeriod, rec.Observer, rec.CommitBatch = o.concurrency, 0, lat, o.commitBatch
	rec.Logger = a.log
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := rec.Run(ctx, jobs.Window{})
	stopProfile()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	jobRate := float64(res.Paid) / elapsed.Seconds()
	fmt.Fprintf(a.stdout, "recon run:                                   %8.0f orders/s (%d paid, %d errors in %s)\n",
		jobRate, res.Paid, res.Errors, elapsed.Round(time.Millisecond))
	if rawRate > 0 {
		fmt.Fprintf(a.stdout, "ratio run / raw ceiling:                     %8.2f\n", jobRate/rawRate)
	}
	if o.latency > 0 {
		bound := float64(o.concurrency) / o.latency.Seconds()
		if o.rateLimit > 0 && o.rateLimit < bound {
			bound = o.rateLimit
		}
		fmt.Fprintf(a.stdout, "latency bound min(rate_limit, concurrency/latency): %8.0f orders/s, run reaches %.2f of it\n", bound, jobRate/bound)
	}
	p50, p99 := lat.percentiles()
	fmt.Fprintf(a.stdout, "lookup-to-commit latency: p50 %s, p99 %s\n", p50, p99)
	fmt.Fprintf(a.stdout, "peak RSS: %s\n", peakRSS())
	if int(res.Paid) != o.orders {
		return fmt.Errorf("bench: %d of %d orders paid", res.Paid, o.orders)
	}
	if o.refunds > 0 {
		return a.benchRefunds(ctx, driver, dsn, store, rec, o, elapsed)
	}
	return nil
}

// benchRefunds seeds o.refunds due refunds of as many paid orders, and
// measures a pass over them alone (refunds/s, beside the orders/s of the
// pass before), then, with the orders due again, one pass over the orders
// and the refunds together: its time per item against the orders-alone
// pass's (ordersAlone for o.orders orders).
func (a *app) benchRefunds(ctx context.Context, driver repo.Dialect, dsn string, store *repo.Store, rec *jobs.Reconciler,
	o benchOptions, ordersAlone time.Duration) error {
	seedStart := time.Now()
	if err := seedBenchRefunds(ctx, driver, dsn, o.refunds); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "seeded %d refunds of %d paid orders in %s\n", o.refunds, o.refunds, time.Since(seedStart).Round(time.Millisecond))
	pass := func() (jobs.Result, time.Duration, error) {
		start := time.Now()
		res, err := rec.Run(ctx, jobs.Window{})
		return res, time.Since(start), err
	}
	res, alone, err := pass()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "recon run, refunds alone:                    %8.0f refunds/s (%d succeeded, %d errors in %s)\n",
		float64(res.RefundsSucceeded)/alone.Seconds(), res.RefundsSucceeded, res.Errors, alone.Round(time.Millisecond))
	if int(res.RefundsSucceeded) != o.refunds {
		return fmt.Errorf("bench: %d of %d refunds succeeded", res.RefundsSucceeded, o.refunds)
	}
	if err := resetBench(ctx, store); err != nil {
		return err
	}
	res, both, err := pass()
	if err != nil {
		return err
	}
	items := o.orders + o.refunds
	fmt.Fprintf(a.stdout, "recon run, orders and refunds together:     %8.0f items/s (%d paid, %d refunds succeeded, %d errors in %s)\n",
		float64(items)/both.Seconds(), res.Paid, res.RefundsSucceeded, res.Errors, both.Round(time.Millisecond))
	if int(res.Paid) != o.orders || int(res.RefundsSucceeded) != o.refunds {
		return fmt.Errorf("bench: %d of %d orders paid, %d of %d refunds succeeded", res.Paid, o.orders, res.RefundsSucceeded, o.refunds)
	}
	// The first pass ran on a cold database: the orders alone once more,
	// warm, the refunds left settled.
	if err := resetOrders(ctx, store); err != nil {
		return err
	}
	res, again, err := pass()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "recon run, orders alone again:               %8.0f orders/s (%d paid in %s)\n",
		float64(res.Paid)/again.Seconds(), res.Paid, again.Round(time.Millisecond))
	perItem := both / time.Duration(items)
	for _, alone := range []struct {
		name string
		d    time.Duration
	}{{"first", ordersAlone}, {"again", again}} {
		perOrder := alone.d / time.Duration(o.orders)
		fmt.Fprintf(a.stdout, "time per item: orders alone (%s) %s, orders and refunds together %s (%+.1f%%)\n",
			alone.name, perOrder, perItem, 100*(float64(perItem)/float64(perOrder)-1))
	}
	return nil
}

// seedBenchRefunds inserts n paid orders (numbered P…) and a due refund of
// half of each (numbered R…).
func seedBenchRefunds(ctx context.Context, driver repo.Dialect, dsn string, n int) error {
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	err := insertRowsParallel(ctx, driver, dsn, n, func(start, end int, args []any) (string, []any) {
		for i := start; i < end; i++ {
			args = append(args, fmt.Sprintf("P%09d", i), int64(200+i%9000), created, created, created, "m1", "bench")
		}
		return "INSERT INTO payment_orders (order_no, amount, created_at, updated_at, paid_at, merchant_id, channel, currency, status, version) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, 'CNY', 'PAID', 1), ", end-start), ", "), args
	})
	if err != nil {
		return err
	}
	db, err := openRaw(driver, dsn, 1)
	if err != nil {
		return err
	}
	defer db.Close()
	no := "CONCAT('R', SUBSTR(order_no, 2))"
	if driver == repo.SQLite {
		no = "'R' || SUBSTR(order_no, 2)"
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO refund_orders (refund_no, order_id, merchant_id, channel, amount, currency, status, created_at, updated_at) "+
		"SELECT "+no+", id, merchant_id, channel, amount / 2, currency, 'PENDING', created_at, created_at FROM payment_orders WHERE order_no LIKE 'P%'"); err != nil {
		return fmt.Errorf("seed bench refunds: %w", err)
	}
	return nil
}

// benchMappedTable creates in the scratch database an empty table defined
// like the configured orders table (the team's table itself is only read),
// opens the scratch store with the mapping and seeds o.orders due orders
// through it.
func (a *app) benchMappedTable(ctx context.Context, cfg Config, driver repo.Dialect, dsn string, scratch *repo.Store, o benchOptions) (*repo.Store, error) {
	src, err := a.open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ddl, err := src.TableDefinition(ctx, cfg.Orders.Table)
	_ = src.Close()
	if err != nil {
		return nil, err
	}
	if err := scratch.DB().WithContext(ctx).Exec(ddl).Error; err != nil {
		return nil, fmt.Errorf("create the bench copy of %s: %w", cfg.Orders.Table, err)
	}
	store, err := repo.Open(ctx, driver, dsn, repo.Options{MaxOpenConns: o.concurrency + 4, Orders: cfg.Orders})
	if err != nil {
		return nil, cfg.mappingError(err)
	}
	seedStart := time.Now()
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	const batch = 5000
	for start := 0; start < o.orders; start += batch {
		orders := make([]recon.Order, 0, batch)
		for i := start; i < min(start+batch, o.orders); i++ {
			orders = append(orders, recon.Order{OrderNo: fmt.Sprintf("B%09d", i), MerchantID: "m1", Channel: "bench",
				Amount: int64(100 + i%9000), Currency: "CNY", Status: recon.StatusPending, CreatedAt: created})
		}
		if err := store.InsertOrders(ctx, orders); err != nil {
			_ = store.Close()
			return nil, err
		}
	}
	fmt.Fprintf(a.stdout, "seeded a copy of %s in %s (raw ceiling: measured on recon's own table only)\n",
		cfg.Orders.Table, time.Since(seedStart).Round(time.Millisecond))
	return store, nil
}

// startCPUProfile profiles the process into path until the returned function
// is called; an empty path profiles nothing.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// scratchStore opens a migrated, empty scratch database beside the
// configured one (scratchDatabase) with up to conns connections; cleanup
// closes it and, unless keep, drops it.
func scratchStore(ctx context.Context, driver repo.Dialect, dsn, suffix string, keep bool, conns int) (*repo.Store, string, func(), error) {
	dsn, drop, err := scratchDatabase(ctx, driver, dsn, suffix, keep)
	if err != nil {
		return nil, "", nil, err
	}
	store, err := repo.Open(ctx, driver, dsn, repo.Options{MaxOpenConns: conns})
	if err != nil {
		drop()
		return nil, "", nil, err
	}
	cleanup := func() {
		_ = store.Close()
		drop()
	}
	if _, err := store.Migrate(ctx, time.Now()); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return store, dsn, cleanup, nil
}

// scratchDatabase makes an empty database beside the configured one.
func scratchDatabase(ctx context.Context, driver repo.Dialect, dsn, suffix string, keep bool) (string, func(), error) {
	if driver == repo.SQLite {
		dir, err := os.MkdirTemp("", "recon-bench-")
		if err != nil {
			return "", nil, err
		}
		return filepath.Join(dir, "bench.db"), func() {
			if !keep {
				_ = os.RemoveAll(dir)
			}
		}, nil
	}
	mc, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		return "", nil, err
	}
	name := mc.DBName + suffix
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return "", nil, fmt.Errorf("drop scratch database: %w", err)
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4"); err != nil {
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	mc.DBName = name
	return mc.FormatDSN(), func() {
		if keep {
			return
		}
		if db, err := sql.Open("mysql", dsn); err == nil {
			_, _ = db.Exec("DROP DATABASE IF EXISTS " + name)
			_ = db.Close()
		}
	}, nil
}

// seedBench inserts n due orders with multi-row INSERTs, a few statements
// at once, so that a backlog of a million orders is seeded in seconds.
func seedBench(ctx context.Context, driver repo.Dialect, dsn string, n int) error {
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	return insertRowsParallel(ctx, driver, dsn, n, func(start, end int, args []any) (string, []any) {
		for i := start; i < end; i++ {
			args = append(args, fmt.Sprintf("B%09d", i), int64(100+i%9000), created, created, "m1", "bench")
		}
		return "INSERT INTO payment_orders (order_no, amount, created_at, updated_at, merchant_id, channel, currency, status) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, 'CNY', 'PENDING'), ", end-start), ", "), args
	})
}

// insertRowsParallel runs the multi-row INSERTs build makes for rows
// [start, end) of n, 1000 rows a statement (100 on SQLite, whose older builds
// bind at most 999 parameters) from four connections (one on SQLite, which
// has one writer anyway).
func insertRowsParallel(ctx context.Context, driver repo.Dialect, dsn string, n int, build func(start, end int, args []any) (string, []any)) error {
	db, err := openRaw(driver, dsn, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, workers := 1000, 4
	if driver == repo.SQLite {
		rows, workers = 100, 1
	}
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var args []any
			for {
				start := int(next.Add(int64(rows))) - rows
				if start >= n || ctx.Err() != nil {
					return
				}
				var q string
				q, args = build(start, min(start+rows, n), args[:0])
				if _, err := db.ExecContext(ctx, q, args...); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("seed bench rows: %w", err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}

// resetBench puts back what the raw ceiling or a pass changed: the due
// orders (B…) and the refunds to PENDING, the outbox, audit and mismatch
// rows gone.
func resetBench(ctx context.Context, store *repo.Store) error {
	for _, q := range []string{
		"UPDATE payment_orders SET status = 'PENDING', version = 0, query_attempts = 0, next_query_at = NULL, paid_at = NULL WHERE version <> 0 AND order_no LIKE 'B%'",
		"UPDATE refund_orders SET status = 'PENDING', version = 0, query_attempts = 0, next_query_at = NULL, succeeded_at = NULL, channel_refund_id = NULL",
		"DELETE FROM merchant_notifications", "DELETE FROM order_transitions", "DELETE FROM refund_transitions", "DELETE FROM recon_mismatches",
	} {
		if err := store.DB().WithContext(ctx).Exec(q).Error; err != nil {
			return fmt.Errorf("reset bench data: %w", err)
		}
	}
	return nil
}

// resetOrders puts the due orders (B…) back to PENDING, their outbox and
// audit rows gone, and leaves the refunds as they are.
func resetOrders(ctx context.Context, store *repo.Store) error {
	for _, q := range []string{
		"UPDATE payment_orders SET status = 'PENDING', version = 0, query_attempts = 0, next_query_at = NULL, paid_at = NULL WHERE version <> 0 AND order_no LIKE 'B%'",
		"DELETE FROM merchant_notifications WHERE refund_id = 0", "DELETE FROM order_transitions",
	} {
		if err := store.DB().WithContext(ctx).Exec(q).Error; err != nil {
			return fmt.Errorf("reset bench orders: %w", err)
		}
	}
	return nil
}

// openRaw opens a plain database/sql pool of conns connections.
func openRaw(driver repo.Dialect, dsn string, conns int) (*sql.DB, error) {
	ndsn, err := repo.NormalizeDSN(driver, dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(string(driver), ndsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

// rawCeiling measures plain guarded UPDATE + outbox INSERT transactions.
func rawCeiling(ctx context.Context, driver repo.Dialect, dsn string, o benchOptions) (float64, error) {
	db, err := openRaw(driver, dsn, o.concurrency)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	limit := o.orders
	if o.rawOrders > 0 && o.rawOrders < limit {
		limit = o.rawOrders
	}
	var ids []int64
	rows, err := db.QueryContext(ctx, "SELECT id FROM payment_orders ORDER BY id LIMIT ?", limit)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	now := time.Now().UTC().Truncate(time.Microsecond)
	start := time.Now()
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if int(i) >= len(ids) {
					return
				}
				if err := rawTx(ctx, db, ids[i], now); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, fmt.Errorf("raw ceiling: %w", err)
	}
	return float64(len(ids)) / time.Since(start).Seconds(), nil
}

func rawTx(ctx context.Context, db *sql.DB, id int64, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, "UPDATE payment_orders SET status = 'PAID', version = version + 1, updated_at = ? WHERE id = ? AND version = 0 AND status = 'PENDING'", now, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO merchant_notifications (id, order_id, merchant_id, event, payload, status, attempts, next_attempt_at, created_at) VALUES (?, ?, 'm1', 'order.paid', '{}', 'PENDING', 0, ?, ?)",
		fmt.Sprintf("raw-%d", id), id, now, now); err != nil {
		return err
	}
	return tx.Commit()
}

// forgetful is the bench's channel: the simulator, replaced by a fresh one
// every forgetEvery lookups. A simulator remembers every order it was asked
// about (for late payments and per-call faults), which over a million orders
// is a remote channel's memory, not the job's; with every order paid and no
// faults its answers do not depend on that memory, so a fresh one answers
// the same.
type forgetful struct {
	cfg simulator.Config
	mu  sync.Mutex
	sim *simulator.Sim
	n   int
}

const forgetEvery = 50000

func (f *forgetful) Lookup(ctx context.Context, o recon.Order) (recon.LookupResult, error) {
	return f.current().Lookup(ctx, o)
}

// LookupRefund answers refunds from the same simulator (every refund
// succeeds under the bench's rates), so the bench's channel can settle
// refunds too.
func (f *forgetful) LookupRefund(ctx context.Context, r recon.Refund) (recon.RefundLookup, error) {
	return f.current().LookupRefund(ctx, r)
}

// current counts one call and returns the simulator to answer it.
func (f *forgetful) current() *simulator.Sim {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sim == nil || f.n%forgetEvery == 0 {
		f.sim = simulator.New(f.cfg)
	}
	f.n++
	return f.sim
}

// latencies records lookup-to-commit times; it is the bench's Observer.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) Lookup(string, string, time.Duration) {}
func (l *latencies) Transition(recon.Status)              {}
func (l *latencies) Mismatch(recon.MismatchKind)          {}
func (l *latencies) Conflict()                            {}
func (l *latencies) RunFinished(string, string, time.Duration, time.Time) {
}
func (l *latencies) Processed(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentiles() (time.Duration, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	return l.d[len(l.d)/2], l.d[len(l.d)*99/100]
}

// peakRSS reads the process's high-water resident set size.
func peakRSS() string { return procStatus("VmHWM:") }

// procStatus reads one field of /proc/self/status ("unknown" elsewhere).
func procStatus(field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			return strings.TrimSpace(strings.TrimPrefix(line, field))
		}
	}
	return "unknown"
}
