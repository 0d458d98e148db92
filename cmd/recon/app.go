package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

// app holds what the commands share: flags, output streams, the loaded
// configuration.
type app struct {
	configPath string
	stdout     io.Writer
	stderr     io.Writer
	getenv     func(string) string
	log        *slog.Logger
	cfg        *Config
	// metrics observes the passes of recon schedule; nil elsewhere.
	metrics *jobs.Metrics
	// adapters are the channel adapters built, whose idle connections
	// Main closes as it returns.
	adaptersMu sync.Mutex
	adapters   []channel.Lookup
}

// closeIdleConnections closes the idle HTTP connections of every adapter
// built. A process that exits closes them anyway; Main called in-process
// (the demo, tests) would otherwise leave them open, and a server that
// shuts down waits for a connection opened but never used.
func (a *app) closeIdleConnections() {
	a.adaptersMu.Lock()
	defer a.adaptersMu.Unlock()
	for _, ad := range a.adapters {
		if c, ok := ad.(channel.IdleCloser); ok {
			c.CloseIdleConnections()
		}
	}
}

// config loads and validates the configuration once.
func (a *app) config() (Config, error) {
	if a.cfg != nil {
		return *a.cfg, nil
	}
	explicit := a.configPath != "config.yaml"
	data, err := readConfigFile(a.configPath, explicit)
	if err != nil {
		return Config{}, err
	}
	cfg, err := LoadConfig(a.configPath, data, a.getenv)
	if err != nil {
		return Config{}, err
	}
	a.cfg = &cfg
	a.log = newLogger(a.stderr, cfg.Log)
	return cfg, nil
}

func (c Config) hasChannel(name string) bool {
	for _, ch := range c.Channels {
		if ch.Name == name {
			return true
		}
	}
	return false
}

// newLogger returns JSON logs, or text when stderr is a terminal and the
// format is auto.
func newLogger(w io.Writer, lc LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level))
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "text" || (lc.Format == "auto" && isTerminal(w)) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// open opens cfg's database, which must exist (a SQLite file is created by
// migrate and demo alone, through openWith) and be migrated.
func (a *app) open(ctx context.Context, cfg Config) (*repo.Store, error) {
	return a.openWith(ctx, cfg, repo.Options{Existing: true})
}

// openWith opens cfg's database with opt. A missing SQLite file or
// directory is a configuration problem (exit 2) that names the file. A
// database opened as Existing or ReadOnly (every command but migrate and
// demo) must be migrated: one without recon's tables, or without this
// recon's latest migrations, is a usage error too, that says to run
// `recon migrate`, before anything is read or written.
func (a *app) openWith(ctx context.Context, cfg Config, opt repo.Options) (*repo.Store, error) {
	opt.MaxOpenConns, opt.Orders, opt.Refunds = cfg.Database.MaxOpenConns, cfg.Orders, cfg.Refunds
	store, err := repo.Open(ctx, repo.Dialect(cfg.Database.Driver), cfg.Database.DSN, opt)
	if errors.Is(err, repo.ErrNoDirectory) {
		return nil, usageErr("%v (database.dsn in %s): create the directory, then run `recon migrate`", err, cfg.path)
	}
	if errors.Is(err, repo.ErrNoDatabase) {
		return nil, usageErr("%v (database.dsn in %s): `recon migrate` creates it", err, cfg.path)
	}
	if err != nil {
		return nil, cfg.mappingError(err)
	}
	if !opt.Existing && !opt.ReadOnly {
		return store, nil
	}
	if err := store.CheckSchema(ctx); err != nil {
		_ = store.Close()
		if errors.Is(err, repo.ErrNotMigrated) {
			return nil, usageErr("%v (database.dsn in %s): run `recon migrate` first (`recon migrate --print` shows its SQL)", err, cfg.path)
		}
		return nil, err
	}
	return store, nil
}

// channelBuilders make an adapter for each channel kind. Files of this
// package register their kinds in init.
var channelBuilders = map[string]func(ChannelConfig) (channel.Lookup, error){}

