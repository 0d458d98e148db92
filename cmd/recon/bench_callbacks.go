package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/callback"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/httpjson"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

type benchCallbackOptions struct {
	orders        int
	rate          float64
	duplicates    float64
	lookupLatency time.Duration
	concurrency   int
	keep          bool
}

func (a *app) benchCallbacksCommand() *cobra.Command {
	var o benchCallbackOptions
	cmd := &cobra.Command{
		Use:   "callbacks",
		Short: "Post channel notifications at a fixed rate, duplicates included, while a reconcile pass settles the same orders",
		Long: `bench callbacks creates a scratch database next to the configured one (MySQL:
<db>_bench_callbacks; SQLite: a temporary file), seeds N due orders, starts the
callback listener on a loopback port and, at the same time,
  (a) posts one PAID notification per order at --rate notifications/s (open
      loop: each is sent at its time, whatever the answers before it), a
      --duplicates share of them twice, in random order, and
  (b) runs a reconcile pass over the same orders against the in-process
      simulator (every order paid),
then prints the notifications' answer latency (p50, p99, max), the rate
reached, how the orders were settled (by callback, by the pass) and checks
that every order moved exactly once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if o.orders < 1 || o.rate <= 0 || o.duplicates < 0 || o.duplicates > 1 || o.concurrency < 1 {
				return usageErr("--orders, --rate and --concurrency must be positive, --duplicates between 0 and 1")
			}
			return a.benchCallbacks(cmd.Context(), cfg, o)
		},
	}
	cmd.Flags().IntVar(&o.orders, "orders", 6000, "due orders to seed (one notification each)")
	cmd.Flags().Float64Var(&o.rate, "rate", 200, "notifications per second")
	cmd.Flags().Float64Var(&o.duplicates, "duplicates", 0.1, "share of the notifications sent twice")
	cmd.Flags().DurationVar(&o.lookupLatency, "lookup-latency", 20*time.Millisecond, "simulated channel latency of the pass's lookups")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", 4, "the reconcile pass's workers")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "keep the scratch database")
	return cmd
}

// benchAnswer is one notification's answer.
type benchAnswer struct {
	d    time.Duration
	code int
	err  error
}

func (a *app) benchCallbacks(ctx context.Context, cfg Config, o benchCallbackOptions) error {
	driver := repo.Dialect(cfg.Database.Driver)
	store, dsn, cleanup, err := scratchStore(ctx, driver, cfg.Database.DSN, "_bench_callbacks", o.keep, 64)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := seedBench(ctx, driver, dsn, o.orders); err != nil {
		return err
	}
	// The notifications are built from the seeded rows (ids and amounts).
	orders, err := scanOrders(ctx, store, repo.Scan{Backfill: true, To: time.Now().UTC().Add(time.Hour)})
	if err != nil {
		return err
	}
	if len(orders) != o.orders {
		return fmt.Errorf("bench: read %d of %d seeded orders", len(orders), o.orders)
	}

	sim := simulator.New(simulator.Config{Seed: 1, PaidRate: 1})
	metrics := jobs.NewMetrics()
	cbs := &jobs.Callbacks{Store: store, Notifiers: map[string]channel.Notifier{"bench": sim}, Policy: policyOf(cfg),
		Clock: recon.SystemClock{}, Logger: a.log, Observer: metrics}
	hs := callback.New(callback.Options{Handler: cbs, Kinds: map[string]string{"bench": "simulator"}, Logger: a.log}).HTTPServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	url := "http://" + ln.Addr().String() + "/callbacks/bench"

	// The notifications, in random order, a share of them twice.
	rng := rand.New(rand.NewPCG(1, 2))
	var bodies [][]byte
	for _, ord := range orders {
		amount := ord.Amount
		body, _ := json.Marshal(httpjson.Data{Order: ord.OrderNo, Status: "PAID", Amount: &amount, Currency: ord.Currency,
			TxnID: "T" + ord.OrderNo, PaidAt: ord.CreatedAt.Add(time.Second).Format(time.RFC3339)})
		bodies = append(bodies, body)
		if rng.Float64() < o.duplicates {
			bodies = append(bodies, body)
		}
	}
	rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	fmt.Fprintf(a.stdout, "bench callbacks: %s, %d orders, %d notifications (%.0f%% duplicates) at %.0f/s, a reconcile pass (%d workers, lookups %s) over the same orders\n",
		driver, o.orders, len(bodies), 100*o.duplicates, o.rate, o.concurrency, o.lookupLatency)

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}, Timeout: 30 * time.Second}
	answers := make([]benchAnswer, len(bodies))
	var posted sync.WaitGroup
	passDone := make(chan error, 1)
	lookups := &forgetful{cfg: simulator.Config{Seed: 1, PaidRate: 1, Latency: o.lookupLatency}}
	rec := a.reconciler(cfg, store, map[string]jobs.Channel{"bench": channel.NewGuarded("bench", lookups, 0,
		channel.RetryPolicy{InitialInterval: 10 * time.Millisecond, MaxElapsed: time.Second})}, recon.SystemClock{})
	rec.Concurrency, rec.GracePeriod, rec.Logger = o.concurrency, 0, a.log
	start := time.Now()
	go func() {
		res, err := rec.Run(ctx, jobs.Window{})
		if err == nil {
			fmt.Fprintf(a.stdout, "reconcile pass: %d scanned, %d paid, %d conflicts (settled first by a callback), %d errors in %s\n",
				res.Scanned, res.Paid, res.Conflicts, res.Errors, time.Since(start).Round(time.Millisecond))
		}
		passDone <- err
	}()
	interval := time.Duration(float64(time.Second) / o.rate)
	for i, body := range bodies {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		posted.Add(1)
		go func() {
			defer posted.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
			req.Header.Set(httpjson.SignatureHeader, httpjson.Sign(simulator.DefaultSecret, body))
			t0 := time.Now()
			resp, err := client.Do(req)
			answers[i].d = time.Since(t0)
			if err != nil {
				answers[i].err = err
				return
			}
			resp.Body.Close()
			answers[i].code = resp.StatusCode
		}()
	}
	posted.Wait()
	sent := time.Since(start)
	if err := <-passDone; err != nil {
		return err
	}
	var ds []time.Duration
	handled, failed := 0, 0
	for _, ans := range answers {
		switch {
		case ans.err != nil:
			failed++
		case ans.code == http.StatusOK:
			handled++
		}
		ds = append(ds, ans.d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) time.Duration {
		return ds[min(len(ds)-1, int(p*float64(len(ds))))].Round(10 * time.Microsecond)
	}
	fmt.Fprintf(a.stdout, "notifications: %d sent in %s (%.0f/s), %d answered 200, %d refused, %d failed\n",
		len(bodies), sent.Round(time.Millisecond), float64(len(bodies))/sent.Seconds(), handled, len(bodies)-handled-failed, failed)
	fmt.Fprintf(a.stdout, "answer latency: p50 %s, p99 %s, max %s\n", q(0.50), q(0.99), ds[len(ds)-1].Round(10*time.Microsecond))

	// Every order moved exactly once, by one source or the other.
	var bySource []struct {
		Source string
		N      int64
	}
	db := store.DB().WithContext(ctx)
	if err := db.Raw("SELECT source, COUNT(*) AS n FROM order_transitions GROUP BY source ORDER BY source").Scan(&bySource).Error; err != nil {
		return err
	}
	var twice, paid int64
	if err := db.Raw("SELECT COUNT(*) FROM (SELECT order_id FROM order_transitions GROUP BY order_id HAVING COUNT(*) > 1) x").Scan(&twice).Error; err != nil {
		return err
	}
	if err := db.Raw("SELECT COUNT(*) FROM payment_orders WHERE status = 'PAID'").Scan(&paid).Error; err != nil {
		return err
	}
	var parts []string
	var total int64
	for _, s := range bySource {
		parts = append(parts, fmt.Sprintf("%d by %s", s.N, s.Source))
		total += s.N
	}
	fmt.Fprintf(a.stdout, "settled: %s; %d orders PAID, %d transitions, %d orders moved more than once\n",
		strings.Join(parts, ", "), paid, total, twice)
	var dupes int64
	if err := db.Raw("SELECT COALESCE(SUM(duplicates), 0) FROM recon_callbacks").Scan(&dupes).Error; err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "duplicate deliveries taken once: %d\n", dupes)
	if twice != 0 || paid != int64(o.orders) || total != int64(o.orders) {
		return errors.New("bench: not every order moved exactly once")
	}
	if failed > 0 || handled != len(bodies) {
		return fmt.Errorf("bench: %d notifications not handled", len(bodies)-handled)
	}
	return nil
}
