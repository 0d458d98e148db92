package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

func init() {
	extraCommands = append(extraCommands, (*app).reportCommand, (*app).mismatchCommand, (*app).checkCommand)
	demoReport = writeDemoReport
}

// reportFlags select mismatches for report and mismatch list.
type reportFlags struct {
	from, to, kind, channel, merchant, resolution, refund string
}

func (f *reportFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.from, "from", "", "detected at or after, RFC 3339 or YYYY-MM-DD (UTC)")
	cmd.Flags().StringVar(&f.to, "to", "", "detected before, RFC 3339 or YYYY-MM-DD (UTC)")
	cmd.Flags().StringVar(&f.kind, "kind", "", "only this mismatch kind, e.g. AMOUNT_MISMATCH")
	cmd.Flags().StringVar(&f.channel, "channel", "", "only this channel")
	cmd.Flags().StringVar(&f.merchant, "merchant", "", "only this merchant id")
	cmd.Flags().StringVar(&f.resolution, "resolution", "", "only OPEN, ACKNOWLEDGED, RESOLVED or UNRESOLVED (OPEN and ACKNOWLEDGED)")
	cmd.Flags().StringVar(&f.refund, "refund", "", "only the mismatches of this refund (refund_no)")
}

func (f *reportFlags) filter() (repo.MismatchFilter, string, error) {
	q := jobs.ReportQuery{From: f.from, To: f.to, Kind: f.kind, Channel: f.channel, Merchant: f.merchant, Resolution: f.resolution,
		Refund: f.refund}
	mf, desc, err := q.Filter(time.UTC, func(field string) string { return "--" + field })
	if err != nil {
		return mf, "", usageErr("%v", err)
	}
	return mf, desc, nil
}

func (a *app) reportCommand() *cobra.Command {
	var f reportFlags
	var format, out string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write the mismatch report (csv, json or html) for finance",
		Long: "Write the mismatches detected in [--from, --to) as CSV, JSON or one self-contained HTML page.\n" +
			"The CSV starts with a UTF-8 byte order mark so Excel shows non-ASCII (e.g. Chinese) merchant names;\n" +
			"amounts appear in minor units and as decimals in the currency's major unit.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "csv" && format != "json" && format != "html" {
				return usageErr("--format must be csv, json or html, not %q", format)
			}
			mf, desc, err := f.filter()
			if err != nil {
				return err
			}
			return a.withReadOnlyStore(cmd, func(ctx context.Context, store *repo.Store) error {
				rep, err := buildReport(ctx, store, mf, desc, time.Now().UTC())
				if err != nil {
					return err
				}
				return writeReport(rep, format, out, a.stdout)
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&format, "format", "csv", "csv, json or html")
	cmd.Flags().StringVar(&out, "out", "", "file to write (default: standard output); written whole or not at all")
	return cmd
}

