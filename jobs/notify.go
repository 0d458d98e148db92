package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// NotifyStore is what Dispatcher needs from the database.
type NotifyStore interface {
	// ClaimNotifications leases due rows to one dispatcher.
	ClaimNotifications(ctx context.Context, c repo.Claim) ([]repo.Notification, error)
	// The Mark methods report false, with a nil error, when the row is no
	// longer PENDING and leased to owner: the change was not applied.
	MarkDelivered(ctx context.Context, id, owner string, now time.Time) (bool, error)
	MarkRetry(ctx context.Context, id, owner string, attempts int, nextAt time.Time, lastErr string) (bool, error)
	MarkDead(ctx context.Context, id, owner string, attempts int, lastErr string, now time.Time) (bool, error)
	ReleaseNotification(ctx context.Context, id, owner string) (bool, error)
	// GetMerchant returns an error wrapping recon.ErrNotFound for an unknown
	// merchant.
	GetMerchant(ctx context.Context, id string) (repo.Merchant, error)
	RunStore
}

var _ NotifyStore = (*repo.Store)(nil)

// NotifyObserver receives what Dispatcher does, for metrics.
// Implementations must be safe for concurrent use.
type NotifyObserver interface {
	// Delivery is one attempt at one notification. outcome is "delivered",
	// "retry", "dead" or "lease_lost"; d is measured on the dispatcher's
	// clock.
	Delivery(outcome string, d time.Duration)
	RunFinished(kind, status string, d time.Duration, at time.Time)
}

// Delivery outcomes passed to NotifyObserver.Delivery.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetry     = "retry"
	OutcomeDead      = "dead"
	OutcomeLeaseLost = "lease_lost"
)

// DefaultRetrySchedule is notify.retry_schedule when none is configured:
// the wait after the 1st, 2nd, ... failed attempt. A row fails for good
// (DEAD) when the attempt after the last step fails too, about a day after
// it was first due.
var DefaultRetrySchedule = []time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, time.Hour,
	3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
}

// NotifyResult is what one delivery pass did. Its JSON form is the
// `recon notify --output json` output.
type NotifyResult struct {
	RunID  int64  `json:"run_id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	// Claimed counts rows this pass leased; each ends in exactly one of
	// Delivered, Retried, Dead, LeaseLost, Released or Deferred, unless recording its
	// outcome failed (then it is in Errors and its lease runs out).
	Claimed   int64 `json:"claimed"`
	Delivered int64 `json:"delivered"`
	Retried   int64 `json:"retried"`
	Dead      int64 `json:"dead"`
	// Errors counts attempts that failed on our side rather than the
	// merchant's: unknown merchant, missing or invalid notify_url, a
	// database error recording the outcome. (They are also counted as
	// Retried or Dead.)
	Errors int64 `json:"errors"`
	// LeaseLost counts rows whose lease another dispatcher took over before
	// the outcome was recorded; their outcome was dropped.
	LeaseLost int64 `json:"lease_lost"`
	// Released counts rows given back unposted (shutdown, or a lease too
	// short to post within); another pass takes them at once.
	Released int64 `json:"released"`
	// Deferred counts claimed rows given back unposted, their attempts
	// unchanged, because their merchant was paused by its breaker in this
	// pass. (The merchant's rows not yet claimed are left alone.)
	Deferred   int64     `json:"deferred"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Error      string    `json:"error,omitempty"`
}

// Counters maps the result onto a recon_runs row: scanned is claimed,
// conflicts is lease_lost, skipped is released.
func (r NotifyResult) Counters() repo.RunCounters {
	return repo.RunCounters{Scanned: r.Claimed, Delivered: r.Delivered, Retried: r.Retried, Dead: r.Dead,
		Errors: r.Errors, Conflicts: r.LeaseLost, Skipped: r.Released, Deferred: r.Deferred}
}

