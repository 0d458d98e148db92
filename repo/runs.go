package repo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// Run statuses (recon_runs.status).
const (
	RunRunning   = "RUNNING"
	RunSucceeded = "SUCCEEDED"
	RunFailed    = "FAILED"
	RunAborted   = "ABORTED"
)

// RunCounters are the counters a pass records.
type RunCounters struct {
	Scanned     int64 `json:"scanned"`
	Paid        int64 `json:"paid"`
	Failed      int64 `json:"failed"`
	Closed      int64 `json:"closed"`
	Rescheduled int64 `json:"rescheduled"`
	Mismatches  int64 `json:"mismatches"`
	Conflicts   int64 `json:"conflicts"`
	Errors      int64 `json:"errors"`
	Skipped     int64 `json:"skipped"`
	Delivered   int64 `json:"delivered"`
	Retried     int64 `json:"retried"`
	Dead        int64 `json:"dead"`
	// Deferred counts work left due for a later pass without being tried:
	// orders of a channel paused by its circuit breaker, notifications of
	// a merchant paused by its breaker.
	Deferred int64 `json:"deferred"`
	// The refunds of a pass (CONTRACT §10), beside its orders above.
	RefundsScanned     int64 `json:"refunds_scanned"`
	RefundsSucceeded   int64 `json:"refunds_succeeded"`
	RefundsFailed      int64 `json:"refunds_failed"`
	RefundsRescheduled int64 `json:"refunds_rescheduled"`
	// RefundsUnsupported counts refunds skipped because their channel's
	// adapter cannot look refunds up (also in Skipped).
	RefundsUnsupported int64 `json:"refunds_unsupported"`
}

// Run is a recon_runs row.
type Run struct {
	ID          int64
	Kind        string
	Status      string
	DryRun      bool
	Shard       string
	Owner       string
	StartedAt   time.Time
	HeartbeatAt time.Time
	FinishedAt  *time.Time
	Error       string
	RunCounters
}

type runRow struct {
	ID          int64
	Kind        string
	Status      string
	DryRun      bool
	Shard       string
	Owner       string
	StartedAt   time.Time
	HeartbeatAt time.Time
	FinishedAt  sql.NullTime
	Scanned     int64
	Paid        int64
	Failed      int64
	Closed      int64
	Rescheduled int64
	Mismatches  int64
	Conflicts   int64
	Errors      int64
	Skipped     int64
	Delivered   int64
	Retried     int64
	Dead        int64
	Deferred    int64

	RefundsScanned, RefundsSucceeded, RefundsFailed, RefundsRescheduled, RefundsUnsupported int64
	Error                                                                                   string
}

func (runRow) TableName() string { return "recon_runs" }

func (r runRow) toDomain() Run {
	run := Run{ID: r.ID, Kind: r.Kind, Status: r.Status, DryRun: r.DryRun, Shard: r.Shard, Owner: r.Owner,
		StartedAt: r.StartedAt.UTC(), HeartbeatAt: r.HeartbeatAt.UTC(), Error: r.Error,
		RunCounters: RunCounters{Scanned: r.Scanned, Paid: r.Paid, Failed: r.Failed, Closed: r.Closed,
			Rescheduled: r.Rescheduled, Mismatches: r.Mismatches, Conflicts: r.Conflicts, Errors: r.Errors,
			Skipped: r.Skipped, Delivered: r.Delivered, Retried: r.Retried, Dead: r.Dead, Deferred: r.Deferred,
			RefundsScanned: r.RefundsScanned, RefundsSucceeded: r.RefundsSucceeded, RefundsFailed: r.RefundsFailed,
			RefundsRescheduled: r.RefundsRescheduled, RefundsUnsupported: r.RefundsUnsupported}}
	if r.FinishedAt.Valid {
		t := r.FinishedAt.Time.UTC()
		run.FinishedAt = &t
	}
	return run
}

// StartRun records a pass as RUNNING and returns its id.
func (s *Store) StartRun(ctx context.Context, kind string, dryRun bool, shard, owner string, now time.Time) (int64, error) {
	row := runRow{Kind: kind, Status: RunRunning, DryRun: dryRun, Shard: shard, Owner: truncate(owner, 128),
		StartedAt: dbTime(now), HeartbeatAt: dbTime(now)}
	err := s.retryTx(ctx, "run", func(tx *gorm.DB) error {
		row.ID = 0
		return tx.Create(&row).Error
	})
	if err != nil {
		return 0, fmt.Errorf("start %s run: %w", kind, err)
	}
	return row.ID, nil
}

