package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

// benchStatementDay is the day the statement benchmark reconciles.
const benchStatementDay = "2026-11-22"

func (a *app) benchStatementCommand() *cobra.Command {
	var lines int
	var keep bool
	var cpuProfile string
	var look benchLookups
	cmd := &cobra.Command{
		Use:   "statement",
		Short: "Import and reconcile an N-line statement against N seeded orders in a scratch database",
		Long: `bench statement creates a scratch database next to the configured one (MySQL:
<db>_bench_statement; SQLite: a temporary file), seeds
N orders of one day (99% PAID, 1% still PENDING), writes the day's statement
(the httpjson CSV: one payment per order, a partial refund every 200 orders,
a few payments of unknown orders) and times its import and its
reconciliation, printing where the time went and the peak RSS. The PENDING
orders are settled as in production: each line that claims one paid is
confirmed by a lookup at the in-process simulator, through the channel's
rate limit (--rate-limit) and retries, with --latency per lookup.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if lines < 1 {
				return usageErr("--lines must be at least 1")
			}
			return a.benchStatement(cmd.Context(), cfg, lines, keep, cpuProfile, look)
		},
	}
	cmd.Flags().IntVar(&lines, "lines", 1000000, "payment lines (and orders) of the statement")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the scratch database")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the import and reconciliation to this file")
	cmd.Flags().Float64Var(&look.rateLimit, "rate-limit", 0, "the channel's rate limit in lookups/second (0: none)")
	cmd.Flags().DurationVar(&look.latency, "latency", 0, "simulated channel latency per lookup")
	cmd.Flags().IntVar(&look.concurrency, "concurrency", 0, "lookups in flight at once (default reconcile.concurrency)")
	return cmd
}

// benchLookups shapes the simulated channel whose lookups settle the
// statement's PENDING orders.
type benchLookups struct {
	rateLimit   float64
	latency     time.Duration
	concurrency int
}

func (a *app) benchStatement(ctx context.Context, cfg Config, n int, keep bool, cpuProfile string, look benchLookups) error {
	driver := repo.Dialect(cfg.Database.Driver)
	store, dsn, cleanup, err := scratchStore(ctx, driver, cfg.Database.DSN, "_bench_statement", keep, 8)
	if err != nil {
		return err
	}
	defer cleanup()
	loc := cfg.Statements.Location()
	dayStart, _, err := jobs.DayBounds(benchStatementDay, loc)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "bench statement: %s, %d orders and lines, day %s (%s)\n", driver, n, benchStatementDay, loc)

	t := time.Now()
	if err := seedStatementOrders(ctx, driver, dsn, n, dayStart); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "seeded orders in     %s\n", time.Since(t).Round(time.Millisecond))
	f, err := os.CreateTemp(cfg.Statements.Dir, "recon-bench-statement-*.csv")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// The channel's lookups answer PAID with the order's amount; the
	// statement names its PENDING orders' payments by the simulator's
	// transaction ids, so the lookups confirm them.
	sim := simulator.New(simulator.Config{Seed: 1, PaidRate: 1, Latency: look.latency})
	t = time.Now()
	total, err := writeBenchStatement(f, n, dayStart, sim.TxnID)
	if err != nil {
		return err
	}
	st, _ := f.Stat()
	fmt.Fprintf(a.stdout, "wrote statement      %s (%d lines, %.1f MB)\n", time.Since(t).Round(time.Millisecond), total, float64(st.Size())/1e6)

	parser, err := httpjson.New(httpjson.Config{Name: "bench", BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		return err
	}
	t = time.Now()
	var parsed int64
	if _, err := parser.ParseStatement(f, st.Size(), benchStatementDay, loc, func(recon.StatementLine) error { parsed++; return nil }); err != nil {
		return err
	}
	parseTime := time.Since(t)
	fmt.Fprintf(a.stdout, "parse only           %s (%.0f lines/s)\n", parseTime.Round(time.Millisecond), float64(parsed)/parseTime.Seconds())

	stop := func() {}
	if cpuProfile != "" {
		if stop, err = startCPUProfile(cpuProfile); err != nil {
			return err
		}
	}
	j := a.statementsJob(cfg, store)
	j.Owner, j.PageSize = "bench", 5000
	if look.concurrency > 0 {
		j.Concurrency = look.concurrency
	}
	lookup := channel.NewGuarded("bench", sim, look.rateLimit, channel.RetryPolicy{InitialInterval: 10 * time.Millisecond, MaxElapsed: time.Second})
	ch := jobs.StatementChannel{Name: "bench", Source: parser, FeeRate: 0.006, Lookup: lookup}
	begin := time.Now()
	imp, err := j.Import(ctx, ch, benchStatementDay, f.Name())
	if err != nil {
		stop()
		return err
	}
	importTime := time.Since(begin)
	fmt.Fprintf(a.stdout, "import               %s (%.0f lines/s; parse twice, multi-row inserts, order matching, 10,000 lines a transaction)\n",
		importTime.Round(time.Millisecond), float64(imp.Lines)/importTime.Seconds())
	t = time.Now()
	res, err := j.Reconcile(ctx, ch, benchStatementDay, false)
	stop()
	if err != nil {
		return err
	}
	recTime := time.Since(t)
	fmt.Fprintf(a.stdout, "reconcile            %s (%.0f lines/s)\n", recTime.Round(time.Millisecond), float64(res.Lines)/recTime.Seconds())
	for _, p := range res.Phases {
		fmt.Fprintf(a.stdout, "  %-18s %s\n", p.Name, p.Took.Round(time.Millisecond))
	}
	fmt.Fprintf(a.stdout, "  matched %d, settled %d, statement conflicts %d, channel only %d, amount %d, refund %d, fee %d, new mismatches %d\n",
		res.Matched, res.Settled, res.StatementConflicts, res.ChannelOnly, res.AmountMismatches, res.RefundMismatches, res.FeeMismatches, res.NewMismatches)
	for _, p := range res.Phases {
		if p.Name == jobs.PhaseLookups && res.Lookups > 0 {
			limit := "no rate limit"
			if look.rateLimit > 0 {
				limit = fmt.Sprintf("rate_limit %g/s: at least %s", look.rateLimit,
					(time.Duration(float64(res.Lookups) / look.rateLimit * float64(time.Second))).Round(time.Millisecond))
			}
			fmt.Fprintf(a.stdout, "  lookups %d (%d failed) in %s (%.0f/s; %s), latency %s, concurrency %d\n",
				res.Lookups, res.LookupsFailed, p.Took.Round(time.Millisecond), float64(res.Lookups)/p.Took.Seconds(), limit, look.latency, j.Concurrency)
		}
	}
	all := importTime + recTime
	fmt.Fprintf(a.stdout, "import + reconcile   %s (%.0f lines/s), peak RSS %s\n", all.Round(time.Millisecond), float64(res.Lines)/all.Seconds(), peakRSS())
	return nil
}

// seedStatementOrders inserts n orders of channel bench paid through the
// day starting at dayStart: every hundredth still PENDING (the statement
// has its lookup settle it), the rest PAID with their transaction id.
func seedStatementOrders(ctx context.Context, driver repo.Dialect, dsn string, n int, dayStart time.Time) error {
	return insertRowsParallel(ctx, driver, dsn, n, func(start, end int, args []any) (string, []any) {
		for i := start; i < end; i++ {
			paid := benchPaidAt(i, n, dayStart)
			created := paid.Add(-5 * time.Second)
			var status, txn, paidAt any = "PAID", benchTxn(i), paid
			if i%100 == 7 {
				status, txn, paidAt = "PENDING", nil, nil
			}
			args = append(args, benchOrderNo(i), benchAmount(i), created, created, status, txn, paidAt)
		}
		return "INSERT INTO payment_orders (order_no, amount, created_at, updated_at, status, channel_txn_id, paid_at, merchant_id, channel, currency) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, 'm1', 'bench', 'CNY'), ", end-start), ", "), args
	})
}

func benchOrderNo(i int) string { return fmt.Sprintf("S%09d", i) }
func benchTxn(i int) string     { return fmt.Sprintf("T%09d", i) }
func benchAmount(i int) int64   { return int64(100 + i%9000) }

// benchPaidAt spreads n payments over the day, in whole seconds (in
// nanoseconds, i × the day overflows int64 past 106,751 orders).
func benchPaidAt(i, n int, dayStart time.Time) time.Time {
	const daySeconds = int64((24*time.Hour - time.Second) / time.Second)
	return dayStart.Add(time.Duration(int64(i)*daySeconds/int64(n)) * time.Second)
}

// writeBenchStatement writes the day's statement of the seeded orders, the
// PENDING ones' payments under the transaction ids pendingTxn gives, and
// returns its line count.
func writeBenchStatement(w io.Writer, n int, dayStart time.Time, pendingTxn func(orderNo string) string) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	sw := httpjson.NewStatementWriter(bw)
	lines := 0
	write := func(l recon.StatementLine) error { lines++; return sw.Write(l) }
	for i := 0; i < n; i++ {
		amount := benchAmount(i)
		at := benchPaidAt(i, n, dayStart)
		txn := benchTxn(i)
		if i%100 == 7 {
			txn = pendingTxn(benchOrderNo(i))
		}
		if err := write(recon.StatementLine{Kind: recon.LinePayment, OrderNo: benchOrderNo(i), ChannelTxnID: txn,
			Amount: amount, Fee: recon.ExpectedFee(amount, 0.006), Currency: "CNY", OccurredAt: at}); err != nil {
			return 0, err
		}
		if i%200 == 3 {
			if err := write(recon.StatementLine{Kind: recon.LineRefund, OrderNo: benchOrderNo(i), ChannelTxnID: benchTxn(i),
				RefundNo: "R" + benchTxn(i), Amount: amount / 2, Currency: "CNY", OccurredAt: at.Add(time.Second)}); err != nil {
				return 0, err
			}
		}
		if i%100000 == 50 {
			if err := write(recon.StatementLine{Kind: recon.LinePayment, OrderNo: "X" + benchOrderNo(i), ChannelTxnID: "X" + benchTxn(i),
				Amount: amount, Fee: recon.ExpectedFee(amount, 0.006), Currency: "CNY", OccurredAt: at}); err != nil {
				return 0, err
			}
		}
	}
	if err := sw.Close(); err != nil {
		return 0, err
	}
	return lines, bw.Flush()
}
