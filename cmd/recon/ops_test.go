package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// merchantServer accepts every notification and counts them.
func merchantServer(t *testing.T) (*httptest.Server, func() int) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		n++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricSample finds the value of one exposed series (name and labels exactly as
// written in the text format).
func metricSample(exposition, series string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(exposition))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return v, true
		}
	}
	return "", false
}

// The scheduler serves /healthz and /metrics; after its passes the metrics
// hold every series the alert rules and dashboards use.
func TestScheduleServesMetricsAfterAPass(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		addr := freeAddr(t)
		e := newOpsEnv(t, db, 20, "concurrency: 4",
			"metrics: {addr: '"+addr+"'}\nschedule: {reconcile: '@every 1s', notify: '@every 1s'}\n"+
				"notify: {allow_private_networks: true}\n")
		merchant, posts := merchantServer(t)
		if err := db.Store.UpsertMerchant(context.Background(), repo.Merchant{ID: "m1", NotifyURL: merchant.URL, NotifySecret: "k"},
			time.Now()); err != nil {
			t.Fatal(err)
		}
		p := e.start("schedule")
		base := "http://" + addr
		var metrics string
		pollUntil(t, 2*time.Minute, "/metrics to show a reconcile and a notify success", func() bool {
			code, body := httpGet(base + "/metrics")
			metrics = body
			_, rec := metricSample(body, `recon_last_success_timestamp_seconds{kind="reconcile"}`)
			_, ntf := metricSample(body, `recon_last_success_timestamp_seconds{kind="notify"}`)
			delivered, _ := metricSample(body, `recon_notifications_total{result="delivered"}`)
			return code == http.StatusOK && rec && ntf && delivered != "" && delivered != "0"
		})
		if code, body := httpGet(base + "/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
			t.Fatalf("/healthz = %d %q", code, body)
		}
		for _, series := range []string{
			`recon_lookups_total{channel="sim",outcome="PAID"}`,
			`recon_lookups_total{channel="sim",outcome="PENDING"}`,
			`recon_lookup_duration_seconds_count{channel="sim"}`,
			`recon_lookup_duration_seconds_bucket{channel="sim",le="0.1"}`,
			`recon_transitions_total{to="PAID"}`,
			`recon_mismatches_total{kind="AMOUNT_MISMATCH"}`,
			`recon_conflicts_total`,
			`recon_notifications_total{result="dead"}`,
			`recon_run_duration_seconds_count{kind="reconcile"}`,
			`recon_run_duration_seconds_count{kind="notify"}`,
			`recon_runs_total{kind="reconcile",status="SUCCEEDED"}`,
			`recon_open_mismatches{kind="AMOUNT_MISMATCH"}`,
			`recon_oldest_open_mismatch_age_seconds{kind="AMOUNT_MISMATCH"}`,
			`recon_notifications{status="DEAD"}`,
			`go_goroutines`,
		} {
			if _, ok := metricSample(metrics, series); !ok {
				t.Errorf("/metrics lacks %s", series)
			}
		}
		if v, _ := metricSample(metrics, `recon_transitions_total{to="PAID"}`); v == "0" {
			t.Errorf("no PAID transition counted")
		}
		// The backlog gauges come from counting the due orders after a
		// pass (on MySQL; see the metrics tests in jobs for SQLite).
		if db.Dialect == repo.MySQL {
			for _, series := range []string{"recon_backlog_due_orders", "recon_backlog_oldest_age_seconds"} {
				if _, ok := metricSample(metrics, series); !ok {
					t.Errorf("/metrics lacks %s", series)
				}
			}
		}
		if posts() == 0 {
			t.Error("the merchant got no notification")
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := e.finish("schedule", p); code != 0 {
			t.Fatalf("recon schedule exited %d after SIGTERM", code)
		}
		if !strings.Contains(p.stderr.String(), "recon schedule stopped") {
			t.Fatal("recon schedule did not log its stop")
		}
		if n := e.count("SELECT COUNT(*) FROM recon_leases"); n != 0 {
			t.Fatalf("%d leases left after the scheduler stopped", n)
		}
	})
}

