// Package jobs orchestrates recon's passes: Reconciler (scan, look up,
// decide, commit), the notification dispatcher, report writers and the cron
// wiring. A job is a struct whose Run returns counts; the CLI, the scheduler
// and the tests all call the same Run. Jobs own small interfaces of exactly
// the repo and channel methods they call.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/repo"
)

// ReconcileStore is what Reconciler needs from the database.
type ReconcileStore interface {
	ScanPage(ctx context.Context, sc repo.Scan, cur repo.Cursor, limit int) ([]recon.Order, repo.Cursor, error)
	CommitBatch(ctx context.Context, outs []recon.Outcome, meta repo.CommitMeta) ([]repo.CommitReport, error)
	RecordMismatch(ctx context.Context, o recon.Order, m recon.Mismatch, meta repo.CommitMeta) (bool, error)
	// CountBackfill counts the orders a backfill's window holds.
	CountBackfill(ctx context.Context, sc repo.Scan) (int64, error)
	RefundStore
	RunStore
}

// RefundStore is what Reconciler needs from the database for refunds, the
// second kind of pending item a pass settles: the same scan, batched
// guarded commit and mismatch record as for orders.
type RefundStore interface {
	ScanRefundPage(ctx context.Context, sc repo.Scan, cur repo.Cursor, limit int) ([]recon.Refund, repo.Cursor, error)
	CommitRefundBatch(ctx context.Context, outs []recon.RefundOutcome, meta repo.CommitMeta) ([]repo.RefundCommitReport, error)
	RecordRefundMismatch(ctx context.Context, r recon.Refund, m recon.Mismatch, meta repo.CommitMeta) (bool, error)
	CountRefundBackfill(ctx context.Context, sc repo.Scan) (int64, error)
}

// RunStore records passes in recon_runs.
type RunStore interface {
	StartRun(ctx context.Context, kind string, dryRun bool, shard, owner string, now time.Time) (int64, error)
	HeartbeatRun(ctx context.Context, id int64, c repo.RunCounters, now time.Time) error
	FinishRun(ctx context.Context, id int64, status string, c repo.RunCounters, errText string, now time.Time) error
	FailAbandonedRuns(ctx context.Context, staleBefore, now time.Time) (int64, error)
}

// Channel is what Reconciler needs from a channel: a lookup with its rate
// limit and retries, and a close where the provider has one.
// *channel.Guarded implements it.
type Channel interface {
	channel.Lookup
	channel.Closer
	CanClose() bool
}

var _ Channel = (*channel.Guarded)(nil)

// Run kinds (recon_runs.kind).
const (
	KindReconcile = "reconcile"
	KindBackfill  = "backfill"
	KindNotify    = "notify"
)

// Window says which orders a pass covers.
type Window struct {
	// Backfill covers orders created in [From, To) whatever their schedule;
	// otherwise the pass covers due orders.
	Backfill        bool
	From, To        time.Time
	IncludeTerminal bool // backfill only: verify terminal orders too (report only)
	Channel         string
	Merchant        string
	Shard           repo.Shard
	Limit           int // 0: no limit
	DryRun          bool
}

// Kind is the run kind the window makes.
func (w Window) Kind() string {
	if w.Backfill {
		return KindBackfill
	}
	return KindReconcile
}

// Scan is the order scan of the window for a pass started at now, leaving
// orders younger than grace to their callback.
func (w Window) Scan(now time.Time, grace time.Duration) repo.Scan {
	return repo.Scan{
		Now: now, CreatedBefore: now.Add(-grace),
		Backfill: w.Backfill, From: w.From, To: w.To, IncludeTerminal: w.IncludeTerminal,
		Channel: w.Channel, Merchant: w.Merchant, Shard: w.Shard, DryRun: w.DryRun,
	}
}

