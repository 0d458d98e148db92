package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// Metrics is recon's Prometheus instrumentation. It observes reconcile and
// notify passes (it is an Observer and a NotifyObserver) and keeps its series
// in its own registries, which recon schedule serves on /metrics and one-shot
// commands push to a Pushgateway. The series names are what
// deployments/alerts/recon-rules.yaml relies on.
//
// A pass's counters start at zero in every one-shot process, and the
// Pushgateway replaces a group's series with each push, so what alerts count
// on comes from gauges read from the database after a pass instead (open
// mismatches, notifications by status): they hold the same value whichever
// process read them last.
type Metrics struct {
	reg *prometheus.Registry
	// state holds the gauges read from the database. Push sends them to a
	// group of their own, shared by every pass, so the latest count replaces
	// the earlier one whichever pass (kind, shard) read it.
	state *prometheus.Registry

	lookups        *prometheus.CounterVec
	lookupSeconds  *prometheus.HistogramVec
	orderSeconds   prometheus.Histogram
	transitions    *prometheus.CounterVec
	refundMoves    *prometheus.CounterVec
	mismatches     *prometheus.CounterVec
	conflicts      prometheus.Counter
	dbConflicts    *prometheus.CounterVec
	channelPaused  *prometheus.GaugeVec
	deferred       *prometheus.CounterVec
	backlogDue     *prometheus.GaugeVec
	backlogAge     *prometheus.GaugeVec
	notifications  *prometheus.CounterVec
	notifySeconds  prometheus.Histogram
	runs           *prometheus.CounterVec
	runSeconds     *prometheus.HistogramVec
	lastSuccessSec *prometheus.GaugeVec

	statements      *prometheus.CounterVec
	statementLines  *prometheus.CounterVec
	statementLast   *prometheus.GaugeVec
	openMismatches  *prometheus.GaugeVec
	openMismatchAge *prometheus.GaugeVec
	outbox          *prometheus.GaugeVec

	callbacks       *prometheus.CounterVec
	callbackSeconds *prometheus.HistogramVec
	settled         *prometheus.GaugeVec
	settledSources  map[[2]string]bool

	mu sync.Mutex // serializes refreshes of the state gauges
	// gaugeKinds and gaugeStatuses are the label values the state gauges
	// have had: one missing from a later count is set to zero, not left
	// at its last value.
	gaugeKinds, gaugeStatuses map[string]bool
}

var (
	_ CallbackObserver = (*Metrics)(nil)
	_ Observer         = (*Metrics)(nil)
	_ NotifyObserver   = (*Metrics)(nil)
	_ ChannelObserver  = (*Metrics)(nil)
)

