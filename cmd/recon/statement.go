package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	_ "time/tzdata" // statements.timezone in images without a zoneinfo database

	"github.com/spf13/cobra"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/channel/stripe"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

func init() {
	extraCommands = append(extraCommands, (*app).statementCommand)
}

// stmtFlags are the flags of the statement commands.
type stmtFlags struct {
	channel, date, file, output string
	dryRun, failOnMismatch      bool
	pushgateway                 string
	from, to                    string
}

func (a *app) statementCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "statement", Short: "Fetch, import and reconcile the channels' daily statements (CONTRACT §8)"}
	sub := func(use, short string, args cobra.PositionalArgs, flags func(*cobra.Command, *stmtFlags), run func(context.Context, Config, *stmtFlags) error) *cobra.Command {
		f := &stmtFlags{}
		c := &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if f.output != "text" && f.output != "json" {
				return usageErr("--output must be text or json, not %q", f.output)
			}
			if f.date != "" {
				if _, err := time.Parse(time.DateOnly, f.date); err != nil {
					return usageErr("--date %q is not YYYY-MM-DD", f.date)
				}
			}
			if err := checkPushgateway(f.pushgateway); err != nil {
				return err
			}
			return run(cmd.Context(), cfg, f)
		}}
		c.Flags().StringVar(&f.output, "output", "text", "summary format: text or json")
		flags(c, f)
		return c
	}
	day := func(required bool) func(*cobra.Command, *stmtFlags) {
		return func(c *cobra.Command, f *stmtFlags) {
			c.Flags().StringVar(&f.channel, "channel", "", "the channel (a channels[].name)")
			if required {
				c.Flags().StringVar(&f.date, "date", "", "the statement day, YYYY-MM-DD in statements.timezone")
				_ = c.MarkFlagRequired("channel")
				_ = c.MarkFlagRequired("date")
			} else {
				c.Flags().StringVar(&f.date, "date", "", "the statement day, YYYY-MM-DD in statements.timezone (default: yesterday there)")
			}
		}
	}
	compare := func(c *cobra.Command, f *stmtFlags) {
		c.Flags().BoolVar(&f.failOnMismatch, "fail-on-mismatch", false, "exit 3 when new mismatches were found")
		pushgatewayFlag(c, &f.pushgateway)
	}
	cmd.AddCommand(
		sub("fetch", "Download a channel's statement of a day, verify it and store its lines", cobra.NoArgs, day(true),
			func(ctx context.Context, cfg Config, f *stmtFlags) error {
				return a.statementJob(ctx, cfg, f, func(ctx context.Context, j *jobs.Statements, ch jobs.StatementChannel) (jobs.StatementResult, error) {
					return j.Fetch(ctx, ch, f.date)
				})
			}),
		sub("import", "Store a statement file downloaded by hand", cobra.NoArgs, func(c *cobra.Command, f *stmtFlags) {
			day(true)(c, f)
			c.Flags().StringVar(&f.file, "file", "", "the statement file, as the channel serves it")
			_ = c.MarkFlagRequired("file")
		}, func(ctx context.Context, cfg Config, f *stmtFlags) error {
			// A file that cannot be read is a mistyped flag, not a
			// statement that failed: nothing is recorded for the day.
			st, err := os.Stat(f.file)
			var pe *os.PathError
			switch {
			case errors.As(err, &pe):
				return usageErr("--file %q: %v", f.file, pe.Err)
			case err != nil:
				return usageErr("--file %q: %v", f.file, err)
			case !st.Mode().IsRegular():
				return usageErr("--file %q is not a file", f.file)
			}
			return a.statementJob(ctx, cfg, f, func(ctx context.Context, j *jobs.Statements, ch jobs.StatementChannel) (jobs.StatementResult, error) {
				return j.Import(ctx, ch, f.date, f.file)
			})
		}),
		sub("reconcile", "Compare a stored statement with the local orders, both ways", cobra.NoArgs, func(c *cobra.Command, f *stmtFlags) {
			day(true)(c, f)
			compare(c, f)
			c.Flags().BoolVar(&f.dryRun, "dry-run", false, "compare and report, but write nothing except the run record")
		}, func(ctx context.Context, cfg Config, f *stmtFlags) error {
			return a.statementJob(ctx, cfg, f, func(ctx context.Context, j *jobs.Statements, ch jobs.StatementChannel) (jobs.StatementResult, error) {
				return j.Reconcile(ctx, ch, f.date, f.dryRun)
			})
		}),
		sub("run", "Fetch and reconcile the statement of every channel that has statements (default: yesterday)", cobra.NoArgs, func(c *cobra.Command, f *stmtFlags) {
			day(false)(c, f)
			compare(c, f)
		}, func(ctx context.Context, cfg Config, f *stmtFlags) error {
			if f.date == "" {
				f.date = jobs.Yesterday(time.Now(), cfg.Statements.Location())
			}
			return a.statementJob(ctx, cfg, f, func(ctx context.Context, j *jobs.Statements, ch jobs.StatementChannel) (jobs.StatementResult, error) {
				return j.Run(ctx, ch, f.date)
			})
		}),
		sub("list", "List the stored statements", cobra.NoArgs, func(c *cobra.Command, f *stmtFlags) {
			c.Flags().StringVar(&f.channel, "channel", "", "only this channel")
			c.Flags().StringVar(&f.from, "from", "", "days on or after YYYY-MM-DD")
			c.Flags().StringVar(&f.to, "to", "", "days on or before YYYY-MM-DD")
		}, a.listStatements),
	)
	return cmd
}