// HeartbeatRun tells later passes that run id is alive, and saves its
// counters so far.
func (s *Store) HeartbeatRun(ctx context.Context, id int64, c RunCounters, now time.Time) error {
	err := s.retryTx(ctx, "run", func(tx *gorm.DB) error {
		return tx.Model(&runRow{}).Where("id = ? AND status = ?", id, RunRunning).
			Updates(counterMap(c, map[string]any{"heartbeat_at": dbTime(now)})).Error
	})
	if err != nil {
		return fmt.Errorf("heartbeat run %d: %w", id, err)
	}
	return nil
}

// ErrRunClosed is returned by FinishRun when the run was closed already,
// by a later pass that found its heartbeat stale.
var ErrRunClosed = errors.New("run already closed")

// FinishRun closes run id with its final status and counters. A run is
// closed once: only while it is still RUNNING. When another pass closed it
// first (marked it FAILED for want of a heartbeat), that stays, and
// FinishRun returns an error wrapping ErrRunClosed that says how it ended.
func (s *Store) FinishRun(ctx context.Context, id int64, status string, c RunCounters, errText string, now time.Time) error {
	var n int64
	err := s.retryTx(ctx, "run", func(tx *gorm.DB) error {
		res := tx.Model(&runRow{}).Where("id = ? AND status = ?", id, RunRunning).
			Updates(counterMap(c, map[string]any{"status": status, "finished_at": dbTime(now),
				"heartbeat_at": dbTime(now), "error": truncate(errText, 1024)}))
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return fmt.Errorf("finish run %d: %w", id, err)
	}
	if n == 0 {
		run, err := s.GetRun(ctx, id)
		if err != nil {
			return fmt.Errorf("finish run %d: %w", id, err)
		}
		return fmt.Errorf("finish run %d as %s: %w as %s (%s)", id, status, ErrRunClosed, run.Status, run.Error)
	}
	return nil
}

// FailAbandonedRuns marks FAILED every RUNNING run whose heartbeat is older
// than staleBefore: its process died without closing it. It returns how many
// it closed.
func (s *Store) FailAbandonedRuns(ctx context.Context, staleBefore, now time.Time) (int64, error) {
	var n int64
	err := s.retryTx(ctx, "run", func(tx *gorm.DB) error {
		res := s.whereTime(tx.Model(&runRow{}).Where("status = ?", RunRunning), "heartbeat_at", "<", staleBefore).
			Updates(map[string]any{"status": RunFailed, "finished_at": dbTime(now),
				"error": "abandoned: the process stopped without closing the run (no heartbeat)"})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("close abandoned runs: %w", err)
	}
	return n, nil
}

// FailRunsOf marks FAILED, with reason, every RUNNING run of kind and
// shard that is not a dry run: the caller has just taken the lease those
// runs ran under, so their processes are dead (or lost the lease and are
// stopping). It returns how many it closed.
func (s *Store) FailRunsOf(ctx context.Context, kind, shard string, now time.Time, reason string) (int64, error) {
	var n int64
	err := s.retryTx(ctx, "run", func(tx *gorm.DB) error {
		res := tx.Model(&runRow{}).
			Where("status = ? AND kind = ? AND shard = ? AND dry_run = ?", RunRunning, kind, shard, false).
			Updates(map[string]any{"status": RunFailed, "finished_at": dbTime(now), "error": truncate(reason, 1024)})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("close the running %s runs of shard %q: %w", kind, shard, err)
	}
	return n, nil
}

// GetRun reads one run.
func (s *Store) GetRun(ctx context.Context, id int64) (Run, error) {
	var r runRow
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Run{}, fmt.Errorf("run %d: %w", id, recon.ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("read run %d: %w", id, err)
	}
	return r.toDomain(), nil
}

// ListRuns returns the most recent runs, newest (by start time) first. Ids
// are not chronological: a Galera cluster hands out auto-increment ids in
// per-node steps (1, 4, 7 on one node, 2, 5, 8 on another).
func (s *Store) ListRuns(ctx context.Context, limit int) ([]Run, error) {
	var rows []runRow
	if err := s.db.WithContext(ctx).Order(s.at("started_at") + " DESC, id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	out := make([]Run, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain()
	}
	return out, nil
}

func counterMap(c RunCounters, m map[string]any) map[string]any {
	m["scanned"], m["paid"], m["failed"], m["closed"] = c.Scanned, c.Paid, c.Failed, c.Closed
	m["rescheduled"], m["mismatches"], m["conflicts"], m["errors"] = c.Rescheduled, c.Mismatches, c.Conflicts, c.Errors
	m["skipped"], m["delivered"], m["retried"], m["dead"] = c.Skipped, c.Delivered, c.Retried, c.Dead
	m["deferred"] = c.Deferred
	m["refunds_scanned"], m["refunds_succeeded"] = c.RefundsScanned, c.RefundsSucceeded
	m["refunds_failed"], m["refunds_rescheduled"] = c.RefundsFailed, c.RefundsRescheduled
	m["refunds_unsupported"] = c.RefundsUnsupported
	return m
}