// buildChannel makes the adapter of cfg.Channels[i]; an unknown kind or a
// bad setting is a ConfigError naming the channel's key.
func buildChannel(cfg Config, i int) (channel.Lookup, error) {
	cc := cfg.Channels[i]
	build, ok := channelBuilders[cc.Kind]
	if !ok {
		return nil, &ConfigError{File: cfg.path, Key: fmt.Sprintf("channels[%d] (%s).kind", i, cc.Name),
			Msg: fmt.Sprintf("channel kind %q is not built into this binary", cc.Kind)}
	}
	inner, err := build(cc)
	if err != nil {
		return nil, &ConfigError{File: cfg.path, Key: fmt.Sprintf("channels[%d] (%s)", i, cc.Name), Msg: err.Error()}
	}
	return inner, nil
}

// guardedChannel makes the adapter of cfg.Channels[i] wrapped with its rate
// limit and retries: the lookup every pass, and the statement
// reconciliation, calls.
func (a *app) guardedChannel(cfg Config, i int) (*channel.Guarded, error) {
	inner, err := buildChannel(cfg, i)
	if err != nil {
		return nil, err
	}
	a.adaptersMu.Lock()
	a.adapters = append(a.adapters, inner)
	a.adaptersMu.Unlock()
	retry := channel.RetryPolicy{
		InitialInterval: cfg.Reconcile.LookupRetry.InitialInterval.D(),
		MaxInterval:     cfg.Reconcile.LookupRetry.MaxInterval.D(),
		MaxElapsed:      cfg.Reconcile.LookupRetry.MaxElapsed.D(),
	}
	return channel.NewGuarded(cfg.Channels[i].Name, inner, cfg.Channels[i].RateLimit, retry), nil
}

// buildChannels makes every configured channel, wrapped with its rate limit
// and retries. A bad key file or setting fails here, before any pass.
func (a *app) buildChannels(cfg Config) (map[string]jobs.Channel, error) {
	out := map[string]jobs.Channel{}
	for i, cc := range cfg.Channels {
		g, err := a.guardedChannel(cfg, i)
		if err != nil {
			return nil, err
		}
		out[cc.Name] = g
	}
	return out, nil
}

// openAll builds cfg's channels, then opens its database; the caller closes
// the store.
func (a *app) openAll(ctx context.Context, cfg Config) (map[string]jobs.Channel, *repo.Store, error) {
	chans, err := a.buildChannels(cfg)
	if err != nil {
		return nil, nil, err
	}
	store, err := a.open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return chans, store, nil
}

// channelPolicies maps each configured channel to its concurrency and
// breaker.
func channelPolicies(cfg Config) map[string]jobs.ChannelPolicy {
	out := make(map[string]jobs.ChannelPolicy, len(cfg.Channels))
	for _, cc := range cfg.Channels {
		b := cc.breaker()
		out[cc.Name] = jobs.ChannelPolicy{Concurrency: cc.Concurrency,
			Breaker: recon.BreakerPolicy{Failures: b.Failures, ProbeInterval: b.ProbeInterval.D()}}
	}
	return out
}

func policyOf(cfg Config) recon.Policy {
	sched := make([]time.Duration, len(cfg.Reconcile.QuerySchedule))
	for i, d := range cfg.Reconcile.QuerySchedule {
		sched[i] = d.D()
	}
	return recon.Policy{MaxAge: cfg.Reconcile.MaxAge.D(), Schedule: sched, Jitter: cfg.Reconcile.Jitter,
		CloseOnExpiry: cfg.Reconcile.CloseOnExpiry}
}

func owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

