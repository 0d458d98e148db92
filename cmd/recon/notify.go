package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

func init() {
	extraCommands = append(extraCommands, (*app).notifyCommand)
	prev := scheduledTasks
	scheduledTasks = func(a *app, cfg Config, store *repo.Store) []jobs.Task {
		d := a.dispatcher(cfg, store, recon.SystemClock{})
		if a.metrics != nil {
			d.Observer = a.metrics
		}
		return append(prev(a, cfg, store), jobs.Task{Name: "notify", Spec: cfg.Schedule.Notify,
			Run: func(ctx context.Context) error {
				_, err := a.underLease(ctx, cfg, store, jobs.LeaseName(jobs.KindNotify, repo.Shard{}), func(ctx context.Context) error {
					_, err := d.Run(ctx)
					return err
				})
				if a.metrics != nil {
					a.refreshGauges(ctx, cfg, store, a.metrics, jobs.KindNotify)
				}
				return err
			}})
	}
}

// dispatcher wires the notify settings of cfg into a Dispatcher.
func (a *app) dispatcher(cfg Config, store *repo.Store, clock recon.Clock) *jobs.Dispatcher {
	sched := make([]time.Duration, len(cfg.Notify.RetrySchedule))
	for i, d := range cfg.Notify.RetrySchedule {
		sched[i] = d.D()
	}
	breaker := cfg.Notify.MerchantBreaker.Failures
	if breaker == 0 {
		breaker = -1 // off
	}
	return &jobs.Dispatcher{
		Store: store, Clock: clock, Logger: a.log, Owner: owner(), Build: thisBuild(),
		Concurrency: cfg.Notify.Concurrency, PerMerchantConcurrency: cfg.Notify.PerMerchantConcurrency,
		MerchantBreaker: breaker, BatchSize: cfg.Notify.BatchSize,
		Timeout: cfg.Notify.Timeout.D(), Lease: cfg.Notify.Lease.D(), RetrySchedule: sched,
		Heartbeat: cfg.Reconcile.Heartbeat.D(), Sink: sinkOf(cfg), AllowPrivateNetworks: cfg.Notify.AllowPrivateNetworks,
	}
}

// sinkOf is notify.sink for the dispatcher; nil when notifications go to
// the merchants' notify_url.
func sinkOf(cfg Config) *jobs.NotifySink {
	if cfg.Notify.Sink == nil {
		return nil
	}
	return &jobs.NotifySink{URL: cfg.Notify.Sink.URL, Secret: cfg.Notify.Sink.Secret}
}

