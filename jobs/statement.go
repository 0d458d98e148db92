package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/channel"
	"github.com/recon-dev/recon/repo"
)

// KindStatement is the recon_runs.kind of a statement reconciliation.
const KindStatement = "statement"

// StatementLease names the lease of the statement passes of channel. Their
// runs record channel as their shard, so the pass that takes the lease
// closes the runs its dead holder left RUNNING (Leaser.Run).
func StatementLease(channel string) string { return KindStatement + ":" + channel }

// StatementStore is what statement jobs need of repo.
type StatementStore interface {
	ImportStatement(ctx context.Context, imp repo.StatementImport, now time.Time, src repo.LineSource) (repo.Statement, error)
	FailStatement(ctx context.Context, imp repo.StatementImport, reason string, now time.Time) error
	GetStatement(ctx context.Context, channel, day string) (repo.Statement, error)
	MatchStatementLines(ctx context.Context, id int64) (int64, error)
	PaymentsToCheck(ctx context.Context, id, afterID int64, limit int, feeRate float64) ([]repo.StatementPayment, error)
	StatementRefunds(ctx context.Context, id, afterOrderID int64, limit int) ([]repo.StatementRefund, error)
	UnmatchedRefunds(ctx context.Context, id, afterID int64, limit int) ([]repo.StatementPayment, error)
	StatementRefundLines(ctx context.Context, id int64, channel string, afterID int64, limit int) ([]repo.StatementRefundLine, error)
	LocalOnlyOrders(ctx context.Context, channel string, from, to time.Time, statementIDs []int64, afterID int64, limit int) ([]recon.Order, error)
	RecordFindings(ctx context.Context, fs []repo.Finding, meta repo.CommitMeta) (int64, error)
	MakeDue(ctx context.Context, orders []recon.Order, reason string, now time.Time) (int64, error)
	MakeRefundsDue(ctx context.Context, refunds []recon.Refund, reason string, now time.Time) (int64, error)
	FinishStatement(ctx context.Context, id int64, c repo.StatementCounts, runID int64, now time.Time) error
	CommitBatch(ctx context.Context, outs []recon.Outcome, meta repo.CommitMeta) ([]repo.CommitReport, error)
	CommitRefundBatch(ctx context.Context, outs []recon.RefundOutcome, meta repo.CommitMeta) ([]repo.RefundCommitReport, error)
	GetOrder(ctx context.Context, id int64) (recon.Order, error)
	StartRun(ctx context.Context, kind string, dryRun bool, shard, owner string, now time.Time) (int64, error)
	HeartbeatRun(ctx context.Context, id int64, c repo.RunCounters, now time.Time) error
	FinishRun(ctx context.Context, id int64, status string, c repo.RunCounters, errText string, now time.Time) error
	Mapped() bool
}

// StatementChannel is one channel whose statements are reconciled.
type StatementChannel struct {
	Name    string
	Source  channel.Statements
	FeeRate float64 // 0: fees are totalled, not checked
	// Lookup is the channel's verified lookup with its rate limit and
	// retries (the *channel.Guarded of the reconcile passes): a statement
	// is evidence, and only this lookup's answer settles the PENDING orders
	// its lines claim paid. Nil: no line can be confirmed, and those orders
	// are made due for the next pass. Its LookupRefund, where it has one
	// (channel.RefundLookup), does the same for the PENDING refunds refund
	// lines show made.
	Lookup channel.Lookup
	// Policy is the channel's lookup concurrency and breaker, as in a
	// reconcile pass (Concurrency 0: the job's Concurrency).
	Policy ChannelPolicy
}

// StatementObserver is told how statement jobs end, for metrics.
type StatementObserver interface {
	// StatementDone reports one fetch, import or reconciliation of channel's
	// statement: outcome is imported, reconciled, missing or failed.
	StatementDone(channel, outcome string, lines int64, at time.Time)
}

// Statements fetches, imports and reconciles channel statements (CONTRACT
// §8). Fetch and Import only store a day; Reconcile compares it both ways
// with the local orders.
type Statements struct {
	Store  StatementStore
	Clock  recon.Clock
	Logger *slog.Logger
	// Zone is the time zone of a statement day (statements.timezone).
	Zone *time.Location
	// TempDir holds a fetched file while it is verified and imported
	// (default: the system's).
	TempDir string
	Owner   string
	// Observer, if set, is told how each job ended.
	Observer StatementObserver
	// Progress, if set, is called with the lines imported so far, every
	// ProgressEvery lines and at the end of an import.
	Progress func(lines int64)
	// ProgressEvery is how often Progress is called (default 10000 lines).
	ProgressEvery int64
	// PageSize is how many lines one read of the comparison takes
	// (default 2000).
	PageSize int
	// CommitBatch is how many settlements share one transaction (default 64).
	CommitBatch int
	// Heartbeat is how often a reconciliation refreshes its run row
	// (default 30s), as every pass does: a RUNNING row older than three
	// heartbeats is taken for dead by the next pass.
	Heartbeat time.Duration
	// Concurrency is how many lookups of a channel are in flight at once
	// when its Policy sets none (default 8); the channel's rate limit
	// bounds them whatever the number.
	Concurrency int
}

