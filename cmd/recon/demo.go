package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

func (a *app) demoCommand() *cobra.Command {
	var dir string
	var orders int
	var force bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Seed a fresh SQLite database, reconcile it against the simulator, print a summary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if orders > 0 {
				cfg.Demo.Orders = orders
			}
			if dir != "" {
				if err := demoDir(dir, force); err != nil {
					return err
				}
			}
			return a.demo(cmd.Context(), cfg, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the demo database and report (default: a new temporary directory)")
	cmd.Flags().BoolVar(&force, "force", false, "use --dir even if it holds files the demo did not write (the demo's own files in it are replaced)")
	cmd.Flags().IntVar(&orders, "orders", 0, "number of sample orders (default demo.orders from config, 200)")
	return cmd
}

// demo runs the embedded default: whatever database the config names, the
// demo uses a fresh SQLite file, and only the config's simulator channels.
func (a *app) demo(ctx context.Context, cfg Config, dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "recon-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	if err := os.WriteFile(filepath.Join(dir, demoMarker), []byte("written by recon demo: the demo replaces demo.db and its reports here\n"), 0o644); err != nil {
		return fmt.Errorf("demo: mark %s: %w", dir, err)
	}
	cfg.Database = DatabaseConfig{Driver: "sqlite", DSN: filepath.Join(dir, "demo.db")}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		// A WAL left by an earlier demo must not be replayed into the new file.
		if err := os.Remove(cfg.Database.DSN + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("demo: remove the earlier %s: %w", cfg.Database.DSN+suffix, err)
		}
	}
	var sims []ChannelConfig
	for _, cc := range cfg.Channels {
		if cc.Kind == "simulator" {
			sims = append(sims, cc)
		}
	}
	if len(sims) == 0 {
		sims = []ChannelConfig{defaultDemoChannel()}
	}
	cfg.Channels = sims
	// The demo seeds recon's own payment_orders in its fresh database,
	// whatever orders table the configuration maps.
	cfg.Orders, cfg.Refunds = nil, nil
	// The demo shows a pass in seconds: no grace period, quick retries.
	cfg.Reconcile.GracePeriod = 0
	cfg.Reconcile.LookupRetry = RetryConfig{InitialInterval: Duration(20 * time.Millisecond),
		MaxInterval: Duration(200 * time.Millisecond), MaxElapsed: Duration(2 * time.Second)}
	chans, err := a.buildChannels(cfg)
	if err != nil {
		return err
	}
	store, err := a.openWith(ctx, cfg, repo.Options{}) // creates demo.db
	if err != nil {
		return err
	}
	defer store.Close()
	now := time.Now().UTC()
	if _, err := store.Migrate(ctx, now); err != nil {
		return err
	}
	if err := seedDemo(ctx, store, sims, cfg.Demo.Orders, cfg.Reconcile.MaxAge.D(), now); err != nil {
		return err
	}
	refunds, err := seedDemoRefunds(ctx, store, chans, sims[0].Name, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "seeded %d PENDING orders across %d simulated channel(s), and %d PENDING refunds, in %s\n\n",
		cfg.Demo.Orders, len(sims), refunds, cfg.Database.DSN)
	// The channels notify first (those that do), recon's pass settles the
	// rest, and the late notifications arrive after it.
	cbs, err := a.startDemoCallbacks(ctx, cfg, store, sims)
	if err != nil {
		return err
	}
	defer cbs.stop()
	st, err := cbs.post(ctx, cbs.onTime)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "callbacks before the pass: %d posted, %d handled, %d refused\n\n", st.Sent, st.Handled, st.Refused)
	res, err := a.reconciler(cfg, store, chans, recon.SystemClock{}).Run(ctx, jobs.Window{})
	if err != nil {
		return err
	}
	if err := printResult(a.stdout, "text", res); err != nil {
		return err
	}
	if st, err = cbs.post(ctx, cbs.late); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nlate callbacks after the pass: %d posted, %d handled, %d refused\n", st.Sent, st.Handled, st.Refused)
	if err := cbs.summary(ctx, store); err != nil {
		return err
	}
	if err := a.demoStatements(ctx, cfg, store, chans); err != nil {
		return err
	}
	return a.demoSummary(ctx, store, dir)
}

// demoMarker is the file that marks a directory as the demo's own.
const demoMarker = ".recon-demo"

// demoFiles are the names the demo writes in its directory.
var demoFiles = map[string]bool{demoMarker: true, "demo.db": true, "demo.db-wal": true, "demo.db-shm": true,
	"demo.db-journal": true, "report.html": true, "report.csv": true}