func buildReport(ctx context.Context, store *repo.Store, mf repo.MismatchFilter, desc string, now time.Time) (jobs.Report, error) {
	rep, err := jobs.BuildReport(ctx, store, mf, desc, now)
	if err != nil {
		return rep, err
	}
	// The statements of the period's days (bill dates; the period is UTC).
	sf := repo.StatementFilter{Channel: mf.Channel}
	if !mf.From.IsZero() {
		sf.From = mf.From.UTC().Format(time.DateOnly)
	}
	if !mf.To.IsZero() {
		sf.To = mf.To.UTC().Add(-time.Nanosecond).Format(time.DateOnly)
	}
	if mf.Kind == "" && mf.Merchant == "" {
		if rep.Statements, err = store.ListStatements(ctx, sf); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// writeReport writes to stdout, or to a temporary file next to out renamed
// into place, so a reader never sees a half-written report.
func writeReport(rep jobs.Report, format, out string, stdout io.Writer) error {
	write := func(w io.Writer) error {
		switch format {
		case "json":
			return rep.WriteJSON(w)
		case "html":
			return rep.WriteHTML(w)
		}
		return rep.WriteCSV(w)
	}
	if out == "" {
		return write(stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write report %s: %w", out, err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := write(tmp); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write report %s: %w", out, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write report %s: %w", out, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write report %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("write report %s: %w", out, err)
	}
	return nil
}

// writeDemoReport writes the demo's mismatches as HTML and CSV into its
// directory and prints where.
func writeDemoReport(ctx context.Context, a *app, store *repo.Store, dir string) error {
	rep, err := buildReport(ctx, store, repo.MismatchFilter{}, "demo", time.Now().UTC())
	if err != nil {
		return err
	}
	html, csvPath := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.csv")
	if err := writeReport(rep, "html", html, nil); err != nil {
		return err
	}
	if err := writeReport(rep, "csv", csvPath, nil); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nmismatch report: %s (open in a browser)\n                 %s (opens in Excel)\n", html, csvPath)
	return nil
}

func (a *app) withStore(cmd *cobra.Command, fn func(ctx context.Context, store *repo.Store) error) error {
	return a.withStoreOpts(cmd, repo.Options{Existing: true}, fn)
}

// withReadOnlyStore is withStore for commands that only read: a read-only
// SQLite file (or directory) does not stop them.
func (a *app) withReadOnlyStore(cmd *cobra.Command, fn func(ctx context.Context, store *repo.Store) error) error {
	return a.withStoreOpts(cmd, repo.Options{ReadOnly: true}, fn)
}

func (a *app) withStoreOpts(cmd *cobra.Command, opt repo.Options, fn func(ctx context.Context, store *repo.Store) error) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	store, err := a.openWith(cmd.Context(), cfg, opt)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(cmd.Context(), store)
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usageErr("mismatch id must be a positive number, not %q", s)
	}
	return id, nil
}

// resolutionErr maps the repo's answers to exit codes: a missing mismatch or
// one in the wrong state is the operator's mistake (2), the rest failures.
func resolutionErr(err error) error {
	if errors.Is(err, recon.ErrNotFound) || errors.Is(err, repo.ErrWrongResolution) {
		return &exitError{code: exitUsage, err: err}
	}
	return err
}

func (a *app) mismatchCommand() *cobra.Command {
	root := &cobra.Command{Use: "mismatch", Short: "List mismatches and move them through OPEN, ACKNOWLEDGED, RESOLVED"}
	var f reportFlags
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List mismatches (default: those not RESOLVED)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mf, _, err := f.filter()
			if err != nil {
				return err
			}
			mf.Limit, mf.Unresolved = limit, f.resolution == ""
			if limit > 0 {
				mf.Limit = limit + 1 // one more tells whether there are more
			}
			return a.withReadOnlyStore(cmd, func(ctx context.Context, store *repo.Store) error {
				ms, err := store.ListMismatches(ctx, mf)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tDETECTED\tORDER\tCHANNEL\tKIND\tLOCAL\tCHANNEL AMOUNT\tRESOLUTION\tBY")
				more := limit > 0 && len(ms) > limit
				if more {
					ms = ms[:limit]
				}
				for _, m := range ms {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s %s\t%s %s\t%s\t%s\n", m.ID, m.DetectedAt.Format(time.RFC3339),
						m.OrderNo, m.Channel, m.Kind, jobs.FormatMinor(m.LocalAmount, m.LocalCurrency), m.LocalCurrency,
						jobs.FormatMinor(m.ChannelAmount, orDefault(m.ChannelCurrency, m.LocalCurrency)), m.ChannelCurrency,
						m.Resolution, m.ResolvedBy)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if more {
					fmt.Fprintf(a.stdout, "(first %d shown, oldest first; --limit 0 shows all, or narrow with --from, --kind, --channel)\n", limit)
				}
				return nil
			})
		},
	}
	f.register(list)
	list.Flags().IntVar(&limit, "limit", 200, "show at most N mismatches (0: all)")

	var by, note string
	ack := &cobra.Command{
		Use:   "ack ID --by NAME",
		Short: "Acknowledge an OPEN mismatch",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			if strings.TrimSpace(by) == "" {
				return usageErr("--by NAME is required")
			}
			return a.withStore(cmd, func(ctx context.Context, store *repo.Store) error {
				if err := store.Acknowledge(ctx, id, cliActor(by), time.Now().UTC()); err != nil {
					return resolutionErr(err)
				}
				fmt.Fprintf(a.stdout, "mismatch %d acknowledged by %s\n", id, by)
				return nil
			})
		},
	}
	ack.Flags().StringVar(&by, "by", "", "who acknowledges it")
	resolve := &cobra.Command{
		Use:   "resolve ID --by NAME --note TEXT",
		Short: "Resolve an OPEN or ACKNOWLEDGED mismatch, saying why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			if strings.TrimSpace(by) == "" || strings.TrimSpace(note) == "" {
				return usageErr("--by NAME and --note TEXT are required")
			}
			return a.withStore(cmd, func(ctx context.Context, store *repo.Store) error {
				if err := store.Resolve(ctx, id, cliActor(by), note, time.Now().UTC()); err != nil {
					return resolutionErr(err)
				}
				fmt.Fprintf(a.stdout, "mismatch %d resolved by %s\n", id, by)
				return nil
			})
		},
	}
	resolve.Flags().StringVar(&by, "by", "", "who resolves it")
	resolve.Flags().StringVar(&note, "note", "", "why it is resolved (kept with the mismatch)")
	history := &cobra.Command{
		Use:   "history ID",
		Short: "Show the history of a mismatch (opened, acknowledged, resolved, reopened)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return a.withReadOnlyStore(cmd, func(ctx context.Context, store *repo.Store) error {
				evs, err := store.MismatchHistory(ctx, id)
				if err != nil {
					return resolutionErr(err)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "AT\tACTION\tBY\tNOTE")
				for _, e := range evs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Action, e.By, e.Note)
				}
				return tw.Flush()
			})
		},
	}
	root.AddCommand(list, ack, resolve, history)
	return root
}

