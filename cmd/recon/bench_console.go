package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/console"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
)

func (a *app) benchConsoleCommand() *cobra.Command {
	var n, repeat int
	var keep bool
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Time the console's mismatch list, totals and CSV export over N seeded mismatches in a scratch database",
		Long: `bench console creates a scratch database next to the configured one (MySQL:
<db>_bench_console; SQLite: a temporary file), seeds N unresolved mismatches
(every kind, three channels, fifty merchants, three currencies, over 30 days),
serves the console on a loopback port and times its requests: list pages
(first, middle, last, filtered), the CSV export of all N, and four list
requests at once; then prints the peak RSS of the serving (seeding excluded).
The console shows console.timezone of the config, as recon serve does (its
chart counts that zone's days).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if n < 1 || repeat < 1 {
				return usageErr("--mismatches and --repeat must be at least 1")
			}
			return a.benchConsole(cmd.Context(), cfg, n, repeat, keep)
		},
	}
	cmd.Flags().IntVar(&n, "mismatches", 200000, "unresolved mismatches to seed")
	cmd.Flags().IntVar(&repeat, "repeat", 5, "times each list request is made (the fastest, median and slowest are printed)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the scratch database")
	return cmd
}

// benchConsoleUser is the console user of the benchmark's requests.
const benchConsoleUser = "bench@example.com"

func (a *app) benchConsole(ctx context.Context, cfg Config, n, repeat int, keep bool) error {
	driver := repo.Dialect(cfg.Database.Driver)
	store, dsn, cleanup, err := scratchStore(ctx, driver, cfg.Database.DSN, "_bench_console", keep, 8)
	if err != nil {
		return err
	}
	defer cleanup()
	loc, err := time.LoadLocation(cfg.Console.Timezone)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "bench console: %s, %d mismatches, console.timezone %s\n", driver, n, loc)
	t := time.Now()
	if err := seedBenchMismatches(ctx, driver, dsn, n, time.Now().UTC()); err != nil {
		return err
	}
	for i := range 50 {
		if err := store.UpsertMerchant(ctx, repo.Merchant{ID: fmt.Sprintf("m%02d", i), Name: fmt.Sprintf("商户 %02d", i), NotifyURL: "https://example.com/n"}, time.Now()); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "seeded in            %s\n", time.Since(t).Round(time.Millisecond))

	srv, err := console.New(console.Options{Store: store, Desk: &jobs.Desk{Store: store},
		Auth: console.Auth{Mode: console.ModeProxy, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			Users: []console.User{{Name: benchConsoleUser, Role: console.Viewer}}},
		Channels: []string{"alipay", "wechatpay", "stripe"}, Clock: recon.SystemClock{}, Logger: a.log, Location: loc})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	// The seeding's garbage is not the console's: drop it, and start the
	// high-water mark of the RSS afresh (Linux).
	runtime.GC()
	debug.FreeOSMemory()
	rssReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	fmt.Fprintf(a.stdout, "RSS before requests  %s\n", currentRSS())

	// get answers how long path took and how many lines its body had.
	get := func(path string) (time.Duration, int, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set(console.DefaultHeader, benchConsoleUser)
		t := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		var lines lineCounter
		_, err = io.Copy(&lines, resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return time.Since(t), lines.n, err
	}
	last := (n + 49) / 50
	// Where a list request's time goes: the totals' groups and one page.
	for _, c := range []struct {
		name string
		f    repo.MismatchFilter
		read func(f repo.MismatchFilter) error
	}{
		{"totals (MismatchGroups)", repo.MismatchFilter{Unresolved: true, Zone: loc}, func(f repo.MismatchFilter) error { _, err := store.MismatchGroups(ctx, f); return err }},
		{"first page", repo.MismatchFilter{Unresolved: true, Limit: 50}, func(f repo.MismatchFilter) error { _, err := store.ListMismatches(ctx, f); return err }},
		{"last page", repo.MismatchFilter{Unresolved: true, Limit: 50, Offset: (last - 1) * 50}, func(f repo.MismatchFilter) error { _, err := store.ListMismatches(ctx, f); return err }},
	} {
		var took []time.Duration
		for range repeat {
			t := time.Now()
			if err := c.read(c.f); err != nil {
				return err
			}
			took = append(took, time.Since(t))
		}
		fmt.Fprintf(a.stdout, "  %-60s %s\n", c.name, timings(took))
	}
	for _, path := range []string{"/mismatches", fmt.Sprintf("/mismatches?page=%d", last/2), fmt.Sprintf("/mismatches?page=%d", last),
		"/mismatches?kind=AMOUNT_MISMATCH&channel=alipay", "/mismatches?merchant=m07&from=" + time.Now().UTC().AddDate(0, 0, -7).Format(time.DateOnly),
		"/mismatches?resolution=ALL"} {
		var took []time.Duration
		for range repeat {
			d, _, err := get(path)
			if err != nil {
				return err
			}
			took = append(took, d)
		}
		fmt.Fprintf(a.stdout, "GET %-58s %s\n", path, timings(took))
	}
	d, lines, err := get("/mismatches.csv")
	if err != nil {
		return err
	}
	if lines != n+1 {
		return fmt.Errorf("the CSV export has %d lines, want a header and %d rows", lines, n)
	}
	fmt.Fprintf(a.stdout, "GET %-58s %s (%d rows, %.0f rows/s)\n", "/mismatches.csv", d.Round(time.Millisecond), n, float64(n)/d.Seconds())
	var wg sync.WaitGroup
	errs := make([]error, 4)
	t = time.Now()
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = get(fmt.Sprintf("/mismatches?page=%d", 1+i*last/4))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "4 list pages at once %s\n", time.Since(t).Round(time.Millisecond))
	if rssReset {
		fmt.Fprintf(a.stdout, "peak RSS serving     %s (seeding excluded)\n", peakRSS())
	} else {
		fmt.Fprintf(a.stdout, "peak RSS             %s (seeding included: /proc/self/clear_refs is not writable)\n", peakRSS())
	}
	return nil
}

// seedBenchMismatches inserts n unresolved mismatches detected over the 30
// days before now.
func seedBenchMismatches(ctx context.Context, driver repo.Dialect, dsn string, n int, now time.Time) error {
	channels := []string{"alipay", "wechatpay", "stripe"}
	currencies := []string{"CNY", "CNY", "CNY", "USD", "JPY"}
	return insertRowsParallel(ctx, driver, dsn, n, func(start, end int, args []any) (string, []any) {
		for i := start; i < end; i++ {
			kind := recon.MismatchKinds[i%len(recon.MismatchKinds)]
			amount := int64(100 + i%9000)
			local, chStatus, chAmount := "PENDING", "PAID", amount+int64(i%7)
			switch kind {
			case recon.MismatchLocalPaidChannelUnpaid:
				local, chStatus, chAmount = "PAID", "NOT_FOUND", 0
			case recon.MismatchStuckPending:
				chStatus, chAmount = "PENDING", 0
			}
			at := now.Add(-time.Duration(int64(i) * int64(30*24*time.Hour) / int64(n))).Truncate(time.Microsecond)
			cur := currencies[i%len(currencies)]
			args = append(args, int64(i+1), fmt.Sprintf("B%09d", i), fmt.Sprintf("m%02d", i%50), channels[i%len(channels)], string(kind),
				local, chStatus, amount, chAmount, cur, cur, fmt.Sprintf("T%09d", i), at, at)
		}
		return "INSERT INTO recon_mismatches (order_id, order_no, merchant_id, channel, kind, local_status, channel_status, local_amount, " +
			"channel_amount, local_currency, channel_currency, channel_txn_id, detected_at, last_seen_at, detail, resolution) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'bench', 'OPEN'), ", end-start), ", "), args
	})
}

// timings describes repeated timings: fastest, median and slowest.
func timings(took []time.Duration) string {
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("fastest %s, median %s, slowest %s", r(took[0]), r(took[len(took)/2]), r(took[len(took)-1]))
}

// lineCounter counts the lines written to it.
type lineCounter struct{ n int }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// currentRSS reads the process's resident set size now.
func currentRSS() string { return procStatus("VmRSS:") }
