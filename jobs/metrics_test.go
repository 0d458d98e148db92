package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel/simulator"
	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// series finds the value of the series name{labels} in families; ok is
// false when there is none. Histograms give their sample count.
func series(fams []*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func gather(t *testing.T, m *jobs.Metrics) []*dto.MetricFamily {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func TestMetricsObserveReconcileAndNotifyPasses(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		m := jobs.NewMetrics()

		// Before any refresh the backlog is not exposed; counters with known
		// labels are, at zero.
		fams := gather(t, m)
		for _, name := range []string{"recon_backlog_due_orders", "recon_open_mismatches", "recon_notifications"} {
			if _, ok := series(fams, name, nil); ok {
				t.Fatalf("%s exposed before it was counted", name)
			}
		}
		if v, ok := series(fams, "recon_notifications_total", map[string]string{"result": "dead"}); !ok || v != 0 {
			t.Fatalf("dead notifications before any pass = %v, %v; want 0", v, ok)
		}

		behaviours := map[string]simulator.Behaviour{
			"MT-paid":    {Status: recon.ChannelPaid},
			"MT-failed":  {Status: recon.ChannelFailed},
			"MT-amount":  {Status: recon.ChannelPaid, Amount: 1},
			"MT-pending": {Status: recon.ChannelPending},
			"MT-badsig":  {Status: recon.ChannelPaid, BadSignature: true},
		}
		for no, b := range behaviours {
			o := repotest.Order(no, t0)
			e.seed(&o)
			e.sim.Set(no, b)
		}
		if err := m.RefreshBacklog(ctx, db.Store, t0, time.Minute); err != nil {
			t.Fatal(err)
		}
		fams = gather(t, m)
		if v, _ := series(fams, "recon_backlog_due_orders", nil); v != 5 {
			t.Fatalf("due before the pass = %v, want 5", v)
		}
		if v, _ := series(fams, "recon_backlog_oldest_age_seconds", nil); v != 3600 {
			t.Fatalf("oldest age = %v, want 3600", v)
		}

		rec := e.reconciler(db.Store, nil)
		rec.Observer = m
		if _, err := rec.Run(ctx, jobs.Window{}); err != nil {
			t.Fatal(err)
		}
		if err := m.RefreshBacklog(ctx, db.Store, e.clock.Now(), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := m.RefreshMismatches(ctx, db.Store, e.clock.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}

		var mu sync.Mutex
		posts := 0
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			mu.Lock()
			posts++
			mu.Unlock()
		}))
		defer srv.Close()
		if err := db.Store.UpsertMerchant(ctx, repo.Merchant{ID: "m1", NotifyURL: srv.URL, NotifySecret: "k"}, t0); err != nil {
			t.Fatal(err)
		}
		d := &jobs.Dispatcher{Store: db.Store, Clock: e.clock, Owner: "test", Observer: m, AllowPrivateNetworks: true,
			Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		if _, err := d.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m.RefreshNotifications(ctx, db.Store, e.clock.Now()); err != nil {
			t.Fatal(err)
		}

		fams = gather(t, m)
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"recon_lookups_total", map[string]string{"channel": "sim", "outcome": "PAID"}, 2},
			{"recon_lookups_total", map[string]string{"channel": "sim", "outcome": "FAILED"}, 1},
			{"recon_lookups_total", map[string]string{"channel": "sim", "outcome": "PENDING"}, 1},
			{"recon_lookups_total", map[string]string{"channel": "sim", "outcome": "bad_signature"}, 1},
			{"recon_lookup_duration_seconds", map[string]string{"channel": "sim"}, 5},
			{"recon_order_duration_seconds", nil, 5},
			{"recon_transitions_total", map[string]string{"to": "PAID"}, 1},
			{"recon_transitions_total", map[string]string{"to": "FAILED"}, 1},
			{"recon_transitions_total", map[string]string{"to": "CLOSED"}, 0},
			{"recon_mismatches_total", map[string]string{"kind": "AMOUNT_MISMATCH"}, 1},
			{"recon_conflicts_total", nil, 0},
			{"recon_notifications_total", map[string]string{"result": "delivered"}, 2},
			{"recon_notifications_total", map[string]string{"result": "dead"}, 0},
			{"recon_notification_duration_seconds", nil, 2},
			{"recon_runs_total", map[string]string{"kind": "reconcile", "status": "SUCCEEDED"}, 1},
			{"recon_runs_total", map[string]string{"kind": "notify", "status": "SUCCEEDED"}, 1},
			{"recon_run_duration_seconds", map[string]string{"kind": "reconcile"}, 1},
			{"recon_last_success_timestamp_seconds", map[string]string{"kind": "reconcile"}, float64(t0.Unix())},
			{"recon_last_success_timestamp_seconds", map[string]string{"kind": "notify"}, float64(t0.Unix())},
			// Read from the database: the amount mismatch is open (detected
			// at t0, counted a minute later), the other kinds are at zero.
			{"recon_open_mismatches", map[string]string{"kind": "AMOUNT_MISMATCH"}, 1},
			{"recon_open_mismatches", map[string]string{"kind": "STUCK_PENDING"}, 0},
			{"recon_oldest_open_mismatch_age_seconds", map[string]string{"kind": "AMOUNT_MISMATCH"}, 60},
			{"recon_oldest_open_mismatch_age_seconds", map[string]string{"kind": "STUCK_PENDING"}, 0},
			{"recon_notifications", map[string]string{"status": "DELIVERED"}, 2},
			{"recon_notifications", map[string]string{"status": "PENDING"}, 0},
			{"recon_notifications", map[string]string{"status": "DEAD"}, 0},
		} {
			if v, ok := series(fams, c.name, c.labels); !ok || v != c.want {
				t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if v, ok := series(fams, "recon_backlog_due_orders", nil); !ok || v != 0 {
			t.Errorf("due after the pass = %v (present %v), want 0", v, ok)
		}
		if v, ok := series(fams, "recon_backlog_oldest_age_seconds", nil); !ok || v != 0 {
			t.Errorf("oldest age after the pass = %v (present %v), want 0", v, ok)
		}
		if posts != 2 {
			t.Errorf("merchant got %d posts, want 2", posts)
		}
	})
}