// StatementResult is the summary of one statement job; its JSON keys are
// CONTRACT §4's.
type StatementResult struct {
	Channel  string `json:"channel"`
	Day      string `json:"bill_date"`
	Status   string `json:"status"`
	RunID    int64  `json:"run_id,omitempty"`
	DryRun   bool   `json:"dry_run"`
	Source   string `json:"source,omitempty"`
	Origin   string `json:"origin,omitempty"`
	SHA256   string `json:"file_sha256,omitempty"`
	Payments int64  `json:"payments"`
	Refunds  int64  `json:"refunds"`
	Fees     int64  `json:"fees"`
	repo.StatementCounts
	// Lookups counts the lookups made for lines that claim a PENDING order
	// paid or a PENDING refund made; LookupsFailed those that failed or were
	// not made (the channel paused): their orders and refunds were made due
	// for the next pass at once.
	Lookups       int64 `json:"lookups"`
	LookupsFailed int64 `json:"lookups_failed"`
	// RefundsMatched counts refund lines that agree with their SUCCEEDED
	// refund order; RefundsSettled the PENDING refunds a line's lookup
	// settled (SUCCEEDED).
	RefundsMatched int64 `json:"refunds_matched"`
	RefundsSettled int64 `json:"refunds_settled"`
	// Conflicts counts settlements another writer beat.
	Conflicts int64  `json:"conflicts"`
	Error     string `json:"error,omitempty"`
	// Found lists the mismatches of this reconciliation (at most 200).
	Found []Found `json:"found,omitempty"`
	// Phases says where a reconciliation spent its time.
	Phases []Phase `json:"-"`
}

// PhaseLookups names the time a reconciliation spent looking up the orders
// its lines claim paid (within its payments phase).
const PhaseLookups = "(lookups)"

// Phase is the time one step of a reconciliation took.
type Phase struct {
	Name string
	Took time.Duration
}

func (j *Statements) logger() *slog.Logger {
	if j.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return j.Logger
}

func (j *Statements) zone() *time.Location {
	if j.Zone == nil {
		return time.UTC
	}
	return j.Zone
}

func (j *Statements) observe(ch, outcome string, lines int64) {
	if j.Observer != nil {
		j.Observer.StatementDone(ch, outcome, lines, j.Clock.Now())
	}
}

// DayBounds returns the UTC instants that start and end day in loc.
func DayBounds(day string, loc *time.Location) (time.Time, time.Time, error) {
	start, err := time.ParseInLocation(time.DateOnly, day, loc)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("statement day %q is not YYYY-MM-DD", day)
	}
	return start.UTC(), start.AddDate(0, 0, 1).UTC(), nil
}

// Yesterday is the day before now in loc, the default statement day.
func Yesterday(now time.Time, loc *time.Location) string {
	return now.In(loc).AddDate(0, 0, -1).Format(time.DateOnly)
}