// demoDir makes sure dir can hold the demo: it is created if missing, and
// may be reused when it is empty or was written by the demo alone. Any other
// directory is refused (exit 2) unless force, since the demo replaces
// demo.db and its reports there.
func demoDir(dir string, force bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usageErr("demo: --dir %s: %v", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return usageErr("demo: --dir %s: %v", dir, err)
	}
	if force || len(entries) == 0 {
		return nil
	}
	var names, other []string
	marked := false
	for _, e := range entries {
		name := e.Name()
		names = append(names, name)
		marked = marked || name == demoMarker
		if !demoFiles[name] && !strings.HasPrefix(name, ".report.") { // .report.*: a report being written
			other = append(other, name)
		}
	}
	if !marked {
		other = names // files of the demo's names, but not written by it
	}
	if len(other) > 0 {
		if len(other) > 3 {
			other = append(other[:3], "...")
		}
		return usageErr("demo: --dir %s is not empty and not a demo directory (%s); the demo would replace demo.db, report.html and report.csv there: use a new or empty directory, or pass --force",
			dir, strings.Join(other, ", "))
	}
	return nil
}

func defaultDemoChannel() ChannelConfig {
	return ChannelConfig{Name: "sim", Kind: "simulator", RateLimit: 0, FeeRate: 0.006, Simulator: SimulatorConfig{
		Seed: 42, PaidRate: 0.6, FailedRate: 0.05, ClosedRate: 0.05, NotFoundRate: 0.05, LateRate: 0.1, LateAfter: 2,
		AmountTamperRate: 0.02, CurrencyTamperRate: 0.01, BadSignatureRate: 0.02,
		TransientRate: 0.1, RateLimitRate: 0.02, RetryAfter: Duration(100 * time.Millisecond)}}
}

// demoHistory is how long before now the demo's seeded orders were
// created and paid (those seedDemo makes within the last hour, the paid
// orders with refunds two hours ago; the expired ones, never paid, aside).
const demoHistory = 2 * time.Hour

func seedDemo(ctx context.Context, store *repo.Store, chans []ChannelConfig, n int, maxAge time.Duration, now time.Time) error {
	merchants := []repo.Merchant{
		{ID: "m-tea", Name: "西湖茶庄 (West Lake Tea)", NotifyURL: "http://127.0.0.1:1/notify", NotifySecret: "demo-secret-1"},
		{ID: "m-books", Name: "Riverside Books", NotifyURL: "http://127.0.0.1:1/notify", NotifySecret: "demo-secret-2"},
	}
	for _, m := range merchants {
		if err := store.UpsertMerchant(ctx, m, now); err != nil {
			return err
		}
	}
	rng := rand.New(rand.NewPCG(7, 11))
	currencies := []string{"CNY", "CNY", "CNY", "USD", "JPY"}
	orders := make([]recon.Order, n)
	for i := range orders {
		created := now.Add(-time.Duration(5+rng.IntN(55)) * time.Minute)
		if maxAge > 0 && i%20 == 0 {
			created = now.Add(-maxAge - time.Hour) // expired: shows close-on-expiry
		}
		orders[i] = recon.Order{
			OrderNo:    fmt.Sprintf("DEMO%06d", i+1),
			MerchantID: merchants[i%len(merchants)].ID,
			Channel:    chans[i%len(chans)].Name,
			Amount:     int64(100 + rng.IntN(99900)),
			Currency:   currencies[rng.IntN(len(currencies))],
			Status:     recon.StatusPending,
			CreatedAt:  created, UpdatedAt: created,
		}
	}
	return store.InsertOrders(ctx, orders)
}