// Result is what a pass did. Its JSON form is the `--output json` contract.
type Result struct {
	RunID  int64  `json:"run_id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	DryRun bool   `json:"dry_run"`
	repo.RunCounters
	// NewMismatches counts mismatches first detected (or reopened) by this pass.
	NewMismatches int64     `json:"new_mismatches"`
	StartedAt     time.Time `json:"started_at"`
	FinishedAt    time.Time `json:"finished_at"`
	Error         string    `json:"error,omitempty"`
	// Found lists the mismatches this pass saw (at most 100).
	Found []Found `json:"found,omitempty"`
	// Planned lists what a dry run would do (at most 1000).
	Planned []Planned `json:"planned,omitempty"`
}

// Found is one mismatch seen by a pass.
type Found struct {
	OrderNo  string             `json:"order_no"`
	RefundNo string             `json:"refund_no,omitempty"`
	Channel  string             `json:"channel"`
	Kind     recon.MismatchKind `json:"kind"`
	Detail   string             `json:"detail"`
}

// Planned is one action a dry run would have taken (on a refund when
// RefundNo is set; To is then the refund's status).
type Planned struct {
	OrderNo  string       `json:"order_no"`
	RefundNo string       `json:"refund_no,omitempty"`
	Action   recon.Action `json:"action"`
	To       recon.Status `json:"to,omitempty"`
	Detail   string       `json:"detail,omitempty"`
}

const (
	maxFound   = 100
	maxPlanned = 1000
)

// Reconciler runs reconciliation passes.
type Reconciler struct {
	Store    ReconcileStore
	Channels map[string]Channel
	Clock    recon.Clock
	Logger   *slog.Logger
	Observer Observer // nil: no metrics

	Policy      recon.Policy
	GracePeriod time.Duration
	BatchSize   int
	// Concurrency is the number of lookups in flight at once, shared
	// evenly among the channels of a pass unless ChannelPolicies gives a
	// channel its own.
	Concurrency int
	// ChannelPolicies holds, by channel name, the channels' own
	// concurrency and circuit breaker; a channel without one gets its
	// share of Concurrency and no breaker.
	ChannelPolicies map[string]ChannelPolicy
	// ShutdownGrace is how long in-flight lookups may finish after the
	// context is cancelled before they are abandoned.
	ShutdownGrace time.Duration
	// Heartbeat is how often the run row is refreshed; a RUNNING row older
	// than three heartbeats belongs to a dead process.
	Heartbeat time.Duration
	Owner     string
	// Build names this binary in the pass finished log line.
	Build Build
	// CommitBatch is the most orders committed in one transaction (default
	// 64; 1 commits every order alone). Each order keeps its own guarded
	// update, outbox row and audit row; the batch saves commits and round
	// trips.
	CommitBatch int
	// CommitWait is how long a committer waits for more outcomes before it
	// commits a batch that is not full (default 2ms).
	CommitWait time.Duration
	// Committers is how many batches may be committed at once (default 2).
	Committers int
}

// ErrShutdown is returned by Run when the context was cancelled: the run is
// recorded as aborted.
var ErrShutdown = errors.New("pass aborted by shutdown")

// Run performs one pass over w. Per-order failures are counted in the result,
// not returned; the error is non-nil only when the pass itself failed (the
// database went away) or was aborted (ErrShutdown).
func (r *Reconciler) Run(ctx context.Context, w Window) (Result, error) {
	r.defaults()
	start := r.Clock.Now()
	res := Result{Kind: w.Kind(), DryRun: w.DryRun, StartedAt: start}
	shard := ""
	if w.Shard.Count > 1 {
		shard = fmt.Sprintf("%d/%d", w.Shard.Index, w.Shard.Count)
	}
	if !w.DryRun {
		if n, err := r.Store.FailAbandonedRuns(ctx, start.Add(-3*r.Heartbeat), start); err != nil {
			return res, err
		} else if n > 0 {
			r.Logger.Warn("closed abandoned runs", "count", n)
		}
	}
	runID, err := r.Store.StartRun(ctx, res.Kind, w.DryRun, shard, r.Owner, start)
	if err != nil {
		return res, err
	}
	res.RunID = runID
	p := &pass{r: r, w: w, runID: runID}
	passErr := p.run(ctx, start)

	res.RunCounters = p.counters()
	res.NewMismatches = p.newMismatches.Load()
	res.Found, res.Planned = p.found, p.planned
	res.FinishedAt = r.Clock.Now()
	res.Status, res.Error, passErr = finishRun(ctx, r.Store, r.Observer, res.Kind, runID, start, res.FinishedAt, res.RunCounters, passErr)
	r.Logger.Info("pass finished", "run_id", runID, "kind", res.Kind, "status", res.Status, "dry_run", w.DryRun,
		"scanned", res.Scanned, "paid", res.Paid, "failed", res.Failed, "closed", res.Closed,
		"rescheduled", res.Rescheduled, "mismatches", res.Mismatches, "new_mismatches", res.NewMismatches,
		"conflicts", res.Conflicts, "errors", res.Errors, "skipped", res.Skipped, "deferred", res.Deferred,
		"refunds_scanned", res.RefundsScanned, "refunds_succeeded", res.RefundsSucceeded, "refunds_failed", res.RefundsFailed,
		"refunds_rescheduled", res.RefundsRescheduled,
		"duration", res.FinishedAt.Sub(start).String(), "version", r.Build.Version, "commit", r.Build.Commit)
	return res, passErr
}

func (r *Reconciler) defaults() {
	if r.Clock == nil {
		r.Clock = recon.SystemClock{}
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.BatchSize <= 0 {
		r.BatchSize = 500
	}
	if r.Concurrency <= 0 {
		r.Concurrency = 8
	}
	if r.ShutdownGrace <= 0 {
		r.ShutdownGrace = 30 * time.Second
	}
	if r.Heartbeat <= 0 {
		r.Heartbeat = 30 * time.Second
	}
	if r.CommitBatch <= 0 {
		r.CommitBatch = 64
	}
	if r.CommitWait <= 0 {
		r.CommitWait = 2 * time.Millisecond
	}
	if r.Committers <= 0 {
		r.Committers = 2
	}
}

// pass is the state of one Run.
type pass struct {
	r     *Reconciler
	w     Window
	runID int64

	scanned, paid, failed, closed, rescheduled, mismatches, conflicts, errs, skipped atomic.Int64
	newMismatches, deferred                                                          atomic.Int64

	refundsScanned, refundsSucceeded, refundsFailed, refundsRescheduled, refundsUnsupported atomic.Int64
	// noRefunds holds the channels whose refunds this pass skipped because
	// the channel cannot look refunds up (each is logged once).
	noRefunds sync.Map

	// sent counts the orders handed to lanes, for the window's limit;
	// limited is set when the limit stopped a scan.
	sent    atomic.Int64
	limited atomic.Bool
	// hungry is signalled when a lane's workers find its queue empty.
	hungry chan struct{}
	// scanners tracks the scans of detached lanes.
	scanners sync.WaitGroup

	mu      sync.Mutex
	found   []Found
	planned []Planned

	// commits feeds the committers; nil commits each order where it is
	// decided (ProcessOne).
	commits  chan commitItem
	stop     chan struct{} // closed when the pass fails: take no more work
	stopOnce sync.Once
	fatal    error // the first error that ended the pass; set before stop closes
}

// commitItem is one decided item on its way to a committer: an order's
// outcome, or a refund's (refund non-nil).
type commitItem struct {
	out    recon.Outcome
	refund *recon.RefundOutcome
	began  time.Time // when its lookup started, for Observer.Processed
}

// name names the item in errors and logs.
func (it commitItem) name() string {
	if it.refund != nil {
		return fmt.Sprintf("refund %d", it.refund.Refund.ID)
	}
	return fmt.Sprintf("order %d", it.out.Order.ID)
}

// abort ends the pass with err (the first one wins): the producer, workers
// and committers stop taking work.
func (p *pass) abort(err error) {
	p.stopOnce.Do(func() {
		p.fatal = err
		close(p.stop)
	})
}

// stopped reports whether the pass was aborted.
func (p *pass) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

func (p *pass) counters() repo.RunCounters {
	return repo.RunCounters{
		Scanned: p.scanned.Load(), Paid: p.paid.Load(), Failed: p.failed.Load(), Closed: p.closed.Load(),
		Rescheduled: p.rescheduled.Load(), Mismatches: p.mismatches.Load(), Conflicts: p.conflicts.Load(),
		Errors: p.errs.Load(), Skipped: p.skipped.Load(), Deferred: p.deferred.Load(),
		RefundsScanned: p.refundsScanned.Load(), RefundsSucceeded: p.refundsSucceeded.Load(),
		RefundsFailed: p.refundsFailed.Load(), RefundsRescheduled: p.refundsRescheduled.Load(),
		RefundsUnsupported: p.refundsUnsupported.Load(),
	}
}

func (p *pass) run(ctx context.Context, start time.Time) error {
	r := p.r
	sc := p.w.Scan(start, r.GracePeriod)
	// A backfill counts its window first, to prove at the end that it saw
	// every order of it.
	// (An estimated count proves nothing: then the check is left out.)
	held := int64(-1)
	exact := true
	if ex, ok := r.Store.(interface{ BackfillCountExact(repo.Scan) bool }); ok {
		exact = ex.BackfillCountExact(sc)
	}
	if p.w.Backfill && exact {
		n, err := r.Store.CountBackfill(ctx, sc)
		if err != nil {
			return err
		}
		held = n
	}
	heldRefunds := int64(-1)
	if p.w.Backfill {
		n, err := r.Store.CountRefundBackfill(ctx, sc)
		if err != nil {
			return err
		}
		heldRefunds = n
	}
	// Lookups and commits run on a context that outlives a shutdown signal by
	// ShutdownGrace, so in-flight orders finish (or are abandoned whole).
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			t := time.NewTimer(r.ShutdownGrace)
			defer t.Stop()
			select {
			case <-t.C:
				cancelWork()
			case <-done:
			}
		case <-done:
		}
	}()
	// Every pass, a dry run too, shows it is alive: otherwise a concurrent
	// pass takes it for dead and closes its run row.
	stopBeat := startHeartbeat(ctx, r.Heartbeat, r.Store.HeartbeatRun, p.runID, p.counters, r.Clock, r.Logger)
	defer stopBeat()

	// Workers look orders up and decide; committers gather the outcomes into
	// batches. A worker hands its outcome over and takes the next order, so
	// lookups never wait for a commit.
	p.stop = make(chan struct{})
	var committers sync.WaitGroup
	if !p.w.DryRun {
		p.commits = make(chan commitItem, r.CommitBatch)
		for i := 0; i < r.Committers; i++ {
			committers.Add(1)
			go func() {
				defer committers.Done()
				if err := p.committer(work); err != nil {
					p.abort(err)
				}
			}()
		}
	}
	// Every channel has a lane: its own queue and workers (and breaker),
	// so a slow or failing channel holds only its own share.
	p.hungry = make(chan struct{}, 1)
	lanes := p.lanes()
	var workers sync.WaitGroup
	for _, ln := range lanes {
		for i := 0; i < ln.workers; i++ {
			workers.Add(1)
			go func() {
				defer workers.Done()
				p.work(ctx, work, ln, lanes)
			}()
		}
	}

	scanErr := p.produce(ctx, sc, lanes)
	p.scanners.Wait()
	limited := p.limited.Load()
	workers.Wait()
	p.reportPaused(lanes)
	if p.commits != nil {
		close(p.commits)
		committers.Wait()
	}
	if scanErr != nil {
		return scanErr
	}
	if p.stopped() {
		return p.fatal
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if limited {
		return nil
	}
	if held >= 0 {
		settled := p.paid.Load() + p.failed.Load() + p.closed.Load()
		if err := p.checkCovered(ctx, sc, "orders", held, p.scanned.Load(), settled, r.Store.CountBackfill); err != nil {
			return err
		}
	}
	if heldRefunds >= 0 {
		settled := p.refundsSucceeded.Load() + p.refundsFailed.Load()
		return p.checkCovered(ctx, sc, "refunds", heldRefunds, p.refundsScanned.Load(), settled, r.Store.CountRefundBackfill)
	}
	return nil
}

// checkCovered fails a backfill that saw fewer items (orders or refunds,
// what) than its window held when it started (held) unless the items it
// did not see have left the window since: a callback settled them before
// the scan got there. Items still in the window that the scan never saw
// mean the scan is broken, and a backfill that reports success over them
// would be a lie. seen is how many it scanned, settled how many of those
// it moved; count counts the window.
func (p *pass) checkCovered(ctx context.Context, sc repo.Scan, what string, held, seen, settled int64,
	count func(context.Context, repo.Scan) (int64, error)) error {
	if seen >= held {
		return nil
	}
	// Orders created after the pass started were not in the window it counted.
	now := sc
	if now.To.After(sc.Now) {
		now.To = sc.Now
	}
	still, err := count(ctx, now)
	if err != nil {
		return fmt.Errorf("recount the backfill window: %w", err)
	}
	// Of the items seen, those this pass settled left a PENDING-only window;
	// the others seen may still be in it. So at least still+settled-seen
	// items in the window were never seen.
	if sc.IncludeTerminal || p.w.DryRun {
		settled = 0
	}
	if missed := still + settled - seen; missed > 0 {
		return fmt.Errorf("backfill scanned %d of the %d %s its window held; at least %d were never scanned", seen, held, what, missed)
	}
	return nil
}

// reportPaused logs the channels still paused at the end of the pass.
func (p *pass) reportPaused(lanes map[string]*lane) {
	for _, ln := range lanes {
		if ln.gate != nil && ln.gate.paused() {
			p.r.Logger.Warn("channel still paused at the end of the pass; its remaining orders were deferred to the next pass",
				"channel", ln.name)
		}
	}
}

// process looks one item up, decides, and hands the outcome to a committer
// (or commits it itself when the pass has none). It returns an error only
// when the database failed, which ends the pass; everything about the item
// itself is counted.
func (p *pass) process(ctx context.Context, it item) error {
	if it.refund != nil {
		return p.processRefund(ctx, *it.refund)
	}
	return p.processOrder(ctx, it.order)
}

// processOrder is process for an order.
func (p *pass) processOrder(ctx context.Context, o recon.Order) error {
	r := p.r
	p.scanned.Add(1)
	log := r.Logger.With("order_no", o.OrderNo, "order_id", o.ID, "channel", o.Channel)
	ch, ok := p.channelFor("order", o.Channel, o.Validate(), log)
	if !ok {
		return nil
	}
	it := commitItem{began: time.Now()}
	out, ok := p.decide(ctx, ch, o, log)
	if !ok || out.Action == recon.ActionNone {
		p.processed(it.began)
		return nil
	}
	it.out = out
	return p.handOver(ctx, it)
}

// channelFor returns the channel of an item (what: "order", "refund") whose
// data checked as invalid; an item with impossible data (invalid non-nil)
// or of a channel not in the configuration is skipped as a counted error.
func (p *pass) channelFor(what, name string, invalid error, log *slog.Logger) (Channel, bool) {
	if invalid != nil {
		p.skipped.Add(1)
		p.errs.Add(1)
		log.Error("skipping "+what+" with impossible data", "error", invalid)
		return nil, false
	}
	ch, ok := p.r.Channels[name]
	if !ok {
		p.skipped.Add(1)
		p.errs.Add(1)
		log.Error("skipping " + what + " of a channel not in the configuration")
	}
	return ch, ok
}

// handOver takes a decided item to its commit: counted and planned only in
// a dry run, committed here when the pass has no committers, otherwise
// handed to them.
func (p *pass) handOver(ctx context.Context, it commitItem) error {
	switch {
	case p.w.DryRun:
		if it.refund != nil {
			p.countRefund(*it.refund, false)
			p.planRefund(*it.refund)
		} else {
			p.count(it.out, false)
			p.plan(it.out, planDetail(it.out.Mismatch, it.out.QueryError, it.out.NextQueryAt))
		}
	case p.commits == nil:
		return p.commitItems(ctx, []commitItem{it})
	default:
		select {
		case p.commits <- it:
		case <-p.stop: // the pass failed: the item is left as it is
		}
		return nil
	}
	p.processed(it.began)
	return nil
}

// decide looks o up and returns what to commit; ok is false when there is
// nothing to commit (a verification lookup failed, a lookup was abandoned at
// shutdown, a dry run would close the order).
func (p *pass) decide(ctx context.Context, ch Channel, o recon.Order, log *slog.Logger) (recon.Outcome, bool) {
	r := p.r
	lookup, lerr := p.lookup(ctx, ch, o)
	if lerr != nil && ctx.Err() != nil {
		return recon.Outcome{}, false // abandoned at shutdown: nothing is written
	}
	if errors.Is(lerr, channel.ErrPaused) {
		p.deferOn(o.Channel)
		return recon.Outcome{}, false
	}
	var out recon.Outcome
	now := r.Clock.Now()
	switch {
	case lerr != nil && o.Status.Terminal():
		p.errs.Add(1)
		log.Warn("verification lookup failed", "error", lerr)
		return recon.Outcome{}, false
	case lerr != nil:
		p.errs.Add(1)
		log.Debug("lookup failed", "error", lerr)
		out = recon.Failed(o, lerr.Error(), r.Policy, now)
	default:
		out = recon.Decide(o, lookup, r.Policy, now, ch.CanClose())
	}
	if out.Action == recon.ActionClose {
		if p.w.DryRun {
			p.plan(out, "expired: would close at the channel")
			p.closed.Add(1)
			return recon.Outcome{}, false
		}
		return p.closeAndRecheck(ctx, ch, o, log)
	}
	return out, true
}

// deferOn counts an item left due, unqueried, because its channel is
// paused.
func (p *pass) deferOn(channel string) {
	p.deferred.Add(1)
	if co, ok := p.r.Observer.(ChannelObserver); ok {
		co.Deferred(channel)
	}
}

// processed tells the observer that an order is done, from its lookup to its
// commit.
func (p *pass) processed(began time.Time) {
	if p.r.Observer != nil {
		p.r.Observer.Processed(time.Since(began))
	}
}

func (p *pass) lookup(ctx context.Context, ch Channel, o recon.Order) (recon.LookupResult, error) {
	start := time.Now()
	res, err := ch.Lookup(ctx, o)
	if p.r.Observer != nil && !errors.Is(err, channel.ErrPaused) {
		p.r.Observer.Lookup(o.Channel, lookupOutcome(res, err), time.Since(start))
	}
	return res, err
}

// closeAndRecheck closes an expired order at the channel and decides again on
// a fresh lookup, so a payment that arrived meanwhile is honoured. An order
// whose channel was paused meanwhile is deferred (false).
func (p *pass) closeAndRecheck(ctx context.Context, ch Channel, o recon.Order, log *slog.Logger) (recon.Outcome, bool) {
	if err := ch.CloseOrder(ctx, o); err != nil && !errors.Is(err, channel.ErrPaused) {
		log.Warn("close at channel failed; checking the order again", "error", err)
	}
	res, err := p.lookup(ctx, ch, o)
	now := p.r.Clock.Now()
	switch {
	case errors.Is(err, channel.ErrPaused):
		p.deferOn(o.Channel)
		return recon.Outcome{}, false
	case err != nil:
		p.errs.Add(1)
		return recon.Failed(o, "re-check after close: "+err.Error(), p.r.Policy, now), true
	}
	return recon.Decide(o, res, p.r.Policy, now, false), true
}

// committer commits the outcomes the workers hand over, in batches of up to
// CommitBatch, until the channel is closed. Its error ends the pass.
func (p *pass) committer(ctx context.Context) error {
	batch := make([]commitItem, 0, p.r.CommitBatch)
	for {
		it, ok := <-p.commits
		if !ok {
			return nil
		}
		batch = append(batch[:0], it)
		open := p.gather(&batch)
		if err := p.commitItems(ctx, batch); err != nil {
			return err
		}
		if !open {
			return nil
		}
	}
}

// gather adds to batch what is waiting, then waits up to CommitWait for more
// while the batch is not full. It returns false when the channel is closed.
func (p *pass) gather(batch *[]commitItem) bool {
	var timeout <-chan time.Time
	for len(*batch) < p.r.CommitBatch {
		select {
		case it, ok := <-p.commits:
			if !ok {
				return false
			}
			*batch = append(*batch, it)
			continue
		default:
		}
		if timeout == nil {
			t := time.NewTimer(p.r.CommitWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case it, ok := <-p.commits:
			if !ok {
				return false
			}
			*batch = append(*batch, it)
		case <-timeout:
			return true
		}
	}
	return true
}

// commitItems commits items, orders in one transaction and refunds in
// another, and settles each item's report; items found stale are decided
// again and committed in a further transaction, at most three times.
func (p *pass) commitItems(ctx context.Context, items []commitItem) error {
	var orders, refunds []commitItem
	for _, it := range items {
		if it.refund != nil {
			refunds = append(refunds, it)
		} else {
			orders = append(orders, it)
		}
	}
	for _, group := range [][]commitItem{orders, refunds} {
		if err := p.commitGroup(ctx, group); err != nil {
			return err
		}
	}
	return nil
}

// commitGroup commits items of one kind in one transaction, and again
// those found stale.
func (p *pass) commitGroup(ctx context.Context, items []commitItem) error {
	meta := repo.CommitMeta{RunID: p.runID, Source: p.w.Kind()}
	for attempt := 0; len(items) > 0; attempt++ {
		meta.Now = p.r.Clock.Now()
		settle, err := p.storeBatch(ctx, items, meta)
		if err != nil {
			if len(items) == 1 {
				return fmt.Errorf("commit %s: %w", items[0].name(), err)
			}
			if ctx.Err() != nil {
				return fmt.Errorf("commit %d items (%s…%s): %w", len(items), items[0].name(), items[len(items)-1].name(), err)
			}
			return p.commitOneByOne(ctx, items, err)
		}
		var again []commitItem
		for i, it := range items {
			next, err := settle(i, attempt)
			if err != nil {
				return err
			}
			if next != nil {
				next.began = it.began
				again = append(again, *next)
				continue
			}
			p.processed(it.began)
		}
		items = again
	}
	return nil
}

// storeBatch commits items, all of one kind, in one transaction, and
// returns how to settle each one's report: settle(i, attempt) counts what
// the commit did to items[i] and returns the item decided again when it was
// found stale.
func (p *pass) storeBatch(ctx context.Context, items []commitItem, meta repo.CommitMeta) (func(i, attempt int) (*commitItem, error), error) {
	if items[0].refund != nil {
		outs := make([]recon.RefundOutcome, len(items))
		for i, it := range items {
			outs[i] = *it.refund
		}
		reps, err := p.r.Store.CommitRefundBatch(ctx, outs, meta)
		if err != nil {
			return nil, err
		}
		return func(i, attempt int) (*commitItem, error) {
			next, err := p.settleRefund(ctx, outs[i], reps[i], meta, attempt)
			if next == nil || err != nil {
				return nil, err
			}
			return &commitItem{refund: next}, nil
		}, nil
	}
	outs := make([]recon.Outcome, len(items))
	for i, it := range items {
		outs[i] = it.out
	}
	reps, err := p.r.Store.CommitBatch(ctx, outs, meta)
	if err != nil {
		return nil, err
	}
	return func(i, attempt int) (*commitItem, error) {
		next, err := p.settle(ctx, outs[i], reps[i], meta, attempt)
		if next == nil || err != nil {
			return nil, err
		}
		return &commitItem{out: *next}, nil
	}, nil
}

// commitOneByOne commits items one per transaction after their batch
// failed with batchErr (nothing of the batch was written), so that one item
// the database refuses is a counted error that stays due, not the end of
// the pass. When every item fails alike the database itself is failing:
// the pass ends with batchErr.
func (p *pass) commitOneByOne(ctx context.Context, items []commitItem, batchErr error) error {
	type failure struct {
		it  commitItem
		err error
	}
	var failed []failure
	for _, it := range items {
		if err := p.commitGroup(ctx, []commitItem{it}); err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed = append(failed, failure{it, err})
		}
	}
	if len(failed) == len(items) {
		return fmt.Errorf("commit %d items (%s…%s): %w", len(items), items[0].name(),
			items[len(items)-1].name(), batchErr)
	}
	for _, f := range failed {
		p.errs.Add(1)
		p.r.Logger.Error("the database refused this item's commit; it stays due", "item", f.it.name(), "error", f.err)
		p.processed(f.it.began)
	}
	return nil
}

// settle counts what a commit did to one order. For an order found stale it
// returns the outcome decided again on the order as it is now; nil when the
// order is settled.
func (p *pass) settle(ctx context.Context, out recon.Outcome, rep repo.CommitReport, meta repo.CommitMeta, attempt int) (*recon.Outcome, error) {
	switch rep.Result {
	case repo.Applied, repo.Recorded:
		p.count(out, rep.NewMismatch)
		p.r.Logger.Debug("committed", "order_no", out.Order.OrderNo, "order_id", out.Order.ID, "action", out.Action, "to", out.To)
	case repo.Lost:
		p.conflicts.Add(1)
		if p.r.Observer != nil {
			p.r.Observer.Conflict()
		}
		if out.Lookup == nil {
			return nil, nil
		}
		if m := recon.ClassifyConflict(rep.Current, *out.Lookup); m != nil {
			isNew, err := p.r.Store.RecordMismatch(ctx, rep.Current, *m, meta)
			if err != nil {
				return nil, err
			}
			p.noteMismatch(rep.Current, *m, isNew)
		}
		p.r.Logger.Debug("order settled by another writer", "order_no", out.Order.OrderNo, "now", rep.Current.Status)
	case repo.Stale:
		if attempt >= 3 || out.Lookup == nil {
			p.conflicts.Add(1)
			return nil, nil
		}
		next := recon.Decide(rep.Current, *out.Lookup, p.r.Policy, p.r.Clock.Now(), false)
		if next.Action == recon.ActionNone {
			return nil, nil
		}
		return &next, nil
	}
	return nil, nil
}

func (p *pass) count(out recon.Outcome, newMismatch bool) {
	switch out.Action {
	case recon.ActionTransition:
		switch out.To {
		case recon.StatusPaid:
			p.paid.Add(1)
		case recon.StatusFailed:
			p.failed.Add(1)
		case recon.StatusClosed:
			p.closed.Add(1)
		}
		if p.r.Observer != nil && !p.w.DryRun {
			p.r.Observer.Transition(out.To)
		}
	case recon.ActionReschedule:
		p.rescheduled.Add(1)
	case recon.ActionHold, recon.ActionReport:
		p.noteMismatch(out.Order, *out.Mismatch, newMismatch)
	}
}

func (p *pass) noteMismatch(o recon.Order, m recon.Mismatch, isNew bool) {
	p.mismatches.Add(1)
	if isNew {
		p.newMismatches.Add(1)
	}
	if p.r.Observer != nil && !p.w.DryRun {
		p.r.Observer.Mismatch(m.Kind)
	}
	p.mu.Lock()
	if len(p.found) < maxFound {
		p.found = append(p.found, Found{OrderNo: o.OrderNo, RefundNo: m.RefundNo, Channel: o.Channel, Kind: m.Kind, Detail: m.Detail})
	}
	p.mu.Unlock()
}

func (p *pass) plan(out recon.Outcome, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.planned) < maxPlanned {
		p.planned = append(p.planned, Planned{OrderNo: out.Order.OrderNo, Action: out.Action, To: out.To, Detail: detail})
	}
}

// planDetail says what a dry run would record about an item.
func planDetail(m *recon.Mismatch, queryError string, next *time.Time) string {
	switch {
	case m != nil:
		return string(m.Kind) + ": " + m.Detail
	case queryError != "":
		return "lookup failed: " + queryError
	case next != nil:
		return "next query at " + next.Format(time.RFC3339)
	}
	return ""
}

func lookupOutcome(res recon.LookupResult, err error) string {
	return answerOutcome(string(res.Status), err)
}

// answerOutcome is the outcome label of a lookup of an order or a refund:
// the channel's status, "bad_signature" or "error_<class>".
func answerOutcome(status string, err error) string {
	switch {
	case err == nil:
		return status
	case errors.Is(err, channel.ErrBadSignature):
		return "bad_signature"
	}
	return "error_" + channel.ClassOf(err).String()
}