// Fetch downloads the statement of ch for day into a temporary file,
// verified by the adapter, and imports it. A day the channel has no
// statement for returns an error wrapping channel.ErrNoStatement and stores
// nothing.
func (j *Statements) Fetch(ctx context.Context, ch StatementChannel, day string) (StatementResult, error) {
	res := StatementResult{Channel: ch.Name, Day: day, Source: repo.SourceFetch}
	if _, _, err := DayBounds(day, j.zone()); err != nil {
		return res, err
	}
	f, err := os.CreateTemp(j.TempDir, "recon-statement-*")
	if err != nil {
		return res, fmt.Errorf("fetch statement %s %s: %w", ch.Name, day, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var origin string
	for attempt := 1; ; attempt++ {
		if err := f.Truncate(0); err != nil {
			return res, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return res, err
		}
		origin, err = ch.Source.FetchStatement(ctx, day, f)
		if err == nil || attempt == 3 || channel.ClassOf(err) == channel.ClassPermanent || errors.Is(err, channel.ErrNoStatement) || ctx.Err() != nil {
			break
		}
		wait := time.Duration(attempt) * 2 * time.Second
		if ra := channel.RetryAfterOf(err); ra > wait {
			wait = ra
		}
		j.logger().Warn("statement fetch failed; retrying", "channel", ch.Name, "day", day, "error", err, "wait", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	res.Origin = origin
	if errors.Is(err, channel.ErrNoStatement) {
		res.Status = "MISSING"
		res.Error = err.Error()
		j.observe(ch.Name, "missing", 0)
		return res, err
	}
	if err != nil {
		res.Status = repo.StatementFailed
		res.Error = err.Error()
		imp := repo.StatementImport{Channel: ch.Name, Day: day, Source: repo.SourceFetch, Origin: origin}
		if errors.Is(err, channel.ErrBadStatement) || errors.Is(err, channel.ErrBadSignature) {
			// A file that does not verify is a statement that failed.
			if ferr := j.Store.FailStatement(context.WithoutCancel(ctx), imp, err.Error(), j.Clock.Now()); ferr != nil {
				j.logger().Error("recording a failed statement failed", "channel", ch.Name, "day", day, "error", ferr)
			}
		}
		j.observe(ch.Name, "failed", 0)
		return res, err
	}
	return j.importFile(ctx, ch, day, f, repo.SourceFetch, origin)
}

// Import stores the statement of ch for day from a file downloaded by hand.
func (j *Statements) Import(ctx context.Context, ch StatementChannel, day, path string) (StatementResult, error) {
	res := StatementResult{Channel: ch.Name, Day: day, Source: repo.SourceFile, Origin: path}
	if _, _, err := DayBounds(day, j.zone()); err != nil {
		return res, err
	}
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("import statement %s %s: %w", ch.Name, day, err)
	}
	defer f.Close()
	return j.importFile(ctx, ch, day, f, repo.SourceFile, path)
}

// importFile hashes f and imports its lines (all or nothing for a reader); a
// file that does not parse leaves the statement FAILED with the reason and
// nothing of it kept.
func (j *Statements) importFile(ctx context.Context, ch StatementChannel, day string, f *os.File, source, origin string) (StatementResult, error) {
	res := StatementResult{Channel: ch.Name, Day: day, Source: source, Origin: origin}
	h := sha256.New()
	size, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return res, fmt.Errorf("import statement %s %s: read %s: %w", ch.Name, day, origin, err)
	}
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	imp := repo.StatementImport{Channel: ch.Name, Day: day, Source: source, Origin: origin, SHA256: res.SHA256, Size: size}
	every := j.ProgressEvery
	if every <= 0 {
		every = 10000
	}
	var n int64
	src := func(emit func(recon.StatementLine) error) (recon.StatementTotals, error) {
		n = 0 // the file is read twice: checked whole, then stored
		return ch.Source.ParseStatement(f, size, day, j.zone(), func(l recon.StatementLine) error {
			if err := emit(l); err != nil {
				return fmt.Errorf("line %d: %w", l.LineNo, err)
			}
			n++
			if j.Progress != nil && n%every == 0 {
				j.Progress(n)
			}
			return nil
		})
	}
	st, err := j.Store.ImportStatement(ctx, imp, j.Clock.Now(), src)
	if j.Progress != nil {
		j.Progress(n)
	}
	if err != nil {
		res.Status, res.Error = repo.StatementFailed, err.Error()
		if ferr := j.Store.FailStatement(context.WithoutCancel(ctx), imp, err.Error(), j.Clock.Now()); ferr != nil {
			j.logger().Error("recording a failed statement failed", "channel", ch.Name, "day", day, "error", ferr)
		}
		j.observe(ch.Name, "failed", 0)
		return res, err
	}
	res.Status = st.Status
	res.Lines, res.Payments, res.Refunds, res.Fees = st.Lines, st.Payments, st.Refunds, st.Fees
	j.logger().Info("statement imported", "channel", ch.Name, "day", day, "lines", st.Lines, "sha256", res.SHA256, "source", source)
	j.observe(ch.Name, "imported", st.Lines)
	return res, nil
}

// Run fetches the statement of ch for day and reconciles it.
func (j *Statements) Run(ctx context.Context, ch StatementChannel, day string) (StatementResult, error) {
	res, err := j.Fetch(ctx, ch, day)
	if err != nil {
		return res, err
	}
	return j.Reconcile(ctx, ch, day, false)
}

// Reconcile compares the stored statement of ch for day with the local
// orders, both ways (CONTRACT §8): a payment that claims a PENDING order
// paid makes recon look the order up at once, and only a lookup that
// confirms it settles the order (STATEMENT_CONFLICT otherwise; a failed
// lookup makes the order due for the next pass); other payments match or are
// mismatches, refunds are matched to paid orders, fees checked against the
// channel's rate, and the PAID orders of the day before (and of day itself,
// when the next day is stored already) absent from both days' statements are
// LOCAL_ONLY. A dry run looks orders up as a dry reconcile pass does (a read
// at the channel), writes nothing and says what it would do.
func (j *Statements) Reconcile(ctx context.Context, ch StatementChannel, day string, dryRun bool) (res StatementResult, err error) {
	res = StatementResult{Channel: ch.Name, Day: day, DryRun: dryRun}
	st, err := j.Store.GetStatement(ctx, ch.Name, day)
	if errors.Is(err, recon.ErrNotFound) {
		return res, fmt.Errorf("reconcile statement %s %s: no statement stored for that day (recon statement fetch or import first): %w", ch.Name, day, err)
	}
	if err != nil {
		return res, err
	}
	if st.Status == repo.StatementFailed {
		res.Status, res.Error = st.Status, st.Error
		return res, fmt.Errorf("reconcile statement %s %s: the statement FAILED: %s", ch.Name, day, st.Error)
	}
	res.Lines, res.Payments, res.Refunds, res.Fees = st.Lines, st.Payments, st.Refunds, st.Fees
	res.Source, res.Origin, res.SHA256 = st.Source, st.Origin, st.SHA256
	started := j.Clock.Now()
	if res.RunID, err = j.Store.StartRun(ctx, KindStatement, dryRun, ch.Name, j.Owner, started); err != nil {
		return res, err
	}
	r := &stmtRun{j: j, ch: ch, res: &res, dry: dryRun,
		meta: repo.CommitMeta{RunID: res.RunID, Source: "statement", Now: started}}
	if ch.Policy.Breaker.Failures > 0 {
		// Its pauses are logged and counted in lookups_failed, not
		// exposed: the statement job's pushed series outlive it by a day,
		// and a paused gauge left there would page for the whole of it.
		r.gate = newLaneGate(ch.Name, ch.Policy.Breaker, j.Clock, j.logger(), nil)
	}
	every := j.Heartbeat
	if every <= 0 {
		every = 30 * time.Second
	}
	stopBeat := startHeartbeat(ctx, every, j.Store.HeartbeatRun, res.RunID,
		func() repo.RunCounters { return repo.RunCounters{Scanned: st.Lines} }, j.Clock, j.logger())
	err = r.compare(ctx, st)
	stopBeat()
	status := repo.RunSucceeded
	if err != nil {
		status = repo.RunFailed
		if ctx.Err() != nil {
			status = repo.RunAborted
		}
		res.Error = err.Error()
	}
	counters := repo.RunCounters{Scanned: res.Lines, Paid: res.Settled, Conflicts: res.Conflicts,
		Errors: res.LookupsFailed,
		Mismatches: res.ChannelOnly + res.LocalOnly + res.AmountMismatches + res.RefundMismatches + res.FeeMismatches +
			res.StatusMismatches + res.StatementConflicts}
	fctx := context.WithoutCancel(ctx)
	if ferr := j.Store.FinishRun(fctx, res.RunID, status, counters, res.Error, j.Clock.Now()); ferr != nil && err == nil {
		err = ferr
	}
	if err != nil {
		res.Status = repo.RunFailed
		j.observe(ch.Name, "failed", res.Lines)
		return res, err
	}
	res.Status = repo.StatementReconciled
	if !dryRun {
		if err := j.Store.FinishStatement(fctx, st.ID, res.StatementCounts, res.RunID, j.Clock.Now()); err != nil {
			return res, err
		}
		j.observe(ch.Name, "reconciled", res.Lines)
	}
	j.logger().Info("statement reconciled", "channel", ch.Name, "day", day, "dry_run", dryRun, "lines", res.Lines,
		"matched", res.Matched, "settled", res.Settled, "statement_conflicts", res.StatementConflicts,
		"lookups", res.Lookups, "lookups_failed", res.LookupsFailed, "channel_only", res.ChannelOnly, "local_only", res.LocalOnly,
		"amount_mismatches", res.AmountMismatches, "refund_mismatches", res.RefundMismatches,
		"fee_mismatches", res.FeeMismatches, "new_mismatches", res.NewMismatches)
	return res, nil
}

// stmtRun is one reconciliation of a statement.
type stmtRun struct {
	j    *Statements
	ch   StatementChannel
	res  *StatementResult
	dry  bool
	meta repo.CommitMeta

	gate     *laneGate             // the channel's breaker for this run; nil: none
	claims   []claim               // lines of the page that ask for a lookup
	refunds  []refundClaim         // refund lines of the page that ask for a refund lookup
	outs     []recon.Outcome       // settlements the lookups confirmed
	lines    []recon.StatementLine // the line of each of outs
	findings []repo.Finding

	commitTook, findingsTook, lookupTook time.Duration // inside the phases

	batches    chan commitBatch // to the committers; nil when none runs
	committing sync.WaitGroup   // the committers
	mu         sync.Mutex       // guards committed and commitTook
	committed  []committed      // what the committers did, not yet taken in
}

// claim is a statement line that claims its local PENDING order paid.
type claim struct {
	line  recon.StatementLine
	order recon.Order
}

// refundClaim is a statement line that shows its local PENDING refund made.
type refundClaim struct {
	line   recon.StatementLine
	refund recon.Refund
}

// committers is how many commit transactions of settlements run at once.
const committers = 4

func (r *stmtRun) pageSize() int {
	if r.j.PageSize > 0 {
		return r.j.PageSize
	}
	return 2000
}

func (r *stmtRun) compare(ctx context.Context, st repo.Statement) error {
	s := r.j.Store
	t := time.Now() // wall time for the phases, not the job's clock
	phase := func(name string) {
		r.res.Phases = append(r.res.Phases, Phase{name, time.Since(t)})
		t = time.Now()
	}
	if !r.dry {
		if _, err := s.MatchStatementLines(ctx, st.ID); err != nil {
			return err
		}
	}
	phase("match late orders")
	// Payments, in line order. The lines the database finds certainly
	// matched are not read: they only count.
	examined := int64(0)
	for after := int64(0); ; {
		page, err := s.PaymentsToCheck(ctx, st.ID, after, r.pageSize(), r.ch.FeeRate)
		if err != nil {
			return err
		}
		for _, p := range page {
			r.payment(p.Line, p.Order)
			after = p.LineID
		}
		examined += int64(len(page))
		if err := r.confirm(ctx); err != nil {
			return err
		}
		if err := r.flush(ctx, false); err != nil {
			return err
		}
		if len(page) < r.pageSize() {
			break
		}
	}
	if err := r.flush(ctx, true); err != nil {
		return err
	}
	r.res.Matched += st.Payments - examined
	phase("payments")
	// Refunds, per order, after the settlements they may depend on.
	for after := int64(0); ; {
		page, err := s.StatementRefunds(ctx, st.ID, after, r.pageSize())
		if err != nil {
			return err
		}
		for _, rf := range page {
			after = rf.OrderID
			if m := recon.CompareRefund(rf.Facts, rf.Order); m != nil {
				r.find(rf.Order, rf.Facts.Line, *m)
			}
		}
		if len(page) < r.pageSize() {
			break
		}
	}
	if err := r.refundOrders(ctx, st); err != nil {
		return err
	}
	for after := int64(0); ; {
		page, err := s.UnmatchedRefunds(ctx, st.ID, after, r.pageSize())
		if err != nil {
			return err
		}
		for _, p := range page {
			after = p.LineID
			r.find(nil, p.Line, recon.ChannelOnly(p.Line))
		}
		if len(page) < r.pageSize() {
			break
		}
	}
	phase("refunds")
	if err := r.localOnly(ctx, st); err != nil {
		return err
	}
	err := r.flush(ctx, true)
	phase("local only")
	r.res.Phases = append(r.res.Phases, Phase{PhaseLookups, r.lookupTook}, Phase{"(settlements)", r.commitTook}, Phase{"(mismatch rows)", r.findingsTook})
	return err
}

// payment compares one payment line with its order and queues what it
// finds; a line that claims a PENDING order paid waits for its lookup
// (confirm).
func (r *stmtRun) payment(l recon.StatementLine, o *recon.Order) {
	v := recon.ComparePayment(l, o, r.ch.FeeRate)
	if v.Matched {
		r.res.Matched++
	}
	if v.Lookup {
		r.claims = append(r.claims, claim{line: l, order: *o})
	}
	for _, m := range v.Mismatches {
		r.find(o, l, m)
	}
}

// concurrency is how many lookups of the channel are in flight at once.
func (r *stmtRun) concurrency() int {
	switch {
	case r.ch.Policy.Concurrency > 0:
		return r.ch.Policy.Concurrency
	case r.j.Concurrency > 0:
		return r.j.Concurrency
	}
	return 8
}

// confirm looks up, at once, the orders the queued lines claim paid,
// through the channel's verified lookup (its rate limit, retries and
// breaker). Only a lookup that confirms its line settles the order (queued
// for the guarded commit); any other answer is STATEMENT_CONFLICT and moves
// nothing. An order whose lookup failed, or was not made because the
// channel is paused, is made due at once for the next pass.
func (r *stmtRun) confirm(ctx context.Context) error {
	claims := r.claims
	r.claims = nil
	if len(claims) == 0 {
		return nil
	}
	answers := make([]recon.LookupResult, len(claims))
	errs, err := r.lookAll(ctx, len(claims), func(ctx context.Context, i int) (string, error) {
		if r.ch.Lookup == nil {
			return "", fmt.Errorf("channel %s: no lookup to confirm the statement with", r.ch.Name)
		}
		res, err := r.ch.Lookup.Lookup(ctx, claims[i].order)
		answers[i] = res
		return lookupOutcome(res, err), err
	})
	if err != nil {
		return err
	}
	now := r.j.Clock.Now()
	due := map[string][]recon.Order{} // by reason
	for i, c := range claims {
		if errs[i] != nil {
			reason := r.lookupFailed(errs[i], "a statement line claims it paid",
				"the lookup of an order a statement line claims paid failed; the order is due for the next pass",
				"order_no", c.order.OrderNo, "line", c.line.LineNo)
			due[reason] = append(due[reason], c.order)
			continue
		}
		out, m := recon.ConfirmLine(c.line, c.order, answers[i], now)
		switch {
		case m != nil:
			r.find(&c.order, c.line, *m)
		case r.dry:
			r.res.Settled++
		default:
			r.outs = append(r.outs, out)
			r.lines = append(r.lines, c.line)
		}
	}
	if r.dry {
		return nil
	}
	for reason, orders := range due {
		if _, err := r.j.Store.MakeDue(ctx, orders, reason, now); err != nil {
			return err
		}
	}
	return nil
}

// lookAll runs look for i in [0, n), as many at once as the channel's
// concurrency allows, through the channel's breaker, and tells the Observer
// how each ended (look returns the outcome label). It returns each call's
// error, and an error only when ctx ended.
func (r *stmtRun) lookAll(ctx context.Context, n int, look func(ctx context.Context, i int) (string, error)) ([]error, error) {
	errs := make([]error, n)
	lctx := ctx
	if r.gate != nil {
		lctx = channel.WithGate(ctx, r.gate)
	}
	obs, _ := r.j.Observer.(interface {
		Lookup(channel, outcome string, d time.Duration)
	})
	began := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(r.concurrency(), n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				start := time.Now()
				outcome, err := look(lctx, i)
				errs[i] = err
				if obs != nil && outcome != "" && !errors.Is(err, channel.ErrPaused) {
					obs.Lookup(r.ch.Name, outcome, time.Since(start))
				}
			}
		}()
	}
	wg.Wait()
	r.lookupTook += time.Since(began)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if !errors.Is(err, channel.ErrPaused) {
			r.res.Lookups++
		}
		if err != nil {
			r.res.LookupsFailed++
		}
	}
	return errs, nil
}