// Dispatcher delivers the outbox: it claims due PENDING rows, POSTs each
// stored payload, signed, to its merchant's notify_url, and records
// DELIVERED, a retry on the schedule, or DEAD. Several dispatchers may run
// at once against one database; a row is posted by one of them at a time.
type Dispatcher struct {
	Store    NotifyStore
	Clock    recon.Clock
	Logger   *slog.Logger
	Observer NotifyObserver // nil: no metrics
	// Client posts the notifications; nil builds one with NewNotifyClient.
	// A custom client should refuse cross-host redirects and internal
	// destinations the same way.
	Client *http.Client
	// AllowPrivateNetworks lets the default client connect to loopback,
	// private, link-local and other non-public addresses
	// (notify.allow_private_networks; tests, on-premise merchants).
	AllowPrivateNetworks bool
	// Owner names this dispatcher in leases and the run row (host/pid).
	Owner string
	// Build names this binary in the pass finished log line.
	Build Build

	// Concurrency is the number of notifications in flight at once.
	Concurrency int
	// PerMerchantConcurrency caps one merchant's notifications in flight
	// (default 4, and never more than half of Concurrency, at least 1), so
	// that a slow merchant leaves workers to the others.
	PerMerchantConcurrency int
	// MerchantBreaker is how many failed attempts in a row (errors,
	// timeouts, non-2xx answers) pause a merchant for the rest of the pass
	// (default 3; negative: never). Its remaining due rows are not tried in
	// this pass and keep their attempts, so a merchant that hangs does not
	// see its rows go DEAD faster; the next pass tries it again.
	MerchantBreaker int
	// BatchSize caps the rows one claim takes. Claimed rows never outnumber
	// twice Concurrency, so a claimed row waits for at most one request
	// before it is posted.
	BatchSize int
	// Timeout bounds one POST, from dialling to the end of the body.
	Timeout time.Duration
	// Lease is how long a claim holds a row; it must exceed Timeout by a
	// margin (at least twice; default exactly that, 2×Timeout+2s). A
	// dispatcher killed mid-delivery leaves the row to whoever claims after
	// the lease, so a short one resumes delivery soon after a claimer dies.
	Lease time.Duration
	// RetrySchedule is the wait after each failed attempt; nil means
	// DefaultRetrySchedule. The attempt after the last step is the last.
	RetrySchedule []time.Duration
	// Heartbeat is how often the run row is refreshed.
	Heartbeat time.Duration
	// MaxResponseBody is how much of a response is read before the
	// connection is dropped (default 64 KiB).
	MaxResponseBody int64
	// Sink, when set, receives every notification (config notify.sink)
	// instead of the merchants' notify_url, signed with its secret; the
	// merchants table is not read.
	Sink *NotifySink
}

// NotifySink is the one destination of every notification: a URL of the
// team's own service, which notifies its merchants its usual way.
type NotifySink struct {
	URL    string
	Secret string `json:"-"`
}

// leaseMargin is kept between the end of a request and the end of its lease,
// for recording the outcome.
const leaseMargin = 2 * time.Second