// statementChannels builds the channels of cfg that have statements: the
// one named, or all when name is empty, each with its guarded lookup (the
// adapter of built, the pass's channels, when given) and its concurrency
// and breaker. A named channel without a statement API is a usage error
// that says so.
func (a *app) statementChannels(cfg Config, store *repo.Store, name string, built map[string]jobs.Channel) ([]jobs.StatementChannel, error) {
	var out []jobs.StatementChannel
	policies := channelPolicies(cfg)
	for i, cc := range cfg.Channels {
		if name != "" && cc.Name != name {
			continue
		}
		g, ok := built[cc.Name].(*channel.Guarded)
		if !ok {
			var err error
			if g, err = a.guardedChannel(cfg, i); err != nil {
				return nil, err
			}
		}
		src, ok := g.Inner.(channel.Statements)
		if !ok {
			if name != "" {
				return nil, usageErr("channel %q (kind %s) has no statement API: recon cannot fetch or parse its statements", cc.Name, cc.Kind)
			}
			a.log.Info("channel has no statement API; skipped", "channel", cc.Name, "kind", cc.Kind)
			continue
		}
		if l, ok := g.Inner.(channel.StatementLimiter); ok {
			l.SetStatementLimits(cfg.Statements.Limits())
		}
		if st, ok := g.Inner.(*stripe.Client); ok {
			st.SetStatementZone(cfg.Statements.Location()) // Stripe's days are the configured zone's
		}
		if sim, ok := g.Inner.(*simulator.Sim); ok {
			sim.SetStatementOrders(storeOrders{s: store, channel: cc.Name})
			sim.SetStatementZone(cfg.Statements.Location())
		}
		out = append(out, jobs.StatementChannel{Name: cc.Name, Source: src, FeeRate: cc.FeeRate, Lookup: g, Policy: policies[cc.Name]})
	}
	if name != "" && len(out) == 0 {
		return nil, usageErr("--channel %q: no such channel in %s", name, cfg.path)
	}
	return out, nil
}