// lookupFailed returns the reason kept on an item whose lookup err a line
// asked for (claim says what the line claims) failed or was not made, and
// logs msg with attrs for a lookup that failed. One reason for many items
// (a paused channel's) makes them due in one statement; the breaker logged
// the pause once.
func (r *stmtRun) lookupFailed(err error, claim, msg string, attrs ...any) string {
	if errors.Is(err, channel.ErrPaused) {
		return claim + "; not looked up: " + err.Error()
	}
	r.j.logger().Warn(msg, append([]any{"channel", r.ch.Name, "error", err}, attrs...)...)
	return claim + "; its lookup failed: " + err.Error()
}

// refundOrders compares the refund lines of statement st that name a
// refund order with it (CONTRACT §8, §10): a line for a SUCCEEDED refund
// of its amount and currency matches; one for a FAILED refund is
// CHANNEL_REFUNDED_LOCAL_FAILED; one for a PENDING refund makes recon look
// the refund up at once (confirmRefunds). Lines that name no refund order
// are matched to their paid orders only.
func (r *stmtRun) refundOrders(ctx context.Context, st repo.Statement) error {
	for after := int64(0); ; {
		page, err := r.j.Store.StatementRefundLines(ctx, st.ID, r.ch.Name, after, r.pageSize())
		if err != nil {
			return err
		}
		for _, p := range page {
			after = p.LineID
			switch f := p.Refund; {
			case f == nil:
			case f.Status == recon.RefundPending:
				r.refunds = append(r.refunds, refundClaim{line: p.Line, refund: *f})
			default:
				if m := recon.CompareRefundLine(p.Line, *f); m != nil {
					subject := refundOrder(*f)
					r.find(&subject, p.Line, *m)
				} else {
					r.res.RefundsMatched++
				}
			}
		}
		if err := r.confirmRefunds(ctx); err != nil {
			return err
		}
		if err := r.flush(ctx, false); err != nil {
			return err
		}
		if len(page) < r.pageSize() {
			return nil
		}
	}
}