func (a *app) notifyCommand() *cobra.Command {
	var output, pushTo string
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "One delivery pass over the merchant notification outbox, then exit",
		Long: `notify claims the due PENDING rows of merchant_notifications, POSTs each
signed payload to its merchant's notify_url, and records DELIVERED, a retry on
notify.retry_schedule, or DEAD after its last step. One notify pass runs at a
time (a database lease; a second one exits 0 saying it skipped), and each row
is leased to one dispatcher at a time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageErr("--output must be text or json, not %q", output)
			}
			if err := checkPushgateway(pushTo); err != nil {
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			store, err := a.open(ctx, cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			d := a.dispatcher(cfg, store, recon.SystemClock{})
			pushTo = a.pushgateway(cfg, pushTo, false)
			var metrics *jobs.Metrics
			if pushTo != "" {
				metrics = newMetrics()
				d.Observer = metrics
				store.ObserveConflicts(metrics.DBConflict)
			}
			var res jobs.NotifyResult
			held, err := a.underLease(ctx, cfg, store, jobs.LeaseName(jobs.KindNotify, repo.Shard{}), func(ctx context.Context) error {
				var runErr error
				res, runErr = d.Run(ctx)
				return runErr
			})
			if held != nil {
				return printSkipped(a.stdout, output, jobs.NotifyResult{Kind: jobs.KindNotify}, held)
			}
			if metrics != nil && res.RunID != 0 {
				a.refreshGauges(ctx, cfg, store, metrics, jobs.KindNotify)
				a.push(ctx, metrics, pushTo, jobs.KindNotify, repo.Shard{})
			}
			if res.RunID != 0 {
				if perr := printNotifyResult(a.stdout, output, res); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "summary format: text or json")
	pushgatewayFlag(cmd, &pushTo)
	cmd.AddCommand(a.resendCommand())
	return cmd
}

func printNotifyResult(w io.Writer, format string, res jobs.NotifyResult) error {
	if format == "json" {
		return json.NewEncoder(w).Encode(res)
	}
	fmt.Fprintf(w, "notify run %d %s in %s\n", res.RunID, strings.ToLower(res.Status),
		res.FinishedAt.Sub(res.StartedAt).Round(time.Millisecond))
	fmt.Fprintf(w, "  claimed      %d\n  delivered    %d\n  retried      %d\n  dead         %d\n  errors       %d\n",
		res.Claimed, res.Delivered, res.Retried, res.Dead, res.Errors)
	if res.LeaseLost > 0 || res.Released > 0 {
		fmt.Fprintf(w, "  lease lost   %d\n  released     %d\n", res.LeaseLost, res.Released)
	}
	if res.Deferred > 0 {
		fmt.Fprintf(w, "  deferred     %d  (merchants paused by their breaker; left for the next pass)\n", res.Deferred)
	}
	if res.Error != "" {
		fmt.Fprintf(w, "error: %s\n", res.Error)
	}
	return nil
}

func (a *app) resendCommand() *cobra.Command {
	var dead bool
	var merchant, from, to string
	cmd := &cobra.Command{
		Use:   "resend ID | resend --dead [--merchant M] [--from T] [--to T]",
		Short: "Put notifications back to PENDING, due now, with a fresh retry schedule",
		Long: `resend ID puts one notification back to PENDING whatever its status (DEAD,
DELIVERED, or PENDING to try it now). resend --dead puts every DEAD notification
of a merchant and/or created in [--from, --to) back to PENDING, for use after a
merchant's outage. attempts restarts at 0 so the row gets the whole retry
schedule again; last_error keeps the previous status, attempt count and error
until the next attempt. The next notify pass delivers them.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case dead && len(args) > 0:
				return usageErr("give a notification ID or --dead, not both")
			case !dead && len(args) == 0:
				return usageErr("give a notification ID, or --dead with --merchant and/or --from/--to")
			case !dead && (merchant != "" || from != "" || to != ""):
				return usageErr("--merchant, --from and --to select dead rows: use them with --dead")
			case dead && merchant == "" && from == "" && to == "":
				return usageErr("--dead needs --merchant, --from or --to (a merchant or a time window)")
			}
			var fromT, toT time.Time
			var err error
			if from != "" {
				if fromT, err = parseTime("--from", from); err != nil {
					return err
				}
			}
			if to != "" {
				if toT, err = parseTime("--to", to); err != nil {
					return err
				}
			}
			if !fromT.IsZero() && !toT.IsZero() && !fromT.Before(toT) {
				return usageErr("--from (%s) must be before --to (%s)", from, to)
			}
			return a.withStore(cmd, func(ctx context.Context, store *repo.Store) error {
				now := recon.SystemClock{}.Now()
				if !dead {
					if err := store.Resend(ctx, args[0], now); err != nil {
						if errors.Is(err, recon.ErrNotFound) {
							return &exitError{code: exitUsage, err: err}
						}
						return err
					}
					a.log.Info("notification resent by operator", "notification_id", args[0])
					fmt.Fprintf(a.stdout, "notification %s is PENDING again; the next notify pass sends it\n", args[0])
					return nil
				}
				n, err := store.ResendDead(ctx, merchant, fromT, toT, now)
				if err != nil {
					return err
				}
				a.log.Info("dead notifications resent by operator", "merchant_id", merchant, "from", from, "to", to, "count", n)
				fmt.Fprintf(a.stdout, "%d dead notifications are PENDING again; the next notify pass sends them\n", n)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&dead, "dead", false, "resend DEAD notifications selected by --merchant, --from, --to")
	cmd.Flags().StringVar(&merchant, "merchant", "", "with --dead: only this merchant id")
	cmd.Flags().StringVar(&from, "from", "", "with --dead: created at or after, RFC 3339 or YYYY-MM-DD (UTC)")
	cmd.Flags().StringVar(&to, "to", "", "with --dead: created before, RFC 3339 or YYYY-MM-DD (UTC)")
	return cmd
}