// statementJob runs do for the channel of f (every statement channel when
// none is named), each under its channel's statement lease, prints each
// result and maps the outcome to the exit code.
func (a *app) statementJob(ctx context.Context, cfg Config, f *stmtFlags, do func(context.Context, *jobs.Statements, jobs.StatementChannel) (jobs.StatementResult, error)) error {
	store, err := a.open(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	chans, err := a.statementChannels(cfg, store, f.channel, nil)
	if err != nil {
		return err
	}
	if len(chans) == 0 {
		return usageErr("no channel in %s has a statement API", cfg.path)
	}
	j := a.statementsJob(cfg, store)
	if isTerminal(a.stderr) {
		j.Progress = func(n int64) { fmt.Fprintf(a.stderr, "\rimporting: %d lines", n) }
		j.ProgressEvery = 10000
	} else {
		j.Progress = func(n int64) {
			if n > 0 && n%500000 == 0 {
				a.log.Info("statement import progress", "lines", n)
			}
		}
		j.ProgressEvery = 500000
	}
	pushTo := a.pushgateway(cfg, f.pushgateway, f.dryRun)
	var failed []string
	var newMismatches int64
	for _, ch := range chans {
		// Each channel's series go to its own group (statement_channel: the
		// series carry channel already): a pass of one channel must not
		// replace the others' (the missing-statement alert reads them all).
		var metrics *jobs.Metrics
		if pushTo != "" {
			metrics = jobs.NewMetrics()
			j.Observer = metrics
			store.ObserveConflicts(metrics.DBConflict)
		}
		var res jobs.StatementResult
		run := func(ctx context.Context) error {
			var err error
			res, err = do(ctx, j, ch)
			return err
		}
		var jobErr error
		if f.dryRun {
			jobErr = run(ctx)
		} else {
			held, err := a.underLease(ctx, cfg, store, jobs.StatementLease(ch.Name), run)
			if held != nil {
				if err := printSkipped(a.stdout, f.output, jobs.StatementResult{Channel: ch.Name, Day: f.date}, held); err != nil {
					return err
				}
				continue
			}
			jobErr = err
		}
		if isTerminal(a.stderr) && j.Progress != nil && res.Source != "" {
			fmt.Fprintln(a.stderr)
		}
		if jobErr != nil && res.Error == "" {
			res.Error = jobErr.Error()
		}
		if res.Channel != "" {
			if err := printStatementResult(a.stdout, f.output, res); err != nil {
				return err
			}
		}
		if jobErr != nil {
			if errors.Is(jobErr, context.Canceled) {
				return jobErr
			}
			a.log.Error("statement failed", "channel", ch.Name, "day", f.date, "error", jobErr)
			failed = append(failed, fmt.Sprintf("%s: %v", ch.Name, jobErr))
		}
		newMismatches += res.NewMismatches
		if metrics != nil {
			a.push(ctx, metrics, pushTo, jobs.KindStatement, repo.Shard{}, "statement_channel", ch.Name)
		}
	}
	if len(failed) > 0 {
		if len(chans) == 1 {
			return errors.New(strings.TrimPrefix(failed[0], chans[0].Name+": "))
		}
		return fmt.Errorf("%d of %d statements failed: %s", len(failed), len(chans), strings.Join(failed, "; "))
	}
	if f.failOnMismatch && newMismatches > 0 {
		return &exitError{code: exitMismatch, err: fmt.Errorf("%d new mismatches found", newMismatches)}
	}
	return nil
}

func printStatementResult(w io.Writer, format string, res jobs.StatementResult) error {
	if format == "json" {
		return json.NewEncoder(w).Encode(res)
	}
	mode := ""
	if res.DryRun {
		mode = " (dry run: nothing written)"
	}
	run := ""
	if res.RunID != 0 {
		run = fmt.Sprintf(" (run %d)", res.RunID)
	}
	fmt.Fprintf(w, "statement %s %s %s%s%s\n", res.Channel, res.Day, res.Status, run, mode)
	if res.SHA256 != "" {
		fmt.Fprintf(w, "  file          %s sha256 %s\n", res.Origin, res.SHA256)
	}
	fmt.Fprintf(w, "  lines         %d (%d payments, %d refunds, fees %d)\n", res.Lines, res.Payments, res.Refunds, res.Fees)
	if res.RunID != 0 {
		fmt.Fprintf(w, "  matched       %d\n  lookups       %d (%d failed or not made: due for the next pass)\n  settled       %d (confirmed by the channel's lookup)\n  statement conflicts %d (not confirmed: nothing moved)\n",
			res.Matched, res.Lookups, res.LookupsFailed, res.Settled, res.StatementConflicts)
		fmt.Fprintf(w, "  channel only  %d\n  local only    %d\n  amount        %d\n  refund        %d\n  fee           %d\n  status        %d\n  new mismatches %d\n",
			res.ChannelOnly, res.LocalOnly, res.AmountMismatches, res.RefundMismatches,
			res.FeeMismatches, res.StatusMismatches, res.NewMismatches)
	}
	if len(res.Found) > 0 {
		fmt.Fprintln(w, "mismatches found:")
		found := append([]jobs.Found(nil), res.Found...)
		sort.SliceStable(found, func(i, j int) bool { return found[i].Kind < found[j].Kind })
		for _, m := range found {
			fmt.Fprintf(w, "  %-26s %-20s %s\n", m.Kind, m.OrderNo, m.Detail)
		}
	}
	if res.Error != "" {
		fmt.Fprintf(w, "error: %s\n", res.Error)
	}
	return nil
}

func (a *app) listStatements(ctx context.Context, cfg Config, f *stmtFlags) error {
	store, err := a.open(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	list, err := store.ListStatements(ctx, repo.StatementFilter{Channel: f.channel, From: f.from, To: f.to})
	if err != nil {
		return err
	}
	if f.output == "json" {
		if list == nil {
			list = []repo.Statement{}
		}
		return json.NewEncoder(a.stdout).Encode(list)
	}
	fmt.Fprintf(a.stdout, "%-12s %-16s %-10s %8s %8s %8s %9s %8s %8s  %s\n", "day", "channel", "status", "lines", "matched", "settled", "conflicts", "ch-only", "loc-only", "error")
	for _, st := range list {
		fmt.Fprintf(a.stdout, "%-12s %-16s %-10s %8d %8d %8d %9d %8d %8d  %s\n", st.Day, st.Channel, st.Status, st.Lines,
			st.Matched, st.Settled, st.StatementConflicts, st.ChannelOnly, st.LocalOnly, st.Error)
	}
	return nil
}

// statementsJob is the statement job of cfg on store.
func (a *app) statementsJob(cfg Config, store *repo.Store) *jobs.Statements {
	return &jobs.Statements{Store: store, Clock: recon.SystemClock{}, Logger: a.log, Zone: cfg.Statements.Location(),
		TempDir: cfg.Statements.Dir, Owner: owner(), CommitBatch: cfg.Reconcile.CommitBatch, Heartbeat: cfg.Reconcile.Heartbeat.D(),
		Concurrency: cfg.Reconcile.Concurrency}
}

// demoStatements reconciles the simulated channels' statements of the days
// the demo's payments fall on (in statements.timezone), then of the day
// after, so the demo shows every statement finding: settlements the
// channel's lookups confirm, a line they do not, channel-only and
// local-only payments, amount, refund and fee mismatches. The statements
// are the pass's simulators' own (chans), so their lookups answer as they
// did in the pass.
func (a *app) demoStatements(ctx context.Context, cfg Config, store *repo.Store, chans map[string]jobs.Channel) error {
	stmts, err := a.statementChannels(cfg, store, "", chans)
	if err != nil {
		return err
	}
	loc := cfg.Statements.Location()
	days := demoStatementDays(time.Now(), loc)
	j := a.statementsJob(cfg, store)
	fmt.Fprintf(a.stdout, "\nstatement reconciliation (the simulator's statements of %s, %s):\n", strings.Join(days, ", "), loc)
	for _, day := range days {
		for _, ch := range stmts {
			res, err := j.Run(ctx, ch, day)
			if err != nil {
				return err
			}
			res.Found = nil
			if err := printStatementResult(a.stdout, "text", res); err != nil {
				return err
			}
		}
	}
	return nil
}

// demoStatementDays are the days, in loc, of the demo's payments (made
// within demoHistory before now), and the day after the last: the one
// whose statement tells a payment missing from both its day's and the
// next day's (LOCAL_ONLY). Near midnight there, the payments fall on two
// days.
func demoStatementDays(now time.Time, loc *time.Location) []string {
	first, last := now.Add(-demoHistory).In(loc), now.In(loc)
	day := time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, loc)
	var out []string
	for ; !day.After(last); day = day.AddDate(0, 0, 1) {
		out = append(out, day.Format(time.DateOnly))
	}
	return append(out, day.Format(time.DateOnly))
}