func TestMetricsFailedRunKeepsLastSuccess(t *testing.T) {
	m := jobs.NewMetrics()
	m.RunFinished(jobs.KindReconcile, repo.RunSucceeded, time.Second, t0)
	m.RunFinished(jobs.KindReconcile, repo.RunFailed, time.Second, t0.Add(time.Minute))
	fams := gather(t, m)
	if v, _ := series(fams, "recon_last_success_timestamp_seconds", map[string]string{"kind": "reconcile"}); v != float64(t0.Unix()) {
		t.Fatalf("last success = %v, want %v", v, t0.Unix())
	}
	if _, ok := series(fams, "recon_last_success_timestamp_seconds", map[string]string{"kind": "notify"}); ok {
		t.Fatal("a kind that never succeeded has a last-success time")
	}
	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rr.Code != http.StatusOK || !strings.Contains(rr.Body.String(), `recon_runs_total{kind="reconcile",status="FAILED"} 1`) {
		t.Fatalf("/metrics = %d\n%s", rr.Code, rr.Body.String())
	}
}

// pushedFamilies decodes the metric families a push sent.
func pushedFamilies(t *testing.T, r *http.Request) []*dto.MetricFamily {
	var fams []*dto.MetricFamily
	dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
	for {
		var f dto.MetricFamily
		if err := dec.Decode(&f); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("decode pushed body: %v", err)
			}
			return fams
		}
		fams = append(fams, &f)
	}
}

func TestMetricsPushToPushgateway(t *testing.T) {
	type request struct {
		method, path, user, pass string
		fams                     map[string]*dto.MetricFamily
	}
	got := make(chan request, 1)
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "pushgateway broken", http.StatusInternalServerError)
			return
		}
		req := request{method: r.Method, path: r.URL.Path, fams: map[string]*dto.MetricFamily{}}
		req.user, req.pass, _ = r.BasicAuth()
		for _, f := range pushedFamilies(t, r) {
			req.fams[f.GetName()] = f
		}
		got <- req
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	m := jobs.NewMetrics()
	m.Lookup("sim", "PAID", 10*time.Millisecond)
	m.RunFinished(jobs.KindReconcile, repo.RunSucceeded, time.Second, t0)
	gw := strings.Replace(srv.URL, "http://", "http://push:pw-s3cret@", 1)
	if err := m.Push(context.Background(), gw, "recon", "pass", "reconcile", "shard", "1/4"); err != nil {
		t.Fatal(err)
	}
	req := <-got
	// POST replaces only the pushed names in the group; shard 1/4 has a
	// slash, so its value is sent base64-encoded.
	// The client orders the grouping labels as it likes: compare them as a set.
	parts := strings.Split(strings.TrimPrefix(req.path, "/metrics/job/recon/"), "/")
	labels := map[string]string{}
	for i := 0; i+1 < len(parts); i += 2 {
		labels[parts[i]] = parts[i+1]
	}
	if req.method != http.MethodPost || !strings.HasPrefix(req.path, "/metrics/job/recon/") || len(parts) != 4 ||
		labels["pass"] != "reconcile" || labels["shard@base64"] != "MS80" {
		t.Fatalf("push = %s %s", req.method, req.path)
	}
	if req.user != "push" || req.pass != "pw-s3cret" {
		t.Fatalf("basic auth = %q %q", req.user, req.pass)
	}
	for _, name := range []string{"recon_lookups_total", "recon_last_success_timestamp_seconds", "recon_run_duration_seconds"} {
		if req.fams[name] == nil {
			t.Errorf("push lacks %s", name)
		}
	}

	fail.Store(true)
	err := m.Push(context.Background(), gw, "recon", "pass", "reconcile")
	if err == nil || strings.Contains(err.Error(), "pw-s3cret") {
		t.Fatalf("failed push = %v; want an error without the password", err)
	}
}