func (a *app) reconciler(cfg Config, store *repo.Store, chans map[string]jobs.Channel, clock recon.Clock) *jobs.Reconciler {
	return &jobs.Reconciler{
		Store: store, Channels: chans, Clock: clock, Logger: a.log,
		Policy: policyOf(cfg), GracePeriod: cfg.Reconcile.GracePeriod.D(),
		BatchSize: cfg.Reconcile.BatchSize, Concurrency: cfg.Reconcile.Concurrency, CommitBatch: cfg.Reconcile.CommitBatch,
		ChannelPolicies: channelPolicies(cfg),
		ShutdownGrace:   cfg.Reconcile.ShutdownGrace.D(), Heartbeat: cfg.Reconcile.Heartbeat.D(),
		Owner: owner(), Build: thisBuild(),
	}
}

// pass runs one reconcile or backfill pass under its lease and prints its
// summary. A lease held by another process skips the pass (exit 0).
func (a *app) pass(ctx context.Context, cfg Config, w jobs.Window, f passFlags) error {
	chans, store, err := a.openAll(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	rec := a.reconciler(cfg, store, chans, recon.SystemClock{})
	pushTo := a.pushgateway(cfg, f.pushgateway, w.DryRun)
	var metrics *jobs.Metrics
	if pushTo != "" {
		metrics = newMetrics()
		rec.Observer = metrics
		store.ObserveConflicts(metrics.DBConflict)
	}
	var res jobs.Result
	run := func(ctx context.Context) error {
		if w.Backfill {
			stop, err := a.showProgress(ctx, store, rec, w)
			if err != nil {
				return err
			}
			defer stop()
		}
		var runErr error
		res, runErr = rec.Run(ctx, w)
		return runErr
	}
	lease := jobs.LeaseName(w.Kind(), w.Shard)
	if w.DryRun {
		// A dry run changes no order: it neither needs nor blocks the lease.
		err = run(ctx)
	} else {
		var held *jobs.LeaseHeldError
		held, err = a.underLease(ctx, cfg, store, lease, run)
		if held != nil {
			return printSkipped(a.stdout, f.output, jobs.Result{Kind: w.Kind(), DryRun: w.DryRun}, held)
		}
	}
	if metrics != nil && res.RunID != 0 {
		a.refreshGauges(ctx, cfg, store, metrics, w.Kind())
		a.push(ctx, metrics, pushTo, w.Kind(), w.Shard)
	}
	if res.RunID != 0 {
		if perr := printResult(a.stdout, f.output, res); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return err
	}
	if f.failOnMismatch && res.NewMismatches > 0 {
		return &exitError{code: exitMismatch, err: fmt.Errorf("%d new mismatches found (run %d)", res.NewMismatches, res.RunID)}
	}
	return nil
}

// leaser returns the lease runner of this process for cfg.
func (a *app) leaser(cfg Config, store *repo.Store) *jobs.Leaser {
	return &jobs.Leaser{Store: store, Clock: recon.SystemClock{}, Logger: a.log, Owner: owner(),
		TTL: cfg.Reconcile.LeaseTTL.D()}
}

// underLease runs fn under lease name. When another process holds the
// lease fn does not run, and the holder is returned with a nil error: a
// skipped pass is not a failure.
func (a *app) underLease(ctx context.Context, cfg Config, store *repo.Store, name string, fn func(context.Context) error) (*jobs.LeaseHeldError, error) {
	err := a.leaser(cfg, store).Run(ctx, name, fn)
	var held *jobs.LeaseHeldError
	if errors.As(err, &held) {
		return held, nil
	}
	return nil, err
}

// printSkipped reports a pass skipped because its lease is held: a line of
// text, or the command's JSON summary (zero counts) with status SKIPPED and
// the holder.
func printSkipped(w io.Writer, format string, zero any, held *jobs.LeaseHeldError) error {
	if format != "json" {
		_, err := fmt.Fprintf(w, "skipped: %v\n", held)
		return err
	}
	b, err := json.Marshal(zero)
	if err != nil {
		return fmt.Errorf("print skipped pass: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("print skipped pass: %w", err)
	}
	delete(out, "started_at") // no pass started
	delete(out, "finished_at")
	out["status"] = "SKIPPED"
	out["lease"], out["lease_holder"], out["lease_expires_at"] = held.Lease.Name, held.Lease.Owner, held.Lease.ExpiresAt
	return json.NewEncoder(w).Encode(out)
}

// pushgateway is where a one-shot pass pushes its metrics: the flag, else
// metrics.pushgateway; nowhere for a dry run, whose success must not count
// as a pass that happened.
func (a *app) pushgateway(cfg Config, flag string, dryRun bool) string {
	url := cmp.Or(flag, cfg.Metrics.Pushgateway)
	if url != "" && dryRun {
		a.log.Info("dry run: metrics are not pushed")
		return ""
	}
	return url
}

// push sends a one-shot pass's metrics to the Pushgateway, grouped by pass
// kind and shard, then by the extra name, value pairs. A failed push is
// logged: the pass itself went well.
func (a *app) push(ctx context.Context, m *jobs.Metrics, url, kind string, shard repo.Shard, extra ...string) {
	grouping := []string{"pass", kind}
	if shard.Count > 1 {
		grouping = append(grouping, "shard", fmt.Sprintf("%d/%d", shard.Index, shard.Count))
	}
	grouping = append(grouping, extra...)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := m.Push(pctx, url, "recon", grouping...); err != nil {
		a.log.Warn("pushing metrics failed", "error", err)
		return
	}
	a.log.Debug("metrics pushed", "pass", kind)
}

// refreshGauges reads for the state gauges what passes of these kinds
// change: the due orders (backlog) after a reconcile pass, the open
// mismatches after a reconcile or backfill pass, the outbox after a notify
// pass. Each count has 15s; a failure is logged and leaves its gauges as
// they were.
func (a *app) refreshGauges(ctx context.Context, cfg Config, store *repo.Store, m *jobs.Metrics, kinds ...string) {
	count := func(what string, refresh func(context.Context, time.Time) error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := refresh(rctx, time.Now().UTC()); err != nil {
			a.log.Warn("counting for metrics failed", "what", what, "error", err)
		}
	}
	for _, kind := range kinds {
		switch kind {
		case jobs.KindNotify:
			count("notifications", func(ctx context.Context, now time.Time) error { return m.RefreshNotifications(ctx, store, now) })
			continue
		case jobs.KindReconcile:
			count("backlog", func(ctx context.Context, now time.Time) error {
				return m.RefreshBacklog(ctx, store, now, cfg.Reconcile.GracePeriod.D())
			})
		}
		count("mismatches", func(ctx context.Context, now time.Time) error { return m.RefreshMismatches(ctx, store, now) })
	}
}

// showProgress makes a backfill draw a progress bar on a terminal, or log a
// line every 30s otherwise. The returned function draws the final state.
func (a *app) showProgress(ctx context.Context, store *repo.Store, rec *jobs.Reconciler, w jobs.Window) (func(), error) {
	total, err := store.CountBackfill(ctx, w.Scan(time.Now().UTC(), 0)) // a backfill ignores the due time
	if err != nil {
		return nil, err
	}
	if w.Limit > 0 && int64(w.Limit) < total {
		total = int64(w.Limit)
	}
	p := &jobs.Progress{Inner: rec.Observer, Total: total, Out: a.stderr, Terminal: isTerminal(a.stderr), Logger: a.log}
	rec.Observer = p
	return p.Start(), nil
}

func printResult(w io.Writer, format string, res jobs.Result) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		return enc.Encode(res)
	}
	mode := ""
	if res.DryRun {
		mode = " (dry run: nothing written)"
	}
	fmt.Fprintf(w, "%s run %d %s%s in %s\n", res.Kind, res.RunID, strings.ToLower(res.Status), mode,
		res.FinishedAt.Sub(res.StartedAt).Round(time.Millisecond))
	fmt.Fprintf(w, "  scanned      %d\n  paid         %d\n  failed       %d\n  closed       %d\n  rescheduled  %d\n  mismatches   %d (%d new)\n  conflicts    %d\n  errors       %d\n",
		res.Scanned, res.Paid, res.Failed, res.Closed, res.Rescheduled, res.Mismatches, res.NewMismatches, res.Conflicts, res.Errors)
	if res.Deferred > 0 {
		fmt.Fprintf(w, "  deferred     %d  (channels paused by their breaker; left due for the next pass)\n", res.Deferred)
	}
	if res.RefundsScanned > 0 {
		fmt.Fprintf(w, "  refunds      %d scanned, %d succeeded, %d failed, %d rescheduled\n",
			res.RefundsScanned, res.RefundsSucceeded, res.RefundsFailed, res.RefundsRescheduled)
	}
	if res.RefundsUnsupported > 0 {
		fmt.Fprintf(w, "  unsupported  %d refunds skipped: their channel cannot look refunds up\n", res.RefundsUnsupported)
	}
	if len(res.Found) > 0 {
		fmt.Fprintln(w, "mismatches found:")
		found := append([]jobs.Found(nil), res.Found...)
		sort.Slice(found, func(i, j int) bool { return found[i].OrderNo < found[j].OrderNo })
		for _, m := range found {
			no := m.OrderNo
			if m.RefundNo != "" {
				no += " refund " + m.RefundNo
			}
			fmt.Fprintf(w, "  %-26s %-20s %s\n", m.Kind, no, m.Detail)
		}
	}
	if len(res.Planned) > 0 {
		fmt.Fprintln(w, "would do:")
		for _, p := range res.Planned {
			no := p.OrderNo
			if p.RefundNo != "" {
				no += " refund " + p.RefundNo
			}
			fmt.Fprintf(w, "  %-20s %-10s %-7s %s\n", no, p.Action, p.To, p.Detail)
		}
	}
	if res.Error != "" {
		fmt.Fprintf(w, "error: %s\n", res.Error)
	}
	return nil
}