// pushgateway records what is pushed to it; it answers with status.
type pushgateway struct {
	mu     sync.Mutex
	pushes []string   // "METHOD path"
	bodies [][]string // the names of the families pushed
	status int
}

func newPushgateway(t *testing.T, status int) (*pushgateway, string) {
	g := &pushgateway{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var names []string
		dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
		for {
			var f dto.MetricFamily
			if err := dec.Decode(&f); err != nil {
				break
			}
			names = append(names, f.GetName())
		}
		g.mu.Lock()
		g.pushes = append(g.pushes, r.Method+" "+r.URL.Path)
		g.bodies = append(g.bodies, names)
		g.mu.Unlock()
		w.WriteHeader(g.status)
	}))
	t.Cleanup(srv.Close)
	return g, srv.URL
}

func (g *pushgateway) got() ([]string, [][]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.pushes...), append([][]string(nil), g.bodies...)
}

func TestOneShotPassesPushToThePushgateway(t *testing.T) {
	db := repotest.NewSQLite(t)
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+db.DSN+"'}\n"+
		"channels:\n  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n")
	now := time.Now().UTC()
	o := repotest.Order("push-1", now)
	repotest.Seed(t, db.Store, &o)

	g, url := newPushgateway(t, http.StatusOK)
	if code, out, stderr := runCLI(t, nil, "run", "--shard", "0/1", "--pushgateway", url, "--config", cfg); code != 0 {
		t.Fatalf("run: %d %s %s", code, out, stderr)
	}
	if code, out, stderr := runCLI(t, nil, "notify", "--pushgateway", url, "--config", cfg); code != 0 {
		t.Fatalf("notify: %d %s %s", code, out, stderr)
	}
	// A dry run pushes nothing: its success is no pass that happened.
	if code, _, stderr := runCLI(t, nil, "run", "--dry-run", "--pushgateway", url, "--config", cfg); code != 0 {
		t.Fatalf("dry run: %d %s", code, stderr)
	}
	pushes, bodies := g.got()
	// Each pass pushes its own series to its group, then the gauges read
	// from the database to the group of the job alone.
	want := []string{"POST /metrics/job/recon/pass/reconcile", "POST /metrics/job/recon",
		"POST /metrics/job/recon/pass/notify", "POST /metrics/job/recon"}
	if strings.Join(pushes, ", ") != strings.Join(want, ", ") {
		t.Fatalf("pushes = %v, want %v", pushes, want)
	}
	for _, name := range []string{"recon_lookups_total", "recon_transitions_total", "recon_last_success_timestamp_seconds",
		"recon_run_duration_seconds", "recon_backlog_due_orders"} {
		if !slices.Contains(bodies[0], name) {
			t.Errorf("reconcile push lacks %s", name)
		}
	}
	if !slices.Contains(bodies[2], "recon_notifications_total") || slices.Contains(bodies[2], "recon_backlog_due_orders") {
		t.Errorf("notify push has the wrong series: %v", bodies[2])
	}
	if want := []string{"recon_oldest_open_mismatch_age_seconds", "recon_open_mismatches"}; !slices.Equal(bodies[1], want) {
		t.Errorf("gauges pushed after the reconcile pass = %v, want %v", bodies[1], want)
	}
	// The notify pass read only the outbox, so the mismatch gauges pushed
	// before stay in the group.
	if want := []string{"recon_notifications"}; !slices.Equal(bodies[3], want) {
		t.Errorf("gauges pushed after the notify pass = %v, want %v", bodies[3], want)
	}

	// metrics.pushgateway from the config; a broken gateway does not fail
	// the pass.
	broken, burl := newPushgateway(t, http.StatusInternalServerError)
	cfg2 := writeConfig(t, "database: {driver: sqlite, dsn: '"+db.DSN+"'}\n"+
		"metrics: {pushgateway: '"+burl+"'}\nlog: {format: json}\n"+
		"channels:\n  - {name: sim, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n")
	code, out, stderr := runCLI(t, nil, "run", "--config", cfg2)
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("run with a broken Pushgateway: %d %s %s", code, out, stderr)
	}
	if p, _ := broken.got(); len(p) != 1 || !strings.Contains(stderr, `"msg":"pushing metrics failed"`) {
		t.Fatalf("pushes %v; stderr %s", p, stderr)
	}
	if code, _, stderr := runCLI(t, nil, "run", "--pushgateway", "not a url", "--config", cfg); code != exitUsage ||
		!strings.Contains(stderr, "--pushgateway") {
		t.Fatalf("bad --pushgateway: %d %s", code, stderr)
	}
}