func (d *Dispatcher) defaults() error {
	if d.Store == nil {
		return errors.New("notify dispatcher: no store")
	}
	if d.Clock == nil {
		d.Clock = recon.SystemClock{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Owner == "" {
		d.Owner = "dispatcher"
	}
	if d.Concurrency <= 0 {
		d.Concurrency = 16
	}
	if d.PerMerchantConcurrency <= 0 {
		d.PerMerchantConcurrency = 4
	}
	d.PerMerchantConcurrency = max(1, min(d.PerMerchantConcurrency, d.Concurrency/2))
	if d.MerchantBreaker == 0 {
		d.MerchantBreaker = 3
	}
	if d.BatchSize <= 0 {
		d.BatchSize = 200
	}
	if d.Timeout <= 0 {
		d.Timeout = 10 * time.Second
	}
	if d.Lease <= 0 {
		d.Lease = 2*d.Timeout + leaseMargin
	}
	if d.Lease < 2*d.Timeout || d.Lease <= d.Timeout+leaseMargin {
		return fmt.Errorf("notify dispatcher: lease %s must be at least twice the request timeout %s", d.Lease, d.Timeout)
	}
	if d.RetrySchedule == nil {
		d.RetrySchedule = DefaultRetrySchedule
	}
	if d.Heartbeat <= 0 {
		d.Heartbeat = 30 * time.Second
	}
	if d.MaxResponseBody <= 0 {
		d.MaxResponseBody = 64 << 10
	}
	if d.Client == nil {
		// The sink is the operator's own service, usually on a private
		// network; only merchant URLs are kept off internal addresses.
		d.Client = NewNotifyClient(d.Concurrency, d.AllowPrivateNetworks || d.Sink != nil)
	}
	return nil
}

// NewNotifyClient returns the HTTP client the dispatcher uses by default: a
// connection pool sized for concurrency, proxies from the environment,
// redirects followed only to the same scheme and host, keeping the POST
// (307/308), at most 3 times, and, unless allowPrivate, no connection to a
// non-public address (see notifyTransport). Timeouts come from each
// request's context.
func NewNotifyClient(concurrency int, allowPrivate bool) *http.Client {
	tr := notifyTransport(allowPrivate, refusedIP, nil, http.ProxyFromEnvironment)
	tr.MaxIdleConns = max(100, 2*concurrency)
	tr.MaxIdleConnsPerHost = max(2, concurrency)
	return &http.Client{Transport: tr, CheckRedirect: sameHostRedirect}
}

func sameHostRedirect(req *http.Request, via []*http.Request) error {
	first := via[0]
	switch {
	case len(via) >= 3:
		return errors.New("stopped after 3 redirects")
	case req.URL.Host != first.URL.Host || req.URL.Scheme != first.URL.Scheme:
		return fmt.Errorf("redirect to another host (%s://%s) refused", req.URL.Scheme, req.URL.Host)
	case req.Method != first.Method:
		return fmt.Errorf("redirect would turn the %s into a %s; refused", first.Method, req.Method)
	}
	return nil
}

// Run performs one delivery pass: it claims and delivers due rows until none
// is left that was due when the pass started (rows it reschedules wait for a
// later pass). Per-row failures are counted, not returned; the error is
// non-nil only when the pass itself failed (the database went away) or was
// stopped (ErrShutdown: in-flight requests are finished and recorded first).
func (d *Dispatcher) Run(ctx context.Context) (NotifyResult, error) {
	if err := d.defaults(); err != nil {
		return NotifyResult{Kind: KindNotify, Status: repo.RunFailed, Error: err.Error()}, err
	}
	start := d.Clock.Now()
	res := NotifyResult{Kind: KindNotify, StartedAt: start}
	if n, err := d.Store.FailAbandonedRuns(ctx, start.Add(-3*d.Heartbeat), start); err != nil {
		return res, err
	} else if n > 0 {
		d.Logger.Warn("closed abandoned runs", "count", n)
	}
	runID, err := d.Store.StartRun(ctx, KindNotify, false, "", d.Owner, start)
	if err != nil {
		return res, err
	}
	res.RunID = runID
	p := &notifyPass{d: d, runID: runID, start: start, merchants: map[string]merchantEntry{},
		lanes: map[string]*merchantLane{}, progress: make(chan struct{}, 1)}
	passErr := p.run(ctx)

	p.fill(&res)
	res.FinishedAt = d.Clock.Now()
	res.Status, res.Error, passErr = finishRun(ctx, d.Store, d.Observer, KindNotify, runID, start, res.FinishedAt, res.Counters(), passErr)
	d.Logger.Info("notify pass finished", "run_id", runID, "status", res.Status, "claimed", res.Claimed,
		"delivered", res.Delivered, "retried", res.Retried, "dead", res.Dead, "errors", res.Errors,
		"lease_lost", res.LeaseLost, "released", res.Released, "deferred", res.Deferred, "duration", res.FinishedAt.Sub(start).String(),
		"version", d.Build.Version, "commit", d.Build.Commit)
	return res, passErr
}

// notifyPass is the state of one Run.
type notifyPass struct {
	d     *Dispatcher
	runID int64
	start time.Time

	claimed, delivered, retried, dead, errs, leaseLost, released, deferred atomic.Int64

	mu        sync.Mutex
	merchants map[string]merchantEntry
	lanes     map[string]*merchantLane // by merchant id
	// progress is signalled when a claimed row is finished, so a claim
	// that found only merchants at their share can be tried again.
	progress chan struct{}
}

// merchantLane is one merchant's share of a pass: its requests in flight, the rows
// the pass holds, and its breaker.
type merchantLane struct {
	inflight chan struct{} // one token per request in flight
	held     int           // claimed rows not yet finished; under notifyPass.mu
	breaker  recon.Breaker // under notifyPass.mu
}

type merchantEntry struct {
	m   repo.Merchant
	err error // a configuration problem: unknown merchant, bad notify_url
}

func (p *notifyPass) fill(r *NotifyResult) {
	r.Claimed, r.Delivered, r.Retried = p.claimed.Load(), p.delivered.Load(), p.retried.Load()
	r.Dead, r.Errors, r.LeaseLost, r.Released = p.dead.Load(), p.errs.Load(), p.leaseLost.Load(), p.released.Load()
	r.Deferred = p.deferred.Load()
}

func (p *notifyPass) counters() repo.RunCounters {
	var r NotifyResult
	p.fill(&r)
	return r.Counters()
}

func (p *notifyPass) run(ctx context.Context) error {
	d := p.d
	// Requests already sent finish on a context that ignores the shutdown
	// signal (each is bounded by Timeout), so their outcome is recorded and
	// no merchant is left with a delivery we believe failed.
	work := context.WithoutCancel(ctx)
	defer startHeartbeat(ctx, p.d.Heartbeat, p.d.Store.HeartbeatRun, p.runID, p.counters, p.d.Clock, p.d.Logger)()

	var wg sync.WaitGroup
	defer wg.Wait()
	// At most Concurrency posts run at once, and at most as many claimed
	// rows wait behind them, so the next claim overlaps the current posts.
	// A merchant has at most PerMerchantConcurrency posts in flight and
	// twice as many rows claimed, so a claimed row waits for at most one
	// request of its merchant (the lease covers two; deliver checks what
	// is left of it before posting), and a slow merchant's rows never fill
	// the claims.
	posting := make(chan struct{}, d.Concurrency)
	slots := make(chan struct{}, 2*d.Concurrency)
	for {
		// Wait for one free slot, then take every other free one.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		free := 1
	fill:
		for free < d.BatchSize {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break fill
			}
		}
		claim := repo.Claim{Owner: d.Owner, DueBefore: p.start, Now: d.Clock.Now(), Lease: d.Lease, Limit: free,
			PerMerchant: 2 * d.PerMerchantConcurrency}
		full := p.claimState(&claim)
		rows, err := d.Store.ClaimNotifications(ctx, claim)
		for i := len(rows); i < free; i++ {
			<-slots
		}
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			if !full {
				return nil
			}
			// Every row left may be of merchants holding their share: wait
			// for one of the pass's rows to finish, then claim again.
			select {
			case <-p.progress:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		p.claimed.Add(int64(len(rows)))
		for _, n := range rows {
			ln := p.hold(n.MerchantID)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				defer p.finish(ln)
				p.handle(ctx, work, n, ln, posting)
			}()
		}
	}
}

// claimState fills in what the next claim must leave alone: the merchants
// paused by their breaker, and the rows each merchant already holds. It
// reports whether some merchant holds its full share (so rows may be left
// that a later claim can take).
func (p *notifyPass) claimState(c *repo.Claim) (full bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.Holding = make(map[string]int, len(p.lanes))
	for id, ln := range p.lanes {
		switch {
		case ln.breaker.Paused():
			c.SkipMerchants = append(c.SkipMerchants, id)
		case ln.held > 0:
			c.Holding[id] = ln.held
			full = full || ln.held >= c.PerMerchant
		}
	}
	return full
}

// hold counts one more claimed row of merchant id and returns its merchantLane.
func (p *notifyPass) hold(id string) *merchantLane {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, ok := p.lanes[id]
	if !ok {
		ln = &merchantLane{inflight: make(chan struct{}, p.d.PerMerchantConcurrency),
			breaker: recon.Breaker{Policy: recon.BreakerPolicy{Failures: max(0, p.d.MerchantBreaker)}}}
		p.lanes[id] = ln
	}
	ln.held++
	return ln
}

// finish counts a claimed row as done and wakes a claim waiting for one.
func (p *notifyPass) finish(ln *merchantLane) {
	p.mu.Lock()
	ln.held--
	p.mu.Unlock()
	select {
	case p.progress <- struct{}{}:
	default:
	}
}

// paused reports whether ln's merchant is paused by its breaker.
func (p *notifyPass) paused(ln *merchantLane) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ln.breaker.Paused()
}