// fixedState answers the state gauges' queries with fixed counts.
type fixedState struct {
	open   []repo.OpenMismatches
	outbox map[string]int64
}

func (f fixedState) CountOpenMismatches(context.Context) ([]repo.OpenMismatches, error) {
	return f.open, nil
}

func (f fixedState) OutboxCounts(context.Context, time.Time) (map[string]int64, int64, error) {
	return f.outbox, 0, nil
}

// The state gauges expose every kind and status they have had, at zero when
// the database has none, and go to the Pushgateway in the group of the job
// alone, which every pass replaces, not in the pass's group.
func TestMetricsStateGaugesPushedToOneGroup(t *testing.T) {
	var mu sync.Mutex
	pushed := map[string][]string{} // path -> the names of the families pushed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("push with %s, want POST", r.Method)
		}
		var names []string
		for _, f := range pushedFamilies(t, r) {
			names = append(names, f.GetName())
		}
		mu.Lock()
		defer mu.Unlock()
		pushed[r.URL.Path] = names
	}))
	defer srv.Close()
	got := func() map[string][]string {
		mu.Lock()
		defer mu.Unlock()
		out := pushed
		pushed = map[string][]string{}
		return out
	}
	ctx := context.Background()

	m := jobs.NewMetrics()
	m.RunFinished(jobs.KindReconcile, repo.RunSucceeded, time.Second, t0)
	// Nothing read yet: only the pass's group is pushed.
	if err := m.Push(ctx, srv.URL, "recon", "pass", "reconcile"); err != nil {
		t.Fatal(err)
	}
	if p := got(); len(p) != 1 || p["/metrics/job/recon/pass/reconcile"] == nil {
		t.Fatalf("pushes before any refresh = %v", p)
	}

	st := fixedState{
		open: []repo.OpenMismatches{
			{Kind: recon.MismatchAmount, Count: 2, Oldest: t0.Add(-time.Hour)},
			{Kind: "RETIRED_KIND", Count: 1, Oldest: t0.Add(-2 * time.Hour)},
		},
		outbox: map[string]int64{repo.NotifyDead: 3, repo.NotifyDelivered: 10},
	}
	if err := m.RefreshMismatches(ctx, st, t0); err != nil {
		t.Fatal(err)
	}
	if err := m.RefreshNotifications(ctx, st, t0); err != nil {
		t.Fatal(err)
	}
	fams := gather(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"recon_open_mismatches", map[string]string{"kind": "AMOUNT_MISMATCH"}, 2},
		{"recon_open_mismatches", map[string]string{"kind": "RETIRED_KIND"}, 1},
		{"recon_open_mismatches", map[string]string{"kind": "CURRENCY_MISMATCH"}, 0},
		{"recon_oldest_open_mismatch_age_seconds", map[string]string{"kind": "AMOUNT_MISMATCH"}, 3600},
		{"recon_oldest_open_mismatch_age_seconds", map[string]string{"kind": "RETIRED_KIND"}, 7200},
		{"recon_notifications", map[string]string{"status": "DEAD"}, 3},
		{"recon_notifications", map[string]string{"status": "DELIVERED"}, 10},
		{"recon_notifications", map[string]string{"status": "PENDING"}, 0},
	} {
		if v, ok := series(fams, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}

	if err := m.Push(ctx, srv.URL, "recon", "pass", "notify"); err != nil {
		t.Fatal(err)
	}
	p := got()
	state := []string{"recon_notifications", "recon_oldest_open_mismatch_age_seconds", "recon_open_mismatches"}
	if pass := p["/metrics/job/recon/pass/notify"]; len(p) != 2 || !slices.Contains(pass, "recon_runs_total") ||
		slices.ContainsFunc(pass, func(n string) bool { return slices.Contains(state, n) }) {
		t.Fatalf("pushes = %v; want the pass's series in its group", p)
	}
	if got := p["/metrics/job/recon"]; !slices.Equal(got, state) {
		t.Fatalf("pushed to the job's group: %v, want %v", got, state)
	}

	// All resolved, all resent: every series seen before reads zero.
	if err := m.RefreshMismatches(ctx, fixedState{}, t0); err != nil {
		t.Fatal(err)
	}
	if err := m.RefreshNotifications(ctx, fixedState{}, t0); err != nil {
		t.Fatal(err)
	}
	fams = gather(t, m)
	for name, labels := range map[string]map[string]string{
		"recon_open_mismatches":                  {"kind": "RETIRED_KIND"},
		"recon_oldest_open_mismatch_age_seconds": {"kind": "AMOUNT_MISMATCH"},
		"recon_notifications":                    {"status": "DEAD"},
	} {
		if v, ok := series(fams, name, labels); !ok || v != 0 {
			t.Errorf("%s%v after it emptied = %v (present %v), want 0", name, labels, v, ok)
		}
	}
}