// A pass whose lease another process holds prints that it skipped, in text
// and JSON, and exits 0.
func TestRunAndNotifySkipWhileTheLeaseIsHeld(t *testing.T) {
	db := repotest.NewSQLite(t)
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+db.DSN+"'}\n"+
		"channels:\n  - {name: sim, kind: simulator, simulator: {seed: 1}}\n")
	ctx := context.Background()
	for _, name := range []string{"reconcile:1/2", "notify", "backfill"} {
		if _, ok, err := db.Store.AcquireLease(ctx, name, "other-host/7", time.Hour); err != nil || !ok {
			t.Fatalf("take lease %s: %v %v", name, ok, err)
		}
	}
	code, out, stderr := runCLI(t, nil, "run", "--shard", "1/2", "--config", cfg)
	if code != 0 || !strings.Contains(out, "skipped: lease reconcile:1/2 is held by other-host/7 until") ||
		!strings.Contains(stderr, "skipping this pass") {
		t.Fatalf("run: %d %q %s", code, out, stderr)
	}
	code, out, _ = runCLI(t, nil, "notify", "--output", "json", "--config", cfg)
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || res["status"] != "SKIPPED" ||
		res["lease_holder"] != "other-host/7" || res["delivered"] != 0.0 {
		t.Fatalf("notify: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, nil, "backfill", "--from", "2026-01-01", "--to", "2026-01-02", "--config", cfg); code != 0 ||
		!strings.Contains(out, "skipped") {
		t.Fatalf("backfill: %d %q", code, out)
	}
	// Other shards, and dry runs, are not blocked.
	if code, out, _ := runCLI(t, nil, "run", "--shard", "0/2", "--config", cfg); code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("other shard: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, nil, "run", "--shard", "1/2", "--dry-run", "--config", cfg); code != 0 || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: %d %q", code, out)
	}
}