// confirmRefunds is confirm for the PENDING refunds the queued refund lines
// show made, through the channel's verified refund lookup; the refunds the
// lookups confirm are committed at once through the guarded path.
func (r *stmtRun) confirmRefunds(ctx context.Context) error {
	claims := r.refunds
	r.refunds = nil
	if len(claims) == 0 {
		return nil
	}
	rl, _ := r.ch.Lookup.(channel.RefundLookup)
	answers := make([]recon.RefundLookup, len(claims))
	errs, err := r.lookAll(ctx, len(claims), func(ctx context.Context, i int) (string, error) {
		if rl == nil {
			return "", fmt.Errorf("channel %s: no refund lookup to confirm the statement with", r.ch.Name)
		}
		res, err := rl.LookupRefund(ctx, claims[i].refund)
		answers[i] = res
		return answerOutcome(string(res.Status), err), err
	})
	if err != nil {
		return err
	}
	now := r.j.Clock.Now()
	due := map[string][]recon.Refund{} // by reason
	var outs []recon.RefundOutcome
	var lines []recon.StatementLine
	for i, c := range claims {
		if errs[i] != nil {
			reason := r.lookupFailed(errs[i], "a statement line shows it made",
				"the lookup of a refund a statement line shows made failed; the refund is due for the next pass",
				"refund_no", c.refund.RefundNo, "line", c.line.LineNo)
			due[reason] = append(due[reason], c.refund)
			continue
		}
		out, m := recon.ConfirmRefundLine(c.line, c.refund, answers[i], now)
		if m != nil {
			subject := refundOrder(c.refund)
			r.find(&subject, c.line, *m)
			continue
		}
		if r.dry {
			r.countRefundOutcome(out)
			continue
		}
		outs, lines = append(outs, out), append(lines, c.line)
	}
	if r.dry {
		return nil
	}
	for reason, refunds := range due {
		if _, err := r.j.Store.MakeRefundsDue(ctx, refunds, reason, now); err != nil {
			return err
		}
	}
	return r.commitRefunds(ctx, outs, lines)
}

