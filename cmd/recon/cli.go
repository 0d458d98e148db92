package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

// Exit codes (CONTRACT §4).
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitMismatch = 3
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// Main runs the recon command line and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.closeIdleConnections()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	var ce *ConfigError
	switch {
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintln(stderr, "recon:", ee.err)
		}
		return ee.code
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, "recon: invalid config:", ce)
		return exitUsage
	case isUsage(err):
		fmt.Fprintln(stderr, "recon:", err)
		return exitUsage
	case errors.Is(err, jobs.ErrLeaseLost):
		var lost *jobs.LeaseLostError
		if errors.As(err, &lost) && !lost.TakenOver {
			fmt.Fprintf(stderr, "recon: the pass's lease %s could not be renewed before it expired (%v); the pass stopped, so that no other process runs it at the same time, and was recorded as aborted\n", lost.Name, lost.Err)
			return exitFailed
		}
		fmt.Fprintln(stderr, "recon: another process took over this pass's lease; the pass stopped and was recorded as aborted")
		return exitFailed
	case errors.Is(err, jobs.ErrShutdown) || errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "recon: stopped by signal; the pass was recorded as aborted")
		return exitFailed
	}
	fmt.Fprintln(stderr, "recon:", err)
	return exitFailed
}

// isUsage recognises cobra's own usage errors (unknown flag, bad argument).
func isUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown command", "unknown shorthand", "invalid argument", "flag needs an argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "recon",
		Short:         "Reconcile PENDING payment orders against their channels",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.configPath, "config", "config.yaml", "config file")
	root.Version = thisBuild().Version
	root.SetVersionTemplate("{{with .Annotations}}{{.build}}{{end}}")
	root.Annotations = map[string]string{"build": buildText(thisBuild()).String()}
	root.AddCommand(a.versionCommand(), a.migrateCommand(), a.runCommand(), a.backfillCommand(), a.scheduleCommand(),
		a.demoCommand(), a.benchCommand())
	for _, extra := range extraCommands {
		root.AddCommand(extra(a))
	}
	return root
}

// extraCommands lets other files of this package add commands.
var extraCommands []func(*app) *cobra.Command

func (a *app) migrateCommand() *cobra.Command {
	var print bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if print {
				ms, err := repo.Migrations(repo.Dialect(cfg.Database.Driver))
				if err != nil {
					return err
				}
				for _, m := range ms {
					fmt.Fprintf(a.stdout, "-- migration %s\n", m.Name)
					for _, st := range m.Statements() {
						fmt.Fprintf(a.stdout, "%s;\n\n", st)
					}
				}
				if cfg.Orders != nil {
					fmt.Fprintf(a.stdout, "-- recommended on your orders table %s, for recon's scan of new pending orders;\n"+
						"-- recon never applies it (a DBA does):\n%s;\n", cfg.Orders.Table, cfg.Orders.RecommendedIndex())
				}
				if cfg.Refunds != nil {
					fmt.Fprintf(a.stdout, "-- recommended on your refunds table %s, for recon's scan of new pending refunds;\n"+
						"-- recon never applies it (a DBA does):\n%s;\n", cfg.Refunds.Table, cfg.Refunds.RecommendedIndex())
				}
				return nil
			}
			store, err := a.openWith(cmd.Context(), cfg, repo.Options{})
			if err != nil {
				return err
			}
			defer store.Close()
			applied, err := store.Migrate(cmd.Context(), time.Now())
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(a.stdout, "schema is up to date")
			}
			for _, m := range applied {
				fmt.Fprintf(a.stdout, "applied %s", m.Name)
				if m.Resumed > 0 {
					fmt.Fprintf(a.stdout, " (%d of its statements had been applied by an interrupted migrate)", m.Resumed)
				}
				fmt.Fprintln(a.stdout)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&print, "print", false, "print the SQL of every migration for review instead of applying it")
	return cmd
}

// passFlags are the flags shared by run and backfill.
type passFlags struct {
	dryRun, failOnMismatch bool
	limit                  int
	channel, merchant      string
	shard, output          string
	pushgateway            string
}