func (a *app) schedule(ctx context.Context, cfg Config) error {
	chans, store, err := a.openAll(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	a.metrics = newMetrics()
	a.metrics.Registry().MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Metrics.Addr != "" {
		stop, err := a.serveMetrics(cfg.Metrics.Addr, a.metrics)
		if err != nil {
			return err
		}
		defer stop()
	}
	rec := a.reconciler(cfg, store, chans, recon.SystemClock{})
	rec.Observer = a.metrics
	store.ObserveConflicts(a.metrics.DBConflict)
	a.refreshGauges(ctx, cfg, store, a.metrics, jobs.KindReconcile, jobs.KindNotify)
	tasks := []jobs.Task{{Name: "reconcile", Spec: cfg.Schedule.Reconcile, Run: func(ctx context.Context) error {
		_, err := a.underLease(ctx, cfg, store, jobs.LeaseName(jobs.KindReconcile, repo.Shard{}), func(ctx context.Context) error {
			_, err := rec.Run(ctx, jobs.Window{})
			return err
		})
		a.refreshGauges(ctx, cfg, store, a.metrics, jobs.KindReconcile)
		return err
	}}}
	tasks = append(tasks, scheduledTasks(a, cfg, store)...)
	a.log.Info("recon schedule started", "reconcile", cfg.Schedule.Reconcile, "notify", cfg.Schedule.Notify)
	err = jobs.Schedule(ctx, a.log, tasks...)
	a.log.Info("recon schedule stopped")
	return err
}

// scheduledTasks lets other files add tasks to recon schedule. They run
// their passes under leases (underLease) and observe them with a.metrics.
var scheduledTasks = func(a *app, cfg Config, store *repo.Store) []jobs.Task { return nil }

// serveMetrics serves /metrics and /healthz on addr until the returned
// function is called. It fails at once when addr cannot be listened on.
func (a *app) serveMetrics(addr string, m *jobs.Metrics) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics server on %s (metrics.addr): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server stopped", "error", err)
		}
	}()
	a.log.Info("serving /metrics and /healthz", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}, nil
}