// NewMetrics returns the metrics in a new registry. Counters whose label
// values are known in advance start at zero, so rates and increases see a
// pass's first event.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg:   prometheus.NewRegistry(),
		state: prometheus.NewRegistry(),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_lookups_total",
			Help: "Channel order lookups (retries included), by channel and outcome: the channel status, bad_signature or error_<class>."},
			[]string{"channel", "outcome"}),
		lookupSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "recon_lookup_duration_seconds",
			Help:    "Time one channel lookup took, retries and rate-limit waits included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"channel"}),
		orderSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "recon_order_duration_seconds",
			Help:    "Time one order took from its lookup to its commit.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_transitions_total",
			Help: "Orders moved out of PENDING by reconciliation, by new status."}, []string{"to"}),
		refundMoves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_refund_transitions_total",
			Help: "Refunds moved out of PENDING by reconciliation, by new status."}, []string{"to"}),
		mismatches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_mismatches_total",
			Help: "Mismatch detections, by kind: every pass that finds an order's mismatch counts it, so a mismatch still open is counted again each time it is seen. New mismatches show as a rise of recon_open_mismatches."},
			[]string{"kind"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "recon_conflicts_total",
			Help: "Commits that lost to another writer (a callback or another pass)."}),
		dbConflicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_db_conflicts_total",
			Help: "Database writes aborted as a conflict and run again, by operation: deadlocks, lock wait timeouts and, on a Galera cluster, write sets that lost certification to another node's. A steady rate shows contention between pods or nodes."},
			[]string{"op"}),
		channelPaused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recon_channel_paused",
			Help: "1 while a pass has the channel paused by its circuit breaker (and after a pass that ended with it paused), 0 otherwise."},
			[]string{"channel"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_deferred_orders_total",
			Help: "Orders left due without a lookup because their channel was paused, by channel."}, []string{"channel"}),
		backlogDue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recon_backlog_due_orders",
			Help: "PENDING orders due for a lookup, counted after the last reconcile pass."}, nil),
		backlogAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recon_backlog_oldest_age_seconds",
			Help: "Age of the oldest order due for a lookup (0 when none is due), after the last reconcile pass."}, nil),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_notifications_total",
			Help: "Merchant notification attempts, by result: delivered, retry, dead or lease_lost."}, []string{"result"}),
		notifySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "recon_notification_duration_seconds",
			Help:    "Time one merchant notification attempt took.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_runs_total",
			Help: "Finished passes, by kind and status."}, []string{"kind", "status"}),
		runSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "recon_run_duration_seconds",
			Help:    "Time one pass took, by kind.",
			Buckets: []float64{.1, .5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}}, []string{"kind"}),
		lastSuccessSec: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recon_last_success_timestamp_seconds",
			Help: "Unix time at which the last successful pass of a kind finished."}, []string{"kind"}),
		statements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_statements_total",
			Help: "Statement jobs, by channel and outcome: imported, reconciled, missing (the channel has none for the day) or failed."},
			[]string{"channel", "outcome"}),
		statementLines: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_statement_lines_total",
			Help: "Statement lines imported, by channel."}, []string{"channel"}),
		statementLast: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recon_statement_last_success_timestamp_seconds",
			Help: "Unix time at which a channel's statement was last reconciled successfully."}, []string{"channel"}),
		openMismatches: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recon_open_mismatches",
			Help: "Mismatches not RESOLVED (OPEN or ACKNOWLEDGED), by kind, counted in the database after the last reconcile or backfill pass."},
			[]string{"kind"}),
		openMismatchAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recon_oldest_open_mismatch_age_seconds",
			Help: "Time since the oldest mismatch not RESOLVED was detected (0 when none is open), by kind, after the last reconcile or backfill pass."},
			[]string{"kind"}),
		outbox: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recon_notifications",
			Help: "Merchant notification outbox rows, by status (PENDING, DELIVERED, DEAD), counted in the database after the last notify pass."},
			[]string{"status"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_callbacks_total",
			Help: "Channel notifications received, by channel and outcome: settled, mismatch, unchanged, ignored, order_unknown (refused, the channel retries), duplicate, bad_signature, malformed, unknown_channel or error."},
			[]string{"channel", "outcome"}),
		callbackSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "recon_callback_duration_seconds",
			Help:    "Time recon took to answer one channel notification.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"channel"}),
		settled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "recon_settled_orders_last_hour",
			Help: "Orders moved out of PENDING in the last hour, by channel and source (callback, reconcile, backfill, statement, ...), counted in the database by recon serve every minute."},
			[]string{"channel", "source"}),
		settledSources: map[[2]string]bool{},
		gaugeKinds:     map[string]bool{},
		gaugeStatuses:  map[string]bool{},
	}
	m.reg.MustRegister(m.lookups, m.lookupSeconds, m.orderSeconds, m.transitions, m.refundMoves, m.mismatches, m.conflicts, m.dbConflicts,
		m.channelPaused, m.deferred,
		m.backlogDue, m.backlogAge, m.notifications, m.notifySeconds, m.runs, m.runSeconds, m.lastSuccessSec,
		m.statements, m.statementLines, m.statementLast, m.callbacks, m.callbackSeconds, m.settled)
	m.state.MustRegister(m.openMismatches, m.openMismatchAge, m.outbox)
	for _, s := range []recon.Status{recon.StatusPaid, recon.StatusFailed, recon.StatusClosed} {
		m.transitions.WithLabelValues(string(s))
	}
	for _, s := range []recon.RefundStatus{recon.RefundSucceeded, recon.RefundFailed} {
		m.refundMoves.WithLabelValues(string(s))
	}
	for _, k := range recon.MismatchKinds {
		m.mismatches.WithLabelValues(string(k))
		m.gaugeKinds[string(k)] = true
	}
	for _, s := range []string{repo.NotifyPending, repo.NotifyDelivered, repo.NotifyDead} {
		m.gaugeStatuses[s] = true
	}
	for _, r := range []string{OutcomeDelivered, OutcomeRetry, OutcomeDead, OutcomeLeaseLost} {
		m.notifications.WithLabelValues(r)
	}
	for _, op := range repo.ConflictOps {
		m.dbConflicts.WithLabelValues(op)
	}
	return m
}

// Registry returns the registry holding the passes' series, for adding
// process-wide collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Gatherer gathers every series: the passes' and the state gauges.
func (m *Metrics) Gatherer() prometheus.Gatherer { return prometheus.Gatherers{m.reg, m.state} }