// commitRefunds writes the refund outcomes the lookups confirmed through
// the guarded path. A refund another writer moved first is judged again, on
// its current state, against the lookup's answer, as commit does for
// orders.
func (r *stmtRun) commitRefunds(ctx context.Context, outs []recon.RefundOutcome, lines []recon.StatementLine) error {
	batch := r.j.CommitBatch
	if batch <= 0 {
		batch = 64
	}
	for start := 0; start < len(outs); start += batch {
		end := min(start+batch, len(outs))
		t := time.Now()
		reps, err := r.j.Store.CommitRefundBatch(ctx, outs[start:end], r.meta)
		r.commitTook += time.Since(t)
		if err != nil {
			return err
		}
		for i, rep := range reps {
			out, l := outs[start+i], lines[start+i]
			if rep.Result == repo.Stale {
				// Still PENDING with a new version: decide again once, on
				// the same lookup.
				again, m := recon.ConfirmRefundLine(l, rep.Current, *out.Lookup, r.meta.Now)
				if m != nil {
					subject := refundOrder(rep.Current)
					r.find(&subject, l, *m)
					continue
				}
				reps2, err := r.j.Store.CommitRefundBatch(ctx, []recon.RefundOutcome{again}, r.meta)
				if err != nil {
					return err
				}
				out, rep = again, reps2[0]
			}
			switch rep.Result {
			case repo.Applied, repo.Recorded:
				r.countRefundOutcome(out)
				if rep.OrderMismatch != nil {
					r.count(rep.OrderMismatch.Kind)
					r.found(refundOrder(out.Refund), *rep.OrderMismatch)
				}
				if rep.NewMismatch {
					r.res.NewMismatches++
				}
			case repo.Lost:
				r.res.Conflicts++
				if m := recon.ClassifyRefundConflict(rep.Current, *out.Lookup); m != nil {
					m.Detail = fmt.Sprintf("statement line %d: %s", l.LineNo, m.Detail)
					subject := refundOrder(rep.Current)
					r.find(&subject, l, *m)
				}
			case repo.Stale:
				r.res.Conflicts++
			}
		}
	}
	return nil
}