// handle waits for a place in the merchant's merchantLane and among all posts, then
// delivers n, or gives it back when the merchant was paused meanwhile or the
// pass is shutting down.
func (p *notifyPass) handle(ctx, work context.Context, n repo.Notification, ln *merchantLane, posting chan struct{}) {
	log := p.d.Logger.With("notification_id", n.ID)
	for _, sem := range []chan struct{}{ln.inflight, posting} {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		case <-ctx.Done():
		}
		switch {
		case ctx.Err() != nil:
			// Shutting down before the post began: give the row back for
			// the next dispatcher.
			p.release(work, n, log)
			return
		case p.paused(ln):
			p.deferRow(work, n, log)
			return
		}
	}
	out := p.deliver(work, n)
	p.mu.Lock()
	paused, _ := ln.breaker.Record(p.d.Clock.Now(), false, out)
	p.mu.Unlock()
	if paused {
		p.d.Logger.Warn("merchant paused for the rest of this pass: its notifications failed too many times in a row; its other due rows wait for the next pass without using up an attempt",
			"merchant_id", n.MerchantID, "failures", p.d.MerchantBreaker)
	}
}

// deliver makes one attempt at one claimed row and records its outcome. It
// returns what the attempt says about the merchant, for its breaker.
func (p *notifyPass) deliver(ctx context.Context, n repo.Notification) recon.CallOutcome {
	d := p.d
	log := d.Logger.With("notification_id", n.ID, "merchant_id", n.MerchantID, "order_id", n.OrderID,
		"event", n.Event, "attempt", n.Attempts+1)
	began := d.Clock.Now()
	m, err := p.merchant(ctx, n.MerchantID)
	if err != nil {
		var cfgErr *configError
		if !errors.As(err, &cfgErr) {
			// The database failed reading the merchant: no attempt was made,
			// so none is spent; the row is tried again once its lease ends.
			p.errs.Add(1)
			log.Error("reading the merchant failed; the row is retried after its lease", "error", err)
			return recon.CallNeutral
		}
		p.errs.Add(1)
		p.failed(ctx, n, err.Error(), began, log)
		return recon.CallFailed
	}
	timeout := d.Timeout
	if n.LockedUntil != nil {
		timeout = min(timeout, n.LockedUntil.Sub(began)-leaseMargin)
	}
	if timeout <= 0 {
		// The claim took so long the lease would run out mid-request:
		// posting now could overlap another dispatcher.
		log.Warn("lease too short to post; row released")
		p.release(ctx, n, log)
		return recon.CallNeutral
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	perr := p.post(rctx, n, m)
	cancel()
	if perr != nil {
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			perr = fmt.Errorf("timeout after %s (%w)", timeout, perr)
		}
		p.failed(ctx, n, perr.Error(), began, log)
		return recon.CallFailed
	}
	ok, err := d.Store.MarkDelivered(ctx, n.ID, d.Owner, d.Clock.Now())
	if p.record(OutcomeDelivered, ok, err, began, log) {
		log.Debug("delivered")
	}
	return recon.CallSucceeded
}