// cliActor is who the CLI records for --by NAME: "cli:NAME", so finance can
// tell a name typed on the command line from a person the console
// authenticated (recorded as their plain user name).
func cliActor(by string) string { return "cli:" + strings.TrimSpace(by) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *app) checkCommand() *cobra.Command {
	var commit bool
	var refundNo string
	cmd := &cobra.Command{
		Use:   "check ORDER_NO | --refund REFUND_NO",
		Short: "Look one order (or refund) up now: local vs channel, the decision, its history; --commit applies it",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case refundNo != "" && len(args) > 0:
				return usageErr("give either an order number or --refund REFUND_NO, not both")
			case refundNo == "" && len(args) != 1:
				return usageErr("check needs one order number, or --refund REFUND_NO")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			chans, err := a.buildChannels(cfg)
			if err != nil {
				return err
			}
			open := a.withReadOnlyStore
			if commit {
				open = a.withStore
			}
			return open(cmd, func(ctx context.Context, store *repo.Store) error {
				if refundNo != "" {
					return a.checkRefund(ctx, cfg, store, chans, refundNo, commit)
				}
				return a.check(ctx, cfg, store, chans, args[0], commit)
			})
		},
	}
	cmd.Flags().BoolVar(&commit, "commit", false, "apply the decision through the normal commit path")
	cmd.Flags().StringVar(&refundNo, "refund", "", "check this refund (refund_no) instead of an order")
	return cmd
}