// countRefundOutcome counts what a confirmed refund outcome did (or would
// do, in a dry run): a settlement, or the mismatch it holds the refund on.
func (r *stmtRun) countRefundOutcome(out recon.RefundOutcome) {
	if out.Action == recon.ActionTransition && out.To == recon.RefundSucceeded {
		r.res.RefundsSettled++
		if o, ok := r.j.Observer.(RefundObserver); ok && !r.dry {
			o.RefundTransition(out.To)
		}
	}
	if out.Mismatch != nil {
		r.count(out.Mismatch.Kind)
		r.found(refundOrder(out.Refund), *out.Mismatch)
	}
}

// find queues a finding about o (nil: an order recon does not know).
func (r *stmtRun) find(o *recon.Order, l recon.StatementLine, m recon.Mismatch) {
	r.count(m.Kind)
	ord := recon.Order{OrderNo: l.OrderNo, Channel: r.ch.Name}
	if o != nil {
		ord = *o
	}
	r.found(ord, m)
	r.findings = append(r.findings, repo.Finding{Order: ord, Mismatch: m})
}

func (r *stmtRun) count(k recon.MismatchKind) {
	if obs, ok := r.j.Observer.(interface{ Mismatch(recon.MismatchKind) }); ok && !r.dry {
		obs.Mismatch(k)
	}
	switch k {
	case recon.MismatchChannelOnly:
		r.res.ChannelOnly++
	case recon.MismatchLocalOnly:
		r.res.LocalOnly++
	case recon.MismatchAmount, recon.MismatchCurrency:
		r.res.AmountMismatches++
	case recon.MismatchRefund, recon.MismatchRefundAmount:
		r.res.RefundMismatches++
	case recon.MismatchFee:
		r.res.FeeMismatches++
	case recon.MismatchStatementConflict:
		r.res.StatementConflicts++
	default:
		r.res.StatusMismatches++
	}
}

func (r *stmtRun) found(o recon.Order, m recon.Mismatch) {
	if len(r.res.Found) < 200 {
		r.res.Found = append(r.res.Found, Found{OrderNo: o.OrderNo, RefundNo: m.RefundNo, Channel: o.Channel, Kind: m.Kind, Detail: m.Detail})
	}
}