// seedDemoRefunds seeds paid orders with one refund of each kind the pass
// settles or reports (succeeded, failed, still processing, ABNORMAL at the
// channel, and a second refund that takes an order's refunds past what was
// paid), and makes the simulated channel ch answer each as named. It
// returns how many PENDING refunds it seeded. The over-refunded order's
// first refund is already SUCCEEDED, so that the pending one is always the
// refund that goes over, whatever order a pass settles refunds in.
func seedDemoRefunds(ctx context.Context, store *repo.Store, chans map[string]jobs.Channel, ch string, now time.Time) (int, error) {
	created := now.Add(-30 * time.Minute)
	paid := now.Add(-demoHistory)
	sim := demoSim(chans[ch])
	orders := make([]recon.Order, 4)
	for i := range orders {
		orders[i] = recon.Order{OrderNo: fmt.Sprintf("DEMO-PAID%02d", i+1), MerchantID: "m-tea", Channel: ch,
			Amount: 10000, Currency: "CNY", Status: recon.StatusPaid, CreatedAt: paid, UpdatedAt: paid, PaidAt: &paid}
		if sim != nil {
			// The transaction id the channel's statement shows for it.
			orders[i].ChannelTxnID = sim.TxnID(orders[i].OrderNo)
		}
	}
	if err := store.InsertOrders(ctx, orders); err != nil {
		return 0, err
	}
	type demoRefund struct {
		no     string
		order  int
		amount int64
		answer recon.RefundChannelStatus
		done   bool // already SUCCEEDED locally
	}
	seeds := []demoRefund{
		{"DEMO-RF-SUCCEEDED", 0, 2500, recon.RefundChannelSucceeded, false},
		{"DEMO-RF-FAILED", 1, 3000, recon.RefundChannelFailed, false},
		{"DEMO-RF-PROCESSING", 2, 1000, recon.RefundChannelPending, false},
		{"DEMO-RF-ABNORMAL", 2, 2000, recon.RefundChannelAbnormal, false},
		{"DEMO-RF-FIRST", 3, 8000, recon.RefundChannelSucceeded, true},
		{"DEMO-RF-OVER", 3, 5000, recon.RefundChannelSucceeded, false}, // 8000 + 5000 > 10000 paid
	}
	refunds := make([]recon.Refund, len(seeds))
	pending := 0
	for i, d := range seeds {
		o := orders[d.order]
		refunds[i] = recon.Refund{RefundNo: d.no, OrderID: o.ID, MerchantID: o.MerchantID, Channel: ch, Amount: d.amount,
			Currency: o.Currency, Status: recon.RefundPending, CreatedAt: created.Add(time.Duration(i) * time.Second),
			UpdatedAt: created}
		if d.done {
			at := created.Add(time.Minute)
			refunds[i].Status, refunds[i].SucceededAt = recon.RefundSucceeded, &at
		} else {
			pending++
		}
		if sim != nil {
			sim.SetRefund(d.no, simulator.RefundBehaviour{Status: d.answer})
		}
	}
	return pending, store.InsertRefunds(ctx, refunds)
}

// demoSim is the simulator behind a demo channel, nil if it is not one.
func demoSim(ch jobs.Channel) *simulator.Sim {
	g, ok := ch.(*channel.Guarded)
	if !ok {
		return nil
	}
	sim, _ := g.Inner.(*simulator.Sim)
	return sim
}

func (a *app) demoSummary(ctx context.Context, store *repo.Store, dir string) error {
	type row struct {
		Status string
		N      int64
	}
	var rows []row
	if err := store.DB().WithContext(ctx).Raw("SELECT status, COUNT(*) AS n FROM payment_orders GROUP BY status").Scan(&rows).Error; err != nil {
		return err
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Status < rows[j].Status })
	fmt.Fprintln(a.stdout, "\norders by status after the pass:")
	for _, r := range rows {
		fmt.Fprintf(a.stdout, "  %-8s %d\n", r.Status, r.N)
	}
	var refunds []struct {
		RefundNo string
		Status   string
	}
	if err := store.DB().WithContext(ctx).Raw("SELECT refund_no, status FROM refund_orders ORDER BY id").Scan(&refunds).Error; err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "\nrefunds after the pass:")
	for _, r := range refunds {
		fmt.Fprintf(a.stdout, "  %-20s %s\n", r.RefundNo, r.Status)
	}
	ms, err := store.ListMismatches(ctx, repo.MismatchFilter{})
	if err != nil {
		return err
	}
	byKind := map[recon.MismatchKind]int{}
	for _, m := range ms {
		byKind[m.Kind]++
	}
	fmt.Fprintln(a.stdout, "\nopen mismatches for finance, by kind:")
	for _, k := range recon.MismatchKinds {
		if byKind[k] > 0 {
			fmt.Fprintf(a.stdout, "  %-26s %d\n", k, byKind[k])
		}
	}
	if err := demoReport(ctx, a, store, dir); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nPENDING orders left are rescheduled (late payments, not found yet, lookup errors);\n"+
		"run the demo database again with: recon run --config <a config with database.dsn %s>\n", filepath.Join(dir, "demo.db"))
	return nil
}

// demoReport writes the mismatch report of the demo; report.go replaces it.
var demoReport = func(ctx context.Context, a *app, store *repo.Store, dir string) error { return nil }
