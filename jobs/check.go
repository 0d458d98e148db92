package jobs

import (
	"context"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
)

// ProcessOne looks one order up now and applies the decision through the
// same path as a pass (close and re-check on expiry, guarded commit, conflict
// classification), for `recon check --commit`. A terminal order is verified
// only, never changed. It records no recon_runs row; the counters of the
// result say what happened. The error is non-nil only when the database
// failed.
func (r *Reconciler) ProcessOne(ctx context.Context, o recon.Order) (Result, error) {
	return r.processOne(ctx, item{order: o})
}

// processOne is ProcessOne of any item.
func (r *Reconciler) processOne(ctx context.Context, it item) (Result, error) {
	r.defaults()
	start := r.Clock.Now()
	w := Window{Backfill: true, IncludeTerminal: true}
	p := &pass{r: r, w: w}
	err := p.process(ctx, it)
	res := Result{Kind: w.Kind(), StartedAt: start, FinishedAt: r.Clock.Now(), RunCounters: p.counters(),
		NewMismatches: p.newMismatches.Load(), Found: p.found, Planned: p.planned, Status: repo.RunSucceeded}
	if err != nil {
		res.Status, res.Error = repo.RunFailed, err.Error()
	}
	return res, err
}