// flush hands the queued settlements to the committers in batches of
// CommitBatch (all of them when force, then waits for the committers to
// finish), takes in what the committers did, and records the findings. The
// committers work while the next page is read and looked up, so a
// rate-limited channel's lookups, not the database, bound a reconciliation.
func (r *stmtRun) flush(ctx context.Context, force bool) error {
	if r.dry {
		r.findings = r.findings[:0]
		return nil
	}
	batch := r.j.CommitBatch
	if batch <= 0 {
		batch = 64
	}
	for len(r.outs) >= batch || (force && len(r.outs) > 0) {
		n := min(batch, len(r.outs))
		b := commitBatch{outs: r.outs[:n:n], lines: r.lines[:n:n]}
		r.outs, r.lines = r.outs[n:], r.lines[n:]
		if r.batches == nil {
			r.startCommitters(ctx)
		}
		select {
		case r.batches <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(r.outs) == 0 {
		r.outs, r.lines = nil, nil
	}
	if force && r.batches != nil {
		close(r.batches)
		r.committing.Wait()
		r.batches = nil
	}
	if err := r.takeCommitted(); err != nil {
		return err
	}
	if len(r.findings) >= 200 || (force && len(r.findings) > 0) {
		t := time.Now()
		defer func() { r.findingsTook += time.Since(t) }()
		n, err := r.j.Store.RecordFindings(ctx, r.findings, r.meta)
		if err != nil {
			return err
		}
		r.res.NewMismatches += n
		r.findings = r.findings[:0]
	}
	return nil
}

// commitBatch is one transaction's settlements, with their lines.
type commitBatch struct {
	outs  []recon.Outcome
	lines []recon.StatementLine
}

// committed is what one batch's commit did, for the run's goroutine to take
// in (takeCommitted): the committers share nothing else with it.
type committed struct {
	settled, conflicts, newMismatches int64
	finds                             []stmtFinding
	err                               error
}

// stmtFinding is a finding a committer made about an order.
type stmtFinding struct {
	order recon.Order
	line  recon.StatementLine
	m     recon.Mismatch
}

// startCommitters starts the committers: each order has its own guard, and
// the orders of a statement's lines are distinct, so batches commit at once.
func (r *stmtRun) startCommitters(ctx context.Context) {
	r.batches = make(chan commitBatch)
	for w := 0; w < committers; w++ {
		r.committing.Add(1)
		go func(batches <-chan commitBatch) {
			defer r.committing.Done()
			for b := range batches {
				if ctx.Err() != nil {
					continue // cancelled: the rest is left, as a pass leaves it
				}
				t := time.Now()
				c := r.commit(ctx, b.outs, b.lines)
				r.mu.Lock()
				r.commitTook += time.Since(t)
				r.committed = append(r.committed, c)
				r.mu.Unlock()
			}
		}(r.batches)
	}
}

// takeCommitted takes in what the committers did so far, and returns the
// first error one of them met.
func (r *stmtRun) takeCommitted() error {
	r.mu.Lock()
	done := r.committed
	r.committed = nil
	r.mu.Unlock()
	var errs []error
	for _, c := range done {
		for i := int64(0); i < c.settled; i++ {
			r.settled()
		}
		r.res.Conflicts += c.conflicts
		r.res.NewMismatches += c.newMismatches
		for _, f := range c.finds {
			r.find(&f.order, f.line, f.m)
		}
		errs = append(errs, c.err)
	}
	return errors.Join(errs...)
}

// commit writes the settlements the lookups confirmed through the guarded
// path. An order another writer moved first is judged again, on its current
// state, against the lookup's answer.
func (r *stmtRun) commit(ctx context.Context, outs []recon.Outcome, lines []recon.StatementLine) (c committed) {
	reps, err := r.j.Store.CommitBatch(ctx, outs, r.meta)
	if err != nil {
		c.err = err
		return c
	}
	for i, rep := range reps {
		switch rep.Result {
		case repo.Applied, repo.Recorded:
			if outs[i].Action == recon.ActionTransition {
				c.settled++
			}
			if rep.NewMismatch {
				c.newMismatches++
			}
		case repo.Lost:
			c.conflicts++
			if m := recon.ClassifyConflict(rep.Current, *outs[i].Lookup); m != nil {
				m.Detail = fmt.Sprintf("statement line %d: %s", lines[i].LineNo, m.Detail)
				c.finds = append(c.finds, stmtFinding{rep.Current, lines[i], *m})
			}
		case repo.Stale:
			// Still PENDING with a new version: decide again once, on the
			// same lookup.
			out, m := recon.ConfirmLine(lines[i], rep.Current, *outs[i].Lookup, r.meta.Now)
			if m != nil {
				c.finds = append(c.finds, stmtFinding{rep.Current, lines[i], *m})
				continue
			}
			again, err := r.j.Store.CommitBatch(ctx, []recon.Outcome{out}, r.meta)
			if err != nil {
				c.err = err
				return c
			}
			switch again[0].Result {
			case repo.Applied:
				c.settled++
			case repo.Lost, repo.Stale:
				c.conflicts++
			}
		}
	}
	return c
}

// settled counts an order a lookup settled.
func (r *stmtRun) settled() {
	r.res.Settled++
	if obs, ok := r.j.Observer.(interface{ Transition(recon.Status) }); ok {
		obs.Transition(recon.StatusPaid)
	}
}

// localOnly reports the PAID orders of a day in neither that day's nor the
// next day's statement: the day before this one, and this day when the next
// is stored already. A day without a stored statement reports nothing.
func (r *stmtRun) localOnly(ctx context.Context, st repo.Statement) error {
	s := r.j.Store
	start, _, err := DayBounds(st.Day, r.j.zone())
	if err != nil {
		return err
	}
	local := start.In(r.j.zone())
	for _, pair := range [][2]string{
		{local.AddDate(0, 0, -1).Format(time.DateOnly), st.Day},
		{st.Day, local.AddDate(0, 0, 1).Format(time.DateOnly)},
	} {
		day, next := pair[0], pair[1]
		a, err := r.stored(ctx, day, st)
		if err != nil || a == nil {
			return err
		}
		b, err := r.stored(ctx, next, st)
		if err != nil || b == nil {
			continue
		}
		if !r.dry {
			if _, err := s.MatchStatementLines(ctx, a.ID); err != nil {
				return err
			}
			if _, err := s.MatchStatementLines(ctx, b.ID); err != nil {
				return err
			}
		}
		from, to, _ := DayBounds(day, r.j.zone())
		for after := int64(0); ; {
			page, err := s.LocalOnlyOrders(ctx, r.ch.Name, from, to, []int64{a.ID, b.ID}, after, r.pageSize())
			if err != nil {
				return err
			}
			for _, o := range page {
				after = o.ID
				m := recon.LocalOnly(o, day)
				r.count(m.Kind)
				r.found(o, m)
				r.findings = append(r.findings, repo.Finding{Order: o, Mismatch: m})
			}
			if err := r.flush(ctx, false); err != nil {
				return err
			}
			if len(page) < r.pageSize() {
				break
			}
		}
	}
	return nil
}

// stored returns the stored (not FAILED) statement of the channel for day,
// or nil.
func (r *stmtRun) stored(ctx context.Context, day string, this repo.Statement) (*repo.Statement, error) {
	if day == this.Day {
		return &this, nil
	}
	st, err := r.j.Store.GetStatement(ctx, r.ch.Name, day)
	if errors.Is(err, recon.ErrNotFound) || (err == nil && st.Status == repo.StatementFailed) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}