func (a *app) check(ctx context.Context, cfg Config, store *repo.Store, chans map[string]jobs.Channel, orderNo string, commit bool) error {
	o, err := store.GetOrderByNo(ctx, orderNo)
	if errors.Is(err, recon.ErrNotFound) {
		return usageErr("order %s does not exist", orderNo)
	}
	if err != nil {
		return err
	}
	desk := &jobs.Desk{Store: store, Channels: chans, Policy: policyOf(cfg)}
	c, err := desk.Check(ctx, o)
	if errors.Is(err, jobs.ErrNoChannel) {
		return fmt.Errorf("check order %s: its channel %q is not in %s", orderNo, o.Channel, cfg.path)
	}
	if err != nil {
		return err
	}
	w := a.stdout
	lerr := c.LookupErr
	var res recon.LookupResult
	if c.Lookup != nil {
		res = *c.Lookup
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "order %s (id %d, merchant %s, channel %s, created %s)\n\n", o.OrderNo, o.ID, o.MerchantID, o.Channel, o.CreatedAt.Format(time.RFC3339))
	fmt.Fprintln(tw, "\tLOCAL\tCHANNEL")
	if lerr != nil {
		fmt.Fprintf(tw, "status\t%s\tlookup failed: %v\n", o.Status, lerr)
	} else {
		fmt.Fprintf(tw, "status\t%s\t%s\n", o.Status, res.Status)
		fmt.Fprintf(tw, "amount\t%s %s\t%s %s\n", jobs.FormatMinor(o.Amount, o.Currency), o.Currency,
			jobs.FormatMinor(res.Amount, orDefault(res.Currency, o.Currency)), res.Currency)
		fmt.Fprintf(tw, "txn id\t%s\t%s\n", o.ChannelTxnID, res.TxnID)
		fmt.Fprintf(tw, "paid at\t%s\t%s\n", fmtTimeP(o.PaidAt), fmtTimeP(res.PaidAt))
	}
	fmt.Fprintf(tw, "queries\t%d, next %s\t\n", o.QueryAttempts, fmtTimeP(o.NextQueryAt))
	if o.LastQueryError != "" {
		// Rows stored before channel text was cleaned may still hold escapes.
		fmt.Fprintf(tw, "last error\t%s\t\n", recon.CleanText(o.LastQueryError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	out := c.Outcome
	fmt.Fprintf(w, "\ndecision: %s\n", describeOutcome(out))

	trs, err := store.Transitions(ctx, o.ID)
	if err != nil {
		return err
	}
	if err := printHistory(ctx, w, store, trs, repo.MismatchFilter{OrderID: o.ID}); err != nil {
		return err
	}
	if !commit {
		if out.Action != recon.ActionNone {
			fmt.Fprintln(w, "\nnothing written; --commit applies the decision")
		}
		return nil
	}
	// The pass looks the order up again and decides on that answer: the
	// commit path is exactly the one a backfill takes.
	rec := a.reconciler(cfg, store, chans, recon.SystemClock{})
	r, err := rec.ProcessOne(ctx, o)
	if err != nil {
		return err
	}
	after, err := store.GetOrderByNo(ctx, orderNo)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\ncommitted: paid %d, failed %d, closed %d, rescheduled %d, mismatches %d (%d new), conflicts %d, errors %d; order is now %s (v%d)\n",
		r.Paid, r.Failed, r.Closed, r.Rescheduled, r.Mismatches, r.NewMismatches, r.Conflicts, r.Errors, after.Status, after.Version)
	return nil
}

// printHistory prints the transitions of an order or refund and its
// mismatches (those f selects).
func printHistory(ctx context.Context, w io.Writer, store *repo.Store, trs []repo.Transition, f repo.MismatchFilter) error {
	fmt.Fprintln(w, "\ntransitions:")
	if len(trs) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, t := range trs {
		fmt.Fprintf(w, "  %s  %s -> %s  v%d->v%d  by %s (run %d)\n", t.CreatedAt.Format(time.RFC3339), t.FromStatus, t.ToStatus,
			t.FromVersion, t.ToVersion, t.Source, t.RunID)
	}
	ms, err := store.ListMismatches(ctx, f)
	if err != nil {
		return err
	}
	if len(ms) > 0 {
		fmt.Fprintln(w, "\nmismatches:")
		sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
		for _, m := range ms {
			fmt.Fprintf(w, "  #%d %s %s (seen %d×, last %s)\n", m.ID, m.Kind, m.Resolution, m.Occurrences, m.LastSeenAt.Format(time.RFC3339))
		}
	}
	return nil
}

// checkRefund is check for a refund (recon check --refund).
func (a *app) checkRefund(ctx context.Context, cfg Config, store *repo.Store, chans map[string]jobs.Channel, refundNo string, commit bool) error {
	f, err := store.GetRefundByNo(ctx, refundNo)
	if errors.Is(err, recon.ErrNotFound) {
		return usageErr("refund %s does not exist", refundNo)
	}
	if err != nil {
		return err
	}
	desk := &jobs.Desk{Store: store, Channels: chans, Policy: policyOf(cfg)}
	c, err := desk.CheckRefund(ctx, f)
	switch {
	case errors.Is(err, jobs.ErrNoChannel):
		return fmt.Errorf("check refund %s: its channel %q is not in %s", refundNo, f.Channel, cfg.path)
	case errors.Is(err, channel.ErrNoRefundLookup):
		return fmt.Errorf("check refund %s: channel %q (%s) cannot look refunds up", refundNo, f.Channel, cfg.path)
	case err != nil:
		return err
	}
	w := a.stdout
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "refund %s (id %d) of order %s (id %d), merchant %s, channel %s, created %s\n\n", f.RefundNo, f.ID, f.OrderNo, f.OrderID,
		f.MerchantID, f.Channel, f.CreatedAt.Format(time.RFC3339))
	fmt.Fprintln(tw, "\tLOCAL\tCHANNEL")
	if c.LookupErr != nil {
		fmt.Fprintf(tw, "status\t%s\tlookup failed: %v\n", f.Status, c.LookupErr)
	} else {
		l := *c.Lookup
		fmt.Fprintf(tw, "status\t%s\t%s\n", f.Status, l.Status)
		fmt.Fprintf(tw, "amount\t%s %s\t%s %s\n", jobs.FormatMinor(f.Amount, f.Currency), f.Currency,
			jobs.FormatMinor(l.Amount, orDefault(l.Currency, f.Currency)), l.Currency)
		fmt.Fprintf(tw, "refund id\t%s\t%s\n", f.ChannelRefundID, l.ChannelRefundID)
		fmt.Fprintf(tw, "succeeded at\t%s\t%s\n", fmtTimeP(f.SucceededAt), fmtTimeP(l.SucceededAt))
		if l.Detail != "" {
			fmt.Fprintf(tw, "channel says\t\t%s\n", recon.CleanText(l.Detail))
		}
	}
	fmt.Fprintf(tw, "queries\t%d, next %s\t\n", f.QueryAttempts, fmtTimeP(f.NextQueryAt))
	if f.LastQueryError != "" {
		fmt.Fprintf(tw, "last error\t%s\t\n", recon.CleanText(f.LastQueryError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ndecision: %s\n", jobs.DescribeRefundOutcome(c.Outcome))
	trs, err := store.RefundTransitions(ctx, f.ID)
	if err != nil {
		return err
	}
	if err := printHistory(ctx, w, store, trs, repo.MismatchFilter{RefundNo: f.RefundNo}); err != nil {
		return err
	}
	if !commit {
		if c.Outcome.Action != recon.ActionNone {
			fmt.Fprintln(w, "\nnothing written; --commit applies the decision")
		}
		return nil
	}
	// As for orders: the pass's own path looks the refund up again and
	// decides on that answer.
	r, err := a.reconciler(cfg, store, chans, recon.SystemClock{}).ProcessRefund(ctx, f)
	if err != nil {
		return err
	}
	after, err := store.GetRefundByNo(ctx, refundNo)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\ncommitted: succeeded %d, failed %d, rescheduled %d, mismatches %d (%d new), conflicts %d, errors %d; refund is now %s (v%d)\n",
		r.RefundsSucceeded, r.RefundsFailed, r.RefundsRescheduled, r.Mismatches, r.NewMismatches, r.Conflicts, r.Errors, after.Status, after.Version)
	return nil
}

func describeOutcome(out recon.Outcome) string { return jobs.DescribeOutcome(out) }

func fmtTimeP(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
