package repo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// MismatchAction is recon_mismatch_events.action: one step in the finance
// history of a mismatch.
type MismatchAction string

// Mismatch history actions.
const (
	// ActionOpened: the job detected the mismatch for the first time.
	ActionOpened MismatchAction = "OPENED"
	// ActionAcknowledged: someone in finance took the mismatch on.
	ActionAcknowledged MismatchAction = "ACKNOWLEDGED"
	// ActionResolved: someone in finance closed the mismatch, saying why.
	ActionResolved MismatchAction = "RESOLVED"
	// ActionReopened: the job detected a resolved mismatch again.
	ActionReopened MismatchAction = "REOPENED"
)

// JobActor is the actor of the events the job itself records.
const JobActor = "recon"

// ErrWrongResolution is returned (wrapped, with the state found) when a
// resolution change finds the mismatch in a state it cannot leave that way.
var ErrWrongResolution = errors.New("mismatch is not in a state that allows this change")

// MismatchEvent is a recon_mismatch_events row.
type MismatchEvent struct {
	ID         int64
	MismatchID int64
	Action     MismatchAction
	By         string
	Note       string
	RunID      int64
	At         time.Time
}

type mismatchEventRow struct {
	ID         int64
	MismatchID int64
	Action     string
	Actor      string
	Note       sql.NullString
	RunID      sql.NullInt64
	CreatedAt  time.Time
}

func (mismatchEventRow) TableName() string { return "recon_mismatch_events" }

func (r mismatchEventRow) toDomain() MismatchEvent {
	return MismatchEvent{ID: r.ID, MismatchID: r.MismatchID, Action: MismatchAction(r.Action), By: r.Actor,
		Note: r.Note.String, RunID: r.RunID.Int64, At: r.CreatedAt.UTC()}
}

// GetMismatch reads one mismatch. It returns recon.ErrNotFound if absent.
func (s *Store) GetMismatch(ctx context.Context, id int64) (MismatchRecord, error) {
	return getMismatch(s.db.WithContext(ctx), id)
}

func getMismatch(db *gorm.DB, id int64) (MismatchRecord, error) {
	var r mismatchRow
	err := db.Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return MismatchRecord{}, fmt.Errorf("mismatch %d: %w", id, recon.ErrNotFound)
	}
	if err != nil {
		return MismatchRecord{}, fmt.Errorf("read mismatch %d: %w", id, err)
	}
	return r.toDomain(), nil
}

// Acknowledge moves mismatch id from OPEN to ACKNOWLEDGED and records who did
// it. It returns recon.ErrNotFound if the mismatch does not exist and
// ErrWrongResolution, naming the state found, if it is not OPEN.
func (s *Store) Acknowledge(ctx context.Context, id int64, by string, now time.Time) error {
	by = strings.TrimSpace(by)
	if by == "" {
		return fmt.Errorf("acknowledge mismatch %d: who acknowledges it must be given", id)
	}
	return s.changeResolution(ctx, "acknowledge", id, ActionAcknowledged, by, "", now,
		`UPDATE recon_mismatches SET resolution = 'ACKNOWLEDGED' WHERE id = ? AND resolution = 'OPEN'`, id)
}

// Resolve moves mismatch id from OPEN or ACKNOWLEDGED to RESOLVED, keeping who
// resolved it, when and why (note). It returns recon.ErrNotFound if the
// mismatch does not exist and ErrWrongResolution if it is already RESOLVED.
// A resolved mismatch the job detects again is reopened with its history.
func (s *Store) Resolve(ctx context.Context, id int64, by, note string, now time.Time) error {
	by, note = strings.TrimSpace(by), strings.TrimSpace(note)
	if by == "" || note == "" {
		return fmt.Errorf("resolve mismatch %d: who resolves it and why (a note) must be given", id)
	}
	return s.changeResolution(ctx, "resolve", id, ActionResolved, truncate(by, 128), note, now,
		sqlResolve, truncate(by, 128), note, dbTime(now), id)
}

const sqlResolve = `UPDATE recon_mismatches SET resolution = 'RESOLVED', resolved_by = ?, resolution_note = ?, resolved_at = ?
	WHERE id = ? AND resolution IN ('OPEN', 'ACKNOWLEDGED')`

// changeResolution runs one guarded resolution update and its history event
// in one transaction; when the guard matches nothing it says why.
func (s *Store) changeResolution(ctx context.Context, op string, id int64, action MismatchAction,
	by, note string, now time.Time, update string, args ...any) error {
	err := s.retryTx(ctx, "resolution", func(tx *gorm.DB) error {
		return changeResolutionTx(tx, id, action, by, note, now, update, args...)
	})
	if err != nil {
		return fmt.Errorf("%s mismatch %d: %w", op, id, err)
	}
	return nil
}

// changeResolutionTx is changeResolution inside the caller's transaction.
func changeResolutionTx(tx *gorm.DB, id int64, action MismatchAction, by, note string, now time.Time,
	update string, args ...any) error {
	n, err := exec(tx, update, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		cur, err := getMismatch(tx, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("mismatch is %s: %w", cur.Resolution, ErrWrongResolution)
	}
	_, err = exec(tx, `INSERT INTO recon_mismatch_events (mismatch_id, action, actor, note, run_id, created_at)
		VALUES (?, ?, ?, ?, NULL, ?)`, id, action, truncate(by, 128), nullString(note), dbTime(now))
	return err
}

// recordMismatchEvent appends a job event (OPENED, REOPENED) to the history
// of the mismatch of order orderID and kind, inside the caller's transaction.
func recordMismatchEvent(tx *gorm.DB, orderID int64, subject string, kind recon.MismatchKind, action MismatchAction,
	detail string, meta CommitMeta) error {
	_, err := exec(tx, `INSERT INTO recon_mismatch_events (mismatch_id, action, actor, note, run_id, created_at)
		SELECT id, ?, ?, ?, ?, ? FROM recon_mismatches WHERE order_id = ? AND kind = ? AND subject = ?`,
		action, JobActor, nullString(detail), nullRunID(meta.RunID), dbTime(meta.Now), orderID, kind, subject)
	if err != nil {
		return fmt.Errorf("record %s event of mismatch %s for order %d: %w", action, kind, orderID, err)
	}
	return nil
}

// MismatchHistory returns the events of mismatch id, oldest first. It returns
// recon.ErrNotFound if the mismatch does not exist.
func (s *Store) MismatchHistory(ctx context.Context, id int64) ([]MismatchEvent, error) {
	var rows []mismatchEventRow
	if err := s.db.WithContext(ctx).Where("mismatch_id = ?", id).Order(s.at("created_at") + ", id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read history of mismatch %d: %w", id, err)
	}
	if len(rows) == 0 {
		if _, err := s.GetMismatch(ctx, id); err != nil {
			return nil, err
		}
	}
	out := make([]MismatchEvent, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain()
	}
	return out, nil
}