// failed records a failed attempt: a retry on the schedule, or DEAD after
// its last step.
func (p *notifyPass) failed(ctx context.Context, n repo.Notification, msg string, began time.Time, log *slog.Logger) {
	d := p.d
	attempts := n.Attempts + 1
	now := d.Clock.Now()
	log = log.With("last_error", msg)
	if attempts > len(d.RetrySchedule) {
		ok, err := d.Store.MarkDead(ctx, n.ID, d.Owner, attempts, msg, now)
		if p.record(OutcomeDead, ok, err, began, log) {
			log.Warn("notification dead: retry schedule exhausted", "attempts", attempts)
		}
		return
	}
	next := now.Add(d.RetrySchedule[attempts-1])
	ok, err := d.Store.MarkRetry(ctx, n.ID, d.Owner, attempts, next, msg)
	if p.record(OutcomeRetry, ok, err, began, log) {
		log.Info("delivery failed; will retry", "next_attempt_at", next)
	}
}

// record counts the answer of a guarded Mark: applied (true), lease lost, or
// a database error (the row is then tried again after its lease).
func (p *notifyPass) record(outcome string, ok bool, err error, began time.Time, log *slog.Logger) bool {
	switch {
	case err != nil:
		p.errs.Add(1)
		log.Error("recording the outcome failed; the row is tried again after its lease", "outcome", outcome, "error", err)
		return false
	case !ok:
		p.leaseLost.Add(1)
		p.observe(OutcomeLeaseLost, began)
		log.Warn("lease lost to another dispatcher or an operator; outcome dropped", "outcome", outcome)
		return false
	}
	switch outcome {
	case OutcomeDelivered:
		p.delivered.Add(1)
	case OutcomeRetry:
		p.retried.Add(1)
	case OutcomeDead:
		p.dead.Add(1)
	}
	p.observe(outcome, began)
	return true
}