func (f *passFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "look up and decide, but write nothing except the run record")
	cmd.Flags().IntVar(&f.limit, "limit", 0, "process at most N orders (0: all)")
	cmd.Flags().StringVar(&f.channel, "channel", "", "only orders of this channel (a channels[].name)")
	cmd.Flags().StringVar(&f.shard, "shard", "", "only shard I of N, as I/N (orders whose id mod N is I)")
	cmd.Flags().StringVar(&f.output, "output", "text", "summary format: text or json")
	cmd.Flags().BoolVar(&f.failOnMismatch, "fail-on-mismatch", false, "exit 3 when the pass found new mismatches")
	pushgatewayFlag(cmd, &f.pushgateway)
}

// pushgatewayFlag registers --pushgateway on a one-shot command.
func pushgatewayFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "pushgateway", "", "push this pass's metrics to the Pushgateway at this URL (default metrics.pushgateway)")
}

// checkPushgateway validates --pushgateway without echoing it (it may carry
// credentials).
func checkPushgateway(url string) error {
	if url != "" && checkURL(url) != nil {
		return usageErr("--pushgateway is not an absolute http(s) URL")
	}
	return nil
}

func (f *passFlags) window(cfg Config) (jobs.Window, error) {
	w := jobs.Window{DryRun: f.dryRun, Limit: f.limit, Channel: f.channel, Merchant: f.merchant}
	if f.limit < 0 {
		return w, usageErr("--limit must not be negative")
	}
	if f.output != "text" && f.output != "json" {
		return w, usageErr("--output must be text or json, not %q", f.output)
	}
	if err := checkPushgateway(f.pushgateway); err != nil {
		return w, err
	}
	if f.channel != "" && !cfg.hasChannel(f.channel) {
		return w, usageErr("--channel %q is not a channel in %s", f.channel, cfg.path)
	}
	if f.shard != "" {
		s, err := parseShard(f.shard)
		if err != nil {
			return w, usageErr("--shard: %v", err)
		}
		w.Shard = s
	}
	return w, nil
}

func parseShard(s string) (repo.Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	idx, err1 := strconv.Atoi(i)
	cnt, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || cnt < 1 || idx < 0 || idx >= cnt {
		return repo.Shard{}, fmt.Errorf("want I/N with 0 <= I < N, got %q", s)
	}
	return repo.Shard{Index: idx, Count: cnt}, nil
}

func (a *app) runCommand() *cobra.Command {
	var f passFlags
	return a.passCommand("run", "One reconciliation pass over due PENDING orders, then exit", &f, nil)
}

// passCommand is a command that runs one pass over the window its flags
// give; window, if set, completes the window from the command's own flags.
func (a *app) passCommand(use, short string, f *passFlags, window func(w *jobs.Window) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			w, err := f.window(cfg)
			if err != nil {
				return err
			}
			if window != nil {
				if err := window(&w); err != nil {
					return err
				}
			}
			return a.pass(cmd.Context(), cfg, w, *f)
		},
	}
	f.register(cmd)
	return cmd
}

func (a *app) backfillCommand() *cobra.Command {
	var f passFlags
	var from, to string
	var includeTerminal bool
	cmd := a.passCommand("backfill --from T --to T", "Reconcile orders created in [from, to), ignoring their query schedule", &f,
		func(w *jobs.Window) (err error) {
			w.Backfill, w.IncludeTerminal = true, includeTerminal
			if w.From, err = parseTime("--from", from); err != nil {
				return err
			}
			if w.To, err = parseTime("--to", to); err != nil {
				return err
			}
			if !w.From.Before(w.To) {
				return usageErr("--from (%s) must be before --to (%s)", from, to)
			}
			return nil
		})
	cmd.Flags().StringVar(&f.merchant, "merchant", "", "only orders of this merchant id")
	cmd.Flags().StringVar(&from, "from", "", "window start, RFC 3339 or YYYY-MM-DD (UTC), inclusive")
	cmd.Flags().StringVar(&to, "to", "", "window end, RFC 3339 or YYYY-MM-DD (UTC), exclusive")
	cmd.Flags().BoolVar(&includeTerminal, "include-terminal", false, "also verify terminal orders against the channel (reports only, changes nothing)")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func parseTime(flag, s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageErr("%s: %q is not a time (use RFC 3339, e.g. 2026-11-23T00:00:00Z, or 2026-11-23)", flag, s)
}

func (a *app) scheduleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schedule",
		Short: "Run reconcile and notify passes on the cron specs in config, until stopped",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			return a.schedule(cmd.Context(), cfg)
		},
	}
}