// fixedBacklog is a BacklogStore with a fixed answer.
type fixedBacklog struct {
	n      int64
	oldest time.Time
}

func (b fixedBacklog) CountDue(context.Context, time.Time, time.Time) (int64, *time.Time, error) {
	return b.n, &b.oldest, nil
}

// The example alert rules use only series that Metrics exposes, with the
// labels it gives them.
func TestAlertRulesUseExposedSeries(t *testing.T) {
	rules, err := os.ReadFile("../deployments/alerts/recon-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := jobs.NewMetrics()
	m.Lookup("sim", "PAID", time.Millisecond)
	m.RunFinished(jobs.KindReconcile, repo.RunSucceeded, time.Second, t0)
	m.StatementDone("sim", "reconciled", 10, t0)
	m.Callback("sim", "settled", time.Millisecond)
	m.SetSettled(map[[2]string]int64{{"sim", jobs.SourceCallback}: 1})
	if err := m.RefreshBacklog(context.Background(), fixedBacklog{3, t0.Add(-time.Hour)}, t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.RefreshMismatches(context.Background(), fixedState{}, t0); err != nil {
		t.Fatal(err)
	}
	if err := m.RefreshNotifications(context.Background(), fixedState{}, t0); err != nil {
		t.Fatal(err)
	}
	labels := map[string]map[string]bool{}
	for _, f := range gather(t, m) {
		names := map[string]bool{}
		for _, mm := range f.GetMetric() {
			for _, l := range mm.GetLabel() {
				names[l.GetName()] = true
			}
		}
		labels[f.GetName()] = names
	}
	if v, _ := series(gather(t, m), "recon_backlog_oldest_age_seconds", nil); v != 3600 {
		t.Fatalf("backlog age = %v, want 3600", v)
	}
	used := regexp.MustCompile(`\b(recon_[a-z_]+)(\{([^}]*)\})?`).FindAllStringSubmatch(string(rules), -1)
	if len(used) == 0 {
		t.Fatal("no recon_ series in the alert rules")
	}
	for _, u := range used {
		have, ok := labels[u[1]]
		if !ok {
			t.Errorf("alert rules use %s, which recon does not expose", u[1])
			continue
		}
		for _, matcher := range strings.Split(u[3], ",") {
			if name, _, found := strings.Cut(strings.TrimSpace(matcher), "="); found && !have[strings.TrimRight(name, "!~")] {
				t.Errorf("alert rules select %s by label %q, which it does not have", u[1], name)
			}
		}
	}
}

// TestSetSettled: a channel and source counted before and missing from a
// later count reads zero, not its last value.
func TestSetSettled(t *testing.T) {
	m := jobs.NewMetrics()
	m.SetSettled(map[[2]string]int64{{"ali", "callback"}: 3, {"ali", "reconcile"}: 1})
	m.SetSettled(map[[2]string]int64{{"ali", "reconcile"}: 8})
	for source, want := range map[string]float64{"callback": 0, "reconcile": 8} {
		if v, _ := series(gather(t, m), "recon_settled_orders_last_hour", map[string]string{"channel": "ali", "source": source}); v != want {
			t.Errorf("%s = %v, want %v", source, v, want)
		}
	}
}