// Secrets never reach a log line, at any level, on success or failure;
// order-level lines are debug only.
func TestLogsHoldNoSecretsAndNoOrderLinesAboveDebug(t *testing.T) {
	const (
		dsnPassword    = "dsn-pw-s3cret"
		channelSecret  = "chan-s3cret"
		notifySecret   = "merchant-s3cret"
		notifyURLToken = "url-tok3n"
		pushPassword   = "push-pw-s3cret"
	)
	secrets := []string{dsnPassword, channelSecret, notifySecret, notifyURLToken, pushPassword}
	check := func(what, logs string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("%s logged a secret (%s):\n%s", what, s, logs)
			}
		}
	}

	// The database cannot be reached: its error must not carry the DSN.
	dead := writeConfig(t, "database: {driver: mysql, dsn: 'recon:"+dsnPassword+"@tcp(127.0.0.1:1)/recon'}\n"+
		"log: {level: debug, format: json}\n")
	for _, args := range [][]string{{"run"}, {"notify"}, {"migrate"}} {
		code, out, stderr := runCLI(t, nil, append(args, "--config", dead)...)
		if code == 0 {
			t.Fatalf("%v against no database exited 0", args)
		}
		check(fmt.Sprint(args), out+stderr)
	}

	// A pass with signed answers, bad signatures, mismatches, transient
	// errors and failing notifications, logged at debug and at info.
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer merchant.Close()
	_, gwURL := newPushgateway(t, http.StatusInternalServerError)
	db := repotest.NewSQLite(t)
	ctx := context.Background()
	if err := db.Store.UpsertMerchant(ctx, repo.Merchant{ID: "m1", NotifyURL: merchant.URL + "/hook?token=" + notifyURLToken,
		NotifySecret: notifySecret}, time.Now()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var orders []*recon.Order
	for i := range 40 {
		o := repotest.Order(fmt.Sprintf("log-%02d", i), now)
		orders = append(orders, &o)
	}
	repotest.Seed(t, db.Store, orders...)
	pushURL := strings.Replace(gwURL, "http://", "http://push:"+pushPassword+"@", 1)
	for _, level := range []string{"debug", "info"} {
		cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+db.DSN+"'}\n"+
			"log: {level: "+level+", format: json}\n"+
			"reconcile: {grace_period: 0s, query_schedule: [1ms], lookup_retry: {initial_interval: 1ms, max_interval: 2ms, max_elapsed: 20ms}}\n"+
			"notify: {retry_schedule: [1ms], allow_private_networks: true}\n"+
			"metrics: {pushgateway: '"+pushURL+"'}\n"+
			"channels:\n  - {name: sim, kind: simulator, secret: "+channelSecret+", simulator: {seed: 3, paid_rate: 0.4, failed_rate: 0.1,"+
			" amount_tamper_rate: 0.1, bad_signature_rate: 0.2, transient_rate: 0.2}}\n")
		var logs strings.Builder
		for _, args := range [][]string{{"run"}, {"notify"}, {"run"}, {"notify"}} {
			code, out, stderr := runCLI(t, nil, append(args, "--config", cfg)...)
			if code != 0 {
				t.Fatalf("%s %v: %d %s", level, args, code, stderr)
			}
			logs.WriteString(out + stderr)
		}
		check("passes at "+level, logs.String())
		if level == "debug" {
			if !strings.Contains(logs.String(), `"order_no"`) {
				t.Fatal("no order-level line at debug: the check below would prove nothing")
			}
			continue
		}
		orderLine := regexp.MustCompile(`"order_no"`)
		for _, line := range strings.Split(logs.String(), "\n") {
			if orderLine.MatchString(line) {
				t.Errorf("order-level line above debug: %s", line)
			}
		}
	}
}

// A statement pass pushes to its channel's group, so a pass of one channel
// does not replace the statement series of the others.
func TestStatementPassesPushToTheirChannelsGroup(t *testing.T) {
	db := repotest.NewSQLite(t)
	cfg := writeConfig(t, "database: {driver: sqlite, dsn: '"+db.DSN+"'}\nstatements: {timezone: UTC}\nchannels:\n"+
		"  - {name: a, kind: simulator, simulator: {seed: 1, paid_rate: 1}}\n"+
		"  - {name: b, kind: simulator, simulator: {seed: 2, paid_rate: 1}}\n")
	g, url := newPushgateway(t, http.StatusOK)
	for _, ch := range []string{"a", "b"} {
		if code, out, stderr := runCLI(t, nil, "statement", "run", "--channel", ch, "--date", "2026-11-22",
			"--pushgateway", url, "--config", cfg); code != 0 {
			t.Fatalf("statement run %s: %d %s %s", ch, code, out, stderr)
		}
	}
	pushes, bodies := g.got()
	// The grouping labels come in any order in the path.
	want := []string{"a", "b"}
	if len(pushes) != len(want) {
		t.Fatalf("pushes = %v, want one per channel", pushes)
	}
	for i, ch := range want {
		if p := pushes[i] + "/"; !strings.HasPrefix(p, "POST /metrics/job/recon/") || !strings.Contains(p, "/pass/statement/") ||
			!strings.Contains(p, "/statement_channel/"+ch+"/") {
			t.Errorf("push %d = %s, want the group of pass statement, statement_channel %s", i, pushes[i], ch)
		}
		if !slices.Contains(bodies[i], "recon_statement_last_success_timestamp_seconds") {
			t.Errorf("push %d lacks the statement success gauge: %v", i, bodies[i])
		}
	}
}