// Handler serves all series in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Gatherer(), promhttp.HandlerOpts{Registry: m.reg})
}

// Lookup implements Observer.
func (m *Metrics) Lookup(channel, outcome string, d time.Duration) {
	m.lookups.WithLabelValues(channel, outcome).Inc()
	m.lookupSeconds.WithLabelValues(channel).Observe(d.Seconds())
}

// Transition implements Observer.
func (m *Metrics) Transition(to recon.Status) { m.transitions.WithLabelValues(string(to)).Inc() }

// RefundTransition implements RefundObserver.
func (m *Metrics) RefundTransition(to recon.RefundStatus) {
	m.refundMoves.WithLabelValues(string(to)).Inc()
}

var _ RefundObserver = (*Metrics)(nil)

// Mismatch implements Observer.
func (m *Metrics) Mismatch(kind recon.MismatchKind) { m.mismatches.WithLabelValues(string(kind)).Inc() }

// Conflict implements Observer.
func (m *Metrics) Conflict() { m.conflicts.Inc() }

// DBConflict counts one database write aborted as a conflict and run again
// (op names the operation); give it to repo.Store.ObserveConflicts.
func (m *Metrics) DBConflict(op string) { m.dbConflicts.WithLabelValues(op).Inc() }

// Processed implements Observer.
func (m *Metrics) Processed(d time.Duration) { m.orderSeconds.Observe(d.Seconds()) }

var _ StatementObserver = (*Metrics)(nil)

// StatementDone implements StatementObserver.
func (m *Metrics) StatementDone(channel, outcome string, lines int64, at time.Time) {
	m.statements.WithLabelValues(channel, outcome).Inc()
	switch outcome {
	case "imported":
		m.statementLines.WithLabelValues(channel).Add(float64(lines))
	case "reconciled":
		m.statementLast.WithLabelValues(channel).Set(float64(at.Unix()))
	}
}

// ChannelPaused implements ChannelObserver.
func (m *Metrics) ChannelPaused(channel string, paused bool) {
	v := 0.0
	if paused {
		v = 1
	}
	m.channelPaused.WithLabelValues(channel).Set(v)
}

// Deferred implements ChannelObserver.
func (m *Metrics) Deferred(channel string) { m.deferred.WithLabelValues(channel).Inc() }

// Delivery implements NotifyObserver.
func (m *Metrics) Delivery(outcome string, d time.Duration) {
	m.notifications.WithLabelValues(outcome).Inc()
	m.notifySeconds.Observe(d.Seconds())
}

// RunFinished implements Observer and NotifyObserver: a successful pass
// moves recon_last_success_timestamp_seconds of its kind to at.
func (m *Metrics) RunFinished(kind, status string, d time.Duration, at time.Time) {
	m.runs.WithLabelValues(kind, status).Inc()
	m.runSeconds.WithLabelValues(kind).Observe(d.Seconds())
	if status == repo.RunSucceeded {
		m.lastSuccessSec.WithLabelValues(kind).Set(float64(at.UnixNano()) / 1e9)
	}
}

// BacklogStore counts the due orders.
type BacklogStore interface {
	// CountDue returns how many PENDING orders created at or before
	// createdBefore are due at now, and the creation time of the oldest
	// (nil when none is).
	CountDue(ctx context.Context, now, createdBefore time.Time) (int64, *time.Time, error)
}

// RefreshBacklog sets the backlog gauges from the database: the orders due
// at now (past the grace period) and the age of the oldest. Until the first
// refresh the gauges are not exposed, rather than reading zero.
func (m *Metrics) RefreshBacklog(ctx context.Context, s BacklogStore, now time.Time, grace time.Duration) error {
	n, oldest, err := s.CountDue(ctx, now, now.Add(-grace))
	if err != nil {
		return fmt.Errorf("refresh backlog metrics: %w", err)
	}
	age := 0.0
	if oldest != nil && n > 0 {
		age = max(now.Sub(*oldest).Seconds(), 0)
	}
	m.backlogDue.WithLabelValues().Set(float64(n))
	m.backlogAge.WithLabelValues().Set(age)
	return nil
}

// OpenMismatchStore counts the mismatches not resolved.
type OpenMismatchStore interface {
	// CountOpenMismatches returns the count and oldest detection time of
	// the mismatches not RESOLVED, for each kind that has any.
	CountOpenMismatches(ctx context.Context) ([]repo.OpenMismatches, error)
}