func (p *notifyPass) release(ctx context.Context, n repo.Notification, log *slog.Logger) {
	p.released.Add(1)
	p.giveBack(ctx, n, log)
}

// deferRow gives back a claimed row of a merchant paused by its breaker:
// not posted, its attempts and schedule unchanged, due for the next pass.
func (p *notifyPass) deferRow(ctx context.Context, n repo.Notification, log *slog.Logger) {
	p.deferred.Add(1)
	p.giveBack(ctx, n, log)
}

func (p *notifyPass) giveBack(ctx context.Context, n repo.Notification, log *slog.Logger) {
	if _, err := p.d.Store.ReleaseNotification(ctx, n.ID, p.d.Owner); err != nil {
		log.Error("releasing the row failed; it is retried after its lease", "error", err)
	}
}

func (p *notifyPass) observe(outcome string, began time.Time) {
	if p.d.Observer != nil {
		p.d.Observer.Delivery(outcome, p.d.Clock.Now().Sub(began))
	}
}

// configError is a problem with a merchant's configuration: the attempt
// fails like a refused connection and is retried, so fixing the merchant in
// time delivers the row without an operator.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// merchant returns the merchant of a row, read once per pass.
func (p *notifyPass) merchant(ctx context.Context, id string) (repo.Merchant, error) {
	p.mu.Lock()
	e, ok := p.merchants[id]
	p.mu.Unlock()
	if ok {
		return e.m, e.err
	}
	var m repo.Merchant
	var err error
	if sink := p.d.Sink; sink != nil {
		m = repo.Merchant{ID: id, NotifyURL: sink.URL, NotifySecret: sink.Secret}
	} else {
		m, err = p.d.Store.GetMerchant(ctx, id)
	}
	switch {
	case errors.Is(err, recon.ErrNotFound):
		e = merchantEntry{err: &configError{fmt.Sprintf("merchant %q is not in the merchants table", id)}}
	case err != nil:
		return repo.Merchant{}, err // not cached: the database may recover
	default:
		e = merchantEntry{m: m}
		if verr := checkNotifyURL(m.NotifyURL); verr != nil {
			e.err = &configError{fmt.Sprintf("merchant %q: %v", id, verr)}
		} else if m.NotifySecret == "" {
			e.err = &configError{fmt.Sprintf("merchant %q has no notify_secret to sign with", id)}
		}
	}
	p.mu.Lock()
	p.merchants[id] = e
	p.mu.Unlock()
	return e.m, e.err
}

// checkNotifyURL accepts absolute http and https URLs with a host. Its
// message names the problem without echoing the URL (it may carry a token).
func checkNotifyURL(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("no notify_url configured")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("notify_url is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("notify_url scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("notify_url has no host")
	}
	return nil
}

// post sends one notification and returns nil for a 2xx answer whose body
// was read (up to the size limit) within the deadline.
func (p *notifyPass) post(ctx context.Context, n repo.Notification, m repo.Merchant) error {
	body := []byte(n.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.NotifyURL, bytes.NewReader(body))
	if err != nil {
		return errors.New("build request: notify_url rejected")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "recon-notify/1")
	req.Header.Set(recon.IdempotencyHeader, n.ID)
	req.Header.Set(recon.SignatureHeader, recon.SignPayload(m.NotifySecret, p.d.Clock.Now(), body))
	resp, err := p.d.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %s", describe(err))
	}
	defer resp.Body.Close()
	// Read at most MaxResponseBody; a bigger answer is cut off (the
	// connection is then closed rather than reused).
	var head bytes.Buffer
	_, rerr := io.Copy(io.Discard, io.TeeReader(io.LimitReader(resp.Body, p.d.MaxResponseBody), &limitedWriter{&head, 200}))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if rerr != nil {
			return fmt.Errorf("HTTP %d but reading the response failed: %s", resp.StatusCode, describe(rerr))
		}
		return nil
	}
	msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if s := recon.CleanText(head.String()); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// describe renders a transport error without the request URL, which may
// carry a merchant's token.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	b *bytes.Buffer
	n int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