// RefreshMismatches sets recon_open_mismatches and
// recon_oldest_open_mismatch_age_seconds from the database, at now. Every
// known kind is exposed, at zero when none is open, so that alerts see the
// first one as a rise; until the first refresh neither gauge is exposed.
func (m *Metrics) RefreshMismatches(ctx context.Context, s OpenMismatchStore, now time.Time) error {
	open, err := s.CountOpenMismatches(ctx)
	if err != nil {
		return fmt.Errorf("refresh mismatch metrics: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	counts, ages := map[string]float64{}, map[string]float64{}
	for _, o := range open {
		counts[string(o.Kind)] = float64(o.Count)
		ages[string(o.Kind)] = max(now.Sub(o.Oldest).Seconds(), 0)
		m.gaugeKinds[string(o.Kind)] = true
	}
	for k := range m.gaugeKinds {
		m.openMismatches.WithLabelValues(k).Set(counts[k])
		m.openMismatchAge.WithLabelValues(k).Set(ages[k])
	}
	return nil
}

// OutboxStore counts the merchant notification outbox.
type OutboxStore interface {
	// OutboxCounts returns how many outbox rows are in each status, and
	// how many PENDING rows are due at now.
	OutboxCounts(ctx context.Context, now time.Time) (map[string]int64, int64, error)
}

// RefreshNotifications sets recon_notifications{status} from the database:
// PENDING, DELIVERED and DEAD are always exposed (at zero when there are
// none) once it has run.
func (m *Metrics) RefreshNotifications(ctx context.Context, s OutboxStore, now time.Time) error {
	counts, _, err := s.OutboxCounts(ctx, now)
	if err != nil {
		return fmt.Errorf("refresh notification metrics: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for st := range counts {
		m.gaugeStatuses[st] = true
	}
	for st := range m.gaugeStatuses {
		m.outbox.WithLabelValues(st).Set(float64(counts[st]))
	}
	return nil
}

// Push adds the passes' series to a Pushgateway at gateway under job and
// the grouping labels (name, value pairs), replacing the series of the same
// names in that group and leaving the others: a failed pass, which sets no
// last-success time, keeps the group's previous one. The state gauges that
// have been refreshed go to the group of job alone, shared by all passes, so
// no pass kind or shard keeps a stale count of its own. Credentials in the
// URL are sent as basic auth and kept out of errors.
func (m *Metrics) Push(ctx context.Context, gateway, job string, grouping ...string) error {
	if len(grouping)%2 != 0 {
		return errors.New("push metrics: grouping labels must come in name, value pairs")
	}
	u, err := url.Parse(gateway)
	if err != nil {
		return errors.New("push metrics: the Pushgateway URL does not parse")
	}
	user := u.User
	u.User = nil
	pusher := func(g prometheus.Gatherer, grouping ...string) *push.Pusher {
		p := push.New(u.String(), job).Gatherer(g).Client(&http.Client{Timeout: 10 * time.Second})
		if user != nil {
			pw, _ := user.Password()
			p = p.BasicAuth(user.Username(), pw)
		}
		for i := 0; i < len(grouping); i += 2 {
			p = p.Grouping(grouping[i], grouping[i+1])
		}
		return p
	}
	if err := pusher(m.reg, grouping...).AddContext(ctx); err != nil {
		return fmt.Errorf("push metrics to %s: %w", u.Redacted(), err)
	}
	state, err := m.state.Gather()
	if err != nil {
		return fmt.Errorf("push metrics: gather the state gauges: %w", err)
	}
	if len(state) == 0 {
		return nil // nothing refreshed: the group keeps what the last pass read
	}
	if err := pusher(m.state).AddContext(ctx); err != nil {
		return fmt.Errorf("push state metrics to %s: %w", u.Redacted(), err)
	}
	return nil
}

// Callback counts one channel notification and its answer time.
func (m *Metrics) Callback(channel, outcome string, d time.Duration) {
	m.callbacks.WithLabelValues(channel, outcome).Inc()
	m.callbackSeconds.WithLabelValues(channel).Observe(d.Seconds())
}

// SetSettled sets the orders settled in the last hour by channel and
// source; a pair counted before and missing now is set to zero.
func (m *Metrics) SetSettled(counts map[[2]string]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.settledSources {
		if _, ok := counts[k]; !ok {
			m.settled.WithLabelValues(k[0], k[1]).Set(0)
		}
	}
	for k, n := range counts {
		m.settledSources[k] = true
		m.settled.WithLabelValues(k[0], k[1]).Set(float64(n))
	}
}
